"""Backend reporting: the CPU kernel path chosen, and the CUDA seam (device discovery only)."""

import os
import subprocess
import sys

import pytest

import fastkern as fk


def test_cpu_capability_reports_a_known_path():
    assert fk.backends.cpu.capability() in ("avx512", "avx2", "base")


@pytest.mark.parametrize("isa", ["base", "avx2"])
def test_forcing_a_lower_cpu_path(isa):
    # Forced paths must still compute the same results (float32 exp and a reduction here).
    code = (
        "import fastkern as fk, numpy as np; x = fk.linspace(-5, 5, 1001); "
        "print(fk.backends.cpu.capability()); "
        "assert np.allclose(x.exp().numpy(), np.exp(x.numpy().astype(np.float64)), rtol=2e-6); "
        "assert abs(x.sum().item()) < 1e-3"
    )
    env = dict(os.environ, FASTKERN_CPU_ISA=isa)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in (isa, "base")  # a CPU without AVX2 falls back to base


no_cuda = pytest.mark.skipif(fk.cuda.is_available(), reason="a CUDA device is available")


def test_cuda_build_reports_what_it_found():
    assert isinstance(fk.backends.cuda.is_built(), bool)
    assert fk.backends.cuda.device_count() >= 0 and fk.cuda.device_count() == fk.backends.cuda.device_count()
    assert fk.cuda.is_available() == (fk.cuda.device_count() > 0)
    if not fk.backends.cuda.is_built():
        assert fk.backends.cuda.device_count() == 0


@no_cuda
def test_without_a_device_cuda_requests_are_refused_clearly():
    for f in (
        lambda: fk.zeros(3, device="cuda"),
        lambda: fk.ones(2).to("cuda"),
        lambda: fk.ones(2).cuda(),
        fk.cuda.synchronize,
        fk.cuda.get_device_name,
        fk.cuda.current_device,
    ):
        with pytest.raises(RuntimeError, match="CUDA is not available|no CUDA device"):
            f()
    # what torch.cuda answers on such a machine
    assert fk.cuda.memory_allocated() == fk.cuda.max_memory_allocated() == fk.cuda.memory_reserved() == 0
    fk.cuda.manual_seed(0)
    fk.cuda.empty_cache()
    assert issubclass(fk.cuda.OutOfMemoryError, RuntimeError)


def test_device_objects_follow_torch():
    assert str(fk.device("cpu")) == "cpu" and fk.device("cpu").index is None
    d = fk.device("cuda:0")
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 0, "cuda:0", "device(type='cuda', index=0)")
    assert fk.device("cuda") != d and fk.device("cuda:0") == d and d == "cuda:0"
    assert len({fk.device("cpu"), fk.device("cpu")}) == 1
    with pytest.raises(RuntimeError, match="device type at start of device string: tpu"):
        fk.device("tpu")
    with pytest.raises(RuntimeError, match="Invalid device string"):
        fk.device("cuda:x")
    with pytest.raises(NotImplementedError, match="cuda:0"):  # never silently the first GPU
        fk.device("cuda:1")
    with pytest.raises(TypeError, match="expected a device"):
        fk.zeros(2, device=3.5)


def test_creation_and_conversion_carry_the_device():
    x = fk.ones(2, 3)
    assert x.device == fk.device("cpu") and x.device == "cpu" and not x.is_cuda
    for t in (
        fk.zeros_like(x),
        fk.ones_like(x),
        fk.full_like(x, 2),
        fk.empty_like(x),
        fk.rand_like(x),
        fk.randn_like(x),
        fk.arange(3, device="cpu"),
        fk.linspace(0, 1, 3, device=fk.device("cpu")),
        fk.eye(2, device="cpu"),
        fk.randint(0, 3, (2,), device="cpu"),
        fk.randperm(3, device="cpu"),
        fk.tensor([1.0], device="cpu"),
        fk.as_tensor([1.0], device="cpu"),
    ):
        assert t.device == "cpu"
    assert x.to("cpu") is x and x.cpu() is x and x.to(fk.device("cpu")) is x
    assert x.to(fk.zeros(1, dtype=fk.float64)).dtype == fk.float64  # to(other) takes its dtype and device
    with pytest.raises(NotImplementedError, match="cuda:0"):
        x.cuda(1)
    with pytest.raises(RuntimeError, match="must be cuda device"):
        x.cuda("cpu")


@no_cuda
def test_moving_to_cuda_without_a_device_is_refused_clearly():
    x = fk.ones(2, requires_grad=True)
    for f in (
        lambda: x.to("cuda"),
        lambda: x.cuda(),
        lambda: fk.tensor([1.0], device="cuda"),
        lambda: fk.arange(3, device="cuda"),
        lambda: fk.randperm(3, device="cuda"),
        lambda: fk.nn.Linear(2, 2).cuda(),
    ):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            f()
