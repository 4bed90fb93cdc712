#!/usr/bin/env python3
"""Per-call overhead of tiny ops: fastkern vs PyTorch vs NumPy, in one process.

Run: PYTHONPATH=python python bench/overhead.py [--repeat N]
Each number is the best of N repeats of a timeit loop sized (autorange) to >= 0.2 s, in µs per call.
"""
import argparse
import importlib
import os
import platform
import timeit

import numpy as np


def try_import(name):
    try:
        return importlib.import_module(name), None
    except Exception as e:  # a broken build should show up in the header, not kill the run
        return None, f"{type(e).__name__}: {e}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_header(libs):
    """Machine and library versions; libs maps name -> (module or None, import error)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine : {cpu_model()}, {os.cpu_count()} logical cores ({usable} usable), "
          f"{platform.system()} {platform.machine()}")
    print(f"python  : {platform.python_version()}")
    for name, (mod, err) in libs.items():
        print(f"{name:<8}: {getattr(mod, '__version__', '?') if mod else 'not available (' + err + ')'}")
    if libs.get("torch", (None,))[0] is not None:
        print(f"torch threads: {libs['torch'][0].get_num_threads()} (default)")
    print()


def setup(threads=None):
    """Imports fastkern and torch, prints the header, applies --threads: (fk, torch)."""
    fk, fk_err = try_import("fastkern")
    torch, torch_err = try_import("torch")
    print_header({"fastkern": (fk, fk_err), "torch": (torch, torch_err), "numpy": (np, None)})
    if fk is None:
        raise SystemExit(1)
    if threads:
        fk.set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
    print(f"fastkern CPU path: {fk.backends.cpu.capability()}, threads: fastkern {fk.get_num_threads()}"
          + (f", torch {torch.get_num_threads()}" if torch else ""))
    print()
    return fk, torch


def best_us(fn, repeat):
    t = timeit.Timer(fn)
    number, _ = t.autorange()  # loops per repeat, so each repeat takes >= 0.2 s
    return min(t.repeat(repeat, number)) / number * 1e6


# Each case: label -> {library: setup(mod) returning the callable to time, or None if n/a}.
def _fk_cases(fk):
    def vec(n, grad=False):
        return fk.randn(n, requires_grad=True) if grad else fk.randn(n)

    def graph():
        a, b, c = (vec(10, grad=True) for _ in range(3))
        return lambda: ((a * b) + c).sum().backward()

    return _cases(vec, graph)


def _torch_cases(torch):
    def vec(n, grad=False):
        return torch.randn(n, dtype=torch.float32, requires_grad=grad)

    def graph():
        a, b, c = (vec(10, grad=True) for _ in range(3))
        return lambda: ((a * b) + c).sum().backward()

    return _cases(vec, graph)


def _np_cases(np_):
    rng = np_.random.default_rng(0)
    return _cases(lambda n: rng.standard_normal(n, dtype=np_.float32), None)


def _cases(vec, graph):
    def binary(n):
        a, b = vec(n), vec(n)
        return lambda: a + b

    def reduce(n):
        a = vec(n)
        return lambda: a.sum()

    return {
        "a + b, 1 elem": lambda: binary(1),
        "a + b, 1000 elem": lambda: binary(1000),
        "a.sum(), 1000 elem": lambda: reduce(1000),
        "((a*b)+c).sum().backward(), 10": graph,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="timeit repeats; the best is kept (default 7)")
    args = ap.parse_args(argv)

    libs = {"fastkern": try_import("fastkern"), "torch": try_import("torch"), "numpy": (np, None)}
    print_header(libs)
    if libs["fastkern"][0] is not None:
        libs["fastkern"][0].manual_seed(0)
    if libs["torch"][0] is not None:
        libs["torch"][0].manual_seed(0)
    makers = {"fastkern": _fk_cases, "torch": _torch_cases, "numpy": _np_cases}
    cases = {name: makers[name](mod) for name, (mod, _) in libs.items() if mod is not None}

    fmt = lambda x, w: "-".rjust(w) if x is None else format(x, f"{w}.2f")
    print(f"{'op':<34}{'fastkern µs':>12}{'torch µs':>10}{'numpy µs':>10}{'fk/torch':>10}{'fk/numpy':>10}")
    for label in _cases(None, None):
        us = {}
        for name in libs:
            setup = cases.get(name, {}).get(label)
            fn = setup() if setup else None
            us[name] = best_us(fn, args.repeat) if fn else None
        ratio = lambda other: us["fastkern"] / us[other] if us["fastkern"] and us[other] else None
        print(f"{label:<34}{fmt(us['fastkern'], 12)}{fmt(us['torch'], 10)}{fmt(us['numpy'], 10)}"
              f"{fmt(ratio('torch'), 10)}{fmt(ratio('numpy'), 10)}")
    print("\nratios are fastkern time / other time: below 1 means fastkern is faster.")


if __name__ == "__main__":
    main()
