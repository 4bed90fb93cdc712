#!/usr/bin/env python3
"""CUDA kernels: fastkern vs PyTorch CUDA, in one process, on one GPU.

Run: python bench/gpu.py [--repeat N] [--mb 256] [--quick]
Per-op overhead of a tiny add (µs per call, the host's cost: kernels queue asynchronously); the
bandwidth of large elementwise ops, a full sum and a row softmax against the device-to-device
copy bandwidth measured in the same run (GB/s counts bytes read plus bytes written); FP32 GEMM
(TFLOP/s, against cuBLAS with TF32 off); ResNet-18's convolutions forward and forward+backward
(against cuDNN, TF32 off); and a training epoch of the classic MNIST CNN (images/s). --quick
shrinks every size, to check that the script runs (on the emulated device, say).
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
    sm = m.rand(n // 1024, 1000, device="cuda")
    f = 4
    return [
        ("copy (x.clone())", 2 * n * f, lambda: x.clone()),
        ("x + y", 3 * n * f, lambda: x + y),
        ("rows * row (broadcast)", 2 * n * f, lambda: rows * row),
        ("x.sum()", n * f, lambda: x.sum()),
        (f"softmax({n // 1024} x 1000, dim=1)", 2 * (n // 1024) * 1000 * f, lambda: m.softmax(sm, dim=1)),
    ]


def gemm_cases(quick):
    """(label, M, N, K): square sizes, then the matrix products of the MNIST CNN's training step
    (batch 64: the 9216->128 layer forward, its weight gradient, its input gradient)."""
    sizes = (64, 128) if quick else (1024, 2048, 4096, 8192)
    train = [("fc1 fwd 64x9216 @ 9216x128", 64, 128, 9216), ("fc1 dW 128x64 @ 64x9216", 128, 9216, 64)]
    train.append(("fc1 dX 64x128 @ 128x9216", 64, 9216, 128))
    return [(f"{n}^3", n, n, n) for n in sizes] + ([] if quick else train)


def bench_gemm(libs, quick, repeat):
    t = Table([("A @ B", "<30"), ("fk TFLOP/s", ">11.2f"), ("torch TFLOP/s", ">14.2f"), ("fk/torch", ">9.2f")])
    print("\n" + t.header())
    for label, M, N, K in gemm_cases(quick):
        tf = {}
        for name, (m, sync) in libs.items():
            a, b = m.randn(M, K, device="cuda"), m.randn(K, N, device="cuda")
            tf[name] = 2 * M * N * K / timed(lambda: a @ b, sync, repeat) / 1e12
        tt = tf.get("torch")
        print(t.row(label, tf["fastkern"], tt, tf["fastkern"] / tt if tt else None))


# ResNet-18's convolutions at 224x224 input: (label, C_in, C_out, kernel, stride, padding, H)
RESNET18_CONVS = [
    ("stem 3->64 7x7/2 @224", 3, 64, 7, 2, 3, 224),
    ("64->64 3x3 @56", 64, 64, 3, 1, 1, 56),
    ("64->128 3x3/2 @56", 64, 128, 3, 2, 1, 56),
    ("128->128 3x3 @28", 128, 128, 3, 1, 1, 28),
    ("256->256 3x3 @14", 256, 256, 3, 1, 1, 14),
    ("512->512 3x3 @7", 512, 512, 3, 1, 1, 7),
    ("256->512 1x1/2 @14", 256, 512, 1, 2, 0, 14),
]


def bench_conv(libs, quick, repeat):
    batch = 2 if quick else 32
    t = Table(
        [("conv2d, batch %d" % batch, "<26"), ("fk fwd ms", ">10.3f"), ("fk/cuDNN", ">9.2f")]
        + [("fk f+b ms", ">10.3f"), ("fk/cuDNN", ">9.2f")]
    )
    print("\n" + t.header())
    for label, c, o, k, stride, pad, h in RESNET18_CONVS:
        h = min(h, 16) if quick else h
        ms = {}
        for name, (m, sync) in libs.items():
            x = m.randn(batch, c, h, h, device="cuda", requires_grad=True)
            w = m.randn(o, c, k, k, device="cuda", requires_grad=True)
            conv = m.nn.functional.conv2d

            def fwd():
                with m.no_grad():
                    conv(x, w, None, stride, pad)

            def fwd_bwd():
                conv(x, w, None, stride, pad).sum().backward()

            ms[name] = (timed(fwd, sync, repeat) * 1e3, timed(fwd_bwd, sync, repeat) * 1e3)
        f, fb = ms["fastkern"]
        tt = ms.get("torch")
        print(t.row(label, f, f / tt[0] if tt else None, fb, fb / tt[1] if tt else None))


def mnist_cnn(m):
    """The classic PyTorch MNIST example network."""
    nn = m.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(9216, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def bench_mnist(libs, quick):
    """One epoch of the MNIST CNN with Adam, batch 64, on uint8 images already on the device
    (made float per batch, as a loader's transform would): images/s of the whole training step."""
    n, bs = (256 if quick else 60000), 64
    t = Table([("MNIST CNN epoch, batch 64", "<30"), ("images/s", ">10.0f"), ("vs torch", ">9.2f")])
    print("\n" + t.header())
    rate = {}
    for name, (m, sync) in libs.items():
        m.manual_seed(0)
        x = m.randint(0, 256, (n, 1, 28, 28), device="cuda").to(m.uint8)
        y = m.randint(0, 10, (n,), device="cuda")
        model = mnist_cnn(m).to("cuda")
        opt = m.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = m.nn.CrossEntropyLoss()

        def epoch(steps):
            for i in range(0, steps * bs, bs):
                xb = x[i : i + bs].float() / 255
                loss = loss_fn(model(xb), y[i : i + bs])
                loss.backward()
                opt.step()
                opt.zero_grad()

        epoch(2)  # warm up: allocator, kernel caches
        sync()
        t0 = time.perf_counter()
        epoch(n // bs)
        sync()
        rate[name] = (n // bs) * bs / (time.perf_counter() - t0)
    for name, r in rate.items():
        print(t.row(name, r, r / rate["torch"] if "torch" in rate else None))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--mb", type=int, default=256, help="size of the large float32 tensors in MB")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    args = ap.parse_args(argv)
    if args.quick:
        args.mb, args.repeat = 1, 1
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
        # FP32 against FP32: cuBLAS and cuDNN would otherwise round inputs to TF32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True

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

    bench_gemm(libs, args.quick, args.repeat)
    bench_conv(libs, args.quick, args.repeat)
    bench_mnist(libs, args.quick)


if __name__ == "__main__":
    main()
