"""fastai's device helpers: ``default_device`` picks where training runs, ``to_device`` moves a
batch (tensors inside tuples, lists and dicts) there."""

from . import cuda
from ._C import Tensor, device


_use_cuda = None  # None: CUDA when available


def default_device(use=-1):
    """Returns, or sets and returns, the device a Learner trains on, as fastai's: ``use=-1``
    keeps the setting (at first: CUDA when available, else the CPU); ``True`` sets CUDA when
    available, ``False`` the CPU, ``None`` back to the first rule."""
    global _use_cuda
    if use != -1:
        _use_cuda = use
    use = cuda.is_available() if _use_cuda is None else _use_cuda
    return device("cuda:0" if use and cuda.is_available() else "cpu")


def apply_tensors(f, b):
    """``b`` with ``f`` applied to every tensor in it, through tuples, lists and dicts."""
    if isinstance(b, Tensor):
        return f(b)
    if isinstance(b, (tuple, list)):
        return type(b)(apply_tensors(f, x) for x in b)
    if isinstance(b, dict):
        return {k: apply_tensors(f, v) for k, v in b.items()}
    return b


def to_device(b, device=None, non_blocking=False):
    """``b`` with every tensor in it on ``device`` (default: ``default_device()``); a copy from
    pinned memory with ``non_blocking`` does not wait for the transfer."""
    device = default_device() if device is None else device
    return apply_tensors(lambda t: t.to(device, non_blocking=non_blocking), b)


def to_cpu(b):
    return to_device(b, "cpu")
