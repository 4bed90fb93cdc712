"""fastbook chapter 4's end: a ResNet-18 trained from scratch on the MNIST 3s and 7s, one epoch.

As the book: ``vision_learner(dls, resnet18, pretrained=False, loss_func=F.cross_entropy,
metrics=accuracy)`` and ``fit_one_cycle(1, 0.1)`` (the book reaches about 0.99). The digits
(the sample shipped with fastkern: 12396 training, 2038 validation) are resized to 32x32 and
made RGB, as ImageDataLoaders.from_folder with Resize(32) gives them.

    python examples/mnist_3s7s_resnet18.py [--epochs 1] [--size 32] [--n-train N]
"""

import argparse
import time

import numpy as np

import fastkern as fk
from fastkern import DataLoaders, accuracy
from fastkern.data import IntToFloat, Pipeline, TensorDataset
from fastkern.nn import functional as F
from fastkern.vision import vision_learner
from fastkern.vision.models import resnet18


def rgb(x, size):
    """uint8 (N, 28, 28) digits as uint8 (N, 3, size, size), resized bilinearly as Resize does."""
    from PIL import Image

    out = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in x])
    return fk.from_numpy(np.ascontiguousarray(np.repeat(out[:, None], 3, axis=1)))


def main(epochs=1, size=32, lr=0.1, bs=64, seed=42, progress=True, n_train=None):
    """Returns (accuracy, seconds of fit_one_cycle). ``n_train`` takes that many training images
    at random (a quick run; the 3s come before the 7s)."""
    fk.manual_seed(seed)
    s = fk.data.mnist_sample()
    keep = np.random.default_rng(seed).permutation(len(s.train_y))[:n_train] if n_train else slice(None)
    train = TensorDataset(rgb(s.train_x.numpy()[keep], size), fk.from_numpy(s.train_y.numpy()[keep]))
    valid = TensorDataset(rgb(s.valid_x.numpy(), size), s.valid_y)
    dls = DataLoaders.from_dsets(train, valid, bs=bs, seed=seed, after_batch=Pipeline([IntToFloat()]), vocab=s.vocab)
    learn = vision_learner(
        dls, resnet18, pretrained=False, loss_func=F.cross_entropy, metrics=accuracy, progress=progress
    )
    start = time.perf_counter()
    learn.fit_one_cycle(epochs, lr)
    return learn.recorder.values[-1][2], time.perf_counter() - start


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--n-train", type=int, help="train on this many images taken at random (a quick run)")
    args = ap.parse_args()
    acc, seconds = main(args.epochs, args.size, n_train=args.n_train)
    print(f"final accuracy {acc:.4f} (fastbook: about 0.99), fit_one_cycle {seconds:.1f} s")
