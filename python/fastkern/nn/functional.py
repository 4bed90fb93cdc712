"""fastkern.nn.functional: PyTorch's functional API (NCHW layouts, PyTorch argument names)."""
from .. import _C
from .._C import log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401
from .._creation import rand_like

_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction (expected one of {_REDUCTIONS})")
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def linear(input, weight, bias=None):
    out = input @ weight.T
    return out if bias is None else out + bias


def leaky_relu(input, negative_slope=0.01):
    return _C.where(input > 0, input, input * negative_slope)


def dropout(input, p=0.5, training=True):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0
    keep = (rand_like(input) >= p).to(input.dtype)
    return input * keep * (1.0 / (1 - p))


def nll_loss(input, target, reduction="mean"):
    if input.ndim != 2 or target.ndim != 1 or target.shape[0] != input.shape[0]:
        raise ValueError(f"nll_loss expects input of shape [N, C] and target of shape [N], "
                         f"got {list(input.shape)} and {list(target.shape)}")
    picked = input[_C._arange(0, input.shape[0], 1, _C.int64), target]
    return _reduce(-picked, reduction)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    logp = log_softmax(input, -1)
    loss = nll_loss(logp, target, "none")
    if label_smoothing:
        loss = loss * (1 - label_smoothing) - logp.mean(-1) * label_smoothing
    return _reduce(loss, reduction)


def mse_loss(input, target, reduction="mean"):
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    return _reduce((input - target).abs(), reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    # max(x, 0) - x*t + log(1 + exp(-|x|)): stable for large |x|
    loss = input.clamp(min=0) - input * target + ((-input.abs()).exp() + 1).log()
    return _reduce(loss, reduction)
