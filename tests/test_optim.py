"""fastkern.optim: update formulas (written out in NumPy, and PyTorch itself), groups, state, schedules."""

import math

import numpy as np
import pytest

import fastkern as fk
from fastkern import nn, optim
from fastkern.optim import lr_scheduler as sch
from helpers import to_np, torch

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")

W0 = np.array([[0.5, -1.0, 2.0], [0.1, 0.3, -0.7]], dtype=np.float32)


def grad_at(w, step):
    """A deterministic gradient that changes with the weights and the step."""
    return (np.sin(w * (step + 1)) + 0.1 * w).astype(np.float32)


def run_fk(opt_cls, steps=5, device="cpu", **kw):
    p = nn.Parameter(fk.tensor(W0.copy(), device=device))
    opt = opt_cls([p], **kw)
    for s in range(steps):
        p.grad = fk.tensor(grad_at(to_np(p), s), device=device)
        opt.step()
        opt.zero_grad()
    return to_np(p)


def sgd_reference(steps=5, lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """PyTorch's SGD, written out."""
    w, buf = W0.astype(np.float64), None
    for s in range(steps):
        g = grad_at(w.astype(np.float32), s).astype(np.float64) + weight_decay * w
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        w = w - lr * g
    return w


def adam_reference(steps=5, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """PyTorch's Adam/AdamW, written out."""
    w = W0.astype(np.float64)
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t in range(1, steps + 1):
        g = grad_at(w.astype(np.float32), t - 1).astype(np.float64)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


SGD_CASES = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.3),
    dict(momentum=0.9, nesterov=True),
    dict(weight_decay=0.1),
    dict(momentum=0.5, weight_decay=0.01, nesterov=True),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_formula(kw, device):
    np.testing.assert_allclose(
        run_fk(optim.SGD, lr=0.1, device=device, **kw), sgd_reference(lr=0.1, **kw), rtol=1e-5, atol=1e-6
    )


ADAM_CASES = [
    (optim.Adam, dict()),
    (optim.Adam, dict(weight_decay=0.1)),
    (optim.AdamW, dict(weight_decay=0.1)),
    (optim.Adam, dict(betas=(0.8, 0.99), eps=1e-3)),
]


@pytest.mark.parametrize("cls,kw", ADAM_CASES, ids=str)
def test_adam_formula(cls, kw, device):
    want = adam_reference(lr=0.01, decoupled=cls is optim.AdamW, **kw)
    np.testing.assert_allclose(run_fk(cls, lr=0.01, device=device, **kw), want, rtol=1e-5, atol=1e-6)


@needs_torch
@pytest.mark.parametrize(
    "name,kw",
    [
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
        ("Adam", dict(lr=0.01, weight_decay=0.1)),
        ("Adam", dict(lr=0.01, amsgrad=True)),
        ("AdamW", dict(lr=0.01, betas=(0.85, 0.99))),
    ],
    ids=str,
)
def test_matches_torch_optimizer(name, kw, device):
    def run_torch():
        p = torch.nn.Parameter(torch.tensor(W0.copy()))
        opt = getattr(torch.optim, name)([p], **kw)
        for s in range(6):
            p.grad = torch.tensor(grad_at(p.detach().numpy(), s))
            opt.step()
        return p.detach().numpy()

    np.testing.assert_allclose(
        run_fk(getattr(optim, name), steps=6, device=device, **kw), run_torch(), rtol=1e-5, atol=1e-6
    )


def test_updates_in_place_without_recording(device):
    p = nn.Parameter(fk.ones(3, device=device))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    (p * p).sum().backward()
    opt.step()
    assert p.grad_fn is None and p.is_leaf and p.requires_grad
    assert p.tolist() == [0.0, 0.0, 0.0]
    skipped = nn.Parameter(fk.ones(2, device=device))  # no grad: left alone
    opt2 = optim.Adam([skipped])
    opt2.step()
    assert skipped.tolist() == [1.0, 1.0] and skipped not in opt2.state


def test_param_groups_with_own_lr(device):
    a, b = nn.Parameter(fk.ones(2, device=device)), nn.Parameter(fk.ones(2, device=device))
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 1.0}], lr=0.1, momentum=0.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 1.0
    assert opt.param_groups[1]["momentum"] == 0.0
    a.grad, b.grad = fk.ones(2, device=device), fk.ones(2, device=device)
    opt.step()
    np.testing.assert_allclose(to_np(a), [0.9, 0.9])
    np.testing.assert_allclose(to_np(b), [0.0, 0.0])
    with pytest.raises(ValueError, match="more than one"):
        opt.add_param_group({"params": [a]})
    opt.zero_grad()
    assert a.grad is None
    with pytest.raises(ValueError):
        optim.SGD([], lr=0.1)


def test_state_dict_round_trip_continues_identically(device):
    def make():
        p = nn.Parameter(fk.tensor(W0.copy(), device=device))
        return p, optim.Adam([p], lr=0.01)

    p1, o1 = make()
    for s in range(3):
        p1.grad = fk.tensor(grad_at(to_np(p1), s), device=device)
        o1.step()
    sd = o1.state_dict()
    assert sd["state"][0]["step"] == 3 and sd["param_groups"][0]["params"] == [0]
    p2, o2 = make()
    p2.detach().copy_(p1.detach())
    o2.load_state_dict(sd)
    for p, o in ((p1, o1), (p2, o2)):
        p.grad = fk.tensor(grad_at(to_np(p), 3), device=device)
        o.step()
    np.testing.assert_array_equal(to_np(p1), to_np(p2))
    sd["state"][0]["exp_avg"].fill_(123.0)  # loading copied the tensors
    assert o2.state[p2]["exp_avg"].max().item() != 123.0


def test_annealing_functions():
    assert sch.sched_lin(1, 3, 0.5) == 2
    assert sch.sched_cos(1, 3, 0) == 1 and sch.sched_cos(1, 3, 1) == pytest.approx(3)
    assert sch.sched_cos(1, 3, 0.5) == pytest.approx(2)
    assert sch.sched_exp(1e-7, 10, 0.5) == pytest.approx(math.sqrt(1e-6))
    f = sch.combined_cos(0.25, 1.0, 10.0, 0.5)
    assert f(0) == 1.0 and f(0.25) == pytest.approx(10.0) and f(1.0) == pytest.approx(0.5)
    xs = [f(i / 100) for i in range(101)]
    assert max(xs) == pytest.approx(10.0) and xs.index(max(xs)) == 25
    assert all(a <= b for a, b in zip(xs[:25], xs[1:26])) and all(a >= b for a, b in zip(xs[25:], xs[26:]))


def _lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@needs_torch
@pytest.mark.parametrize(
    "make",
    [
        lambda m, o: m.lr_scheduler.StepLR(o, 3, gamma=0.5),
        lambda m, o: m.lr_scheduler.ExponentialLR(o, 0.9),
        lambda m, o: m.lr_scheduler.CosineAnnealingLR(o, 10, eta_min=0.01),
        lambda m, o: m.lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 1)),
        lambda m, o: m.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=20, pct_start=0.3),
    ],
    ids=["step", "exponential", "cosine", "lambda", "one_cycle"],
)
def test_schedulers_match_torch(make):
    tp = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([tp], lr=0.5, momentum=0.9)
    fopt = optim.SGD([nn.Parameter(fk.zeros(1))], lr=0.5, momentum=0.9)
    n = 19
    want, got = _lrs(make(torch.optim, topt), topt, n), _lrs(make(optim, fopt), fopt, n)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(fopt.param_groups[0]["momentum"], topt.param_groups[0]["momentum"], rtol=1e-6)


def test_one_cycle_momentum_for_adam_is_beta1():
    opt = optim.Adam([nn.Parameter(fk.zeros(1))], lr=0.1)
    s = sch.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    assert opt.param_groups[0]["betas"][0] == pytest.approx(0.95)
    for _ in range(3):
        s.step()
    assert opt.param_groups[0]["betas"][0] < 0.95 and opt.param_groups[0]["betas"][1] == 0.999


@pytest.mark.parametrize("cls,kw", ADAM_CASES, ids=str)
def test_adam_unfused_path_matches(cls, kw, device):
    # A non-contiguous parameter takes the op-by-op path; contiguous ones the fused C++ step.
    p = nn.Parameter(fk.tensor(np.ascontiguousarray(W0.T), device=device).T)
    assert not p.is_contiguous()
    opt = cls([p], lr=0.01, **kw)
    for s in range(5):
        p.grad = fk.tensor(grad_at(to_np(p), s), device=device)
        opt.step()
    want = adam_reference(lr=0.01, decoupled=cls is optim.AdamW, **kw)
    np.testing.assert_allclose(to_np(p), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_fk(cls, lr=0.01, device=device, **kw), to_np(p), rtol=1e-5, atol=1e-6)


def test_fused_adam_step_checks_its_operands():
    p, g = fk.zeros(3), fk.zeros(3)
    with pytest.raises(RuntimeError, match=r"\[3\].*\[4\]"):
        fk._C._adam_step(p, g, fk.zeros(4), fk.zeros(3), 0.1, 0.9, 0.999, 1e-8, 0.0, False, 1)
