#!/usr/bin/env python3
"""Matrix multiply GFLOP/s: fastkern vs NumPy (OpenBLAS) vs PyTorch, 1 and 2 threads.

Run: PYTHONPATH=python python bench/gemm.py [--threads 1 2] [--quick] [--rounds N] [--peak GFLOPS]
GFLOP/s = 2*M*N*K / best time. Every call allocates its result (plain `a @ b`) in all three
libraries. Thread counts are set with fk.set_num_threads, torch.set_num_threads and
threadpoolctl (NumPy's OpenBLAS). The MLP rows are the products of a 784-30-10 MLP's
forward and backward pass at batch 64, with the transposed views backward really uses.
Each library is timed in its own fresh process (idle BLAS/OpenMP threads of another library
would spin on the cores), in turn, for several rounds; each keeps its best round. "%peak" is
fastkern's GFLOP/s over the FMA peak of the threads used (--peak per core, float32; float64
is half).
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from _common import Table, best_time, print_header, try_import  # bench/ is on sys.path when run as a script

# Default per-core float32 FMA peak of the benchmark machine: 2 x 256-bit FMA pipes (AVX-512
# is double-pumped on this Zen 4-class core, so AVX2 and AVX-512 peak alike) = 32 FLOP/cycle,
# at the ~3.6 GHz a dependency-free FMA loop runs at here (measured 113-116 GFLOP/s).
PEAK_F32_PER_CORE = 116.0


def square(n, dt="float32"):
    return (f"{n}x{n}x{n}" + ("" if dt == "float32" else " f64"), dt, (n, n), (n, n), "", "")


# name, dtype, a shape, b shape, a transform, b transform ("T": operand is a transposed view)
CASES = [square(n) for n in (32, 64, 128, 256, 512, 1024, 2048)] + [
    square(256, "float64"),
    square(1024, "float64"),
    ("mlp fwd1 64x784 @ 784x30", "float32", (64, 784), (784, 30), "", ""),
    ("mlp dW1  x.T @ g (784x64 @ 64x30)", "float32", (64, 784), (64, 30), "T", ""),
    ("mlp dx1  g @ W.T (64x30 @ 30x784)", "float32", (64, 30), (784, 30), "", "T"),
    ("mlp fwd2 64x30 @ 30x10", "float32", (64, 30), (30, 10), "", ""),
    ("mlp dW2  h.T @ g (30x64 @ 64x10)", "float32", (64, 30), (64, 10), "T", ""),
    ("mlp dx2  g @ W.T (64x10 @ 10x30)", "float32", (64, 10), (30, 10), "", "T"),
    ("batch 64 x (64x784 @ 784x30)", "float32", (64, 64, 784), (784, 30), "", ""),
]
QUICK = {"256x256x256", "1024x1024x1024", "mlp fwd1 64x784 @ 784x30"}


def tr(x, how):
    return x.T if how == "T" else x


def measure(lib, threads, names, budget):
    """GFLOP/s of `lib` on the named cases at `threads` threads (run in a fresh process)."""
    from threadpoolctl import threadpool_limits

    mod = __import__(lib)
    convert = {
        "fastkern": lambda x: mod.from_numpy(x.copy()),
        "numpy": lambda x: x,
        "torch": lambda x: mod.from_numpy(x.copy()),
    }[lib]
    if lib != "numpy":
        mod.set_num_threads(threads)
    out = {}
    # NumPy computes the references on one thread, so no idle OpenBLAS thread spins later.
    with threadpool_limits(threads if lib == "numpy" else 1):
        for i, (name, dt, ashape, bshape, ta, tb) in enumerate(CASES):
            if name not in names:
                continue
            rng = np.random.default_rng(i)
            a_np, b_np = rng.standard_normal(ashape).astype(dt), rng.standard_normal(bshape).astype(dt)
            ref = tr(a_np.astype(np.float64), ta) @ tr(b_np.astype(np.float64), tb)
            x, y = tr(convert(a_np), ta), tr(convert(b_np), tb)
            got = np.asarray(x @ y, dtype=np.float64)
            # Check once, so a wrong kernel can't post a good number.
            tol = 1e-4 * np.sqrt(tr(a_np, ta).shape[-1]) if dt == "float32" else 1e-10
            if not np.allclose(got, ref, rtol=tol, atol=tol):
                raise SystemExit(f"{lib} {name}: wrong result (max err {np.max(np.abs(got - ref)):.3g})")
            seconds = best_time(lambda: x @ y, 3, budget, warmup=2, max_repeat=2000)
            out[name] = 2.0 * ref.size * tr(a_np, ta).shape[-1] / seconds / 1e9
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--quick", action="store_true", help="only a few sizes")
    ap.add_argument("--only", nargs="+", default=[], help="only cases whose name contains one of these")
    ap.add_argument("--peak", type=float, default=PEAK_F32_PER_CORE, help="float32 GFLOP/s per core")
    ap.add_argument("--budget", type=float, default=0.3, help="seconds of timing per library and case")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds over all libraries; each keeps its best round (the machine is shared)",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: measure one library, print JSON
    args = ap.parse_args(argv)
    cases = [
        c for c in CASES if (not args.quick or c[0] in QUICK) and (not args.only or any(o in c[0] for o in args.only))
    ]
    names = [c[0] for c in cases]
    if args.worker:
        print(json.dumps(measure(args.worker, args.threads[0], names, args.budget)))
        return

    libs = {"fastkern": try_import("fastkern"), "numpy": (np, None), "torch": try_import("torch")}
    print_header(libs)
    print(f"fastkern CPU path: {libs['fastkern'][0].backends.cpu.capability()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if var in os.environ:
            print(f"warning: {var}={os.environ[var]} is set (NumPy/PyTorch may not be at their best)")
    try:
        from threadpoolctl import threadpool_info

        print(
            "numpy BLAS: "
            + ", ".join(
                f"{i['internal_api']} {i.get('version', '')} {i.get('architecture', '')}" for i in threadpool_info()
            )
        )
    except ImportError:
        raise SystemExit("pip install threadpoolctl (needed to set NumPy's thread count)")
    print(
        f"peak: {args.peak:.0f} GFLOP/s float32 per core; best time over {args.budget}s per case, "
        f"best of {args.rounds} rounds\n"
    )
    order = [lib for lib in ("fastkern", "numpy", "torch") if libs[lib][0] is not None]

    table = Table(
        [
            ("case", "<36"),
            ("thr", ">4"),
            ("fastkern", ">10.1f"),
            ("numpy", ">9.1f"),
            ("torch", ">9.1f"),
            ("ours/best", ">10.2f"),
            ("%peak", ">7"),
        ]
    )
    head = table.header()
    print(head + "\n" + "-" * len(head))
    for threads in args.threads:
        gf = {}
        # Each library runs in a fresh process, in turn: idle OpenBLAS and OpenMP worker
        # threads spin after their calls and would take the 2 cores from the next library.
        for _ in range(args.rounds):
            for lib in order:
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    lib,
                    "--threads",
                    str(threads),
                    "--budget",
                    str(args.budget),
                    "--only",
                    *names,
                ]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode != 0:
                    raise SystemExit(f"{lib} worker failed:\n{res.stdout}{res.stderr}")
                for name, v in json.loads(res.stdout.splitlines()[-1]).items():
                    gf[lib, name] = max(gf.get((lib, name), 0.0), v)
        for name, dt, *_ in cases:
            ours = gf["fastkern", name]
            best = max(gf[lib, name] for lib in order if lib != "fastkern")
            peak = args.peak * threads * (1.0 if dt == "float32" else 0.5)
            print(
                table.row(
                    name,
                    threads,
                    ours,
                    gf["numpy", name],
                    gf.get(("torch", name), 0),
                    ours / best,
                    f"{100 * ours / peak:.0f}%",
                ),
                flush=True,
            )
    print("\nGFLOP/s; ours/best = fastkern over the faster of NumPy and PyTorch (above 1: fastkern faster).")


if __name__ == "__main__":
    main()
