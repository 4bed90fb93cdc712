"""The test machinery for devices: which devices run, and the CPU-oracle check used off the CPU."""

import numpy as np
import pytest

import fastkern as fk
import helpers
from helpers import DEVICES, _compare_with_cpu, available_devices, make_inputs, make_tensor, on_device, to_np


def test_devices_start_with_the_cpu(monkeypatch):
    monkeypatch.delenv("FASTKERN_TEST_DEVICES", raising=False)
    found = available_devices()
    assert found[0] == "cpu"
    assert ("cuda" in found) == helpers._can_create_on("cuda")  # only where CUDA tensors work
    assert set(DEVICES) <= set(found)


@pytest.mark.parametrize(
    "env, want",
    [
        ("", ["cpu", "cuda"]),
        ("cuda", ["cuda"]),
        ("cpu", ["cpu"]),
        (" cuda , cpu ", ["cpu", "cuda"]),
        ("cuda,", ["cuda"]),
    ],
)
def test_env_restricts_the_devices(monkeypatch, env, want):
    monkeypatch.setattr(helpers, "_can_create_on", lambda device: True)  # as on a machine with CUDA tensors
    monkeypatch.setenv("FASTKERN_TEST_DEVICES", env)
    assert available_devices() == want


def test_env_drops_devices_that_do_not_work_and_refuses_unknown_names(monkeypatch):
    monkeypatch.setattr(helpers, "_can_create_on", lambda device: False)
    monkeypatch.setenv("FASTKERN_TEST_DEVICES", "cuda")
    assert available_devices() == []
    monkeypatch.setenv("FASTKERN_TEST_DEVICES", "cpu,cdua")
    with pytest.raises(ValueError, match="cdua"):
        available_devices()


def test_tensors_land_on_the_device(device):
    a = np.arange(12.0).reshape(3, 4)
    for t in (
        fk.tensor(a, device=device),
        fk.zeros(3, device=device),
        fk.arange(4, device=device),
        fk.tensor(a).to(device),
        fk.zeros_like(fk.tensor(a, device=device)),
    ):
        assert on_device(t, device)
    for layout in ("transposed", "strided"):
        t = make_tensor(a, "float64", layout, requires_grad=True, device=device)
        assert on_device(t, device) and not t.is_contiguous() and t.is_leaf
        np.testing.assert_array_equal(to_np(t), a)
    back = fk.tensor(a, device=device).to("cpu")
    assert on_device(back, "cpu")
    np.testing.assert_array_equal(back.numpy(), a)


# ---- _compare_with_cpu, run here with CPU inputs standing in for the device's
ARRAYS = [np.linspace(-1, 1, 12).reshape(3, 4), np.linspace(0.5, 2, 4)]
TOL = dict(rtol=1e-12, atol=1e-14)


def _inputs(layout="strided"):
    return make_inputs(ARRAYS, "float64", layout, requires_grad=True)


def _cpu_differs(right, wrong):
    """fn that is `right` on odd calls and `wrong` on even ones: _compare_with_cpu calls it on
    the device first and then on the CPU, so here only the 'CPU' result differs."""
    calls = []

    def fn(*xs):
        calls.append(1)
        return (right if len(calls) % 2 else wrong)(*xs)

    return fn


def test_compare_with_cpu_accepts_agreeing_results():
    w = np.random.default_rng(0).standard_normal((3, 4))
    xs = _inputs()
    out = _compare_with_cpu(lambda a, b: (a * b).exp(), xs, _inputs("contiguous"), "cpu", w=w, **TOL)
    a, b = ARRAYS
    np.testing.assert_allclose(to_np(out), np.exp(a * b), rtol=1e-12)
    np.testing.assert_allclose(to_np(xs[1].grad), (w * a * np.exp(a * b)).sum(0), rtol=1e-12)


WRONG = {  # what differs: (the device's fn, the CPU's fn, the error message)
    "values": (lambda a, b: a * b, lambda a, b: a * b * (1 + 1e-9), "cpu vs cpu"),
    "dtype": (lambda a, b: a * b, lambda a, b: (a * b).float(), "dtype float64 on cpu, float32 on the CPU"),
    "shape": (lambda a, b: a * b, lambda a, b: (a * b)[:2], "shape"),
    "gradient": (
        lambda a, b: a * b,
        lambda a, b: 2 * (a * b).detach() - a * b,  # same values, -grad
        "grad of input 0, cpu vs cpu",
    ),
    "missing_gradient": (lambda a, b: a * b.detach(), lambda a, b: a * b, "input 1 got no .grad"),
}


@pytest.mark.parametrize("right, wrong, match", WRONG.values(), ids=WRONG)
def test_compare_with_cpu_fails_when_results_differ(right, wrong, match):
    w = np.ones((3, 4))
    with pytest.raises(AssertionError, match=match):
        _compare_with_cpu(_cpu_differs(right, wrong), _inputs(), _inputs(), "cpu", w=w, **TOL)


def test_compare_with_cpu_fails_when_the_result_is_not_on_the_device():
    # CPU inputs said to be on "cuda": a result (or gradient) left on the CPU is an error
    with pytest.raises(AssertionError, match="on cpu, inputs on cuda"):
        _compare_with_cpu(lambda a, b: a * b, _inputs(), _inputs(), "cuda", **TOL)


@pytest.fixture
def cpu_posing_as_cuda(monkeypatch):
    """helper_test_op(..., device='cuda') with every tensor really on the CPU, so that its
    non-CPU branch runs here: inputs are built on the CPU and count as being on 'cuda'."""
    build = helpers.make_tensor

    def make_tensor_on_cpu(a, dtype, layout, requires_grad=False, device="cpu"):
        return build(a, dtype, layout, requires_grad)

    monkeypatch.setattr(helpers, "make_tensor", make_tensor_on_cpu)
    monkeypatch.setattr(helpers, "on_device", lambda t, device: on_device(t, "cpu"))


def test_helper_non_cpu_branch(cpu_posing_as_cuda):
    helpers.helper_test_op([(3, 4), (4,)], lambda a, b: a * b.exp(), lambda a, b: a * np.exp(b), device="cuda")
    helpers.helper_test_op(
        [(3, 4)], lambda a: a > 0, lambda a: a > 0, device="cuda", forward_only=True, out_dtype="bool"
    )


@pytest.mark.parametrize(
    "wrong, match",
    [
        (lambda a, b: a * b.exp() * (1 + 7e-6), "forward float32/contiguous: cuda vs cpu"),  # passes vs NumPy
        (lambda a, b: 2 * (a * b.exp()).detach() - a * b.exp(), "grad of input 0, cuda vs cpu"),  # same values, -grad
    ],
    ids=["forward", "gradient"],
)
def test_helper_non_cpu_branch_fails_when_the_device_disagrees(cpu_posing_as_cuda, wrong, match):
    fn = _cpu_differs(lambda a, b: a * b.exp(), wrong)
    with pytest.raises(AssertionError, match=match):
        helpers.helper_test_op([(3, 4), (4,)], fn, lambda a, b: a * np.exp(b), device="cuda")
