#!/usr/bin/env python3
"""conv2d forward and forward+backward GFLOP/s: fastkern vs PyTorch, in one process.

Run: PYTHONPATH=python python bench/conv.py [--repeat N] [--threads N] [--only SUBSTRING]
Shapes: the layers of issue 12's table (ResNet-18 at batch 8 and 224x224, the MNIST networks at
batch 64) and EfficientNet-Lite0's depthwise layers (batch 8). Forward+backward counts 3x the
forward FLOPs (input and weight gradients). `algo` is the algorithm fastkern picks.
"""

import argparse

import numpy as np

from _common import Table, best_time, setup  # bench/ is on sys.path when run as a script

# (label, batch, in_ch, out_ch, size, kernel, stride, padding, groups)
SHAPES = [
    ("resnet stem 3->64 7x7/2 224", 8, 3, 64, 224, 7, 2, 3, 1),
    ("resnet 64->64 3x3 56", 8, 64, 64, 56, 3, 1, 1, 1),
    ("resnet 128->128 3x3 28", 8, 128, 128, 28, 3, 1, 1, 1),
    ("resnet 256->256 3x3 14", 8, 256, 256, 14, 3, 1, 1, 1),
    ("resnet 512->512 3x3 7", 8, 512, 512, 7, 3, 1, 1, 1),
    ("mnist 1->32 3x3 28 nopad", 64, 1, 32, 28, 3, 1, 0, 1),
    ("mnist 32->64 3x3 26 nopad", 64, 32, 64, 26, 3, 1, 0, 1),
    ("mnist 1->8 3x3/2 28", 64, 1, 8, 28, 3, 2, 1, 1),
    ("mnist 8->16 3x3/2 14", 64, 8, 16, 14, 3, 2, 1, 1),
    ("dw 32 3x3 112", 8, 32, 32, 112, 3, 1, 1, 32),
    ("dw 96 3x3/2 112", 8, 96, 96, 112, 3, 2, 1, 96),
    ("dw 144 5x5/2 56", 8, 144, 144, 56, 5, 2, 2, 144),
    ("dw 240 5x5 28", 8, 240, 240, 28, 5, 1, 2, 240),
    ("dw 480 3x3 14", 8, 480, 480, 14, 3, 1, 1, 480),
    ("dw 1152 5x5 7", 8, 1152, 1152, 7, 5, 1, 2, 1152),
]


def step(F, x, w, s, p, g, grad):
    if not grad:
        return lambda: F.conv2d(x, w, stride=s, padding=p, groups=g)

    def run():
        x.grad = w.grad = None
        F.conv2d(x, w, stride=s, padding=p, groups=g).sum().backward()

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", default="", help="run the layers whose label contains this")
    args = ap.parse_args()
    fk, torch = setup(args.threads)
    table = Table(
        [
            ("layer", "<28"),
            ("algo", "<10"),
            ("pass", "<8"),
            ("fastkern GF/s", ">14.1f"),
            ("torch GF/s", ">11.1f"),
            ("fk/torch", ">9.2f"),
        ]
    )
    print(table.header())
    rng = np.random.default_rng(0)
    for label, n, ci, co, size, k, s, p, g in SHAPES:
        if args.only not in label:
            continue
        xa = rng.standard_normal((n, ci, size, size)).astype(np.float32)
        wa = (rng.standard_normal((co, ci // g, k, k)) * 0.1).astype(np.float32)
        out = (size + 2 * p - k) // s + 1
        flops = 2.0 * n * co * out * out * (ci // g) * k * k
        algo = fk.backends.cpu.conv_algorithm(xa.shape, wa.shape, s, p, 1, g) if fk else "-"
        for grad, mult, name in ((False, 1, "fwd"), (True, 3, "fwd+bwd")):
            res = {}
            for libname, mod in (("fk", fk), ("torch", torch)):
                if mod is None:
                    continue
                x = mod.tensor(xa, requires_grad=grad)
                w = mod.tensor(wa, requires_grad=grad)
                seconds = best_time(step(mod.nn.functional, x, w, s, p, g, grad), args.repeat, warmup=1)
                res[libname] = mult * flops / seconds / 1e9
            ours, t = res.get("fk"), res.get("torch")
            print(table.row(label, algo, name, ours, t, ours / t if ours and t else None))
    print("\nfk/torch above 1 means fastkern is faster.")


if __name__ == "__main__":
    main()
