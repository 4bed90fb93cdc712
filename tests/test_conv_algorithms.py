"""Each CPU conv2d algorithm (GEMM lowering, Winograd, depthwise) against the float64 reference,
forced where the selection rule would not pick it, and the rule itself (fk.backends.cpu.conv_algorithm)."""

import numpy as np
import pytest

import fastkern as fk
import fastkern.nn.functional as F
from fastkern.backends import cpu
from helpers import fk_threads
from test_nn_functional import np_conv2d

# Winograd F(4x4, 3x3) in float32: measured max error / max |reference| about 5e-6 on these
# layers (GEMM: 4e-7); the bound leaves room for larger channel counts.
WINOGRAD_TOL = 3e-5

# Winograd runs on the GEMM micro-kernels whose panels hold whole 16-lane channel blocks (the
# AVX2 and AVX-512 ones); the portable kernels (FASTKERN_CPU_ISA=base) lower to GEMMs instead.
needs_winograd = pytest.mark.skipif(cpu.capability() == "base", reason="no Winograd on the portable kernels")


@pytest.fixture(autouse=True)
def auto_algorithm():
    yield
    cpu.set_conv_algorithm("auto")


def rel_err(got, want):
    got = got.numpy() if isinstance(got, fk.Tensor) else got
    return float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30))


def conv_and_grads(x, w, dtype, **kw):
    """out, dx, dw (NumPy arrays) of sum(out * gout) with gout fixed by the output's shape."""
    xt = fk.tensor(x, dtype=dtype, requires_grad=True)
    wt = fk.tensor(w, dtype=dtype, requires_grad=True)
    out = F.conv2d(xt, wt, **kw)
    gout = np.random.default_rng(1).standard_normal(tuple(out.shape))
    out.backward(fk.tensor(gout, dtype=dtype))
    return [t.numpy() for t in (out.detach(), xt.grad, wt.grad)]


# (N, C, K, H, W, padding): primes, 1x1 and 2x2 images, batch 1, channels across the 16-lane
# blocks and the GEMM panels, outputs that end mid-tile.
CASES = [
    (1, 1, 1, 1, 1, 1),
    (2, 3, 5, 2, 2, 1),
    (1, 5, 3, 6, 6, 2),
    (2, 16, 16, 8, 8, 1),
    (2, 17, 33, 13, 11, 0),
    (1, 20, 40, 5, 3, 1),
    (3, 32, 64, 14, 14, 1),
    (1, 37, 7, 9, 23, 1),
    (2, 64, 48, 7, 7, 1),
]


@needs_winograd
@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_winograd_matches_float64(case):
    N, C, K, H, W, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, 3, 3)) * 0.2
    xt32 = fk.tensor(x, dtype=fk.float32)
    assert cpu.conv_algorithm(xt32, w.shape, padding=p) in ("gemm", "winograd")
    cpu.set_conv_algorithm("winograd")
    assert cpu.conv_algorithm(xt32, w.shape, padding=p) == "winograd"
    got = conv_and_grads(x, w, fk.float32, padding=p)
    cpu.set_conv_algorithm("auto")  # the reference: float64, lowered to GEMMs, itself checked against NumPy
    want = conv_and_grads(x, w, fk.float64, padding=p)
    np.testing.assert_allclose(want[0], np_conv2d(x, w, padding=(p, p)), rtol=1e-10, atol=1e-10)
    for name, g, r in zip(("out", "dx", "dw"), got, want):
        assert g.dtype == np.float32
        assert rel_err(g, r) < WINOGRAD_TOL, name


@needs_winograd
def test_winograd_noncontiguous_input():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 9, 10, 32)).astype(np.float32)  # [N, H, W, C]
    w = (rng.standard_normal((32, 32, 3, 3)) * 0.1).astype(np.float32)
    cpu.set_conv_algorithm("winograd")
    xt = fk.tensor(x).permute(0, 3, 1, 2)
    assert not xt.is_contiguous()
    got = F.conv2d(xt, fk.tensor(w), padding=1)
    assert rel_err(got, np_conv2d(x.transpose(0, 3, 1, 2).astype(np.float64), w, padding=(1, 1))) < WINOGRAD_TOL


@needs_winograd
def test_winograd_error_on_a_resnet_layer():
    """The float32 error of F(4x4, 3x3) on a 256-channel layer, as stated in WINOGRAD_TOL."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 256, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((256, 256, 3, 3)) / 48).astype(np.float32)
    assert cpu.conv_algorithm(x.shape, w.shape, padding=1) == "winograd"
    got = F.conv2d(fk.tensor(x), fk.tensor(w), padding=1)
    ref = F.conv2d(fk.tensor(x, dtype=fk.float64), fk.tensor(w, dtype=fk.float64), padding=1).numpy()
    assert rel_err(got, ref) < WINOGRAD_TOL


@pytest.mark.parametrize("algo", ["gemm", pytest.param("winograd", marks=needs_winograd)])
def test_thread_count_bitwise(algo):
    rng = np.random.default_rng(3)
    x = fk.tensor(rng.standard_normal((5, 32, 14, 14)).astype(np.float32), requires_grad=True)
    w = fk.tensor(rng.standard_normal((48, 32, 3, 3)).astype(np.float32), requires_grad=True)
    cpu.set_conv_algorithm(algo)
    assert cpu.conv_algorithm(x, w, padding=1) == algo
    results = []
    for n in (1, 2):
        with fk_threads(n):
            x.grad = w.grad = None
            out = F.conv2d(x, w, padding=1)
            (out * out).sum().backward()
            results.append([t.numpy().copy() for t in (out.detach(), x.grad, w.grad)])
    if algo == "winograd":
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)


# (N, C, mult, H, W, kernel, stride, padding, dilation): EfficientNet's 3x3 and 5x5 at strides
# 1 and 2, channel multipliers, odd sizes, 1x1 images, rows longer than the accumulator chunk,
# channels across the 8- and 16-lane blocks of the float32 lane kernels, padding beyond the
# filter's reach, filters those kernels take through their general path (dilated, 7 wide).
DEPTHWISE = [
    (2, 3, 1, 7, 9, 3, 1, 1, 1),
    (2, 4, 2, 8, 8, 3, 2, 1, 1),
    (1, 5, 1, 37, 41, 5, 2, 2, 1),
    (3, 2, 3, 6, 5, 3, 3, 0, 2),
    (1, 7, 1, 1, 1, 3, 1, 1, 1),
    (2, 3, 1, 70, 61, 5, 1, 2, 1),
    (1, 2, 1, 11, 13, (3, 5), (1, 2), (1, 2), (2, 1)),
    (2, 19, 1, 12, 10, 3, 2, 1, 1),
    (1, 40, 1, 9, 9, 5, 1, 2, 1),
    (1, 17, 1, 6, 7, 3, 1, 3, 1),
    (1, 11, 1, 15, 15, 3, 1, 2, 2),
    (2, 33, 1, 13, 12, 7, 3, 3, 1),
]


@pytest.mark.parametrize("case", DEPTHWISE, ids=[str(c) for c in DEPTHWISE])
@pytest.mark.parametrize("dtype", [fk.float32, fk.float64])
def test_depthwise_matches_float64(case, dtype):
    N, C, mult, H, W, k, s, p, d = case
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((C * mult, 1, kh, kw))
    kw_ = dict(stride=s, padding=p, dilation=d, groups=C)
    assert cpu.conv_algorithm(x.shape, w.shape, **kw_) == "depthwise"
    got = conv_and_grads(x, w, dtype, **kw_)
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    np.testing.assert_allclose(got[0], np_conv2d(x, w, None, pair(s), pair(p), pair(d), C), rtol=1e-5, atol=1e-5)
    cpu.set_conv_algorithm("gemm")  # the reference gradients: float64, lowered to GEMMs
    want = conv_and_grads(x, w, fk.float64, **kw_)
    tol = 1e-12 if dtype == fk.float64 else 1e-5
    for name, g, r in zip(("out", "dx", "dw"), got, want):
        assert rel_err(g, r) < tol, name


def test_depthwise_thread_count_bitwise():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 24, 17, 19)).astype(np.float32)
    w = rng.standard_normal((24, 1, 5, 5)).astype(np.float32)
    results = []
    for n in (1, 2):
        with fk_threads(n):
            results.append(conv_and_grads(x, w, fk.float32, padding=2, stride=2, groups=24))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@needs_winograd
def test_selection_rule():
    resnet = ((8, 64, 56, 56), (64, 64, 3, 3))
    assert cpu.conv_algorithm(*resnet, padding=1) == "winograd"
    assert cpu.conv_algorithm(*resnet, padding=1, stride=2) == "gemm"
    assert cpu.conv_algorithm(*resnet, padding=1, dilation=2) == "gemm"
    assert cpu.conv_algorithm((8, 64, 56, 56), (64, 64, 5, 5), padding=2) == "gemm"
    assert cpu.conv_algorithm((8, 64, 56, 56), (64, 32, 3, 3), padding=1, groups=2) == "gemm"
    assert cpu.conv_algorithm((64, 1, 28, 28), (32, 1, 3, 3)) == "gemm"  # too few channels
    assert cpu.conv_algorithm((1, 512, 7, 7), (512, 512, 3, 3), padding=1) == "winograd"
    assert cpu.conv_algorithm((8, 16, 28, 28), (32, 16, 3, 3), padding=1) == "winograd"
    assert cpu.conv_algorithm((8, 8, 28, 28), (32, 8, 3, 3), padding=1) == "gemm"  # too few channels
    assert cpu.conv_algorithm((8, 32, 28, 28), (8, 32, 3, 3), padding=1) == "gemm"
    assert cpu.conv_algorithm(fk.zeros(8, 64, 56, 56, dtype=fk.float64), resnet[1], padding=1) == "gemm"
    assert cpu.conv_algorithm((8, 64, 56, 56), (64, 1, 3, 3), padding=1, groups=64) == "depthwise"
    assert cpu.conv_algorithm((8, 64, 56, 56), (128, 1, 5, 5), stride=2, groups=64) == "depthwise"
    assert cpu.conv_algorithm((8, 64, 56, 56), (64, 2, 3, 3), groups=32) == "gemm"
    cpu.set_conv_algorithm("gemm")
    assert cpu.conv_algorithm(*resnet, padding=1) == "gemm"
    cpu.set_conv_algorithm("winograd")
    assert cpu.conv_algorithm((64, 1, 28, 28), (32, 1, 3, 3)) == "winograd"
    assert cpu.conv_algorithm((8, 64, 56, 56), (64, 64, 3, 3), padding=3) == "gemm"  # does not apply
    cpu.set_conv_algorithm("depthwise")
    assert cpu.conv_algorithm(*resnet, padding=1) == "gemm"
    with pytest.raises(ValueError, match="one of"):
        cpu.set_conv_algorithm("fft")
