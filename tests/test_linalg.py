"""fastkern.linalg: det, inv, solve and cholesky (LU and Cholesky kernels of our own) and the
norms (vector_norm, matrix_norm, norm, Tensor.norm), against NumPy float64 and PyTorch, with
numerical gradients in float64."""

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
    for ord in ["fro", 1, -1, math.inf, -math.inf]:
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
    with pytest.raises(NotImplementedError, match="needs the SVD"):
        fk.linalg.matrix_norm(fk.ones(2, 2), "nuc")
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        fk.linalg.matrix_norm(fk.ones(2))
    with pytest.raises(RuntimeError, match="Expected a floating point tensor"):
        fk.linalg.vector_norm(fk.ones(2, dtype=fk.int64))
    with pytest.raises(RuntimeError, match="must be 1D or 2D"):
        fk.linalg.norm(fk.ones(2, 2, 2), ord=1)
    assert fk.linalg.vector_norm(fk.ones(2, 3), dtype=fk.float64).dtype == fk.float64
