"""Image folders: ``root/<label>/<image>`` (optionally under train/ and valid/ or val/)."""

from pathlib import Path

import numpy as np

from .core import DataLoaders, Dataset, Subset
from .splitters import GrandparentSplitter, RandomSplitter
from .transforms import IntToFloat, Normalize, OpenImage, Pipeline, Resize, ToArray

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def get_image_files(path, recurse=True):
    """Image files under ``path`` (by extension), sorted so that the order is reproducible."""
    path = Path(path)
    files = path.rglob("*") if recurse else path.glob("*")
    return sorted(p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


class ImageFolder(Dataset):
    """Items are (uint8 array (C, H, W), label index); labels are parent folder names."""

    def __init__(self, files, size=64, vocab=None, mode="RGB"):
        self.files = [Path(f) for f in files]
        labels = [f.parent.name for f in self.files]
        self.vocab = list(vocab) if vocab is not None else sorted(set(labels))
        index = {v: i for i, v in enumerate(self.vocab)}
        self.labels = np.array([index[lbl] for lbl in labels], dtype=np.int64)
        self.item_tfms = Pipeline([OpenImage(mode, draft_size=size), Resize(size), ToArray()])

    def __getitem__(self, i):
        return self.item_tfms(self.files[i]), int(self.labels[i])

    def __len__(self):
        return len(self.files)


def image_folder_dls(path, size=64, bs=32, valid_pct=0.2, seed=42, num_workers=2, normalize=True, **kwargs):
    """DataLoaders for an image folder, split by train/valid (or val) folders when present,
    else at random. Decoding runs in ``num_workers`` threads (Pillow releases the GIL)."""
    path = Path(path)
    files = get_image_files(path)
    if not files:
        raise FileNotFoundError(f"no image files under {path}")
    has_split = (path / "train").is_dir() and any((path / v).is_dir() for v in ("valid", "val"))
    train_idx, valid_idx = (GrandparentSplitter() if has_split else RandomSplitter(valid_pct, seed))(files)
    ds = ImageFolder(files, size)
    tfms = [IntToFloat()] + ([Normalize.imagenet()] if normalize else [])
    return DataLoaders.from_dsets(
        Subset(ds, train_idx),
        Subset(ds, valid_idx),
        bs=bs,
        seed=seed,
        after_batch=Pipeline(tfms),
        num_workers=num_workers,
        vocab=ds.vocab,
        item_tfms=ds.item_tfms,
        path=path,
        **kwargs,
    )
