"""Tensor printing, string for string as PyTorch prints (the rules of torch/_tensor_str.py), over NumPy.

The values are formatted as Python floats and ints, as PyTorch formats them (it goes through
.tolist() and .item()), so the digits agree: a float32 value prints as its exact double does.
"""

import contextlib
import dataclasses
import math

import numpy as np

from ._C import Tensor, float32, int64, bool as bool_


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_OPTS = _PrintOptions()
_PROFILES = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, math.inf, 3, 80)}


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """Options for printing tensors, as torch.set_printoptions (profile: "default", "short" or "full")."""
    # Checked before any is set: options that made every repr raise would break error messages too.
    checks = [
        ("precision", precision, lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        ("threshold", threshold, lambda v: _is_int(v) or isinstance(v, float), "a number"),
        ("edgeitems", edgeitems, lambda v: _is_int(v) and v >= 0, "an int >= 0"),
        ("linewidth", linewidth, _is_int, "an int"),
        ("sci_mode", sci_mode, lambda v: isinstance(v, bool), "None, True or False"),
    ]
    for name, value, ok, want in checks:
        if value is not None and not ok(value):
            raise ValueError(f"set_printoptions: {name} must be {want}, got {value!r}")
    if profile is not None and profile not in _PROFILES:
        raise ValueError(f"unknown print profile {profile!r}: expected one of {', '.join(_PROFILES)}")
    if profile is not None:
        _OPTS.precision, _OPTS.threshold, _OPTS.edgeitems, _OPTS.linewidth = _PROFILES[profile]
    if precision is not None:
        _OPTS.precision = precision
    if threshold is not None:
        _OPTS.threshold = threshold
    if edgeitems is not None:
        _OPTS.edgeitems = edgeitems
    if linewidth is not None:
        _OPTS.linewidth = linewidth
    _OPTS.sci_mode = sci_mode  # as PyTorch: every call sets it, so leaving it out means automatic


def get_printoptions():
    """The current print options, as a dict set_printoptions(**d) takes back."""
    return dataclasses.asdict(_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs):
    """set_printoptions(**kwargs) inside a with block only."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


class _Formatter:
    """Chooses one format (fixed, integer-valued or scientific) and one width for all the values shown."""

    def __init__(self, values, floating):
        self.floating, self.int_mode, self.sci_mode = floating, True, False
        if not floating:
            self.width = max([1] + [len(str(v)) for v in values.ravel().tolist()])
            return
        shown = values[np.isfinite(values) & (values != 0)].astype(np.float64)
        self.width = 1
        if shown.size == 0:  # zeros, nan and inf only: PyTorch keeps int mode and never goes scientific
            return
        magnitude = np.abs(shown)
        lo, hi = float(magnitude.min()), float(magnitude.max())  # Python floats: hi / lo may overflow to inf
        self.int_mode = bool(np.all(shown == np.ceil(shown)))
        if _OPTS.sci_mode is None:
            self.sci_mode = bool(hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4)
        else:
            self.sci_mode = _OPTS.sci_mode
        # the width comes from the nonzero finite values only; a wider nan, inf or -0. overflows it
        self.width = max(len(self._text(v)) for v in shown.tolist())

    def _text(self, value):
        if not self.floating:
            return str(value)
        if self.sci_mode:
            return f"{value:.{_OPTS.precision}e}"
        if self.int_mode:  # "1." says the tensor is floating; nan and inf have no point
            return f"{value:.0f}" + ("." if math.isfinite(value) else "")
        return f"{value:.{_OPTS.precision}f}"

    def __call__(self, value):
        return self._text(value).rjust(self.width)


def _shown_values(arr, edge):
    """The values printed when summarising: the first and last `edge` along every long dimension."""
    if edge == 0:  # PyTorch's quirk: a vector's x[-0:] is all of it, a matrix shows nothing
        return arr if arr.ndim == 1 else arr[:0]
    for axis, n in enumerate(arr.shape):
        if n > 2 * edge:
            arr = np.take(arr, list(range(edge)) + list(range(n - edge, n)), axis=axis)
    return arr


def _body(arr, indent, summarize, fmt):
    if arr.ndim == 0:
        return fmt(arr.item())
    edge, n = _OPTS.edgeitems, arr.shape[0]
    if arr.ndim == 1:
        if summarize and not edge:
            items = ["..."]
        elif summarize and n > 2 * edge:
            items = [fmt(v) for v in arr[:edge].tolist()] + [" ..."] + [fmt(v) for v in arr[n - edge :].tolist()]
        else:
            items = [fmt(v) for v in arr.tolist()]
        per_line = max(1, math.floor((_OPTS.linewidth - indent) / (fmt.width + 2)))
        lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    if summarize and n > 2 * edge:
        rows = [_body(arr[i], indent + 1, summarize, fmt) for i in range(edge)] + ["..."]
        rows += [_body(arr[i], indent + 1, summarize, fmt) for i in range(n - edge, n)]
    else:
        rows = [_body(arr[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _with_suffixes(text, suffixes, indent):
    """Appends ", dtype=..." and the like, each on a new line where the last line would pass linewidth."""
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1  # PyTorch's count (2 more than the line when no newline)
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > _OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    return "".join(parts) + ")"


def _dtype_str(dtype):
    return repr(dtype)  # "fastkern.float64"; tests swap it for torch's spelling to compare line breaks


def tensor_repr(t):
    from .nn.parameter import Parameter  # here: fastkern.nn imports this module's users

    prefix = "tensor(" if type(t) in (Tensor, Parameter) else f"{type(t).__name__}("
    indent = len(prefix)
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    arr = t.detach().cpu().numpy()
    if arr.size == 0:
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
        if t.dtype != float32:  # no values to tell an int64 tensor from a float one
            suffixes.append(f"dtype={_dtype_str(t.dtype)}")
        body = "[]"
    else:
        if not _OPTS.edgeitems:
            suffixes.append(f"size={tuple(arr.shape)}")
        if t.dtype not in (float32, int64, bool_):
            suffixes.append(f"dtype={_dtype_str(t.dtype)}")
        summarize = arr.size > _OPTS.threshold
        fmt = _Formatter(_shown_values(arr, _OPTS.edgeitems) if summarize else arr, t.dtype.is_floating_point)
        body = _body(arr, indent, summarize, fmt)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _with_suffixes(prefix + body, suffixes, indent)
