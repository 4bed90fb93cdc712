"""Tensor methods that are not on the per-op hot path, written in Python."""

from ._C import Tensor
from ._tensor_str import tensor_repr


def _array(self, dtype=None, copy=None):
    arr = self.detach().numpy()  # a device tensor raises, as in PyTorch: .cpu() first
    return arr.astype(dtype) if dtype is not None else arr


def _tolist(self):
    return self.detach().cpu().numpy().tolist()


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return (self[i] for i in range(self.shape[0]))


def _format(self, spec):
    if self.ndim == 0:
        return format(self.item(), spec)
    return format(repr(self), spec)


def _like(self, dtype, device, requires_grad):
    """new_*'s keywords: self's dtype and device unless given, as PyTorch's."""
    return dict(
        dtype=dtype or self.dtype, device=self.device if device is None else device, requires_grad=requires_grad
    )


def _new_tensor(self, data, dtype=None, device=None, requires_grad=False):
    from ._creation import tensor

    return tensor(data, **_like(self, dtype, device, requires_grad))


def _new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    from ._creation import zeros

    return zeros(*size, **_like(self, dtype, device, requires_grad))


def _new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    from ._creation import ones

    return ones(*size, **_like(self, dtype, device, requires_grad))


def _new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
    from ._creation import full

    return full(size, fill_value, **_like(self, dtype, device, requires_grad))


def _new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    from ._creation import empty

    return empty(*size, **_like(self, dtype, device, requires_grad))


def _deepcopy(self, memo):
    """copy.deepcopy (of a module, say): a new leaf with a copy of the values (and of .grad), of
    the same class (a Parameter stays one), as PyTorch's; non-leaves refuse, as there."""
    if not self.is_leaf:
        raise RuntimeError(
            "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the moment."
        )
    if id(self) not in memo:
        new = type(self)(self.detach().clone())
        new.requires_grad_(self.requires_grad)
        if self.grad is not None:
            new.grad = self.grad.clone()
        memo[id(self)] = new
    return memo[id(self)]


Tensor.__repr__ = tensor_repr
Tensor.__deepcopy__ = _deepcopy
Tensor.__str__ = tensor_repr
Tensor.__array__ = _array
Tensor.__array_priority__ = 1000  # numpy defers `ndarray op tensor` to the tensor's reflected op
Tensor.__iter__ = _iter
Tensor.__format__ = _format
Tensor.tolist = _tolist
Tensor.new_tensor = _new_tensor
Tensor.new_zeros = _new_zeros
Tensor.new_ones = _new_ones
Tensor.new_full = _new_full
Tensor.new_empty = _new_empty
