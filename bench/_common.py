"""What the benchmarks in bench/ share: importing the libraries, the machine header, the timers
and the results table.

The timer (``best_time``) and the table printer (``Table``) are those of ``fastkern bench``, in
python/fastkern/benchmarks.py; that file is loaded here by its path, not imported through the
fastkern package, so a broken fastkern build shows in the header instead of stopping every
benchmark.
"""

import importlib
import importlib.util
import os
import platform
import time
import timeit
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "_fastkern_benchmarks", Path(__file__).resolve().parents[1] / "python" / "fastkern" / "benchmarks.py"
)
_benchmarks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_benchmarks)
Table = _benchmarks.Table


def best_time(fn, repeat, warmup=1):
    """``fastkern bench``'s timer, after a pause: the other library's idle worker threads spin
    for a while before they sleep, and on a two-core machine that takes a core from the library
    being timed (PyTorch's OpenMP threads halved fastkern's two-thread figures that way)."""
    time.sleep(0.3)
    return _benchmarks.best_time(fn, repeat, warmup)


def best_times(fns, rounds):
    """The best time of each of fns (name -> callable) over `rounds` rounds that run them in
    turn, so that a slow spell of a shared machine falls on all of them rather than on one."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], best_time(fn, 1, warmup=0))
    return best


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
    print(
        f"machine : {cpu_model()}, {os.cpu_count()} logical cores ({usable} usable), "
        f"{platform.system()} {platform.machine()}"
    )
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
    print(
        f"fastkern CPU path: {fk.backends.cpu.capability()}, threads: fastkern {fk.get_num_threads()}"
        + (f", torch {torch.get_num_threads()}" if torch else "")
    )
    print()
    return fk, torch


def best_us(fn, repeat):
    """Per-call time in µs of a very short ``fn``: the best of ``repeat`` timeit loops, each
    sized (autorange) to take >= 0.2 s."""
    t = timeit.Timer(fn)
    number, _ = t.autorange()
    return min(t.repeat(repeat, number)) / number * 1e6
