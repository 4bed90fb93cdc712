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
        conv(arrays["train_x"], np.uint8),
        conv(arrays["train_y"], np.int64),
        conv(arrays["valid_x"], np.uint8),
        conv(arrays["valid_y"], np.int64),
    )


def mnist_sample(data_dir=None) -> MnistSample:
    """fastai's MNIST_SAMPLE as fastkern tensors, loaded once and cached.

    With no argument it comes from the copy shipped in the package (no network);
    ``data_dir`` points at a folder with the full MNIST IDX files instead.
    """
    return _mnist_sample(None if data_dir is None else os.path.abspath(os.fspath(data_dir)))


# -- full MNIST / Fashion-MNIST: local folder, cache, or download ------------------
_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# name -> (mirrors tried in order, md5 of each file in _FILES order, class names)
DATASETS = {
    "mnist": (
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
        tuple("0123456789"),
    ),
    "fashion-mnist": (
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}


class ImageClassData(NamedTuple):
    """A train/valid split of images uint8 (N, H, W) and labels int64, and the class names."""

    train_x: object
    train_y: object
    valid_x: object
    valid_y: object
    vocab: tuple


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fastkern"


def _download(name, folder, mirrors):
    """Fetches the missing files into ``folder``, each verified by md5 before it is renamed into place."""
    import hashlib
    import urllib.request

    from ..serialization import atomic_write

    _, md5s, _ = DATASETS[name]
    for fname, md5 in zip(_FILES, md5s):
        dest = folder / fname
        if dest.exists():
            continue
        errors = []
        for mirror in mirrors:
            url = mirror + fname
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    data = r.read()
            except OSError as e:
                errors.append(f"{url}: {e}")
                continue
            got = hashlib.md5(data).hexdigest()
            if got != md5:
                errors.append(f"{url}: md5 {got} != expected {md5}")
                continue
            atomic_write(dest, data)
            break
        else:
            raise OSError(f"could not download {name} file {fname}:\n  " + "\n  ".join(errors))


def _find_local(name, data_dir):
    """``data_dir`` itself or its ``name`` subfolder, if it holds the four files."""
    for d in (Path(data_dir) / name, Path(data_dir)):
        if all((d / f).exists() for f in _FILES):
            return d
    return None


def load_image_classes(name, data_dir=None, download=True, mirrors=None) -> ImageClassData:
    """MNIST-format data set ``name`` from ``data_dir`` (or $FASTKERN_DATA), else from the
    cache folder, downloading there (md5-checked) when missing."""
    import fastkern as fk

    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r} (known: {sorted(DATASETS)})")
    default_mirrors, md5s, vocab = DATASETS[name]
    local = data_dir or os.environ.get("FASTKERN_DATA")
    if local:
        folder = _find_local(name, local)
        if folder is None:
            raise FileNotFoundError(f"{name}: no {', '.join(_FILES)} in {local} or {Path(local) / name}")
    else:
        folder = cache_dir() / name
        if not all((folder / f).exists() for f in _FILES):
            if not download:
                raise FileNotFoundError(f"{name} is not in the cache {folder} and download=False")
            _download(name, folder, mirrors or default_mirrors)
    arrays = [read_idx(folder / f) for f in _FILES]
    conv = lambda a, dt: fk.from_numpy(np.ascontiguousarray(a, dtype=dt))
    return ImageClassData(
        conv(arrays[0], np.uint8),
        conv(arrays[1], np.int64),
        conv(arrays[2], np.uint8),
        conv(arrays[3], np.int64),
        vocab,
    )


def mnist(data_dir=None, download=True, mirrors=None) -> ImageClassData:
    """Full MNIST: 60000 training and 10000 test (here: validation) digits."""
    return load_image_classes("mnist", data_dir, download, mirrors)


def fashion_mnist(data_dir=None, download=True, mirrors=None) -> ImageClassData:
    """Fashion-MNIST: same layout as MNIST, ten kinds of clothing."""
    return load_image_classes("fashion-mnist", data_dir, download, mirrors)
