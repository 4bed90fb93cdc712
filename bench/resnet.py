#!/usr/bin/env python3
"""Training steps of ResNet-18 and EfficientNet-Lite0 (forward, cross entropy, backward, SGD with
momentum), images/s: fastkern vs PyTorch in one process, with the same weights and batch.

Run: PYTHONPATH=python python bench/resnet.py [--batch N (16)] [--size N (224)] [--steps N] [--threads N]
Issue 11's setting, batch 16 at 224x224, is the default.
The PyTorch models are plain torch.nn rebuilds with fastkern's module names (tests/torch_models.py),
loaded with fastkern's initial weights.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from _common import Table, best_times, setup  # bench/ is on sys.path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from torch_models import torch_lite0, torch_resnet  # noqa: E402

MODELS = {
    "resnet18": (lambda fk: fk.vision.models.resnet18(), lambda: torch_resnet(False, [2, 2, 2, 2])),
    "efficientnet_lite0": (lambda fk: fk.vision.models.efficientnet_lite0(), torch_lite0),
}


def trainer(mod, model, x, y):
    opt = mod.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = mod.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    fk, torch = setup(args.threads)
    import fastkern.vision.models  # noqa: F401  (fk.vision.models)

    table = Table([("model", "<20"), ("fastkern img/s", ">15.2f"), ("torch img/s", ">12.2f"), ("fk/torch", ">9.2f")])
    print(f"batch {args.batch}, {args.size}x{args.size}, best of {args.steps} steps\n")
    print(table.header())
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((args.batch, 3, args.size, args.size)).astype(np.float32)
    ya = rng.integers(0, 1000, args.batch)
    for name, (build_fk, build_torch) in MODELS.items():
        if args.only not in name:
            continue
        fm = build_fk(fk)
        steps = {"fk": trainer(fk, fm, fk.tensor(xa), fk.tensor(ya))}
        if torch is not None:
            tm = build_torch()
            tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in fm.state_dict().items()})
            steps["torch"] = trainer(torch, tm, torch.tensor(xa), torch.tensor(ya))
        for step in steps.values():
            step()  # warm-up: caches, first-use allocations
        best = best_times(steps, args.steps)  # one step each in turn, best of args.steps
        ours, theirs = args.batch / best["fk"], args.batch / best["torch"] if "torch" in best else None
        print(table.row(name, ours, theirs, ours / theirs if theirs else None))
    print("\nfk/torch above 1 means fastkern is faster.")


if __name__ == "__main__":
    main()
