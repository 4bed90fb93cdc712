"""matmul / @: 1-D, 2-D, batched, broadcast batch dims, non-contiguous operands, grads."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastkern as fk
from helpers import assert_close, fk_and_torch, helper_test_op, shape_id

SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((1,), (1,)),
    ((1, 1), (1, 1)),
    ((5, 2, 3), (3, 4)),
    ((2, 3), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((3,), (2, 3, 4)),
    ((2, 4, 3), (3,)),
    ((0, 3), (3, 4)),
    ((2, 0), (0, 3)),
    ((2, 3), (3, 0)),
    ((0, 2, 3), (3, 4)),
    ((7, 13), (13, 11)),
    ((1, 17), (17, 1)),
    ((33, 65), (65, 31)),
]
FORMS = {"@": lambda m, a, b: a @ b, "fk.matmul": lambda m, a, b: m.matmul(a, b), "method": lambda m, a, b: a.matmul(b)}


def _tol(a_shape):
    k = a_shape[-1]
    return dict(rtol=1e-4, atol=2e-6 * max(k, 1))


@pytest.mark.parametrize("ashape, bshape", SHAPES, ids=[f"{shape_id(a)}@{shape_id(b)}" for a, b in SHAPES])
def test_matmul_shapes(ashape, bshape, device):
    fk_fn, torch_fn = fk_and_torch(FORMS["@"])
    helper_test_op([ashape, bshape], fk_fn, np.matmul, torch_fn, max_grad_points=24, device=device, **_tol(ashape))


@pytest.mark.parametrize("form", ["fk.matmul", "method"])
def test_matmul_forms(form, device):
    fk_fn, torch_fn = fk_and_torch(FORMS[form])
    helper_test_op([(4, 2, 3), (3, 5)], fk_fn, np.matmul, torch_fn, device=device, **_tol((3,)))


@settings(
    max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # `device` is a constant name
@given(
    batch=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    m=st.integers(1, 6),
    k=st.integers(0, 6),
    n=st.integers(1, 6),
    vec=st.sampled_from(["none", "a", "b"]),
    bcast=st.booleans(),
)
def test_matmul_hypothesis(batch, m, k, n, vec, bcast, device):
    ashape = (k,) if vec == "a" else (*batch, m, k)
    bbatch = [1 for _ in batch] if bcast else batch
    bshape = (k,) if vec == "b" else (*bbatch, k, n)
    fk_fn, torch_fn = fk_and_torch(FORMS["@"])
    helper_test_op(
        [ashape, bshape],
        fk_fn,
        np.matmul,
        torch_fn,
        layouts=("contiguous", "transposed"),
        max_grad_points=16,
        device=device,
        **_tol(ashape),
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_matmul_accuracy(dtype, device):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((256, 300)), rng.standard_normal((300, 200))
    npdt = np.float32 if dtype == "float32" else np.float64
    a, b = a.astype(npdt), b.astype(npdt)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-11, atol=1e-11)
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    out = t(a) @ t(b)
    assert out.dtype == getattr(fk, dtype)
    assert_close(out, ref, **tol)
    assert_close(t(np.ascontiguousarray(a.T)).T @ t(np.ascontiguousarray(b.T)).T, ref, **tol)
    assert_close(t(a)[::2] @ t(b)[:, 1::3], ref[::2, 1::3], **tol)


def test_matmul_with_expanded_operand(device):
    x = fk.tensor([[1.0], [2.0], [3.0]], device=device).expand(3, 4)  # stride 0 along dim 1
    y = fk.arange(8.0, device=device).reshape(4, 2)
    want = np.repeat([[1.0], [2.0], [3.0]], 4, 1) @ np.arange(8.0).reshape(4, 2)
    assert_close(x @ y, want)
    b = fk.arange(6.0, device=device).reshape(1, 2, 3).expand(4, 2, 3)
    assert_close(
        b @ fk.ones(3, 1, device=device), np.broadcast_to(np.arange(6.0).reshape(2, 3) @ np.ones((3, 1)), (4, 2, 1))
    )


def test_matmul_result_dtype_and_shape(device):
    ones = lambda *shape, **kw: fk.ones(*shape, device=device, **kw)  # noqa: E731
    assert (ones(2, 3, dtype=fk.float64) @ ones(3, dtype=fk.float64)).dtype == fk.float64
    assert (ones(3) @ ones(3)).shape == ()
    assert (ones(3) @ ones(3)).item() == 3.0
    assert (ones(2, 0) @ ones(0, 3)).tolist() == [[0.0] * 3] * 2
