"""Pure-Python stand-ins for functional ops that the C++ library does not have yet.

The layers call ``fastkern.nn.functional.<op>`` when it exists and these otherwise,
so models work (slowly) on any build. Written with tensor ops only, so autograd
comes for free. PyTorch signatures and NCHW layouts.
"""
import math

from .. import _C
from .._creation import full


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _patches(x, k, stride, padding, dilation, pad_value=0.0):
    """(N, C, H, W) -> (N, C, kh*kw, OH, OW): one strided slice per kernel offset (im2col)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (k, stride, padding, dilation))
    n, c, h, w = x.shape
    if ph or pw:
        padded = full((n, c, h + 2 * ph, w + 2 * pw), pad_value, dtype=x.dtype)
        padded[:, :, ph:ph + h, pw:pw + w] = x
        x, h, w = padded, h + 2 * ph, w + 2 * pw
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise RuntimeError(f"input of spatial size {(h, w)} (padded) is too small for kernel {(kh, kw)}")
    cols = [x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]
    return _C.stack(cols, 2), oh, ow


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    n, c = input.shape[:2]
    o, cg, kh, kw = weight.shape
    if c != cg * groups:
        raise RuntimeError(f"conv2d: input has {c} channels, weight {list(weight.shape)} with groups={groups} "
                           f"expects {cg * groups}")
    cols, oh, ow = _patches(input, (kh, kw), stride, padding, dilation)
    cols = cols.reshape(n, groups, cg * kh * kw, oh * ow)
    out = weight.reshape(groups, o // groups, cg * kh * kw) @ cols  # (N, G, O/G, OH*OW)
    out = out.reshape(n, o, oh, ow)
    return out if bias is None else out + bias.reshape(1, o, 1, 1)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    cols, _, _ = _patches(input, kernel_size, stride or kernel_size, padding, dilation, -math.inf)
    return cols.amax(2)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    cols, _, _ = _patches(input, kernel_size, stride or kernel_size, padding, 1)
    return cols.mean(2)


def adaptive_avg_pool2d(input, output_size):
    oh, ow = _pair(output_size)
    h, w = input.shape[-2:]
    oh, ow = oh or h, ow or w
    # bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)), as PyTorch
    rows = [input[..., (i * h) // oh:-(-(i + 1) * h // oh), :] for i in range(oh)]
    out = [[r[..., (j * w) // ow:-(-(j + 1) * w // ow)].mean((-2, -1)) for j in range(ow)] for r in rows]
    return _C.stack([_C.stack(r, -1) for r in out], -2)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    c = input.shape[1]
    dims = tuple(d for d in range(input.ndim) if d != 1)
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        mean, var = input.mean(dims), input.var(dims, correction=0)
        if running_mean is not None:
            n = input.numel() // c
            with _no_grad():  # running stats use the unbiased variance, as PyTorch
                running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                running_var.mul_(1 - momentum).add_(var.detach() * (momentum * n / max(n - 1, 1)))
    else:
        mean, var = running_mean, running_var
    out = (input - mean.reshape(shape)) * (var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


def embedding(input, weight, padding_idx=None):
    return weight[input.reshape(-1)].reshape(*input.shape, weight.shape[1])


def gelu(input, approximate="none"):
    # The library has no erf yet: the tanh form is within 1e-3 of exact gelu.
    return 0.5 * input * (1 + ((input + 0.044715 * input * input * input) * math.sqrt(2 / math.pi)).tanh())


def _no_grad():
    from .._grad_mode import no_grad
    return no_grad()

