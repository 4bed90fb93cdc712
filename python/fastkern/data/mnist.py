"""MNIST IDX reader and the embedded MNIST_SAMPLE (3s vs 7s, as in fastai/fastbook).

Numpy only at import time: fastkern is imported inside functions, because
fastkern/__init__.py imports this package.
"""
from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

SAMPLE_PATH = Path(__file__).with_name("mnist_sample.npz")

# IDX type codes (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) into a native-endian numpy array."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX size mismatch: shape {shape} needs {expected} bytes, file has {len(raw)}")
    # bytearray makes the array writable; multi-byte types go to native byte order.
    arr = np.frombuffer(bytearray(raw), dtype, offset=header).reshape(shape)
    return arr if dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


def sample_arrays_from_idx(data_dir) -> dict:
    """Build MNIST_SAMPLE as numpy arrays from a folder with the four MNIST IDX files.

    Keeps 3s and 7s, threes first; labels are 0 for '3' and 1 for '7'.
    Training set -> train_* (6131 + 6265), test set -> valid_* (1010 + 1028).
    ``data_dir`` may also be a folder holding an ``mnist/`` folder.
    """
    d = Path(data_dir)
    if (d / "mnist").is_dir():
        d = d / "mnist"

    def load(prefix):
        for suffix in ("-ubyte.gz", "-ubyte"):
            img, lbl = d / f"{prefix}-images-idx3{suffix}", d / f"{prefix}-labels-idx1{suffix}"
            if img.exists() and lbl.exists():
                break
        else:
            raise FileNotFoundError(f"no {prefix}-images-idx3-ubyte[.gz] / {prefix}-labels-idx1-ubyte[.gz] in {d}")
        x, y = read_idx(img), read_idx(lbl)
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{d}: {x.shape[0]} {prefix} images but {y.shape[0]} labels")
        threes, sevens = x[y == 3], x[y == 7]
        labels = np.concatenate([np.zeros(len(threes), np.uint8), np.ones(len(sevens), np.uint8)])
        return np.concatenate([threes, sevens]), labels

    train_x, train_y = load("train")
    valid_x, valid_y = load("t10k")
    return dict(train_x=train_x, train_y=train_y, valid_x=valid_x, valid_y=valid_y)


class MnistSample(NamedTuple):
    """MNIST 3s and 7s: images uint8 (N, 28, 28), labels int64 (0 = '3', 1 = '7')."""

    train_x: object
    train_y: object
    valid_x: object
    valid_y: object
    vocab = ("3", "7")  # class attribute, not a field: label i means digit vocab[i]


@functools.lru_cache(maxsize=None)
def _mnist_sample(data_dir) -> MnistSample:
    import fastkern as fk

    if data_dir is None:
        with np.load(SAMPLE_PATH) as z:
            arrays = {k: z[k] for k in MnistSample._fields}
    else:
        arrays = sample_arrays_from_idx(data_dir)
    conv = lambda a, dt: fk.from_numpy(np.ascontiguousarray(a, dtype=dt))
    return MnistSample(
        conv(arrays["train_x"], np.uint8), conv(arrays["train_y"], np.int64),
        conv(arrays["valid_x"], np.uint8), conv(arrays["valid_y"], np.int64),
    )


def mnist_sample(data_dir=None) -> MnistSample:
    """fastai's MNIST_SAMPLE as fastkern tensors, loaded once and cached.

    With no argument it comes from the copy shipped in the package (no network);
    ``data_dir`` points at a folder with the full MNIST IDX files instead.
    """
    return _mnist_sample(None if data_dir is None else os.path.abspath(os.fspath(data_dir)))
