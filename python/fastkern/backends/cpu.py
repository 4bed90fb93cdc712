"""What the CPU backend chose on this machine, and which conv2d algorithm a shape gets."""

from .. import _C
from .._creation import empty

_ALGORITHMS = ("auto", "gemm", "winograd", "depthwise")


def capability():
    """The kernel instruction set in use: 'avx512', 'avx2' or 'base' (FASTKERN_CPU_ISA can force a lower one)."""
    return _C._cpu_capability()


def _tensor(t):
    return t if isinstance(t, _C.Tensor) else empty(tuple(t))


def conv_algorithm(input, weight, stride=1, padding=0, dilation=1, groups=1):
    """The algorithm conv2d takes on the CPU (forward and backward) for `input` and `weight`, tensors or
    shapes: 'winograd' (3x3 stride 1, float32, enough channels and tiles), 'depthwise' (groups == input
    channels) or 'gemm' (lowered to GEMMs)."""
    from ..nn.functional import _pair

    return _C._conv_algorithm(_tensor(input), _tensor(weight), _pair(stride), _pair(padding), _pair(dilation), groups)


def set_conv_algorithm(name):
    """Force one conv2d algorithm where it applies ('gemm', 'winograd', 'depthwise'), or let shapes pick ('auto')."""
    if name not in _ALGORITHMS:
        raise ValueError(f"set_conv_algorithm: expected one of {_ALGORITHMS}, got {name!r}")
    _C._set_conv_algorithm(_ALGORITHMS.index(name))
