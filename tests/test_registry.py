"""Every elementwise op in the op list (csrc/core/op_list.h, exposed as fastkern._C._unary_ops and
_binary_ops) has a NumPy reference here and is checked through the shared helper: a new op
cannot be bound without a test entry."""

import math

import numpy as np
import pytest

import fastkern as fk
from helpers import POS, REAL, away0, fk_and_torch, helper_test_op, to_np

# name: (NumPy float64 reference, domain, differentiable); float inputs
UNARY = {
    "neg": (np.negative, REAL, True),
    "abs": (np.abs, away0, True),
    "exp": (np.exp, REAL, True),
    "log": (np.log, POS, True),
    "sqrt": (np.sqrt, POS, True),
    "rsqrt": (lambda a: 1 / np.sqrt(a), POS, True),
    "sin": (np.sin, REAL, True),
    "cos": (np.cos, REAL, True),
    "tanh": (np.tanh, REAL, True),
    "sigmoid": (lambda a: 1 / (1 + np.exp(-a)), REAL, True),
    "relu": (lambda a: np.maximum(a, 0), away0, True),
    "sign": (np.sign, away0, True),
    "floor": (np.floor, REAL, True),
    "ceil": (np.ceil, REAL, True),
    "round": (np.round, REAL, True),
    "trunc": (np.trunc, REAL, True),
    "erf": (np.vectorize(math.erf, otypes=[np.float64]), REAL, True),
    "asin": (np.arcsin, (-0.9, 0.9), True),
    "acos": (np.arccos, (-0.9, 0.9), True),
    "atan": (np.arctan, REAL, True),
}
BINARY = {
    "add": (np.add, [REAL, REAL], True),
    "sub": (np.subtract, [REAL, REAL], True),
    "mul": (np.multiply, [REAL, REAL], True),
    "div": (np.divide, [REAL, away0], True),
    "pow": (np.power, [POS, REAL], True),
    "floor_divide": (np.floor_divide, [REAL, away0], False),
    "remainder": (np.remainder, [REAL, away0], False),
    "maximum": (np.maximum, [REAL, REAL], True),
    "minimum": (np.minimum, [REAL, REAL], True),
    "atan2": (np.arctan2, [REAL, away0], True),
    **{
        n: (getattr(np, f), [REAL, REAL], False)
        for n, f in [
            ("eq", "equal"),
            ("ne", "not_equal"),
            ("lt", "less"),
            ("le", "less_equal"),
            ("gt", "greater"),
            ("ge", "greater_equal"),
        ]
    },
}
# integer and bool only: (NumPy reference, operand count)
BITWISE = {
    "bitwise_not": (np.invert, 1),
    "bitwise_and": (np.bitwise_and, 2),
    "bitwise_or": (np.bitwise_or, 2),
    "bitwise_xor": (np.bitwise_xor, 2),
}


def test_every_listed_op_has_a_reference():
    listed = set(fk._C._unary_ops) | set(fk._C._binary_ops)
    covered = set(UNARY) | set(BINARY) | set(BITWISE)
    assert listed == covered, f"without a test entry: {sorted(listed - covered)}; stale: {sorted(covered - listed)}"


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_from_the_list(name, device):
    ref, domain, grad = UNARY[name]
    fk_fn, t_fn = fk_and_torch(lambda m, x: getattr(m, name)(x))
    helper_test_op([(3, 5)], fk_fn, ref, t_fn, domain=domain, forward_only=not grad, device=device)
    lo, hi = domain if isinstance(domain, tuple) else (0.6, 1.9)
    x = fk.tensor(np.linspace(lo, hi, 7), device=device)  # the in-place form agrees
    assert np.allclose(to_np(getattr(x.clone(), name + "_")()), ref(to_np(x)))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_from_the_list(name, device):
    ref, domain, grad = BINARY[name]
    compare = name in ("eq", "ne", "lt", "le", "gt", "ge")
    for form in (lambda m, a, b: getattr(m, name)(a, b), lambda m, a, b: getattr(a, name)(b)):
        fk_fn, t_fn = fk_and_torch(form)
        helper_test_op(
            [(3, 4), (4,)],
            fk_fn,
            ref,
            t_fn,
            domain=domain,
            forward_only=not grad,
            out_dtype="bool" if compare else None,
            device=device,
        )


@pytest.mark.parametrize("name", sorted(BITWISE))
@pytest.mark.parametrize("dtype", [fk.int64, fk.uint8, fk.bool])
def test_bitwise_from_the_list(name, dtype, device):
    ref, arity = BITWISE[name]
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 200, (4, 5)).astype(fk.tensor([], dtype=dtype).numpy().dtype) for _ in range(arity)]
    out = getattr(fk, name)(*[fk.tensor(a, device=device) for a in arrays])
    assert out.dtype == dtype
    np.testing.assert_array_equal(to_np(out), ref(*arrays))
    with pytest.raises(TypeError, match=name):
        getattr(fk, name)(*[fk.ones(3)] * arity)
