"""Image data with fastai's names: ImageDataLoaders (from_folder, from_name_func, from_name_re, ...),
a minimal DataBlock for (ImageBlock, CategoryBlock), show_batch, and the older image_folder_dls.

Images are decoded by Pillow in the loader's worker threads (Pillow releases the GIL), go through
the item transforms as PIL images (Resize, RandomResizedCrop) and reach the batch as uint8
(C, H, W); the batch transforms (IntToFloat first, then e.g. aug_transforms and Normalize) run on
the batch on its device.
"""

import math
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .core import DataLoaders, Dataset, Subset
from .splitters import GrandparentSplitter, RandomSplitter
from .transforms import IntToFloat, Normalize, OpenImage, Pipeline, Resize, ToArray, UnreadableImageError, _hw, call_tfm

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


def get_image_files(path, recurse=True, folders=None):
    """Image files under ``path`` (by extension), sorted so that the order is reproducible;
    with ``folders``, only those under these subfolders of ``path``. As fastai's get_files, hidden
    files and folders are skipped (``.fastkern-trash``, where ``fastkern clean`` puts deletions)."""
    path = Path(path)
    if folders is not None:
        return sorted(f for d in folders for f in get_image_files(path / d, recurse))
    files = path.rglob("*") if recurse else path.glob("*")
    return sorted(
        p
        for p in files
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(s.startswith(".") for s in p.relative_to(path).parts)
        and p.is_file()
    )


def parent_label(o):
    """The name of the folder holding ``o`` (fastai's labeller for class-per-folder data)."""
    return Path(o).parent.name


class PILImage:
    """fastai's ``PILImage.create``: a path, bytes, array or PIL image as an RGB PIL image."""

    mode = "RGB"

    @classmethod
    def create(cls, fn):
        import io

        from PIL import Image

        if isinstance(fn, (bytes, bytearray)):
            fn = io.BytesIO(fn)
        elif isinstance(fn, np.ndarray):
            fn = Image.fromarray(fn)
        return OpenImage(cls.mode)(fn)


class PILImageBW(PILImage):
    mode = "L"


class _Paths(list):
    """A list with fastcore L's ``map``, as lesson 1's ``failed.map(Path.unlink)`` uses it."""

    def map(self, f):
        return _Paths(f(o) for o in self)


def verify_images(fnames):
    """The files that Pillow cannot decode (each decoded at a small draft size, so it is quick)."""
    from PIL import Image

    bad = _Paths()
    for f in fnames:
        try:
            with Image.open(f) as im:
                im.draft(im.mode, (32, 32))
                im.load()
        except Exception:  # any failure means the file is no use as an image
            bad.append(Path(f))
    return bad


def _openable(files):
    """The files whose header Pillow reads (cheap: the pixels are not decoded), warning once
    with the names of the others."""
    from PIL import Image

    ok, bad = [], []
    for f in files:
        try:
            with Image.open(f):
                ok.append(True)
        except Exception:
            ok.append(False)
            bad.append(str(f))
    if bad:
        warnings.warn(f"skipping {len(bad)} file(s) that Pillow cannot open: {', '.join(bad)}", stacklevel=3)
    return ok


class ImageDataset(Dataset):
    """Items (uint8 array (C, H, W), label index) of image files through ``item_tfms`` on split
    ``split_idx`` (0: training, random transforms draw; 1: validation). A file that fails to decode
    (header fine, data not) is reported once and replaced by the next decodable one, so that a
    batch never fails for one bad file."""

    def __init__(self, files, labels, vocab, item_tfms, split_idx=None):
        self.items = self.files = [Path(f) for f in files]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.vocab, self.item_tfms, self.split_idx = vocab, item_tfms, split_idx
        self._bad = set()

    def __getitem__(self, i):
        for k in range(len(self)):
            j = (i + k) % len(self)
            try:
                return call_tfm(self.item_tfms, self.files[j], self.split_idx), int(self.labels[j])
            except UnreadableImageError as e:
                if j not in self._bad:
                    self._bad.add(j)
                    warnings.warn(f"{e}; using the next image in its place", stacklevel=2)
        raise UnreadableImageError(f"none of the {len(self)} images decodes")

    def __len__(self):
        return len(self.files)


def _py(v):
    return v.item() if isinstance(v, np.generic) else v  # numpy labels as JSON-able Python values


def _sorted_tfms(tfms):
    """None, one transform or a list, as a list in fastai's order (sorted is stable: ties keep theirs)."""
    tfms = [] if tfms is None else list(tfms) if isinstance(tfms, (list, tuple)) else [tfms]
    return sorted(tfms, key=lambda t: getattr(t, "order", 0))


class ImageDataLoaders(DataLoaders):
    """fastai's ImageDataLoaders: image files and their labels to training and validation loaders.

    Keyword arguments of every constructor, as fastai's: ``bs`` (64), ``val_bs``, ``shuffle``,
    ``device``, ``num_workers`` (decoding threads; default: the CPUs, at most 8), plus DataLoader's
    ``pin_memory``, ``worker_type``, ``drop_last``. ``item_tfms`` work on PIL images (Resize,
    RandomResizedCrop); ``batch_tfms`` on float batches in [0, 1] (aug_transforms, Normalize), after
    an IntToFloat that every image loader starts its batch transforms with."""

    @classmethod
    def from_items(
        cls,
        path,
        files,
        labels,
        splitter,
        vocab=None,
        item_tfms=None,
        batch_tfms=None,
        bs=64,
        val_bs=None,
        shuffle=True,
        device=None,
        num_workers=None,
        mode="RGB",
        **kwargs,
    ):
        """The common constructor: ``labels[i]`` is the label of ``files[i]``; ``splitter(files)``
        gives (train indices, valid indices)."""
        files, labels = [Path(f) for f in files], [_py(v) for v in labels]
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} files but {len(labels)} labels")
        ok = _openable(files)
        files, labels = [f for f, k in zip(files, ok) if k], [v for v, k in zip(labels, ok) if k]
        if not files:
            raise FileNotFoundError(f"no readable image files under {path}")
        vocab = list(vocab) if vocab is not None else sorted(set(labels))
        index = {v: i for i, v in enumerate(vocab)}
        missing = sorted({str(v) for v in labels if v not in index})
        if missing:
            raise ValueError(f"labels not in the vocab: {missing}")
        y = np.array([index[v] for v in labels], dtype=np.int64)
        tfms = _sorted_tfms(item_tfms)
        # a first step that only shrinks to a fixed size lets JPEGs decode at 1/2..1/8 scale: far less work
        draft = max(_hw(tfms[0].args["size"])) if tfms and type(tfms[0]) is Resize else None
        item_pipe = Pipeline([OpenImage(mode, draft_size=draft), *tfms, ToArray()])
        batch_tfms = _sorted_tfms(batch_tfms)
        if not any(isinstance(t, IntToFloat) for t in batch_tfms):  # as fastai's ImageBlock, which adds it
            batch_tfms = _sorted_tfms([IntToFloat(), *batch_tfms])
        after_batch = Pipeline(batch_tfms)
        train_idx, valid_idx = splitter(files)
        dsets = [
            ImageDataset([files[i] for i in idx], y[list(idx)], vocab, item_pipe, split_idx=s)
            for s, idx in enumerate((train_idx, valid_idx))
        ]
        if num_workers is None:
            num_workers = min(8, os.cpu_count() or 1)
        return cls.from_dsets(
            *dsets,
            bs=bs,
            val_bs=val_bs,
            shuffle=shuffle,
            device=device,
            num_workers=num_workers,
            after_batch=after_batch,
            vocab=vocab,
            item_tfms=item_pipe,
            path=Path(path),
            **kwargs,
        )

    @classmethod
    def from_folder(
        cls,
        path,
        train="train",
        valid="valid",
        valid_pct=None,
        seed=None,
        vocab=None,
        item_tfms=None,
        batch_tfms=None,
        **kwargs,
    ):
        """One class per folder ``path/<train or valid>/<label>/``: split by the ``train`` and ``valid``
        folders (``valid='valid'`` also finds 'val'), or, given ``valid_pct``, at random (seeded by
        ``seed``) over all images under ``path``. Without such folders nor valid_pct, a random 20%."""
        path = Path(path)
        if valid == "valid" and not (path / valid).is_dir() and (path / "val").is_dir():
            valid = "val"
        if valid_pct is None and not ((path / train).is_dir() and (path / valid).is_dir()):
            warnings.warn(f"no {train}/ and {valid}/ folders under {path}: 20% of the images at random for validation")
            valid_pct = 0.2
        if valid_pct is None:
            files, splitter = get_image_files(path, folders=[train, valid]), GrandparentSplitter(train, valid)
        else:
            files, splitter = get_image_files(path), RandomSplitter(valid_pct, seed)
        labels = [parent_label(f) for f in files]
        return cls.from_items(path, files, labels, splitter, vocab, item_tfms, batch_tfms, **kwargs)

    @classmethod
    def from_path_func(
        cls, path, fnames, label_func, valid_pct=0.2, seed=None, item_tfms=None, batch_tfms=None, **kwargs
    ):
        """Labels ``label_func(file path)``; a random ``valid_pct`` for validation."""
        fnames = [Path(f) for f in fnames]
        labels = [label_func(f) for f in fnames]
        splitter = RandomSplitter(valid_pct, seed)
        return cls.from_items(path, fnames, labels, splitter, item_tfms=item_tfms, batch_tfms=batch_tfms, **kwargs)

    @classmethod
    def from_name_func(
        cls, path, fnames, label_func, valid_pct=0.2, seed=None, item_tfms=None, batch_tfms=None, **kwargs
    ):
        """Labels ``label_func(file name)`` (fastbook chapter 1: ``is_cat``)."""
        return cls.from_path_func(
            path, fnames, lambda f: label_func(f.name), valid_pct, seed, item_tfms, batch_tfms, **kwargs
        )

    @classmethod
    def from_path_re(cls, path, fnames, pat, **kwargs):
        """Labels: the first group of the regular expression ``pat`` searched in the file's path."""
        return cls.from_path_func(path, fnames, _regex_labeller(pat, lambda f: f.as_posix()), **kwargs)

    @classmethod
    def from_name_re(cls, path, fnames, pat, **kwargs):
        """Labels: the first group of ``pat`` searched in the file's name (e.g. pets' ``r'^(.*)_\\d+.jpg$'``)."""
        return cls.from_path_func(path, fnames, _regex_labeller(pat, lambda f: f.name), **kwargs)

    @classmethod
    def from_lists(cls, path, fnames, labels, valid_pct=0.2, seed=None, item_tfms=None, batch_tfms=None, **kwargs):
        """Labels given in a list beside the files."""
        splitter = RandomSplitter(valid_pct, seed)
        return cls.from_items(path, fnames, labels, splitter, item_tfms=item_tfms, batch_tfms=batch_tfms, **kwargs)


def _regex_labeller(pat, part):
    pat = re.compile(pat)

    def label(f):
        m = pat.search(part(f))
        if m is None:
            raise ValueError(f"the pattern {pat.pattern!r} does not match {part(f)!r}")
        return m.group(1)

    return label


# -- a minimal DataBlock ---------------------------------------------------------------
class _Block:
    def __init__(self, kind, **args):
        self.kind, self.args = kind, args


def ImageBlock(cls=PILImage):
    """Images (fastai's block; ``cls=PILImageBW`` for greyscale)."""
    return _Block("image", mode=cls.mode)


def CategoryBlock(vocab=None, sort=True, add_na=False):
    """One label per item, from a vocab (sorted, or the one given)."""
    return _Block("category", vocab=vocab)


class DataBlock:
    """fastai's DataBlock for image classification only: ``blocks=(ImageBlock, CategoryBlock)``.

    ``get_items(source)`` lists the items (default: ``source`` is the list), ``get_x``/``get_y`` map
    an item to its image and label, ``splitter(items)`` gives (train, valid) indices (default: a
    random 20%)."""

    def __init__(
        self,
        blocks=None,
        get_items=None,
        splitter=None,
        get_y=None,
        get_x=None,
        item_tfms=None,
        batch_tfms=None,
        n_inp=None,
    ):
        blocks = [b() if callable(b) else b for b in (blocks or (ImageBlock, CategoryBlock))]
        if [getattr(b, "kind", None) for b in blocks] != ["image", "category"]:
            raise NotImplementedError("fastkern's DataBlock supports blocks=(ImageBlock, CategoryBlock) only")
        self.image, self.category = blocks
        self.get_items, self.splitter, self.get_x, self.get_y = get_items, splitter, get_x, get_y
        self.item_tfms, self.batch_tfms = item_tfms, batch_tfms

    def dataloaders(self, source, path=".", verbose=False, **kwargs):
        items = list(self.get_items(source) if self.get_items is not None else source)
        files = [self.get_x(o) if self.get_x is not None else o for o in items]
        labels = [self.get_y(o) if self.get_y is not None else parent_label(o) for o in items]
        splitter = self.splitter or RandomSplitter()
        return ImageDataLoaders.from_items(
            path,
            files,
            labels,
            lambda _: splitter(items),
            vocab=self.category.args["vocab"],
            item_tfms=self.item_tfms,
            batch_tfms=self.batch_tfms,
            mode=self.image.args["mode"],
            **kwargs,
        )


# -- showing a batch ---------------------------------------------------------------------
def batch_images(x, after_batch=None):
    """A batch as numpy images in [0, 1] for matplotlib, (N, H, W) grey or (N, H, W, 3): the last
    Normalize of ``after_batch`` undone, else uint8 (or 0-255 float) values scaled down."""
    norms = [t for t in Pipeline(after_batch).tfms if isinstance(t, Normalize)]
    if norms:
        x = norms[-1].decode(x)
    elif str(x.dtype).endswith("uint8") or x.float().max().item() > 1.5:
        x = x.float() / 255
    imgs = np.clip(x.float().cpu().numpy(), 0, 1)
    if imgs.ndim == 4:
        imgs = imgs.transpose(0, 2, 3, 1)
        imgs = imgs[..., 0] if imgs.shape[-1] == 1 else imgs
    return imgs


def input_images(inputs, after_batch=None):
    """Model inputs as numpy images for matplotlib (see batch_images); flattened square images,
    (N, H*W), are unflattened first."""
    x = inputs
    if x.ndim == 2 and math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
        side = math.isqrt(x.shape[1])
        x = x.reshape(len(x), 1, side, side)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"can only show images (N, 1 or 3, H, W); the inputs are {list(inputs.shape)}")
    return batch_images(x, after_batch)


def show_images(
    imgs,
    titles=None,
    colors=None,
    nrows=None,
    ncols=None,
    figsize=None,
    suptitle=None,
    fname=None,
    default="images.png",
    fontsize="large",
):
    """Numpy images in [0, 1] (from batch_images) in a grid, fastai's get_grid layout (ncols the
    square root, rounded up), each titled ``titles[k]`` in ``colors[k]``. Shown on an interactive
    matplotlib backend, else (or with ``fname``) written as a PNG (``default``) whose path is returned."""
    from ..learner import _pyplot, _show

    n = len(imgs)
    if ncols is None:
        ncols = math.ceil(n / nrows) if nrows else max(1, math.ceil(math.sqrt(n)))
    nrows = nrows or max(1, math.ceil(n / ncols))
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (3 * ncols, 3 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(imgs[k], cmap="gray" if imgs[k].ndim == 2 else None, vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[k], color=colors[k] if colors else "black", fontsize=fontsize)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return _show(fig, fname, default)


def show_batch(dl, vocab=None, max_n=9, nrows=None, ncols=None, fname=None, figsize=None):
    """Draws the first ``max_n`` images of one batch of ``dl`` in a grid, titled with their labels,
    undoing the Normalize of its batch transforms. On a non-interactive matplotlib backend (or with
    ``fname``) the figure is written as a PNG (default show_batch.png) and its path returned."""
    b = dl.one_batch()
    imgs, y = batch_images(b[0][:max_n], dl.after_batch), (b[1][:max_n].tolist() if len(b) > 1 else None)
    titles = None
    if y is not None:
        titles = [str(vocab[v]) if vocab is not None and isinstance(v, int) else str(v) for v in y]
    return show_images(imgs, titles, None, nrows, ncols, figsize, fname=fname, default="show_batch.png")


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
