"""Shared pytest fixtures. `device` runs a test once per device in helpers.DEVICES."""

import pytest

from helpers import DEVICES

# What a device's backend raises for an op it does not have yet (csrc/cuda/backend.cu).
NOT_YET = "not implemented for CUDA tensors yet"


@pytest.fixture(params=DEVICES)
def device(request):
    """'cpu', then 'cuda' where fastkern can make CUDA tensors (see helpers.available_devices)."""
    return request.param


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """An op a device does not have yet skips that device's test, naming the op; every other
    failure stays a failure. The summary line counts them, so the gap stays visible."""
    outcome = yield
    report = outcome.get_result()
    params = getattr(item, "callspec", None)
    device = params.params.get("device", "cpu") if params else "cpu"
    excinfo = call.excinfo
    if (
        device != "cpu"
        and call.when == "call"
        and excinfo is not None
        and excinfo.errisinstance(NotImplementedError)
        and NOT_YET in str(excinfo.value)
    ):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {excinfo.value}")
