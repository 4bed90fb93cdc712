"""Elementwise binary / unary / in-place ops: values, broadcasting, type promotion, grads."""

import math
import operator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import fastkern as fk
from helpers import (
    NP_DTYPES,
    POS,
    REAL,
    assert_close,
    away0,
    dtype_name,
    fk_on,
    helper_test_op,
    ids,
    run_op_table_entry,
    shape_id,
    small_ints,
    torch,
)


# ----------------------------------------------------------------------------- binary
# name, fn(module, a, b), numpy reference, input domains
BINARY = [
    ("add", lambda m, a, b: a + b, np.add, [REAL, REAL]),
    ("sub", lambda m, a, b: a - b, np.subtract, [REAL, REAL]),
    ("mul", lambda m, a, b: a * b, np.multiply, [REAL, REAL]),
    ("div", lambda m, a, b: a / b, np.divide, [REAL, away0]),
    ("pow", lambda m, a, b: a**b, np.power, [POS, REAL]),
    ("maximum", lambda m, a, b: m.maximum(a, b), np.maximum, [REAL, REAL]),
    ("minimum", lambda m, a, b: m.minimum(a, b), np.minimum, [REAL, REAL]),
]
BINARY_FORMS = [
    *[
        (f"fk.{n}", (lambda n: lambda m, a, b: getattr(m, n)(a, b))(n), f, d)
        for n, f, d in [
            ("add", np.add, [REAL, REAL]),
            ("sub", np.subtract, [REAL, REAL]),
            ("mul", np.multiply, [REAL, REAL]),
            ("div", np.divide, [REAL, away0]),
            ("pow", np.power, [POS, REAL]),
        ]
    ],
    *[
        (f"method.{n}", (lambda n: lambda m, a, b: getattr(a, n)(b))(n), f, d)
        for n, f, d in [
            ("add", np.add, [REAL, REAL]),
            ("sub", np.subtract, [REAL, REAL]),
            ("mul", np.multiply, [REAL, REAL]),
            ("div", np.divide, [REAL, away0]),
            ("pow", np.power, [POS, REAL]),
        ]
    ],
]

BROADCAST_PAIRS = [
    ((), ()),
    ((), (3,)),
    ((4,), ()),
    ((1,), (1,)),
    ((1,), (5,)),
    ((0,), (0,)),
    ((0,), (1,)),
    ((2, 0, 3), (3,)),
    ((5, 1), (1, 7)),
    ((2, 3, 4), (3, 1)),
    ((3, 1), (2, 3, 4)),
    ((7, 11), (11,)),
    ((13,), (1, 13)),
    ((1,), (2, 1, 3)),
    ((4, 1, 5), (1, 3, 1)),
    ((2, 1, 3, 1), (5, 1, 1)),
    ((17, 19), (17, 19)),
]


@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=[f"{shape_id(a)}-{shape_id(b)}" for a, b in BROADCAST_PAIRS])
@pytest.mark.parametrize("entry", BINARY, ids=ids(BINARY))
def test_binary_broadcast(entry, shapes, device):
    run_op_table_entry(entry, shapes, device)


@pytest.mark.parametrize("entry", BINARY_FORMS, ids=ids(BINARY_FORMS))
def test_binary_function_and_method_forms(entry, device):
    run_op_table_entry(entry, [(3, 4), (4,)], device)


@settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # `device` is a constant name
@given(
    entry=st.sampled_from(BINARY),
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4),
)
def test_binary_hypothesis_shapes(entry, shapes, device):
    run_op_table_entry(entry, shapes.input_shapes, device, layouts=("contiguous", "strided"))


# Python scalars on either side, reflected operators
SCALAR_EXPRS = [
    ("x+2", lambda x: x + 2),
    ("2+x", lambda x: 2 + x),
    ("x-1.5", lambda x: x - 1.5),
    ("2-x", lambda x: 2 - x),
    ("x*2.5", lambda x: x * 2.5),
    ("3*x", lambda x: 3 * x),
    ("x/2", lambda x: x / 2),
    ("1/x", lambda x: 1 / x),
    ("x**2", lambda x: x**2),
    ("x**0.5", lambda x: x**0.5),
    ("2**x", lambda x: 2**x),
    ("x**-1", lambda x: x**-1),
    ("neg", lambda x: -x),
]


@pytest.mark.parametrize("expr", [e[1] for e in SCALAR_EXPRS], ids=ids(SCALAR_EXPRS))
def test_python_scalar_operands(expr, device):
    helper_test_op([(3, 5)], expr, expr, expr if torch is not None else None, domain=POS, device=device)


# ----------------------------------------------------------------------------- floor div / mod
@pytest.mark.parametrize("op", [operator.floordiv, operator.mod], ids=["floordiv", "mod"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_floordiv_mod_python_semantics(op, dtype, device):
    rng = np.random.default_rng(0)
    a = (rng.uniform(-20, 20, (4, 6))).astype(NP_DTYPES[dtype])
    b = np.where(rng.random(6) < 0.5, -1, 1) * rng.integers(1, 7, 6)
    b = b.astype(NP_DTYPES[dtype])
    x, y = fk.tensor(a, device=device), fk.tensor(b, device=device)
    assert_close(op(x, y), op(a, b), rtol=1e-5, atol=1e-5)
    assert_close(op(x, 3), op(a, NP_DTYPES[dtype](3)), rtol=1e-5, atol=1e-5)
    assert_close(op(x, -3), op(a, NP_DTYPES[dtype](-3)), rtol=1e-5, atol=1e-5)
    assert dtype_name(op(x, y).dtype) == dtype


def test_floordiv_mod_examples(device):
    x = fk.tensor([-7, 7, -7, 7], device=device)
    y = fk.tensor([2, 2, -2, -2], device=device)
    assert (x // y).tolist() == [-4, 3, 3, -4]
    assert (x % y).tolist() == [1, 1, -1, -1]
    assert (fk.tensor([-7.5, 7.5], device=device) % 2).tolist() == [0.5, 1.5]
    assert (fk.tensor([-7.5, 7.5], device=device) // 2).tolist() == [-4.0, 3.0]


# ----------------------------------------------------------------------------- comparisons / logic
COMPARISONS = [
    ("eq", operator.eq),
    ("ne", operator.ne),
    ("lt", operator.lt),
    ("le", operator.le),
    ("gt", operator.gt),
    ("ge", operator.ge),
]


@pytest.mark.parametrize(
    "shapes",
    [((), (3,)), ((5, 1), (1, 7)), ((2, 3, 4), (3, 1)), ((0,), (1,))],
    ids=["s-3", "5x1-1x7", "2x3x4-3x1", "0-1"],
)
@pytest.mark.parametrize("name, op", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons(name, op, shapes, device):
    helper_test_op(
        shapes,
        op,
        op,
        op if torch is not None else None,
        domain=small_ints,
        forward_only=True,
        out_dtype="bool",
        device=device,
    )


@pytest.mark.parametrize("name, op", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons_with_scalars_and_mixed_dtypes(name, op, device):
    a = np.array([[-1, 0, 1, 2]])
    x = fk.tensor(a, device=device)
    for other in (1, 1.0, 0.5):
        assert_close(op(x, other), op(a, other))
        r = op(other, x)  # reflected
        assert dtype_name(r.dtype) == "bool"
        assert_close(r, op(other, a))
    f = np.array([[0.5], [1.0]], dtype=np.float32)
    assert_close(op(x, fk.tensor(f, device=device)), op(a, f))


@pytest.mark.parametrize("op", [operator.and_, operator.or_, operator.xor], ids=["and", "or", "xor"])
def test_logical_ops_on_bool(op, device):
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 5)) < 0.5, rng.random((5,)) < 0.5
    r = op(fk.tensor(a, device=device), fk.tensor(b, device=device))
    assert dtype_name(r.dtype) == "bool"
    assert_close(r, op(a, b))
    assert_close(~fk.tensor(a, device=device), ~a)
    x = fk.tensor([1.0, -1.0, 2.0], device=device)
    assert ((x > 0) & (x < 1.5)).tolist() == [True, False, False]
    assert (~(x > 0)).tolist() == [False, True, False]


# where(cond, a, b): cond is fixed, a/b are differentiable
WHERE_CASES = [
    ((3, 4), (3, 4), (3, 4)),
    ((3, 1), (1, 4), (3, 4)),
    ((4,), (2, 3, 4), (1,)),
    ((), (2, 2), ()),
    ((0, 3), (3,), (1, 3)),
]


@pytest.mark.parametrize("cshape, ashape, bshape", WHERE_CASES, ids=[shape_id(c[0]) for c in WHERE_CASES])
def test_where(cshape, ashape, bshape, device):
    cond = np.random.default_rng(5).random(cshape) < 0.5
    fk_fn = lambda a, b: fk.where(fk.tensor(cond, device=a.device), a, b)  # noqa: E731
    torch_fn = (lambda a, b: torch.where(torch.tensor(cond), a, b)) if torch is not None else None
    helper_test_op([ashape, bshape], fk_fn, lambda a, b: np.where(cond, a, b), torch_fn, device=device)


def test_where_with_scalar_and_condition_from_comparison(device):
    x = fk.tensor([-1.0, 2.0, -3.0], device=device)
    assert fk.where(x > 0, x, 0.0).tolist() == [0.0, 2.0, 0.0]
    assert fk.where(x > 0, x, fk.zeros(1, device=device)).tolist() == [0.0, 2.0, 0.0]


# ----------------------------------------------------------------------------- type promotion
TENSOR_PROMOTION = [
    ("int64", "float32", "float32"),
    ("int64", "float64", "float64"),
    ("float32", "float64", "float64"),
    ("bool", "int64", "int64"),
    ("uint8", "int64", "int64"),
    ("bool", "float32", "float32"),
    ("uint8", "bool", "uint8"),
    ("uint8", "float32", "float32"),
    ("int64", "int64", "int64"),
    ("float32", "float32", "float32"),
    ("uint8", "uint8", "uint8"),
]


@pytest.mark.parametrize(
    "op", [operator.add, operator.mul, fk.maximum, fk.minimum], ids=["add", "mul", "maximum", "minimum"]
)
@pytest.mark.parametrize("da, db, want", TENSOR_PROMOTION, ids=["-".join(p) for p in TENSOR_PROMOTION])
def test_tensor_tensor_promotion(op, da, db, want, device):
    a = np.array([[0, 1, 2, 3]], dtype=NP_DTYPES[da])
    b = np.array([[1], [0]], dtype=NP_DTYPES[db])
    for x, y in ((a, b), (b, a)):
        r = op(fk.tensor(x, device=device), fk.tensor(y, device=device))
        assert dtype_name(r.dtype) == want
        npop = {"maximum": np.maximum, "minimum": np.minimum}.get(getattr(op, "__name__", ""), op)
        assert_close(r, npop(x.astype(NP_DTYPES[want]), y.astype(NP_DTYPES[want])))


@pytest.mark.parametrize(
    "da, db, want",
    [
        ("int64", "int64", "float32"),
        ("uint8", "int64", "float32"),
        ("bool", "bool", "float32"),
        ("int64", "float64", "float64"),
    ],
)
def test_true_division_promotes_to_float(da, db, want, device):
    a = np.array([1, 2, 0, 7], dtype=NP_DTYPES[da])
    b = np.array([2, 4, 1, 2], dtype=NP_DTYPES[db]) if db != "bool" else np.ones(4, bool)
    r = fk.tensor(a, device=device) / fk.tensor(b, device=device)
    assert dtype_name(r.dtype) == want
    assert_close(r, a.astype(np.float64) / b.astype(np.float64))


class NPM:
    """Module stand-in for NumPy references: m.tensor(v, dtype=...) -> float64 value."""

    float64 = None

    @staticmethod
    def tensor(v, dtype=None):
        return np.float64(v)


# (tensor dtype, expression fn(m, x) with a Python scalar or 0-d tensor, expected dtype)
SCALAR_PROMOTION = [
    ("int64", lambda m, x: x + 2.5, "float32"),
    ("float32", lambda m, x: x + 2, "float32"),
    ("int64", lambda m, x: x * 2, "int64"),
    ("uint8", lambda m, x: x + 1, "uint8"),
    ("bool", lambda m, x: x + 1, "int64"),
    ("bool", lambda m, x: x * 1.5, "float32"),
    ("float64", lambda m, x: x + 1.5, "float64"),
    ("int64", lambda m, x: x / 2, "float32"),
    ("int64", lambda m, x: x // 2, "int64"),
    ("int64", lambda m, x: x**2, "int64"),
    ("int64", lambda m, x: x**0.5, "float32"),
    ("int64", lambda m, x: 2**x, "int64"),
    ("int64", lambda m, x: 2.0**x, "float32"),
    ("int64", lambda m, x: 1 - x, "int64"),
    # 0-d tensors take part like scalars: only a higher category wins
    ("float32", lambda m, x: x * m.tensor(2.0, dtype=m.float64), "float32"),
    ("int64", lambda m, x: x + m.tensor(1.0, dtype=m.float64), "float64"),
    ("float32", lambda m, x: x + m.tensor(1), "float32"),
    ("uint8", lambda m, x: x + m.tensor(1), "uint8"),
]


@pytest.mark.parametrize(
    "dtype, fn, want", SCALAR_PROMOTION, ids=[f"{i}-{p[0]}" for i, p in enumerate(SCALAR_PROMOTION)]
)
def test_scalar_promotion(dtype, fn, want, device):
    a = np.array([0, 1, 2, 3]).astype(NP_DTYPES[dtype])
    r = fn(fk_on(device), fk.tensor(a, device=device))  # its 0-d tensors on the device too
    assert dtype_name(r.dtype) == want
    assert_close(r, fn(NPM, a.astype(np.float64)), rtol=1e-6, atol=1e-6)
    if torch is not None:
        assert dtype_name(fn(torch, torch.tensor(a)).dtype) == want, "expectation disagrees with torch"


def test_uint8_wraps_around(device):
    x = fk.tensor(np.array([250, 5], dtype=np.uint8), device=device)
    assert (x + 10).tolist() == [4, 15]
    assert (x - 10).tolist() == [240, 251]
    assert (x * 2).dtype == fk.uint8


# ----------------------------------------------------------------------------- unary
# name, numpy reference, domain; each is tested as fk.name(x) and x.name()
UNARY = [
    ("neg", np.negative, REAL),
    ("abs", np.abs, away0),
    ("exp", np.exp, REAL),
    ("log", np.log, POS),
    ("sqrt", np.sqrt, POS),
    ("rsqrt", lambda a: 1 / np.sqrt(a), POS),
    ("sin", np.sin, REAL),
    ("cos", np.cos, REAL),
    ("tanh", np.tanh, REAL),
    ("sigmoid", lambda a: 1 / (1 + np.exp(-a)), REAL),
    ("relu", lambda a: np.maximum(a, 0), away0),
    ("sign", np.sign, away0),
]
UNARY_ENTRIES = [
    *[(f"fk.{n}", (lambda n: lambda m, x: getattr(m, n)(x))(n), f, d) for n, f, d in UNARY],
    *[(f"method.{n}", (lambda n: lambda m, x: getattr(x, n)())(n), f, d) for n, f, d in UNARY],
    ("-x", lambda m, x: -x, np.negative, REAL),
    ("clamp", lambda m, x: x.clamp(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), REAL),
    ("clamp_min", lambda m, x: x.clamp(min=-0.5), lambda a: np.maximum(a, -0.5), REAL),
    ("clamp_max", lambda m, x: m.clamp(x, max=0.7), lambda a: np.minimum(a, 0.7), REAL),
    ("clip", lambda m, x: x.clip(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7), REAL),
    ("fk.clip", lambda m, x: m.clip(x, min=-0.5, max=0.7), lambda a: np.clip(a, -0.5, 0.7), REAL),
    (
        "sigmoid_wide",
        lambda m, x: (x * 40).sigmoid(),
        lambda a: 1 / (1 + np.exp(-40 * a)),
        REAL,
        {"rtol": 1e-5, "atol": 1e-6},
    ),
    ("tanh_wide", lambda m, x: (x * 20).tanh(), lambda a: np.tanh(20 * a), REAL),
    ("exp_wide", lambda m, x: (x * 10).exp(), lambda a: np.exp(10 * a), REAL),
]
UNARY_SHAPES = [(), (1,), (0,), (7,), (3, 5), (2, 3, 4), (2, 0, 3)]


UNARY_CASES = [(e, s) for e in UNARY_ENTRIES for s in (UNARY_SHAPES if not e[0].startswith("fk.") else [(), (3, 5)])]


@pytest.mark.parametrize("entry, shape", UNARY_CASES, ids=[f"{e[0]}-{shape_id(s)}" for e, s in UNARY_CASES])
def test_unary(entry, shape, device):
    run_op_table_entry(entry, [shape], device)


def test_unary_at_special_points(device):
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    x = t([0.0, 1.0, -1.0])
    assert fk.sign(x).tolist() == [0.0, 1.0, -1.0]
    assert fk.relu(x).tolist() == [0.0, 1.0, 0.0]
    assert [math.copysign(1, v) for v in fk.abs(t([-0.0, -2.0])).tolist()] == [1, 1]  # |-0.0| = +0.0
    assert fk.log(t([0.0])).tolist() == [float("-inf")]
    assert np.isnan(fk.sqrt(t([-1.0])).item())
    assert fk.sigmoid(t([-200.0, 200.0])).tolist() == [0.0, 1.0]
    assert fk.tanh(t([-50.0, 50.0])).tolist() == [-1.0, 1.0]
    assert fk.exp(t([-200.0, 200.0])).tolist() == [0.0, float("inf")]


@pytest.mark.parametrize(
    "name, np_fn",
    [(n, f) for n, f, _ in UNARY if n in ("exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid")],
)
def test_float_unary_on_int_returns_float32(name, np_fn, device):
    a = np.array([[1, 2], [3, 4]])
    for dt in (np.int64, np.uint8, np.bool_):
        r = getattr(fk.tensor(a.astype(dt), device=device), name)()
        assert r.dtype == fk.float32, f"{name} on {dt}"
        assert_close(r, np_fn(a.astype(dt).astype(np.float64)))


@pytest.mark.parametrize(
    "expr, want",
    [
        (lambda x: -x, [1, 0, -2]),
        (lambda x: x.abs(), [1, 0, 2]),
        (lambda x: x.sign(), [-1, 0, 1]),
        (lambda x: x.relu(), [0, 0, 2]),
        (lambda x: x.clamp(0, 1), [0, 0, 1]),
        (lambda x: x.clamp(min=-2), [-1, 0, 2]),
    ],
    ids=["neg", "abs", "sign", "relu", "clamp", "clamp_min"],
)
def test_int_preserving_unary(expr, want, device):
    r = expr(fk.tensor([-1, 0, 2], device=device))
    assert r.dtype == fk.int64 and r.tolist() == want


def test_clamp_int_with_float_bounds_promotes(device):
    r = fk.tensor([1, 5], device=device).clamp(0.5, 3.5)
    assert r.dtype == fk.float32 and r.tolist() == [1.0, 3.5]


# ----------------------------------------------------------------------------- in-place
INPLACE = [  # name, in-place call (operands on x's device), numpy equivalent on the same array
    ("add_", lambda x: x.add_(2), lambda a: a.__iadd__(2)),
    (
        "add_tensor",
        lambda x: x.add_(fk.tensor([1.0, 2.0, 3.0, 4.0], device=x.device)),
        lambda a: a.__iadd__([1, 2, 3, 4]),
    ),
    (
        "sub_",
        lambda x: x.sub_(fk.tensor([[1.0], [2.0], [3.0]], device=x.device)),
        lambda a: a.__isub__([[1], [2], [3]]),
    ),
    ("mul_", lambda x: x.mul_(-3), lambda a: a.__imul__(-3)),
    ("div_", lambda x: x.div_(fk.tensor(4.0, device=x.device)), lambda a: a.__itruediv__(4)),
    ("zero_", lambda x: x.zero_(), lambda a: a.fill(0)),
    ("fill_", lambda x: x.fill_(2.5), lambda a: a.fill(2.5)),
    ("clamp_", lambda x: x.clamp_(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5, out=a)),
    ("clamp_min_", lambda x: x.clamp_(min=0.0), lambda a: np.maximum(a, 0, out=a)),
    ("copy_", lambda x: x.copy_(fk.arange(4, device=x.device)), lambda a: a.__setitem__(Ellipsis, np.arange(4))),
    ("copy_same", lambda x: x.copy_(fk.ones(3, 4, dtype=fk.float64, device=x.device) * 7), lambda a: a.fill(7)),
]


@pytest.mark.parametrize("name, op, np_op", INPLACE, ids=[e[0] for e in INPLACE])
@pytest.mark.parametrize("layout", ["contiguous", "transposed_view", "row_view"])
def test_inplace_returns_self_and_writes_views(name, op, np_op, layout, device):
    a = np.random.default_rng(0).uniform(-1, 1, (3, 4)).astype(np.float32)
    if layout == "contiguous":
        base = x = fk.tensor(a, device=device)
        expected_base = a.copy()
        np_op(expected_base)
    elif layout == "transposed_view":  # x is a non-contiguous (3, 4) view of a (4, 3) tensor
        base = fk.tensor(np.ascontiguousarray(a.T), device=device)
        x = base.T
        e = a.copy()
        np_op(e)
        expected_base = e.T
    else:  # x is a (3, 4) strided view into a (3, 8) base; other columns must stay put
        big = np.zeros((3, 8), np.float32)
        big[:, 1::2] = a
        base = fk.tensor(big, device=device)
        x = base[:, 1::2]
        e = a.copy()
        np_op(e)
        expected_base = big.copy()
        expected_base[:, 1::2] = e
    r = op(x)
    assert r is x, f"{name} must return self"
    assert_close(base, expected_base, msg=name)


@pytest.mark.parametrize(
    "op, np_op",
    [
        (operator.iadd, operator.iadd),
        (operator.isub, operator.isub),
        (operator.imul, operator.imul),
        (operator.itruediv, operator.itruediv),
    ],
    ids=["+=", "-=", "*=", "/="],
)
def test_augmented_assignment_is_inplace(op, np_op, device):
    a = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
    x = fk.tensor(a, device=device)
    alias = x
    view = x[1]
    for other, np_other in (
        (2.0, 2.0),
        (fk.tensor([1.0, 2.0, 4.0], device=device), np.array([1.0, 2.0, 4.0], np.float32)),
    ):
        x = op(x, other)
        a = np_op(a, np_other)
        assert x is alias
        assert_close(alias, a)
        assert_close(view, a[1])


def test_inplace_dtype_rules(device):
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    i = t([1, 2, 3])
    i.add_(2)
    assert i.dtype == fk.int64 and i.tolist() == [3, 4, 5]
    f = fk.zeros(3, device=device)
    f.add_(t([1, 2, 3]))  # int into float32 is fine
    assert f.dtype == fk.float32 and f.tolist() == [1.0, 2.0, 3.0]
    f.copy_(t([True, False, True]))
    assert f.tolist() == [1.0, 0.0, 1.0]
    i.copy_(t([1.9, -1.9, 0.0]))
    assert i.tolist() == [1, -1, 0]
    x = fk.zeros(2, 3, device=device)
    x.copy_(t([1.0, 2.0, 3.0]))  # broadcast source
    assert x.tolist() == [[1, 2, 3], [1, 2, 3]]
    with pytest.raises(RuntimeError):
        i.add_(1.5)  # float result can't be stored in int64
    with pytest.raises((RuntimeError, ValueError)):
        fk.zeros(3, device=device).add_(fk.ones(2, 3, device=device))  # self can't be broadcast up


@pytest.mark.parametrize("case", ["setitem_shifted", "add_shifted", "copy_transposed"])
def test_overlapping_inplace_is_correct_or_refused(case, device):
    """Writing a tensor into an overlapping view of itself must not silently smear values:
    either the NumPy result (as if the source were copied first) or a RuntimeError (PyTorch)."""
    a = (
        np.arange(5.0, dtype=np.float32)
        if case != "copy_transposed"
        else np.arange(4.0, dtype=np.float32).reshape(2, 2)
    )
    x = fk.tensor(a, device=device)
    try:
        if case == "setitem_shifted":
            x[1:] = x[:-1]
            a[1:] = a[:-1].copy()
        elif case == "add_shifted":
            x[1:].add_(x[:-1])
            a[1:] += a[:-1].copy()
        else:
            x.copy_(x.T)
            a[...] = a.T.copy()
    except RuntimeError:
        return
    assert_close(x, a)


def test_inplace_bool_and_logic(device):
    t = lambda v: fk.tensor(v, device=device)  # noqa: E731
    m = t([True, False, True])
    assert (m & t([True, True, False])).tolist() == [True, False, False]
    assert (m | t([False, True, False])).tolist() == [True, True, True]
    assert (m ^ t([True, True, True])).tolist() == [False, True, False]


# ----------------------------------------------------------------------------- in-place autograd
def _inplace(method, *args, on_view=False):
    """fn(m, a, b): an in-place op applied to a non-leaf copy of a (or to a view of it)."""

    def fn(m, a, b):
        y = a * 1
        target = y[1:] if on_view else y
        getattr(target, method)(*[b[1:] if (on_view and x is b) else x for x in (args or (b,))])
        return y

    return fn


INPLACE_GRAD = [  # name, fn(m, a, b), numpy reference, domains
    ("add_", _inplace("add_"), np.add, [REAL, REAL]),
    ("sub_", _inplace("sub_"), np.subtract, [REAL, REAL]),
    ("mul_", _inplace("mul_"), np.multiply, [REAL, REAL]),
    ("div_", _inplace("div_"), np.divide, [REAL, away0]),
    ("mul_scalar_", lambda m, a, b: (a * b).mul_(3), lambda a, b: a * b * 3, [REAL, REAL]),
    ("clamp_", lambda m, a, b: (a * b).clamp_(-0.5, 0.5), lambda a, b: np.clip(a * b, -0.5, 0.5), [REAL, REAL]),
    ("iadd_view", _inplace("add_", on_view=True), lambda a, b: np.concatenate([a[:1], a[1:] + b[1:]]), [REAL, REAL]),
    ("imul_view", _inplace("mul_", on_view=True), lambda a, b: np.concatenate([a[:1], a[1:] * b[1:]]), [REAL, REAL]),
]


@pytest.mark.parametrize("entry", INPLACE_GRAD, ids=ids(INPLACE_GRAD))
def test_inplace_ops_on_non_leaf_are_differentiable(entry, device):
    run_op_table_entry(entry, [(4, 3), (4, 3)], device, layouts=("contiguous", "transposed"))


def test_int64_arithmetic_wraps_around_as_in_pytorch(device):
    # Overflowing int64 + - * and sums and products wrap (two's complement) instead of being
    # undefined behaviour (found by the API fuzzer under UBSan: a sum of randint's extremes).
    a = np.array([2**62, -(2**63), 2**63 - 1, 7], dtype=np.int64)
    x = fk.tensor(a, device=device)
    with np.errstate(over="ignore"):
        cases = [
            (x + x, a + a),
            (x - (-x), a - (-a)),
            (x * 3, a * 3),
            (-x, -a),
            (x.abs(), np.abs(a)),
            (x.sum(), a.sum()),
            (x.prod(), a.prod()),
            (x.reshape(2, 2).sum(0), a.reshape(2, 2).sum(0)),
            (x.reshape(2, 2).t().sum(1), a.reshape(2, 2).T.sum(1)),
        ]
    for got, want in cases:
        assert got.cpu().tolist() == np.asarray(want).tolist()
