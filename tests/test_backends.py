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
    code = ("import fastkern as fk, numpy as np; x = fk.linspace(-5, 5, 1001); "
            "print(fk.backends.cpu.capability()); "
            "assert np.allclose(x.exp().numpy(), np.exp(x.numpy().astype(np.float64)), rtol=2e-6); "
            "assert abs(x.sum().item()) < 1e-3")
    env = dict(os.environ, FASTKERN_CPU_ISA=isa)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in (isa, "base")  # a CPU without AVX2 falls back to base


def test_cuda_seam_reports_and_refuses_clearly():
    assert isinstance(fk.backends.cuda.is_built(), bool)
    assert fk.backends.cuda.device_count() >= 0
    if not fk.backends.cuda.is_built():
        assert fk.backends.cuda.device_count() == 0
    with pytest.raises(NotImplementedError, match="CUDA"):
        fk.zeros(3, device="cuda")
    with pytest.raises(NotImplementedError, match="CUDA"):
        fk.ones(2).to("cuda")
    with pytest.raises(NotImplementedError, match="CUDA"):
        fk.ones(2).cuda()
