"""`fastkern bench`: a short run of the benchmarks in bench/, on the user's machine.

Prints one table comparing fastkern with NumPy and (when installed) PyTorch in the same
process, plus the CPU kernel path fastkern chose. Each figure is the best of a few runs.
"""

import importlib
import os
import platform
import re
import time

import numpy as np


def best_time(fn, repeat=1, budget=0.0, warmup=1, max_repeat=None):
    """The best time in seconds of single calls of ``fn``, after ``warmup`` untimed calls:
    at least ``repeat`` timed calls, and more while ``budget`` seconds of wall time have not
    passed (at most ``max_repeat`` in all). The timer of every benchmark (here and bench/)."""
    for _ in range(warmup):
        fn()
    t_end = time.perf_counter() + budget
    best, n = float("inf"), 0
    while n < repeat or (time.perf_counter() < t_end and (max_repeat is None or n < max_repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
    return best


class Table:
    """A fixed-width results table, the printer of every benchmark (here and bench/).

    ``columns`` are (title, format spec) pairs, e.g. ("op", "<34"), ("fastkern", ">10.1f"): the
    header pads each title to the spec's alignment and width, a row formats each value with the
    spec, a missing value (None) is "-", and a string is padded only.
    """

    def __init__(self, columns):
        self.columns = list(columns)

    @staticmethod
    def _pad(spec):
        m = re.match(r"([<>^]?)(\d*)", spec)
        return (m.group(1) or ">") + m.group(2)

    def header(self):
        return "".join(format(title, self._pad(spec)) for title, spec in self.columns)

    def row(self, *values):
        return "".join(
            format("-" if v is None else v, self._pad(spec) if v is None or isinstance(v, str) else spec)
            for v, (_, spec) in zip(values, self.columns)
        )


def _cases(fk, torch):
    """(label, unit, work per call, {library: callable}); higher is better for every unit."""
    rng = np.random.default_rng(0)
    libs = {"fastkern": fk, "numpy": None, "torch": torch}

    def tensors(*arrays):
        return {
            name: [mod.tensor(a) if mod else a for a in arrays]
            for name, mod in libs.items()
            if mod is not None or name == "numpy"
        }

    one = tensors(np.ones(1, np.float32), np.ones(1, np.float32))
    big = tensors(*(rng.standard_normal(1 << 22).astype(np.float32) for _ in range(2)))
    mm = tensors(*(rng.standard_normal((512, 512)).astype(np.float32) for _ in range(2)))
    yield "a + b, 1 element", "Mop/s", 1e-6, {k: (lambda a, b: lambda: a + b)(*v) for k, v in one.items()}
    yield "a + b, 16 MB", "GB/s", 3 * 4 * (1 << 22) / 1e9, {k: (lambda a, b: lambda: a + b)(*v) for k, v in big.items()}
    yield "a.sum(), 16 MB", "GB/s", 4 * (1 << 22) / 1e9, {k: (lambda a, b: lambda: a.sum())(*v) for k, v in big.items()}
    yield "matmul 512x512", "GFLOP/s", 2 * 512**3 / 1e9, {k: (lambda a, b: lambda: a @ b)(*v) for k, v in mm.items()}
    x = rng.standard_normal((2, 128, 28, 28)).astype(np.float32)
    w = (rng.standard_normal((128, 128, 3, 3)) * 0.05).astype(np.float32)
    conv = {
        name: (lambda F, x, w: lambda: F.conv2d(x, w, padding=1))(mod.nn.functional, mod.tensor(x), mod.tensor(w))
        for name, mod in libs.items()
        if mod is not None
    }
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

    yield (
        "MLP 784-30-10 train step, batch 256",
        "kimg/s",
        256 / 1e3,
        {name: mlp_step(mod) for name, mod in libs.items() if mod is not None},
    )


def main():
    import fastkern as fk

    try:
        torch = importlib.import_module("torch")
    except ImportError:
        torch = None
    print(f"fastkern {fk.__version__}, CPU kernels: {fk.backends.cpu.capability()}, threads: {fk.get_num_threads()}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}; "
        f"torch {torch.__version__ if torch else 'not installed'}"
    )
    print()
    table = Table(
        [
            ("benchmark", "<38"),
            ("unit", ">8"),
            ("fastkern", ">10.1f"),
            ("numpy", ">9.1f"),
            ("torch", ">9.1f"),
            ("ours/best", ">11.2f"),
        ]
    )
    print(table.header())
    for label, unit, work, fns in _cases(fk, torch):
        speed = {name: work / best_time(fn, budget=0.3) for name, fn in fns.items()}
        others = [v for k, v in speed.items() if k != "fastkern"]
        ratio = speed["fastkern"] / max(others) if others else None
        print(table.row(label, unit, speed["fastkern"], speed.get("numpy"), speed.get("torch"), ratio))
    print("\nours/best above 1: fastkern is faster than the best of the others.")
