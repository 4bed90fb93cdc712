"""fastkern.optim against PyTorch itself: a script ports by changing the import.

Every optimiser over a grid of its flags (same starting weights, same gradients, same
numbers to rounding), constructor signatures, state dicts (fastkern's own round trip
and PyTorch's loaded into fastkern), LBFGS trajectories, and every scheduler's lr
sequence, attributes and state dict.
"""

import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from fastkern import nn, optim
from helpers import to_np

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
W0 = np.array([[0.5, -1.0, 2.0], [0.1, 0.3, -0.7]])
B0 = np.array([0.2, -0.4])
TOL = {"float64": dict(rtol=1e-10, atol=1e-10), "float32": dict(rtol=1e-6, atol=2e-6)}


def grads_at(ws, step):
    """A gradient per weight array, mildly nonlinear in the weights and changing with the step:
    the same numbers for both libraries, and contracting, so rounding differences stay small."""
    return [0.5 * w - 0.2 + 0.1 * np.cos(w + step) for w in ws]


# ----------------------------------------------------------------------------- optimisers
OPT_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adam", dict(lr=0.01, maximize=True, amsgrad=True)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-3)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.1)),
    ("RMSprop", dict()),
    ("RMSprop", dict(centered=True)),
    ("RMSprop", dict(momentum=0.9)),
    ("RMSprop", dict(centered=True, momentum=0.9, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(alpha=0.9, eps=1e-3)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr_decay=0.1, weight_decay=0.1)),
    ("Adagrad", dict(initial_accumulator_value=0.5, eps=1e-6)),
    ("Adagrad", dict(maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(rho=0.8, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, eps=1e-4, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(weight_decay=0.1)),
    ("Adamax", dict(betas=(0.8, 0.9), maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(momentum_decay=0.01)),
    ("NAdam", dict(weight_decay=0.1)),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict(maximize=True, betas=(0.8, 0.99))),
    ("RAdam", dict()),  # rho_t > 5 from step 6 on: both branches
    ("RAdam", dict(betas=(0.9, 0.9))),  # rectified from the first steps
    ("RAdam", dict(weight_decay=0.1)),
    ("RAdam", dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]
OPT_NAMES = sorted({name for name, _ in OPT_CASES})


def make_params(m, dtype, device="cpu"):
    """W0 and B0 as parameters of library m (torch on the CPU, fastkern on device)."""
    if m is torch:
        return [torch.nn.Parameter(torch.tensor(a, dtype=getattr(torch, dtype))) for a in (W0, B0)]
    return [nn.Parameter(fk.tensor(a, dtype=getattr(fk, dtype), device=device)) for a in (W0, B0)]


def make_opt(m, name, params, kw):
    """Two groups, the second with its own lr: groups keep their own hyper-parameters."""
    return getattr(m.optim, name)([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.03}], **kw)


def take_steps(m, opt, params, steps, first=0):
    for s in range(first, first + steps):
        for p, g in zip(params, grads_at([to_np(p) for p in params], s)):
            p.grad = m.tensor(g, dtype=p.dtype, device=p.device)
        opt.step()


def run(m, name, kw, dtype, steps=10, device="cpu"):
    params = make_params(m, dtype, device)
    take_steps(m, make_opt(m, name, params, kw), params, steps)
    return [to_np(p) for p in params]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,kw", OPT_CASES, ids=[f"{n}-{k}" for n, k in OPT_CASES])
def test_optimizer_matches_torch(name, kw, dtype, device):
    got, want = run(fk, name, kw, dtype, device=device), run(torch, name, kw, dtype)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL[dtype])


def _signature(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("name", OPT_NAMES + ["LBFGS"])
def test_optimizer_signature_is_torch(name):
    # names, order, keyword-only markers and defaults: calls written for PyTorch bind the same way
    assert _signature(getattr(optim, name)) == _signature(getattr(torch.optim, name))


@pytest.mark.parametrize("name,kw", OPT_CASES, ids=[f"{n}-{k}" for n, k in OPT_CASES])
def test_state_dict_layout_is_torch(name, kw):
    sds = []
    for m in (fk, torch):
        params = make_params(m, "float64")
        opt = make_opt(m, name, params, kw)
        take_steps(m, opt, params, 2)
        sds.append(opt.state_dict())
    mine, theirs = sds
    assert [sorted(g) for g in mine["param_groups"]] == [sorted(g) for g in theirs["param_groups"]]
    for g, h in zip(mine["param_groups"], theirs["param_groups"]):
        assert g == h  # the same hyper-parameters and param indices
    assert sorted(mine["state"]) == sorted(theirs["state"])
    for i in theirs["state"]:
        assert sorted(mine["state"][i]) == sorted(theirs["state"][i])
        for k, v in theirs["state"][i].items():
            v_mine = mine["state"][i][k]
            v_mine = to_np(v_mine) if isinstance(v_mine, fk.Tensor) else v_mine  # steps are numbers here
            np.testing.assert_allclose(v_mine, v.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kw", OPT_CASES, ids=[f"{n}-{k}" for n, k in OPT_CASES])
def test_state_dict_round_trip_continues_identically(name, kw, device):
    params = make_params(fk, "float64", device)
    opt = make_opt(fk, name, params, kw)
    take_steps(fk, opt, params, 3)
    sd = opt.state_dict()
    resumed = make_params(fk, "float64", device)
    for p, q in zip(resumed, params):
        p.detach().copy_(q.detach())
    loaded = make_opt(fk, name, resumed, dict(kw, lr=123.0))
    loaded.load_state_dict(sd)
    assert [g["lr"] for g in loaded.param_groups] == [g["lr"] for g in opt.param_groups]  # the saved lrs, not 123
    take_steps(fk, opt, params, 3, first=3)
    take_steps(fk, loaded, resumed, 3, first=3)
    for p, q in zip(resumed, params):
        np.testing.assert_array_equal(to_np(p), to_np(q))
    saved = [v for st in sd["state"].values() for v in st.values() if isinstance(v, fk.Tensor)]
    assert not any(v is t for st in loaded.state.values() for v in st.values() for t in saved)  # loading copied


def _from_torch(value):
    """A PyTorch state dict with its tensors made fastkern tensors (0-d steps included)."""
    if isinstance(value, torch.Tensor):
        return fk.tensor(value.numpy())
    if isinstance(value, dict):
        return {k: _from_torch(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_torch(v) for v in value]
    return value


@pytest.mark.parametrize("name,kw", OPT_CASES, ids=[f"{n}-{k}" for n, k in OPT_CASES])
def test_loads_torch_state_dict_and_continues_as_torch(name, kw, device):
    tparams = make_params(torch, "float64")
    topt = make_opt(torch, name, tparams, kw)
    take_steps(torch, topt, tparams, 4)
    params = [nn.Parameter(fk.tensor(p.detach().numpy(), device=device)) for p in tparams]
    opt = make_opt(fk, name, params, dict(kw, lr=123.0))
    opt.load_state_dict(_from_torch(topt.state_dict()))
    assert all(v.device == params[0].device for s in opt.state.values() for v in s.values() if isinstance(v, fk.Tensor))
    take_steps(torch, topt, tparams, 4, first=4)
    take_steps(fk, opt, params, 4, first=4)
    for p, q in zip(params, tparams):
        np.testing.assert_allclose(to_np(p), q.detach().numpy(), **TOL["float64"])


def test_sgd_keeps_no_state_without_momentum():
    p = nn.Parameter(fk.ones(2))
    opt = optim.SGD([p], lr=0.1)
    p.grad = fk.ones(2)
    opt.step()
    assert opt.state_dict()["state"] == {} and not opt.state


def test_adagrad_state_exists_before_the_first_step():
    # PyTorch fills the accumulators at construction
    opt = optim.Adagrad([nn.Parameter(fk.zeros(2))], initial_accumulator_value=0.25)
    assert opt.state_dict()["state"][0]["step"] == 0
    assert opt.state_dict()["state"][0]["sum"].tolist() == [0.25, 0.25]


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda m, p: m.optim.SGD(p, lr=-1), ValueError),
        (lambda m, p: m.optim.SGD(p, lr=0.1, nesterov=True), ValueError),
        (lambda m, p: m.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError),
        (lambda m, p: m.optim.SGD(p, lr=0.1, momentum=-0.5), ValueError),
        (lambda m, p: m.optim.Adam(p, betas=(1.0, 0.999)), ValueError),
        (lambda m, p: m.optim.Adam(p, eps=-1.0), ValueError),
        (lambda m, p: m.optim.RMSprop(p, alpha=-0.1), ValueError),
        (lambda m, p: m.optim.Adagrad(p, lr_decay=-0.1), ValueError),
        (lambda m, p: m.optim.Adadelta(p, rho=1.5), ValueError),
        (lambda m, p: m.optim.NAdam(p, momentum_decay=-1.0), ValueError),
        (lambda m, p: m.optim.RAdam(p, weight_decay=-1.0), ValueError),
        (lambda m, p: m.optim.LBFGS([{"params": p[:1]}, {"params": p[1:]}]), ValueError),
        (lambda m, p: m.optim.SGD(p[0], lr=0.1), TypeError),
    ],
)
def test_argument_errors_as_torch(make, error):
    for m in (torch, fk):
        with pytest.raises(error):
            make(m, make_params(m, "float32"))


def test_differentiable_is_refused():
    with pytest.raises(NotImplementedError, match="differentiable"):
        optim.Adam([nn.Parameter(fk.zeros(1))], differentiable=True)


def test_implementation_switches_are_accepted_and_change_nothing():
    plain = run(fk, "Adam", dict(lr=0.01), "float64")
    switched = run(fk, "Adam", dict(lr=0.01, foreach=True, fused=True, capturable=True), "float64")
    for a, b in zip(plain, switched):
        np.testing.assert_array_equal(a, b)


def test_optimizers_exported_like_torch():
    for name in OPT_NAMES + ["LBFGS", "Optimizer"]:
        assert hasattr(optim, name) and hasattr(torch.optim, name)
    assert issubclass(optim.LBFGS, optim.Optimizer)


def test_a_training_script_ports_by_changing_the_import():
    """The same loop, written once against the module m: linear regression with RMSprop and StepLR."""
    rng = np.random.default_rng(0)
    x, true_w = rng.standard_normal((64, 3)), np.array([[1.5, -2.0, 0.5]])
    y = x @ true_w.T + 0.3

    def train(m):
        w = m.nn.Parameter(m.tensor(np.zeros((1, 3))))
        b = m.nn.Parameter(m.tensor(np.zeros(1)))
        xs, ys = m.tensor(x), m.tensor(y)
        opt = m.optim.RMSprop([w, b], lr=0.05, momentum=0.5)
        sched = m.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
        losses = []
        for _ in range(30):
            opt.zero_grad()
            loss = ((xs @ w.T + b - ys) ** 2).mean()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        return losses, to_np(w)

    (fk_losses, fk_w), (t_losses, t_w) = train(fk), train(torch)
    np.testing.assert_allclose(fk_losses, t_losses, rtol=1e-9)
    np.testing.assert_allclose(fk_w, t_w, rtol=1e-9, atol=1e-12)
    assert fk_losses[-1] < 0.01 * fk_losses[0]


# ----------------------------------------------------------------------------- LBFGS
X0 = [-1.5, 2.0]


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def lbfgs_run(m, dtype, steps=4, device="cpu", **kw):
    """Rosenbrock from (-1.5, 2): the (loss, x) after each step, and the state's counters."""
    x = m.nn.Parameter(m.tensor(X0, dtype=getattr(m, dtype), device=device))
    opt = m.optim.LBFGS([x], **kw)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    traj = [(opt.step(closure).item(), to_np(x)) for _ in range(steps)]
    return traj, opt.state[x]["n_iter"], opt.state[x]["func_evals"]


# (arguments, steps). Full fixed steps (lr=1, no line search) bounce around the curved valley and
# magnify last-bit differences (of the two autograds and dot products) ~1000x a step: one step there.
LBFGS_CASES = [
    (dict(), 1),
    (dict(lr=0.25), 6),
    (dict(line_search_fn="strong_wolfe"), 4),
    (dict(lr=0.5, max_iter=7, history_size=3), 4),
    (dict(lr=0.5, max_iter=7, history_size=3, line_search_fn="strong_wolfe"), 4),
    (dict(max_iter=5, max_eval=6, line_search_fn="strong_wolfe"), 4),
]


@pytest.mark.parametrize("kw,steps", LBFGS_CASES, ids=str)
def test_lbfgs_rosenbrock_trajectory_matches_torch(kw, steps, device):
    got, n_iter, evals = lbfgs_run(fk, "float64", steps, device=device, **kw)
    want, t_iter, t_evals = lbfgs_run(torch, "float64", steps, **kw)
    assert (n_iter, evals) == (t_iter, t_evals)  # the same iterations, line-search steps and stops
    for (loss, x), (t_loss, t_x) in zip(got, want):
        np.testing.assert_allclose(loss, t_loss, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(x, t_x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_float32_reaches_torchs_minimum(line_search_fn, device):
    # in float32 PyTorch does the scalar arithmetic in float32 too: the paths differ by rounding, the end does not
    got, _, _ = lbfgs_run(fk, "float32", steps=10, device=device, line_search_fn=line_search_fn)
    want, _, _ = lbfgs_run(torch, "float32", steps=10, line_search_fn=line_search_fn)
    np.testing.assert_allclose(got[-1][1], want[-1][1], atol=1e-3)
    np.testing.assert_allclose(got[-1][1], [1.0, 1.0], atol=1e-3)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_least_squares_with_several_parameters(line_search_fn, device):
    """A linear model (weight matrix and bias): the flat vector spans parameters of different shapes."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))

    def fit(m, dev):
        w, b = m.nn.Parameter(m.tensor(W0, device=dev)), m.nn.Parameter(m.tensor(B0, device=dev))
        xs, ys = m.tensor(x, device=dev), m.tensor(y, device=dev)
        opt = m.optim.LBFGS([w, b], history_size=5, max_iter=10, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            loss = ((xs @ w.T + b - ys) ** 2).sum()
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(3)]
        return losses, to_np(w), to_np(b)

    for a, b in zip(fit(fk, device), fit(torch, "cpu")):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
    want_w, *_ = np.linalg.lstsq(np.c_[x, np.ones(20)], y, rcond=None)
    np.testing.assert_allclose(fit(fk, device)[1], want_w[:3].T, atol=1e-5)  # 30 iterations: near the solution


def test_lbfgs_state_dict_round_trip_continues_identically():
    def make():
        x = nn.Parameter(fk.tensor(X0, dtype=fk.float64))
        opt = optim.LBFGS([x], max_iter=4, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = rosenbrock(x)
            loss.backward()
            return loss

        return x, opt, closure

    x1, o1, c1 = make()
    for _ in range(2):
        o1.step(c1)
    sd = o1.state_dict()
    x2, o2, c2 = make()
    x2.detach().copy_(x1.detach())
    o2.load_state_dict(sd)
    for _ in range(2):
        o1.step(c1)
        o2.step(c2)
    np.testing.assert_array_equal(to_np(x1), to_np(x2))
    assert o2.state[x2]["n_iter"] == o1.state[x1]["n_iter"]


def test_lbfgs_stops_at_once_when_the_gradient_is_zero():
    x = nn.Parameter(fk.tensor([1.0, 1.0], dtype=fk.float64))
    opt = optim.LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    assert opt.step(closure).item() == 0.0 and len(calls) == 1 and x.tolist() == [1.0, 1.0]


# ----------------------------------------------------------------------------- schedulers
def sched_opt(m, name="SGD"):
    P = (lambda: torch.nn.Parameter(torch.zeros(1))) if m is torch else (lambda: nn.Parameter(fk.zeros(1)))
    kw = dict(lr=0.5, momentum=0.9) if name == "SGD" else dict(lr=0.5)
    return getattr(m.optim, name)([{"params": [P()]}, {"params": [P()], "lr": 0.1}], **kw)


SCHEDULERS = {
    "StepLR": lambda L, o: L.StepLR(o, 4, gamma=0.5),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, [3, 7, 7, 20], gamma=0.3),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, 7, eta_min=0.01),  # past T_max: back up
    "LambdaLR": lambda L, o: L.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9**e]),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda e: 0.95),
    "LinearLR": lambda L, o: L.LinearLR(o, start_factor=0.25, total_iters=6),
    "ConstantLR": lambda L, o: L.ConstantLR(o, factor=0.5, total_iters=4),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, total_iters=10, power=2.0),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, max_lr=[1.0, 0.3], total_steps=31),
    "OneCycleLR-3phase-linear": lambda L, o: L.OneCycleLR(
        o, max_lr=1.0, epochs=4, steps_per_epoch=8, three_phase=True, anneal_strategy="linear"
    ),
    "CyclicLR": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=4, step_size_down=3),
    "CyclicLR-triangular2": lambda L, o: L.CyclicLR(o, [0.01, 0.02], 0.1, step_size_up=4, mode="triangular2"),
    "CyclicLR-exp_range": lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=3, mode="exp_range", gamma=0.9),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, 5, T_mult=2, eta_min=0.001),
    "CosineAnnealingWarmRestarts-1": lambda L, o: L.CosineAnnealingWarmRestarts(o, 4),
    "SequentialLR": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, 0.1, total_iters=5), L.CosineAnnealingLR(o, 20)], milestones=[5]
    ),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler([L.ExponentialLR(o, 0.9), L.StepLR(o, 3, 0.5)]),
}


def lr_sequence(m, make, n=30, opt_name="SGD", opt=None):
    """What a training loop sees each epoch: lrs, momentum (or beta1), last_epoch."""
    opt = opt or sched_opt(m, opt_name)
    sched = make(m.optim.lr_scheduler, opt)
    seq = []
    for _ in range(n):
        moms = [g["momentum"] if "momentum" in g else g["betas"][0] for g in opt.param_groups]
        lrs = [g["lr"] for g in opt.param_groups]
        seq.append((list(sched.get_last_lr()), lrs, moms, getattr(sched, "last_epoch", None)))
        opt.step()
        sched.step()
    return seq, sched, opt


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_matches_torch(name, opt_name):
    got, sched, _ = lr_sequence(fk, SCHEDULERS[name], opt_name=opt_name)
    want, tsched, _ = lr_sequence(torch, SCHEDULERS[name], opt_name=opt_name)
    assert got == want  # the same operations in the same order: the same floats
    private = {"_get_lr_called_within_step"}  # PyTorch's flag for a warning fastkern does not give
    assert set(sched.state_dict()) == set(tsched.state_dict()) - private


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_state_dict_round_trip_and_from_torch(name):
    """Stopped at epoch 10 and resumed (from fastkern's state dict and from PyTorch's): the rest of
    the sequence is the uninterrupted one."""
    make = SCHEDULERS[name]
    want, _, _ = lr_sequence(torch, make, n=25)
    for source in (fk, torch):
        _, sched, opt = lr_sequence(source, make, n=10)
        sd, groups = sched.state_dict(), [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        new_opt = sched_opt(fk)
        for g, saved in zip(new_opt.param_groups, groups):
            g.update(saved)
        new = make(optim.lr_scheduler, new_opt)
        new.load_state_dict(sd)
        for g, saved in zip(new_opt.param_groups, groups):  # building the scheduler moved the lrs
            g.update(saved)
        rest, _, _ = lr_sequence(fk, lambda L, o: new, n=15, opt=new_opt)
        assert rest == want[10:], source.__name__


def test_step_with_epoch_warns_and_uses_the_closed_form():
    results = []
    for m in (fk, torch):
        opt = sched_opt(m)
        s = m.optim.lr_scheduler.StepLR(opt, 3, gamma=0.5)
        opt.step()
        with pytest.warns(UserWarning, match="epoch"):
            s.step(7)
        results.append((s.get_last_lr(), s.last_epoch))
    assert results[0] == results[1] == ([0.125, 0.025], 7)


def test_warm_restarts_with_fractional_epochs():
    # stepped every batch: scheduler.step(epoch + i / iters)
    seqs = []
    for m in (fk, torch):
        opt = sched_opt(m)
        s = m.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.01)
        seq = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in range(12):
                for i in range(4):
                    s.step(epoch + i / 4)
                    seq.append((s.get_last_lr(), s.T_cur, s.T_i, s.last_epoch))
        seqs.append(seq)
    assert seqs[0] == seqs[1]


def test_resuming_with_last_epoch_needs_initial_lr():
    for m in (fk, torch):
        with pytest.raises(KeyError, match="initial_lr"):
            m.optim.lr_scheduler.StepLR(sched_opt(m), 3, last_epoch=5)
    seqs = []
    for m in (fk, torch):
        opt = sched_opt(m)
        for g in opt.param_groups:
            g["initial_lr"] = 1.0
        seqs.append(lr_sequence(m, lambda L, o: L.CosineAnnealingLR(o, 10, last_epoch=3), n=12, opt=opt)[0])
    assert seqs[0] == seqs[1]


PLATEAU_METRICS = [1.0, 0.9, 0.95, 0.91, 0.9, 0.9, 0.89999, 0.85, 0.86, 0.87, 0.88, 0.84, 0.8400001]
PLATEAU_METRICS += [0.9] * 12


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(patience=2),
        dict(mode="max", factor=0.5, patience=1, cooldown=2),
        dict(threshold_mode="abs", threshold=0.01, patience=0, min_lr=[0.02, 0.001]),
        dict(mode="max", threshold_mode="abs", threshold=0.05, patience=1),
        dict(patience=1, eps=0.05, factor=0.5),  # reductions smaller than eps are skipped
    ],
    ids=str,
)
def test_reduce_lr_on_plateau_matches_torch(kw):
    runs = []
    for m in (fk, torch):
        opt = sched_opt(m)
        s = m.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        seq = []
        for x in PLATEAU_METRICS:
            opt.step()
            s.step(m.tensor(x) if x == 0.85 else x)  # a 0-d tensor metric too, as loss.item() is often skipped
            seq.append((s.get_last_lr(), [g["lr"] for g in opt.param_groups], s.num_bad_epochs, s.best))
            seq[-1] += (s.cooldown_counter, s.in_cooldown, s.last_epoch)
        runs.append((seq, s.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert runs[0][1] == runs[1][1]


def test_reduce_lr_on_plateau_state_dict_round_trip():
    opt = sched_opt(fk)
    s = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, cooldown=1)
    for x in PLATEAU_METRICS[:8]:
        s.step(x)
    s2 = optim.lr_scheduler.ReduceLROnPlateau(sched_opt(fk), mode="max")
    s2.load_state_dict(s.state_dict())
    for x in PLATEAU_METRICS[8:]:
        s.step(x)
        s2.step(x)
        assert (s2.best, s2.num_bad_epochs, s2.cooldown_counter) == (s.best, s.num_bad_epochs, s.cooldown_counter)


def test_schedulers_exported_with_torchs_signatures():
    for name in torch.optim.lr_scheduler.__all__:
        assert hasattr(optim.lr_scheduler, name), name
        if name != "LRScheduler":
            assert _signature(getattr(optim.lr_scheduler, name)) == _signature(getattr(torch.optim.lr_scheduler, name))


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        optim.lr_scheduler.StepLR(object(), 3)


# ----------------------------------------------------------------------------- example
def test_rmsprop_example_runs():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import rmsprop_loop
    finally:
        sys.path.pop(0)
    losses = rmsprop_loop.main(verbose=False)
    assert losses[-1] < 0.02 * losses[0]


def test_rmsprop_example_runs_as_a_script():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "rmsprop_loop.py")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "loss" in out.stdout
