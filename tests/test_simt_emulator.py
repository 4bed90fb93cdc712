"""The SIMT emulator (csrc/cuda/emu), through its self-test: selftest.cu compiled as host C++
with the emulator, under AddressSanitizer and UndefinedBehaviorSanitizer, and run case by case.
Needs a C++20 compiler only (no nvcc, no GPU); skipped without one."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "csrc" / "cuda" / "emu"
CXX = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler")

DEFAULT_CASES = (
    "elementwise math block_reduce warp_shuffle vote atomics dynamic_smem shared_poison missing_barrier detections "
    "invalid_config runtime_api host_threads"
).split()
COMPILE = [CXX, "-std=c++20", "-DFK_CUDA_EMULATE", f"-I{ROOT / 'csrc' / 'cuda'}", "-Wall", "-Wextra", "-g", "-pthread"]
SOURCES = ["-x", "c++", str(EMU / "selftest.cu"), str(EMU / "simt.cpp")]
SANITIZERS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]


def _build(out, *flags):
    cmd = [*COMPILE, *flags, *SOURCES, "-o", str(out), "-ldl"]
    # The compiler runs without tools/sanitize's preloaded runtimes (it would report its own leaks).
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def selftest(tmp_path_factory):
    """The self-test executable, and whether it has the sanitizers (a compiler may lack their runtimes)."""
    exe = tmp_path_factory.mktemp("simt") / "selftest"
    built = _build(exe, "-O1", *SANITIZERS)
    if built.returncode == 0:
        return exe, True
    plain = _build(exe, "-O1")
    assert plain.returncode == 0, plain.stderr
    return exe, False


def _run(exe, *cases, **env):
    full = dict(os.environ, **env)
    # Leak checking stays as the environment has it (tools/sanitize turns it on).
    full["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    return subprocess.run([str(exe), *cases], capture_output=True, text=True, timeout=120, env=full)


@pytest.mark.parametrize("case", DEFAULT_CASES)
def test_case_passes(selftest, case):
    out = _run(selftest[0], case)
    assert out.returncode == 0 and f"PASS {case}" in out.stdout, out.stdout + out.stderr


# The ucontext switch (the fallback where shadow stacks are on) with small stacks: ASan's
# swapcontext clears the shadow of the whole stack it switches to, 30 s for the default 512 KB.
@pytest.mark.parametrize(
    "env",
    [
        {"FASTKERN_EMU_SEED": "1"},
        {"FASTKERN_EMU_SEED": "0x123456789"},
        {"FASTKERN_EMU_SEED": "0"},
        {"FASTKERN_EMU_FIBERS": "ucontext", "FASTKERN_EMU_STACK_KB": "64"},
    ],
    ids=["seed-1", "seed-big", "seed-0-in-order", "ucontext"],
)
def test_correct_kernels_pass_in_any_order_and_with_either_switch(selftest, env):
    out = _run(selftest[0], **env, FASTKERN_EMU_QUIET="1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASS ") == len(DEFAULT_CASES)


def test_missing_barrier_gives_wrong_results_under_every_shuffled_seed(selftest):
    out = _run(selftest[0], "missing_barrier")
    rows = re.findall(
        r"seed=(\d+) with_barrier_wrong=(-?\d+) without_barrier_wrong=(-?\d+) racy_sum_wrong=(\d)", out.stdout
    )
    assert len(rows) == 9, out.stdout
    for seed, with_barrier, without_barrier, racy in ((int(v) for v in row) for row in rows):
        assert with_barrier == 0
        assert racy == 1  # a reduction without the barrier in its loop is wrong under every seed
        # Seed 0 runs threads in ascending order, which hides a read of the left neighbour's slot;
        # every shuffled order exposes it, in about half the slots.
        assert without_barrier == 0 if seed == 0 else without_barrier > 100


def test_divergence_and_mismatched_collectives_are_reported_not_hung(selftest):
    out = _run(selftest[0], "detections")
    assert out.returncode == 0, out.stdout + out.stderr
    err = out.stderr
    assert (
        "kernel early_return<<<(1,1,1), (256,1,1)>>>, block (0,0,0): barrier divergence: 100 thread(s) wait at "
        "__syncthreads() at selftest.cu:"
    ) in err
    assert "156 thread(s) of the block have exited (first: thread (100,0,0))" in err
    assert "threads wait at different barriers" in err
    assert re.search(
        r"warp 0 cannot complete a collective: lane \d+ \(thread \(\d+,0,0\)\) waits at __\w+_sync\(mask "
        r"0xffffffff\) at selftest.cu:\d+, but lane \d+",
        err,
    )
    assert "__shfl_sync with mask 0x00000001, which does not name the calling lane" in err
    assert "kernel trapping<<<(3,1,1), (32,1,1)>>>, block (1,0,0): thread (3,0,0) at selftest.cu" in err


def test_out_of_memory_under_a_cap(selftest):
    out = _run(selftest[0], "out_of_memory", FASTKERN_EMU_MEMORY_MB="64")
    assert out.returncode == 0 and "PASS out_of_memory" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize(
    "case,kernel,size",
    [("oob_global", "write_past_end", "4000-byte region"), ("oob_shared", "write_past_smem", "256-byte region")],
)
def test_asan_catches_a_kernel_writing_out_of_bounds(selftest, case, kernel, size):
    exe, sanitized = selftest
    if not sanitized:
        pytest.skip("the compiler has no AddressSanitizer runtime")
    out = _run(exe, case)
    assert out.returncode != 0
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in out.stderr, out.stderr
    assert f"in {kernel}(" in out.stderr and f"0 bytes to the right of {size}" in out.stderr
    assert f"PASS {case}" not in out.stdout


def test_emulator_in_a_library_loaded_by_python(tmp_path):
    """As in fastkern's extension: the emulator in a dlopen'ed module, whose thread-locals
    (where shared memory lives) are allocated per thread on demand."""
    lib = tmp_path / "libselftest.so"
    built = _build(lib, "-O1", "-fPIC", "-shared", "-DFK_SELFTEST_LIBRARY")
    assert built.returncode == 0, built.stderr
    code = (
        "import ctypes, sys\n"
        f"lib = ctypes.CDLL({str(lib)!r})\n"
        "args = [b'selftest', b'shared_poison', b'missing_barrier', b'block_reduce', b'host_threads']\n"
        "sys.exit(lib.fk_selftest_main(len(args), (ctypes.c_char_p * len(args))(*args)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # not a sanitized build
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASS ") == 4
