"""fastkern.nn.functional against NumPy float64 references, numerical gradients and PyTorch."""

import itertools

import numpy as np
import pytest

import fastkern as fk
import fastkern.nn.functional as F
from helpers import assert_close, fk_threads, helper_test_op, to_np, torch

if torch is not None:
    import torch.nn.functional as TF


def tfn(fn):
    """fn(F-module, *xs) for fastkern and torch."""
    return (lambda *xs: fn(F, *xs)), (None if torch is None else (lambda *xs: fn(TF, *xs)))


# ---- NumPy references --------------------------------------------------------


def np_pad(x, ph, pw, value=0.0):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def np_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    xp = np_pad(x, *padding)
    Ho = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((N, O, Ho, Wo))
    Og = O // groups
    for g in range(groups):
        xs = xp[:, g * Cg : (g + 1) * Cg]
        for i, j in itertools.product(range(kh), range(kw)):
            patch = xs[
                :,
                :,
                i * dilation[0] : i * dilation[0] + stride[0] * (Ho - 1) + 1 : stride[0],
                j * dilation[1] : j * dilation[1] + stride[1] * (Wo - 1) + 1 : stride[1],
            ]
            out[:, g * Og : (g + 1) * Og] += np.einsum("nchw,oc->nohw", patch, w[g * Og : (g + 1) * Og, :, i, j])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def np_pool(x, k, s, p, d=(1, 1), mode="max", include_pad=True, ceil_mode=False):
    N, C, H, W = x.shape

    def size(n, k, s, p, d):
        span = n + 2 * p - d * (k - 1) - 1
        o = (-(-span // s) if ceil_mode else span // s) + 1
        return o - 1 if ceil_mode and (o - 1) * s >= n + p else o

    Ho, Wo = size(H, k[0], s[0], p[0], d[0]), size(W, k[1], s[1], p[1], d[1])
    out = np.zeros((N, C, Ho, Wo))
    for oh, ow in itertools.product(range(Ho), range(Wo)):
        h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
        if mode == "max":
            rows = [h0 + i * d[0] for i in range(k[0]) if 0 <= h0 + i * d[0] < H]
            cols = [w0 + j * d[1] for j in range(k[1]) if 0 <= w0 + j * d[1] < W]
            out[:, :, oh, ow] = x[:, :, rows][:, :, :, cols].max(axis=(2, 3))
        else:
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            div = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            if not include_pad:
                div = (h1 - h0) * (w1 - w0)
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return out


def np_adaptive_avg(x, os):
    N, C, H, W = x.shape
    out = np.zeros((N, C) + tuple(os))
    for i, j in itertools.product(range(os[0]), range(os[1])):
        h0, h1 = i * H // os[0], -(-(i + 1) * H // os[0])
        w0, w1 = j * W // os[1], -(-(j + 1) * W // os[1])
        out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def np_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---- conv2d --------------------------------------------------------------------

CONV_CASES = [  # (x shape, w shape, stride, padding, dilation, groups, bias)
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 0, 1, 1, True),
    ((1, 2, 5, 6), (3, 2, 3, 3), 2, 1, 1, 1, True),
    ((2, 4, 8, 8), (6, 2, 3, 3), 1, 1, 1, 2, False),  # groups
    ((1, 3, 9, 9), (2, 3, 3, 3), 1, 2, 2, 1, True),  # dilation
    ((2, 5, 4, 4), (7, 5, 1, 1), 1, 0, 1, 1, True),  # 1x1: the direct path
    ((1, 3, 11, 11), (2, 3, 7, 7), 2, 3, 1, 1, False),  # stem-like 7x7 stride 2
    ((3, 1, 1, 1), (2, 1, 1, 1), 1, 0, 1, 1, True),  # 1x1 image, batch 3
    ((1, 2, 6, 5), (3, 2, 2, 3), (2, 1), (1, 0), (1, 2), 1, True),  # asymmetric everything
    ((2, 4, 5, 5), (4, 1, 3, 3), 1, 1, 1, 4, True),  # depthwise
    ((2, 2, 5, 18), (3, 2, 3, 3), 1, 1, 1, 1, True),  # long output rows: the tap-major column matrix
    ((1, 2, 6, 21), (2, 2, 2, 3), 1, (0, 2), (1, 2), 1, True),  # tap-major with dilation
    ((2, 2, 9, 9), (3, 2, 8, 8), 1, 3, 1, 1, True),  # window rows of 8: every copy a full vector
    ((1, 2, 11, 12), (2, 2, 3, 9), 2, (1, 4), 1, 1, True),  # window rows longer than a vector
]


def _p(v):
    return (v, v) if isinstance(v, int) else v


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv2d(case, device):
    xs, ws, s, p, d, g, bias = case
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    fk_fn, t_fn = tfn(
        lambda m, x, w, *b: m.conv2d(x, w, b[0] if b else None, stride=s, padding=p, dilation=d, groups=g)
    )
    np_fn = lambda x, w, *b: np_conv2d(x, w, b[0] if b else None, _p(s), _p(p), _p(d), g)  # noqa: E731
    helper_test_op(
        shapes,
        fk_fn,
        np_fn,
        t_fn,
        layouts=("contiguous", "strided"),
        rtol=1e-4,
        atol=1e-5,
        max_grad_points=12,
        device=device,
    )


@pytest.mark.parametrize("width", [6, 19])  # short and long output rows: both column-matrix layouts
def test_conv2d_grid_against_reference(width, device):
    # every stride/padding/dilation/groups combination in a small grid, with the input gradient
    rng = np.random.default_rng(1)
    for s, p, d, g in itertools.product((1, 2), (0, 1, 2), (1, 2), (1, 2)):
        x, w, b = rng.standard_normal((3, 4, 7, width)), rng.standard_normal((6, 4 // g, 3, 2)), rng.standard_normal(6)
        if (7 + 2 * p - d * 2 - 1) < 0 or (width + 2 * p - d - 1) < 0:
            continue
        xt = fk.tensor(x, requires_grad=True, device=device)
        got = F.conv2d(xt, fk.tensor(w, device=device), fk.tensor(b, device=device), s, p, d, g)
        msg = f"s={s} p={p} d={d} g={g}"
        assert_close(got, np_conv2d(x, w, b, (s, s), (p, p), (d, d), g), rtol=1e-10, atol=1e-10, msg=msg)
        # the input gradient of sum(out * gout) is the forward's transpose: <conv(dx), gout> = <dx, x.grad>
        gout = rng.standard_normal(got.shape)
        (got * fk.tensor(gout, device=device)).sum().backward()
        dx = rng.standard_normal(x.shape)
        lhs = (np_conv2d(dx, w, None, (s, s), (p, p), (d, d), g) * gout).sum()
        assert abs(lhs - (dx * to_np(xt.grad)).sum()) <= 1e-9 * max(1.0, abs(lhs)), msg


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_in_chunks(stride, device):
    # column matrices over ~4 MB are built a few images at a time (here 2 + 2 + 1 images), and
    # the weight gradient gathers them again and sums the chunks
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((5, 16, 40, 40)), rng.standard_normal((8, 16, 3, 3))
    xt, wt = fk.tensor(x, requires_grad=True, device=device), fk.tensor(w, requires_grad=True, device=device)
    out = F.conv2d(xt, wt, padding=1, stride=stride)
    assert_close(out, np_conv2d(x, w, padding=(1, 1), stride=(stride, stride)), rtol=1e-10, atol=1e-10)
    gout = rng.standard_normal(out.shape)
    (out * fk.tensor(gout, device=device)).sum().backward()
    # <conv(x, dw), gout> = <dw, w.grad> and <conv(dx, w), gout> = <dx, x.grad>
    dw, dx = rng.standard_normal(w.shape), rng.standard_normal(x.shape)
    for a, b, direction, grad in [(x, dw, dw, wt.grad), (dx, w, dx, xt.grad)]:
        lhs = (np_conv2d(a, b, padding=(1, 1), stride=(stride, stride)) * gout).sum()
        assert abs(lhs - (direction * to_np(grad)).sum()) <= 1e-9 * abs(lhs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv2d_groups_stride_padding_dilation_wide(dtype, device):
    # channels across the GEMM's 64-wide tiles, with groups, stride 2, padding and dilation together;
    # the device against the CPU (forward and both gradients), and the CPU against NumPy
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 70, 11, 13)).astype(dtype)
    w = rng.standard_normal((130, 35, 3, 2)).astype(dtype)
    b = rng.standard_normal(130).astype(dtype)
    gout = None
    results = []
    for dev in ("cpu", device):
        xt, wt = fk.tensor(x, requires_grad=True, device=dev), fk.tensor(w, requires_grad=True, device=dev)
        bt = fk.tensor(b, requires_grad=True, device=dev)
        out = F.conv2d(xt, wt, bt, stride=2, padding=(2, 1), dilation=(2, 3), groups=2)
        if gout is None:
            gout = rng.standard_normal(out.shape).astype(dtype)
            want = np_conv2d(x.astype(np.float64), w.astype(np.float64), b, (2, 2), (2, 1), (2, 3), 2)
            assert_close(out, want, rtol=1e-4, atol=1e-4)
        (out * fk.tensor(gout, device=dev)).sum().backward()
        results.append([to_np(v) for v in (out, xt.grad, wt.grad, bt.grad)])
    tol = 1e-4 if dtype == "float32" else 1e-10
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)


def test_conv2d_empty_batch_and_channels(device):
    x = fk.zeros(0, 4, 5, 5, device=device, requires_grad=True)
    w = fk.ones(6, 2, 3, 3, device=device, requires_grad=True)
    out = F.conv2d(x, w, groups=2)
    assert out.shape == (0, 6, 3, 3)
    out.sum().backward()
    assert x.grad.shape == (0, 4, 5, 5) and w.grad.shape == (6, 2, 3, 3)
    # zeros, as torch (the CPU's weight gradient was left uninitialised for an empty batch)
    np.testing.assert_array_equal(to_np(w.grad), np.zeros((6, 2, 3, 3)))


def test_conv2d_padding_strings_and_unbatched(device):
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
    xt, wt = fk.tensor(x, device=device), fk.tensor(w, device=device)
    got = F.conv2d(xt, wt, padding="same")
    assert got.shape == (5, 8, 8)
    assert_close(got, np_conv2d(x[None], w, padding=(1, 1))[0], rtol=1e-10, atol=1e-10)
    assert F.conv2d(xt, wt, padding="valid").shape == (5, 6, 6)


def test_conv2d_thread_count_independent():
    rng = np.random.default_rng(3)
    x = fk.tensor(rng.standard_normal((8, 16, 14, 14)).astype(np.float32), requires_grad=True)
    w = fk.tensor(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), requires_grad=True)
    results = []
    for n in (1, 2):
        with fk_threads(n):
            x.grad = w.grad = None
            out = F.conv2d(x, w, padding=1)
            out.sum().backward()
            results.append((out.detach().numpy().copy(), x.grad.numpy().copy(), w.grad.numpy().copy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "args, match",
    [
        (((2, 3, 5, 5), (4, 2, 3, 3), {}), "do not match"),
        (((2, 3, 2, 2), (4, 3, 3, 3), {}), "too small"),
        (((3, 5, 5), (4, 3, 3, 3, 1), {}), "4-D weight"),
        (((2, 3, 5, 5), (4, 3, 3, 3), {"stride": 0}), "positive"),
    ],
)
def test_conv2d_errors(args, match):
    xs, ws, kw = args
    with pytest.raises(RuntimeError, match=match):
        F.conv2d(fk.zeros(*xs), fk.zeros(*ws), **kw)


# ---- pooling -------------------------------------------------------------------

POOL_CASES = [  # (shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 2, 7, 7), 3, 2, 1, 1, False),
    ((1, 2, 7, 6), (3, 2), (2, 1), (1, 0), 1, True),
    ((2, 1, 9, 9), 3, 2, 1, 2, False),
    ((1, 1, 1, 1), 1, 1, 0, 1, False),
    ((1, 3, 5, 5), 2, 2, 0, 1, True),
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_max_pool2d(case, device):
    shape, k, s, p, d, ceil = case
    fk_fn, t_fn = tfn(lambda m, x: m.max_pool2d(x, k, s, p, d, ceil_mode=ceil))
    np_fn = lambda x: np_pool(x, _p(k), _p(s if s is not None else k), _p(p), _p(d), "max", ceil_mode=ceil)  # noqa
    helper_test_op([shape], fk_fn, np_fn, t_fn, layouts=("contiguous", "strided"), device=device)


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[4] == 1], ids=lambda c: f"{c[0]}k{c[1]}")
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool2d(case, include_pad, device):
    shape, k, s, p, _, ceil = case
    fk_fn, t_fn = tfn(lambda m, x: m.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include_pad))
    np_fn = lambda x: np_pool(
        x,
        _p(k),
        _p(s if s is not None else k),
        _p(p),
        mode="avg",  # noqa: E731
        include_pad=include_pad,
        ceil_mode=ceil,
    )
    helper_test_op([shape], fk_fn, np_fn, t_fn, layouts=("contiguous", "strided"), device=device)


def test_max_pool2d_indices_match_torch(device):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6))
    out, idx = F.max_pool2d(fk.tensor(x, device=device), 2, return_indices=True)
    assert idx.dtype == fk.int64 and idx.shape == out.shape
    flat = x.reshape(2, 3, -1)
    np.testing.assert_array_equal(
        np.take_along_axis(flat, to_np(idx).reshape(2, 3, -1), 2).reshape(out.shape), to_np(out)
    )


@pytest.mark.parametrize(
    "shape, os", [((2, 3, 7, 7), (1, 1)), ((1, 2, 10, 7), (3, 4)), ((1, 1, 4, 4), (4, 4)), ((2, 2, 5, 5), (7, 7))]
)
def test_adaptive_avg_pool2d(shape, os, device):
    fk_fn, t_fn = tfn(lambda m, x: m.adaptive_avg_pool2d(x, os))
    helper_test_op(
        [shape], fk_fn, lambda x: np_adaptive_avg(x, os), t_fn, layouts=("contiguous", "strided"), device=device
    )


def test_pool_errors():
    with pytest.raises(RuntimeError, match="half"):
        F.max_pool2d(fk.zeros(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(RuntimeError, match="3-D .* or 4-D"):
        F.max_pool2d(fk.zeros(5, 5), 2)


# ---- batch norm ----------------------------------------------------------------


def np_batch_norm(x, w, b, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (3, 2, 4, 5), (2, 1, 1, 3)])
def test_batch_norm_training(shape, device):
    C = shape[1]
    fk_fn, t_fn = tfn(lambda m, x, w, b: m.batch_norm(x, None, None, w, b, training=True))
    helper_test_op(
        [shape, (C,), (C,)],
        fk_fn,
        np_batch_norm,
        t_fn,
        layouts=("contiguous", "strided"),
        rtol=1e-4,
        atol=1e-5,
        domain=[(-2, 2), (0.5, 2), (-1, 1)],
        device=device,
    )


def test_batch_norm_large_float32(device):
    # many images (float partials are flushed to double every 128), many channels (split
    # across threads), a large mean (the two-pass variance), every spatial size down to 1x1
    rng = np.random.default_rng(6)
    for shape in [(300, 40, 3, 3), (70, 33), (9, 5, 30, 31)]:
        x = (rng.standard_normal(shape) * 3 + 100).astype(np.float32)
        C = shape[1]
        w, b, gout = rng.standard_normal(C), rng.standard_normal(C), rng.standard_normal(shape)
        results = []
        for threads in (1, 2):
            with fk_threads(threads):
                xt = fk.tensor(x, requires_grad=True, device=device)
                wt = fk.tensor(w.astype(np.float32), requires_grad=True, device=device)
                out = F.batch_norm(xt, None, None, wt, fk.tensor(b.astype(np.float32), device=device), training=True)
                (out * fk.tensor(gout.astype(np.float32), device=device)).sum().backward()
                results.append([to_np(out), to_np(xt.grad), to_np(wt.grad)])
        for a, c in zip(*results):
            np.testing.assert_array_equal(a, c)  # the channel split does not change any result
        x64 = x.astype(np.float64)
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        m, v = x64.mean(axis=axes, keepdims=True), x64.var(axis=axes, keepdims=True)
        invstd = 1 / np.sqrt(v + 1e-5)
        xhat = (x64 - m) * invstd
        M = x.size / C
        sg, sgx = gout.sum(axis=axes, keepdims=True), (gout * xhat).sum(axis=axes, keepdims=True)
        dx = w.reshape(bshape) * invstd / M * (M * gout - sg - xhat * sgx)
        out, gx, gw = results[0]
        assert_close(out, xhat * w.reshape(bshape) + b.reshape(bshape), rtol=1e-4, atol=2e-4)
        assert_close(gx, dx, rtol=1e-3, atol=2e-4 * np.abs(dx).max())
        assert_close(gw, sgx.reshape(-1), rtol=1e-3, atol=1e-3)


def test_batch_norm_eval_and_running_stats(device):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3, 4, 4)) * 2 + 1
    rm, rv = fk.zeros(3, dtype=fk.float64, device=device), fk.ones(3, dtype=fk.float64, device=device)
    F.batch_norm(fk.tensor(x, device=device), rm, rv, training=True, momentum=0.1)
    axes = (0, 2, 3)
    assert_close(rm, 0.1 * x.mean(axis=axes), rtol=1e-10, atol=1e-12)
    assert_close(rv, 0.9 + 0.1 * x.var(axis=axes, ddof=1), rtol=1e-10, atol=1e-12)
    # eval mode normalises with the running statistics, and its gradient is the affine map
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    xt = fk.tensor(x, requires_grad=True, device=device)
    wt, bt = fk.tensor(w, requires_grad=True, device=device), fk.tensor(b, requires_grad=True, device=device)
    out = F.batch_norm(xt, rm, rv, wt, bt, training=False, eps=1e-5)
    shape = (1, 3, 1, 1)
    scale = w / np.sqrt(to_np(rv) + 1e-5)
    want = (x - to_np(rm).reshape(shape)) * scale.reshape(shape) + b.reshape(shape)
    assert_close(out, want, rtol=1e-10, atol=1e-10)
    out.sum().backward()
    assert_close(xt.grad, np.broadcast_to(scale.reshape(shape), x.shape), rtol=1e-10, atol=1e-12)
    assert_close(bt.grad, np.full(3, x.size / 3), rtol=1e-12)
    if torch is not None:
        trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
        TF.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.1)
        assert_close(rm, trm.numpy(), rtol=1e-10, atol=1e-12)
        assert_close(rv, trv.numpy(), rtol=1e-10, atol=1e-12)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(fk.zeros(1, 3), None, None, training=True)
    with pytest.raises(RuntimeError, match=r"\[3\]"):
        F.batch_norm(fk.zeros(4, 3), fk.zeros(2), fk.ones(2))


# ---- linear, activations ---------------------------------------------------------


@pytest.mark.parametrize(
    "xs, out_f, bias", [((5, 4), 3, True), ((2, 3, 4), 6, True), ((7, 1), 2, False), ((4,), 3, True), ((0, 4), 3, True)]
)
def test_linear(xs, out_f, bias, device):
    shapes = [xs, (out_f, xs[-1])] + ([(out_f,)] if bias else [])
    fk_fn, t_fn = tfn(lambda m, x, w, *b: m.linear(x, w, b[0] if b else None))
    helper_test_op(
        shapes, fk_fn, lambda x, w, *b: x @ w.T + (b[0] if b else 0), t_fn, rtol=1e-5, atol=1e-5, device=device
    )


def test_linear_errors():
    with pytest.raises(RuntimeError, match=r"\[2, 5\].*\[3, 4\]"):
        F.linear(fk.zeros(2, 5), fk.zeros(3, 4))


@pytest.mark.parametrize(
    "name, fn, np_fn",
    [
        (
            "gelu",
            lambda m, x: m.gelu(x),
            lambda x: 0.5 * x * (1 + np.vectorize(__import__("math").erf)(x / np.sqrt(2))),
        ),
        (
            "gelu_tanh",
            lambda m, x: m.gelu(x, approximate="tanh"),
            lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
        ),
        ("leaky_relu", lambda m, x: m.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
        ("softmax", lambda m, x: m.softmax(x, dim=-1), lambda x: np.exp(np_log_softmax(x))),
        ("log_softmax", lambda m, x: m.log_softmax(x, dim=-1), np_log_softmax),
        ("log_softmax_dim0", lambda m, x: m.log_softmax(x, dim=0), lambda x: np_log_softmax(x, 0)),
    ],
)
def test_activations(name, fn, np_fn, device):
    fk_fn, t_fn = tfn(fn)
    helper_test_op([(3, 7)], fk_fn, np_fn, t_fn, device=device)


def test_softmax_extreme_rows(device):
    x = fk.tensor([[1000.0, 1000.0, -1000.0], [-float("inf"), 0.0, -float("inf")]], device=device)
    assert_close(F.softmax(x, -1), [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], atol=0)
    assert_close(F.log_softmax(x, -1)[0, :2], [-np.log(2)] * 2)


# ---- losses ------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy(reduction, smoothing, device):
    target = np.array([0, 3, 1, 1, 4])

    def ref(x):
        logp = np_log_softmax(x)
        loss = -(1 - smoothing) * logp[np.arange(5), target] - smoothing * logp.mean(-1)
        return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]

    fk_fn, t_fn = tfn(
        lambda m, x: m.cross_entropy(
            x, (fk if m is F else torch).tensor(target, device=x.device), reduction=reduction, label_smoothing=smoothing
        )
    )
    helper_test_op([(5, 6)], fk_fn, ref, t_fn, domain=(-4, 4), device=device)


def test_cross_entropy_ignore_index_and_spatial(device):
    rng = np.random.default_rng(6)
    x, t = rng.standard_normal((4, 3, 2, 2)), rng.integers(0, 3, (4, 2, 2))
    t[0, 0, 0] = -100
    xt = fk.tensor(x, requires_grad=True, device=device)
    loss = F.cross_entropy(xt, fk.tensor(t, device=device))
    logp = np_log_softmax(np.moveaxis(x, 1, -1))
    keep = t != -100
    picked = np.take_along_axis(logp, np.where(keep, t, 0)[..., None], -1)[..., 0]
    assert_close(loss, -(picked * keep).sum() / keep.sum(), rtol=1e-10)
    loss.backward()
    assert np.all(to_np(xt.grad)[0, :, 0, 0] == 0)
    if torch is not None:
        tx = torch.tensor(x, requires_grad=True)
        TF.cross_entropy(tx, torch.tensor(t)).backward()
        assert_close(xt.grad, tx.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_cross_entropy_errors():
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.cross_entropy(fk.zeros(2, 3), fk.tensor([0, 7]))
    with pytest.raises(RuntimeError, match=r"\[2, 3\].*\[3\]"):
        F.cross_entropy(fk.zeros(2, 3), fk.tensor([0, 1, 2]))


@pytest.mark.parametrize(
    "name, fn, np_fn, domain",
    [
        (
            "nll_loss",
            lambda m, x: m.nll_loss(x, (fk if m is F else torch).tensor([1, 0, 2], device=x.device)),
            lambda x: -x[np.arange(3), [1, 0, 2]].mean(),
            (-2, 2),
        ),
        ("mse_loss", lambda m, x, y: m.mse_loss(x, y), lambda x, y: ((x - y) ** 2).mean(), (-2, 2)),
        ("l1_loss", lambda m, x, y: m.l1_loss(x, y), lambda x, y: np.abs(x - y).mean(), (-2, 2)),
        (
            "bce_logits",
            lambda m, x, y: m.binary_cross_entropy_with_logits(x, y),
            lambda x, y: (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))).mean(),
            (-3, 3),
        ),
        (
            "bce",
            lambda m, x, y: m.binary_cross_entropy(x, y),
            lambda x, y: -(y * np.log(x) + (1 - y) * np.log(1 - x)).mean(),
            (0.05, 0.95),
        ),
    ],
)
def test_losses(name, fn, np_fn, domain, device):
    fk_fn, t_fn = tfn(fn)
    n_in = fn.__code__.co_argcount - 1
    helper_test_op([(3, 3)] * n_in, fk_fn, np_fn, t_fn, domain=domain, device=device)


def test_embedding_and_dropout(device):
    w = fk.randn(5, 3, requires_grad=True, device=device)
    idx = fk.tensor([[0, 2], [2, 4]], device=device)
    out = F.embedding(idx, w, padding_idx=4)
    assert out.shape == (2, 2, 3)
    assert_close(out, to_np(w)[[[0, 2], [2, 4]]])
    out.sum().backward()
    assert_close(w.grad, [[1] * 3, [0] * 3, [2] * 3, [0] * 3, [0] * 3])
    fk.manual_seed(0)
    a = F.dropout(fk.ones(1000, device=device), p=0.3)
    fk.manual_seed(0)
    assert a.tolist() == F.dropout(fk.ones(1000, device=device), p=0.3).tolist()  # seeded
    kept = (a > 0).sum().item()
    an = to_np(a)
    assert 600 < kept < 800 and np.allclose(an[an > 0], 1 / 0.7)
    assert F.dropout(fk.ones(4, device=device), 0.5, training=False).tolist() == [1.0] * 4


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_ignore_index_and_reductions_as_torch(reduction):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 4))
    t = np.array([3, -100, 0, 2, -100])
    got = fk.tensor(x, requires_grad=True)
    want = torch.tensor(x, requires_grad=True)
    a = F.nll_loss(F.log_softmax(got, 1), fk.tensor(t), reduction=reduction)
    b = TF.nll_loss(TF.log_softmax(want, 1), torch.tensor(t), reduction=reduction)
    assert_close(a, b.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(tuple(b.shape))
    a.backward(fk.tensor(w))
    b.backward(torch.tensor(w))
    assert_close(got.grad, want.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert a.grad_fn.name() == b.grad_fn.name() == "NllLossBackward0"
