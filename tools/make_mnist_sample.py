#!/usr/bin/env python3
"""Write python/fastkern/data/mnist_sample.npz (fastai's MNIST_SAMPLE) from the MNIST IDX files.

Usage: python tools/make_mnist_sample.py [DATA_DIR]   (default: ../shared/data, relative to the repo root)
DATA_DIR may be the folder holding mnist/ or the mnist/ folder itself.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST_PY = ROOT / "python/fastkern/data/mnist.py"
# Expected counts of fastai's MNIST_SAMPLE (train 3s, 7s; valid 3s, 7s).
EXPECTED = {"train": (6131, 6265), "valid": (1010, 1028)}


def load_mnist_module():
    # Load mnist.py by path: importing the fastkern package would need the compiled extension.
    spec = importlib.util.spec_from_file_location("_fk_mnist", MNIST_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default=str(ROOT.parent / "shared/data"))
    args = ap.parse_args(argv)
    mod = load_mnist_module()
    arrays = mod.sample_arrays_from_idx(args.data_dir)

    for split, (n3, n7) in EXPECTED.items():
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        got = (int((y == 0).sum()), int((y == 1).sum()))
        if got != (n3, n7) or x.shape != (n3 + n7, 28, 28) or x.dtype != np.uint8:
            sys.exit(f"{split}: got {got} 3s/7s, shape {x.shape} {x.dtype}; expected {(n3, n7)}")

    out = mod.SAMPLE_PATH
    np.savez_compressed(out, **arrays)
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size / 1e6:.2f} MB)")
    for k, v in arrays.items():
        print(f"  {k:8s} {v.dtype} {v.shape}")


if __name__ == "__main__":
    main()
