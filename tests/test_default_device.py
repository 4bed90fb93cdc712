"""torch's device-generic names: set_default_device/get_default_device for the creation
functions, fastkern.accelerator, backends.mps, and creation without a size."""

import pytest

import fastkern as fk
from helpers import torch

needs_torch = pytest.mark.skipif(torch is None, reason="compares with torch")

MAKERS = {
    "zeros": lambda: fk.zeros(2, 3),
    "ones": lambda: fk.ones(2),
    "empty": lambda: fk.empty(4),
    "full": lambda: fk.full((2,), 7.0),
    "tensor": lambda: fk.tensor([1.0, 2.0]),
    "as_tensor": lambda: fk.as_tensor([1, 2]),
    "arange": lambda: fk.arange(5),
    "linspace": lambda: fk.linspace(0, 1, 3),
    "eye": lambda: fk.eye(3),
    "rand": lambda: fk.rand(2),
    "randn": lambda: fk.randn(2),
    "randint": lambda: fk.randint(0, 5, (3,)),
    "randperm": lambda: fk.randperm(4),
    "legacy": lambda: fk.Tensor(2, 3),
    "linear_weight": lambda: fk.nn.Linear(3, 2).weight,
}


@pytest.fixture
def restore_default_device():
    yield
    fk.set_default_device(None)


@pytest.mark.parametrize("name", MAKERS)
def test_creation_follows_the_default_device(name, device, restore_default_device):
    assert fk.get_default_device() == fk.device("cpu")
    fk.set_default_device(device)
    assert fk.get_default_device().type == device
    assert MAKERS[name]().device.type == device
    assert fk.zeros(2, device="cpu").device.type == "cpu"  # an explicit device wins
    fk.set_default_device(None)
    assert MAKERS[name]().device.type == "cpu"


def test_from_numpy_and_like_functions_ignore_the_default(restore_default_device):
    import numpy as np

    x = fk.ones(2)
    fk.set_default_device("cpu")
    assert fk.from_numpy(np.ones(2)).device.type == "cpu" and fk.zeros_like(x).device == x.device
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        fk.set_default_device("tpu")


def test_randperm_dtype_and_grad():
    p = fk.randperm(5, dtype=fk.float64, requires_grad=True)
    assert p.dtype == fk.float64 and p.requires_grad and sorted(p.tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_creation_needs_a_size(name):
    with pytest.raises(TypeError, match=f'{name}\\(\\) missing 1 required positional arguments: "size"'):
        getattr(fk, name)()
    assert getattr(fk, name)(()).shape == () and getattr(fk, name)([]).shape == ()  # 0-d


@needs_torch
def test_accelerator_and_mps_as_torch():
    assert fk.accelerator.is_available() == fk.cuda.is_available()
    acc = fk.accelerator.current_accelerator()
    assert acc is None or acc.type == "cuda"
    assert fk.accelerator.current_accelerator(check_available=True) == (
        fk.device("cuda") if fk.cuda.is_available() else None
    )
    assert fk.accelerator.device_count() == fk.cuda.device_count()
    assert fk.backends.mps.is_available() is False and fk.backends.mps.is_built() is False
    assert torch.backends.mps.is_available() is False  # the same answer on this machine
    for name in ("is_available", "current_accelerator", "device_count", "current_device_index", "synchronize"):
        assert hasattr(torch.accelerator, name) and hasattr(fk.accelerator, name)
    for name in ("zeros", "ones", "empty"):
        with pytest.raises(TypeError, match="missing 1 required positional arguments"):
            getattr(torch, name)()
