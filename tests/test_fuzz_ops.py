"""Differential fuzzing of fastkern ops against NumPy (float64 oracle) and PyTorch.

Hypothesis builds random *programs*: a start tensor (shape with 0/1/prime sides and up
to 4 dims; dtype float32/float64/int64/bool/uint8; layout contiguous, transposed,
permuted, stepped slice, expanded/broadcast or unsqueezed view; float values that are
sometimes +-inf/NaN) followed by 1-6 steps drawn from OPS (elementwise unary/binary ops,
comparisons, where, clamp, reductions, matmul, shape ops, indexing, in-place ops on
views, nn.functional ops).  Every step runs in three places:

* fastkern, on the program's running value;
* NumPy in float64, re-synchronised on fastkern's input values for the step (so
  float32 round-off does not accumulate), the result cast to the step's result dtype
  and compared with dtype-appropriate tolerances (NaN positions compare equal);
* PyTorch (when installed), running the same program on its own running value: the
  result dtype and shape must match fastkern's, an exception in one must be an
  exception (RuntimeError/ValueError/IndexError/TypeError) in the other, and values
  are compared while torch's running value still agrees with fastkern's.

For float programs on finite inputs the whole program is re-run in float64 with a leaf
that requires grad, in fastkern and torch, and the gradients of a random weighted sum
of the result are compared.

test_fuzz_threads runs short programs on big tensors (>= 2 * 65536 elements, so that the
kernels split the work) with 2-4 threads and with 1: errors must agree, values must be
identical (reductions within round-off).

One-line repros of what these fuzzers found are in tests/test_fuzz_found.py.

Profiles:
  quick (default, CI):  derandomized, a few hundred programs, well under a minute
      python -m pytest -q tests/test_fuzz_ops.py
  long (by hand):       >= 100k programs in total, random seeds
      FASTKERN_FUZZ=long nice python -m pytest -q -s tests/test_fuzz_ops.py
  FASTKERN_FUZZ_EXAMPLES=N overrides the number of programs (the thread test runs N/20);
  FASTKERN_FUZZ_COLLECT=file.jsonl records every mismatch to the file and keeps going
      (instead of failing on, and shrinking, the first one), for bug hunting runs.
The number of programs run is printed at the end (with -s) and appended to
$FASTKERN_FUZZ_COUNT_FILE when that is set.
"""

import json
import math
import os
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastkern as fk
import fastkern.nn.functional as F
from helpers import NP_DTYPES, dtype_name, torch

if torch is not None:
    import torch.nn.functional as TF

# ----------------------------------------------------------------------------- profiles
_MODE = os.environ.get("FASTKERN_FUZZ", "quick")
_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("fuzz-quick", derandomize=True, max_examples=300, database=None, **_COMMON)
settings.register_profile("fuzz-long", derandomize=False, max_examples=100_000, **_COMMON)
_PROFILE = settings.get_profile("fuzz-long" if _MODE == "long" else "fuzz-quick")
if os.environ.get("FASTKERN_FUZZ_EXAMPLES"):
    _PROFILE = settings(_PROFILE, max_examples=int(os.environ["FASTKERN_FUZZ_EXAMPLES"]))
_COLLECT = os.environ.get("FASTKERN_FUZZ_COLLECT")
COUNTS = {"programs": 0, "steps": 0, "grad_checks": 0, "mismatches": 0}
_ERRORS = (RuntimeError, ValueError, IndexError, TypeError)
_F = ("float32", "float64")
# torch errors that are torch limitations rather than argument errors
_TORCH_LIMITS = (
    "not implemented for",
    "Only zero batch or zero channel inputs are supported",
    "Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size",
)
_ALL = ("float32", "float64", "int64", "bool", "uint8")


class Mismatch(AssertionError):
    pass


def _report(kind, program, detail):
    COUNTS["mismatches"] += 1
    msg = f"[{kind}] {detail}\n  program: {program}"
    if _COLLECT:
        with open(_COLLECT, "a") as f:
            f.write(json.dumps({"kind": kind, "detail": str(detail)[:2000], "program": program}) + "\n")
        return
    raise Mismatch(msg)


# ----------------------------------------------------------------------------- modules
def mk(m, arr, dtype):
    """A tensor of module m (fastkern or torch) from a NumPy array."""
    a = np.array(np.asarray(arr).astype(NP_DTYPES[dtype]), order="C", copy=True)
    if m is fk:
        return fk.tensor(a)
    return torch.tensor(a)


def mdtype(m, name):
    return getattr(m, name)


def to_np(t):
    if torch is not None and isinstance(t, torch.Tensor):
        return t.detach().numpy().copy()
    return np.array(t.detach().contiguous().numpy(), copy=True)


def cast_like(ref, dtype):
    """The float64 oracle result in the step's result dtype (wrapping like C ints)."""
    ref = np.asarray(ref, dtype=np.float64)
    if dtype == "bool":
        return ref != 0
    if dtype in ("int64", "uint8"):
        with np.errstate(all="ignore"):
            r = np.trunc(ref)
            if dtype == "uint8":
                return np.mod(r, 256).astype(np.uint8)
            return r.astype(np.int64)
    with np.errstate(all="ignore"):
        return ref.astype(NP_DTYPES[dtype])


def _erf(a):
    return np.vectorize(math.erf, otypes=[np.float64])(a) if a.size else a.astype(np.float64)


def _sigmoid(a):
    with np.errstate(all="ignore"):
        return np.where(a >= 0, 1 / (1 + np.exp(-a)), np.exp(a) / (1 + np.exp(a)))


def _lse(a, dim, keepdim=False):
    if a.shape[dim] == 0:
        r = np.full(np.sum(a, axis=dim, keepdims=True).shape, -np.inf)
    else:
        m = np.max(a, axis=dim, keepdims=True)
        m0 = np.where(np.isfinite(m), m, 0)
        r = np.log(np.sum(np.exp(a - m0), axis=dim, keepdims=True)) + m0
    return r if keepdim else np.squeeze(r, axis=dim)


def _log_softmax(a, dim):
    """PyTorch's: a row whose max is +inf is NaN throughout (x - max is NaN there)."""
    m = np.max(a, axis=dim, keepdims=True) if a.shape[dim] else np.zeros(())
    return np.where(m == np.inf, np.nan, a - _lse(a, dim, True))


def _softmax(a, dim):
    return np.exp(_log_softmax(a, dim))


def _gelu(a):
    return a * 0.5 * (1 + _erf(a / math.sqrt(2)))


def _var(a, dim, keepdim, correction):
    n = a.shape[dim] if dim is not None else a.size
    mean = np.mean(a, axis=dim, keepdims=True)
    s = np.sum((a - mean) ** 2, axis=dim, keepdims=keepdim)
    return s / (n - correction) if n - correction > 0 else s * np.nan


# ----------------------------------------------------------------------------- ops
# An op: name -> Op(arity, dtypes it is defined on, params strategy builder,
# fn(m, x, p) for fastkern and torch, np_fn(a, p) float64 oracle, flags).
class Op:
    def __init__(
        self,
        name,
        fn,
        np_fn,
        *,
        dtypes=_ALL,
        params=None,
        min_ndim=0,
        grad=True,
        smooth=True,
        red=False,
        tol=None,
        idx_out=False,
        torch_inf=True,
    ):
        self.name, self.fn, self.np_fn, self.dtypes = name, fn, np_fn, dtypes
        self.params = params or (lambda data, shape, dtype: {})
        self.min_ndim, self.grad, self.smooth, self.red = min_ndim, grad, smooth, red
        self.tol, self.idx_out = tol, idx_out
        self.torch_inf = torch_inf  # False: torch's own values at +-inf inputs are wrong (gelu(inf) = nan)


OPS = {}


def op(name, fn, np_fn, **kw):
    OPS[name] = Op(name, fn, np_fn, **kw)


def _dim(data, shape, allow_bad=True):
    nd = max(len(shape), 1)
    if allow_bad:
        return data.draw(st.integers(-nd - 1, nd), label="dim")
    return data.draw(st.integers(-nd, nd - 1), label="dim")


def _bshape(data, shape):
    """A shape broadcastable with `shape` (sometimes not: error parity)."""
    kind = data.draw(st.sampled_from(["same", "suffix", "ones", "scalar", "bad", "bigger"]), label="bshape")
    s = list(shape)
    if kind == "same":
        return tuple(s)
    if kind == "suffix":
        return tuple(s[data.draw(st.integers(0, len(s)), label="cut") :])
    if kind == "ones":
        return tuple(1 if data.draw(st.booleans(), label="one") else d for d in s)
    if kind == "scalar":
        return ()
    if kind == "bigger":
        return (data.draw(st.sampled_from([1, 2, 3]), label="lead"),) + tuple(s) if len(s) < 4 else tuple(s)
    return tuple(d + 1 for d in s) if s else (2,)


def _values(data, shape, dtype, special=True):
    n = int(np.prod(shape)) if shape else 1
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    kind = data.draw(st.sampled_from(["normal", "ints", "wide", "pos"]), label="vals")
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "uint8":
        return rng.integers(0, 256 if kind == "wide" else 6, size=shape).astype(np.uint8)
    if dtype == "int64":
        hi = 1000 if kind == "wide" else 5
        return rng.integers(-hi, hi + 1, size=shape).astype(np.int64)
    if kind == "normal":
        a = rng.standard_normal(shape) * 2
    elif kind == "ints":
        a = rng.integers(-3, 4, size=shape).astype(np.float64)
    elif kind == "wide":
        a = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)
    else:
        a = rng.uniform(0.25, 3, size=shape)
    if special and n and data.draw(st.integers(0, 9), label="special") == 0:
        flat = np.asarray(a, dtype=np.float64).reshape(-1)
        for _ in range(data.draw(st.integers(1, 3), label="nspecial")):
            flat[rng.integers(0, n)] = rng.choice([np.inf, -np.inf, np.nan])
        a = flat.reshape(shape)
    return np.asarray(a, dtype=np.float64)


def _operand(data, shape, dtype_choices, x_dtype):
    same = data.draw(st.integers(0, 3), label="same_dtype") > 0
    dtype = x_dtype if same or not dtype_choices else data.draw(st.sampled_from(dtype_choices), label="odtype")
    return {"y": _values(data, shape, dtype), "ydt": dtype}


def _y(m, p):
    return mk(m, p["y"], p["ydt"])


def binparams(dtypes=_ALL):
    return lambda data, shape, dtype: _operand(data, _bshape(data, shape), dtypes, dtype)


def _np_y(p):
    return np.asarray(p["y"]).astype(NP_DTYPES[p["ydt"]]).astype(np.float64)


def scalar_params(kinds=("int", "float")):
    def build(data, shape, dtype):
        k = data.draw(st.sampled_from(kinds), label="skind")
        if k == "int":
            return {"s": data.draw(st.integers(-4, 4), label="s")}
        return {"s": data.draw(st.sampled_from([0.5, -1.5, 2.0, 0.0, 3.25, -0.75]), label="s")}

    return build


def _trig_tol(a, p, dt):
    return 1e-5 + 1e-6 * np.abs(a)


# -- elementwise unary
for _n, _f, _nf, _dt, _sm in [
    ("neg", lambda m, x, p: -x, np.negative, ("float32", "float64", "int64", "uint8", "bool"), True),
    ("abs", lambda m, x, p: x.abs(), np.abs, _ALL, False),
    ("exp", lambda m, x, p: x.exp(), np.exp, _ALL, True),
    ("log", lambda m, x, p: x.log(), np.log, _ALL, True),
    ("sqrt", lambda m, x, p: x.sqrt(), np.sqrt, _ALL, True),
    ("rsqrt", lambda m, x, p: x.rsqrt(), lambda a: 1 / np.sqrt(a), _ALL, True),
    ("tanh", lambda m, x, p: x.tanh(), np.tanh, _ALL, True),
    ("sigmoid", lambda m, x, p: x.sigmoid(), _sigmoid, _ALL, True),
    ("erf", lambda m, x, p: x.erf(), _erf, _ALL, True),
    ("relu", lambda m, x, p: x.relu(), lambda a: np.maximum(a, 0), ("float32", "float64", "int64", "uint8"), False),
    ("floor", lambda m, x, p: x.floor(), np.floor, _ALL, False),
    ("ceil", lambda m, x, p: x.ceil(), np.ceil, _ALL, False),
    ("trunc", lambda m, x, p: x.trunc(), np.trunc, _ALL, False),
    ("round", lambda m, x, p: x.round(), np.round, _ALL, False),
    ("sign", lambda m, x, p: x.sign(), lambda a: np.where(np.isnan(a), 0.0, np.sign(a)), _ALL, False),
    ("logical_not", lambda m, x, p: x.logical_not(), lambda a: a == 0, _ALL, False),
    ("bitwise_not", lambda m, x, p: ~x, None, ("int64", "bool", "uint8", "float32"), False),
    ("square", lambda m, x, p: x * x, np.square, _ALL, True),
    ("recip", lambda m, x, p: 1 / x, lambda a: 1 / a, _ALL, True),
]:
    op(_n, _f, (lambda nf: lambda a, p: nf(a))(_nf) if _nf else None, dtypes=_dt, smooth=_sm)
for _n, _f in [("sin", lambda m, x, p: x.sin()), ("cos", lambda m, x, p: x.cos())]:
    op(_n, _f, (lambda n: lambda a, p: getattr(np, n)(a))(_n), tol=_trig_tol)

# -- scalar forms
op("add_s", lambda m, x, p: x + p["s"], lambda a, p: a + p["s"], params=scalar_params())
op(
    "rsub_s",
    lambda m, x, p: p["s"] - x,
    lambda a, p: p["s"] - a,
    params=scalar_params(),
    dtypes=("float32", "float64", "int64", "uint8"),
)
op("mul_s", lambda m, x, p: x * p["s"], lambda a, p: a * p["s"], params=scalar_params())
op("div_s", lambda m, x, p: x / p["s"], lambda a, p: a / p["s"], params=scalar_params())
op(
    "pow_s",
    lambda m, x, p: x ** p["s"],
    lambda a, p: np.power(a, p["s"]),
    params=lambda d, s, t: {"s": d.draw(st.sampled_from([2, 3, 0.5, -1, 2.0, 0, 1.5]), label="s")},
    dtypes=_F + ("int64",),
    tol=lambda a, p, dt: 1e-5,
)
op("rpow_s", lambda m, x, p: 2**x, lambda a, p: np.power(2.0, a), dtypes=_F)
op(
    "fdiv_s",
    lambda m, x, p: x // p["s"],
    lambda a, p: np.floor_divide(a, p["s"]),
    params=scalar_params(),
    dtypes=_F + ("int64",),
    smooth=False,
)
op(
    "mod_s",
    lambda m, x, p: x % p["s"],
    lambda a, p: np.mod(a, p["s"]),
    params=scalar_params(),
    dtypes=_F + ("int64",),
    smooth=False,
)
for _n, _f, _nf in [
    ("lt_s", lambda m, x, p: x < p["s"], np.less),
    ("ge_s", lambda m, x, p: x >= p["s"], np.greater_equal),
    ("eq_s", lambda m, x, p: x == p["s"], np.equal),
    ("ne_s", lambda m, x, p: x != p["s"], np.not_equal),
]:
    op(_n, _f, (lambda nf: lambda a, p: nf(a, p["s"]))(_nf), params=scalar_params(), smooth=False)

# -- binary tensor-tensor (y is a constant operand with its own dtype and shape)
for _n, _f, _nf, _sm in [
    ("add", lambda m, x, p: x + _y(m, p), np.add, True),
    ("sub", lambda m, x, p: x - _y(m, p), np.subtract, True),
    ("mul", lambda m, x, p: x * _y(m, p), np.multiply, True),
    ("div", lambda m, x, p: x / _y(m, p), np.divide, True),
    ("rdiv", lambda m, x, p: _y(m, p) / x, lambda a, b: b / a, True),
    ("maximum", lambda m, x, p: m.maximum(x, _y(m, p)), np.maximum, False),
    ("minimum", lambda m, x, p: m.minimum(x, _y(m, p)), np.minimum, False),
    ("eq", lambda m, x, p: x == _y(m, p), np.equal, False),
    ("lt", lambda m, x, p: x < _y(m, p), np.less, False),
    ("ge", lambda m, x, p: x >= _y(m, p), np.greater_equal, False),
    ("logical_and", lambda m, x, p: m.logical_and(x, _y(m, p)), lambda a, b: (a != 0) & (b != 0), False),
    ("logical_xor", lambda m, x, p: m.logical_xor(x, _y(m, p)), lambda a, b: (a != 0) ^ (b != 0), False),
    ("bitwise_and", lambda m, x, p: x & _y(m, p), None, False),
    ("bitwise_or", lambda m, x, p: x | _y(m, p), None, False),
    ("where", lambda m, x, p: m.where(x > 0, x, _y(m, p)), lambda a, b: np.where(a > 0, a, b), False),
    ("where_rev", lambda m, x, p: m.where(_y(m, p) > 0, _y(m, p), x), lambda a, b: np.where(b > 0, b, a), False),
]:
    op(_n, _f, (lambda nf: lambda a, p: nf(a, _np_y(p)))(_nf) if _nf else None, params=binparams(), smooth=_sm)
op(
    "pow",
    lambda m, x, p: x.abs() ** _y(m, p),
    lambda a, p: np.power(np.abs(a), _np_y(p)),
    params=binparams(_F),
    dtypes=_F,
    tol=lambda a, p, dt: 1e-5,
)
op(
    "fdiv",
    lambda m, x, p: x // _y(m, p),
    lambda a, p: np.floor_divide(a, _np_y(p)),
    params=binparams(_F + ("int64",)),
    dtypes=_F + ("int64",),
    smooth=False,
)
op(
    "mod",
    lambda m, x, p: x % _y(m, p),
    lambda a, p: np.mod(a, _np_y(p)),
    params=binparams(_F + ("int64",)),
    dtypes=_F + ("int64",),
    smooth=False,
)


# -- clamp
def _clamp_params(data, shape, dtype):
    lo = data.draw(st.sampled_from([None, -1, -0.5, 0, 1.5]), label="lo")
    hi = data.draw(st.sampled_from([None, 1, 0.5, 2, -1]), label="hi")
    return {"lo": lo, "hi": hi}


def _np_clamp(a, p):
    r = a
    if p["lo"] is not None:
        r = np.where(np.isnan(r), r, np.maximum(r, p["lo"]))
    if p["hi"] is not None:
        r = np.where(np.isnan(r), r, np.minimum(r, p["hi"]))
    return r


op(
    "clamp",
    lambda m, x, p: x.clamp(min=p["lo"], max=p["hi"]),
    _np_clamp,
    params=_clamp_params,
    dtypes=("float32", "float64", "int64", "uint8"),
    smooth=False,
)


# -- reductions
def _red_params(keep=True):
    def build(data, shape, dtype):
        p = {"dim": _dim(data, shape)}
        if keep:
            p["keepdim"] = data.draw(st.booleans(), label="keepdim")
        return p

    return build


def _np_red(f):
    def g(a, p):
        d = p["dim"] % max(a.ndim, 1) if a.ndim else None
        r = f(a, d) if d is not None else f(a.reshape(1), 0)
        if a.ndim == 0:
            return np.asarray(r).reshape(())
        return np.expand_dims(r, d) if p.get("keepdim") else r

    return g


def _np_amax(a, d):
    if a.shape[d] == 0:
        raise ValueError("empty")
    return np.max(a, axis=d)


op(
    "sum",
    lambda m, x, p: x.sum(p["dim"], keepdim=p["keepdim"]),
    _np_red(lambda a, d: np.sum(a, axis=d)),
    params=_red_params(),
    red=True,
)
op("sum_all", lambda m, x, p: x.sum(), lambda a, p: np.sum(a), red=True)
op(
    "mean",
    lambda m, x, p: x.mean(p["dim"], keepdim=p["keepdim"]),
    _np_red(lambda a, d: np.mean(a, axis=d)),
    params=_red_params(),
    red=True,
)
op("mean_all", lambda m, x, p: x.mean(), lambda a, p: np.mean(a), red=True)
op(
    "prod",
    lambda m, x, p: x.prod(p["dim"], keepdim=p["keepdim"]),
    _np_red(lambda a, d: np.prod(a, axis=d)),
    params=_red_params(),
    red=True,
    grad=False,
)
op(
    "amax",
    lambda m, x, p: x.amax(p["dim"], keepdim=p["keepdim"]),
    _np_red(_np_amax),
    params=_red_params(),
    red=True,
    smooth=False,
)
op(
    "amin",
    lambda m, x, p: x.amin(p["dim"], keepdim=p["keepdim"]),
    _np_red(lambda a, d: -_np_amax(-a, d)),
    params=_red_params(),
    red=True,
    smooth=False,
)
op(
    "max_dim",
    lambda m, x, p: x.max(p["dim"], keepdim=p["keepdim"]).values,
    _np_red(_np_amax),
    params=_red_params(),
    red=True,
    smooth=False,
)
op(
    "max_dim_idx",
    lambda m, x, p: x.max(p["dim"], keepdim=p["keepdim"]).indices,
    None,
    params=_red_params(),
    red=True,
    smooth=False,
    idx_out=True,
)
op(
    "argmax",
    lambda m, x, p: x.argmax(p["dim"], keepdim=p["keepdim"]),
    None,
    params=_red_params(),
    red=True,
    smooth=False,
    idx_out=True,
)
op("max_all", lambda m, x, p: x.max(), lambda a, p: np.max(a) if a.size else np.float64("x"), red=True, smooth=False)


def _spread_tol(power):
    """Absolute error of a float32/64 spread (std: power 1, var: 2) of values near max|x|: the
    rounding of the mean alone leaves deviations of eps * max|x| (fastkern accumulates in float64,
    torch's float32 std of seven equal values is 1.6e-5, not 0)."""

    def tol(a, p, dt):
        big = float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0))
        return np.array([(8 * np.finfo(dt).eps * big) ** power * (1 if power == 1 else 4)])

    return tol


op(
    "var",
    lambda m, x, p: x.var(p["dim"], keepdim=p["keepdim"], unbiased=p["unb"]),
    lambda a, p: _np_red(lambda b, d: _var(b, d, False, int(p["unb"])))(a, p),
    params=lambda d, s, t: {**_red_params()(d, s, t), "unb": d.draw(st.booleans(), label="unb")},
    red=True,
    dtypes=_F,
    tol=_spread_tol(2),
)
op(
    "std",
    lambda m, x, p: x.std(p["dim"], keepdim=p["keepdim"]),
    lambda a, p: _np_red(lambda b, d: np.sqrt(_var(b, d, False, 1)))(a, p),
    params=_red_params(),
    red=True,
    dtypes=_F,
    tol=_spread_tol(1),
)
op(
    "logsumexp",
    lambda m, x, p: x.logsumexp(p["dim"], keepdim=p["keepdim"]),
    lambda a, p: _np_red(lambda b, d: _lse(b, d))(a, p),
    params=_red_params(),
    red=True,
    dtypes=_F,
)
op(
    "softmax",
    lambda m, x, p: x.softmax(p["dim"]),
    lambda a, p: _softmax(a, p["dim"] % a.ndim) if a.ndim else np.where(np.isfinite(a), 1.0, np.nan),  # as torch
    params=_red_params(False),
    red=True,
    dtypes=_F,
)
op(
    "log_softmax",
    lambda m, x, p: x.log_softmax(p["dim"]),
    lambda a, p: _log_softmax(a, p["dim"] % a.ndim) if a.ndim else a - a,
    params=_red_params(False),
    red=True,
    dtypes=_F,
)


# -- matmul: y's shape is chosen to fit (or, sometimes, not to)
def _mm_params(data, shape, dtype):
    k = shape[-1] if shape else 1
    if data.draw(st.integers(0, 9), label="mm_bad") == 0:
        k += 1
    yshape = (k,) if data.draw(st.booleans(), label="vec") else (k, data.draw(st.sampled_from([0, 1, 3, 5]), label="n"))
    if len(yshape) == 2 and data.draw(st.booleans(), label="batch") and len(shape) >= 3:
        yshape = (shape[-3],) + yshape
    return _operand(data, yshape, _F, dtype)


op(
    "matmul",
    lambda m, x, p: x @ _y(m, p),
    lambda a, p: np.matmul(a, _np_y(p)),
    params=_mm_params,
    dtypes=_F + ("int64",),
    min_ndim=1,
    red=True,
)


# -- shape ops
def _reshape_params(data, shape, dtype):
    n = int(np.prod(shape)) if shape else 1
    divs = [d for d in range(1, n + 1) if n % d == 0] or [1]
    a = data.draw(st.sampled_from(divs), label="a")
    kind = data.draw(st.sampled_from(["2d", "infer", "flat", "bad"]), label="rkind")
    if kind == "2d":
        return {"shape": (a, n // a) if n else (a, 0)}
    if kind == "infer":
        return {"shape": (-1, a) if n or a else (-1, 1)}
    if kind == "flat":
        return {"shape": (-1,)}
    return {"shape": (n + 1,)}


op("reshape", lambda m, x, p: x.reshape(*p["shape"]), lambda a, p: a.reshape(p["shape"]), params=_reshape_params)
op("view", lambda m, x, p: x.view(*p["shape"]), lambda a, p: a.reshape(p["shape"]), params=_reshape_params)
op(
    "permute",
    lambda m, x, p: x.permute(*p["perm"]),
    lambda a, p: np.transpose(a, p["perm"]),
    params=lambda d, s, t: {"perm": tuple(d.draw(st.permutations(range(len(s))), label="perm"))},
    min_ndim=1,
)
op(
    "transpose",
    lambda m, x, p: x.transpose(p["d0"], p["d1"]),
    lambda a, p: np.swapaxes(a, p["d0"], p["d1"]) if a.ndim else a,
    params=lambda d, s, t: {"d0": _dim(d, s), "d1": _dim(d, s)},
)
op(
    "flatten",
    lambda m, x, p: x.flatten(p["s"], p["e"]),
    lambda a, p: (
        a.reshape(a.shape[: p["s"] % a.ndim] + (-1,) + a.shape[p["e"] % a.ndim + 1 :]) if a.ndim else a.reshape(1)
    ),
    params=lambda d, s, t: {"s": _dim(d, s, False), "e": _dim(d, s, False)},
)
op(
    "squeeze_dim",
    lambda m, x, p: x.squeeze(p["dim"]),
    lambda a, p: np.squeeze(a, p["dim"] % a.ndim) if a.ndim and a.shape[p["dim"] % a.ndim] == 1 else a,
    params=lambda d, s, t: {"dim": _dim(d, s)},
)
op("squeeze", lambda m, x, p: x.squeeze(), lambda a, p: np.squeeze(a))
op(
    "unsqueeze",
    lambda m, x, p: x.unsqueeze(p["dim"]),
    lambda a, p: np.expand_dims(a, p["dim"] % (a.ndim + 1)),
    params=lambda d, s, t: {"dim": d.draw(st.integers(-len(s) - 2, len(s) + 1), label="dim")},
)
op(
    "expand",
    lambda m, x, p: x.expand(*p["shape"]),
    lambda a, p: np.broadcast_to(a, tuple(d if e == -1 else e for d, e in zip(a.shape, p["shape"]))).copy(),
    params=lambda d, s, t: {
        "shape": tuple(
            d.draw(st.sampled_from([1, 2, 3, -1]), label="e")
            if v == 1
            else d.draw(st.sampled_from([v] * 12 + [-1] * 3 + [v + 1, -2]), label="eb")
            for v in s
        )
    },
    min_ndim=1,
)
op(
    "narrow",
    lambda m, x, p: x.narrow(p["dim"], p["start"], p["len"]),
    lambda a, p: np.take(
        a,
        range(
            p["start"] % max(a.shape[p["dim"] % a.ndim], 1) if p["start"] < 0 else p["start"],
            (p["start"] % max(a.shape[p["dim"] % a.ndim], 1) if p["start"] < 0 else p["start"]) + p["len"],
        ),
        axis=p["dim"] % a.ndim,
    ),
    params=lambda d, s, t: {
        "dim": (dd := _dim(d, s, False)),
        "start": d.draw(st.integers(-1, max(s[dd] if s else 1, 1)), label="st"),
        "len": d.draw(st.integers(0, 2), label="len"),
    },
    min_ndim=1,
)
op("contiguous", lambda m, x, p: x.contiguous(), lambda a, p: a)
op("clone", lambda m, x, p: x.clone(), lambda a, p: a)
op("T", lambda m, x, p: x.t(), lambda a, p: a.T, dtypes=_ALL)


def _cat_params(data, shape, dtype):
    dim = _dim(data, shape, False) if shape else 0
    ys = list(shape) or [1]
    if shape:
        ys[dim] = data.draw(st.sampled_from([0, 1, 2, 3]), label="catn")
    if data.draw(st.integers(0, 9), label="cat_bad") == 0 and ys:
        ys[(dim + 1) % len(ys)] += 1
    return {"dim": dim, **_operand(data, tuple(ys), _ALL, dtype)}


op(
    "cat",
    lambda m, x, p: m.cat([x, _y(m, p)], p["dim"]),
    lambda a, p: np.concatenate([a, _np_y(p)], p["dim"]),
    params=_cat_params,
)
op(
    "stack",
    lambda m, x, p: m.stack([x, x * 2], p["dim"]),
    lambda a, p: np.stack([a, a * 2], p["dim"] % (a.ndim + 1)),
    params=lambda d, s, t: {"dim": d.draw(st.integers(-len(s) - 1, len(s)), label="dim")},
    dtypes=("float32", "float64", "int64"),
)


# -- indexing
def _index_params(data, shape, dtype):
    kind = data.draw(
        st.sampled_from(
            ["int", "slice", "none", "ellipsis_int", "mask", "itensor", "ilist", "multi", "bare_none", "true", "false"]
        ),
        label="ikind",
    )
    if kind in ("bare_none", "true", "false"):
        return {"kind": kind}
    sz0 = shape[0] if shape else 0
    if kind == "int":
        return {"kind": kind, "i": data.draw(st.integers(-sz0 - 1, sz0), label="i")}
    if kind == "slice":
        return {
            "kind": kind,
            "sl": (
                data.draw(st.sampled_from([None, 0, 1, -1, -3, 5]), label="a"),
                data.draw(st.sampled_from([None, 0, 2, -1, 7]), label="b"),
                data.draw(st.sampled_from([None, 1, 2, 3]), label="c"),
            ),
        }
    if kind == "none":
        return {"kind": kind}
    if kind == "ellipsis_int":
        szl = shape[-1] if shape else 0
        return {"kind": kind, "i": data.draw(st.integers(-szl - 1, szl), label="i")}
    if kind == "mask":
        seed = data.draw(st.integers(0, 2**16), label="mseed")
        return {"kind": kind, "mask": np.random.default_rng(seed).random(shape) < 0.5}
    if kind in ("itensor", "ilist"):
        n = data.draw(st.integers(0, 4), label="n")
        return {
            "kind": kind,
            "idx": data.draw(st.lists(st.integers(-sz0 - 1, sz0), min_size=n, max_size=n), label="idx"),
        }
    return {"kind": kind, "i": data.draw(st.integers(-1, 1), label="i")}


def _index(m, x, p):
    k = p["kind"]
    if k == "int":
        return x[p["i"]]
    if k == "slice":
        return x[slice(*p["sl"])]
    if k == "none":
        return x[None, ..., None]
    if k == "bare_none":
        return x[None]
    if k == "true":
        return x[True]
    if k == "false":
        return x[False]
    if k == "ellipsis_int":
        return x[..., p["i"]]
    if k == "mask":
        return x[mk(m, p["mask"], "bool")]
    if k == "itensor":
        return x[mk(m, np.array(p["idx"], dtype=np.int64), "int64")]
    if k == "ilist":
        return x[:, p["idx"]] if x.ndim >= 2 else x[p["idx"]]
    return x[p["i"], ::2]


def _np_index(a, p):
    k = p["kind"]
    if k == "int":
        return a[p["i"]]
    if k == "slice":
        return a[slice(*p["sl"])]
    if k == "none":
        return a[None, ..., None]
    if k == "bare_none":
        return a[None]
    if k in ("true", "false"):
        return a[None] if k == "true" else a[None][:0]
    if k == "ellipsis_int":
        return a[..., p["i"]]
    if k == "mask":
        return a[p["mask"]]
    if k == "itensor":
        return a[np.array(p["idx"], dtype=np.int64)]
    if k == "ilist":
        return a[:, p["idx"]] if a.ndim >= 2 else a[np.array(p["idx"], dtype=np.int64)]
    return a[p["i"], ::2]


op("index", _index, _np_index, params=_index_params)


# -- in-place ops on (views of) the running value; the step's result is the whole value
def _inplace_params(data, shape, dtype):
    view = data.draw(st.sampled_from(["self", "slice", "transpose", "select", "expand"]), label="view")
    kind = data.draw(st.sampled_from(["add_", "mul_", "clamp_", "copy_", "fill_", "zero_", "sub_", "div_"]), label="ip")
    p = {"view": view, "ip": kind, "s": data.draw(st.sampled_from([2, -1, 0.5, 1.5]), label="s")}
    if kind == "copy_":
        p.update(_operand(data, data.draw(st.sampled_from([(), (1,)]), label="cshape"), _ALL, dtype))
    return p


def _view_of(x, p):
    v = p["view"]
    if v == "slice":
        return x[::2] if x.ndim else x
    if v == "transpose":
        return x.transpose(0, -1) if x.ndim else x
    if v == "select":
        return x[0] if x.ndim else x
    if v == "expand" and p["ip"] not in ("fill_", "zero_"):  # torch lets those write overlapping memory
        return x.unsqueeze(0).expand(2, *x.shape)
    return x


def _apply_ip(m, v, p):
    k = p["ip"]
    if k == "add_":
        v.add_(p["s"])
    elif k == "sub_":
        v.sub_(p["s"])
    elif k == "mul_":
        v.mul_(p["s"])
    elif k == "div_":
        v.div_(p["s"])
    elif k == "clamp_":
        v.clamp_(-1, 1)
    elif k == "copy_":
        v.copy_(_y(m, p))
    elif k == "fill_":
        v.fill_(p["s"])
    else:
        v.zero_()


def _inplace(m, x, p):
    x = x.clone()  # keep the program's earlier values (and torch's leaf) intact
    _apply_ip(m, _view_of(x, p), p)
    return x


def _np_inplace(a, p):
    a = np.array(a, copy=True)
    view = p["view"]
    if a.ndim == 0 or view == "self" or view == "expand":
        sl = Ellipsis
    elif view == "slice":
        sl = slice(None, None, 2)
    elif view == "transpose":
        sl = Ellipsis
    else:
        sl = 0
    k, s = p["ip"], p["s"]
    v = a[sl]
    if k == "add_":
        v = v + s
    elif k == "sub_":
        v = v - s
    elif k == "mul_":
        v = v * s
    elif k == "div_":
        v = v / s
    elif k == "clamp_":
        v = np.where(np.isnan(v), v, np.clip(v, -1, 1))
    elif k == "copy_":
        v = np.broadcast_to(_np_y(p), np.shape(v))
    elif k == "fill_":
        v = np.full(np.shape(v), float(s))
    else:
        v = np.zeros(np.shape(v))
    a[sl] = v
    return a


op("inplace", _inplace, _np_inplace, params=_inplace_params, smooth=False)


# -- __setitem__ on a copy of the running value
def _setitem_params(data, shape, dtype):
    p = _index_params(data, shape, dtype)
    if p["kind"] in ("none", "ilist", "bare_none", "true", "false"):
        p["kind"] = "itensor" if p["kind"] == "ilist" else "slice"
        p.setdefault("sl", (None, None, 2))
        p.setdefault("idx", [0])
    if data.draw(st.booleans(), label="tensor_value"):
        p.update(_operand(data, data.draw(st.sampled_from([(), (1,)]), label="vshape"), (), dtype))
    else:
        p["s"] = data.draw(st.sampled_from([0, 1, -2, 2.5]), label="s")
    return p


def _key(m, x, p):
    k = p["kind"]
    if k == "int":
        return p["i"]
    if k == "slice":
        return slice(*p["sl"])
    if k == "ellipsis_int":
        return (Ellipsis, p["i"])
    if k == "mask":
        return mk(m, p["mask"], "bool")
    if k == "itensor":
        return mk(m, np.array(p["idx"], dtype=np.int64), "int64")
    return (p["i"], slice(None, None, 2))


def _setitem(m, x, p):
    x = x.clone()
    x[_key(m, x, p)] = _y(m, p) if "y" in p else p["s"]
    return x


def _np_setitem(a, p):
    a = np.array(a, copy=True)
    k = p["kind"]
    key = {
        "int": lambda: p["i"],
        "slice": lambda: slice(*p["sl"]),
        "ellipsis_int": lambda: (Ellipsis, p["i"]),
        "mask": lambda: p["mask"],
        "itensor": lambda: np.array(p["idx"], dtype=np.int64),
        "multi": lambda: (p["i"], slice(None, None, 2)),
    }[k]()
    a[key] = _np_y(p) if "y" in p else p["s"]
    return a


op("setitem", _setitem, _np_setitem, params=_setitem_params, smooth=False)


# -- nn.functional
def _linear_params(data, shape, dtype):
    k = shape[-1] if shape else 1
    o = data.draw(st.sampled_from([1, 3, 4]), label="out")
    p = {"W": _values(data, (o, k), dtype, special=False), "dt": dtype}
    if data.draw(st.booleans(), label="bias"):
        p["b"] = _values(data, (o,), dtype, special=False)
    return p


def _lin(m, x, p):
    mod = F if m is fk else TF
    return mod.linear(x, mk(m, p["W"], p["dt"]), mk(m, p["b"], p["dt"]) if "b" in p else None)


op(
    "linear",
    _lin,
    lambda a, p: a @ p["W"].T + (p["b"] if "b" in p else 0),
    params=_linear_params,
    dtypes=_F,
    min_ndim=1,
    red=True,
)
op("F.relu", lambda m, x, p: (F if m is fk else TF).relu(x), lambda a, p: np.maximum(a, 0), dtypes=_F, smooth=False)
op("F.gelu", lambda m, x, p: (F if m is fk else TF).gelu(x), lambda a, p: _gelu(a), dtypes=_F, torch_inf=False)
op(
    "F.gelu_tanh",
    lambda m, x, p: (F if m is fk else TF).gelu(x, approximate="tanh"),
    lambda a, p: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3))),
    dtypes=_F,
)


op(
    "F.leaky_relu",
    lambda m, x, p: (F if m is fk else TF).leaky_relu(x, 0.1),
    lambda a, p: np.where(a > 0, a, a * 0.1),
    dtypes=_F,
    smooth=False,
)
op(
    "F.l1_loss",
    lambda m, x, p: (F if m is fk else TF).l1_loss(x, mk(m, p["y"], p["ydt"]), reduction=p["red"]),
    lambda a, p: {"none": lambda v: v, "sum": np.sum, "mean": np.mean}[p["red"]](np.abs(a - _np_y(p))),
    params=lambda d, s, t: {
        **_operand(d, s, (), t),
        "red": d.draw(st.sampled_from(["mean", "sum", "none"]), label="red"),
    },
    dtypes=_F,
    red=True,
    smooth=False,
)
op(
    "F.avg_pool2d",
    lambda m, x, p: (F if m is fk else TF).avg_pool2d(x, p["k"], p["s"]),
    lambda a, p: _np_pool(a, p, np.mean),
    params=lambda d, s, t: {
        "k": d.draw(st.sampled_from([1, 2, 3]), label="k"),
        "s": d.draw(st.sampled_from([None, 1, 2]), label="s"),
    },
    dtypes=_F,
    min_ndim=3,
    red=True,
)


op(
    "F.embedding",
    lambda m, x, p: (F if m is fk else TF).embedding(x, mk(m, p["W"], "float32")),
    lambda a, p: p["W"][a.astype(np.int64)] if (a >= 0).all() and (a < 6).all() else None,
    params=lambda d, s, t: {"W": _values(d, (6, 2), "float32", special=False)},
    dtypes=("int64",),
    grad=False,
)


def _bce_logits(m, x, p):
    return (F if m is fk else TF).binary_cross_entropy_with_logits(x, mk(m, p["y"], p["ydt"]), reduction=p["red"])


def _np_bce_logits(a, p):
    y = _np_y(p)
    if y.shape != a.shape:
        raise ValueError("shape")
    with np.errstate(all="ignore"):  # PyTorch's form, which fixes what x = +-inf gives
        m = np.maximum(-a, 0)
        loss = (1 - y) * a + m + np.log(np.exp(-m) + np.exp(-a - m))
    return {"none": lambda v: v, "sum": np.sum, "mean": np.mean}[p["red"]](loss)


def _bce_params(data, shape, dtype):
    p = {"red": data.draw(st.sampled_from(["mean", "sum", "none"]), label="red"), "ydt": dtype}
    seed = data.draw(st.integers(0, 2**16), label="yseed")
    p["y"] = np.random.default_rng(seed).random(_bshape(data, shape))
    return p


op("F.bce_with_logits", _bce_logits, _np_bce_logits, params=_bce_params, dtypes=_F, red=True)


def _bce(m, x, p):
    return (F if m is fk else TF).binary_cross_entropy(x, mk(m, p["y"], p["ydt"]), reduction=p["red"])


def _np_bce(a, p):
    y = _np_y(p)
    if y.shape != a.shape or ((a < 0) | (a > 1)).any():
        raise ValueError("domain")
    loss = -(y * np.maximum(np.log(a), -100) + (1 - y) * np.maximum(np.log(1 - a), -100))
    return {"none": lambda v: v, "sum": np.sum, "mean": np.mean}[p["red"]](loss)


op("F.bce", _bce, _np_bce, params=_bce_params, dtypes=_F, red=True, smooth=False)


def _ce_params(data, shape, dtype):
    c = shape[1] if len(shape) >= 2 else (shape[0] if shape else 1)
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) >= 2 else ()
    seed = data.draw(st.integers(0, 2**16), label="tseed")
    t = np.random.default_rng(seed).integers(0, max(c, 1), size=tshape)
    if c and data.draw(st.integers(0, 7), label="ign") == 0 and t.size:
        t.reshape(-1)[0] = -100
    return {
        "t": t,
        "red": data.draw(st.sampled_from(["mean", "sum", "none"]), label="red"),
        "ls": data.draw(st.sampled_from([0.0, 0.0, 0.1]), label="ls"),
    }


def _ce(m, x, p):
    mod = F if m is fk else TF
    return mod.cross_entropy(x, mk(m, p["t"], "int64"), reduction=p["red"], label_smoothing=p["ls"])


def _np_ce(a, p):
    cdim = 1 if a.ndim >= 2 else 0
    logp = _log_softmax(a, cdim)
    t = p["t"]
    valid = t != -100
    tt = np.where(valid, t, 0)
    picked = np.take_along_axis(logp, np.expand_dims(tt, cdim), cdim).squeeze(cdim)
    smooth = logp.mean(axis=cdim) if p["ls"] else 0.0  # (0 * -inf would be NaN)
    loss = -(1 - p["ls"]) * picked - p["ls"] * smooth
    loss = np.where(valid, loss, 0.0)
    if p["red"] == "none":
        return loss
    if p["red"] == "sum":
        return loss.sum()
    return loss.sum() / valid.sum()


op("F.cross_entropy", _ce, _np_ce, params=_ce_params, dtypes=_F, min_ndim=1, red=True)


def _mse(m, x, p):
    return (F if m is fk else TF).mse_loss(x, mk(m, p["y"], p["ydt"]), reduction=p["red"])


op(
    "F.mse_loss",
    _mse,
    lambda a, p: {"none": lambda v: v, "sum": np.sum, "mean": np.mean}[p["red"]]((a - _np_y(p)) ** 2),
    params=lambda d, s, t: {
        **_operand(d, s, (), t),
        "red": d.draw(st.sampled_from(["mean", "sum", "none"]), label="red"),
    },
    dtypes=_F,
    red=True,
)


def _conv_params(data, shape, dtype):
    c = shape[1] if len(shape) == 4 else 1
    kh, kw = data.draw(st.sampled_from([1, 2, 3]), label="kh"), data.draw(st.sampled_from([1, 2, 3]), label="kw")
    o = data.draw(st.sampled_from([1, 2, 3]), label="o")
    p = {
        "W": _values(data, (o, c, kh, kw), dtype, special=False),
        "dt": dtype,
        "stride": data.draw(st.sampled_from([1, 2]), label="stride"),
        "pad": data.draw(st.sampled_from([0, 1]), label="pad"),
    }
    return p


def _conv(m, x, p):
    return (F if m is fk else TF).conv2d(x, mk(m, p["W"], p["dt"]), None, p["stride"], p["pad"])


def _np_conv(a, p):
    w, s, pad = p["W"], p["stride"], p["pad"]
    if a.ndim != 4 or a.shape[1] != w.shape[1]:
        raise ValueError("shape")
    a = np.pad(a, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, wd = a.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // s + 1, (wd - kw) // s + 1
    out = np.zeros((n, o, max(oh, 0), max(ow, 0)))
    for i in range(max(oh, 0)):
        for j in range(max(ow, 0)):
            patch = a[:, :, i * s : i * s + kh, j * s : j * s + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


op("F.conv2d", _conv, _np_conv, params=_conv_params, dtypes=_F, min_ndim=3, red=True)


def _pool(m, x, p):
    return (F if m is fk else TF).max_pool2d(x, p["k"], p["s"])


def _np_pool(a, p, reduce=np.max):
    k, s = p["k"], p["s"] or p["k"]
    h, w = a.shape[-2:]
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros(a.shape[:-2] + (max(oh, 0), max(ow, 0)))
    for i in range(max(oh, 0)):
        for j in range(max(ow, 0)):
            out[..., i, j] = reduce(a[..., i * s : i * s + k, j * s : j * s + k], axis=(-1, -2))
    return out


op(
    "F.max_pool2d",
    _pool,
    _np_pool,
    params=lambda d, s, t: {
        "k": d.draw(st.sampled_from([1, 2, 3]), label="k"),
        "s": d.draw(st.sampled_from([None, 1, 2]), label="s"),
    },
    dtypes=_F,
    min_ndim=3,
    smooth=False,
)

# ----------------------------------------------------------------------------- layouts
SIDES = [0, 1, 2, 3, 5, 7]
LAYOUTS = ["contiguous", "transposed", "permuted", "stepped", "expanded", "unsqueezed"]


def _layout(m, arr, dtype, layout):
    """A tensor of module m holding `arr` in the given layout (a view where the layout is one)."""
    a = np.asarray(arr)
    nd = a.ndim
    if layout == "transposed" and nd >= 2:
        return mk(m, np.swapaxes(a, -1, -2), dtype).transpose(-1, -2)
    if layout == "permuted" and nd >= 2:
        perm = list(range(nd))[::-1]
        inv = list(np.argsort(perm))
        return mk(m, np.transpose(a, perm), dtype).permute(*inv)
    if layout == "stepped" and nd >= 1:
        big = np.zeros((2 * a.shape[0] + 1,) + a.shape[1:], dtype=a.dtype)
        big[1::2] = a
        return mk(m, big, dtype)[1::2]
    if layout == "expanded" and nd >= 1 and a.size and np.all(a == a.reshape(-1)[0]):
        return mk(m, a.reshape(-1)[:1].reshape((1,) * nd), dtype).expand(*a.shape)
    if layout == "unsqueezed" and nd >= 1 and a.shape[0] == 1:
        return mk(m, a[0], dtype).unsqueeze(0)
    return mk(m, a, dtype)


@st.composite
def start_tensor(draw):
    nd = draw(st.integers(0, 4), label="ndim")
    shape = tuple(draw(st.lists(st.sampled_from(SIDES), min_size=nd, max_size=nd), label="shape"))
    if int(np.prod(shape)) > 400:
        shape = tuple(min(s, 3) for s in shape)
    dtype = draw(st.sampled_from(_ALL + _F), label="dtype")
    layout = draw(st.sampled_from(LAYOUTS), label="layout")
    if layout == "expanded" and nd:
        # an expanded view: every element the same (one value broadcast)
        shape = tuple(shape)
    return shape, dtype, layout


def _tol(dtype, opx, a, p, red_n):
    if dtype == "float32":
        rtol, atol = 2e-5, 1e-6
        atol = atol + 3e-7 * red_n
    else:
        rtol, atol = 1e-9, 1e-12 + 1e-13 * red_n
    if opx.tol is not None:
        extra = opx.tol(a, p, dtype)
        if np.ndim(extra) == 0:
            rtol = max(rtol, float(extra))
        else:
            atol = atol + (float(np.max(extra)) if np.size(extra) else 0.0)
    return rtol, atol


def _compare(got, want, rtol, atol):
    """None when equal within tolerance (NaN == NaN, infs by sign), else a description."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    if got.dtype.kind in "fc" or want.dtype.kind in "fc":
        g, w = got.astype(np.float64), want.astype(np.float64)
        nan_g, nan_w = np.isnan(g), np.isnan(w)
        bad = nan_g != nan_w
        inf = np.isinf(g) | np.isinf(w)
        bad |= inf & ~nan_g & ~nan_w & (g != w)
        fin = ~nan_g & ~nan_w & ~inf
        with np.errstate(all="ignore"):
            bad |= fin & (np.abs(g - w) > atol + rtol * np.abs(w))
        if bad.any():
            i = np.argwhere(bad)[0] if bad.ndim else ()
            at = tuple(int(v) for v in i)
            return f"values differ at {at}: {g[tuple(i)]!r} vs {w[tuple(i)]!r} ({int(bad.sum())} of {bad.size})"
        return None
    if not np.array_equal(got, want):
        bad = got != want
        i = tuple(int(v) for v in np.argwhere(bad)[0]) if bad.ndim else ()
        return f"values differ at {i}: {got[i]!r} vs {want[i]!r}"
    return None


def _run(fn, *args):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args), None
    except _ERRORS as e:
        return None, e
    except (ZeroDivisionError, OverflowError, NotImplementedError, MemoryError, AttributeError, AssertionError) as e:
        return None, e


def _fmt_p(p):
    out = {}
    for k, v in p.items():
        if isinstance(v, np.ndarray):
            out[k] = f"np.array({v.tolist()!r}, dtype={v.dtype})" if v.size <= 12 else f"<array {v.shape} {v.dtype}>"
        else:
            out[k] = v
    return out


def _desc(arr, dtype, layout, steps):
    a = np.asarray(arr)
    data = repr(a.tolist()) if a.size <= 16 else f"<{a.shape} array>"
    return f"x={data} shape={a.shape} {dtype} {layout}; " + " -> ".join(f"{n}{_fmt_p(p)}" for n, p in steps)


def _exc_ok(e):
    return isinstance(e, _ERRORS)


# ----------------------------------------------------------------------------- the fuzzer
@settings(_PROFILE)
@given(data=st.data(), start=start_tensor())
def test_fuzz_program(data, start):
    COUNTS["programs"] += 1
    shape, dtype, layout = start
    arr = _values(data, shape, dtype)
    if layout == "expanded" and arr.size:
        arr = np.full(shape, arr.reshape(-1)[0], dtype=arr.dtype)
    x = _layout(fk, arr, dtype, layout)
    tx = _layout(torch, arr, dtype, layout) if torch is not None else None
    in_sync = tx is not None
    n_steps = data.draw(st.integers(1, 6), label="n_steps")
    steps = []
    for _ in range(n_steps):
        xs, xd = tuple(x.shape), dtype_name(x.dtype)
        names = [n for n, o in OPS.items() if xd in o.dtypes and len(xs) >= o.min_ndim]
        name = data.draw(st.sampled_from(names), label="op")
        o = OPS[name]
        p = o.params(data, xs, xd)
        steps.append((name, p))
        COUNTS["steps"] += 1
        prog = _desc(arr, dtype, layout, steps)
        a_in = to_np(x)
        out, err = _run(o.fn, fk, x, p)
        if err is not None and not _exc_ok(err):
            _report("bad-exception", prog, f"fastkern raised {type(err).__name__}: {err}")
            return
        if err is not None and any(s in str(err) for s in ("bad_cast", "bad_alloc", "std::")):
            _report("std-exception", prog, f"fastkern raised {type(err).__name__}: {err}")
        tout = terr = None
        if tx is not None:
            tout, terr = _run(o.fn, torch, tx, p)
            if terr is not None and any(t in str(terr) for t in _TORCH_LIMITS):
                return  # a torch limitation (no kernel for the dtype, empty-input rules): nothing to compare
            if name == "F.cross_entropy" and len(xs) >= 2 and xs[1] == 0 and p["ls"]:
                return  # torch's label smoothing over zero classes divides 0 by 0 even for an empty sum
            if name == "F.conv2d" and len(xs) == 4 and xs[1] == 0:
                return  # torch gets the output channels of a zero-channel convolution wrong
            if err is not None and terr is None and "out of bounds" in str(err) and tout.numel() == 0:
                return  # torch skips index bounds checks when the result is empty
            if name == "view" and (err is None) != (terr is None) and x.is_contiguous() != tx.is_contiguous():
                return  # outputs' memory layouts legitimately differ; view() depends on them
            if name == "matmul" and terr is None and "same dtype" in str(err) and (x.numel() == 0 or tout.numel() == 0):
                return  # torch skips its dtype check when an operand or the product is empty
        if in_sync and (err is None) != (terr is None):
            if err is None:
                _report(
                    "fk-accepts",
                    prog,
                    f"torch raised {type(terr).__name__}: {str(terr)[:200]}; "
                    f"fastkern returned {tuple(out.shape) if hasattr(out, 'shape') else out!r}",
                )
            else:
                _report("fk-raises", prog, f"fastkern raised {type(err).__name__}: {str(err)[:200]}; torch accepted")
            return
        if err is not None:
            return
        od = dtype_name(out.dtype)
        if tout is not None and terr is None:
            if tuple(tout.shape) != tuple(out.shape):
                _report("shape", prog, f"fastkern shape {tuple(out.shape)} vs torch {tuple(tout.shape)}")
                return
            if dtype_name(tout.dtype) != od:
                _report("dtype", prog, f"fastkern dtype {od} vs torch {dtype_name(tout.dtype)}")
                return
        got = to_np(out)
        # oracle: NumPy float64 on fastkern's input values
        red_n = a_in.size if o.red else 1
        rtol, atol = _tol(od, o, a_in.astype(np.float64), p, red_n)
        if o.np_fn is not None and not o.idx_out:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ref = o.np_fn(a_in.astype(np.float64), p)
                except (ValueError, IndexError, TypeError):
                    ref = None
            exact_ok = not (
                od in ("int64", "uint8")
                and ref is not None
                and np.size(ref)
                and np.nanmax(np.abs(np.asarray(ref, dtype=np.float64))) >= 2.0**52
            )
            int_op_float = xd != od and od in ("int64", "uint8") and name.startswith(("fdiv", "mod"))
            if ref is not None and exact_ok and not int_op_float:
                diff = _compare(got, cast_like(ref, od), rtol, atol)
                if diff and in_sync and terr is None and _compare(got, to_np(tout), rtol, atol) is None:
                    diff = None  # an IEEE edge case where NumPy's convention differs from torch's (sign(nan))
                if diff:
                    _report("numpy", prog, f"fastkern vs numpy float64: {diff}")
                    return
        if o.idx_out:  # indices: must be in range and point at the max (ties: any)
            d = p["dim"] % max(a_in.ndim, 1)
            if a_in.ndim and got.size:
                idx = got if p.get("keepdim") else np.expand_dims(got, d)
                vals = np.take_along_axis(a_in, idx.astype(np.int64), d)
                with np.errstate(all="ignore"):
                    ref_max = (
                        np.max(a_in, axis=d, keepdims=True)
                        if a_in.dtype != np.bool_
                        else a_in.any(axis=d, keepdims=True)
                    )
                diff = _compare(vals.astype(np.float64), np.asarray(ref_max, dtype=np.float64), 0, 0)
                if diff and not np.isnan(a_in.astype(np.float64)).any():
                    _report("argmax", prog, f"index does not point at the max: {diff}")
                    return
        if not o.torch_inf and np.isinf(a_in.astype(np.float64)).any():
            in_sync = False
        if in_sync and tout is not None and not o.idx_out:
            tgot = to_np(tout)
            diff = _compare(got, tgot, max(rtol, 1e-5) if od == "float32" else rtol, atol)
            if diff:
                _report("torch", prog, f"fastkern vs torch: {diff}")
                return
        if tout is not None and in_sync:  # exactly equal, signed zeros included
            tgot = to_np(tout)
            in_sync = _compare(got, tgot, 0, 0) is None and np.array_equal(np.signbit(got), np.signbit(tgot))
        x, tx = out, tout
    if torch is not None and dtype in _F:
        _grad_check(arr, dtype, layout, steps, data)


def _grad_check(arr, dtype, layout, steps, data):
    """Whole program in float64 with a leaf requiring grad: values and grads vs torch."""
    if not np.all(np.isfinite(arr)):
        return
    for name, p in steps:
        o = OPS[name]
        if (
            not o.grad
            or o.idx_out
            or not o.smooth
            and name
            not in (
                "F.relu",
                "clamp",
                "maximum",
                "minimum",
                "abs",
                "relu",
                "where",
                "where_rev",
                "amax",
                "amin",
                "max_dim",
                "inplace",
                "F.max_pool2d",
                "max_all",
                "setitem",
                "F.leaky_relu",
                "F.l1_loss",
            )
        ):
            return
        if "ydt" in p and p["ydt"] in _F and not np.all(np.isfinite(p["y"])):
            return
    results = []
    for m in (fk, torch):
        leaf = mk(m, np.asarray(arr, dtype=np.float64), "float64").requires_grad_()
        x = _layout(m, to_np(leaf), "float64", layout) if layout != "contiguous" else leaf
        if layout != "contiguous":  # a differentiable view of the leaf in that layout
            x = _diff_layout(m, leaf, layout)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name, p in steps:
                    p64 = dict(p)
                    if "dt" in p64:
                        p64["dt"] = "float64"
                    x = OPS[name].fn(m, x, p64)
        except _ERRORS as e:
            results.append(("err", e))
            continue
        if dtype_name(x.dtype) != "float64" or not x.requires_grad:
            return
        results.append(("ok", (leaf, x)))
    if results[0][0] != "ok" or results[1][0] != "ok":
        return  # error parity was checked on the forward run
    (fl, fo), (tl, to) = results[0][1], results[1][1]
    fv, tv = to_np(fo), to_np(to)
    if not np.all(np.isfinite(tv)) or _compare(fv, tv, 1e-12, 1e-14) is not None:
        return  # float64 forward drifted (or overflowed): gradients are not comparable
    seed = data.draw(st.integers(0, 2**16), label="wseed")
    w = np.random.default_rng(seed).standard_normal(fv.shape)
    COUNTS["grad_checks"] += 1
    prog = _desc(arr, dtype, layout, steps) + " ; backward of weighted sum (float64)"
    try:
        (fo * fk.tensor(w)).sum().backward()
    except _ERRORS as e:
        _report("grad-raises", prog, f"fastkern backward raised {type(e).__name__}: {e}")
        return
    (to * torch.tensor(w)).sum().backward()
    fg = np.zeros(arr.shape) if fl.grad is None else to_np(fl.grad)
    tg = np.zeros(arr.shape) if tl.grad is None else to_np(tl.grad)
    if not np.all(np.isfinite(tg)):
        return
    diff = _compare(fg, tg, 1e-5, 1e-8)  # chains of pow/exp amplify float64 round-off in gradients
    if diff:
        _report("grad", prog, f"fastkern grad vs torch: {diff}")


def _diff_layout(m, leaf, layout):
    nd = leaf.ndim
    if layout == "transposed" and nd >= 2:
        return leaf.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "permuted" and nd >= 2:
        perm = list(range(nd))[::-1]
        return leaf.permute(*perm).contiguous().permute(*[int(i) for i in np.argsort(perm)])
    if layout == "stepped" and nd >= 1:
        z = m.zeros((1,) + tuple(leaf.shape[1:]), dtype=leaf.dtype)
        inter = m.stack([leaf, leaf * 0], 1).reshape(2 * leaf.shape[0], *leaf.shape[1:])
        return m.cat([inter, z], 0)[0::2]
    if layout == "unsqueezed" and nd >= 1 and leaf.shape[0] == 1:
        return leaf[0].unsqueeze(0)
    return leaf * 1.0


# ----------------------------------------------------------------------------- thread consistency
@st.composite
def big_start(draw):
    """Tensors big enough (>= 2 * 65536 elements) for the kernels to split across threads."""
    nd = draw(st.integers(1, 4), label="ndim")
    sides = [draw(st.sampled_from([1, 2, 3, 5, 7, 13, 61, 127, 131]), label="side") for _ in range(nd)]
    while int(np.prod(sides)) < 140_000:
        sides[draw(st.integers(0, nd - 1), label="grow")] *= draw(st.sampled_from([2, 3, 5]), label="by")
    while int(np.prod(sides)) > 600_000:
        i = int(np.argmax(sides))
        sides[i] = max(1, sides[i] // 2)
    return tuple(sides), draw(st.sampled_from(_ALL + _F), label="dtype"), draw(st.sampled_from(LAYOUTS), label="layout")


_THREAD_OPS = [n for n, o in OPS.items() if not n.startswith(("F.conv2d", "F.max_pool2d", "F.avg_pool2d"))]


@settings(_PROFILE, max_examples=max(4, _PROFILE.max_examples // 20))
@given(data=st.data(), start=big_start())
def test_fuzz_threads(data, start):
    """The same program with 1 thread and with several: same errors, same values (sums within round-off)."""
    COUNTS["thread_programs"] = COUNTS.get("thread_programs", 0) + 1
    shape, dtype, layout = start
    arr = _values(data, shape, dtype, special=False)
    nthreads = data.draw(st.sampled_from([2, 3, 4]), label="threads")
    old = fk.get_num_threads()
    outs, steps = [], []
    try:
        fk.set_num_threads(nthreads)
        x = _layout(fk, arr, dtype, layout)
        for _ in range(data.draw(st.integers(1, 3), label="n_steps")):
            xs, xd = tuple(x.shape), dtype_name(x.dtype)
            names = [n for n in _THREAD_OPS if xd in OPS[n].dtypes and len(xs) >= OPS[n].min_ndim]
            name = data.draw(st.sampled_from(names), label="op")
            p = OPS[name].params(data, xs, xd)
            steps.append((name, p))
            out, err = _run(OPS[name].fn, fk, x, p)
            outs.append((out, err))
            if err is not None or int(np.prod(out.shape)) > 4_000_000:
                break
            x = out
        fk.set_num_threads(1)
        x = _layout(fk, arr, dtype, layout)
        for i, ((name, p), (out, err)) in enumerate(zip(steps, outs)):
            prog = f"{nthreads} threads vs 1: " + _desc(arr, dtype, layout, steps[: i + 1])
            out1, err1 = _run(OPS[name].fn, fk, x, p)
            if (err is None) != (err1 is None):
                _report("threads-error", prog, f"{nthreads} threads: {err!r}; 1 thread: {err1!r}")
                return
            if err is not None:
                return
            a, b = to_np(out), to_np(out1)
            exact = not OPS[name].red or a.dtype.kind not in "f"
            tol = (
                (0, 0)
                if exact
                else (
                    (2e-5, 1e-5 * (1 + float(np.nanmax(np.abs(b), initial=0))))
                    if a.dtype == np.float32
                    else (1e-10, 1e-10)
                )
            )
            diff = _compare(a, b, *tol)
            COUNTS["thread_steps"] = COUNTS.get("thread_steps", 0) + 1
            if diff:
                _report("threads", prog, f"{nthreads} threads vs 1 thread: {diff}")
                return
            x = out1
    finally:
        fk.set_num_threads(old)


def teardown_module(module):
    line = (
        f"fuzz-ops: {COUNTS['programs']} programs, {COUNTS['steps']} steps, "
        f"{COUNTS.get('thread_programs', 0)} thread-consistency programs ({COUNTS.get('thread_steps', 0)} steps), "
        f"{COUNTS['grad_checks']} gradient checks, {COUNTS['mismatches']} mismatches (profile {_MODE})"
    )
    print("\n" + line)
    if os.environ.get("FASTKERN_FUZZ_COUNT_FILE"):
        with open(os.environ["FASTKERN_FUZZ_COUNT_FILE"], "a") as f:
            f.write(line + "\n")
