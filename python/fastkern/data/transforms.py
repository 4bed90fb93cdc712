"""Transforms that can be written to JSON, so an exported model carries its own preprocessing.

Each transform is a small callable class whose constructor arguments are its whole
state; ``to_dict``/``from_dict`` round-trip it by class name. Item transforms turn a
raw item (a path, a PIL image, an array) into what the dataset yields; batch
transforms (a DataLoader's ``after_batch``) work on collated input tensors.

Random transforms (``RandTransform``) take fastai's ``split_idx``: 0 on the training set,
where they draw their randomness, 1 on the validation set and None outside a loader
(``Learner.predict``), where they are deterministic. Loaders and pipelines pass it on.
"""

import contextlib
import math
import threading

import numpy as np

_REGISTRY = {}
_local = threading.local()


@contextlib.contextmanager
def item_seed(seed):
    """Random transforms called in this block, on this thread, draw from a generator seeded with ``seed``.

    A loader gives each batch a seed drawn in order on the main thread, so that batches decoded
    by worker threads, in whatever order they run, come out the same for the same seed."""
    prev = getattr(_local, "rng", None)
    _local.rng = None if seed is None else np.random.default_rng(seed)
    try:
        yield
    finally:
        _local.rng = prev


def random_state():
    """The numpy Generator a random transform draws from: the current batch's inside a loader's
    fetch, else a fresh one seeded from fastkern's global generator (so fk.manual_seed governs it)."""
    rng = getattr(_local, "rng", None)
    if rng is None:
        from .._creation import randint

        rng = np.random.default_rng(int(randint(0, 2**62, (1,)).item()))
    return rng


class Transform:
    order = 0  # where ImageDataLoaders places it among the item or batch transforms (fastai's orders)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, **args):
        self.args = args

    def __call__(self, x):
        raise NotImplementedError

    def to_dict(self):
        return {"name": type(self).__name__, **self.args}

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


class Pipeline(Transform):
    """Applies transforms in order; None or [] is the identity."""

    def __init__(self, tfms=None):
        if isinstance(tfms, Pipeline):
            tfms = tfms.tfms
        elif tfms is None:
            tfms = []
        elif not isinstance(tfms, (list, tuple)):
            tfms = [tfms]
        self.tfms = list(tfms)
        self.args = {}

    def __call__(self, x, split_idx=None):
        for t in self.tfms:
            x = call_tfm(t, x, split_idx)
        return x

    def to_list(self):
        return [t.to_dict() for t in self.tfms]

    @classmethod
    def from_list(cls, items):
        return cls([from_dict(d) for d in items or []])

    def __len__(self):
        return len(self.tfms)

    def __repr__(self):
        return f"Pipeline({self.tfms!r})"


class RandTransform(Transform):
    """A transform that is random on the training set (``split_idx`` 0) and deterministic elsewhere."""

    def __call__(self, x, split_idx=None):
        raise NotImplementedError


def call_tfm(t, x, split_idx=None):
    """``t(x)``, telling the split to the transforms that depend on it."""
    return t(x, split_idx=split_idx) if isinstance(t, (RandTransform, Pipeline)) else t(x)


def from_dict(d):
    d = dict(d)
    name = d.pop("name")
    if name not in _REGISTRY or name == "Pipeline":
        raise ValueError(f"unknown transform {name!r} (known: {sorted(_REGISTRY)})")
    return _REGISTRY[name](**d)


# -- batch transforms (tensors) ------------------------------------------------
class IntToFloat(Transform):
    """uint8 pixels to float32 in [0, 1]."""

    order = 10

    def __init__(self, div=255.0):
        super().__init__(div=div)

    def __call__(self, x):
        return x.float() / self.args["div"]


class Normalize(Transform):
    """(x - mean) / std per channel (dim 1 of a batch)."""

    order = 99

    def __init__(self, mean, std):
        super().__init__(mean=list(map(float, mean)), std=list(map(float, std)))
        self._stats = {}

    def _on(self, x):
        from .._creation import tensor

        # the stats as tensors on x's device, made once: a copy to a GPU per batch would wait
        key = (str(x.device), x.ndim)
        if key not in self._stats:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            self._stats[key] = tuple(tensor(self.args[k], device=x.device).reshape(shape) for k in ("mean", "std"))
        return self._stats[key]

    def __call__(self, x):
        mean, std = self._on(x)
        return (x - mean) / std

    def decode(self, x):
        """The inverse, to show a batch."""
        mean, std = self._on(x)
        return x * std + mean

    @classmethod
    def from_stats(cls, mean, std, dim=1, ndim=4, cuda=True):
        """fastai's constructor; the statistics always apply along dim 1 of a batch, on the batch's device."""
        return cls(mean, std)

    @classmethod
    def imagenet(cls):
        return cls(*imagenet_stats)


imagenet_stats = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


class AddChannel(Transform):
    """(N, H, W) greyscale batches to (N, 1, H, W) for conv nets."""

    def __call__(self, x):
        return x.unsqueeze(1)


class Flatten(Transform):
    """(N, ...) to (N, features) for linear models (fastbook's ``view(-1, 28*28)``)."""

    def __call__(self, x):
        return x.reshape(x.shape[0], -1)


# -- item transforms (raw items) -----------------------------------------------
class UnreadableImageError(OSError):
    """A file that Pillow cannot decode."""


class OpenImage(Transform):
    """A path (or PIL image) to a PIL image in ``mode`` ('RGB' or 'L')."""

    def __init__(self, mode="RGB", draft_size=None):
        super().__init__(mode=mode, draft_size=draft_size)

    def __call__(self, x):
        from PIL import Image

        if isinstance(x, Image.Image):
            return x.convert(self.args["mode"])
        try:
            with Image.open(x) as img:
                if self.args["draft_size"] and img.format == "JPEG":
                    # JPEG can decode at 1/2, 1/4, 1/8 scale: much faster when we shrink anyway
                    img.draft(self.args["mode"], (self.args["draft_size"],) * 2)
                return img.convert(self.args["mode"])  # decodes: a truncated file fails here, not later
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise UnreadableImageError(f"cannot decode {x}: {e}") from e


_PAD_MODES = {"zeros": "constant", "border": "edge", "reflection": "reflect"}  # ours -> numpy's


class ResizeMethod:
    """fastai's names for Resize's methods (plain strings, so they go to JSON as they are)."""

    Squish, Crop, Pad = "squish", "crop", "pad"


class PadMode:
    """fastai's names for the padding modes."""

    Zeros, Border, Reflection = "zeros", "border", "reflection"


def _hw(size):
    """An int or (h, w) (a list after JSON) as (h, w)."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _size_arg(size):
    return size if isinstance(size, int) else [int(s) for s in size]


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def crop_pad(img, box, pad_mode="reflection"):
    """The region ``box`` = (left, top, width, height) of a PIL image. Where the region reaches past
    the image it is padded: 'zeros', 'border' (the edge pixel repeated) or 'reflection' (mirrored
    about the edge pixel, which is not repeated: numpy's 'reflect')."""
    from PIL import Image

    left, top, cw, ch = box
    w, h = img.size
    inside = (max(left, 0), max(top, 0), min(left + cw, w), min(top + ch, h))
    if inside != (0, 0, w, h):
        img = img.crop(inside)
    pads = ((max(-top, 0), max(top + ch - h, 0)), (max(-left, 0), max(left + cw - w, 0)))
    if any(pads[0] + pads[1]):
        a = np.asarray(img)
        a = np.pad(a, pads + ((0, 0),) * (a.ndim - 2), mode=_PAD_MODES[pad_mode])
        img = Image.fromarray(a)
    return img


class Resize(RandTransform):
    """fastai's Resize of a PIL image to ``size`` (an int or (h, w)).

    method 'squish' scales the whole image to the size; 'crop' takes the largest region with the
    size's aspect ratio and scales it; 'pad' takes the smallest such region holding the whole image,
    padded with ``pad_mode`` (see crop_pad). The region is placed at random on the training set and
    in the centre elsewhere."""

    order = 1

    def __init__(self, size, method="crop", pad_mode="reflection"):
        _check_choice("method", method, ("crop", "pad", "squish"))
        _check_choice("pad_mode", pad_mode, _PAD_MODES)
        super().__init__(size=_size_arg(size), method=method, pad_mode=pad_mode)

    def box(self, w, h, split_idx=None):
        """The region (left, top, width, height) of a w x h image that becomes the output."""
        th, tw = _hw(self.args["size"])
        if self.args["method"] == "squish":
            return 0, 0, w, h
        k = (min if self.args["method"] == "crop" else max)(w / tw, h / th)
        cw, ch = round(k * tw), round(k * th)  # round, not int: 374.99999 must stay 375
        fx, fy = random_state().random(2) if split_idx == 0 else (0.5, 0.5)
        return int(fx * (w - cw)), int(fy * (h - ch)), cw, ch

    def __call__(self, img, split_idx=None):
        from PIL import Image

        th, tw = _hw(self.args["size"])
        img = crop_pad(img, self.box(*img.size, split_idx), self.args["pad_mode"])
        return img if img.size == (tw, th) else img.resize((tw, th), Image.BILINEAR)


class RandomResizedCrop(RandTransform):
    """fastai's RandomResizedCrop of a PIL image to ``size`` (an int or (h, w)).

    On the training set: a random region of ``min_scale``..``max_scale`` of the image's area with a
    width/height ratio drawn log-uniformly in ``ratio``, scaled to the size. Elsewhere: the whole
    image scaled to the size plus ``val_xtra`` of it (rounded up to 8 pixels), then centre-cropped."""

    order = 1

    def __init__(self, size, min_scale=0.08, ratio=(3 / 4, 4 / 3), val_xtra=0.14, max_scale=1.0):
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
        super().__init__(
            size=_size_arg(size), min_scale=min_scale, ratio=list(ratio), val_xtra=val_xtra, max_scale=max_scale
        )

    def box(self, w, h, rng=None):
        """A training region (left, top, width, height) of a w x h image."""
        rng = rng or random_state()
        lo, hi = (math.log(r) for r in self.args["ratio"])
        for _ in range(10):
            area = rng.uniform(self.args["min_scale"], self.args["max_scale"]) * w * h
            r = math.exp(rng.uniform(lo, hi))
            cw, ch = round(math.sqrt(area * r)), round(math.sqrt(area / r))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(w - cw + 1)), int(rng.integers(h - ch + 1)), cw, ch
        # ten misses (a very long or tall image): the centre, cut to the nearest allowed ratio
        r = min(max(w / h, self.args["ratio"][0]), self.args["ratio"][1])
        cw, ch = min(w, round(h * r)), min(h, round(w / r))
        return (w - cw) // 2, (h - ch) // 2, cw, ch

    def __call__(self, img, split_idx=None):
        from PIL import Image

        th, tw = _hw(self.args["size"])
        if split_idx == 0:
            return img.crop(_ltrb(self.box(*img.size))).resize((tw, th), Image.BILINEAR)
        xtra = math.ceil(max(th, tw) * self.args["val_xtra"] / 8) * 8
        img = img.resize((tw + xtra, th + xtra), Image.BILINEAR)
        return img.crop(_ltrb((xtra // 2, xtra // 2, tw, th)))


def _ltrb(box):
    left, top, w, h = box
    return left, top, left + w, top + h


class ToArray(Transform):
    """A PIL image or array to uint8 numpy (C, H, W); greyscale (H, W) stays 2-D."""

    order = 5

    def __call__(self, img):
        a = np.asarray(img, dtype=np.uint8)
        return np.ascontiguousarray(a.transpose(2, 0, 1)) if a.ndim == 3 else a
