#!/usr/bin/env python3
"""Per-call overhead of tiny ops: fastkern vs PyTorch vs NumPy, in one process.

Run: PYTHONPATH=python python bench/overhead.py [--repeat N]
Each number is the best of N repeats of a timeit loop sized (autorange) to >= 0.2 s, in µs per call.
"""

import argparse

import numpy as np
from _common import Table, best_us, print_header, try_import  # bench/ is on sys.path when run as a script


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

    table = Table(
        [
            ("op", "<34"),
            ("fastkern µs", ">12.2f"),
            ("torch µs", ">10.2f"),
            ("numpy µs", ">10.2f"),
            ("fk/torch", ">10.2f"),
            ("fk/numpy", ">10.2f"),
        ]
    )
    print(table.header())
    for label in _cases(None, None):
        us = {}
        for name in libs:
            setup = cases.get(name, {}).get(label)
            fn = setup() if setup else None
            us[name] = best_us(fn, args.repeat) if fn else None
        ratio = lambda other: us["fastkern"] / us[other] if us["fastkern"] and us[other] else None
        print(table.row(label, us["fastkern"], us["torch"], us["numpy"], ratio("torch"), ratio("numpy")))
    print("\nratios are fastkern time / other time: below 1 means fastkern is faster.")


if __name__ == "__main__":
    main()
