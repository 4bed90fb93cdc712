"""PyTorch's legacy tensor types: fastkern.FloatTensor(2, 3), LongTensor([1, 2]), x.type(), ...

Scripts ported by changing `import torch` keep strings such as 'torch.FloatTensor': Tensor.type
takes them with a "torch." or a "fastkern." prefix.
"""

from . import _C
from ._C import Tensor

_NAMES = {
    _C.float32: "FloatTensor",
    _C.float64: "DoubleTensor",
    _C.int64: "LongTensor",
    _C.uint8: "ByteTensor",
    _C.bool: "BoolTensor",
}


def tensor_new(*args, dtype=_C.float32, device=None):
    """A tensor as the legacy constructors make one: from no arguments (empty), sizes (uninitialised
    memory), a Size, data (a list, tuple or array, converted to `dtype`) or a tensor (an alias)."""
    from ._creation import empty, tensor
    from ._size import Size

    if len(args) == 1 and isinstance(args[0], Tensor):
        t = args[0]
        if t.dtype != dtype or (device is not None and t.device.type != _C.device(str(device)).type):
            raise TypeError(f"expected {_type_name(dtype, device)} (got {t.type()})")
        return Tensor(t)  # shares t's memory, as torch.FloatTensor(t)
    if not args:
        return empty(0, dtype=dtype, device=device)
    if all(isinstance(a, int) for a in args) or (len(args) == 1 and isinstance(args[0], Size)):  # as torch
        return empty(*args, dtype=dtype, device=device)
    if len(args) == 1 and hasattr(args[0], "__len__"):
        return tensor(args[0], dtype=dtype, device=device)
    got = ", ".join(type(a).__name__ for a in args)
    raise TypeError(f"{_NAMES[dtype]}(): expected sizes (ints), a sequence of data or a tensor (got {got})")


def _type_name(dtype, device):
    cuda = device is not None and _C.device(str(device)).type == "cuda"
    return ("fastkern.cuda." if cuda else "fastkern.") + _NAMES[dtype]


class _LegacyType(type):
    """The class of FloatTensor & co. Calling one makes a Tensor of its dtype and device; isinstance
    checks a tensor's dtype and device, as isinstance(x, torch.FloatTensor) does."""

    def __call__(cls, *args):
        return tensor_new(*args, dtype=cls.dtype, device=cls._device)

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and obj.device.type == cls._device

    def __repr__(cls):
        return f"<class '{cls.__module__}.{cls.__name__}'>"


def _legacy_types(device):
    module = "fastkern" if device == "cpu" else "fastkern.cuda"
    attrs = {"is_cuda": device == "cuda", "_device": device, "__module__": module}
    return [_LegacyType(name, (), {"dtype": dtype, **attrs}) for dtype, name in _NAMES.items()]


# fastkern.FloatTensor, ... and fastkern.cuda.FloatTensor, ... (in _NAMES's order)
FloatTensor, DoubleTensor, LongTensor, ByteTensor, BoolTensor = _CPU = _legacy_types("cpu")
CUDA_TYPES = _legacy_types("cuda")
_BY_NAME = {f"{c.__module__}.{c.__name__}": c for c in _CPU + CUDA_TYPES}


def _type(self, dtype=None, non_blocking=False):
    """Without an argument, the legacy type name ('fastkern.FloatTensor'); with a dtype, a legacy type
    or its name ('torch.LongTensor' too), the tensor converted to it (itself when it is already)."""
    if dtype is None:
        return _type_name(self.dtype, self.device)
    if isinstance(dtype, str):
        name = "fastkern." + dtype[len("torch.") :] if dtype.startswith("torch.") else dtype
        if name not in _BY_NAME:
            raise ValueError(f"invalid type: {dtype!r}")
        dtype = _BY_NAME[name]
    if isinstance(dtype, _LegacyType):
        return self.to(dtype._device, dtype.dtype, non_blocking=non_blocking)
    return self.to(dtype=dtype, non_blocking=non_blocking)


Tensor.type = _type
