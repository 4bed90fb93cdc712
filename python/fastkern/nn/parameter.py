"""nn.Parameter: a tensor that a Module registers as trainable."""

from .._C import Tensor
from .._creation import empty


class Parameter(Tensor):
    """Aliases ``data`` (no copy, as torch.nn.Parameter) and requires grad.

    Ops on a Parameter return plain Tensors, as in PyTorch.
    """

    def __init__(self, data=None, requires_grad=True):
        super().__init__((empty(0) if data is None else data).detach())
        self.requires_grad_(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + Tensor.__repr__(self)

    __str__ = __repr__
