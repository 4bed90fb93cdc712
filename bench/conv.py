#!/usr/bin/env python3
"""conv2d forward and forward+backward GFLOP/s: fastkern vs PyTorch, in one process.

Run: PYTHONPATH=python python bench/conv.py [--repeat N] [--threads N]
Shapes: the MNIST CNN layers (batch 64) and ResNet-18 layers (batch 8, 224x224 input).
Forward+backward counts 3x the forward FLOPs (input and weight gradients).
"""

import argparse

import numpy as np

from _common import Table, best_time, setup  # bench/ is on sys.path when run as a script

# (label, batch, in_ch, out_ch, size, kernel, stride, padding)
SHAPES = [
    ("mnist conv1 1->32 28x28", 64, 1, 32, 28, 3, 1, 1),
    ("mnist conv2 32->64 14x14", 64, 32, 64, 14, 3, 1, 1),
    ("resnet stem 3->64 224 7x7/2", 8, 3, 64, 224, 7, 2, 3),
    ("resnet 64x56x56 3x3", 8, 64, 64, 56, 3, 1, 1),
    ("resnet 128x28x28 3x3", 8, 128, 128, 28, 3, 1, 1),
    ("resnet 256x14x14 3x3", 8, 256, 256, 14, 3, 1, 1),
    ("resnet 512x7x7 3x3", 8, 512, 512, 7, 3, 1, 1),
]


def cases(mod, F, x, w, grad):
    if not grad:
        return lambda s, p: lambda: F.conv2d(x, w, stride=s, padding=p)

    def run(s, p):
        def step():
            x.grad = w.grad = None
            F.conv2d(x, w, stride=s, padding=p).sum().backward()

        return step

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    fk, torch = setup(args.threads)
    table = Table(
        [
            ("layer", "<30"),
            ("pass", "<9"),
            ("fastkern GF/s", ">14.1f"),
            ("torch GF/s", ">12.1f"),
            ("fk/torch", ">10.2f"),
        ]
    )
    print(table.header())
    rng = np.random.default_rng(0)
    for label, n, ci, co, size, k, s, p in SHAPES:
        xa = rng.standard_normal((n, ci, size, size)).astype(np.float32)
        wa = (rng.standard_normal((co, ci, k, k)) * 0.1).astype(np.float32)
        out = (size + 2 * p - k) // s + 1
        flops = 2.0 * n * co * out * out * ci * k * k
        for grad, mult, name in ((False, 1, "fwd"), (True, 3, "fwd+bwd")):
            res = {}
            for libname, mod, F in (
                ("fk", fk, fk and fk.nn.functional),
                ("torch", torch, torch and torch.nn.functional),
            ):
                if mod is None:
                    continue
                x = mod.tensor(xa, requires_grad=grad)
                w = mod.tensor(wa, requires_grad=grad)
                seconds = best_time(cases(mod, F, x, w, grad)(s, p), args.repeat, warmup=1)
                res[libname] = mult * flops / seconds / 1e9
            ours, t = res["fk"], res.get("torch")
            print(table.row(label, name, ours, t or None, ours / t if t else None))
    print("\nfk/torch above 1 means fastkern is faster.")


if __name__ == "__main__":
    main()
