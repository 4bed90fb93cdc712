"""Minimal repros of the bugs found by tests/test_fuzz_ops.py and tests/test_fuzz_api.py.

One line each, with PyTorch's behaviour as the expected result: either "raises" (a
RuntimeError/ValueError/IndexError/TypeError whose message does not leak C++) or the
expected value.  Entries marked (python) are fixed in the Python layer and are
regression tests; the others are C++ core bugs and fail until the core is fixed.
"""

import math

import numpy as np
import pytest

import fastkern as fk
import fastkern.nn.functional as F

inf, nan = math.inf, math.nan
RAISES = "raises"
_ERRORS = (RuntimeError, ValueError, IndexError, TypeError)

# (id, source evaluated with fk / F / inf / nan in scope, expected: RAISES or (values, dtype name))
FOUND = [
    # -- values
    ("clamp-min-gt-max", "fk.tensor([0.0, 5.0]).clamp(1.5, -1)", ([-1.0, -1.0], "float32")),
    ("clamp_-min-gt-max", "fk.tensor([0.0, 5.0]).clamp_(1.5, -1)", ([-1.0, -1.0], "float32")),
    ("clamp-min-gt-max-int", "fk.tensor([3, 7]).clamp(5, 4)", ([4, 4], "int64")),
    ("uint8-div-negative-scalar", "fk.tensor([2], dtype=fk.uint8) / -4", ([-0.5], "float32")),
    ("pow-neg-inf-half", "fk.tensor([-inf]) ** 0.5", ([nan], "float32")),
    ("uint8-clamp-negative-bound", "fk.tensor([2], dtype=fk.uint8).clamp(-1, -1)", ([255], "uint8")),
    ("inplace-on-expanded-empty-view", "fk.zeros(0, 3).expand(2, 0, 3).div_(2).shape", ((2, 0, 3), None)),
    ("narrow-negative-start", "fk.tensor([1.0, 2.0]).narrow(0, -1, 1)", ([2.0], "float32")),
    ("narrow-negative-start-2d", "fk.ones(2, 3).narrow(-1, -2, 2).shape", ((2, 2), None)),
    ("linear-1d-empty-input", "F.linear(fk.zeros(0), fk.zeros(3, 0))", ([0.0, 0.0, 0.0], "float32")),
    ("sign-bool", "fk.tensor([True, False]).sign()", ([True, False], "bool")),
    ("index-empty-list", "fk.ones(3)[[]]", ([], "float32")),
    ("index-0d-bool-mask", "fk.tensor(2.0)[fk.tensor(True)]", ([2.0], "float32")),
    ("std-float32-large-values", "fk.tensor([1e25, -1e25, 3e25]).std()", ([2e25], "float32")),
    # -- gradients: masked backward must select, not multiply (inf * 0 = nan)
    ("grad-clamp-masked-inf", "_grad(lambda x: x.clamp(0, 1).sqrt())", ([0.0], "float64")),
    ("grad-clamp-min-masked-inf", "_grad(lambda x: x.clamp(min=0).log())", ([0.0], "float64")),
    ("grad-maximum-masked-inf", "_grad(lambda x: fk.maximum(x, fk.zeros(())).sqrt())", ([0.0], "float64")),
    ("grad-std-zero-std", "_grad(lambda x: x.expand(5).std().rsqrt()).reshape(1)", ([0.0], "float64")),
    # -- must raise (PyTorch does)
    ("transpose-0d-dim-out-of-range", "fk.tensor(2.0).transpose(1, 0)", RAISES),
    ("flatten-0d-dim-out-of-range", "fk.tensor(2.0).flatten(1)", RAISES),
    ("softmax-empty-dim-out-of-range", "fk.zeros(3, 5, 0).softmax(-4)", RAISES),
    ("log_softmax-empty-dim-out-of-range", "fk.zeros(3, 0).log_softmax(2)", RAISES),
    ("amax-zero-size-dim", "fk.zeros(0, 0).amax(0)", RAISES),
    ("amin-zero-size-dim", "fk.zeros(0, 3, 0).amin(2)", RAISES),
    ("max-dim-zero-size-dim", "fk.zeros(0, 0).max(0)", RAISES),
    ("argmax-zero-size-dim", "fk.zeros(0, 0).argmax(1)", RAISES),
    ("narrow-start-below-range", "fk.tensor([1.0]).narrow(0, -2, 1)", RAISES),
    ("int-pow-negative-exponent-empty", "fk.zeros(0, dtype=fk.int64) ** -1", RAISES),
    ("sub-bool-tensor", "fk.ones(2) - fk.tensor([True, False])", RAISES),
    ("argmax-bool", "fk.tensor([True, False]).argmax()", RAISES),
    ("matmul-mixed-dtypes", "fk.ones(2, 3) @ fk.ones(3, dtype=fk.float64)", RAISES),
    ("bad_cast-tensor-as-dim", "fk.ones(2, 3).amax(fk.ones(3))", RAISES),
    ("bad_cast-str-as-dim", "fk.ones(2, 3).var('a')", RAISES),
    ("bad_cast-inf-as-dim", "fk.ones(2, 3).stride(inf)", RAISES),
    ("bad_cast-huge-bool", "fk.ones(2, 3).var(0, unbiased=2**62)", RAISES),
    ("bad_cast-tensor-as-size", "fk.empty(fk.ones(1, 1, 1, 1))", RAISES),
    # -- Python layer (fixed here): regression tests
    (
        "(python) cross_entropy-zero-classes-nd",
        "F.cross_entropy(fk.zeros(0, 0, 2), fk.zeros(0, 2, dtype=fk.int64))",
        ([nan], "float32"),
    ),
    (
        "(python) nll_loss-zero-classes-nd",
        "F.nll_loss(fk.zeros(0, 0, 2), fk.zeros(0, 2, dtype=fk.int64))",
        ([nan], "float32"),
    ),
    (
        "(python) cross_entropy-zero-classes-nd-none",
        "F.cross_entropy(fk.zeros(0, 0, 2), fk.zeros(0, 2, dtype=fk.int64), reduction='none').shape",
        ((0, 2), None),
    ),
    (
        "(python) bce_with_logits-inf",
        "F.binary_cross_entropy_with_logits(fk.tensor([inf, -inf, 50.0]), fk.tensor([0.5, 0.5, 0.2]), "
        "reduction='none')",
        ([inf, nan, 40.0], "float32"),
    ),
]


def _grad(f, value=-5.0):
    """d f(x) / dx at x = value (float64)."""
    x = fk.tensor(value, dtype=fk.float64, requires_grad=True)
    f(x).backward()
    return x.grad


@pytest.mark.parametrize("src, expected", [e[1:] for e in FOUND], ids=[e[0] for e in FOUND])
def test_found_by_fuzzing(src, expected):
    scope = {"fk": fk, "F": F, "inf": inf, "nan": nan, "_grad": _grad}
    if expected == RAISES:
        with pytest.raises(_ERRORS) as info:
            eval(src, scope)
        for leak in ("std::", "bad_cast", "bad_alloc"):
            assert leak not in str(info.value), f"C++ exception leaked: {info.value}"
        return
    want, dtype = expected
    got = eval(src, scope)
    if dtype is None:
        assert tuple(got) == tuple(want)
        return
    assert str(got.dtype).split(".")[-1] == dtype
    got, want = np.asarray(got.detach().numpy()).reshape(-1), np.asarray(want).reshape(-1)
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, want.astype(got.dtype), rtol=1e-6, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)
