"""Reductions: sum/mean/prod/max/min/argmax/argmin/var/std/logsumexp/softmax/log_softmax/all/any."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastkern as fk
from helpers import NP_DTYPES, REAL, assert_close, away0, fk_and_torch, helper_test_op, shape_id


def np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True) if a.size else 0.0
    r = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


def np_var1(a, axis, keepdims):
    return np.var(a, axis, ddof=1, keepdims=keepdims)


def np_std1(a, axis, keepdims):
    return np.std(a, axis, ddof=1, keepdims=keepdims)


def np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True, initial=-np.inf))
    return e / e.sum(axis=axis, keepdims=True)


# name, fn(m, x, dim, keepdim) for dim != None, numpy(a, axis, keepdims), domain
REDUCTIONS = [
    ("sum", lambda m, x, d, k: x.sum(d, keepdim=k), np.sum, REAL),
    ("mean", lambda m, x, d, k: x.mean(d, keepdim=k), np.mean, REAL),
    ("var", lambda m, x, d, k: x.var(d, keepdim=k), np_var1, REAL),
    ("std", lambda m, x, d, k: x.std(d, keepdim=k), np_std1, REAL),
    (
        "var_biased",
        lambda m, x, d, k: x.var(d, unbiased=False, keepdim=k),
        lambda a, axis, keepdims: np.var(a, axis, keepdims=keepdims),
        REAL,
    ),
    (
        "std_correction0",
        lambda m, x, d, k: x.std(d, correction=0, keepdim=k),
        lambda a, axis, keepdims: np.std(a, axis, keepdims=keepdims),
        REAL,
    ),
    (
        "var_correction2",
        lambda m, x, d, k: x.var(d, correction=2, keepdim=k),
        lambda a, axis, keepdims: np.var(a, axis, ddof=2, keepdims=keepdims),
        REAL,
    ),
    ("logsumexp", lambda m, x, d, k: x.logsumexp(d, keepdim=k), np_logsumexp, REAL),
    ("fk.sum", lambda m, x, d, k: m.sum(x, d, keepdim=k), np.sum, REAL),
    ("fk.mean", lambda m, x, d, k: m.mean(x, d, k), np.mean, REAL),
    ("fk.var", lambda m, x, d, k: m.var(x, d, keepdim=k), np_var1, REAL),
    ("fk.std", lambda m, x, d, k: m.std(x, d, keepdim=k), np_std1, REAL),
    ("fk.logsumexp", lambda m, x, d, k: m.logsumexp(x, d, keepdim=k), np_logsumexp, REAL),
]
DIMS = [0, 1, -1, (0, 2), (-1, -2), (0, 1, 2)]

CASES = []
for name, fn, np_fn, dom in REDUCTIONS:
    for dim in DIMS if not name.startswith("fk.") else [1, (0, 2)]:
        for keepdim in (False, True):
            CASES.append((f"{name}-dim{dim}-keep{int(keepdim)}", fn, np_fn, dom, dim, keepdim))


@pytest.mark.parametrize("name, fn, np_fn, dom, dim, keepdim", CASES, ids=[c[0] for c in CASES])
def test_reduce_dims(name, fn, np_fn, dom, dim, keepdim, device):
    f = lambda m, x: fn(m, x, dim, keepdim)  # noqa: E731
    fk_fn, torch_fn = fk_and_torch(f)
    helper_test_op(
        [(3, 5, 4)], fk_fn, lambda a: np_fn(a, axis=dim, keepdims=keepdim), torch_fn, domain=dom, device=device
    )


FULL = [  # reductions over all elements -> 0-d tensor
    ("sum", lambda m, x: x.sum(), np.sum, REAL),
    ("fk.sum", lambda m, x: m.sum(x), np.sum, REAL),
    ("mean", lambda m, x: x.mean(), np.mean, REAL),
    ("prod", lambda m, x: x.prod(), np.prod, away0),
    ("max", lambda m, x: x.max(), np.max, REAL),
    ("min", lambda m, x: x.min(), np.min, REAL),
    ("fk.max", lambda m, x: m.max(x), np.max, REAL),
    ("fk.min", lambda m, x: m.min(x), np.min, REAL),
    ("var", lambda m, x: x.var(), lambda a: np.var(a, ddof=1), REAL),
    ("std", lambda m, x: x.std(), lambda a: np.std(a, ddof=1), REAL),
    ("std_biased", lambda m, x: x.std(unbiased=False), np.std, REAL),
    ("var_correction0", lambda m, x: x.var(correction=0), np.var, REAL),
]
FULL_SHAPES = [(2, 3, 4), (7,), (1,), (13, 17)]
FULL_CASES = [
    (f, s) for f in FULL for s in FULL_SHAPES if not (s == (1,) and f[0] in ("var", "std"))
]  # unbiased variance of 1 element is nan


@pytest.mark.parametrize("entry, shape", FULL_CASES, ids=[f"{f[0]}-{shape_id(s)}" for f, s in FULL_CASES])
def test_reduce_all(entry, shape, device):
    name, fn, np_fn, dom = entry
    fk_fn, torch_fn = fk_and_torch(fn)
    helper_test_op([shape], fk_fn, np_fn, torch_fn, domain=dom, device=device)


@pytest.mark.parametrize("dim", [0, 1, -1, 2])
@pytest.mark.parametrize("keepdim", [False, True])
def test_prod_dim(dim, keepdim, device):
    fk_fn, torch_fn = fk_and_torch(lambda m, x: x.prod(dim, keepdim=keepdim))
    helper_test_op(
        [(2, 3, 4)], fk_fn, lambda a: np.prod(a, dim, keepdims=keepdim), torch_fn, domain=away0, device=device
    )
    fk_fn, torch_fn = fk_and_torch(lambda m, x: m.prod(x, dim, keepdim))
    helper_test_op(
        [(3, 5, 2)],
        fk_fn,
        lambda a: np.prod(a, dim, keepdims=keepdim),
        torch_fn,
        domain=away0,
        layouts=("contiguous",),
        device=device,
    )


def test_scalar_input_reductions(device):
    x = fk.tensor(2.5, device=device)
    for r in (x.sum(), x.mean(), x.max(), x.min(), x.prod()):
        assert r.shape == () and r.item() == 2.5


@pytest.mark.parametrize("op, ident", [("sum", 0.0), ("prod", 1.0)])
def test_reduce_empty(op, ident, device):
    x = fk.zeros(3, 0, device=device)
    assert getattr(x, op)().item() == ident
    assert getattr(x, op)(1).tolist() == [ident] * 3
    assert getattr(x, op)(0).shape == (0,)
    assert getattr(x, op)(1, keepdim=True).shape == (3, 1)


# ----------------------------------------------------------------------------- max/min with dim
@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim(name, dim, keepdim, device):
    a = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    for x in (
        fk.tensor(a, device=device),
        fk.tensor(np.ascontiguousarray(a.transpose(2, 0, 1)), device=device).permute(1, 2, 0),
    ):
        r = getattr(x, name)(dim, keepdim=keepdim)
        values, indices = r
        npf, npa = (np.max, np.argmax) if name == "max" else (np.min, np.argmin)
        want_i = npa(a, axis=dim)
        if keepdim:
            want_i = np.expand_dims(want_i, dim)
        assert_close(values, npf(a, axis=dim, keepdims=keepdim))
        assert_close(indices, want_i)
        assert r.values is values or r.values.tolist() == values.tolist()
        assert r.indices.tolist() == indices.tolist() and r[0].tolist() == values.tolist()
        assert indices.dtype == fk.int64
    fr = getattr(fk, name)(fk.tensor(a, device=device), dim)
    assert_close(fr.values, npf(a, axis=dim))
    # gradient flows to the selected element
    for fn in (
        (lambda m, x: getattr(x, name)(dim, keepdim=keepdim).values),
        (lambda m, x: getattr(m, name)(x, dim, keepdim).values),
    ):
        fk_fn, torch_fn = fk_and_torch(fn)
        helper_test_op([(3, 5, 4)], fk_fn, lambda b: npf(b, axis=dim, keepdims=keepdim), torch_fn, device=device)


def test_max_min_int_and_ties(device):
    x = fk.tensor([[3, 7, 7], [1, -2, 0]], device=device)
    assert x.max().item() == 7 and x.max().dtype == fk.int64
    assert x.min(1).values.tolist() == [3, -2] and x.min(1).indices.tolist() == [0, 1]
    # no-dim max/min of ties: the gradient is shared evenly (PyTorch semantics)
    f = fk.tensor([1.0, 3.0, 3.0, 0.0], requires_grad=True, device=device)
    f.max().backward()
    assert f.grad.tolist() == [0.0, 0.5, 0.5, 0.0]
    g = fk.tensor([2.0, 0.0, 0.0], requires_grad=True, device=device)
    g.min().backward()
    assert g.grad.tolist() == [0.0, 0.5, 0.5]


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name, device):
    a = np.random.default_rng(1).standard_normal((4, 6, 5)).astype(np.float32)
    npa = getattr(np, name)
    x = fk.tensor(a, device=device)
    r = getattr(x, name)()
    assert r.shape == () and r.dtype == fk.int64 and r.item() == npa(a)
    for dim in (0, 1, -1):
        assert_close(getattr(x, name)(dim), npa(a, axis=dim))
        assert_close(getattr(x, name)(dim, keepdim=True), np.expand_dims(npa(a, axis=dim), dim))
        assert_close(getattr(fk, name)(x, dim=dim), npa(a, axis=dim))
        assert_close(getattr(x.transpose(0, 2), name)(dim), npa(a.transpose(2, 1, 0), axis=dim))
    assert getattr(fk.tensor([2, 9, -3, 9, -3], device=device), name)().item() == (1 if name == "argmax" else 2)


# ----------------------------------------------------------------------------- softmax family
SOFTMAX = [
    ("softmax", lambda d: lambda m, x: x.softmax(d), lambda d: lambda a: np_softmax(a, d)),
    ("fk.softmax", lambda d: lambda m, x: m.softmax(x, d), lambda d: lambda a: np_softmax(a, d)),
    ("log_softmax", lambda d: lambda m, x: x.log_softmax(d), lambda d: lambda a: np.log(np_softmax(a, d))),
    ("fk.log_softmax", lambda d: lambda m, x: m.log_softmax(x, d), lambda d: lambda a: np.log(np_softmax(a, d))),
]
SOFTMAX_CASES = [((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((5,), 0), ((1,), 0), ((4, 1), 1), ((3, 0), 1)]


@pytest.mark.parametrize("shape, dim", SOFTMAX_CASES, ids=[f"{shape_id(s)}-d{d}" for s, d in SOFTMAX_CASES])
@pytest.mark.parametrize("name, make_fn, make_ref", SOFTMAX, ids=[s[0] for s in SOFTMAX])
def test_softmax_family(name, make_fn, make_ref, shape, dim, device):
    fk_fn, torch_fn = fk_and_torch(make_fn(dim))
    helper_test_op([shape], fk_fn, make_ref(dim), torch_fn, domain=(-4, 4), device=device)


def test_softmax_logsumexp_are_stable(device):
    big = fk.tensor([[1000.0, 1000.0, -1000.0], [-1000.0, 0.0, 1000.0]], device=device)
    assert_close(big.logsumexp(1), [1000 + np.log(2), 1000.0], rtol=1e-6)
    assert_close(big.softmax(1), [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    ls = big.log_softmax(1)
    assert_close(ls, [[-np.log(2), -np.log(2), -2000 - np.log(2)], [-2000.0, -1000.0, 0.0]], rtol=1e-6)
    assert fk.tensor([-1000.0, -1000.0], device=device).logsumexp(0).item() == pytest.approx(-1000 + np.log(2))
    fk.manual_seed(0)
    s = fk.randn(64, 100, device=device).softmax(-1).sum(-1)
    assert_close(s, np.ones(64), rtol=1e-5)


# ----------------------------------------------------------------------------- all / any
@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any(name, device):
    rng = np.random.default_rng(2)
    b = rng.random((3, 4, 5)) < (0.9 if name == "all" else 0.1)
    npf = getattr(np, name)
    x = fk.tensor(b, device=device)
    r = getattr(x, name)()
    assert r.dtype == fk.bool and r.shape == () and r.item() == bool(npf(b))
    for dim in (0, 1, -1):
        assert_close(getattr(x, name)(dim), npf(b, axis=dim))
        assert_close(getattr(x, name)(dim, keepdim=True), npf(b, axis=dim, keepdims=True))
        assert_close(getattr(fk, name)(x, dim), npf(b, axis=dim))
    f = fk.tensor([[0.0, 1.5], [2.0, -1.0]], device=device)  # non-bool input: nonzero is True, result is bool
    assert_close(getattr(f, name)(1), npf(np.array([[0.0, 1.5], [2.0, -1.0]]) != 0, axis=1))
    assert getattr(f, name)().dtype == fk.bool
    assert fk.tensor([True, True], device=device).all().item() is True
    assert fk.zeros(0, dtype=fk.bool, device=device).all().item() is True
    assert fk.zeros(0, dtype=fk.bool, device=device).any().item() is False


# ----------------------------------------------------------------------------- dtypes / accuracy
@pytest.mark.parametrize("src", ["int64", "bool", "uint8"])
def test_sum_prod_of_integers_is_int64(src, device):
    a = (np.arange(12).reshape(3, 4) % 5).astype(NP_DTYPES[src])
    x = fk.tensor(a, device=device)
    assert x.sum().dtype == fk.int64 and x.sum().item() == int(a.astype(np.int64).sum())
    assert x.sum(0).dtype == fk.int64 and x.sum(0).tolist() == a.astype(np.int64).sum(0).tolist()
    assert fk.sum(x, (0, 1)).item() == int(a.astype(np.int64).sum())
    p = x.prod(1)
    assert p.dtype == fk.int64 and p.tolist() == a.astype(np.int64).prod(1).tolist()
    big = fk.full((300,), 255, dtype=fk.uint8, device=device)
    assert big.sum().item() == 255 * 300  # no uint8 overflow


def test_max_of_int_and_float64_keep_dtype(device):
    assert fk.tensor([1, 5, 2], device=device).max(0).values.dtype == fk.int64
    assert fk.tensor([1.0, 5.0], dtype=fk.float64, device=device).sum().dtype == fk.float64
    assert fk.tensor([1.0, 5.0], dtype=fk.float64, device=device).mean().dtype == fk.float64


def test_large_float32_reductions_are_accurate(device):
    n = 10**6
    x = fk.full((n,), 0.1, device=device)
    assert abs(x.sum().item() - 0.1 * n) / (0.1 * n) < 1e-4  # naive float32 accumulation is ~1% off
    assert abs(x.mean().item() - 0.1) < 1e-5
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((1000, 1000)) + 100).astype(np.float32)
    t = fk.tensor(a, device=device)
    assert_close(t.sum(0), a.astype(np.float64).sum(0), rtol=1e-5)
    assert_close(t.sum(1), a.astype(np.float64).sum(1), rtol=1e-5)
    assert_close(t.var(), np.var(a.astype(np.float64), ddof=1), rtol=1e-3)  # no catastrophic cancellation
    assert_close(t.std(1), np.std(a.astype(np.float64), axis=1, ddof=1), rtol=1e-3)


# ----------------------------------------------------------------------------- random shapes / keywords
@st.composite
def shape_and_dims(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=5))
    dims = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    dims = [d - len(shape) if draw(st.booleans()) else d for d in dims]  # mix negative dims in
    return shape, tuple(dims), draw(st.booleans())


HYP_REDUCTIONS = [
    ("sum", lambda m, x, d, k: x.sum(dim=d, keepdim=k), np.sum),
    ("mean", lambda m, x, d, k: x.mean(dim=d, keepdim=k), np.mean),
    ("std", lambda m, x, d, k: x.std(dim=d, keepdim=k), np_std1),
    ("logsumexp", lambda m, x, d, k: m.logsumexp(x, dim=d, keepdim=k), np_logsumexp),
]


@settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # `device` is a constant name
@given(entry=st.sampled_from(HYP_REDUCTIONS), case=shape_and_dims())
def test_reduce_hypothesis(entry, case, device):
    name, fn, np_fn = entry
    shape, dims, keepdim = case
    fk_fn, torch_fn = fk_and_torch(lambda m, x: fn(m, x, dims, keepdim))
    helper_test_op(
        [shape],
        fk_fn,
        lambda a: np_fn(a, axis=dims, keepdims=keepdim),
        torch_fn,
        layouts=("contiguous", "transposed"),
        max_grad_points=24,
        device=device,
    )


def test_keyword_arguments(device):
    a = np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32)
    x = fk.tensor(a, device=device)
    assert_close(x.sum(dim=1, keepdim=True), a.sum(1, keepdims=True), rtol=1e-5)
    assert_close(fk.mean(x, dim=(0, 1)), a.mean(), rtol=1e-5)
    assert_close(x.max(dim=0).values, a.max(0))
    assert_close(x.min(dim=-1, keepdim=True).indices, a.argmin(-1)[:, None])
    assert_close(fk.softmax(x, dim=1), np_softmax(a.astype(np.float64), 1), rtol=1e-5)
    assert_close(x.log_softmax(dim=0), np.log(np_softmax(a.astype(np.float64), 0)), rtol=1e-5, atol=1e-6)
    assert_close(x.var(dim=1, unbiased=False), a.var(1), rtol=1e-5)
    assert_close(x.argmax(dim=1, keepdim=True), a.argmax(1)[:, None])
    assert_close(x.logsumexp(dim=-1), np_logsumexp(a.astype(np.float64), -1), rtol=1e-5)
