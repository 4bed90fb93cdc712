#!/usr/bin/env python3
"""One full MNIST training epoch of the small CNN, images/s: fastkern vs PyTorch.

Run: PYTHONPATH=python python bench/train_mnist.py [--data DIR] [--bs 64] [--threads N] [--epochs 1]

The model is fastkern.models.simple_cnn (fastbook chapter 13: stride-2 conv + batch norm
+ ReLU blocks, 28 -> 14 -> 7 -> 4 -> 2 -> 1) and the same layers in torch.nn, starting
from the same weights. Both train with Adam and a one-cycle schedule (lr 1e-2) at the
same batch size and thread count on the same shuffled batches of uint8 images, converted
to float per batch. Timed: the training pass over all 60000 images (data, forward,
backward, step). fastkern runs twice: through Learner.fit_one_cycle (what users run,
callbacks and recording included) and a plain loop like PyTorch's.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_header, try_import  # noqa: E402


def data_dir(arg):
    d = arg or os.environ.get("FASTKERN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(d)


def torch_cnn(torch, fk_model):
    """The same layers as fastkern's simple_cnn, with its weights copied in."""
    tnn = torch.nn
    layers = []
    for m in fk_model:
        name = type(m).__name__
        if name == "Conv2d":
            layers.append(tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, bias=False))
        elif name == "BatchNorm2d":
            layers.append(tnn.BatchNorm2d(m.num_features))
        elif name == "ReLU":
            layers.append(tnn.ReLU())
        elif name == "AdaptiveAvgPool2d":
            layers.append(tnn.AdaptiveAvgPool2d(m.output_size))
        elif name == "Flatten":
            layers.append(tnn.Flatten())
        else:
            raise ValueError(name)
    model = tnn.Sequential(*layers)
    model.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in fk_model.state_dict().items()})
    return model


def batches(n, bs, seed):
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + bs] for i in range(0, n - n % bs, bs)]  # drop_last, as the Learner's train loader


def run_loop(mod, model, x, y, vx, vy, bs, lr, epochs, seed):
    """A plain training loop, written once for fastkern and torch (`mod` is either)."""
    from importlib import import_module

    opt = mod.optim.Adam(model.parameters(), lr=lr)
    one_cycle = import_module(f"{mod.__name__}.optim.lr_scheduler").OneCycleLR
    sched = one_cycle(opt, lr, total_steps=epochs * (len(x) // bs), pct_start=0.25, final_div_factor=4e3)
    loss_fn = mod.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for idx in batches(len(x), bs, seed + epoch):
            idx = mod.from_numpy(idx)
            xb = (x[idx].float() / 255).unsqueeze(1)
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
            opt.zero_grad()
            sched.step()
    elapsed = time.perf_counter() - t0
    model.eval()
    with mod.no_grad():
        pred = mod.cat(
            [model((vx[i : i + 1000].float() / 255).unsqueeze(1)).argmax(1) for i in range(0, len(vx), 1000)]
        )
    return elapsed, (pred == vy).float().mean().item()


class TrainTimer:
    """A Learner callback timing the training passes only (validation excluded)."""

    def __init__(self):
        from fastkern import Callback

        class _Timer(Callback):
            seconds = 0.0

            def before_train(self):
                self._t = time.perf_counter()

            def after_train(self):
                type(self).seconds += time.perf_counter() - self._t

        self.cb = _Timer()


def run_fk_learner(fk, model, d, bs, lr, epochs, seed):
    from fastkern import DataLoaders, Learner, accuracy
    from fastkern.data import AddChannel, IntToFloat, Pipeline, TensorDataset

    dls = DataLoaders.from_dsets(
        TensorDataset(d.train_x, d.train_y),
        TensorDataset(d.valid_x, d.valid_y),
        bs=bs,
        seed=seed,
        after_batch=Pipeline([IntToFloat(), AddChannel()]),
        vocab=d.vocab,
    )
    timer = TrainTimer().cb
    learn = Learner(dls, model, metrics=accuracy, cbs=[timer], progress=False)
    learn.fit_one_cycle(epochs, lr)
    return type(timer).seconds, learn.recorder.values[-1][2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder holding mnist/ (default: $FASTKERN_DATA or ../shared/data)")
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="threads for both libraries (default: fastkern's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    fk, fk_err = try_import("fastkern")
    torch, torch_err = try_import("torch")
    print_header({"fastkern": (fk, fk_err), "torch": (torch, torch_err)})
    if fk is None:
        return 1
    threads = args.threads or fk.get_num_threads()
    fk.set_num_threads(threads)
    d = fk.data.mnist(data_dir(args.data))
    n = len(d.train_x) // args.bs * args.bs * args.epochs
    print(
        f"simple_cnn, full MNIST ({len(d.train_x)} images/epoch), batch {args.bs}, {args.epochs} epoch(s), "
        f"Adam + one-cycle lr {args.lr}, {threads} threads\n"
    )

    def make():
        fk.manual_seed(args.seed)
        return fk.models.create_model("simple_cnn", n_out=10)

    rows = []
    secs, acc = run_fk_learner(fk, make(), d, args.bs, args.lr, args.epochs, args.seed)
    rows.append(("fastkern Learner.fit_one_cycle", secs, acc))
    secs, acc = run_loop(
        fk, make(), d.train_x, d.train_y, d.valid_x, d.valid_y, args.bs, args.lr, args.epochs, args.seed
    )
    rows.append(("fastkern plain loop", secs, acc))
    if torch is not None:
        torch.set_num_threads(threads)
        tx, ty = torch.from_numpy(d.train_x.numpy().copy()), torch.from_numpy(d.train_y.numpy().copy())
        tvx, tvy = torch.from_numpy(d.valid_x.numpy().copy()), torch.from_numpy(d.valid_y.numpy().copy())
        secs, acc = run_loop(
            torch, torch_cnn(torch, make()), tx, ty, tvx, tvy, args.bs, args.lr, args.epochs, args.seed
        )
        rows.append((f"torch {torch.__version__} plain loop", secs, acc))

    ref = rows[-1][1] if torch is not None else None
    print("| run | train s | images/s | valid accuracy | speed vs torch |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, secs, acc in rows:
        ratio = f"{ref / secs:.2f}x" if ref else "-"
        print(f"| {name} | {secs:.1f} | {n / secs:,.0f} | {acc:.4f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
