#!/usr/bin/env python3
"""CUDA kernels: fastkern vs PyTorch CUDA, in one process, on one GPU.

Run: python bench/gpu.py [--repeat N] [--mb 256]
Per-op overhead of a tiny add (µs per call, the host's cost: kernels queue asynchronously), and
the bandwidth of large elementwise ops, a full sum and a row softmax against the device-to-device
copy bandwidth measured in the same run (GB/s counts bytes read plus bytes written).
"""

import argparse
import time

from _common import Table, best_us, print_header, try_import  # bench/ is on sys.path when run as a script


def timed(fn, sync, repeat):
    """Best seconds per call of fn over `repeat` timed batches of calls, synchronising around each."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(5):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / 5)
    return best


def cases(m, n):
    """(label, bytes moved, fn) for module m (fastkern or torch) on float32 tensors of n elements."""
    x, y = m.rand(n, device="cuda"), m.rand(n, device="cuda")
    rows = m.rand(n // 1024, 1024, device="cuda")
    row = m.rand(1024, device="cuda")
    sm = m.rand(65536, 1000, device="cuda")
    f = 4
    return [
        ("copy (x.clone())", 2 * n * f, lambda: x.clone()),
        ("x + y", 3 * n * f, lambda: x + y),
        ("rows * row (broadcast)", 2 * n * f, lambda: rows * row),
        ("x.sum()", n * f, lambda: x.sum()),
        ("softmax(65536 x 1000, dim=1)", 2 * 65536 * 1000 * f, lambda: m.softmax(sm, dim=1)),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--mb", type=int, default=256, help="size of the large float32 tensors in MB")
    args = ap.parse_args(argv)
    fk, fk_err = try_import("fastkern")
    torch, torch_err = try_import("torch")
    print_header({"fastkern": (fk, fk_err), "torch": (torch, torch_err)})
    if fk is None or not fk.cuda.is_available():
        raise SystemExit("no CUDA device for fastkern")
    print(f"device  : {fk.cuda.get_device_name()}")
    has_torch = torch is not None and torch.cuda.is_available()
    libs = {"fastkern": (fk, fk.cuda.synchronize)}
    if has_torch:
        libs["torch"] = (torch, torch.cuda.synchronize)

    t = Table([("op", "<34"), ("fastkern µs", ">12.2f"), ("torch µs", ">10.2f"), ("fk/torch", ">9.2f")])
    print("\n" + t.header())
    us = {}
    for name, (m, sync) in libs.items():
        a, b = m.rand(1, device="cuda"), m.rand(1, device="cuda")
        us[name] = best_us(lambda: a + b, args.repeat)
        sync()
    tt = us.get("torch")
    print(t.row("a + b, 1 element", us["fastkern"], tt, us["fastkern"] / tt if tt else None))

    n = args.mb * (1 << 20) // 4
    t = Table(
        [("op", "<34"), ("fk GB/s", ">9.0f"), ("torch GB/s", ">11.0f"), ("fk/torch", ">9.2f"), ("fk/copy", ">8.2f")]
    )
    print("\n" + t.header())
    results = {}
    for name, (m, sync) in libs.items():
        results[name] = [(label, nbytes / timed(fn, sync, args.repeat) / 1e9) for label, nbytes, fn in cases(m, n)]
    copy = results["fastkern"][0][1]
    for i, (label, gbs) in enumerate(results["fastkern"]):
        tg = results["torch"][i][1] if has_torch else None
        print(t.row(label, gbs, tg, gbs / tg if tg else None, gbs / copy))


if __name__ == "__main__":
    main()
