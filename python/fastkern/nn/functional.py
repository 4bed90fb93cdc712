"""fastkern.nn.functional: PyTorch's functional API (NCHW layouts, PyTorch argument names).

The heavy ops (conv2d, pooling, batch_norm, linear, cross_entropy, softmax) are C++ ops
with their backward in csrc/core/ops_nn.cpp; this module only normalises arguments.
"""

import math

from .. import _C
from .._C import sigmoid, tanh  # noqa: F401
from .._creation import rand_like

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _pair(v):
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(x) for x in v)


def _reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction (expected one of {tuple(_REDUCTIONS)})")
    return _REDUCTIONS[reduction]


def _reduce(loss, reduction):
    code = _reduction(reduction)
    return loss if code == 0 else loss.mean() if code == 1 else loss.sum()


# ---- layers


def linear(input, weight, bias=None):
    return _C._linear(input, weight, bias)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    dilation = _pair(dilation)
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if _pair(stride) != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            span = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
            if any(s % 2 for s in span):
                raise NotImplementedError("padding='same' needs an odd effective kernel size in fastkern")
            padding = tuple(s // 2 for s in span)
        else:
            raise ValueError(f"invalid padding string {padding!r}, should be one of 'valid', 'same'")
    return _C._conv2d(input, weight, bias, _pair(stride), _pair(padding), dilation, groups)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    k = _pair(kernel_size)
    out, idx = _C._max_pool2d(
        input, k, k if stride is None or stride == [] else _pair(stride), _pair(padding), _pair(dilation), ceil_mode
    )
    return (out, idx) if return_indices else out


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    if divisor_override is not None:
        raise NotImplementedError("avg_pool2d: divisor_override is not supported")
    k = _pair(kernel_size)
    return _C._avg_pool2d(
        input, k, k if stride is None or stride == [] else _pair(stride), _pair(padding), ceil_mode, count_include_pad
    )


def adaptive_avg_pool2d(input, output_size):
    size = (output_size, output_size) if isinstance(output_size, int) or output_size is None else output_size
    size = tuple(input.shape[-2 + i] if s is None else int(s) for i, s in enumerate(size))
    return _C._adaptive_avg_pool2d(input, size)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over PyTorch's adaptive windows (cell i spans floor(i*H/h) to ceil((i+1)*H/h)); a
    composite of amax over slices, which suits the small outputs heads use."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d: return_indices=True is not supported")
    size = (output_size, output_size) if isinstance(output_size, int) or output_size is None else output_size
    H, W = input.shape[-2:]
    oh, ow = (H if size[0] is None else int(size[0])), (W if size[1] is None else int(size[1]))
    if (oh, ow) == (1, 1):
        return input.amax(dim=(-2, -1), keepdim=True)
    rows = []
    for i in range(oh):
        r0, r1 = i * H // oh, -(-(i + 1) * H // oh)
        cells = [input[..., r0:r1, j * W // ow : -(-(j + 1) * W // ow)].amax(dim=(-2, -1)) for j in range(ow)]
        rows.append(_C.stack(cells, -1))
    return _C.stack(rows, -2)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    return _C._batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def pad(input, pad, mode="constant", value=0.0):
    """Pads (or, with negative amounts, crops) the last dims: ``pad`` is (left, right, top, bottom, ...),
    last dim first, as PyTorch's. Only mode='constant'; built from narrow and cat, so autograd is free."""
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected an even number of at most {2 * input.ndim} sizes, got {len(pad)}")
    out = input
    for i in range(len(pad) // 2):
        dim, lo, hi = input.ndim - 1 - i, int(pad[2 * i]), int(pad[2 * i + 1])
        if lo < 0 or hi < 0:  # crop first, so that a pad on the other side sees the cropped size
            size = out.shape[dim] + min(lo, 0) + min(hi, 0)
            if size < 0:
                raise ValueError(f"pad: cropping {-min(lo, 0)} and {-min(hi, 0)} from a dim of size {out.shape[dim]}")
            out = out.narrow(dim, -min(lo, 0), size)
        parts = []
        for n in (max(lo, 0), max(hi, 0)):
            shape = list(out.shape)
            shape[dim] = n
            parts.append(out.new_full(shape, value) if n else None)
        if parts[0] is not None or parts[1] is not None:
            out = _C.cat([p for p in (parts[0], out, parts[1]) if p is not None], dim)
    return out


def embedding(input, weight, padding_idx=None):
    if input.numel():
        lo, hi = int(input.min()), int(input.max())
        if lo < 0 or hi >= weight.shape[0]:
            raise IndexError(
                f"index out of range in self (embedding indices must be in [0, {weight.shape[0]}), "
                f"got values from {lo} to {hi})"
            )
    out = weight[input]
    if padding_idx is not None:  # rows looked up through padding_idx get no gradient
        out = _C.where((input == padding_idx).unsqueeze(-1), out.detach(), out)
    return out


def dropout(input, p=0.5, training=True, inplace=False):
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    mask = (rand_like(input) >= p).to(input.dtype) * (0.0 if p == 1 else 1.0 / (1 - p))
    return input.mul_(mask) if inplace else input * mask


# ---- activations


def relu(input, inplace=False):
    return input.relu_() if inplace else input.relu()


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    # a clamp: its gradient is 1 at min_val and max_val themselves, where PyTorch's hardtanh has 0
    return input.clamp_(min_val, max_val) if inplace else input.clamp(min_val, max_val)


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    out = _C.where(input > 0, input, input * negative_slope)
    return input.copy_(out) if inplace else out


def gelu(input, approximate="none"):
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * math.sqrt(2 / math.pi)
        return input * 0.5 * (inner.tanh() + 1)
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return input * 0.5 * ((input * (1 / math.sqrt(2))).erf() + 1)


def softmax(input, dim=None, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return x.softmax(-1 if dim is None else dim)


def log_softmax(input, dim=None, dtype=None):
    x = input if dtype is None else input.to(dtype)
    return x.log_softmax(-1 if dim is None else dim)


# ---- losses


def _class_last(input, target):
    """[N, C, d1, ...] logits and [N, d1, ...] targets as [N*d1*..., C] and [N*d1*...]."""
    order = [0] + list(range(2, input.ndim)) + [1]
    rows = input.shape[0] * math.prod(input.shape[2:])  # not -1: that is ambiguous when C == 0
    return input.permute(*order).reshape(rows, input.shape[1]), target.reshape(-1)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    if weight is not None:
        raise NotImplementedError("cross_entropy: class weights are not supported yet")
    if target.is_floating_point():  # class probabilities
        if target.shape != input.shape:
            raise RuntimeError(
                f"expected target dtype to be Long or Byte, but got {target.dtype} (a float target "
                f"holds class probabilities and must have the input's shape {list(input.shape)}, "
                f"got {list(target.shape)})"
            )
        logp = log_softmax(input, 1 if input.ndim > 1 else 0)
        n_classes = input.shape[1 if input.ndim > 1 else 0]
        target = target * (1 - label_smoothing) + label_smoothing / n_classes
        return _reduce(-(target * logp).sum(1 if input.ndim > 1 else 0), reduction)
    code = _reduction(reduction)
    if input.ndim == 1:  # one unbatched sample
        loss = _C._cross_entropy(input.unsqueeze(0), target.reshape(1), code, label_smoothing, ignore_index)
        return loss.reshape(()) if code == 0 else loss
    if input.ndim > 2:
        x, t = _class_last(input, target)
        loss = _C._cross_entropy(x, t, code, label_smoothing, ignore_index)
        return loss.reshape(target.shape) if code == 0 else loss
    return _C._cross_entropy(input, target, code, label_smoothing, ignore_index)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    if weight is not None:
        raise NotImplementedError("nll_loss: class weights are not supported yet")
    if input.ndim > 2:
        x, t = _class_last(input, target)
        loss = nll_loss(x, t, ignore_index=ignore_index, reduction=reduction)
        return loss.reshape(target.shape) if reduction == "none" else loss
    if input.ndim != 2 or target.ndim != 1 or target.shape[0] != input.shape[0]:
        raise ValueError(
            f"nll_loss expects input of shape [N, C] and target of shape [N], "
            f"got {list(input.shape)} and {list(target.shape)}"
        )
    keep = target != ignore_index
    picked = input[_C._arange(0, input.shape[0], 1, _C.int64, input.device), target * keep] * keep.to(input.dtype)
    code = _reduction(reduction)
    if code == 1:
        return -picked.sum() / keep.sum().to(input.dtype)
    return -picked.sum() if code == 2 else -picked


def mse_loss(input, target, reduction="mean"):
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    return _reduce((input - target).abs(), reduction)


def _check_same_size(input, target):
    if target.shape != input.shape:
        raise ValueError(f"Target size ({list(target.shape)}) must be the same as input size ({list(input.shape)})")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    _check_same_size(input, target)
    # -log(sigmoid(x)) = m + log(exp(-m) + exp(-x - m)), m = max(-x, 0): stable for large |x|, and
    # PyTorch's form, so x = +-inf gives what PyTorch gives and autograd is exact at x = 0
    # (where log(1 + exp(-|x|)) has a kink that the max cancels).
    m = (-input).clamp(min=0)
    log_sig_neg = m + ((-m).exp() + (-input - m).exp()).log()
    weight_pos = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + weight_pos * log_sig_neg
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    _check_same_size(input, target)
    x = input.detach()
    if not bool(((x >= 0) & (x <= 1)).all()):  # NaN fails too, as in PyTorch
        raise RuntimeError("all elements of input should be between 0 and 1")
    # PyTorch clamps the logs at -100 so that p = 0 or 1 gives a finite loss.
    loss = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(min=-100))
    return _reduce(loss if weight is None else loss * weight, reduction)
