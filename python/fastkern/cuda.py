"""fastkern.cuda: the CUDA device, with torch.cuda's names. fastkern uses one device, cuda:0.

Without a CUDA build or a GPU, ``is_available()`` is False and ``device_count()`` 0, so the
usual ``device = "cuda" if fastkern.cuda.is_available() else "cpu"`` picks the CPU.
"""

from . import _C
from ._C import OutOfMemoryError  # noqa: F401
from ._legacy import CUDA_TYPES

FloatTensor, DoubleTensor, LongTensor, ByteTensor, BoolTensor = CUDA_TYPES  # legacy types: cuda.FloatTensor(2, 3)


def is_available():
    """Whether a CUDA device can be used."""
    return _C._cuda_device_count() > 0


def device_count():
    return _C._cuda_device_count()


def _check_index(device):
    index = device.index if isinstance(device, _C.device) else device
    if isinstance(device, str):
        index = _C.device(device).index
    if index not in (None, 0):
        raise NotImplementedError(f"fastkern uses one CUDA device, cuda:0, so far (asked for {device!r})")


def current_device():
    if not is_available():
        raise RuntimeError("no CUDA device is available")
    return 0


def set_device(device):
    _check_index(device)


def get_device_name(device=None):
    _check_index(device)
    return _C._cuda_device_name()


def synchronize(device=None):
    """Waits until every queued kernel and copy on the device has finished."""
    _check_index(device)
    _C._cuda_synchronize()


def manual_seed(seed):
    """Seeds the CUDA generator (fastkern.manual_seed seeds every device's); nothing without one."""
    _C._cuda_manual_seed(int(seed))


manual_seed_all = manual_seed


def memory_allocated(device=None):
    """Bytes of device memory held by tensors."""
    _check_index(device)
    return _C._cuda_memory_stats()[0]


def max_memory_allocated(device=None):
    _check_index(device)
    return _C._cuda_memory_stats()[1]


def reset_peak_memory_stats(device=None):
    _check_index(device)
    _C._cuda_reset_peak_memory()


def memory_reserved(device=None):
    """Bytes of device memory the caching allocator holds (in tensors and cached for reuse)."""
    _check_index(device)
    return _C._cuda_memory_stats()[2]


def empty_cache():
    """Returns cached, unused device memory to the driver."""
    _C._cuda_empty_cache()
