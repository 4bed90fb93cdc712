"""Autograd engine behaviour: leaves, accumulation, retain_graph, autograd.grad, no_grad,
version counters, leaf rules, deep graphs."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastkern as fk
from helpers import assert_close, on_device, to_np


def leaf(values, dtype=None, device="cpu"):
    return fk.tensor(values, dtype=dtype, requires_grad=True, device=device)


# ----------------------------------------------------------------------------- leaves & flags
def test_leaf_and_non_leaf_attributes(device):
    x = leaf([1.0, 2.0], device=device)
    c = fk.tensor([3.0, 4.0], device=device)
    assert x.requires_grad and x.is_leaf and x.grad is None and x.grad_fn is None
    assert not c.requires_grad and c.is_leaf and c.grad_fn is None
    y = x * c
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    z = c * 2
    assert not z.requires_grad and z.is_leaf and z.grad_fn is None
    c.requires_grad = True
    assert c.requires_grad and c.is_leaf
    c.requires_grad_(False)
    assert not c.requires_grad
    assert c.requires_grad_() is c and c.requires_grad
    y.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns when reading a non-leaf's .grad
        assert y.grad is None  # non-leaf grads are not retained
    assert x.grad.tolist() == [3.0, 4.0] and on_device(x.grad, device)


def test_grad_is_settable_and_accumulates(device):
    x = leaf([1.0, 2.0, 3.0], device=device)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0, 9.0]
    x.grad = None
    x.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]
    x.grad.zero_()
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    x.grad = fk.tensor([10.0, 10.0, 10.0], device=device)
    x.sum().backward()
    assert x.grad.tolist() == [11.0, 11.0, 11.0]


def test_grad_dtype_and_shape_follow_the_leaf(device):
    x = leaf([[1.0, 2.0]], device=device)
    (x.double() * fk.tensor([[3.0, 4.0]], dtype=fk.float64, device=device)).sum().backward()
    assert x.grad.dtype == fk.float32 and x.grad.shape == (1, 2) and x.grad.tolist() == [[3.0, 4.0]]
    d = leaf([1.0, 2.0], dtype=fk.float64, device=device)
    (d.float() * 2).sum().backward()
    assert d.grad.dtype == fk.float64 and d.grad.tolist() == [2.0, 2.0]
    s = leaf(2.0, device=device)
    (s * fk.ones(3, 4, device=device)).sum().backward()
    assert s.grad.shape == () and s.grad.item() == 12.0


def test_gradients_reduce_over_broadcast_dims(device):
    a = leaf(np.ones((3, 1), np.float32), device=device)
    b = leaf(np.ones((1, 4), np.float32), device=device)
    c = leaf(np.ones((4,), np.float32), device=device)
    (a * b + c).sum().backward()
    assert a.grad.shape == (3, 1) and a.grad.tolist() == [[4.0]] * 3
    assert b.grad.shape == (1, 4) and b.grad.tolist() == [[3.0] * 4]
    assert c.grad.shape == (4,) and c.grad.tolist() == [3.0] * 4
    assert all(on_device(t.grad, device) for t in (a, b, c))


def test_reused_tensor_and_diamond_graph(device):
    x = leaf([2.0, -1.0], device=device)
    y = x * 2
    z = y + y * y  # dz/dx = 2 + 8x
    z.sum().backward()
    assert x.grad.tolist() == [18.0, -6.0]
    w = leaf([3.0], device=device)
    (w * w * w).sum().backward()
    assert w.grad.tolist() == [27.0]


def test_backward_with_gradient_argument(device):
    x = leaf([1.0, 2.0, 3.0], device=device)
    y = x * x
    y.backward(fk.tensor([1.0, 0.0, -1.0], device=device))
    assert x.grad.tolist() == [2.0, 0.0, -6.0]
    m = leaf([[1.0, 2.0], [3.0, 4.0]], device=device)
    (m * 2).backward(gradient=fk.ones(2, 2, device=device))
    assert m.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    s = leaf(3.0, device=device)
    (s * s).backward(fk.tensor(2.0, device=device))
    assert s.grad.item() == 12.0


# ----------------------------------------------------------------------------- retain_graph
def test_backward_twice_needs_retain_graph(device):
    x = leaf([1.0, 2.0], device=device)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = to_np(x.grad).copy()
    y.backward()
    assert_close(x.grad, 2 * g1)
    with pytest.raises(RuntimeError):
        y.backward()
    z = (x * x).sum()
    z.backward()
    with pytest.raises(RuntimeError):
        z.backward()


# ----------------------------------------------------------------------------- autograd.grad
def test_autograd_grad_basic(device):
    x = leaf([1.0, 2.0, 3.0], device=device)
    w = leaf([0.5, -1.0, 2.0], device=device)
    y = (x * w).sum()
    gx, gw = fk.autograd.grad(y, [x, w])
    assert gx.tolist() == [0.5, -1.0, 2.0] and gw.tolist() == [1.0, 2.0, 3.0]
    assert on_device(gx, device) and on_device(gw, device)
    assert x.grad is None and w.grad is None  # grad() does not accumulate into .grad
    out = fk.autograd.grad((x * x), x, grad_outputs=fk.tensor([1.0, 1.0, 0.5], device=device))
    assert isinstance(out, tuple) and len(out) == 1 and out[0].tolist() == [2.0, 4.0, 3.0]
    y2 = (x * x).sum()
    fk.autograd.grad(y2, x, retain_graph=True)
    (g,) = fk.autograd.grad(y2, x)
    assert g.tolist() == [2.0, 4.0, 6.0]
    with pytest.raises(RuntimeError):
        fk.autograd.grad(y2, x)


@pytest.mark.parametrize(
    "fn, d1, d2",
    [
        (lambda x: x**3, lambda x: 3 * x**2, lambda x: 6 * x),
        (lambda x: x.sin(), np.cos, lambda x: -np.sin(x)),
        (lambda x: x.exp() * x, lambda x: np.exp(x) * (x + 1), lambda x: np.exp(x) * (x + 2)),
        (lambda x: x.tanh(), lambda x: 1 - np.tanh(x) ** 2, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
        (
            lambda x: x.sigmoid(),
            lambda x: 1 / (1 + np.exp(-x)) * (1 - 1 / (1 + np.exp(-x))),
            lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s),
        ),
        (lambda x: x.log() / x, lambda x: (1 - np.log(x)) / x**2, lambda x: (2 * np.log(x) - 3) / x**3),
    ],
    ids=["pow", "sin", "exp_mul", "tanh", "sigmoid", "log_div"],
)
def test_create_graph_second_derivative(fn, d1, d2, device):
    a = np.array([0.5, 1.0, 1.7])
    x = fk.tensor(a, requires_grad=True, device=device)
    (g,) = fk.autograd.grad(fn(x).sum(), x, create_graph=True)
    assert g.requires_grad
    assert_close(g, d1(a), rtol=1e-10, atol=1e-12)
    g.sum().backward()
    assert_close(x.grad, d2(a), rtol=1e-9, atol=1e-12)


def test_create_graph_mixed_partials_and_matmul(device):
    x = leaf([1.0, 2.0], dtype=fk.float64, device=device)
    y = leaf([3.0, 5.0], dtype=fk.float64, device=device)
    (gx,) = fk.autograd.grad((x * x * y).sum(), x, create_graph=True)  # 2xy
    (gxy,) = fk.autograd.grad(gx.sum(), y)  # d/dy sum(2xy) = 2x
    assert gxy.tolist() == [2.0, 4.0]
    W = fk.tensor(np.arange(4.0).reshape(2, 2), requires_grad=True, device=device)
    v = leaf([1.0, -1.0], dtype=fk.float64, device=device)
    (gv,) = fk.autograd.grad(((W @ v) ** 2).sum(), v, create_graph=True)  # 2 W^T W v
    gv.sum().backward()  # d/dW sum(2 W^T W v)
    Wn, vn = np.arange(4.0).reshape(2, 2), np.array([1.0, -1.0])
    ones = np.ones(2)
    want = 2 * (np.outer(Wn @ ones, vn) + np.outer(Wn @ vn, ones))
    assert_close(W.grad, want, rtol=1e-12)


# ----------------------------------------------------------------------------- grad modes
def test_no_grad_context_and_nesting(device):
    x = leaf([1.0], device=device)
    assert fk.is_grad_enabled()
    with fk.no_grad():
        assert not fk.is_grad_enabled()
        y = x * 2
        assert not y.requires_grad and y.grad_fn is None
        with fk.enable_grad():
            assert fk.is_grad_enabled()
            z = x * 2
            assert z.requires_grad
        assert not fk.is_grad_enabled()
    assert fk.is_grad_enabled()
    assert (x * 2).requires_grad


def test_no_grad_restores_state_on_exception_and_as_decorator(device):
    with pytest.raises(ValueError):
        with fk.no_grad():
            raise ValueError("boom")
    assert fk.is_grad_enabled()

    @fk.no_grad()
    def f(t):
        assert not fk.is_grad_enabled()
        return t * 3

    x = leaf([1.0], device=device)
    r = f(x)
    assert not r.requires_grad and r.tolist() == [3.0]
    assert fk.is_grad_enabled()

    @fk.enable_grad()
    def g(t):
        return t * 3

    with fk.no_grad():
        assert g(x).requires_grad


def test_detach_and_data_stop_gradients(device):
    x = leaf([1.0, 2.0], device=device)
    y = x * x
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    (x * d).sum().backward()  # d is a constant
    assert x.grad.tolist() == [1.0, 4.0]
    assert not x.data.requires_grad and x.data.tolist() == [1.0, 2.0]


# ----------------------------------------------------------------------------- in-place & versions
def test_inplace_on_non_leaf_is_differentiated(device):
    x = leaf([1.0, 2.0], device=device)
    y = x * 2
    y.mul_(3)
    y.add_(1)
    y.sum().backward()
    assert x.grad.tolist() == [6.0, 6.0]
    x.grad = None
    z = x + 0
    z += x * x
    z[0] = 0.0
    z.sum().backward()
    assert x.grad.tolist() == [0.0, 5.0]


def test_inplace_on_saved_output_is_detected(device):
    x = leaf([1.0, 2.0], device=device)
    y = x.exp()  # exp saves its output
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_inplace_on_saved_input_is_detected(device):
    x = leaf([1.0, 2.0], device=device)
    a = x * 1
    b = a.sin()  # sin saves its input
    a.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()
    w = leaf([1.0, 2.0], device=device)
    v = x * 1
    p = v * w  # mul saves both inputs
    v[0] = 5.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        p.sum().backward()


def test_inplace_through_view_of_saved_tensor_is_detected(device):
    x = leaf([[1.0, 2.0], [3.0, 4.0]], device=device)
    a = x * 1
    b = a.exp()
    b[0].zero_()  # writes into b's memory through a view
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        b.sum().backward()


def test_data_changes_are_not_tracked(device):
    x = leaf([1.0, 2.0], device=device)
    w = leaf([3.0, 4.0], device=device)
    a = x * w
    w.data.add_(1)  # untracked: no error, the gradient uses the current value of w
    a.sum().backward()
    assert x.grad.tolist() == [4.0, 5.0]


def test_inplace_on_leaf_requiring_grad(device):
    x = leaf([1.0, 2.0], device=device)
    for op in (
        lambda t: t.add_(1),
        lambda t: t.mul_(2),
        lambda t: t.zero_(),
        lambda t: t.fill_(1.0),
        lambda t: t.copy_(fk.ones(2, device=device)),
        lambda t: t.clamp_(0, 1),
    ):
        with pytest.raises(RuntimeError, match="leaf"):
            op(x)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 5.0
    with pytest.raises(RuntimeError, match="leaf"):
        x += 1
    assert x.tolist() == [1.0, 2.0]
    with fk.no_grad():
        x.add_(1)
        x[1] = 7.0
        x *= 2
    assert x.tolist() == [4.0, 14.0] and x.requires_grad and x.is_leaf
    (x * x).sum().backward()
    assert x.grad.tolist() == [8.0, 28.0]


# ----------------------------------------------------------------------------- errors
def test_backward_errors():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError):
        (x * 2).backward()  # non-scalar without gradient
    with pytest.raises(RuntimeError):
        fk.tensor([1.0]).sum().backward()  # does not require grad
    with pytest.raises(RuntimeError):
        fk.tensor([1, 2]).requires_grad_()  # only floating point tensors can require grad


# ----------------------------------------------------------------------------- deep graphs
def _run_isolated(code):
    """Run code in a fresh interpreter so that a stack overflow fails this test, not the suite."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )


def test_deep_chain_backward_and_teardown_do_not_overflow():
    r = _run_isolated("""
        import fastkern as fk
        x = fk.tensor([1.0], requires_grad=True)
        y = x
        for _ in range(10000):
            y = y * 1.0001 + 0.0
        y.sum().backward()
        print("grad", x.grad.item())
        # a long graph that is never backpropagated must also be freed without recursion
        z = x
        for _ in range(100000):
            z = z + 1.0
        del z
        print("ok")
    """)
    assert r.returncode == 0, f"crashed (rc={r.returncode}): {r.stderr[-2000:]}"
    lines = r.stdout.split()
    assert lines[-1] == "ok"
    assert float(lines[1]) == pytest.approx(1.0001**10000, rel=1e-3)


def test_whole_tensor_index_keeps_history(device):
    # x[...] and x[()] select everything: a view that gradients still flow through.
    x = fk.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    for y in (x[...], x[()]):
        assert y.requires_grad and y.grad_fn is not None
        (y * 2).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0, 4.0]
