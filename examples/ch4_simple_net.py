"""fastbook chapter 4, step 3: simple_net (784-30-1) trained with Learner.fit(40, 0.1).

fastbook's final accuracy: 0.9828 (plain SGD, batch size 256, no shuffling, its mnist_loss).

    python examples/ch4_simple_net.py [--epochs 40]
"""
import argparse

import fastkern as fk
from fastkern import Learner, nn
from fastkern.data import DataLoader, DataLoaders
from fastkern.optim import SGD

from ch4_linear_sgd import batch_accuracy, datasets, mnist_loss


def main(epochs=40, lr=0.1, seed=42, progress=True):
    fk.manual_seed(seed)
    dset, valid_dset = datasets()
    dls = DataLoaders(DataLoader(dset, batch_size=256), DataLoader(valid_dset, batch_size=256))
    simple_net = nn.Sequential(nn.Linear(28 * 28, 30), nn.ReLU(), nn.Linear(30, 1))
    learn = Learner(dls, simple_net, opt_func=SGD, loss_func=mnist_loss, metrics=batch_accuracy, progress=progress)
    learn.fit(epochs, lr)
    return learn.recorder.values[-1][2]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    print(f"final accuracy {main(ap.parse_args().epochs):.4f} (fastbook: 0.9828)")
