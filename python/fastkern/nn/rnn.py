"""Recurrent layers with torch's names, parameter names and initialisation (every weight and bias
U(+-1/sqrt(hidden_size))): RNN, LSTM and GRU (stacked, optionally bidirectional, batch_first) and
their cells. Written with fastkern ops, one time step at a time."""

import math

from .. import _C
from .._creation import empty, zeros
from . import init
from .module import Module
from .parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _cell_step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of a cell: the new (h, c) (c only for LSTM) from input x and state h, c."""
    gi = x @ w_ih.t() + (b_ih if b_ih is not None else 0)
    gh = h @ w_hh.t() + (b_hh if b_hh is not None else 0)
    if mode == "LSTM":
        i, f, g, o = (gi + gh).chunk(4, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c
    if mode == "GRU":
        ir, iz, in_ = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
        n = (in_ + r * hn).tanh()
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (pre.tanh() if mode == "RNN_TANH" else pre.relu()), None


class _RNNBase(Module):
    def __init__(
        self,
        mode,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, dropout, bidirectional
        gates, kw = _GATES[mode] * hidden_size, dict(device=device, dtype=dtype)
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[: 2 if bidirectional else 1]:
                size_in = input_size if layer == 0 else hidden_size * (2 if bidirectional else 1)
                self.register_parameter(f"weight_ih_l{layer}{suffix}", Parameter(empty(gates, size_in, **kw)))
                self.register_parameter(f"weight_hh_l{layer}{suffix}", Parameter(empty(gates, hidden_size, **kw)))
                if bias:
                    self.register_parameter(f"bias_ih_l{layer}{suffix}", Parameter(empty(gates, **kw)))
                    self.register_parameter(f"bias_hh_l{layer}{suffix}", Parameter(empty(gates, **kw)))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.hidden_size) if self.hidden_size else 0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _weights(self, layer, suffix):
        get = lambda name: getattr(self, f"{name}_l{layer}{suffix}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def forward(self, input, hx=None):
        x = input.transpose(0, 1) if self.batch_first and input.ndim == 3 else input
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        steps, batch = x.shape[:2]
        dirs = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        shape = (self.num_layers * dirs, batch, self.hidden_size)
        if hx is None:
            h0 = zeros(*shape, dtype=x.dtype, device=x.device)
            c0 = h0 if lstm else None
        else:
            h0, c0 = hx if lstm else (hx, None)
            if unbatched:
                h0, c0 = h0.unsqueeze(1), (c0.unsqueeze(1) if lstm else None)
        hs, cs = [], []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:dirs]):
                k = layer * dirs + d
                h, c = h0[k], (c0[k] if lstm else None)
                seq = []
                for t in range(steps)[:: -1 if d else 1]:
                    h, c = _cell_step(self.mode, x[t], h, c, *self._weights(layer, suffix))
                    seq.append(h)
                outs.append(_C.stack(seq[::-1] if d else seq))
                hs.append(h)
                cs.append(c)
            x = _C.cat(outs, -1) if dirs == 2 else outs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                from .functional import dropout

                x = dropout(x, self.dropout)
        h_n = _C.stack(hs)
        state = (h_n, _C.stack(cs)) if lstm else h_n
        if unbatched:
            x = x.squeeze(1)
            state = tuple(s.squeeze(1) for s in state) if lstm else state.squeeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, state

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        s += f", num_layers={self.num_layers}" if self.num_layers != 1 else ""
        s += ", batch_first=True" if self.batch_first else ""
        return s + (", bidirectional=True" if self.bidirectional else "")


class RNN(_RNNBase):
    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        nonlinearity="tanh",
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(
            f"RNN_{nonlinearity.upper()}",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
        )


class LSTM(_RNNBase):
    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(_RNNBase):
    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)


class _CellBase(Module):
    def __init__(self, mode, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        gates, kw = _GATES[mode] * hidden_size, dict(device=device, dtype=dtype)
        self.weight_ih = Parameter(empty(gates, input_size, **kw))
        self.weight_hh = Parameter(empty(gates, hidden_size, **kw))
        self.bias_ih = Parameter(empty(gates, **kw)) if bias else None
        self.bias_hh = Parameter(empty(gates, **kw)) if bias else None
        bound = 1 / math.sqrt(hidden_size) if hidden_size else 0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, input, hx=None):
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        lstm = self.mode == "LSTM"
        if hx is None:
            h = zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            c = h if lstm else None
        else:
            h, c = hx if lstm else (hx, None)
            if unbatched:
                h, c = h.unsqueeze(0), (c.unsqueeze(0) if lstm else None)
        h, c = _cell_step(self.mode, x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if unbatched:
            h, c = h.squeeze(0), (c.squeeze(0) if lstm else None)
        return (h, c) if lstm else h


class RNNCell(_CellBase):
    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, bias, device, dtype)


class LSTMCell(_CellBase):
    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRUCell(_CellBase):
    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)
