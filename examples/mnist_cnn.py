"""Full 10-class MNIST with the small CNN: one epoch of fit_one_cycle, above 0.98.

Reads the MNIST files from --data, $FASTKERN_DATA, or the download cache (downloads them once).

    python examples/mnist_cnn.py [--data DIR] [--epochs 1]
"""
import argparse

import fastkern as fk
from fastkern import DataLoaders, Learner, accuracy
from fastkern.data import AddChannel, IntToFloat, Pipeline, TensorDataset
from fastkern.models import create_model


def main(data=None, epochs=1, lr=1e-2, bs=64, seed=42, progress=True, export=None):
    fk.manual_seed(seed)
    d = fk.data.mnist(data)
    dls = DataLoaders.from_dsets(TensorDataset(d.train_x, d.train_y), TensorDataset(d.valid_x, d.valid_y), bs=bs,
                                 seed=seed, after_batch=Pipeline([IntToFloat(), AddChannel()]), vocab=d.vocab)
    learn = Learner(dls, create_model("simple_cnn", n_out=10), metrics=accuracy, progress=progress)
    learn.fit_one_cycle(epochs, lr)
    if export:
        learn.export(export)
    return learn.recorder.values[-1][2]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="folder with the MNIST IDX .gz files")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--export", help="write the trained model here")
    args = ap.parse_args()
    print(f"final accuracy {main(args.data, args.epochs, export=args.export):.4f}")
