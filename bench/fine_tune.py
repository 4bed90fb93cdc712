#!/usr/bin/env python3
"""Transfer learning as fast.ai lesson 1 (examples/fine_tune_ants_bees.py's recipe): ImageNet
EfficientNet-Lite0 with fastai's head, fine_tune(2) on ants and bees, fastkern vs PyTorch.

Run: PYTHONPATH=python python bench/fine_tune.py [--data DIR] [--epochs 2] [--size 224] [--bs 16] [--threads N]

Both libraries get the same batches: the photos are decoded once (Resize(size), centred) into
uint8 arrays, and every batch of every epoch (a shuffled order, fastkern's aug_transforms, the
[-1, 1] scaling EfficientNet-Lite expects) is computed before either library trains. The PyTorch
side is the same model in plain torch.nn (tests/torch_models.py, the checkpoint loaded with
torch.load) with fastkern's freshly initialised head copied in, and the loop of fastkern's
fine_tune written out: one cycle on the head with the body frozen (its batch norm training),
then one cycle on everything with discriminative rates, Adam with fastkern's defaults, the
rates and first beta set before each batch from the same one-cycle functions. Timed: fine_tune
(training and validation passes), not the data preparation; images/s counts every image of
every pass.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from _common import setup  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from torch_models import torch_lite0  # noqa: E402

sys.path.insert(0, str(ROOT / "examples"))
from fine_tune_ants_bees import DATA  # noqa: E402

FREEZE_EPOCHS, BASE_LR, LR_MULT = 1, 2e-3, 100  # fastkern's fine_tune defaults


def decode(fk, path, size):
    """(train x, train y, valid x, valid y, vocab): uint8 (N, 3, size, size) centre crops."""
    from fastkern.data import Resize, get_image_files, parent_label
    from fastkern.data.transforms import OpenImage, Pipeline, ToArray, call_tfm

    item = Pipeline([OpenImage("RGB", draft_size=size), Resize(size), ToArray()])
    files = {s: get_image_files(path / s) for s in ("train", "val")}
    vocab = sorted({parent_label(f) for f in files["train"]})
    out = []
    for s in ("train", "val"):
        out.append(np.stack([call_tfm(item, f, 1) for f in files[s]]))
        out.append(np.array([vocab.index(parent_label(f)) for f in files[s]], dtype=np.int64))
    return (*out, vocab)


def make_batches(fk, x, y, bs, n_epochs, seed):
    """Each training epoch's batches as float32 numpy (x, y): shuffled, the last partial batch
    dropped (as fastkern's training loader), augmented; and the validation batches."""
    from fastkern.data import IntToFloat, Normalize, Pipeline, aug_transforms
    from fastkern.data.transforms import call_tfm

    fk.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train = Pipeline([IntToFloat(), *aug_transforms(), Normalize([0.5] * 3, [0.5] * 3)])
    epochs = []
    for _ in range(n_epochs):
        order = rng.permutation(len(x))
        idxs = [order[i : i + bs] for i in range(0, len(x) - bs + 1, bs)]
        epochs.append([(call_tfm(train, fk.from_numpy(x[i]), 0).numpy(), y[i]) for i in idxs])
    return epochs


class Batches:
    """A loader over precomputed batches (epoch k of training gets epochs[k]), as the Learner
    iterates one."""

    after_batch = device = dataset = None

    def __init__(self, fk, epochs):
        self.fk, self.epochs, self.k = fk, epochs, 0

    def __len__(self):
        return len(self.epochs[0])

    def __iter__(self):
        batches, self.k = self.epochs[self.k % len(self.epochs)], self.k + 1
        for x, y in batches:
            yield self.fk.from_numpy(x), self.fk.from_numpy(y)


def fastkern_learner(fk, train_epochs, valid, vocab):
    from fastkern import DataLoaders
    from fastkern.vision.all import efficientnet_lite0, error_rate, vision_learner

    dls = DataLoaders(Batches(fk, train_epochs), Batches(fk, [valid]), vocab=vocab)
    # the batches are scaled to [-1, 1] already
    return vision_learner(dls, efficientnet_lite0, normalize=False, metrics=error_rate, pretrained=True, progress=False)


def torch_model(torch, fk_model):
    """fastkern's vision_learner model in plain torch.nn, module for module (so its state dict
    keys are fastkern's): the pretrained body from the checkpoint, the head's weights fastkern's."""
    import fastkern.vision.models

    tnn = torch.nn
    net = torch_lite0(drop_connect_rate=0.2)
    net.load_state_dict(torch.load(fastkern.vision.models.lite0_package_file(), map_location="cpu"))
    body = tnn.Sequential(
        net._conv_stem, net._bn0, tnn.ReLU6(), tnn.Sequential(*net._blocks), net._conv_head, net._bn1, tnn.ReLU6()
    )

    class ConcatPool(tnn.Module):  # fastai's AdaptiveConcatPool2d: max, then average
        def forward(self, x):
            return torch.cat([tnn.functional.adaptive_max_pool2d(x, 1), tnn.functional.adaptive_avg_pool2d(x, 1)], 1)

    fk_head = fk_model[1]
    nf, mid, n_out = fk_head[4].in_features, fk_head[4].out_features, fk_head[8].out_features
    head = tnn.Sequential(
        ConcatPool(),
        tnn.Flatten(),
        tnn.BatchNorm1d(nf),
        tnn.Dropout(fk_head[3].p),
        tnn.Linear(nf, mid, bias=False),
        tnn.ReLU(inplace=True),
        tnn.BatchNorm1d(mid),
        tnn.Dropout(fk_head[7].p),
        tnn.Linear(mid, n_out, bias=False),
    )
    model = tnn.Sequential(body, head)
    fk_state = fk_model.state_dict()
    for k, v in model.state_dict().items():
        if k.startswith("0."):  # the body came from the checkpoint: it must be what fastkern loaded
            assert np.array_equal(v.numpy(), fk_state[k].numpy()), k
    model[1].load_state_dict({k[2:]: torch.from_numpy(v.numpy().copy()) for k, v in fk_state.items() if k[:2] == "1."})
    return model


def torch_fine_tune(torch, model, train_epochs, valid, epochs):
    """fastkern's Learner.fine_tune(epochs), written out."""
    from fastkern.optim.lr_scheduler import combined_cos

    body, head = model
    bn = {id(p) for m in body.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    opt = torch.optim.Adam([{"params": list(body.parameters())}, {"params": list(head.parameters())}])
    it = iter(train_epochs)
    errors = []

    def fit_one_cycle(n_epoch, lrs, pct_start, div=25.0, div_final=1e5, moms=(0.95, 0.85, 0.95)):
        scheds = [combined_cos(pct_start, lr / div, lr, lr / div_final) for lr in lrs]
        mom, pct = combined_cos(pct_start, *moms), 0.0
        for _ in range(n_epoch):
            batches = next(it)
            model.train()
            for x, y in batches:
                for g, sched in zip(opt.param_groups, scheds):
                    g["lr"], g["betas"] = sched(pct), (mom(pct), g["betas"][1])
                torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
                opt.step()
                opt.zero_grad()
                pct += 1.0 / (len(batches) * n_epoch)  # summed as fastkern's TrainEvalCallback does
            model.eval()
            wrong = 0
            with torch.no_grad():
                for x, y in valid:
                    wrong += (model(torch.from_numpy(x)).argmax(1).numpy() != y).sum()
            errors.append(wrong / sum(len(y) for _, y in valid))

    for p in body.parameters():  # freeze: the body's batch norm keeps training
        p.requires_grad_(id(p) in bn)
    fit_one_cycle(FREEZE_EPOCHS, [BASE_LR / 10, BASE_LR], 0.99)
    for p in model.parameters():
        p.requires_grad_(True)
    lr = BASE_LR / 2
    fit_one_cycle(epochs, [lr / LR_MULT, lr], 0.3, div=5.0)
    return errors[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA / "hymenoptera_data")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    fk, torch = setup(args.threads)

    t = time.perf_counter()
    xt, yt, xv, yv, vocab = decode(fk, args.data, args.size)
    train_epochs = make_batches(fk, xt, yt, args.bs, FREEZE_EPOCHS + args.epochs, args.seed)
    norm = ((xv.astype(np.float32) / 255) - 0.5) / 0.5
    valid = [(norm[i : i + args.bs], yv[i : i + args.bs]) for i in range(0, len(xv), args.bs)]
    images = (FREEZE_EPOCHS + args.epochs) * (len(train_epochs[0]) * args.bs + len(xv))
    print(f"{len(xt)} training and {len(xv)} validation images at {args.size}x{args.size}, batch {args.bs}, ", end="")
    print(f"{FREEZE_EPOCHS}+{args.epochs} epochs ({images} images through the model); data prepared in ", end="")
    print(f"{time.perf_counter() - t:.1f} s\n")

    fk.manual_seed(args.seed)
    learn = fastkern_learner(fk, train_epochs, valid, vocab)
    tm = torch_model(torch, learn.model) if torch is not None else None  # before fastkern trains
    if tm is not None:  # the same function: eval-mode outputs agree before training
        learn.model.eval(), tm.eval()
        with fk.no_grad(), torch.no_grad():
            diff = learn.model(fk.from_numpy(valid[0][0])).numpy() - tm(torch.from_numpy(valid[0][0])).numpy()
        print(f"same model in both: outputs on a validation batch differ by {np.abs(diff).max():.1e} at most\n")
    results = []
    t = time.perf_counter()
    learn.fine_tune(args.epochs)
    results.append(("fastkern", learn.recorder.values[-1][2], time.perf_counter() - t))
    if tm is not None:
        torch.manual_seed(args.seed)
        t = time.perf_counter()
        err = torch_fine_tune(torch, tm, train_epochs, valid, args.epochs)
        results.append(("torch", err, time.perf_counter() - t))

    for name, err, seconds in results:
        print(
            f"{name:<9} error rate {err:.4f} (accuracy {1 - err:.4f})  {seconds:6.1f} s  {images / seconds:6.1f} img/s"
        )
    if len(results) == 2:
        print(f"\nwall time torch/fastkern: {results[1][2] / results[0][2]:.2f} (above 1: fastkern is faster)")


if __name__ == "__main__":
    main()
