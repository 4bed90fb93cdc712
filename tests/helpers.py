"""Shared test machinery for the fastkern suite.

`helper_test_op` (in the style of tinygrad's helper) checks one op end to end:

* forward values in float32 and float64 against a NumPy float64 reference,
  for contiguous and several non-contiguous input layouts;
* the result dtype (and, when torch is installed, that it equals torch's);
* gradients in float64: `out.backward(w)` with random weights `w` (the gradient
  of the weighted sum `(out * w).sum()`) against a central-difference numerical
  gradient of the fastkern forward, and against torch autograd when available.

Ops are usually written once as `fn(m, *xs)` where `m` is the module (`fastkern`
or `torch`): since fastkern mirrors PyTorch's API the same lambda drives both
(see `fk_and_torch`).

Devices: `DEVICES` (from `available_devices()`) is "cpu", plus "cuda" once tensors
can be created there; FASTKERN_TEST_DEVICES=cuda (a comma list) restricts it. The
`device` fixture (conftest.py) runs a test once per device; op tests pass it on
to `helper_test_op(..., device=device)` or create their tensors with
`device=device`. On the CPU the references are NumPy float64, numerical
gradients and torch; on any other device the CPU result of the same fastkern
call is the oracle (`_compare_with_cpu`), besides NumPy for the forward values.
An fn that creates tensors itself must put them on its inputs' device.
"""

import contextlib
import functools
import math
import os

import numpy as np
import pytest

import fastkern as fk

try:
    import torch
except ImportError:  # torch comparisons are skipped when torch is absent
    torch = None

# ----------------------------------------------------------------------------- dtypes
DTYPE_NAMES = ("float32", "float64", "int64", "bool", "uint8")
NP_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_, "uint8": np.uint8}


def dtype_name(dt):
    """The name ('float32', ...) of a fastkern or torch dtype."""
    if torch is not None and isinstance(dt, torch.dtype):
        return str(dt).replace("torch.", "")
    for name in DTYPE_NAMES:
        if dt == getattr(fk, name):
            return name
    raise AssertionError(f"unknown fastkern dtype {dt!r}")


def fk_dtype(name):
    return getattr(fk, name)


def to_np(t):
    """A NumPy copy of a fastkern (or torch) tensor, from whichever device it is on."""
    if torch is not None and isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy().copy()
    return np.array(t.detach().to("cpu").contiguous().numpy(), copy=True)


# ----------------------------------------------------------------------------- devices
KNOWN_DEVICES = ("cpu", "cuda")


def _can_create_on(device):
    """Whether a tensor can be made there: a CUDA build on a GPU machine still refuses
    until the CUDA kernels exist, and then only the CPU is tested."""
    try:
        fk.zeros(1, device=device)
    except (NotImplementedError, RuntimeError):
        return False
    return True


def available_devices():
    """The devices op tests run on: 'cpu' first (the oracle for the others), then each
    one that works, restricted to the comma list in FASTKERN_TEST_DEVICES when set."""
    found = ["cpu"] + [d for d in KNOWN_DEVICES[1:] if _can_create_on(d)]
    only = os.environ.get("FASTKERN_TEST_DEVICES", "").strip()
    if not only:
        return found
    wanted = [d.strip() for d in only.split(",") if d.strip()]
    unknown = sorted(set(wanted) - set(KNOWN_DEVICES))
    if unknown:  # a typo must not quietly run nothing
        raise ValueError(f"FASTKERN_TEST_DEVICES names unknown devices {unknown}; known: {list(KNOWN_DEVICES)}")
    return [d for d in found if d in wanted]


DEVICES = available_devices()


def on_device(t, device):
    """Whether tensor t is on `device` ('cuda' matches 'cuda:0')."""
    return t.device.type == fk.device(device).type


class fk_on:
    """fastkern, except that m.tensor(...) makes its tensor on `device`: the module to hand
    to a table's fn(m, ...) that builds tensors (index tensors, 0-d operands)."""

    def __init__(self, device):
        self.device = device

    def tensor(self, data, **kw):
        return fk.tensor(data, **{"device": self.device, **kw})

    def __getattr__(self, name):
        return getattr(fk, name)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, msg=""):
    """Compare a tensor (or array) with an expected array: shape, then values."""
    a = to_np(actual) if not isinstance(actual, np.ndarray) else actual
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{msg}: shape {a.shape} != expected {e.shape}"
    if a.dtype.kind in "fc" or e.dtype.kind in "fc":
        np.testing.assert_allclose(
            a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True, err_msg=msg
        )
    else:
        np.testing.assert_array_equal(a, e, err_msg=msg)


@contextlib.contextmanager
def fk_threads(n):
    """Runs the body with fastkern's pool set to n threads."""
    old = fk.get_num_threads()
    fk.set_num_threads(n)
    try:
        yield
    finally:
        fk.set_num_threads(old)


# ----------------------------------------------------------------------------- data
REAL = (-2.0, 2.0)
POS = (0.5, 2.0)


def away0(rng, shape):
    """Values in +-[0.5, 2]: safe divisors, no kinks of abs/relu/sign near 0."""
    return rng.uniform(0.5, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def small_ints(rng, shape):
    """Integer-valued floats in [-2, 2]: lots of ties, for comparisons."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


def gen(rng, shape, domain):
    if callable(domain):
        return np.asarray(domain(rng, shape), dtype=np.float64).reshape(shape)
    lo, hi = domain
    return np.asarray(rng.uniform(lo, hi, size=shape))


# ----------------------------------------------------------------------------- layouts
LAYOUTS = ("contiguous", "transposed", "strided", "mixed")


def make_tensor(a, dtype="float32", layout="contiguous", requires_grad=False, device="cpu"):
    """A fastkern tensor on `device` holding the values of array `a` in the given memory layout.

    transposed: a transposed view of a contiguous buffer (last two dims swapped;
                1-D falls back to strided);
    strided:    every other element of a buffer twice as large in each dim.
    The buffer is moved to the device before the view is taken, so the view is
    non-contiguous there too. The result is a leaf (detached view) when `requires_grad`.
    """
    a = np.asarray(a)
    npdt = NP_DTYPES[dtype]
    if layout == "transposed" and a.ndim < 2:
        layout = "strided"
    if layout == "contiguous" or a.ndim == 0:
        t = fk.tensor(np.array(a, dtype=npdt, order="C")).to(device)
    elif layout == "transposed":
        t = fk.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2).astype(npdt))).to(device)
        t = t.transpose(-1, -2)
    elif layout == "strided":
        big = np.zeros([2 * s for s in a.shape], dtype=npdt)
        every_other = tuple(slice(None, None, 2) for _ in a.shape)
        big[every_other] = a.astype(npdt)
        t = fk.tensor(big).to(device)[every_other]
    else:
        raise ValueError(layout)
    assert tuple(t.shape) == a.shape and on_device(t, device)
    if requires_grad:
        t = t.detach().requires_grad_()
    return t


def _layout_for(layout, i):
    if layout == "mixed":  # non-contiguous and contiguous operands together
        return "strided" if i % 2 == 0 else "contiguous"
    return layout


def make_inputs(arrays, dtype, layout, requires_grad=False, device="cpu"):
    return [make_tensor(a, dtype, _layout_for(layout, i), requires_grad, device) for i, a in enumerate(arrays)]


# ----------------------------------------------------------------------------- gradcheck
def numerical_grads(f, arrays, w, rng, eps=1e-6, max_points=48):
    """Central-difference gradient of sum(f(arrays) * w), f: list of float64 arrays -> array.

    Outputs are differenced elementwise before weighting, so unaffected outputs cancel
    exactly and large outputs elsewhere don't swamp the difference with round-off.
    Returns, per input, (gradient array, flat indices that were checked); at most
    `max_points` randomly chosen coordinates per input are perturbed.
    """
    arrays = [a.copy() for a in arrays]
    result = []
    for a in arrays:
        g = np.zeros(a.shape)
        n = a.size
        points = np.arange(n) if n <= max_points else rng.choice(n, max_points, replace=False)
        flat = a.reshape(-1)  # a view: writes go into `a`
        for j in points:
            orig = flat[j]
            flat[j] = orig + eps
            fp = f(arrays)
            flat[j] = orig - eps
            fm = f(arrays)
            flat[j] = orig
            g.reshape(-1)[j] = np.sum((fp - fm) * w) / (2 * eps)
        result.append((g, points))
    return result


def fk_and_torch(fn):
    """(fastkern function, torch function or None) from fn(module, *xs)."""
    return functools.partial(fn, fk), (functools.partial(fn, torch) if torch is not None else None)


# ----------------------------------------------------------------------------- the helper
# Another device against the CPU: the same op in the same precision, so tighter than against
# NumPy: half the NumPy tolerance in float32 (5e-6 by default) and a tenth in float64 (1e-11).
# Not tighter: reductions combine in another order on a GPU (a tree of threads, not the CPU's
# pairwise blocks), which moves a float32 product of 221 terms by ~8e-7 relative.
CPU_ORACLE_DIVISOR = {"float32": 2, "float64": 10}


def _compare_with_cpu(fn, xs, cpu_xs, device, *, rtol, atol, w=None, msg=""):
    """fn(*xs) on `device` against fn(*cpu_xs), the same values on the CPU (the oracle).

    Checks that the result is on `device`, has the CPU result's dtype and agrees with it
    within rtol/atol. With weights `w` (a NumPy array), also runs backward(w) on both and
    checks each input's .grad the same way (present, on `device`, same dtype, close).
    Returns the device result.
    """
    out, want = fn(*xs), fn(*cpu_xs)
    assert on_device(out, device), f"{msg}: result on {out.device}, inputs on {device}"
    assert out.dtype == want.dtype, (
        f"{msg}: dtype {dtype_name(out.dtype)} on {device}, {dtype_name(want.dtype)} on the CPU"
    )
    assert_close(out, to_np(want), rtol=rtol, atol=atol, msg=f"{msg}: {device} vs cpu")
    if w is not None:
        out.backward(fk.tensor(w).to(out.device, dtype=out.dtype))
        want.backward(fk.tensor(w).to(dtype=want.dtype))
        for i, (x, cx) in enumerate(zip(xs, cpu_xs)):
            assert x.grad is not None, f"{msg}: input {i} got no .grad on {device}"
            assert on_device(x.grad, device), f"{msg}: grad of input {i} on {x.grad.device}, not {device}"
            assert x.grad.dtype == cx.grad.dtype, f"{msg}: grad of input {i} dtype"
            assert_close(x.grad, to_np(cx.grad), rtol=rtol, atol=atol, msg=f"{msg}: grad of input {i}, {device} vs cpu")
    return out


def helper_test_op(
    shapes,
    fk_fn,
    np_fn,
    torch_fn=None,
    *,
    domain=REAL,
    dtypes=("float32", "float64"),
    layouts=LAYOUTS,
    forward_only=False,
    out_dtype=None,
    rtol=None,
    atol=None,
    grad_rtol=1e-4,
    grad_atol=1e-5,
    seed=0,
    max_grad_points=48,
    device="cpu",
):
    """Check fk_fn(*inputs) against np_fn (NumPy, float64) and torch_fn.

    shapes:   one shape per input (inputs are float tensors of the given dtypes);
    domain:   (lo, hi) or callable(rng, shape), or a list of those, one per input;
    out_dtype: expected result dtype name when it is not the input dtype (e.g. 'bool');
    rtol/atol: float32 forward tolerances (float64 uses 1e-10 / 1e-12 scaled alike);
    device:   where the inputs live. Not 'cpu': forward values against NumPy and, with
              gradients, everything against the CPU run of fk_fn (`_compare_with_cpu`);
              the numerical and torch checks are the CPU run's.
    """
    rng = np.random.default_rng(seed)
    domains = list(domain) if isinstance(domain, list) else [domain] * len(shapes)
    arrays = [gen(rng, tuple(s), d) for s, d in zip(shapes, domains)]
    rtol32 = 1e-5 if rtol is None else rtol
    atol32 = 1e-6 if atol is None else atol
    ref_shape = None
    on_cpu = device == "cpu"

    def tolerance(dtype, vs_cpu=False):
        tol = dict(rtol=rtol32, atol=atol32) if dtype == "float32" else dict(rtol=rtol32 * 1e-5, atol=atol32 * 1e-6)
        return {k: v / CPU_ORACLE_DIVISOR[dtype] for k, v in tol.items()} if vs_cpu else tol

    # ---- forward, per dtype and layout
    for dtype in dtypes:
        rounded = [a.astype(NP_DTYPES[dtype]).astype(np.float64) for a in arrays]
        with np.errstate(all="ignore"):
            ref = np.asarray(np_fn(*rounded))
        ref_shape = ref.shape
        want_dtype = out_dtype or dtype
        tol = tolerance(dtype)
        for layout in layouts:
            xs = make_inputs(arrays, dtype, layout, device=device)
            if on_cpu:
                out = fk_fn(*xs)
            else:
                out = _compare_with_cpu(
                    fk_fn,
                    xs,
                    make_inputs(arrays, dtype, layout),
                    device,
                    msg=f"forward {dtype}/{layout}",
                    **tolerance(dtype, vs_cpu=True),
                )
            assert dtype_name(out.dtype) == want_dtype, (
                f"{dtype}/{layout}: result dtype {dtype_name(out.dtype)}, expected {want_dtype}"
            )
            assert_close(out, ref, msg=f"forward {dtype}/{layout}", **tol)
        if on_cpu and torch is not None and torch_fn is not None:
            tout = torch_fn(*[torch.tensor(a.astype(NP_DTYPES[dtype])) for a in arrays])
            assert dtype_name(tout.dtype) == want_dtype, "expected dtype disagrees with torch"
            assert_close(to_np(tout), ref, msg=f"torch forward {dtype} (reference check)", **tol)

    if forward_only:
        return

    # ---- gradients in float64
    w = rng.standard_normal(ref_shape)

    if not on_cpu:  # the CPU gradients are checked numerically and against torch in the CPU run
        for layout in layouts:
            _compare_with_cpu(
                fk_fn,
                make_inputs(arrays, "float64", layout, True, device),
                make_inputs(arrays, "float64", layout, True),
                device,
                w=w,
                msg=f"float64/{layout} with backward",
                **tolerance("float64", vs_cpu=True),
            )
        return

    def forward64(arrs):
        return to_np(fk_fn(*[fk.tensor(a) for a in arrs])).astype(np.float64)

    numeric = numerical_grads(forward64, arrays, w, rng, max_points=max_grad_points)
    fk_grads = None
    for layout in layouts:
        xs = make_inputs(arrays, "float64", layout, requires_grad=True)
        out = fk_fn(*xs)
        assert out.requires_grad, "output of a differentiable op does not require grad"
        out.backward(fk.tensor(w).to(out.dtype))
        grads = []
        for i, (x, (g, points)) in enumerate(zip(xs, numeric)):
            assert x.grad is not None, f"input {i} ({layout}) got no .grad"
            assert tuple(x.grad.shape) == tuple(x.shape), f"input {i} grad shape"
            assert dtype_name(x.grad.dtype) == "float64", f"input {i} grad dtype"
            got = to_np(x.grad)
            np.testing.assert_allclose(
                got.reshape(-1)[points],
                g.reshape(-1)[points],
                rtol=grad_rtol,
                atol=grad_atol,
                err_msg=f"grad of input {i} vs numerical ({layout})",
            )
            grads.append(got)
        fk_grads = fk_grads or grads

    if torch is not None and torch_fn is not None:
        txs = [torch.tensor(a, requires_grad=True) for a in arrays]
        tout = torch_fn(*txs)
        assert_close(out.detach(), to_np(tout), rtol=1e-10, atol=1e-12, msg="float64 forward vs torch")
        tout.backward(torch.tensor(w, dtype=tout.dtype))
        for i, (tx, got) in enumerate(zip(txs, fk_grads)):
            want = np.zeros_like(got) if tx.grad is None else to_np(tx.grad)
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9, err_msg=f"grad of input {i} vs torch")


def run_op_table_entry(entry, shapes, device="cpu", **kw):
    """entry = (name, fn(m, *xs), np_fn, domain[, extra helper kwargs])"""
    name, fn, np_fn, domain, *extra = entry
    opts = dict(extra[0]) if extra else {}
    opts.update(kw)
    fk_fn, torch_fn = fk_and_torch(fn)
    helper_test_op(shapes, fk_fn, np_fn, torch_fn, domain=domain, device=device, **opts)


def ids(entries):
    return [e[0] for e in entries]


def shape_id(shape):
    return "x".join(map(str, shape)) if len(shape) else "scalar"


def assert_raises_with(excs, fn, *needles):
    """fn() raises one of `excs` and the message contains every needle."""
    with pytest.raises(excs) as info:
        fn()
    msg = str(info.value)
    for n in needles:
        assert n in msg, f"{n!r} not in error message {msg!r}"
    return info


def isclose_scalar(a, b, tol=1e-6):
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# ----------------------------------------------------------------------------- training data
def blobs(n=256, seed=0):
    """Two separable Gaussian blobs in 4-d."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 4)) + (y[:, None] * 2.0 - 1.0) * 1.5
    return fk.tensor(x.astype(np.float32)), fk.tensor(y)
