"""Tensor creation. Not on the per-op hot path, so it lives in Python."""

import builtins

import numpy as np

from . import _C
from ._C import Tensor

_NP = {_C.float32: np.float32, _C.float64: np.float64, _C.int64: np.int64, _C.bool: np.bool_, _C.uint8: np.uint8}
_FROM_NP = {np.dtype(v): k for k, v in _NP.items()}


_default_device = None  # set_default_device's device; None: the CPU
_default_float = _C.float32  # set_default_dtype's


def set_default_dtype(d):
    """The dtype of floating-point tensors the creation functions make when given none (float32 or
    float64), as torch.set_default_dtype. Python numbers in ops with integer tensors still give
    float32 (decided in C++)."""
    global _default_float
    if d not in (_C.float32, _C.float64):
        raise TypeError(
            f"only floating-point types are supported as the default type (fastkern has float32 and float64, got {d})"
        )
    _default_float = d


def get_default_dtype():
    return _default_float


def set_default_device(device):
    """The device creation functions (zeros, randn, tensor, arange, nn layers' parameters, ...) use
    when they are given none, as torch.set_default_device; None goes back to the CPU. fastai's
    default_device (where a Learner trains) is a separate setting."""
    global _default_device
    _default_device = None if device is None else _C.device(str(device))


def get_default_device():
    return _default_device or _C.device("cpu")


def _dev(device):
    return _default_device if device is None else device


def _finish(t, requires_grad):
    if requires_grad:
        t.requires_grad_(True)
    return t


def _shape(size, name):
    """zeros(2, 3), zeros((2, 3)) and zeros([2, 3]) alike; the C++ side checks each size."""
    if not size:  # zeros() is an error in torch (zeros(()) is the 0-d tensor)
        raise TypeError(f'{name}() missing 1 required positional arguments: "size"')
    if len(size) == 1 and not hasattr(size[0], "__index__"):
        if not hasattr(size[0], "__iter__"):
            raise TypeError(f"size must be a tuple of integers, not {type(size[0]).__name__}")
        return tuple(size[0])
    return tuple(size)


def _default_dtype(value):
    if isinstance(value, builtins.bool):
        return _C.bool
    if isinstance(value, int):
        return _C.int64
    return _default_float


def from_numpy(a):
    """A tensor sharing memory with the NumPy array `a` (copied only if `a` is read-only)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(a).__name__})")
    if a.dtype not in _FROM_NP:
        raise TypeError(
            f"can't convert np.ndarray of type {a.dtype}. The only supported types are: "
            "float64, float32, int64, uint8 and bool."
        )
    if not a.flags.writeable:
        a = a.copy()
    return _C._from_numpy(a, a)


def _to_array(data):
    if isinstance(data, Tensor):
        return data.detach().numpy()
    if isinstance(data, np.ndarray):
        arr = data
    else:
        arr = np.asarray(data)
        # Python floats take the default dtype (NumPy would say float64), as in PyTorch.
        if arr.dtype == np.float64 and not isinstance(data, np.floating):
            arr = arr.astype(_NP[_default_float])
    if arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        arr = arr.astype(np.int64)
    elif arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    elif arr.dtype not in _FROM_NP:
        raise TypeError(f"can't create a tensor from data of type {arr.dtype}")
    return arr


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays or tensors)."""
    if dtype is not None and not isinstance(data, Tensor):
        arr = np.array(data, dtype=_NP[dtype], order="C", copy=True)
    else:
        arr = _to_array(data)
        arr = np.array(arr, dtype=_NP[dtype] if dtype is not None else arr.dtype, order="C", copy=True)
    t = _C._from_numpy(arr, arr)
    device = _dev(device)
    return _finish(t if device is None else t.to(device), requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with tensors and NumPy arrays where it can."""
    if isinstance(data, Tensor):
        return data.to(device, dtype)
    if isinstance(data, np.ndarray) and data.dtype in _FROM_NP and (dtype is None or _NP[dtype] == data.dtype):
        return from_numpy(data).to(_dev(device))
    return tensor(data, dtype=dtype, device=device)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dtype = dtype or _default_dtype(fill_value)
    size = tuple(size) if not isinstance(size, int) else (size,)
    return _finish(_C._full(size, fill_value, dtype, _dev(device)), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return full(_shape(size, "zeros"), 0, dtype or _default_float, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return full(_shape(size, "ones"), 1, dtype or _default_float, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _finish(_C._empty(_shape(size, "empty"), dtype or _default_float, _dev(device)), requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return full(t.shape, 0, dtype or t.dtype, device or t.device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return full(t.shape, 1, dtype or t.dtype, device or t.device, requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return full(t.shape, fill_value, dtype or t.dtype, device or t.device, requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    return empty(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if dtype is None:
        dtype = _C.int64 if all(isinstance(v, int) for v in vals) else _default_float
    return _finish(_C._arange(*(float(v) for v in vals), dtype, _dev(device)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _finish(
        _C._linspace(float(start), float(end), int(steps), dtype or _default_float, _dev(device)), requires_grad
    )


def logspace(start, end, steps, base=10.0, dtype=None, device=None, requires_grad=False):
    exps = linspace(start, end, steps, dtype=_C.float64, device=device)
    return _finish((base**exps).to(dtype or _default_float), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _finish(_C._eye(n, n if m is None else m, dtype or _default_float, _dev(device)), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    t = _C._empty(_shape(size, "rand"), dtype or _default_float, _dev(device))
    return _finish(t.uniform_(0.0, 1.0), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    t = _C._empty(_shape(size, "randn"), dtype or _default_float, _dev(device))
    return _finish(t.normal_(0.0, 1.0), requires_grad)


def rand_like(t, dtype=None, device=None):
    return rand(t.shape, dtype=dtype or t.dtype, device=device or t.device)


def randn_like(t, dtype=None, device=None):
    return randn(t.shape, dtype=dtype or t.dtype, device=device or t.device)


def randint(low, high=None, size=None, dtype=None, device=None):
    """randint(high, size) or randint(low, high, size), as PyTorch."""
    if size is None:
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint() missing the 'high' argument")
    return _C._randint(int(low), int(high), tuple(size), dtype or _C.int64, _dev(device))


def randint_like(input, low=0, high=None, dtype=None, device=None):
    low, high = (0, low) if high is None else (low, high)
    return randint(low, high, input.shape, dtype=dtype or input.dtype, device=device or input.device)


def randperm(n, *, dtype=None, device=None, requires_grad=False):
    t = _C.randperm(n, device=_dev(device))
    return _finish(t if dtype is None else t.to(dtype), requires_grad)
