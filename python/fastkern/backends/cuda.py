"""What the CUDA backend found. The build compiles csrc/cuda when nvcc is present
(CMake option FASTKERN_CUDA=AUTO|ON|OFF); fastkern.cuda is the device itself."""

from .._C import _cuda_built, _cuda_device_count


def is_built():
    """Whether this build of fastkern compiled its CUDA backend."""
    return bool(_cuda_built)


def device_count():
    """CUDA devices the backend sees (0 without the backend, a driver or a device)."""
    return _cuda_device_count()
