"""fastkern.data: loaders (determinism, batching, workers), splits, transforms, data sets."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from fastkern.data import (
    AddChannel,
    DataLoader,
    DataLoaders,
    EndSplitter,
    Flatten,
    GrandparentSplitter,
    IndexSplitter,
    IntToFloat,
    Normalize,
    Pipeline,
    RandomSplitter,
    TensorDataset,
    random_split,
)
from fastkern.data import transforms as T

DATA = Path(os.environ.get("FASTKERN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
has_mnist = pytest.mark.skipif(
    not all((DATA / "mnist" / f).exists() for f in MNIST_FILES),
    reason=f"MNIST files not under {DATA}/mnist (set FASTKERN_DATA)",
)


def ds(n=10):
    return TensorDataset(fk.arange(n) * 10, fk.arange(n))


def order(dl):
    return [y.tolist() for _, y in dl]


def test_batches_and_lengths():
    dl = DataLoader(ds(10), batch_size=4)
    assert len(dl) == 3 and order(dl) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dl = DataLoader(ds(10), batch_size=4, drop_last=True)
    assert len(dl) == 2 and order(dl) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    x, y = next(iter(DataLoader(ds(10), batch_size=3)))
    assert x.tolist() == [0, 10, 20] and y.dtype == fk.int64


def test_shuffle_is_deterministic_with_a_seed():
    a, b = DataLoader(ds(50), 8, shuffle=True, seed=1), DataLoader(ds(50), 8, shuffle=True, seed=1)
    first_a, first_b = order(a), order(b)
    assert first_a == first_b
    assert sorted(sum(first_a, [])) == list(range(50))  # a permutation
    assert order(a) != first_a  # each epoch draws a new order from the seeded stream
    assert order(DataLoader(ds(50), 8, shuffle=True, seed=2)) != first_a
    gen = DataLoader(ds(50), 8, shuffle=True, generator=np.random.default_rng(1))
    assert order(gen) == first_a


def test_shuffle_follows_manual_seed():
    fk.manual_seed(3)
    a = order(DataLoader(ds(30), 4, shuffle=True))
    fk.manual_seed(3)
    assert order(DataLoader(ds(30), 4, shuffle=True)) == a


def test_collate_of_items():
    items = [(np.full((2, 2), i, np.uint8), i, float(i)) for i in range(5)]
    x, y, z = next(iter(DataLoader(items, batch_size=5)))
    assert x.shape == (5, 2, 2) and x.dtype == fk.uint8 and y.tolist() == [0, 1, 2, 3, 4] and z.dtype == fk.float32
    pairs = list(zip(fk.randn(6, 3), fk.arange(6)))  # fastbook's list(zip(x, y)) dataset
    xb, yb = next(iter(DataLoader(pairs, batch_size=4)))
    assert xb.shape == (4, 3) and yb.tolist() == [0, 1, 2, 3]


def test_batched_fetch_equals_item_by_item():
    t = TensorDataset(fk.randn(20, 3), fk.arange(20))
    fast = list(DataLoader(t, 6, shuffle=True, seed=0))
    slow = list(DataLoader(t, 6, shuffle=True, seed=0, collate_fn=fk.data.default_collate))
    for (a, b), (c, d) in zip(fast, slow):
        np.testing.assert_array_equal(a.numpy(), c.numpy())
        assert b.tolist() == d.tolist()


def test_thread_workers_give_the_same_batches():
    plain = order(DataLoader(ds(40), 7, shuffle=True, seed=5))
    threaded = DataLoader(ds(40), 7, shuffle=True, seed=5, num_workers=3)
    assert order(threaded) == plain
    threaded.close()


class SquaresDataset(fk.data.Dataset):
    """Picklable (numpy only), as process workers need."""

    def __getitem__(self, i):
        return np.array([i * i], dtype=np.int64), i

    def __len__(self):
        return 9


def test_process_workers():
    dl = DataLoader(SquaresDataset(), 4, num_workers=2, worker_type="process")
    try:
        batches = [(x.reshape(-1).tolist(), y.tolist()) for x, y in dl]
    finally:
        dl.close()
    assert batches == [([0, 1, 4, 9], [0, 1, 2, 3]), ([16, 25, 36, 49], [4, 5, 6, 7]), ([64], [8])]


def test_after_batch_applies_to_inputs_only():
    d = TensorDataset(fk.full((4, 2, 2), 255, dtype=fk.uint8), fk.arange(4))
    x, y = next(iter(DataLoader(d, 4, after_batch=Pipeline([IntToFloat(), AddChannel()]))))
    assert x.shape == (4, 1, 2, 2) and x.dtype == fk.float32 and x.max().item() == 1.0 and y.dtype == fk.int64


def test_dataloaders_pair():
    dls = DataLoaders.from_dsets(ds(20), ds(6), bs=4, seed=0, vocab=["a", "b"])
    assert dls.train.shuffle and not dls.valid.shuffle and dls.train.drop_last
    assert len(dls.train) == 5 and len(dls.valid) == 2 and dls.vocab == ["a", "b"]
    assert dls[0] is dls.train and dls[1] is dls.valid and dls.train_ds is dls.train.dataset
    assert dls.one_batch()[0].shape == (4,)


def test_random_split():
    a, b = random_split(ds(10), [7, 3], seed=0)
    ia, ib = [a[i][1].item() for i in range(len(a))], [b[i][1].item() for i in range(len(b))]
    assert len(a) == 7 and len(b) == 3 and sorted(ia + ib) == list(range(10))
    a2, _ = random_split(ds(10), [7, 3], seed=0)
    assert [a2[i][1].item() for i in range(7)] == ia
    parts = random_split(ds(10), [0.5, 0.3, 0.2], seed=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    with pytest.raises(ValueError):
        random_split(ds(10), [3, 3])
    x, y = next(iter(DataLoader(a, 7)))  # a Subset of a TensorDataset still batches in one fetch
    assert y.tolist() == ia


def test_splitters():
    items = list(range(100))
    t, v = RandomSplitter(0.2, seed=42)(items)
    assert len(v) == 20 and len(t) == 80 and sorted(t + v) == items
    assert RandomSplitter(0.2, seed=42)(items) == (t, v) and RandomSplitter(0.2, seed=1)(items) != (t, v)
    assert EndSplitter(0.25)(list(range(8))) == ([0, 1, 2, 3, 4, 5], [6, 7])
    assert EndSplitter(0.25, valid_last=False)(list(range(8))) == ([2, 3, 4, 5, 6, 7], [0, 1])
    assert IndexSplitter([1, 3])(list(range(5))) == ([0, 2, 4], [1, 3])
    paths = ["d/train/cat/1.jpg", "d/valid/cat/2.jpg", "d/train/dog/3.jpg", "d/val/dog/4.jpg", "d/test/x/5.jpg"]
    assert GrandparentSplitter()(paths) == ([0, 2], [1, 3])


def test_transforms_round_trip_through_json():
    import json

    p = Pipeline([IntToFloat(), Normalize([0.5], [0.25]), AddChannel(), Flatten(), T.Resize(32), T.OpenImage("L")])
    q = Pipeline.from_list(json.loads(json.dumps(p.to_list())))
    assert [t.to_dict() for t in q.tfms] == p.to_list()
    x = fk.full((2, 1, 2), 255, dtype=fk.uint8)
    np.testing.assert_allclose(Pipeline(q.tfms[:2])(x).numpy(), np.full((2, 1, 2), 2.0))
    with pytest.raises(ValueError, match="unknown transform"):
        T.from_dict({"name": "Nope"})


def test_mnist_sample_api_unchanged():
    s = fk.data.mnist_sample()
    assert s.train_x.shape == (12396, 28, 28) and s.train_x.dtype == fk.uint8
    assert s.train_y.dtype == fk.int64 and s.vocab == ("3", "7")
    assert isinstance(fk.data.read_idx, type(test_mnist_sample_api_unchanged))


@has_mnist
def test_mnist_from_local_folder_and_env(monkeypatch):
    d = fk.data.mnist(DATA)
    assert d.train_x.shape == (60000, 28, 28) and d.valid_y.shape == (10000,) and d.vocab[3] == "3"
    assert d.valid_y[:5].tolist() == [7, 2, 1, 0, 4]
    monkeypatch.setenv("FASTKERN_DATA", str(DATA))
    assert fk.data.mnist().train_y[:3].tolist() == d.train_y[:3].tolist()
    monkeypatch.setenv("FASTKERN_DATA", str(DATA / "nowhere"))
    with pytest.raises(FileNotFoundError):
        fk.data.mnist()


@has_mnist
def test_download_verifies_checksums(tmp_path, monkeypatch):
    """A file:// mirror stands in for the network; a corrupt mirror file is refused."""
    monkeypatch.delenv("FASTKERN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in MNIST_FILES:
        shutil.copy(DATA / "mnist" / f, bad / f)
    with open(bad / "t10k-labels-idx1-ubyte.gz", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01")
    with pytest.raises(OSError, match="md5"):
        fk.data.mnist(mirrors=[bad.as_uri() + "/"])
    cached = tmp_path / "cache" / "fastkern" / "mnist"
    assert not (cached / "t10k-labels-idx1-ubyte.gz").exists()  # nothing unverified lands in the cache
    good = (DATA / "mnist").as_uri() + "/"
    d = fk.data.mnist(mirrors=[(tmp_path / "missing").as_uri() + "/", good])  # falls through to the next mirror
    assert d.train_x.shape == (60000, 28, 28)
    assert (
        hashlib.md5((cached / "t10k-labels-idx1-ubyte.gz").read_bytes()).hexdigest()
        == "ec29112dd5afa0611ce80d1b7f02629c"
    )
    assert not any(p.name.endswith(".tmp") for p in cached.iterdir())
    with pytest.raises(FileNotFoundError):
        fk.data.fashion_mnist(download=False)


def make_image_folder(root, split=True):
    from PIL import Image

    rng = np.random.default_rng(0)
    for part in ["train", "valid"] if split else [""]:
        for label, value in (("cat", 40), ("dog", 200)):
            d = Path(root) / part / label
            d.mkdir(parents=True)
            for i in range(3):
                arr = np.clip(rng.normal(value, 10, (20, 30, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    (Path(root) / "notes.txt").write_text("not an image")


def test_image_folder_loaders(tmp_path):
    make_image_folder(tmp_path)
    dls = fk.data.image_folder_dls(tmp_path, size=16, bs=2, num_workers=2)
    assert dls.vocab == ["cat", "dog"] and len(dls.train_ds) == 6 and len(dls.valid_ds) == 6
    x, y = next(iter(dls.valid))
    assert x.shape == (2, 3, 16, 16) and x.dtype == fk.float32 and y.tolist() == [0, 0]
    item, label = dls.train_ds[5]
    assert item.shape == (3, 16, 16) and item.dtype == np.uint8 and label == 1
    # no train/valid folders: a seeded random split of everything
    flat = tmp_path / "flat"
    make_image_folder(flat, split=False)
    dls2 = fk.data.image_folder_dls(flat, size=8, valid_pct=0.5, seed=0, num_workers=0)
    assert len(dls2.train_ds) == 3 and len(dls2.valid_ds) == 3


def test_dataloader_refuses_bad_arguments_as_pytorch():
    dataset = TensorDataset(fk.arange(10))
    for bs in (2.5, True, 0, -1, None, "4"):
        with pytest.raises(ValueError, match=f"batch_size should be a positive integer value, but got batch_size={bs}"):
            DataLoader(dataset, batch_size=bs)
    with pytest.raises(ValueError, match="drop_last should be a boolean value, but got drop_last=1"):
        DataLoader(dataset, 2, drop_last=1)
    for nw in (-1, 1.5, True):
        with pytest.raises(ValueError, match="num_workers option should be a non-negative integer"):
            DataLoader(dataset, 2, num_workers=nw)
    with pytest.raises(ValueError, match="prefetch_factor option should be a non-negative integer"):
        DataLoader(dataset, 2, num_workers=1, prefetch_factor=-1)
    assert len(DataLoader(dataset, 3, num_workers=1, prefetch_factor=None)) == 4
