"""The nn kernels of every device against the CPU's, at sizes that cross a device's block and tile
boundaries (1, primes, 31/32/33, 255/256/257, thousands), with padding, ceil_mode, dilation,
ties, NaN, ignored rows and non-contiguous inputs: the forward values, the gradients, and that
a second run gives the same bits (no float atomics)."""

import numpy as np
import pytest

import fastkern as fk
import fastkern.nn.functional as F
from fastkern import nn, optim
from helpers import to_np

DT = {"float32": (np.float32, fk.float32, 2e-6, 1e-6), "float64": (np.float64, fk.float64, 1e-12, 1e-13)}


def run(fn, arrays, device, dtype, grad=True, gout_seed=1):
    """fn(*tensors) on `device`: its outputs and, with grad, the gradients of sum(out * gout)."""
    npt, fdt = DT[dtype][:2]
    ts = [fk.tensor(a.astype(npt), device=device, requires_grad=grad) for a in arrays]
    out = fn(*ts)
    outs = out if isinstance(out, tuple) else (out,)
    res = [to_np(o) for o in outs]
    if grad:
        g = np.random.default_rng(gout_seed).standard_normal(outs[0].shape).astype(npt)
        (outs[0] * fk.tensor(g, device=device)).sum().backward()
        res += [to_np(t.grad) for t in ts]
    return res


def check(fn, arrays, device, dtype, grad=True, exact=False, f32_tol=None):
    """The device's results equal the CPU's (to rounding, or exactly), and repeat bit for bit.
    f32_tol: (rtol, atol) for float32 where the CPU's float partial sums round more."""
    got = run(fn, arrays, device, dtype, grad)
    again = run(fn, arrays, device, dtype, grad)
    for a, b in zip(got, again):
        np.testing.assert_array_equal(a, b)
    want = run(fn, arrays, "cpu", dtype, grad)
    _, _, rtol, atol = DT[dtype]
    if f32_tol and dtype == "float32":
        rtol, atol = f32_tol
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        if exact or a.dtype == np.int64:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(
                a, b, rtol=rtol, atol=atol * max(1.0, np.max(np.abs(b), initial=0, where=np.isfinite(b)))
            )
    return got


DTYPES = ["float32", "float64"]

# ---- pooling -------------------------------------------------------------------------

# (shape, kernel, stride, padding, dilation, ceil_mode)
POOLS = [
    ((1, 1, 1, 1), 1, 1, 0, 1, False),
    ((2, 3, 33, 31), 3, 1, 1, 1, False),  # overlapping windows, 6138 pixels
    ((3, 5, 17, 19), 2, 2, 0, 1, True),  # ceil: a last window hanging over
    ((1, 2, 16, 16), 3, 2, 1, 2, True),  # dilation, padding, ceil
    ((2, 1, 13, 11), (3, 2), (4, 5), (1, 1), (1, 2), False),  # stride > kernel: pixels no window reaches
    ((1, 257, 2, 2), 2, 1, 1, 1, False),  # many planes, every window clipped
    ((1, 1, 255, 3), (5, 1), (3, 1), (2, 0), (1, 1), True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOLS, ids=[f"pool{i}" for i in range(len(POOLS))])
def test_max_pool2d_devices(case, dtype, device):
    shape, k, s, p, d, ceil = case
    rng = np.random.default_rng(0)
    fn = lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)  # noqa: E731
    check(fn, [rng.standard_normal(shape)], device, dtype, exact=True)
    # ties (the first maximum wins, in forward and backward) and NaN (the first NaN wins)
    ties = rng.integers(0, 3, shape).astype(np.float64)
    check(fn, [ties], device, dtype, exact=True)
    ties.flat[:: max(1, ties.size // 7)] = np.nan
    check(fn, [ties], device, dtype, exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("case", [c for c in POOLS if c[4] == 1], ids=lambda c: f"{c[0]}k{c[1]}")
def test_avg_pool2d_devices(case, include_pad, dtype, device):
    shape, k, s, p, _, ceil = case
    fn = lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include_pad)  # noqa: E731
    check(fn, [np.random.default_rng(1).standard_normal(shape)], device, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape, os",
    [((1, 1, 1, 1), (1, 1)), ((1, 2, 13, 7), (5, 11)), ((3, 4, 33, 1), (7, 1)), ((2, 3, 4, 5), (9, 2)),
     ((1, 1, 257, 31), (32, 3))],
)  # fmt: skip
def test_adaptive_avg_pool2d_devices(shape, os, dtype, device):
    check(lambda x: F.adaptive_avg_pool2d(x, os), [np.random.default_rng(2).standard_normal(shape)], device, dtype)


def test_pooling_non_contiguous_and_empty(device):
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 7))
    for fn in [
        lambda t: F.max_pool2d(t.transpose(2, 3), 3, 2, 1, ceil_mode=True),
        lambda t: F.avg_pool2d(t[:, ::2], 2, 1, 1),
        lambda t: F.adaptive_avg_pool2d(t.transpose(1, 3), (4, 3)),
    ]:
        check(fn, [x], device, "float32")
    for fn in [lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 2), lambda t: F.adaptive_avg_pool2d(t, 3)]:
        out, gx = check(fn, [np.zeros((0, 3, 4, 4))], device, "float64")
        assert out.shape[0] == 0 and gx.shape == (0, 3, 4, 4)


# ---- batch norm ------------------------------------------------------------------------

# N*S per channel: 2, 255, 257, 5000, 43200 (split into parts), and 300 channels
BN_SHAPES = [(2, 3), (255, 2), (1, 2, 257), (5, 4, 1000), (3, 2, 120, 120), (4, 300), (3, 33, 1, 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_training_devices(shape, dtype, device):
    rng = np.random.default_rng(4)
    C = shape[1]
    x = rng.standard_normal(shape) * 3 + 50  # a large mean: the two-pass variance
    fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    # (float32: the device sums in double; the CPU's float partials of sums that cancel differ by more)
    check(fn, [x, rng.standard_normal(C), rng.standard_normal(C)], device, dtype, f32_tol=(1e-4, 1e-5))


def test_batch_norm_eval_one_value_per_channel(device):
    # eval mode with N*S = 1: the channel passes over a single value each
    rng = np.random.default_rng(5)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5

    def fn(x, w, b):
        m, v = fk.tensor(rm, device=x.device), fk.tensor(rv, device=x.device)
        return F.batch_norm(x, m, v, w, b, training=False)

    for dtype in DTYPES:
        check(fn, [rng.standard_normal((1, 3)), rng.standard_normal(3), rng.standard_normal(3)], device, dtype)


def test_batch_norm_running_stats_devices(device):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 5, 3, 11)) + 2
    stats = []
    for dev in (device, "cpu"):
        bn = nn.BatchNorm2d(5).to(dev)
        for _ in range(3):
            bn(fk.tensor(x.astype(np.float32), device=dev))
        stats.append((to_np(bn.running_mean), to_np(bn.running_var)))
    for a, b in zip(*stats):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---- cross entropy ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows, C", [(1, 1), (3, 2), (7, 33), (300, 10), (5, 257), (4, 1000)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_devices(rows, C, smoothing, reduction, dtype, device):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((rows, C)) * 4
    t = rng.integers(0, C, rows)
    t[::3] = -100  # ignored rows: zero loss, zero gradient

    def fn(x):
        return F.cross_entropy(
            x, fk.tensor(t, device=x.device), reduction=reduction, label_smoothing=smoothing, ignore_index=-100
        )

    out, gx = check(fn, [x], device, dtype)
    assert np.all(gx[::3] == 0)


def test_cross_entropy_extremes_devices(device):
    x = np.array(
        [[1e4, -1e4, 0.0], [-np.inf, 0.0, -np.inf], [-np.inf, -np.inf, -np.inf], [np.nan, 1.0, 2.0], [np.inf, 0, 1]]
    )
    t = np.array([1, 1, 0, 2, 0])
    for dtype in DTYPES:
        for eps in (0.0, 0.1):
            fn = lambda x: F.cross_entropy(x, fk.tensor(t, device=x.device), reduction="none", label_smoothing=eps)  # noqa: E731
            got = run(fn, [x], device, dtype)
            want = run(fn, [x], "cpu", dtype)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-6, equal_nan=True)


def test_cross_entropy_targets_devices(device):
    x = fk.zeros(6, 5, device=device)
    # the first target out of range, in row order, skipping ignored rows
    t = fk.tensor([0, -100, 9, -5, 4, 7], device=device)
    with pytest.raises(IndexError, match="Target 9 is out of bounds for 5 classes"):
        F.cross_entropy(x, t)
    with pytest.raises(IndexError, match="Target -5 is out of bounds"):
        F.cross_entropy(x, fk.tensor([0, -100, 1, -5, 4, 7], device=device))
    # every row ignored: mean over no rows is nan, gradients are zero
    xg = fk.zeros(3, 4, device=device, requires_grad=True)
    loss = F.cross_entropy(xg, fk.tensor([-100, -100, -100], device=device))
    assert np.isnan(loss.item())
    loss.backward()
    assert np.all(to_np(xg.grad) == 0)
    # a thousand rows with a bad target near the end, and a custom ignore index
    t = np.zeros(1000, dtype=np.int64)
    t[::5] = 3
    t[997] = 5
    with pytest.raises(IndexError, match="Target 5 is out of bounds for 5 classes"):
        F.cross_entropy(fk.zeros(1000, 5, device=device), fk.tensor(t, device=device))
    loss = F.cross_entropy(fk.zeros(1000, 5, device=device), fk.tensor(t, device=device), ignore_index=5)
    np.testing.assert_allclose(loss.item(), np.log(5), rtol=1e-6)


# ---- Adam --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 257, 5000])
@pytest.mark.parametrize("opt, kw", [(optim.Adam, {"weight_decay": 0.1}), (optim.AdamW, {"weight_decay": 0.1})])
def test_adam_devices(n, opt, kw, dtype, device):
    npt, fdt, rtol, _ = DT[dtype]
    rng = np.random.default_rng(8)
    w0 = rng.standard_normal(n).astype(npt)
    grads = [rng.standard_normal(n).astype(npt) for _ in range(4)]
    results = []
    for dev in (device, "cpu"):
        p = nn.Parameter(fk.tensor(w0, device=dev))
        o = opt([p], lr=0.01, **kw)
        for g in grads:
            p.grad = fk.tensor(g, device=dev)
            o.step()
        results.append(to_np(p))
    np.testing.assert_allclose(results[0], results[1], rtol=10 * rtol, atol=10 * rtol)


def test_max_pool2d_window_missing_the_image(device):
    # kernel 2, dilation 4, padding 1 on 3 rows: the one window's taps (-1 and 3) miss the image
    # (the CPU kernel read outside the plane for such a window, and its backward wrote there)
    x = fk.randn(1, 1, 3, 3, device=device, requires_grad=True)
    out, idx = F.max_pool2d(x, 2, 1, 1, 4, return_indices=True)
    assert to_np(out).tolist() == [[[[-np.inf]]]]  # as PyTorch
    out.sum().backward()
    assert np.all(to_np(x.grad) == 0)
