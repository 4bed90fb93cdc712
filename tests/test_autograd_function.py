"""Custom autograd Functions (fastkern.autograd.Function, called back from the C++ engine), the
graph as Python sees it (grad_fn.next_functions, AccumulateGrad, name()), grad_fn names against
PyTorch's, and the two examples built on them."""

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from helpers import assert_close, numerical_grads, to_np, torch

needs_torch = pytest.mark.skipif(torch is None, reason="compares with torch")
ROOT = Path(__file__).resolve().parents[1]
Function = fk.autograd.Function


class Cube(Function):
    """x ** 3 with its own backward; saves an input."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * g * x * x


class Exp(Function):
    """Saves its output (kept without its own history: no reference cycle)."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ScaleShift(Function):
    """Two outputs, a number argument and a non-differentiable mask output."""

    @staticmethod
    def forward(ctx, x, scale, shift):
        ctx.scale = scale
        mask = x > 0
        ctx.mark_non_differentiable(mask)
        return x * scale + shift, x - shift, mask

    @staticmethod
    def backward(ctx, g_scaled, g_diff, g_mask):
        assert g_mask.shape == g_scaled.shape  # materialized as zeros
        return g_scaled * ctx.scale + g_diff, None, g_scaled - g_diff


def _leaf(shape, seed=0, dtype=fk.float64):
    return fk.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=dtype, requires_grad=True)


@pytest.mark.parametrize("fn", [Cube, Exp], ids=["saves_input", "saves_output"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 5, 3)], ids=str)
def test_function_values_and_numerical_gradient(fn, shape):
    x = _leaf(shape)
    ref = {Cube: lambda a: a**3, Exp: np.exp}[fn]
    y = fn.apply(x)
    assert_close(to_np(y), ref(to_np(x)), rtol=1e-12, atol=1e-12)
    assert y.grad_fn.name() == fn.__name__ + "Backward" and y.requires_grad and not y.is_leaf
    w = np.random.default_rng(1).standard_normal(shape)
    y.backward(fk.tensor(w))
    ((num, points),) = numerical_grads(lambda arrs: ref(arrs[0]), [to_np(x)], w, np.random.default_rng(2))
    assert_close(to_np(x.grad).reshape(-1)[points], num.reshape(-1)[points], rtol=1e-6, atol=1e-8)


def test_function_in_a_larger_graph_and_float32():
    x = _leaf((4, 3), dtype=fk.float32)
    loss = (Cube.apply(x * 2) + x).sum()
    loss.backward()
    assert_close(to_np(x.grad), 24 * to_np(x) ** 2 + 1, rtol=1e-5)


def test_multiple_outputs_number_argument_and_non_differentiable_output():
    x, shift = _leaf((5,)), _leaf((5,), seed=3)
    scaled, diff, mask = ScaleShift.apply(x, 2.0, shift)
    assert not mask.requires_grad and mask.grad_fn is None and scaled.grad_fn.name() == "ScaleShiftBackward"
    (3 * scaled.sum() + 5 * diff.sum()).backward()
    assert_close(to_np(x.grad), np.full(5, 3 * 2.0 + 5))
    assert_close(to_np(shift.grad), np.full(5, 3 - 5.0))


def test_needs_input_grad_and_materialize_grads_off():
    seen = {}

    class Pair(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.set_materialize_grads(False)
            seen["needs"] = ctx.needs_input_grad
            return a + b, a - b

        @staticmethod
        def backward(ctx, g1, g2):
            seen.setdefault("grads", []).append((g1 is None, g2 is None))
            assert not ctx.needs_input_grad[1]
            g = g1 if g1 is not None else g2
            return g, None

    a, b = _leaf((2,)), fk.ones(2, dtype=fk.float64)
    s, d = Pair.apply(a, b)
    assert seen["needs"] == (True, False)
    s.sum().backward()
    assert seen["grads"] == [(False, True)] and a.grad.tolist() == [1.0, 1.0]
    with fk.no_grad():
        assert Pair.apply(a, b)[0].grad_fn is None and seen["needs"] == (False, False)


def test_setup_context_style():
    class Square(Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            return 2 * g * ctx.saved_tensors[0]

    x = _leaf((3,))
    Square.apply(x).sum().backward()
    assert_close(to_np(x.grad), 2 * to_np(x))


def test_forward_runs_without_recording_and_output_that_is_an_input():
    class Ident(Function):
        @staticmethod
        def forward(ctx, x):
            assert not fk.is_grad_enabled()
            return x

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    x = _leaf((3,))
    y = Ident.apply(x)
    assert x.is_leaf and x.grad_fn is None and y.grad_fn.name() == "IdentBackward"  # x keeps its identity
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_double_backward_through_a_function():
    x = _leaf((3,))
    (g,) = fk.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (gg,) = fk.autograd.grad(g.sum(), x)
    assert_close(to_np(gg), 6 * to_np(x))


def test_function_errors():
    class WrongCount(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return fk.ones(7, dtype=g.dtype)

    x = _leaf((3,))
    with pytest.raises(
        RuntimeError, match=r"WrongCountBackward returned an incorrect number of gradients \(expected 1, got 2\)"
    ):
        WrongCount.apply(x).sum().backward()
    with pytest.raises(
        RuntimeError, match=r"invalid gradient at index 0 - got \[7\] but expected shape compatible with \[3\]"
    ):
        WrongShape.apply(x).backward()
    with pytest.raises(RuntimeError, match="only available in backward"):
        _ = fk.autograd.FunctionCtx().saved_tensors
    y = Cube.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()
    z = x * 1
    y = Cube.apply(z)
    with fk.no_grad():
        z += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    with pytest.raises(NotImplementedError, match="implement the forward"):
        Function.apply(x)


def test_python_errors_in_backward_propagate():
    class Fails(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            raise ValueError("from backward")

    with pytest.raises(ValueError, match="from backward"):
        Fails.apply(_leaf((2,))).sum().backward()


def test_the_ctx_is_freed_with_the_graph():
    refs = []

    class Keep(Function):
        @staticmethod
        def forward(ctx, x):
            refs.append(weakref.ref(ctx))
            y = x.exp()
            ctx.save_for_backward(x, y)
            return y

        @staticmethod
        def backward(ctx, g):
            return g * ctx.saved_tensors[1]

    y = Keep.apply(_leaf((3,)))
    assert refs[0]() is not None
    del y
    gc.collect()
    assert refs[0]() is None


# ----------------------------------------------------------------------------- the graph from Python
def test_next_functions_and_accumulate_grad():
    w, x = _leaf((3, 2)), fk.ones(4, 3, dtype=fk.float64)
    b = _leaf((2,), seed=1)
    loss = (x @ w + b).sum()
    ((add, _),) = loss.grad_fn.next_functions
    assert add.name() == "AddBackward0" and len(add.next_functions) == 2
    (mm, i0), (acc_b, i1) = add.next_functions
    assert (i0, i1) == (0, 0) and mm.name() == "MmBackward0"
    assert type(acc_b).__name__ == "AccumulateGrad" and acc_b.variable.shape == (2,) and acc_b.next_functions == ()
    assert acc_b.name() == "torch::autograd::AccumulateGrad"
    assert mm.next_functions[0] == (None, 0)  # x needs no gradient
    assert mm.next_functions[1][0].variable.data_ptr() == w.data_ptr()
    assert loss.grad_fn == loss.grad_fn and hash(loss.grad_fn) == hash(loss.grad_fn)
    assert repr(loss.grad_fn).startswith("<SumBackward0 object at 0x")


@needs_torch
def test_grad_fn_names_match_torch():
    cases = {
        "sum": lambda m, x, y: x.sum(),
        "sum_dim": lambda m, x, y: x.sum(0),
        "mean": lambda m, x, y: x.mean(),
        "mean_dim": lambda m, x, y: x.mean(1, keepdim=True),
        "prod": lambda m, x, y: x.prod(),
        "prod_dim": lambda m, x, y: x.prod(1),
        "pow_scalar": lambda m, x, y: x**2,
        "pow_tensor": lambda m, x, y: x.pow(y),
        "scalar_pow": lambda m, x, y: 2**x,
        "rsub": lambda m, x, y: 1 - x,
        "sub": lambda m, x, y: x - 1,
        "t": lambda m, x, y: x.t(),
        "T": lambda m, x, y: x.T,
        "transpose": lambda m, x, y: x.transpose(0, 1),
        "permute": lambda m, x, y: x.permute(1, 0),
        "max": lambda m, x, y: x.max(),
        "min": lambda m, x, y: x.min(),
        "max_dim": lambda m, x, y: x.max(0).values,
        "amax": lambda m, x, y: x.amax(0),
        "squeeze": lambda m, x, y: x[None].squeeze(),
        "squeeze_dim": lambda m, x, y: x[None].squeeze(0),
        "unsqueeze": lambda m, x, y: x.unsqueeze(0),
        "view": lambda m, x, y: x.view(-1),
        "matmul": lambda m, x, y: x @ y.t(),
        "softmax": lambda m, x, y: x.softmax(-1),
        "maximum": lambda m, x, y: m.maximum(x, y),
        "clamp": lambda m, x, y: x.clamp(0, 1),
        "std": lambda m, x, y: x.std(),
        "var": lambda m, x, y: x.var(1),
        "logsumexp": lambda m, x, y: x.logsumexp(-1),
        "stack": lambda m, x, y: m.stack([x, y], 1),
        "repeat": lambda m, x, y: x.repeat(2, 1, 3),
        "mv": lambda m, x, y: x @ y[0],
        "dot": lambda m, x, y: x[0] @ y[0],
        "linear": lambda m, x, y: m.nn.functional.linear(x, y),
        "mse_loss": lambda m, x, y: m.nn.functional.mse_loss(x, y),
        "nll_loss": lambda m, x, y: m.nn.functional.nll_loss(m.nn.functional.log_softmax(x, 1), m.tensor([0, 2])),
        "cross_entropy": lambda m, x, y: m.nn.functional.cross_entropy(x, m.tensor([1, 0])),
    }
    for name, f in cases.items():
        xs = np.random.default_rng(0).standard_normal((2, 2, 3))
        got = f(fk, *(fk.tensor(a, requires_grad=True) for a in xs)).grad_fn.name()
        want = f(torch, *(torch.tensor(a, requires_grad=True) for a in xs)).grad_fn.name()
        assert got == want, name


# ----------------------------------------------------------------------------- examples
def _example(name):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def test_custom_function_example_fits():
    losses = _example("custom_function").main(steps=400, verbose=False)
    assert losses[-1] < 0.5 * losses[0]


@needs_torch
def test_custom_function_example_matches_torch():
    class P3(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return 0.5 * (5 * t**3 - 3 * t)

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return g * 1.5 * (5 * t**2 - 1)

    t = torch.linspace(-1, 1, 7, dtype=torch.float64, requires_grad=True)
    P3.apply(t).sum().backward()
    ft = fk.linspace(-1, 1, 7, dtype=fk.float64, requires_grad=True)
    _example("custom_function").LegendrePolynomial3.apply(ft).sum().backward()
    assert_close(to_np(ft.grad), t.grad.numpy(), rtol=1e-12)


def test_graph_walk_example():
    lines = _example("graph_walk").main(verbose=False)
    assert [s.strip() for s in lines][:5] == [
        "MeanBackward0",
        "PowBackward0",
        "SubBackward0",
        "AddBackward0",
        "MmBackward0",
    ]
    assert sum("AccumulateGrad" in s for s in lines) == 2


@pytest.mark.parametrize("name", ["custom_function", "graph_walk"])
def test_examples_run_as_scripts(name):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
