#!/usr/bin/env python3
"""Memory bandwidth of big elementwise ops and a reduction: fastkern vs NumPy vs PyTorch.

Run: PYTHONPATH=python python bench/elementwise.py [--repeat N]
Tensors are 4096x4096 float32 (64 MB). GB/s = (bytes read + bytes written) / best time.
Every op allocates its result, as `a + b` does in user code, in all three libraries.
"""

import argparse
import os

import numpy as np

from _common import Table, best_time, print_header, try_import  # bench/ is on sys.path when run as a script

N = 4096
MB = 4 * N * N  # bytes of one float32 (4096, 4096) tensor
# op -> (bytes moved, function of (a, b, row)); row (4096,) broadcasts over the last dim.
OPS = {
    "a + b": (3 * MB, lambda a, b, row: a + b),
    "a * row (bcast)": (2 * MB + 4 * N, lambda a, b, row: a * row),
    "a.sum()": (MB + 4, lambda a, b, row: a.sum()),
}


def to_numpy(x):
    return x if isinstance(x, (np.ndarray, np.generic)) else np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10, help="timed calls per op; the best is kept (default 10)")
    args = ap.parse_args(argv)

    libs = {"fastkern": try_import("fastkern"), "numpy": (np, None), "torch": try_import("torch")}
    print_header(libs)
    fk = libs["fastkern"][0]
    cap = getattr(getattr(getattr(fk, "backends", None), "cpu", None), "capability", None)
    if cap is not None:
        print(f"fastkern CPU path: {cap()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            print(f"{var}={os.environ[var]}")
    print(f"tensors: ({N}, {N}) float32 = {MB / 2**20:.0f} MiB each; best of {args.repeat} after warm-up\n")

    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((N, N), dtype=np.float32)
    b_np = rng.standard_normal((N, N), dtype=np.float32)
    row_np = rng.standard_normal(N, dtype=np.float32)
    inputs = {"numpy": (a_np, b_np, row_np)}
    if fk is not None:
        inputs["fastkern"] = tuple(fk.from_numpy(x.copy()) for x in (a_np, b_np, row_np))
    if libs["torch"][0] is not None:
        inputs["torch"] = tuple(libs["torch"][0].from_numpy(x.copy()) for x in (a_np, b_np, row_np))
    order = [n for n in ("fastkern", "numpy", "torch") if n in inputs]

    table = Table(
        [("op", "<18"), ("MB moved", ">9.0f")] + [(n + " GB/s", ">15.1f") for n in order] + [("ours/best", ">11.2f")]
    )
    print(table.header())
    for label, (nbytes, fn) in OPS.items():
        ref = fn(a_np.astype(np.float64), b_np.astype(np.float64), row_np.astype(np.float64))
        gbs = {}
        for name in order:
            a, b, row = inputs[name]
            # Check the result once, so a wrong kernel can't post a good number.
            got = to_numpy(fn(a, b, row)).astype(np.float64)
            # float32 sums of 16M values differ by accumulation order: scale the tolerance by sum|a|.
            atol = 1e-6 * float(np.abs(a_np).sum(dtype=np.float64)) if np.ndim(ref) == 0 else 1e-5
            if not np.allclose(got, ref, rtol=1e-5, atol=atol):
                raise SystemExit(f"{name} {label}: wrong result (max err {np.max(np.abs(got - ref)):.3g})")
            gbs[name] = nbytes / best_time(lambda: fn(a, b, row), args.repeat, warmup=2) / 1e9
        others = [v for k, v in gbs.items() if k != "fastkern"]
        ratio = gbs["fastkern"] / max(others) if "fastkern" in gbs and others else None
        print(table.row(label, nbytes / 1e6, *(gbs[n] for n in order), ratio))
    print("\nours/best = fastkern GB/s / best of the others: above 1 means fastkern is faster.")


if __name__ == "__main__":
    main()
