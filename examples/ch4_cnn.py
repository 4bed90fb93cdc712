"""fastbook chapter 4 with a CNN: 3s vs 7s with a small CNN and fit_one_cycle, above 0.99.

The CNN is fastbook chapter 13's (stride-2 conv + batch norm + ReLU blocks),
``fastkern.models.simple_cnn``.

    python examples/ch4_cnn.py [--epochs 1]
"""
import argparse

import fastkern as fk
from fastkern import DataLoaders, Learner, accuracy
from fastkern.data import AddChannel, IntToFloat, Pipeline, TensorDataset
from fastkern.models import create_model


def main(epochs=1, lr=1e-2, bs=64, seed=42, progress=True):
    fk.manual_seed(seed)
    s = fk.data.mnist_sample()
    dls = DataLoaders.from_dsets(TensorDataset(s.train_x, s.train_y), TensorDataset(s.valid_x, s.valid_y), bs=bs,
                                 seed=seed, after_batch=Pipeline([IntToFloat(), AddChannel()]), vocab=s.vocab)
    learn = Learner(dls, create_model("simple_cnn", n_out=2), metrics=accuracy, progress=progress)
    learn.fit_one_cycle(epochs, lr)
    return learn.recorder.values[-1][2]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1)
    print(f"final accuracy {main(ap.parse_args().epochs):.4f}")
