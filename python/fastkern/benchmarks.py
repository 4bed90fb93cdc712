"""`fastkern bench`: a short run of the benchmarks in bench/, on the user's machine.

Prints one table comparing fastkern with NumPy and (when installed) PyTorch in the same
process, plus the CPU kernel path fastkern chose. Each figure is the best of a few runs.
"""
import importlib
import os
import platform
import time

import numpy as np


def _best(fn, seconds=0.3):
    fn()
    best, spent = float("inf"), 0.0
    while spent < seconds:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return best


def _cases(fk, torch):
    """(label, unit, work per call, {library: callable}); higher is better for every unit."""
    rng = np.random.default_rng(0)
    libs = {"fastkern": fk, "numpy": None, "torch": torch}

    def tensors(*arrays):
        return {name: [mod.tensor(a) if mod else a for a in arrays] for name, mod in libs.items()
                if mod is not None or name == "numpy"}

    one = tensors(np.ones(1, np.float32), np.ones(1, np.float32))
    big = tensors(*(rng.standard_normal(1 << 22).astype(np.float32) for _ in range(2)))
    mm = tensors(*(rng.standard_normal((512, 512)).astype(np.float32) for _ in range(2)))
    yield "a + b, 1 element", "Mop/s", 1e-6, {k: (lambda a, b: lambda: a + b)(*v) for k, v in one.items()}
    yield "a + b, 16 MB", "GB/s", 3 * 4 * (1 << 22) / 1e9, {k: (lambda a, b: lambda: a + b)(*v) for k, v in big.items()}
    yield "a.sum(), 16 MB", "GB/s", 4 * (1 << 22) / 1e9, {k: (lambda a, b: lambda: a.sum())(*v) for k, v in big.items()}
    yield "matmul 512x512", "GFLOP/s", 2 * 512 ** 3 / 1e9, {k: (lambda a, b: lambda: a @ b)(*v) for k, v in mm.items()}
    x = rng.standard_normal((2, 128, 28, 28)).astype(np.float32)
    w = (rng.standard_normal((128, 128, 3, 3)) * 0.05).astype(np.float32)
    conv = {name: (lambda F, x, w: lambda: F.conv2d(x, w, padding=1))(mod.nn.functional, mod.tensor(x), mod.tensor(w))
            for name, mod in libs.items() if mod is not None}
    yield "conv2d 3x3 128ch 28x28, batch 2", "GFLOP/s", 2 * 2 * 128 * 28 * 28 * 128 * 9 / 1e9, conv
    xb = rng.standard_normal((256, 784)).astype(np.float32)
    yb = rng.integers(0, 10, 256)
    ws = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in ((30, 784), (30,), (10, 30), (10,))]

    def mlp_step(mod):
        F = mod.nn.functional
        p = [mod.tensor(a, requires_grad=True) for a in ws]
        xt, yt = mod.tensor(xb), mod.tensor(yb)

        def step():
            F.cross_entropy(F.linear(F.relu(F.linear(xt, p[0], p[1])), p[2], p[3]), yt).backward()
            with mod.no_grad():
                for t in p:
                    t -= t.grad * 0.01
                    t.grad = None
        return step

    yield "MLP 784-30-10 train step, batch 256", "kimg/s", 256 / 1e3, \
        {name: mlp_step(mod) for name, mod in libs.items() if mod is not None}


def main():
    import fastkern as fk
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        torch = None
    print(f"fastkern {fk.__version__}, CPU kernels: {fk.backends.cpu.capability()}, threads: {fk.get_num_threads()}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; "
          f"torch {torch.__version__ if torch else 'not installed'}")
    print()
    print(f"{'benchmark':<38}{'unit':>8}{'fastkern':>10}{'numpy':>9}{'torch':>9}{'ours/best':>11}")
    for label, unit, work, fns in _cases(fk, torch):
        speed = {name: work / _best(fn) for name, fn in fns.items()}
        others = [v for k, v in speed.items() if k != "fastkern"]
        cells = "".join(f"{speed[k]:>9.1f}" if k in speed else f"{'-':>9}" for k in ("numpy", "torch"))
        ratio = f"{speed['fastkern'] / max(others):.2f}" if others else "-"
        print(f"{label:<38}{unit:>8}{speed['fastkern']:>10.1f}{cells}{ratio:>11}")
    print("\nours/best above 1: fastkern is faster than the best of the others.")
