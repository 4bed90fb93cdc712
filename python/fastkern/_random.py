"""torch's seeding functions: manual_seed (every device's generator), seed and initial_seed."""

import os

from . import _C

_initial = 0x5EED  # the seed the generators start from (csrc/cpu/random.cpp): runs repeat by default


def manual_seed(seed):
    global _initial
    _initial = int(seed)
    _C.manual_seed(_initial)


def seed():
    """Seeds the generators from the OS's entropy and returns that seed."""
    s = int.from_bytes(os.urandom(8), "little") >> 1  # 63 bits, as torch's
    manual_seed(s)
    return s


def initial_seed():
    return _initial
