"""A small ants/bees dataset and a tiny exported classifier for the app tests (test_apps*.py).

The photos are a few of ../shared/data/hymenoptera_data, shrunk; where that folder is missing,
drawn images stand in (reddish 'ants', bluish 'bees'), so that the HTTP tests run anywhere."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HYMENOPTERA = Path(os.environ.get("FASTKERN_DATA") or ROOT.parent / "shared" / "data") / "hymenoptera_data"
CLASSES = ("ants", "bees")
SPLITS = {"train": 6, "val": 3}  # photos per class


def make_dataset(dst, size=64):
    """dst/<train|val>/<ants|bees>/*.jpg; returns dst."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in SPLITS.items():
        for c, cls in enumerate(CLASSES):
            folder = dst / split / cls
            folder.mkdir(parents=True)
            src = sorted((HYMENOPTERA / split / cls).glob("*.jpg"))[:n]
            for i in range(n):
                if len(src) == n:
                    with Image.open(src[i]) as im:
                        img = im.convert("RGB")
                    img.thumbnail((size, size))
                    name = src[i].name
                else:
                    a = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
                    a[..., 0 if c == 0 else 2] += 120
                    img, name = Image.fromarray(a), f"{cls}_{i}.jpg"
                img.save(folder / name, quality=90)
    return dst


def make_model(data, path):
    """A small CNN trained for a few seconds on ``data``, exported to ``path``."""
    import fastkern as fk
    from fastkern.data import ImageDataLoaders, Resize
    from fastkern.models import create_model

    fk.manual_seed(0)
    dls = ImageDataLoaders.from_folder(data, valid="val", item_tfms=Resize(32), bs=4, num_workers=0)
    model = create_model("simple_cnn", n_out=2, in_channels=3, widths=(8, 16))
    learn = fk.Learner(dls, model, loss_func=fk.nn.CrossEntropyLoss(), progress=False)
    learn.fit(2, 1e-2)
    return learn.export(path)


def build(folder):
    """(dataset, exported model) under folder: what the app tests share, made once per module."""
    data = make_dataset(folder / "pristine")
    return data, make_model(data, folder / "model.safetensors")


def snapshot(root):
    """{relative path: sha256} of every file under root, the trash included."""
    root = Path(root)
    return {
        f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(root.rglob("*"))
        if f.is_file() and "journal" not in f.relative_to(root).parts
    }


def copy_dataset(src, dst):
    shutil.copytree(src, dst)
    return dst
