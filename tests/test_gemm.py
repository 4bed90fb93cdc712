"""The GEMM behind matmul/addmm: transposes, strides, batches, odd sizes, empty sizes,
exact integers, the accumulate path (addmm), thread-count independence and every ISA path.

Float results are checked against NumPy float64 with the rigorous rounding bound of a
length-K dot product, |err| <= K * eps * (|A| @ |B|), so a wrong element cannot hide.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastkern as fk
from helpers import fk_and_torch, fk_threads, helper_test_op, to_np

EPS = {"float32": np.finfo(np.float32).eps, "float64": np.finfo(np.float64).eps}
# (M, N, K): primes and sizes around the micro-tile (up to 14 x 32), K-block (256) and
# column-sweep (512) edges, skinny MLP shapes, and 1s.
SIZES = [
    (1, 1, 1),
    (1, 7, 31),
    (7, 1, 31),
    (31, 67, 1),
    (7, 31, 67),
    (67, 129, 31),
    (129, 67, 7),
    (14, 32, 256),
    (15, 33, 257),
    (67, 16, 129),
    (40, 17, 300),
    (64, 30, 784),
    (784, 30, 64),
    (64, 784, 30),
    (29, 531, 600),
]


def check(got, a, b, dtype, c=None):
    """got == c + a @ b within the float rounding bound (a, b, c float64 NumPy arrays)."""
    got = to_np(got).astype(np.float64)
    want = a @ b + (0 if c is None else c)
    k = a.shape[-1]
    bound = (k + 2) * EPS[dtype] * (np.abs(a) @ np.abs(b) + (0 if c is None else np.abs(c))) + 1e-300
    assert got.shape == want.shape
    err = np.abs(got - want)
    assert np.all(err <= bound), f"max err {err.max():.3g}, worst excess {np.max(err / bound):.3g}x bound"


def rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ta", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("tb", [False, True], ids=["B", "Bt"])
@pytest.mark.parametrize("m, n, k", SIZES, ids=[f"{m}x{n}x{k}" for m, n, k in SIZES])
def test_transposes(m, n, k, ta, tb, dtype, device):
    rng = np.random.default_rng(m * 1000 + n + k)
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    # A transposed operand is the .T view of a contiguous array of the other shape.
    fa = fk.tensor(np.ascontiguousarray(a.T), device=device).T if ta else fk.tensor(a, device=device)
    fb = fk.tensor(np.ascontiguousarray(b.T), device=device).T if tb else fk.tensor(b, device=device)
    if min(m, n, k) > 1:
        assert fa.is_contiguous() != ta and fb.is_contiguous() != tb
    out = fa @ fb
    assert out.dtype == getattr(fk, dtype)
    check(out, a.astype(np.float64), b.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strided_operands(dtype, device):
    rng = np.random.default_rng(1)
    big_a, big_b = rand(rng, (90, 140), dtype), rand(rng, (150, 80), dtype)
    views = [
        (lambda x: x[::2, 1::3], lambda x: x[:, 3:50]),  # row and column steps
        (lambda x: x[5:40, 7:70], lambda x: x[::3, ::2]),  # offsets into a larger matrix
        (lambda x: x[::3, ::2].T, lambda x: x[1:71:2, 2::2]),  # transposed and stepped
    ]
    for va, vb in views:
        a, b = va(big_a), vb(big_b)
        k = min(a.shape[1], b.shape[0])
        a, b = a[:, :k], b[:k]
        out = va(fk.tensor(big_a, device=device))[:, :k] @ vb(fk.tensor(big_b, device=device))[:k]
        check(out, a.astype(np.float64), b.astype(np.float64), dtype)
    # Stride-0 (expanded) operands.
    col = rand(rng, (33, 1), dtype)
    b = rand(rng, (40, 17), dtype)
    out = fk.tensor(col, device=device).expand(33, 40) @ fk.tensor(b, device=device)
    check(out, np.broadcast_to(col, (33, 40)).astype(np.float64), b.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "ashape, bshape",
    [
        ((64, 64, 78), (78, 30)),  # shared B: batch folded into M
        ((3, 5, 20, 33), (33, 9)),  # two batch dims folded
        ((6, 15, 40), (6, 40, 21)),  # both batched, small items (run in parallel)
        ((2, 1, 70, 300), (3, 300, 90)),  # broadcast batch dims, larger items
        ((4, 1, 1), (4, 1, 1)),
    ],
)
def test_batched(ashape, bshape, dtype, device):
    rng = np.random.default_rng(2)
    a, b = rand(rng, ashape, dtype), rand(rng, bshape, dtype)
    check(fk.tensor(a, device=device) @ fk.tensor(b, device=device), a.astype(np.float64), b.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batched_non_foldable_views(dtype, device):
    rng = np.random.default_rng(3)
    a, b = rand(rng, (20, 8, 30), dtype), rand(rng, (30, 11), dtype)
    fa, fb = fk.tensor(a, device=device), fk.tensor(b, device=device)
    at = fk.tensor(np.ascontiguousarray(a.transpose(1, 0, 2)), device=device).transpose(0, 1)  # batch stride != M*K
    check(at @ fb, a.astype(np.float64), b.astype(np.float64), dtype)
    check(fa[::2] @ fb, a[::2].astype(np.float64), b.astype(np.float64), dtype)
    check(fa[:, 1:5] @ fb, a[:, 1:5].astype(np.float64), b.astype(np.float64), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8"])
@pytest.mark.parametrize(
    "ashape, bshape",
    [((3, 0), (0, 4)), ((0, 5), (5, 4)), ((3, 5), (5, 0)), ((2, 0, 5), (5, 3)), ((2, 3, 0), (2, 0, 4))],
)
def test_empty(ashape, bshape, dtype, device):
    out = fk.ones(*ashape, dtype=getattr(fk, dtype), device=device) @ fk.ones(
        *bshape, dtype=getattr(fk, dtype), device=device
    )
    want = np.ones(ashape, dtype) @ np.ones(bshape, dtype)
    assert out.shape == want.shape and out.dtype == getattr(fk, dtype)
    np.testing.assert_array_equal(to_np(out), want)


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 31, 67), (67, 129, 31), (70, 80, 300)])
def test_integers_exact(m, n, k, device):
    rng = np.random.default_rng(4)
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    # Products up to 2^52 and sums beyond 2^53: a detour through float64 would round.
    a = rng.integers(-(2**26), 2**26, (m, k))
    b = rng.integers(-(2**26), 2**26, (k, n))
    np.testing.assert_array_equal(to_np(t(a) @ t(b)), a @ b)
    np.testing.assert_array_equal(to_np(t(a).T @ t(a)), a.T @ a)
    a8, b8 = a.astype(np.uint8), b.astype(np.uint8)
    np.testing.assert_array_equal(to_np(t(a8) @ t(b8)), a8 @ b8)  # wraps modulo 256


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (7, 31, 67), (64, 30, 784), (100, 600, 520), (5, 4, 0)])
@pytest.mark.parametrize("cshape", ["full", "row", "scalar"])
def test_addmm_accumulates(m, n, k, cshape, dtype, device):
    # addmm accumulates the product into a copy of input: the gemm's accumulate=True path,
    # across several K blocks for k > 256.
    rng = np.random.default_rng(5)
    c = rand(rng, {"full": (m, n), "row": (n,), "scalar": ()}[cshape], dtype)
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    out = fk.addmm(t(c), t(a), t(np.ascontiguousarray(b.T)).T)
    check(out, a.astype(np.float64), b.astype(np.float64), dtype, np.broadcast_to(c, (m, n)).astype(np.float64))


def test_addmm_gradients(device):
    fk_fn, torch_fn = fk_and_torch(lambda m, c, a, b: m.addmm(c, a, b))
    helper_test_op(
        [(5,), (3, 4), (4, 5)], fk_fn, lambda c, a, b: c + a @ b, torch_fn, rtol=1e-4, atol=1e-5, device=device
    )


def test_batched_shared_weight_gradient(device):
    # b shared by all batch items: its gradient is one product over all rows.
    helper_test_op(
        [(3, 4, 5), (5, 2)],
        *fk_and_torch(lambda m, a, b: a @ b)[:1],
        np.matmul,
        fk_and_torch(lambda m, a, b: a @ b)[1],
        rtol=1e-4,
        atol=1e-5,
        device=device,
    )


def test_addmm_errors():
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        fk.addmm(fk.ones(2), fk.ones(2, 3), fk.ones(4, 2))
    with pytest.raises(RuntimeError, match="2-D"):
        fk.addmm(fk.ones(2), fk.ones(2, 3, 1), fk.ones(3, 2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_count_does_not_change_results(dtype):
    rng = np.random.default_rng(6)
    cases = [
        ((300, 700), (700, 257), False),
        ((257, 700), (700, 300), True),
        ((64, 784), (784, 30), False),
        ((16, 64, 100), (100, 40), False),
        ((16, 64, 100), (16, 100, 40), False),
    ]
    for ashape, bshape, tb in cases:
        a, b = fk.tensor(rand(rng, ashape, dtype)), fk.tensor(rand(rng, bshape, dtype))
        b = b.mT.contiguous().mT if tb else b
        results = []
        for threads in (1, 2, 3):
            with fk_threads(threads):
                results.append((a @ b).numpy())
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("isa", ["base", "avx2"])
def test_lower_isa_paths(isa):
    # Each ISA has its own micro-kernel and tile shape: run a few products on the forced path.
    script = """
import numpy as np, fastkern as fk
assert fk.backends.cpu.capability() == ISA, fk.backends.cpu.capability()
rng = np.random.default_rng(0)
for dt, tol in (("float32", 1e-4), ("float64", 1e-12)):
    for m, n, k in ((1, 1, 1), (7, 31, 67), (67, 129, 300), (64, 30, 784), (70, 10, 300)):
        a, b, c = (rng.standard_normal(s).astype(dt) for s in ((m, k), (k, n), (m, n)))
        bt = fk.tensor(np.ascontiguousarray(b.T)).T
        for got, want in ((fk.tensor(a) @ bt, a @ b), (fk.addmm(fk.tensor(c), fk.tensor(a), bt), c + a @ b)):
            err = np.abs(got.numpy() - want).max()
            assert err <= tol * np.sqrt(k) * 10, (dt, m, n, k, err)
print("ok")
""".replace("ISA", repr(isa))
    if isa == "avx2" and fk.backends.cpu.capability() == "base":
        pytest.skip("no x86 AVX2 path on this machine")
    env = dict(os.environ, FASTKERN_CPU_ISA=isa)
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


# ---- shapes around the CUDA kernel's tiles ---------------------------------------------------
# The CUDA GEMM computes 64 x 64 (float64, small float32 products) or 128 x 128 (float32 with
# at least 132 such tiles) blocks of C over K slices of 16 or 8: sizes at and across those edges,
# primes, and 1s. They run on every device (cheap on the CPU).
TILE_SIZES = [(1, 1, 1), (17, 33, 65), (64, 64, 64), (65, 129, 31), (31, 32, 33), (127, 128, 129), (1, 257, 255)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m, n, k", TILE_SIZES, ids=[f"{m}x{n}x{k}" for m, n, k in TILE_SIZES])
def test_tile_edges(m, n, k, dtype, device):
    rng = np.random.default_rng(m + 7 * n + 13 * k)
    a, b = rand(rng, (m, k), dtype), rand(rng, (k, n), dtype)
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    for fa, fb in [(t(a), t(b)), (t(np.ascontiguousarray(a.T)).T, t(np.ascontiguousarray(b.T)).T)]:
        check(fa @ fb, a.astype(np.float64), b.astype(np.float64), dtype)


@pytest.mark.parametrize("ta", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("tb", [False, True], ids=["B", "Bt"])
def test_big_tiles_batched(ta, tb, device):
    # 40 products of 2 x 2 tiles of 128: the float32 kernel's large tiles, with edges in M, N, K.
    rng = np.random.default_rng(8)
    a, b = rand(rng, (40, 129, 19), "float32"), rand(rng, (40, 19, 130), "float32")
    fa = fk.tensor(np.ascontiguousarray(a.transpose(0, 2, 1)), device=device).mT if ta else fk.tensor(a, device=device)
    fb = fk.tensor(np.ascontiguousarray(b.transpose(0, 2, 1)), device=device).mT if tb else fk.tensor(b, device=device)
    check(fa @ fb, a.astype(np.float64), b.astype(np.float64), "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_batched_broadcast_and_many_items(dtype, device):
    rng = np.random.default_rng(9)
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    mk = (lambda s: rng.integers(-50, 50, s)) if dtype == "int64" else (lambda s: rand(rng, s, dtype))  # noqa: E731
    # broadcast batch dims on both sides (offsets that do not step evenly), one side transposed
    a, b = mk((2, 1, 33, 17)), mk((3, 17, 65))
    got = t(a) @ t(np.ascontiguousarray(b.transpose(0, 2, 1))).mT
    if dtype == "int64":
        np.testing.assert_array_equal(to_np(got), a @ b)
    else:
        check(got, a.astype(np.float64), b.astype(np.float64), dtype)
    if dtype == "float64":
        return  # (the same kernel as float32 below)
    # more batch items than a grid dimension holds (65535)
    a, b = mk((65537, 1, 2)), mk((65537, 2, 3))
    got = t(a) @ t(b)
    if dtype == "int64":
        np.testing.assert_array_equal(to_np(got), a @ b)
    else:
        check(got, a.astype(np.float64), b.astype(np.float64), dtype)


def test_more_row_tiles_than_a_grid_dimension(device):
    # 65536 row tiles of 64 (float64): the grid holds 65535, the kernel loops over the rest
    m = 65535 * 64 + 1
    a = np.arange(m, dtype=np.float64).reshape(m, 1) % 1000
    b = np.array([[2.0, -1.0]])
    np.testing.assert_array_equal(to_np(fk.tensor(a, device=device) @ fk.tensor(b, device=device)), a @ b)


@pytest.mark.parametrize("dtype", ["int64", "uint8"])
def test_integers_transposed_and_accumulated(dtype, device):
    rng = np.random.default_rng(10)
    a, b, c = rng.integers(0, 200, (33, 65)), rng.integers(0, 200, (65, 17)), rng.integers(0, 200, (33, 17))
    a, b, c = a.astype(dtype), b.astype(dtype), c.astype(dtype)
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    at, bt = t(np.ascontiguousarray(a.T)).T, t(np.ascontiguousarray(b.T)).T
    np.testing.assert_array_equal(to_np(at @ bt), a @ b)
    np.testing.assert_array_equal(to_np(fk.addmm(t(c), at, bt)), c + a @ b)
    z = fk.addmm(t(c), t(a[:, :0]), t(b[:0]))  # K = 0: input unchanged
    np.testing.assert_array_equal(to_np(z), c)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_results_reproducible(dtype, device):
    rng = np.random.default_rng(11)
    a, b = fk.tensor(rand(rng, (130, 300), dtype), device=device), fk.tensor(rand(rng, (300, 70), dtype), device=device)
    first = to_np(a @ b)
    for _ in range(2):
        np.testing.assert_array_equal(to_np(a @ b), first)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_k_small_c(dtype, device):
    # few tiles of C and a long K (a weight gradient): the CUDA GEMM splits K into parts and adds
    # them in order; plain, transposed, batched and accumulated (addmm)
    rng = np.random.default_rng(12)
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    a, b, c = rand(rng, (7, 5001), dtype), rand(rng, (5001, 9), dtype), rand(rng, (7, 9), dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    check(t(a) @ t(b), a64, b64, dtype)
    check(t(np.ascontiguousarray(a.T)).T @ t(np.ascontiguousarray(b.T)).T, a64, b64, dtype)
    check(fk.addmm(t(c), t(a), t(b)), a64, b64, dtype, c.astype(np.float64))
    a, b = rand(rng, (3, 4, 2100), dtype), rand(rng, (3, 2100, 5), dtype)
    check(t(a) @ t(b), a.astype(np.float64), b.astype(np.float64), dtype)
    first = to_np(t(a) @ t(b))
    np.testing.assert_array_equal(to_np(t(a) @ t(b)), first)
