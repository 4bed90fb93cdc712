"""Transforms that can be written to JSON, so an exported model carries its own preprocessing.

Each transform is a small callable class whose constructor arguments are its whole
state; ``to_dict``/``from_dict`` round-trip it by class name. Item transforms turn a
raw item (a path, a PIL image, an array) into what the dataset yields; batch
transforms (a DataLoader's ``after_batch``) work on collated input tensors.
"""

import numpy as np

_REGISTRY = {}


class Transform:
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

    def __call__(self, x):
        for t in self.tfms:
            x = t(x)
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


def from_dict(d):
    d = dict(d)
    name = d.pop("name")
    if name not in _REGISTRY or name == "Pipeline":
        raise ValueError(f"unknown transform {name!r} (known: {sorted(_REGISTRY)})")
    return _REGISTRY[name](**d)


# -- batch transforms (tensors) ------------------------------------------------
class IntToFloat(Transform):
    """uint8 pixels to float32 in [0, 1]."""

    def __init__(self, div=255.0):
        super().__init__(div=div)

    def __call__(self, x):
        return x.float() / self.args["div"]


class Normalize(Transform):
    """(x - mean) / std per channel (dim 1 of a batch)."""

    def __init__(self, mean, std):
        super().__init__(mean=list(map(float, mean)), std=list(map(float, std)))
        self._stats = {}

    def __call__(self, x):
        from .._creation import tensor

        # the stats as tensors on x's device, made once: a copy to a GPU per batch would wait
        key = (str(x.device), x.ndim)
        if key not in self._stats:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            self._stats[key] = tuple(tensor(self.args[k], device=x.device).reshape(shape) for k in ("mean", "std"))
        mean, std = self._stats[key]
        return (x - mean) / std

    @classmethod
    def imagenet(cls):
        return cls([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


class AddChannel(Transform):
    """(N, H, W) greyscale batches to (N, 1, H, W) for conv nets."""

    def __call__(self, x):
        return x.unsqueeze(1)


class Flatten(Transform):
    """(N, ...) to (N, features) for linear models (fastbook's ``view(-1, 28*28)``)."""

    def __call__(self, x):
        return x.reshape(x.shape[0], -1)


# -- item transforms (raw items) -----------------------------------------------
class OpenImage(Transform):
    """A path (or PIL image) to a PIL image in ``mode`` ('RGB' or 'L')."""

    def __init__(self, mode="RGB", draft_size=None):
        super().__init__(mode=mode, draft_size=draft_size)

    def __call__(self, x):
        from PIL import Image

        img = x if isinstance(x, Image.Image) else Image.open(x)
        if self.args["draft_size"] and img.format == "JPEG":
            # JPEG can decode at 1/2, 1/4, 1/8 scale: much faster when we shrink anyway
            img.draft(self.args["mode"], (self.args["draft_size"],) * 2)
        return img.convert(self.args["mode"])


class Resize(Transform):
    """Scales the shorter side to ``size`` and centre-crops a square (fastai's Resize, method crop)."""

    def __init__(self, size):
        super().__init__(size=size)

    def __call__(self, img):
        from PIL import Image

        s = self.args["size"]
        w, h = img.size
        k = s / min(w, h)
        nw, nh = max(s, round(w * k)), max(s, round(h * k))
        img = img.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - s) // 2, (nh - s) // 2
        return img.crop((left, top, left + s, top + s))


class ToArray(Transform):
    """A PIL image or array to uint8 numpy (C, H, W); greyscale (H, W) stays 2-D."""

    def __call__(self, img):
        a = np.asarray(img, dtype=np.uint8)
        return np.ascontiguousarray(a.transpose(2, 0, 1)) if a.ndim == 3 else a
