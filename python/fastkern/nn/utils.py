"""torch.nn.utils's gradient clipping and parameter-vector helpers."""

from .. import _C
from .._creation import tensor
from .._grad_mode import no_grad
from ..linalg import vector_norm


def _grads(parameters):
    params = [parameters] if isinstance(parameters, _C.Tensor) else list(parameters)
    return [p.grad for p in params if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scales the gradients in place so that their norm together is at most max_norm; returns that
    norm (before clipping)."""
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    total = vector_norm(_C.stack([vector_norm(g, norm_type) for g in grads]), norm_type)
    if error_if_nonfinite and not bool((total - total) == 0):
        raise RuntimeError(f"The total norm of order {float(norm_type)} for gradients from `parameters` is non-finite")
    scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.to(g.device))
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value):
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters):
    return _C.cat([p.reshape(-1) for p in parameters])


@no_grad()
def vector_to_parameters(vec, parameters):
    start = 0
    for p in parameters:
        p.copy_(vec[start : start + p.numel()].view_as(p))
        start += p.numel()
