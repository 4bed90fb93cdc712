"""fastai's batch augmentations for images: flips, rotation, zoom and perspective warp resampled
once per batch, and brightness/contrast, all on float (N, C, H, W) batches on their device.

The random parameters (a few numbers per image) are drawn on the host from ``random_state()``
(so fk.manual_seed reproduces them, and every device gets the same ones); the pixel work is
fastkern tensor ops, so it runs wherever the batch is. They augment training batches only
(``split_idx`` 0); validation and inference batches pass through (resized, for a ``size``).
"""

import numpy as np

from .transforms import RandTransform, Transform, _check_choice, _hw, _size_arg, from_dict, random_state

PAD_MODES = ("reflection", "border", "zeros")


# -- resampling ----------------------------------------------------------------
def _pixel_matrices(mats, in_hw, out_hw):
    """Normalised maps (PyTorch's align_corners=True convention: -1 and 1 are the centres of the
    corner pixels) as maps from output pixel (col, row) to source pixel (col, row)."""
    (h, w), (ho, wo) = in_hw, out_hw
    from_norm = np.array([[(w - 1) / 2, 0, (w - 1) / 2], [0, (h - 1) / 2, (h - 1) / 2], [0, 0, 1]])
    to_norm = np.array([[2 / max(wo - 1, 1), 0, -1], [0, 2 / max(ho - 1, 1), -1], [0, 0, 1]])
    p = from_norm @ mats @ to_norm
    # entries a hair from an integer are that integer: identity, flips and quarter turns then land
    # exactly on pixel centres and copy pixels instead of blending them with weight ~1e-16
    r = np.round(p)
    return np.where(np.abs(p - r) < 1e-9, r, p)


def _fold(s, n, pad_mode):
    """Source coordinates outside [0, n-1]: mirrored about the edge pixel centres (numpy's 'reflect':
    -1 reads 1), clamped to the edge ('border'), or left for the weights to zero ('zeros')."""
    if pad_mode == "border":
        return s.clamp(0, n - 1)
    if pad_mode == "reflection":
        if n == 1:
            return s * 0
        t = s.remainder(2 * (n - 1))  # a sign-free phase in [0, 2(n-1))
        return (n - 1) - (t - (n - 1)).abs()
    return s


def resample(x, mats, size=None, pad_mode="reflection"):
    """Samples a float batch (N, C, H, W) bilinearly through per-image 3x3 maps ``mats`` (N, 3, 3),
    taking output coordinates to source coordinates (normalised as affine_grid's with
    align_corners=True; projective: divided by the third coordinate). Output size: ``size``
    (int or (h, w)) or the input's. Equivalent to PyTorch's affine_grid + grid_sample for
    affine maps, with padding modes 'reflection', 'border' and 'zeros'."""
    from .._creation import arange, from_numpy

    _check_choice("pad_mode", pad_mode, PAD_MODES)
    n, c, h, w = x.shape
    ho, wo = (h, w) if size is None else _hw(size)
    p = _pixel_matrices(np.asarray(mats, dtype=np.float64), (h, w), (ho, wo))
    dev = x.device
    pt = from_numpy(p.astype(np.float32)).to(dev)
    col = arange(wo, dtype=x.dtype, device=dev).reshape(1, 1, wo)
    row = arange(ho, dtype=x.dtype, device=dev).reshape(1, ho, 1)

    def coord(r):  # row r of the maps applied to every output pixel: (N, ho, wo)
        return pt[:, r, 0].reshape(n, 1, 1) * col + pt[:, r, 1].reshape(n, 1, 1) * row + pt[:, r, 2].reshape(n, 1, 1)

    sx, sy = coord(0), coord(1)
    if np.any(p[:, 2, :2] != 0):  # a perspective part
        z = coord(2)
        sx, sy = sx / z, sy / z
    sx, sy = _fold(sx, w, pad_mode), _fold(sy, h, pad_mode)
    x0, y0 = sx.floor(), sy.floor()
    fx, fy = sx - x0, sy - y0
    # channels last, so that one gather fetches a pixel's C values together (2-3x faster than per channel)
    pixels = x.permute(0, 2, 3, 1).contiguous().reshape(n * h * w, c)
    start = (arange(n, device=dev) * (h * w)).reshape(n, 1, 1)  # where each image's pixels start
    out = None
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            wgt = wx * wy
            if pad_mode == "zeros":
                wgt = wgt * ((xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)).float()
            # neighbours past the edge have weight 0 (or are zeroed): clamping only keeps the gather in bounds
            idx = start + yi.clamp(0, h - 1).long() * w + xi.clamp(0, w - 1).long()
            # back to (N, C, ho, wo) as a view: the weighting writes it out channels first, which is
            # far quicker than broadcasting over a last dimension of 3
            term = pixels[idx].permute(0, 3, 1, 2) * wgt.unsqueeze(1)
            out = term if out is None else out + term
    return out
    return out


# -- affine and perspective augmentations ---------------------------------------------
def _parts(tfms, kind, owner):
    """The parts of a merged transform, from instances or their dicts (an export's JSON)."""
    parts = [t if isinstance(t, Transform) else from_dict(t) for t in tfms]
    for t in parts:
        if not isinstance(t, kind):
            raise ValueError(f"{owner} cannot merge {type(t).__name__}")
    return parts


def _eye(n):
    return np.tile(np.eye(3), (n, 1, 1))


class AffineCoordTfm(RandTransform):
    """Resamples a training batch once through the composition of the maps of ``tfms`` (Flip,
    Dihedral, Rotate, Zoom, Warp), one random map per image. ``size`` (int or (h, w)): the output
    size (fastai's presizing), ``pad_mode``: what fills the parts that come from outside the image
    ('reflection', as numpy's 'reflect'; 'border'; 'zeros'). Validation and inference batches pass
    through, resized to ``size`` when given."""

    order = 30
    post = False  # a part applied after the affine ones (a perspective warp), as fastai's coord_fs

    def __init__(self, tfms=(), size=None, pad_mode="reflection"):
        _check_choice("pad_mode", pad_mode, PAD_MODES)
        self.parts = _parts(tfms, _AffinePart, "AffineCoordTfm")
        super().__init__(
            tfms=[t.to_dict() for t in self.parts], size=None if size is None else _size_arg(size), pad_mode=pad_mode
        )

    def matrices(self, n, rng, hw):
        """(n, 3, 3): each image's map from output to source coordinates, for (h, w) images."""
        m = _eye(n)
        for t in self.parts:
            m = t.matrix(n, rng, hw) @ m if t.post else m @ t.matrix(n, rng, hw)
        return m

    def valid_matrices(self, n, hw):
        """The maps off the training set: the identity, but for a centre crop (RandomResizedCropGPU)."""
        m = _eye(n)
        for t in self.parts:
            m = m @ t.valid_matrix(n, hw, self.args["size"])
        return m

    def valid_matrix(self, n, hw, size):
        return _eye(n)

    def __call__(self, x, split_idx=None):
        n, hw, size = x.shape[0], tuple(x.shape[-2:]), self.args["size"]
        if split_idx != 0:
            mats = self.valid_matrices(n, hw)
            if (size is None or hw == _hw(size)) and np.array_equal(mats, _eye(n)):
                return x
        else:
            mats = self.matrices(n, random_state(), hw)
        return resample(x, mats, size, self.args["pad_mode"])


class _AffinePart(AffineCoordTfm):
    """One kind of map; used alone it is an AffineCoordTfm of itself."""

    def __init__(self, size=None, pad_mode="reflection", **args):
        _check_choice("pad_mode", pad_mode, PAD_MODES)
        RandTransform.__init__(self, **args, size=None if size is None else _size_arg(size), pad_mode=pad_mode)
        self.parts = [self]

    def _do(self, n, rng):
        """Which images this part changes: each with probability p."""
        return rng.random(n) < self.args["p"]


class Flip(_AffinePart):
    """Mirrors left-right with probability ``p``."""

    def __init__(self, p=0.5, size=None, pad_mode="reflection"):
        super().__init__(size, pad_mode, p=p)

    def matrix(self, n, rng, hw):
        m = _eye(n)
        m[:, 0, 0] = np.where(self._do(n, rng), -1, 1)
        return m


class Dihedral(_AffinePart):
    """With probability ``p``, one of the 8 symmetries of the square (flips and quarter turns) at random."""

    def __init__(self, p=0.5, size=None, pad_mode="reflection"):
        super().__init__(size, pad_mode, p=p)

    def matrix(self, n, rng, hw):
        k = np.where(self._do(n, rng), rng.integers(8, size=n), 0)
        m = _eye(n)
        m[:, 0, 0] = np.where(k & 1, -1, 1)
        m[:, 1, 1] = np.where(k & 2, -1, 1)
        swap = (k & 4) != 0  # transpose: x reads y and y reads x
        m[swap, :2] = m[swap][:, [1, 0]]
        return m


class Rotate(_AffinePart):
    """With probability ``p``, a rotation by an angle uniform in +-``max_deg`` degrees (in normalised
    coordinates; +90 is numpy's rot90, counter-clockwise)."""

    def __init__(self, max_deg=10.0, p=0.5, size=None, pad_mode="reflection"):
        super().__init__(size, pad_mode, max_deg=max_deg, p=p)

    def matrix(self, n, rng, hw):
        deg = rng.uniform(-self.args["max_deg"], self.args["max_deg"], n) * self._do(n, rng)
        return rotation_matrices(deg)


def rotation_matrices(deg):
    t = np.deg2rad(np.asarray(deg, dtype=np.float64))
    m = _eye(len(t))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = np.cos(t), -np.sin(t), np.sin(t), np.cos(t)
    return m


class Zoom(_AffinePart):
    """With probability ``p``, zooms in by a factor uniform in [``min_zoom``, ``max_zoom``] about a random
    point (a factor below 1 zooms out, showing padding)."""

    def __init__(self, min_zoom=1.0, max_zoom=1.1, p=0.5, size=None, pad_mode="reflection"):
        super().__init__(size, pad_mode, min_zoom=min_zoom, max_zoom=max_zoom, p=p)

    def matrix(self, n, rng, hw):
        s = np.where(self._do(n, rng), rng.uniform(self.args["min_zoom"], self.args["max_zoom"], n), 1.0)
        centre = rng.uniform(-1, 1, (2, n))  # the point that stays in place, in normalised coordinates
        m = _eye(n)
        m[:, 0, 0] = m[:, 1, 1] = 1 / s
        m[:, 0, 2], m[:, 1, 2] = (1 - 1 / s) * centre
        return m


class RandomResizedCropGPU(_AffinePart):
    """fastai's presizing crop (``aug_transforms(size=..., min_scale=...)``), merged into the one
    resampling: on the training set a random region of ``min_scale``..``max_scale`` of the area with a
    width/height ratio log-uniform in ``ratio`` (shrunk to fit the image); elsewhere the centre region with
    the output's aspect ratio. The region fills the output (its ``size``, or the container's)."""

    def __init__(self, size=None, min_scale=0.08, ratio=(1.0, 1.0), max_scale=1.0, pad_mode="reflection"):
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"need 0 < min_scale <= max_scale <= 1, got {min_scale}, {max_scale}")
        super().__init__(size, pad_mode, min_scale=min_scale, ratio=list(ratio), max_scale=max_scale)

    @staticmethod
    def _crop(fx, fy, cx, cy):
        """The map onto the region of (fx, fy) of the image's width and height, centred at (cx, cy)."""
        m = _eye(len(fx))
        m[:, 0, 0], m[:, 1, 1], m[:, 0, 2], m[:, 1, 2] = fx, fy, cx, cy
        return m

    def matrix(self, n, rng, hw):
        h, w = hw
        area = rng.uniform(self.args["min_scale"], self.args["max_scale"], n)
        r = np.exp(rng.uniform(*np.log(self.args["ratio"]), n)) * h / w  # as a ratio of the fractions
        fx, fy = np.sqrt(area * r), np.sqrt(area / r)
        over = np.maximum(np.maximum(fx, fy), 1)  # too wide or tall for the image: shrink, keeping the ratio
        fx, fy = fx / over, fy / over
        return self._crop(fx, fy, rng.uniform(fx - 1, 1 - fx), rng.uniform(fy - 1, 1 - fy))

    def valid_matrix(self, n, hw, size):
        h, w = hw
        ho, wo = _hw(self.args["size"] or size or hw)
        k = min(h / ho, w / wo)  # the largest region of the output's shape
        return self._crop(np.full(n, k * wo / w), np.full(n, k * ho / h), np.zeros(n), np.zeros(n))


class Warp(_AffinePart):
    """With probability ``p``, a perspective warp: the image corners move by up to ``magnitude``
    (normalised units) so that the image tilts about a horizontal and a vertical axis."""

    post = True

    def __init__(self, magnitude=0.2, p=0.5, size=None, pad_mode="reflection"):
        super().__init__(size, pad_mode, magnitude=magnitude, p=p)

    def matrix(self, n, rng, hw):
        mag = self.args["magnitude"]
        tilt = rng.uniform(-mag, mag, (2, n)) * self._do(n, rng)
        return perspective_matrices(*tilt)


def perspective_matrices(tx, ty):
    """The projective maps taking each output corner (sx, sy) (each +-1) to the source point
    (sx (1 - tx sy), sy (1 - ty sx)): a tilt of ``tx`` about the horizontal axis, ``ty`` about the vertical."""
    tx, ty = np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)
    n = len(tx)
    a, b = np.zeros((n, 8, 8)), np.zeros((n, 8))
    # each corner gives two linear equations in the 8 unknowns of the map (h22 = 1)
    for k, (sx, sy) in enumerate(((-1, -1), (1, -1), (-1, 1), (1, 1))):
        u, v = sx * (1 - tx * sy), sy * (1 - ty * sx)
        a[:, 2 * k] = np.stack([np.full(n, sx), np.full(n, sy), np.ones(n), *np.zeros((3, n)), -sx * u, -sy * u], 1)
        a[:, 2 * k + 1] = np.stack([*np.zeros((3, n)), np.full(n, sx), np.full(n, sy), np.ones(n), -sx * v, -sy * v], 1)
        b[:, 2 * k], b[:, 2 * k + 1] = u, v
    h = np.linalg.solve(a, b[..., None])[..., 0]
    return np.concatenate([h, np.ones((n, 1))], 1).reshape(n, 3, 3)


# -- lighting --------------------------------------------------------------------
def lighting(x, scale, offset, eps=1e-7):
    """sigmoid(scale * logit(x) + offset) with one scale and offset per image; x in [0, 1]."""
    from .._creation import from_numpy

    shape = (-1,) + (1,) * (x.ndim - 1)
    a, b = (from_numpy(np.asarray(v, dtype=np.float32)).to(x.device).reshape(shape) for v in (scale, offset))
    x = x.clamp(eps, 1 - eps)  # logit is infinite at 0 and 1
    return ((x / (1 - x)).log() * a + b).sigmoid()


class LightingTfm(RandTransform):
    """Brightness and contrast of a training batch in [0, 1], changed as fastai does in logit space:
    each part of ``tfms`` maps logit(x) to a * logit(x) + b per image. Other batches pass through."""

    order = 40

    def __init__(self, tfms=()):
        self.parts = _parts(tfms, _LightingPart, "LightingTfm")
        super().__init__(tfms=[t.to_dict() for t in self.parts])

    def params(self, n, rng):
        """The composed (scale, offset) of each image."""
        a, b = np.ones(n), np.zeros(n)
        for t in self.parts:
            ta, tb = t.affine(n, rng)
            a, b = ta * a, ta * b + tb
        return a, b

    def __call__(self, x, split_idx=None):
        if split_idx != 0:
            return x
        a, b = self.params(x.shape[0], random_state())
        if np.all(a == 1) and np.all(b == 0):  # nothing drawn: skip the logit round trip
            return x
        return lighting(x, a, b)


class _LightingPart(LightingTfm):
    def __init__(self, **args):
        if not 0 <= args["max_lighting"] < 1:
            raise ValueError(f"max_lighting must be in [0, 1), got {args['max_lighting']}")
        RandTransform.__init__(self, **args)
        self.parts = [self]

    def _do(self, n, rng):
        return rng.random(n) < self.args["p"]


class Brightness(_LightingPart):
    """With probability ``p``, adds logit(c) to logit(x), c uniform in 0.5 (1 +- ``max_lighting``)."""

    def __init__(self, max_lighting=0.2, p=0.75):
        super().__init__(max_lighting=max_lighting, p=p)

    def affine(self, n, rng):
        m = self.args["max_lighting"]
        c = np.where(self._do(n, rng), rng.uniform(0.5 * (1 - m), 0.5 * (1 + m), n), 0.5)
        return np.ones(n), np.log(c / (1 - c))


class Contrast(_LightingPart):
    """With probability ``p``, multiplies logit(x) by c, log-uniform in [1 - m, 1 / (1 - m)], m = ``max_lighting``."""

    def __init__(self, max_lighting=0.2, p=0.75):
        super().__init__(max_lighting=max_lighting, p=p)

    def affine(self, n, rng):
        lim = np.log(1 / (1 - self.args["max_lighting"]))
        c = np.where(self._do(n, rng), np.exp(rng.uniform(-lim, lim, n)), 1.0)
        return c, np.zeros(n)


def aug_transforms(
    mult=1.0,
    do_flip=True,
    flip_vert=False,
    max_rotate=10.0,
    min_zoom=1.0,
    max_zoom=1.1,
    max_lighting=0.2,
    max_warp=0.2,
    p_affine=0.75,
    p_lighting=0.75,
    xtra_tfms=None,
    size=None,
    pad_mode="reflection",
    min_scale=1.0,
):
    """fastai's standard augmentations as a list of batch transforms: the flips, warp, rotation and
    zoom merged into one AffineCoordTfm (one resampling), brightness and contrast into one LightingTfm.
    ``mult`` scales the rotation, lighting and warp. ``size`` resamples to that size; with
    ``min_scale`` < 1 a random square crop of at least that much of the area comes first (presizing)."""
    max_rotate, max_lighting, max_warp = max_rotate * mult, max_lighting * mult, max_warp * mult
    parts = []
    if do_flip:
        parts.append(Dihedral(p=0.5) if flip_vert else Flip(p=0.5))
    if max_warp:
        parts.append(Warp(magnitude=max_warp, p=p_affine))
    if max_rotate:
        parts.append(Rotate(max_deg=max_rotate, p=p_affine))
    if min_zoom < 1 or max_zoom > 1:
        parts.append(Zoom(min_zoom=min_zoom, max_zoom=max_zoom, p=p_affine))
    if min_scale != 1:
        parts.insert(0, RandomResizedCropGPU(min_scale=min_scale))
    res = [AffineCoordTfm(parts, size=size, pad_mode=pad_mode)] if parts or size is not None else []
    if max_lighting:
        res.append(LightingTfm([Brightness(max_lighting, p_lighting), Contrast(max_lighting, p_lighting)]))
    return res + list(xtra_tfms or [])
