"""Shared pytest fixtures. `device` runs a test once per device in helpers.DEVICES."""

import pytest

from helpers import DEVICES


@pytest.fixture(params=DEVICES)
def device(request):
    """'cpu', then 'cuda' where fastkern can make CUDA tensors (see helpers.available_devices)."""
    return request.param
