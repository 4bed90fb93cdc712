"""fastkern.autograd: the engine itself is C++ (csrc/core/autograd.cpp)."""

from . import _C
from ._C import Tensor
from ._grad_mode import enable_grad, no_grad, set_grad_enabled  # noqa: F401


def _seq(x):
    if x is None:
        return None
    return [x] if isinstance(x, Tensor) else list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    tensors = _seq(tensors)
    grads = _seq(grad_tensors) or [None] * len(tensors)
    _C._backward(tensors, grads, create_graph if retain_graph is None else retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple (no .grad is touched)."""
    outputs, inputs = _seq(outputs), _seq(inputs)
    grads = _seq(grad_outputs) or [None] * len(outputs)
    retain = create_graph if retain_graph is None else retain_graph
    return tuple(_C._grad(outputs, grads, inputs, retain, create_graph, allow_unused))
