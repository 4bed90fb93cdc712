"""fastkern.linalg: det, inv, solve, cholesky, qr, eigh and svd (LU, Cholesky, Householder and
Jacobi kernels of our own) and the norms (vector_norm, matrix_norm, norm, Tensor.norm), against
NumPy float64 and PyTorch, with numerical gradients in float64."""

import math

import numpy as np
import pytest

import fastkern as fk
from helpers import assert_close, numerical_grads, to_np, torch

needs_torch = pytest.mark.skipif(torch is None, reason="compares with torch")
RNG = np.random.default_rng


def well_conditioned(shape, seed=0):
    """Random square matrices with a strong diagonal (so det, inv and solve are well-posed)."""
    n = shape[-1]
    return RNG(seed).standard_normal(shape) + 3 * np.eye(n)


def spd(shape, seed=0):
    a = RNG(seed).standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def check_grad(fn, arrays, ref, seed=0):
    """Gradients of sum(fn(*tensors) * w) against central differences of the NumPy reference."""
    xs = [fk.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*xs)
    w = RNG(seed + 7).standard_normal(out.shape)
    out.backward(fk.tensor(w))
    for x, (num, points) in zip(xs, numerical_grads(lambda arrs: ref(*arrs), arrays, w, RNG(seed))):
        assert_close(to_np(x.grad).reshape(-1)[points], num.reshape(-1)[points], rtol=1e-5, atol=1e-7)


SQUARE_SHAPES = [(1, 1), (3, 3), (5, 5), (2, 4, 4), (2, 1, 3, 3)]


@pytest.mark.parametrize("shape", SQUARE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_det_and_inv_values(shape, dtype):
    a = well_conditioned(shape)
    x = fk.tensor(a, dtype=getattr(fk, dtype))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    assert_close(to_np(fk.linalg.det(x)), np.linalg.det(a), **tol)
    assert_close(to_np(fk.linalg.inv(x)), np.linalg.inv(a), **tol)
    assert fk.linalg.det(x).dtype == x.dtype and x.det().shape == shape[:-2] and x.inverse().shape == shape


def test_det_needs_pivoting_and_counts_swaps():
    a = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [4.0, -3.0, 8.0]])  # a zero first pivot
    assert_close(to_np(fk.det(fk.tensor(a, dtype=fk.float64))), np.linalg.det(a), rtol=1e-12)
    p = np.eye(4)[[1, 0, 3, 2]]  # two swaps: det 1
    assert fk.linalg.det(fk.tensor(p)).item() == 1.0 and fk.linalg.det(fk.tensor(p[[1, 0, 2, 3]])).item() == -1.0
    assert fk.linalg.det(fk.zeros(3, 3)).item() == 0.0  # singular: 0, no error


def test_empty_matrices_and_batches():
    assert fk.linalg.det(fk.zeros(0, 0)).item() == 1.0 and fk.linalg.inv(fk.zeros(2, 0, 0)).shape == (2, 0, 0)
    assert fk.linalg.det(fk.zeros(0, 3, 3)).shape == (0,) and fk.linalg.cholesky(fk.zeros(0, 2, 2)).shape == (0, 2, 2)
    assert fk.linalg.solve(fk.eye(3), fk.zeros(3, 0)).shape == (3, 0)


@pytest.mark.parametrize(
    "sa, sb",
    [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 4, 4), (2, 4)), ((2, 4, 4), (4, 1)), ((1, 3, 3), (5, 3, 2))],
    ids=str,
)
def test_solve_values_shapes_and_gradients(sa, sb):
    a, b = well_conditioned(sa), RNG(1).standard_normal(sb)
    got = fk.linalg.solve(fk.tensor(a), fk.tensor(b))
    vec = len(sb) == 1 or (len(sb) == len(sa) - 1 and sb == sa[:-1])
    want = np.linalg.solve(a, b[..., None])[..., 0] if vec else np.linalg.solve(a, b)
    assert got.shape == want.shape
    assert_close(to_np(got), want, rtol=1e-10, atol=1e-10)

    def ref(x, y):
        return np.linalg.solve(x, y[..., None])[..., 0] if vec else np.linalg.solve(x, y)

    check_grad(fk.linalg.solve, [a, b], ref)


def test_solve_left_false():
    a, b = well_conditioned((3, 3)), RNG(2).standard_normal((2, 3))
    assert_close(to_np(fk.linalg.solve(fk.tensor(a), fk.tensor(b), left=False)), b @ np.linalg.inv(a), rtol=1e-10)


@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (3, 2, 2)], ids=str)
def test_det_and_inv_gradients(shape):
    check_grad(fk.linalg.det, [well_conditioned(shape)], np.linalg.det)
    check_grad(fk.linalg.inv, [well_conditioned(shape)], np.linalg.inv)


@pytest.mark.parametrize("shape", [(1, 1), (4, 4), (2, 3, 3)], ids=str)
def test_cholesky_values_and_gradient(shape):
    a = spd(shape)
    L = fk.linalg.cholesky(fk.tensor(a))
    assert_close(to_np(L), np.linalg.cholesky(a), rtol=1e-10, atol=1e-12)
    assert_close(to_np(fk.linalg.cholesky(fk.tensor(a), upper=True)), np.swapaxes(np.linalg.cholesky(a), -1, -2))
    # A symmetric perturbation keeps A positive-definite; the gradient is symmetric, as torch's.
    check_grad(
        lambda x: fk.linalg.cholesky((x + x.mT) * 0.5),
        [a],
        lambda x: np.linalg.cholesky((x + np.swapaxes(x, -1, -2)) / 2),
    )


def test_cholesky_reads_the_lower_triangle_only():
    a = spd((3, 3))
    junk = a + np.triu(np.full((3, 3), 100.0), 1)
    assert_close(to_np(fk.linalg.cholesky(fk.tensor(junk))), np.linalg.cholesky(a), rtol=1e-12)


@needs_torch
def test_factorisations_match_torch_values_names_and_gradients():
    a, b = well_conditioned((2, 3, 3)), RNG(3).standard_normal((2, 3, 2))
    s = spd((2, 3, 3))
    cases = {
        "det": (lambda m, x, y: m.linalg.det(x), a),
        "inv": (lambda m, x, y: m.linalg.inv(x), a),
        "solve": (lambda m, x, y: m.linalg.solve(x, y), a),
        "cholesky": (lambda m, x, y: m.linalg.cholesky(x), s),
    }
    for name, (f, arr) in cases.items():
        fx, fy = fk.tensor(arr, requires_grad=True), fk.tensor(b, requires_grad=True)
        tx, ty = torch.tensor(arr, requires_grad=True), torch.tensor(b, requires_grad=True)
        fo, to = f(fk, fx, fy), f(torch, tx, ty)
        assert fo.grad_fn.name() == to.grad_fn.name(), name
        assert_close(to_np(fo), to.detach().numpy(), rtol=1e-10, atol=1e-12)
        w = RNG(4).standard_normal(tuple(to.shape))
        fo.backward(fk.tensor(w))
        to.backward(torch.tensor(w))
        assert_close(to_np(fx.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-10, msg=name)
        if name == "solve":
            assert_close(to_np(fy.grad), ty.grad.numpy(), rtol=1e-9, atol=1e-10)


@needs_torch
def test_factorisation_errors_as_torch():
    def message(f, *args):
        with pytest.raises(RuntimeError) as e:
            f(*args)
        return str(e.value)

    assert message(fk.linalg.inv, fk.zeros(3, 3)) == message(torch.linalg.inv, torch.zeros(3, 3))
    assert message(fk.linalg.cholesky, -fk.eye(3)) == message(torch.linalg.cholesky, -torch.eye(3))
    with pytest.raises(RuntimeError, match=r"\(Batch element 1\): The factorization could not be completed"):
        fk.linalg.cholesky(fk.stack([fk.eye(2), -fk.eye(2)]))
    with pytest.raises(RuntimeError, match="singular"):
        fk.linalg.solve(fk.zeros(2, 2), fk.ones(2))
    with pytest.raises(RuntimeError, match="must be batches of square matrices, but they are 2 by 3 matrices"):
        fk.linalg.det(fk.ones(2, 3))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        fk.linalg.inv(fk.ones(3))
    with pytest.raises(RuntimeError, match="Expected a floating point tensor as input. Got int64"):
        fk.linalg.det(fk.ones(2, 2, dtype=fk.int64))
    with pytest.raises(RuntimeError, match="Expected A and B to have the same dtype"):
        fk.linalg.solve(fk.eye(2), fk.ones(2, dtype=fk.float64))
    with pytest.raises(RuntimeError, match=r"Incompatible shapes of A and B .*\[2, 2\] and \[3\]"):
        fk.linalg.solve(fk.eye(2), fk.ones(3))


@pytest.mark.skipif(not fk.cuda.is_available(), reason="needs a CUDA device")
def test_factorisations_on_cuda_say_they_have_no_kernel():
    with pytest.raises(NotImplementedError, match="linalg.det has no cuda:0 kernel yet"):
        fk.linalg.det(fk.eye(2, device="cuda"))


# ----------------------------------------------------------------------------- norms
def np_vector_norm(a, ord, axis):
    a = np.abs(a)
    if ord == math.inf:
        return a.max(axis=axis)
    if ord == -math.inf:
        return a.min(axis=axis)
    if ord == 0:
        return (a != 0).sum(axis=axis).astype(a.dtype)
    return (a**ord).sum(axis=axis) ** (1 / ord)


ORDS = [2, 1, 3, 1.5, 0.5, -1, 0, math.inf, -math.inf]


@pytest.mark.parametrize("ord", ORDS, ids=str)
@pytest.mark.parametrize("dim", [None, 1, (0, 2), -1], ids=str)
def test_vector_norm_values_and_gradients(ord, dim):
    a = RNG(5).standard_normal((3, 4, 2))
    axis = dim if dim is not None else None
    got = fk.linalg.vector_norm(fk.tensor(a), ord, dim)
    assert_close(to_np(got), np_vector_norm(a, ord, axis), rtol=1e-12)
    assert fk.linalg.vector_norm(fk.tensor(a), ord, dim, keepdim=True).ndim == 3
    if ord not in (0, math.inf, -math.inf):
        check_grad(lambda x: fk.linalg.vector_norm(x, ord, dim), [a], lambda x: np_vector_norm(x, ord, axis))


@needs_torch
@pytest.mark.parametrize("ord", ORDS, ids=str)
def test_vector_norm_gradient_at_zeros_matches_torch(ord):
    a = RNG(6).standard_normal((3, 4))
    a[0, 1] = 0
    a[2] = 0  # a zero row: norm 0
    x, y = fk.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    fo, to = fk.linalg.vector_norm(x, ord, 1), torch.linalg.vector_norm(y, ord, 1)
    assert_close(to_np(fo), to.detach().numpy(), rtol=1e-12)
    fo.sum().backward()
    to.sum().backward()
    want = np.zeros_like(a) if y.grad is None else y.grad.numpy()  # torch leaves ord 0's at None
    assert_close(to_np(x.grad), want, rtol=1e-10, atol=1e-12)


@needs_torch
def test_matrix_norm_norm_and_tensor_norm_match_torch():
    a = RNG(7).standard_normal((2, 3, 4))
    for ord in ["fro", 1, -1, math.inf, -math.inf, "nuc", 2, -2]:
        x, y = fk.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        fo, to = fk.linalg.matrix_norm(x, ord), torch.linalg.matrix_norm(y, ord)
        assert_close(to_np(fo), to.detach().numpy(), rtol=1e-12)
        fo.sum().backward()
        to.sum().backward()
        assert_close(to_np(x.grad), y.grad.numpy(), rtol=1e-12)
        assert fk.linalg.matrix_norm(x, ord, keepdim=True).shape == (2, 1, 1)
    x, y = fk.tensor(a), torch.tensor(a)
    for kw in [{}, {"ord": 2, "dim": 1}, {"dim": (1, 2)}, {"ord": math.inf, "dim": (0, 1)}, {"ord": 1, "dim": -1}]:
        assert_close(to_np(fk.linalg.norm(x, **kw)), torch.linalg.norm(y, **kw).numpy(), rtol=1e-12)
    assert_close(to_np(fk.linalg.norm(x[0], 1)), torch.linalg.norm(y[0], 1).numpy())
    assert_close(to_np(fk.linalg.norm(x[0, 0], math.inf)), torch.linalg.norm(y[0, 0], math.inf).numpy())
    for args in [(), ("fro",), (3, 1), (1, (1, 2)), ("fro", (0, 2), True), (2, None, True)]:
        assert_close(to_np(x.norm(*args)), y.norm(*args).numpy(), rtol=1e-12)
        assert_close(to_np(fk.norm(x, *args)), torch.norm(y, *args).numpy(), rtol=1e-12)


def test_norm_errors():
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        fk.linalg.matrix_norm(fk.ones(2))
    with pytest.raises(RuntimeError, match="Expected a floating point tensor"):
        fk.linalg.vector_norm(fk.ones(2, dtype=fk.int64))
    with pytest.raises(RuntimeError, match="must be 1D or 2D"):
        fk.linalg.norm(fk.ones(2, 2, 2), ord=1)
    assert fk.linalg.vector_norm(fk.ones(2, 3), dtype=fk.float64).dtype == fk.float64


# ----------------------------------------------------------------------------- qr, eigh, svd
MATRIX_SHAPES = [(1, 1), (3, 2), (4, 4), (2, 5, 3), (2, 3, 5)]


def orthonormal_columns(q):
    k = q.shape[-1]
    assert_close(np.swapaxes(q, -1, -2) @ q, np.broadcast_to(np.eye(k), q.shape[:-2] + (k, k)), atol=1e-12)


@pytest.mark.parametrize("shape", MATRIX_SHAPES, ids=str)
def test_qr_values(shape):
    a = RNG(8).standard_normal(shape)
    q, r = (to_np(t) for t in fk.linalg.qr(fk.tensor(a)))
    k = min(shape[-2:])
    assert q.shape == shape[:-1] + (k,) and r.shape == shape[:-2] + (k, shape[-1])
    orthonormal_columns(q)
    assert_close(q @ r, a, atol=1e-12)
    assert np.all(np.tril(r, -1) == 0)
    assert fk.linalg.qr(fk.tensor(a), mode="r").Q.numel() == 0


@pytest.mark.parametrize("shape", [(3, 2), (3, 3), (2, 4, 3)], ids=str)
def test_qr_gradient(shape):
    a = RNG(9).standard_normal(shape)

    # NumPy's QR is LAPACK's, with the same signs as ours.
    check_grad(lambda x: fk.cat(list(fk.linalg.qr(x)), -2), [a], lambda x: np.concatenate(np.linalg.qr(x), -2))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 5, 5)], ids=str)
def test_eigh_values_and_gradient(shape):
    a = RNG(10).standard_normal(shape)
    sym = a + np.swapaxes(a, -1, -2)
    w, v = (to_np(t) for t in fk.linalg.eigh(fk.tensor(sym)))
    assert_close(w, np.linalg.eigvalsh(sym), rtol=1e-10, atol=1e-12)
    orthonormal_columns(v)
    assert_close(v @ (w[..., None] * np.swapaxes(v, -1, -2)), sym, atol=1e-10)
    # Gauge-invariant functions of the eigenvectors (their squares) through a symmetrised input.
    weights = np.arange(shape[-1], dtype=np.float64)

    def fk_f(x):
        w, v = fk.linalg.eigh(x + x.mT)
        return fk.cat([w, (v * v * fk.tensor(weights)).sum(-1)], -1)

    def np_f(x):
        w, v = np.linalg.eigh(x + np.swapaxes(x, -1, -2))
        return np.concatenate([w, (v * v * weights).sum(-1)], -1)

    check_grad(fk_f, [a], np_f)


def test_eigh_reads_one_triangle():
    sym = spd((3, 3))
    lower_only, upper_only = (
        np.tril(sym) + np.triu(np.full((3, 3), 50.0), 1),
        np.triu(sym) - np.tril(np.ones((3, 3)), -1),
    )
    want = np.linalg.eigvalsh(sym)
    assert_close(to_np(fk.linalg.eigvalsh(fk.tensor(lower_only))), want, rtol=1e-10)
    assert_close(to_np(fk.linalg.eigh(fk.tensor(upper_only), UPLO="U").eigenvalues), want, rtol=1e-10)


@pytest.mark.parametrize("shape", MATRIX_SHAPES, ids=str)
def test_svd_values(shape):
    a = RNG(11).standard_normal(shape)
    u, s, vh = (to_np(t) for t in fk.linalg.svd(fk.tensor(a), full_matrices=False))
    assert_close(s, np.linalg.svd(a, compute_uv=False), rtol=1e-10, atol=1e-12)
    orthonormal_columns(u)
    orthonormal_columns(np.swapaxes(vh, -1, -2))
    assert_close((u * s[..., None, :]) @ vh, a, atol=1e-10)
    assert_close(to_np(fk.linalg.svdvals(fk.tensor(a))), s)


@pytest.mark.parametrize("shape", [(3, 2), (3, 3), (2, 2, 4)], ids=str)
def test_svd_gradient(shape):
    a = RNG(12).standard_normal(shape)
    k = min(shape[-2:])
    weights = np.arange(1.0, k + 1)

    def fk_f(x):  # gauge-invariant: squares of the singular vectors
        u, s, vh = fk.linalg.svd(x, full_matrices=False)
        return fk.cat([s, (u * u * fk.tensor(weights)).sum(-1), (vh * vh * fk.tensor(weights)[:, None]).sum(-1)], -1)

    def np_f(x):
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        return np.concatenate([s, (u * u * weights).sum(-1), (vh * vh * weights[:, None]).sum(-1)], -1)

    check_grad(fk_f, [a], np_f)


@needs_torch
def test_qr_eigh_svd_match_torch():
    rng = RNG(13)
    a = rng.standard_normal((2, 4, 3))
    sym = a[:, :3] + np.swapaxes(a[:, :3], -1, -2)
    for mine, theirs in zip(fk.linalg.qr(fk.tensor(a)), torch.linalg.qr(torch.tensor(a))):
        assert_close(to_np(mine), theirs.numpy(), atol=1e-12)  # LAPACK's signs too
    x, y = fk.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    w = [rng.standard_normal(t.shape) for t in torch.linalg.qr(y)]
    sum((t * fk.tensor(wi)).sum() for t, wi in zip(fk.linalg.qr(x), w)).backward()
    sum((t * torch.tensor(wi)).sum() for t, wi in zip(torch.linalg.qr(y), w)).backward()
    assert_close(to_np(x.grad), y.grad.numpy(), atol=1e-12)
    assert_close(to_np(fk.linalg.eigh(fk.tensor(sym))[0]), torch.linalg.eigh(torch.tensor(sym))[0].numpy(), atol=1e-12)
    assert_close(to_np(fk.linalg.svdvals(fk.tensor(a))), torch.linalg.svdvals(torch.tensor(a)).numpy(), atol=1e-12)
    names = [fk.linalg.qr(x)[0], fk.linalg.eigh(x[:, :3])[0], fk.linalg.svd(x, full_matrices=False)[1]]
    assert [t.grad_fn.name() for t in names] == ["LinalgQrBackward0", "LinalgEighBackward0", "LinalgSvdBackward0"]


def test_qr_eigh_svd_errors_and_empty():
    with pytest.raises(NotImplementedError, match="fewer rows than columns"):
        fk.linalg.qr(fk.ones(2, 3, requires_grad=True))[1].sum().backward()
    with pytest.raises(NotImplementedError, match="mode='complete'"):
        fk.linalg.qr(fk.ones(3, 2), mode="complete")
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        fk.linalg.qr(fk.ones(2, 2), mode="full")
    with pytest.raises(NotImplementedError, match="full_matrices=True"):
        fk.linalg.svd(fk.ones(3, 2))
    with pytest.raises(RuntimeError, match="square matrices"):
        fk.linalg.eigh(fk.ones(2, 3))
    with pytest.raises(RuntimeError, match="Expected a floating point tensor"):
        fk.linalg.svd(fk.ones(2, 2, dtype=fk.int64))
    assert [tuple(t.shape) for t in fk.linalg.svd(fk.ones(0, 3, 2), full_matrices=False)] == [
        (0, 3, 2),
        (0, 2),
        (0, 2, 2),
    ]
    assert [tuple(t.shape) for t in fk.linalg.qr(fk.ones(3, 0))] == [(3, 0), (0, 0)]
    assert fk.linalg.svd(fk.eye(3)).S.tolist() == [1.0, 1.0, 1.0]
