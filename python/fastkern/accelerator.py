"""fastkern.accelerator: torch.accelerator's device-generic names. The one accelerator fastkern
knows is its CUDA device (fastkern.cuda)."""

from . import cuda
from ._C import device
from .backends import cuda as cuda_build


def is_available():
    return cuda.is_available()


def current_accelerator(check_available=False):
    """device('cuda') when fastkern was built with CUDA (and, with check_available, a device is
    present), else None."""
    if check_available and not cuda.is_available():
        return None
    return device("cuda") if cuda_build.is_built() else None


def device_count():
    return cuda.device_count()


def current_device_index():
    return cuda.current_device()


def synchronize(device=None):
    cuda.synchronize(device)
