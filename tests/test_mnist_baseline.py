"""fastbook chapter 4: the pixel-similarity baseline on MNIST 3s vs 7s (accuracy 0.9511)."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk

DATA = Path(os.environ.get("FASTKERN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
MNIST = DATA / "mnist"
FILES = [f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]

pytestmark = pytest.mark.skipif(
    not all((MNIST / f).exists() for f in FILES), reason=f"MNIST IDX files not found under {MNIST} (set FASTKERN_DATA)"
)


def read_idx(path):
    """Parse a gzipped IDX file (big-endian header: magic, dims) into a uint8 array."""
    raw = gzip.open(path, "rb").read()
    ndim = raw[3]
    assert raw[:2] == b"\x00\x00" and raw[2] == 0x08, "not a uint8 IDX file"
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def mnist():
    return {name: read_idx(MNIST / f) for name, f in zip(("x", "y", "vx", "vy"), FILES)}


def to_stacked(images):
    """fastbook: stack the per-image tensors, then float()/255."""
    return fk.stack([fk.tensor(im) for im in images]).float() / 255


def mnist_distance(a, b):
    return (a - b).abs().mean((-1, -2))


def baseline_accuracy(threes, sevens, valid_3, valid_7):
    mean3, mean7 = threes.mean(0), sevens.mean(0)
    assert mean3.shape == (28, 28) and mean7.shape == (28, 28)

    def is_3(x):
        return mnist_distance(x, mean3) < mnist_distance(x, mean7)

    d = mnist_distance(valid_3, mean3)
    assert d.shape == (valid_3.shape[0],) and d.dtype == fk.float32
    pred3, pred7 = is_3(valid_3), is_3(valid_7)
    assert pred3.dtype == fk.bool
    acc_3s = pred3.float().mean()
    acc_7s = (1 - pred7.float()).mean()
    return ((acc_3s + acc_7s) / 2).item(), acc_3s.item(), acc_7s.item(), mean3


def test_pixel_similarity_baseline(mnist):
    x, y, vx, vy = mnist["x"], mnist["y"], mnist["vx"], mnist["vy"]
    assert x.shape == (60000, 28, 28) and vx.shape == (10000, 28, 28)
    threes, sevens = to_stacked(x[y == 3]), to_stacked(x[y == 7])
    valid_3, valid_7 = to_stacked(vx[vy == 3]), to_stacked(vx[vy == 7])
    assert threes.shape == (6131, 28, 28) and sevens.shape == (6265, 28, 28)
    assert valid_3.shape == (1010, 28, 28) and valid_7.shape == (1028, 28, 28)
    assert threes.dtype == fk.float32 and 0 <= threes.min().item() and threes.max().item() <= 1
    acc, acc_3s, acc_7s, mean3 = baseline_accuracy(threes, sevens, valid_3, valid_7)
    np.testing.assert_allclose(mean3.numpy(), (x[y == 3] / 255.0).mean(0), rtol=1e-4, atol=1e-5)
    assert 0.94 < acc < 0.97, acc
    assert acc == pytest.approx(0.9511, abs=2e-3)  # fastbook: 3s 0.9168, 7s 0.9854
    assert acc_3s == pytest.approx(0.9168, abs=3e-3) and acc_7s == pytest.approx(0.9854, abs=3e-3)


def test_mnist_sample(mnist):
    s = fk.data.mnist_sample()
    assert s._fields == ("train_x", "train_y", "valid_x", "valid_y")
    train_x, train_y, valid_x, valid_y = s
    assert train_x.dtype == fk.uint8 and valid_x.dtype == fk.uint8
    assert train_y.dtype == fk.int64 and valid_y.dtype == fk.int64
    assert train_x.shape == (6131 + 6265, 28, 28) and train_y.shape == (6131 + 6265,)
    assert valid_x.shape == (1010 + 1028, 28, 28) and valid_y.shape == (1010 + 1028,)
    assert (train_y == 0).sum().item() == 6131 and (train_y == 1).sum().item() == 6265
    assert (valid_y == 0).sum().item() == 1010 and (valid_y == 1).sum().item() == 1028
    # the images are MNIST's own 3s and 7s (order-independent check on pixel sums)
    x, y = mnist["x"], mnist["y"]
    tx, ty = train_x.numpy(), train_y.numpy()
    np.testing.assert_array_equal(
        np.sort(tx[ty == 0].reshape(-1, 784).sum(1)), np.sort(x[y == 3].reshape(-1, 784).sum(1))
    )
    tx_f = train_x.float() / 255
    vx_f = valid_x.float() / 255
    acc, *_ = baseline_accuracy(tx_f[train_y == 0], tx_f[train_y == 1], vx_f[valid_y == 0], vx_f[valid_y == 1])
    assert 0.94 < acc < 0.97, acc
