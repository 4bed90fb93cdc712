"""Shared pytest fixtures. `device` runs a test once per device in helpers.DEVICES."""

import pytest

import fastkern as fk
from helpers import DEVICES

# Learners in tests that are not about devices train on the CPU whatever default_device() would
# pick: on the emulated GPU they are hundreds of times slower. Device tests name their device.
fk.default_device(False)


@pytest.fixture(params=DEVICES)
def device(request):
    """'cpu', then 'cuda' where fastkern can make CUDA tensors (see helpers.available_devices)."""
    return request.param
