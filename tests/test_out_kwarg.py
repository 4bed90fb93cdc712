"""torch's out= keyword on the module functions (fastkern.add(a, b, out=c), ...): the result goes
into out, which is returned; an out of another shape is resized (with torch's warning when it had
elements); dtype, device and autograd rules as torch's. Also mm, bmm, mv and dot."""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from helpers import assert_close, on_device, to_np, torch

needs_torch = pytest.mark.skipif(torch is None, reason="compares with torch")
ROOT = Path(__file__).resolve().parents[1]

A = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
B = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
M = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)

# name: fn(module, a, b, m, out) with a, b of shape [3, 4] and m of [4, 5]
CASES = {
    "add": lambda m, a, b, w, out: m.add(a, b, alpha=2, out=out),
    "sub": lambda m, a, b, w, out: m.sub(a, 1.5, out=out),
    "mul": lambda m, a, b, w, out: m.mul(a, b, out=out),
    "div": lambda m, a, b, w, out: m.div(a, b, out=out),
    "pow": lambda m, a, b, w, out: m.pow(a, 2, out=out),
    "maximum": lambda m, a, b, w, out: m.maximum(a, b, out=out),
    "matmul": lambda m, a, b, w, out: m.matmul(a, w, out=out),
    "mm": lambda m, a, b, w, out: m.mm(a, w, out=out),
    "mv": lambda m, a, b, w, out: m.mv(a, w[:, 0], out=out),
    "dot": lambda m, a, b, w, out: m.dot(a[0], b[0], out=out),
    "bmm": lambda m, a, b, w, out: m.bmm(a[None], w[None], out=out),
    "addmm": lambda m, a, b, w, out: m.addmm(w[0], a, w, out=out),
    "cat": lambda m, a, b, w, out: m.cat([a, b], 1, out=out),
    "concat": lambda m, a, b, w, out: m.concat([a, b], out=out),
    "stack": lambda m, a, b, w, out: m.stack([a, b], out=out),
    "sum": lambda m, a, b, w, out: m.sum(a, 0, out=out),
    "sum_keepdim": lambda m, a, b, w, out: m.sum(a, (0, 1), keepdim=True, out=out),
    "mean": lambda m, a, b, w, out: m.mean(a, 1, out=out),
    "prod": lambda m, a, b, w, out: m.prod(a, 1, out=out),
    "amax": lambda m, a, b, w, out: m.amax(a, 1, out=out),
    "std": lambda m, a, b, w, out: m.std(a, 1, out=out),
    "logsumexp": lambda m, a, b, w, out: m.logsumexp(a, 1, out=out),
    "exp": lambda m, a, b, w, out: m.exp(a, out=out),
    "log": lambda m, a, b, w, out: m.log(a.abs(), out=out),
    "sqrt": lambda m, a, b, w, out: m.sqrt(a.abs(), out=out),
    "sigmoid": lambda m, a, b, w, out: m.sigmoid(a, out=out),
    "tanh": lambda m, a, b, w, out: m.tanh(a, out=out),
    "abs": lambda m, a, b, w, out: m.abs(a, out=out),
    "neg": lambda m, a, b, w, out: m.neg(a, out=out),
    "floor": lambda m, a, b, w, out: m.floor(a, out=out),
    "clamp": lambda m, a, b, w, out: m.clamp(a, -0.5, 0.5, out=out),
    "clip": lambda m, a, b, w, out: m.clip(a, min=0.0, out=out),
    "where": lambda m, a, b, w, out: m.where(a > 0, a, b, out=out),
    "eq": lambda m, a, b, w, out: m.eq(a, b, out=out),
    "gt": lambda m, a, b, w, out: m.gt(a, 0, out=out),
}


def _inputs(m, device="cpu"):
    if m is fk:
        return [fk.tensor(x, device=device) for x in (A, B, M)]
    return [torch.tensor(x) for x in (A, B, M)]


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_out_matches_torch(name, device):
    fn = CASES[name]
    want = fn(torch, *_inputs(torch), None)
    for shape in (tuple(want.shape), (0,)):  # the right shape, and an empty out (resized silently)
        dtype = fk.bool if want.dtype == torch.bool else fk.float32
        out = fk.empty(shape, dtype=dtype, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = fn(fk, *_inputs(fk, device), out)
        assert got is out and tuple(out.shape) == tuple(want.shape) and on_device(out, device)
        assert_close(to_np(out), want.numpy(), rtol=1e-5, atol=1e-6, msg=name)
    assert_close(to_np(fn(fk, *_inputs(fk, device), None)), want.numpy(), rtol=1e-5, atol=1e-6, msg=name)


def test_wrong_sized_out_is_resized_with_torchs_warning():
    out = fk.empty(5)
    with pytest.warns(
        UserWarning, match=r"resized since it had shape \[5\], which does not match the required output shape \[2, 3\]"
    ):
        r = fk.add(fk.ones(2, 3), 1, out=out)
    assert r is out and out.tolist() == [[2.0] * 3] * 2


def test_out_keeps_its_layout_and_writes_through_views():
    base = fk.zeros(3, 2)
    out = base.t()  # non-contiguous, the right shape
    fk.mul(fk.ones(2, 3), 3, out=out)
    assert out.stride() == (1, 2) and base.tolist() == [[3.0, 3.0]] * 3
    buf = fk.zeros(4)
    fk.exp(fk.zeros(2), out=buf[:2])
    assert buf.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_out_dtype_rules():
    out = fk.empty(2, dtype=fk.float64)
    fk.add(fk.ones(2), fk.ones(2), out=out)  # a float32 result into a float64 out: cast
    assert out.dtype == fk.float64 and out.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="result type float32 can't be cast to the desired output type int64"):
        fk.add(fk.ones(2), 1, out=fk.empty(2, dtype=fk.int64))
    with pytest.raises(RuntimeError, match="can't be cast"):
        fk.exp(fk.ones(2, dtype=fk.int64), out=fk.empty(2, dtype=fk.int64))  # exp of ints is float, as torch
    eq = fk.empty(2)
    fk.eq(fk.ones(2), fk.ones(2), out=eq)  # bool into float: allowed
    assert eq.tolist() == [1.0, 1.0]


def test_out_and_autograd():
    x = fk.ones(2, requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"exp\(\): functions with out=... arguments don't support automatic differentiation"
    ):
        fk.exp(x, out=fk.empty(2))
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        fk.exp(fk.ones(2), out=fk.empty(2, requires_grad=True))
    with fk.no_grad():
        out = fk.empty(2)
        assert fk.exp(x, out=out) is out and not out.requires_grad


def test_out_must_be_a_tensor_on_the_results_device():
    with pytest.raises(TypeError):
        fk.exp(fk.ones(2), out=np.zeros(2))
    if fk.cuda.is_available():
        with pytest.raises(RuntimeError, match="Expected out tensor to have device cpu, but got cuda:0"):
            fk.exp(fk.ones(2), out=fk.empty(2, device="cuda"))


def test_out_may_alias_an_input():
    a = fk.tensor([1.0, 2.0])
    fk.add(a, a, out=a)
    assert a.tolist() == [2.0, 4.0]
    m = fk.tensor([[1.0, 2.0], [3.0, 4.0]])
    fk.mm(m, m, out=m)  # the product is computed before out is written
    assert m.tolist() == [[7.0, 10.0], [15.0, 22.0]]


@needs_torch
def test_mm_bmm_mv_dot_values_gradients_and_errors():
    rng = np.random.default_rng(3)
    cases = {"mm": ((3, 4), (4, 2)), "bmm": ((2, 3, 4), (2, 4, 5)), "mv": ((3, 4), (4,)), "dot": ((5,), (5,))}
    for name, (sa, sb) in cases.items():
        xa, xb = rng.standard_normal(sa), rng.standard_normal(sb)
        fa, fb = (fk.tensor(x, requires_grad=True) for x in (xa, xb))
        ta, tb = (torch.tensor(x, requires_grad=True) for x in (xa, xb))
        getattr(fk, name)(fa, fb).sum().backward()
        getattr(torch, name)(ta, tb).sum().backward()
        assert_close(to_np(getattr(fa, name)(fb)), getattr(ta, name)(tb).detach().numpy(), rtol=1e-12)
        assert_close(to_np(fa.grad), ta.grad.numpy(), rtol=1e-12)
        assert_close(to_np(fb.grad), tb.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match=r"mm: expected 2-D and 2-D tensors, got shapes \[3\] and \[3, 2\]"):
        fk.mm(fk.ones(3), fk.ones(3, 2))
    with pytest.raises(RuntimeError, match="bmm: batch sizes differ"):
        fk.bmm(fk.ones(2, 3, 4), fk.ones(1, 4, 5))
    with pytest.raises(RuntimeError, match="dot: expected 1-D and 1-D"):
        fk.dot(fk.ones(2, 2), fk.ones(2))


def test_out_kwarg_example_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "out_kwarg.py")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "resized" in out.stdout
