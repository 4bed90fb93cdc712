"""fastkern.nn.functional: PyTorch's functional API (NCHW layouts, PyTorch argument names).

The heavy ops (conv2d, pooling, batch_norm, linear, cross_entropy, softmax) are C++ ops
with their backward in csrc/core/ops_nn.cpp; this module only normalises arguments.
"""

import math

from .. import _C
from .._C import sigmoid, tanh  # noqa: F401
from .._creation import arange, rand_like

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


def _as_2d(input, fn, *args):
    """A 1-d op as its 2-d form over [N, C, 1, L] (the 1-d sizes as pairs (1, s))."""
    out = fn(input.unsqueeze(-2), *args)
    return tuple(o.squeeze(-2) for o in out) if isinstance(out, tuple) else out.squeeze(-2)


def _single(v, fill):
    return (fill, v[0] if isinstance(v, (tuple, list)) else v)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if isinstance(padding, str):
        return _as_2d(
            input,
            lambda x: conv2d(x, weight.unsqueeze(-2), bias, _single(stride, 1), padding, _single(dilation, 1), groups),
        )
    return _as_2d(
        input,
        lambda x: conv2d(
            x, weight.unsqueeze(-2), bias, _single(stride, 1), _single(padding, 0), _single(dilation, 1), groups
        ),
    )


def _triple(v):
    return (int(v),) * 3 if isinstance(v, int) else tuple(int(x) for x in v)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """A sum of 2-d convolutions, one per kernel depth tap, each over the input planes that tap
    sees (the output depths folded into the batch)."""
    (sd, sh, sw), (pd, ph, pw), (dd, dh, dw) = _triple(stride), _triple(padding), _triple(dilation)
    x = pad(input, (0, 0, 0, 0, pd, pd))
    n, c, d = x.shape[:3]
    kd = weight.shape[2]
    od = (d - dd * (kd - 1) - 1) // sd + 1
    if od <= 0:
        raise RuntimeError(
            f"conv3d: input of shape {list(input.shape)} is smaller than the kernel {list(weight.shape[2:])}"
        )
    out = None
    for k in range(kd):
        planes = x[:, :, k * dd : k * dd + sd * (od - 1) + 1 : sd]  # [N, C, od, H, W]
        planes = planes.permute(0, 2, 1, 3, 4).reshape(n * od, c, *x.shape[3:])
        y = conv2d(planes, weight[:, :, k], None, (sh, sw), (ph, pw), (dh, dw), groups)
        out = y if out is None else out + y
    out = out.reshape(n, od, *out.shape[1:]).permute(0, 2, 1, 3, 4)
    return out if bias is None else out + bias.reshape(-1, 1, 1, 1)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The gradient of conv2d with respect to its input, as a convolution: the input spread out by
    the stride (zeros between pixels), padded by dilation*(k-1) - padding (plus output_padding at
    the end), then convolved with the kernel flipped and its channel dims swapped."""
    if groups != 1:
        raise NotImplementedError("conv_transpose2d: groups > 1 is not implemented")
    (sh, sw), (ph, pw), (oh, ow), (dh, dw) = (_pair(v) for v in (stride, padding, output_padding, dilation))
    n, c, h, w = input.shape
    kh, kw = weight.shape[2:]
    spread = input.new_zeros((n, c, (h - 1) * sh + 1, (w - 1) * sw + 1)) if h and w else input
    if h and w:
        spread[:, :, ::sh, ::sw] = input
    eh, ew = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    spread = pad(spread, (ew, ew + ow, eh, eh + oh))
    return conv2d(spread, weight.flip([2, 3]).transpose(0, 1), bias, 1, 0, (dh, dw))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _as_2d(
        input,
        lambda x: conv_transpose2d(
            x,
            weight.unsqueeze(-2),
            bias,
            _single(stride, 1),
            _single(padding, 0),
            _single(output_padding, 0),
            groups,
            _single(dilation, 1),
        ),
    )


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    stride = kernel_size if stride is None else stride
    return _as_2d(
        input,
        lambda x: max_pool2d(
            x,
            _single(kernel_size, 1),
            _single(stride, 1),
            _single(padding, 0),
            _single(dilation, 1),
            ceil_mode,
            return_indices,
        ),
    )


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    stride = kernel_size if stride is None else stride
    return _as_2d(
        input,
        lambda x: avg_pool2d(
            x, _single(kernel_size, 1), _single(stride, 1), _single(padding, 0), ceil_mode, count_include_pad
        ),
    )


def adaptive_avg_pool1d(input, output_size):
    return _as_2d(input, lambda x: adaptive_avg_pool2d(x, _single(output_size, 1)))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape) :]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape [*, {', '.join(map(str, shape))}], "
            f"but got input of size {list(input.shape)}"
        )
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    mean = input.mean(dims, keepdim=True)
    out = (input - mean) * (input.var(dims, correction=0, keepdim=True) + eps).rsqrt()
    return _affine(out, weight, bias)


def _affine(x, weight, bias):
    x = x if weight is None else x * weight
    return x if bias is None else x + bias


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input of shape "
            f"{list(input.shape)} and num_groups={num_groups}"
        )
    x = input.reshape(n, num_groups, -1)
    x = ((x - x.mean(-1, keepdim=True)) * (x.var(-1, correction=0, keepdim=True) + eps).rsqrt()).reshape(input.shape)
    per_channel = [c] + [1] * (input.ndim - 2)
    return _affine(
        x, None if weight is None else weight.reshape(per_channel), None if bias is None else bias.reshape(per_channel)
    )


def instance_norm(
    input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True, momentum=0.1, eps=1e-5
):
    if not use_input_stats:
        raise NotImplementedError("instance_norm: only use_input_stats=True is supported")
    return group_norm(input, input.shape[1], weight, bias, eps)


def one_hot(tensor, num_classes=-1):
    if tensor.is_floating_point():
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    n = int(tensor.max()) + 1 if num_classes == -1 else num_classes
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) >= n):
        raise RuntimeError(f"Class values must be smaller than num_classes ({n}) and non-negative.")
    return (tensor.unsqueeze(-1) == arange(n, device=tensor.device)).long()


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    from ..linalg import vector_norm

    return input / vector_norm(input, p, dim, keepdim=True).clamp(min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    from ..linalg import vector_norm

    n = (vector_norm(x1, 2, dim) * vector_norm(x2, 2, dim)).clamp(min=eps)
    return (x1 * x2).sum(dim) / n


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    from ..linalg import vector_norm

    return vector_norm(x1 - x2 + eps, p, -1, keepdim)


def pixel_shuffle(input, upscale_factor):
    r = upscale_factor
    *lead, c, h, w = input.shape
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    n = len(lead)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Nearest-neighbour resizing of the spatial dims (mode='nearest'), as torch's."""
    if mode != "nearest":
        raise NotImplementedError(f"interpolate: only mode='nearest' is supported, got {mode!r}")
    spatial = input.shape[2:]
    if size is None:
        scales = scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor] * len(spatial)
        size = [int(math.floor(n * s)) for n, s in zip(spatial, scales)]
    else:
        scales = None
        size = list(size) if isinstance(size, (tuple, list)) else [size] * len(spatial)
    out = input
    for i, (n, m) in enumerate(zip(spatial, size)):
        step = (1 / scales[i]) if scales is not None else n / m
        src = (arange(m, device=input.device) * step).floor().long().clamp(max=n - 1)
        out = out.index_select(2 + i, src)
    return out


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = query @ key.transpose(-2, -1) * scale
    if is_causal:
        L, S = scores.shape[-2:]
        attn_mask = arange(L, device=query.device).reshape(L, 1) >= arange(S, device=query.device)
    if attn_mask is not None:
        scores = _C.where(attn_mask, scores, -math.inf) if attn_mask.dtype == _C.bool else scores + attn_mask
    weights = dropout(scores.softmax(-1), dropout_p) if dropout_p else scores.softmax(-1)
    return weights @ value


def _patches(shape, kernel_size, dilation, padding, stride):
    """(kh, kw), (dh, dw), (ph, pw), (sh, sw) and the number of patch positions (oh, ow) over an
    [H, W] plane, as unfold and fold need."""
    k, d, p, s = (_pair(v) for v in (kernel_size, dilation, padding, stride))
    out = [(n + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, n in enumerate(shape)]
    return k, d, p, s, out


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """The sliding kH x kW patches of [N, C, H, W] as columns: [N, C*kH*kW, L] (im2col)."""
    (kh, kw), (dh, dw), (ph, pw), (sh, sw), (oh, ow) = _patches(input.shape[2:], kernel_size, dilation, padding, stride)
    x = pad(input, (pw, pw, ph, ph))
    taps = [
        x[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    n, c = input.shape[:2]
    return _C.stack(taps, 2).reshape(n, c * kh * kw, oh * ow)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """unfold's adjoint: columns [N, C*kH*kW, L] summed back into [N, C, H, W] (overlaps add)."""
    size = _pair(output_size)
    (kh, kw), (dh, dw), (ph, pw), (sh, sw), (oh, ow) = _patches(size, kernel_size, dilation, padding, stride)
    n, ckk, L = input.shape
    if ckk % (kh * kw) or L != oh * ow:
        raise RuntimeError(
            f"fold: input of shape {list(input.shape)} does not match kernel {(kh, kw)} and {oh * ow} "
            f"blocks for output_size {size}"
        )
    cols = input.reshape(n, ckk // (kh * kw), kh * kw, oh, ow)
    out = input.new_zeros((n, ckk // (kh * kw), size[0] + 2 * ph, size[1] + 2 * pw))
    for t in range(kh * kw):
        i, j = divmod(t, kw)
        out[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw] += cols[:, :, t]
    return out[:, :, ph : ph + size[0], pw : pw + size[1]]


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


def softplus(input, beta=1.0, threshold=20.0):
    x = input * beta
    # log(1 + e^x) = max(x, 0) + log(1 + e^-|x|): no overflow; linear above the threshold, as torch
    soft = (x.clamp(min=0) + ((-x.abs()).exp() + 1).log()) / beta
    return _C.where(x > threshold, input, soft)


def elu(input, alpha=1.0, inplace=False):
    out = _C.where(input > 0, input, (input.clamp(max=0).exp() - 1) * alpha)
    return input.copy_(out) if inplace else out


def selu(input, inplace=False):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    out = elu(input, alpha) * scale
    return input.copy_(out) if inplace else out


def silu(input, inplace=False):
    out = input * input.sigmoid()
    return input.copy_(out) if inplace else out


def mish(input, inplace=False):
    out = input * softplus(input).tanh()
    return input.copy_(out) if inplace else out


def hardsigmoid(input, inplace=False):
    out = (input / 6 + 0.5).clamp(0, 1)
    return input.copy_(out) if inplace else out


def hardswish(input, inplace=False):
    out = input * (input + 3).clamp(0, 6) / 6
    return input.copy_(out) if inplace else out


def softsign(input):
    return input / (input.abs() + 1)


def logsigmoid(input):
    return -softplus(-input)


def tanhshrink(input):
    return input - input.tanh()


def threshold(input, threshold, value, inplace=False):
    out = _C.where(input > threshold, input, value)
    return input.copy_(out) if inplace else out


def glu(input, dim=-1):
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def prelu(input, weight):
    w = weight.reshape([-1] + [1] * (input.ndim - 2)) if input.ndim > 1 and weight.numel() > 1 else weight
    return _C.where(input > 0, input, input * w)


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
    return _C._nll_loss(input, target, _reduction(reduction), ignore_index)


def mse_loss(input, target, reduction="mean"):
    return _C._mse_loss(input, target, _reduction(reduction))


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


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    d = (input - target).abs()
    loss = _C.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta) if beta > 0 else d
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    d = (input - target).abs()
    return _reduce(_C.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta), reduction)


def kl_div(input, target, reduction="mean", log_target=False):
    """input holds log-probabilities; target probabilities (or log-probabilities with log_target)."""
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = _C.where(target > 0, target * (target.clamp(min=1e-38).log() - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    cos = cosine_similarity(input1, input2, dim=-1)
    return _reduce(_C.where(target > 0, 1 - cos, (cos - margin).clamp(min=0)), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction="mean"):
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _C.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce((d_pos - d_neg + margin).clamp(min=0), reduction)
