"""fastkern.Size: a tensor's shape, a tuple of ints as torch.Size (x.shape, x.size())."""

import math
import operator

from ._C import Tensor


class Size(tuple):
    __slots__ = ()

    def __new__(cls, sizes=()):
        return super().__new__(cls, [operator.index(s) for s in sizes])  # ints only, as torch.Size

    def __repr__(self):
        return f"fastkern.Size({list(self)})"

    __str__ = __repr__  # tuple's __str__ would not call our __repr__

    def numel(self):
        return math.prod(self)

    # Sums and repeats of a Size are Sizes, as in PyTorch. Slices stay tuples: a Python __getitem__
    # would slow every x.shape[0] (about 90 ns more, measured) to make x.shape[1:] print as a Size.
    def __add__(self, other):
        return _new(Size, tuple.__add__(self, other)) if isinstance(other, tuple) else NotImplemented

    def __radd__(self, other):
        return _new(Size, tuple.__add__(other, self)) if isinstance(other, tuple) else NotImplemented

    def __mul__(self, n):
        return _new(Size, tuple.__mul__(self, n))

    __rmul__ = __mul__

    def __reduce__(self):
        return Size, (tuple(self),)


# The C++ getters return plain tuples; these wrap them. tuple.__new__ skips Size.__new__'s check: the
# sizes are ints already.
_new = tuple.__new__
_shape = Tensor.shape.fget
_size = Tensor.size


def _shape_prop(self):
    return _new(Size, _shape(self))


def _size_method(self, dim=None):
    """The shape as a Size, or the size of dimension `dim` as an int."""
    return _new(Size, _shape(self)) if dim is None else _size(self, dim)


Tensor.shape = property(_shape_prop, doc="The shape as a fastkern.Size (a tuple).")
Tensor.size = _size_method


def broadcast_shapes(*shapes):
    """The shape tensors of `shapes` broadcast to, as torch.broadcast_shapes (ints are 1-D shapes)."""
    shapes = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    out = [1] * max(map(len, shapes), default=0)
    for s in shapes:
        for i, n in enumerate(s, len(out) - len(s)):
            if out[i] == 1:
                out[i] = n
            elif n not in (1, out[i]):
                raise RuntimeError(f"Shape mismatch: objects cannot be broadcast to a single shape ({shapes})")
    return Size(out)
