"""Regression tests for what an adversarial probe found in the tensor layer: each input here
crashed, hung, ate memory or gave a silently wrong answer before, and PyTorch 2.13 answers
each as asserted (an error naming what is wrong, or the value)."""

import math
import subprocess
import sys

import numpy as np
import pytest

import fastkern as fk
import fastkern.nn.functional as F
from helpers import assert_close, assert_raises_with, to_np


# ----------------------------------------------------------------------------- shape-size overflow
@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.zeros(0).view(2**62, 4),
        lambda: fk.zeros(0).view(-1, 2**62, 4),
        lambda: fk.zeros(0).reshape(2**32, 2**32, 4),
        lambda: fk.ones(1, 1).expand(2**62, 2**62),
        lambda: fk.zeros(2**40, 2**40, 0),
        lambda: fk.zeros(0, 2**62, 2**62),
        lambda: fk.empty(2**31, 2**31, 2**2),
    ],
    ids=["view", "view_infer", "reshape", "expand", "zeros_huge_zero_last", "zeros_huge_zero_first", "empty"],
)
def test_shape_products_that_overflow_are_refused(make):
    assert_raises_with(RuntimeError, make, "overflow")


def test_overflowed_view_never_reaches_memory():
    # The crash itself: a view that passed the check wrote past a zero-byte buffer, in a child
    # process so that a regression shows as a failed test, not a dead test runner.
    code = (
        "import fastkern as fk\n"
        "for f in (lambda: fk.zeros(0).view(2**62, 4)[3].fill_(7.0), lambda: fk.zeros(0).view(2**62, 4).sum(0),\n"
        "          lambda: fk.zeros(0).reshape(2**32, 2**32, 4)[0]):\n"
        "    try: f()\n"
        "    except RuntimeError: pass\n"
        "    else: raise SystemExit('accepted')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])


def test_sizes_beyond_int64_are_clear_errors():
    assert_raises_with(ValueError, lambda: fk.empty(2**64), "18446744073709551616", "int64")
    assert_raises_with(IndexError, lambda: fk.arange(3)[2**63], "9223372036854775808", "int64")
    assert_raises_with(IndexError, lambda: fk.arange(3)[-(2**64)], "int64")
    assert_raises_with(TypeError, lambda: fk.zeros(2.5), "integer", "float")
    assert_raises_with(TypeError, lambda: fk.ones(3).view("a"), "integer")
    # slice bounds beyond int64 clamp, as in Python
    assert fk.arange(5)[2**70 :].shape == (0,)
    assert fk.arange(5)[-(2**70) : 2**70 : 2**64].tolist() == [0]


def test_huge_slice_step():
    x = fk.arange(10)
    assert x[1 :: 2**63 - 1].tolist() == [1]
    assert x[:: 2**62].tolist() == [0]


def test_zero_element_tensors_with_large_dims():
    assert fk.zeros(2**40, 0).shape == (2**40, 0)
    assert fk.zeros(0, 2**40).sum().item() == 0


# ----------------------------------------------------------------------------- argument checks
def test_narrow_checks_its_arguments():
    x = fk.arange(5)
    assert x.narrow(0, 1, 3).tolist() == [1, 2, 3]
    assert x.narrow(0, -2, 2).tolist() == [3, 4]
    assert x.narrow(0, 5, 0).tolist() == []
    assert_raises_with(RuntimeError, lambda: x.narrow(0, 3, 5), "start (3) + length (5) exceeds dimension size (5)")
    assert_raises_with(RuntimeError, lambda: x.narrow(0, 1, -1), "length must be non-negative")
    assert_raises_with(IndexError, lambda: x.narrow(0, 7, 0), "start out of range", "[-5, 5]", "7")
    assert_raises_with(IndexError, lambda: fk.narrow(x, 0, -6, 1), "start out of range")


@pytest.mark.parametrize(
    "src, shape", [((1,), (-2,)), ((1, 1), (-3, 1)), ((1, 1), (2, -5)), ((1,), (-3, 1)), ((1, 1), (-1, -1, 3))]
)
def test_expand_refuses_negative_sizes(src, shape):
    assert_raises_with(RuntimeError, lambda: fk.ones(*src).expand(*shape), "negative")


def test_expand_minus_one_keeps_a_size():
    assert fk.ones(2, 1).expand(-1, 3).shape == (2, 3)


def test_bce_checks_shapes_and_range():
    assert_raises_with(
        ValueError,
        lambda: F.binary_cross_entropy_with_logits(fk.zeros(2, 3), fk.zeros(3)),
        "Target size",
        "[3]",
        "[2, 3]",
    )
    assert_raises_with(ValueError, lambda: F.binary_cross_entropy(fk.full((2, 3), 0.5), fk.zeros(3)), "Target size")
    for bad in (1.5, -0.1, math.nan):
        assert_raises_with(
            RuntimeError,
            lambda: F.binary_cross_entropy(fk.tensor([bad, 0.5]), fk.tensor([1.0, 0.0])),
            "between 0 and 1",
        )
    assert F.binary_cross_entropy(fk.tensor([1.0, 0.0]), fk.tensor([1.0, 0.0])).item() == 0.0


def test_bce_with_logits_weights_match_torch(device):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((4, 3)), rng.random((4, 3))
    w, pw = rng.random((4, 3)), rng.random(3) * 3
    T = lambda a: fk.tensor(a, device=device)  # noqa: E731
    ours = F.binary_cross_entropy_with_logits(T(x), T(t), weight=T(w), pos_weight=T(pw))
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(x), torch.tensor(t), weight=torch.tensor(w), pos_weight=torch.tensor(pw)
    )
    assert_close(ours, ref.numpy(), rtol=1e-10, atol=1e-12)
    ours = F.binary_cross_entropy(T(t), T(1 - t), weight=T(w), reduction="sum")
    ref = torch.nn.functional.binary_cross_entropy(
        torch.tensor(t), torch.tensor(1 - t), weight=torch.tensor(w), reduction="sum"
    )
    assert_close(ours, ref.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("idx", [-1, 3, 100])
def test_embedding_refuses_out_of_range_indices(idx):
    emb = fk.nn.Embedding(3, 2)
    assert_raises_with(IndexError, lambda: emb(fk.tensor([0, idx])), "index out of range")


def test_indexing_with_bools_and_none():
    x = fk.arange(3)
    assert x[True].tolist() == [[0, 1, 2]]
    assert x[False].shape == (0, 3)
    assert x[None].shape == (1, 3)
    assert x[None, True, 1].tolist() == [[1]]
    m = fk.arange(6).reshape(2, 3)
    assert m[True, 1].tolist() == [[3, 4, 5]]
    assert m[..., None].shape == (2, 3, 1)
    y = fk.zeros(3)
    y[None] = 2.0
    y[True] = 3.0
    assert y.tolist() == [3.0, 3.0, 3.0]


def test_set_num_threads_refuses_non_positive():
    for bad in (0, -1):
        assert_raises_with(RuntimeError, lambda: fk.set_num_threads(bad), "positive integer")


def test_cross_entropy_float_target_names_the_dtype():
    assert_raises_with(RuntimeError, lambda: F.cross_entropy(fk.zeros(2, 3), fk.zeros(2)), "dtype", "Long")


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
def test_extremes_over_an_empty_dim_name_it(op):
    assert_raises_with(IndexError, lambda: getattr(fk.zeros(3, 0), op)(dim=1), "dim 1", "non-zero size")
    assert_raises_with(IndexError, lambda: getattr(fk.zeros(3, 0), op)(), "Specify", "dim")
    assert getattr(fk.zeros(0, 3), op)(dim=1)[0 if op in ("max", "min") else ...].shape == (0,)


# ----------------------------------------------------------------------------- non-finite values
INF = math.inf


@pytest.mark.parametrize(
    "row", [[INF, 1.0, 0.0], [-INF, -INF], [-INF, 1.0], [INF, -INF], [math.nan, 1.0], [INF, INF], [-INF, 1.0, 2.0]]
)
def test_softmax_family_with_infinities_matches_torch(row, device):
    torch = pytest.importorskip("torch")
    for dtype in ("float32", "float64"):
        x, t = fk.tensor(row, dtype=getattr(fk, dtype), device=device), torch.tensor(row, dtype=getattr(torch, dtype))
        for name in ("softmax", "log_softmax"):
            np.testing.assert_allclose(to_np(getattr(x, name)(0)), getattr(t, name)(0).numpy(), rtol=1e-6)
        for target in range(len(row)):
            ours = F.cross_entropy(x[None], fk.tensor([target], device=device)).item()
            ref = torch.nn.functional.cross_entropy(t[None], torch.tensor([target])).item()
            np.testing.assert_allclose(ours, ref, rtol=1e-6)
        np.testing.assert_allclose(x.logsumexp(0).item(), t.logsumexp(0).item(), rtol=1e-6)
        np.testing.assert_allclose(x.std().item(), t.std().item(), rtol=1e-6)


def test_softmax_of_plus_inf_is_nan_everywhere(device):
    assert np.isnan(to_np(fk.tensor([INF, 1.0, 0.0], device=device).softmax(0))).all()
    assert np.isnan(to_np(fk.tensor([[INF, 1.0, 0.0]], device=device).log_softmax(1))).all()


# ----------------------------------------------------------------------------- expanded reductions
def test_reducing_an_expansion_does_not_materialise_it(device):
    # 2**34 float32 elements would be 64 GiB
    x = fk.ones(1, device=device).expand(2**34)
    assert x.sum().item() == 2.0**34
    assert x.mean().item() == 1.0
    assert x.amax().item() == 1.0 and x.min().item() == 1.0
    y = fk.tensor([[1.0], [2.0], [3.0]], device=device).expand(3, 2**33)
    assert y.sum(1).tolist() == [2.0**33, 2.0**34, 3 * 2.0**33]
    assert y.max(1).values.tolist() == [1.0, 2.0, 3.0]
    b = fk.tensor([True, False], device=device).expand(2**33, 2)
    assert b.any().item() and not b.all().item() and b.all(0).tolist() == [True, False]


@pytest.mark.parametrize("dims", [None, 0, 1, (0, 2), (1, 2)])
def test_expanded_reductions_match_numpy(dims, device):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 1, 5))
    x = fk.tensor(a, device=device).expand(3, 7, 5)
    ref = np.broadcast_to(a, (3, 7, 5))
    for name in ("sum", "amax", "amin", "mean"):
        ours = getattr(x, name)() if dims is None else getattr(x, name)(dims, keepdim=True)
        expect = getattr(np, {"amax": "max", "amin": "min"}.get(name, name))(ref, axis=dims, keepdims=dims is not None)
        assert_close(ours, expect, rtol=1e-12, atol=1e-12)
    x.requires_grad_(False)
    src = fk.tensor(a, requires_grad=True, device=device)
    src.expand(3, 7, 5).sum().backward()
    assert_close(src.grad, np.full(a.shape, 7.0))


# ----------------------------------------------------------------------------- bool bytes
def _stray_bools():
    raw = np.array([0, 1, 2, 255, 0, 7], dtype=np.uint8)
    return raw, raw.view(np.bool_)


def test_bool_arrays_with_stray_bytes_are_normalised():
    raw, b = _stray_bools()
    for t in (fk.from_numpy(b), fk.tensor(b), fk.from_dlpack(b)):
        assert t.tolist() == [False, True, True, True, False, True]
        assert t.float().sum().item() == 4
        assert (t == True).tolist() == t.long().bool().tolist()  # noqa: E712
        assert t.to(fk.uint8).tolist() == [0, 1, 1, 1, 0, 1]
    assert raw.tolist() == [0, 1, 2, 255, 0, 7]  # the caller's memory is left alone


def test_clean_bool_arrays_stay_zero_copy():
    b = np.array([True, False, True])
    t = fk.from_numpy(b)
    b[1] = True
    assert t.tolist() == [True, True, True]


# ----------------------------------------------------------------------------- values that do not fit
@pytest.mark.parametrize(
    "make",
    [
        lambda: fk.full((2,), math.nan, dtype=fk.int64),
        lambda: fk.full((2,), 1e30, dtype=fk.int64),
        lambda: fk.full((2,), 300, dtype=fk.uint8),
        lambda: fk.full((2,), -256, dtype=fk.uint8),
        lambda: fk.full((2,), 255.5, dtype=fk.uint8),
        lambda: fk.full((2,), -1.0, dtype=fk.uint8),
        lambda: fk.full((1,), 9.3e18, dtype=fk.int64),
        lambda: fk.tensor([1]).fill_(math.inf),
        lambda: fk.tensor([1], dtype=fk.uint8).fill_(256),
        lambda: fk.tensor([1, 2]).__setitem__(0, math.nan),
    ],
)
def test_values_an_integer_dtype_cannot_hold_are_errors(make):
    # float -> int conversion out of range is undefined behaviour in C++; PyTorch raises
    assert_raises_with(RuntimeError, make, "cannot be converted", "without overflow")


def test_integer_fills_in_range_and_wrapped_scalars():
    assert fk.full((1,), 2**63 - 1).tolist() == [2**63 - 1]
    assert fk.full((1,), -(2**63)).tolist() == [-(2**63)]
    assert fk.full((1,), 255, dtype=fk.uint8).tolist() == [255]
    assert fk.full((2,), -1, dtype=fk.uint8).tolist() == [255, 255]  # PyTorch's rule for unsigned types
    assert fk.zeros(2, dtype=fk.uint8).fill_(-255).tolist() == [1, 1]
    assert (fk.tensor([1], dtype=fk.uint8) + 300).tolist() == [45]  # a Python number wraps, as in PyTorch


def test_arange_and_uniform_check_their_ranges():
    assert_raises_with(RuntimeError, lambda: fk.arange(0, 5, -1), "inconsistent with step sign")
    assert_raises_with(RuntimeError, lambda: fk.arange(5, 0, 1), "inconsistent with step sign")
    assert fk.arange(5, 0, -2).tolist() == [5, 3, 1] and fk.arange(3, 3).tolist() == []
    assert_raises_with(RuntimeError, lambda: fk.empty(3).uniform_(1, 0), "from=1", "to=0")


def test_grad_assignment_checks():
    x = fk.ones(2, requires_grad=True)
    assert_raises_with(RuntimeError, lambda: setattr(x, "grad", x), "own grad")
    assert_raises_with(RuntimeError, lambda: setattr(x, "grad", fk.ones(2, dtype=fk.float64)), "float64", "float32")
    assert_raises_with(RuntimeError, lambda: setattr(x, "grad", fk.ones(3)), "[3]", "[2]")
    x.grad = fk.full((2,), 3.0)
    assert x.grad.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("dtype", [fk.float32, fk.float64])
def test_spread_of_equal_values_is_exactly_zero(dtype, device):
    # found by fuzzing: the rounded mean of equal values left a nonzero std, and with it a
    # nonzero gradient, where PyTorch gives exactly 0
    x = fk.full((3, 7), 0.1, dtype=dtype, requires_grad=True, device=device)
    s = x.std(0)
    assert s.tolist() == [0.0] * 7 and x.var().item() == 0.0
    s.sum().backward()
    assert x.grad.abs().sum().item() == 0.0
    assert np.isnan(fk.tensor([math.inf, math.inf], device=device).var().item())  # as PyTorch
    assert np.isnan(fk.tensor([2.5], dtype=dtype, device=device).std().item())  # one value: no degrees of freedom
    assert fk.tensor([2.5], dtype=dtype, device=device).var(correction=0).item() == 0.0
