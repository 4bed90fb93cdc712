"""More activation modules (each a thin wrapper of its nn.functional form), PReLU with its
learnable slope, and MultiheadAttention."""

import math

from .. import _C
from .._creation import empty, full, zeros
from . import functional as F
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter


class _Elementwise(Module):
    """A parameter-free activation: forward is F.<fn>(x, *settings) for the settings __init__ keeps
    (named in _settings, in F.<fn>'s order)."""

    _fn = None
    _settings = ()

    def __init__(self, *args, **kwargs):
        super().__init__()
        defaults = dict(self._settings)
        values = dict(zip(defaults, args), **kwargs)
        unknown = set(values) - set(defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {sorted(unknown)}")
        for name, default in defaults.items():
            setattr(self, name, values.get(name, default))

    def forward(self, x):
        return type(self)._fn(x, *(getattr(self, name) for name, _ in self._settings))

    def extra_repr(self):
        return ", ".join(f"{name}={getattr(self, name)}" for name, _ in self._settings)


def _activation(name, fn, *settings):
    return type(name, (_Elementwise,), {"_fn": staticmethod(fn), "_settings": settings, "__module__": __name__})


ELU = _activation("ELU", F.elu, ("alpha", 1.0), ("inplace", False))
SELU = _activation("SELU", F.selu, ("inplace", False))
SiLU = _activation("SiLU", F.silu, ("inplace", False))
Mish = _activation("Mish", F.mish, ("inplace", False))
Hardswish = _activation("Hardswish", F.hardswish, ("inplace", False))
Hardsigmoid = _activation("Hardsigmoid", F.hardsigmoid, ("inplace", False))
Softplus = _activation("Softplus", F.softplus, ("beta", 1.0), ("threshold", 20.0))
Softsign = _activation("Softsign", F.softsign)
Tanhshrink = _activation("Tanhshrink", F.tanhshrink)
LogSigmoid = _activation("LogSigmoid", F.logsigmoid)
GLU = _activation("GLU", F.glu, ("dim", -1))
Threshold = _activation("Threshold", F.threshold, ("threshold", 0.0), ("value", 0.0), ("inplace", False))


class PReLU(Module):
    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(full((num_parameters,), init, device=device, dtype=dtype))

    def forward(self, x):
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention with its parameter names (in_proj_weight [3E, E], in_proj_bias,
    out_proj) for query, key and value of one embedding size; batch_first as torch's."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim must be divisible by num_heads (got {embed_dim} and {num_heads})")
        kw = dict(device=device, dtype=dtype)
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
        self.in_proj_bias = Parameter(zeros(3 * embed_dim, **kw)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights=True,
        attn_mask=None,
        average_attn_weights=True,
        is_causal=False,
    ):
        if not self.batch_first:  # [L, N, E] -> [N, L, E]
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, lq, e = query.shape
        w, b = (
            self.in_proj_weight.chunk(3),
            (self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None,) * 3),
        )

        def heads(x, i):  # [N, L, E] -> [N, H, L, D]
            return F.linear(x, w[i], b[i]).reshape(n, -1, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(query, 0), heads(key, 1), heads(value, 2)
        scores = q @ k.transpose(-2, -1) * (1 / math.sqrt(self.head_dim))
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask, -math.inf) if attn_mask.dtype == _C.bool else scores + attn_mask
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask.reshape(n, 1, 1, -1), -math.inf)
        weights = scores.softmax(-1)
        attn = F.dropout(weights, self.dropout, self.training) @ v
        out = self.out_proj(attn.transpose(1, 2).reshape(n, lq, e))
        if not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        return out, weights.mean(1) if average_attn_weights else weights
