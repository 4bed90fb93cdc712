"""Image data with fastai's names: ImageDataLoaders, item transforms (Resize, RandomResizedCrop),
batch augmentations (aug_transforms: flips, affine and perspective resampling, lighting), show_batch.

References: numpy (np.pad, np.rot90, flips), Pillow (crops and resizes), and PyTorch's
affine_grid/grid_sample (align_corners=True) for the bilinear resampling when torch is installed."""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from fastkern.data import (
    AffineCoordTfm,
    Brightness,
    CategoryBlock,
    Contrast,
    DataBlock,
    Dihedral,
    Flip,
    ImageBlock,
    ImageDataLoaders,
    IntToFloat,
    LightingTfm,
    Normalize,
    OpenImage,
    PadMode,
    Pipeline,
    RandomResizedCrop,
    RandomResizedCropGPU,
    RandomSplitter,
    Resize,
    ResizeMethod,
    Rotate,
    ToArray,
    Warp,
    Zoom,
    aug_transforms,
    get_image_files,
    imagenet_stats,
    parent_label,
    resample,
    verify_images,
)
from fastkern.data.augment import lighting, perspective_matrices, rotation_matrices
from fastkern.data.transforms import from_dict, item_seed

Image = pytest.importorskip("PIL.Image")
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FASTKERN_DATA") or ROOT.parent / "shared" / "data")
HYMENOPTERA = DATA / "hymenoptera_data"
PAD_MODES = {"zeros": "constant", "border": "edge", "reflection": "reflect"}  # ours -> numpy's np.pad mode


def rand_img(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pil(a):
    return Image.fromarray(a)


def make_pets(root, n=4):
    """fastbook's layout: one folder of files named <Breed>_<i>.png, cats capitalised."""
    root.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(["Bengal", "Persian", "beagle", "pug"]):
        for i in range(n):
            pil(rand_img(12 + i, 16, seed=10 * k + i)).save(root / f"{name}_{i}.png")
    return get_image_files(root)


def batch(n=2, c=3, h=6, w=6, seed=0):
    return fk.from_numpy(np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32))


# -- loaders ---------------------------------------------------------------------------------------
@pytest.mark.skipif(not HYMENOPTERA.is_dir(), reason=f"hymenoptera_data not under {DATA} (set FASTKERN_DATA)")
def test_from_folder_hymenoptera():
    fk.manual_seed(0)
    dls = ImageDataLoaders.from_folder(
        HYMENOPTERA,
        item_tfms=Resize(64),
        batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)],
        bs=16,
        num_workers=2,
    )
    assert dls.vocab == ["ants", "bees"] and dls.c == 2  # valid='valid' found val/
    n_train = len(get_image_files(HYMENOPTERA / "train"))
    assert len(dls.train_ds) == n_train and len(dls.valid_ds) == len(get_image_files(HYMENOPTERA / "val"))
    x, y = dls.one_batch()
    assert x.shape == (16, 3, 64, 64) and x.dtype == fk.float32 and y.dtype == fk.int64
    ds = dls.valid_ds
    assert [ds.vocab[i] for i in ds.labels] == [parent_label(f) for f in ds.files]
    # the first validation batch is the files in order, unaugmented: Resize's centre crop, then Normalize
    xv, yv = dls.valid.one_batch()
    assert yv.tolist() == [ds.labels[i] for i in range(16)]
    ref = np.stack([ToArray()(Resize(64)(OpenImage(draft_size=64)(f))) for f in ds.files[:16]]) / 255.0
    mean, std = (np.array(s).reshape(1, 3, 1, 1) for s in imagenet_stats)
    np.testing.assert_allclose(xv.numpy(), (ref - mean) / std, atol=1e-5)
    dls.train.close()
    dls.valid.close()


def test_from_name_func_and_re(tmp_path):
    files = make_pets(tmp_path / "images")
    dls = ImageDataLoaders.from_name_func(
        tmp_path, files, lambda name: name[0].isupper(), valid_pct=0.25, seed=42, item_tfms=Resize(8), bs=4
    )
    assert dls.vocab == [False, True] and len(dls.train_ds) == 12 and len(dls.valid_ds) == 4
    for ds in (dls.train_ds, dls.valid_ds):
        assert [bool(ds.vocab[i]) for i in ds.labels] == [f.name[0].isupper() for f in ds.files]
    x, y = dls.one_batch()
    assert x.shape == (4, 3, 8, 8) and x.dtype == fk.float32 and 0 <= x.min().item() and x.max().item() <= 1
    same = ImageDataLoaders.from_name_func(tmp_path, files, lambda n: n[0].isupper(), seed=42, valid_pct=0.25)
    assert same.valid_ds.files == dls.valid_ds.files  # the split follows the seed

    dls = ImageDataLoaders.from_name_re(tmp_path, files, r"^(.+)_\d+\.png$", item_tfms=Resize(8), num_workers=0)
    assert dls.vocab == ["Bengal", "Persian", "beagle", "pug"] and dls.path == tmp_path
    for ds in (dls.train_ds, dls.valid_ds):
        assert [ds.vocab[i] for i in ds.labels] == [f.name.split("_")[0] for f in ds.files]
    with pytest.raises(ValueError, match="does not match"):
        ImageDataLoaders.from_name_re(tmp_path, files, r"^(\d+)\.jpg$")
    dls = ImageDataLoaders.from_path_func(tmp_path, files, lambda p: p.suffix, item_tfms=Resize(8))
    assert dls.vocab == [".png"]


def test_datablock_as_lesson_1(tmp_path):
    for label in ("bird", "forest"):
        (tmp_path / label).mkdir()
        for i in range(5):
            pil(rand_img(20, 30 + i, seed=i)).save(tmp_path / label / f"{i}.jpg")
    dls = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_items=get_image_files,
        splitter=RandomSplitter(valid_pct=0.2, seed=42),
        get_y=parent_label,
        item_tfms=[Resize(12, method="squish")],
    ).dataloaders(tmp_path, bs=4)
    assert dls.vocab == ["bird", "forest"] and len(dls.train_ds) == 8 and len(dls.valid_ds) == 2
    assert dls.one_batch()[0].shape == (4, 3, 12, 12)
    with pytest.raises(NotImplementedError):
        DataBlock(blocks=(ImageBlock, ImageBlock))


def test_unreadable_files_skipped_with_a_warning(tmp_path):
    d = tmp_path / "train" / "a"
    d.mkdir(parents=True)
    for i in range(4):
        pil(rand_img(10, 10, seed=i)).save(d / f"{i}.png")
    (d / "broken.jpg").write_text("not an image")
    data = (d / "3.png").read_bytes()
    (d / "3.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut off: fails when decoded
    (tmp_path / "valid" / "a").mkdir(parents=True)
    pil(rand_img(10, 10)).save(tmp_path / "valid" / "a" / "v.png")
    assert [f.name for f in verify_images(get_image_files(tmp_path))] == ["3.png", "broken.jpg"]
    with pytest.warns(UserWarning, match="broken.jpg") as rec:
        dls = ImageDataLoaders.from_folder(tmp_path, item_tfms=Resize(8), bs=4, shuffle=False, num_workers=2)
    assert len(rec) == 1 and len(dls.train_ds) == 4  # the truncated file's header reads: it stays until decoded
    with pytest.warns(UserWarning, match="3.png"):
        x, y = dls.train.one_batch()  # the batch is whole: the next image stands in for 3.png
    assert x.shape == (4, 3, 8, 8)
    np.testing.assert_array_equal(x[3].numpy(), x[0].numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dls.train.one_batch()  # reported once
    dls.train.close()


# -- item transforms ---------------------------------------------------------------------------------
def test_resize_methods_on_a_non_square_image():
    a = rand_img(10, 20)  # h 10, w 20
    # crop: the centre 10x10 off the validation set
    np.testing.assert_array_equal(np.asarray(Resize(10)(pil(a), split_idx=1)), a[:, 5:15])
    np.testing.assert_array_equal(np.asarray(Resize(10)(pil(a))), a[:, 5:15])
    # on the training set a random 10x10 window, whole
    with item_seed(0):
        lefts = {Resize(10).box(20, 10, split_idx=0)[0] for _ in range(40)}
    assert len(lefts) > 3 and all(0 <= v <= 10 for v in lefts)
    # pad: the whole image in a 20x20 square, 5 rows added above and below in each mode
    for mode, np_mode in PAD_MODES.items():
        out = np.asarray(Resize(20, method="pad", pad_mode=mode)(pil(a), split_idx=1))
        np.testing.assert_array_equal(out, np.pad(a, ((5, 5), (0, 0), (0, 0)), mode=np_mode))
    # with a scale: the crop region, then Pillow's bilinear resize
    big = rand_img(20, 40, seed=1)
    ref = pil(big).crop((10, 0, 30, 20)).resize((10, 10), Image.BILINEAR)
    np.testing.assert_array_equal(np.asarray(Resize(10)(pil(big))), np.asarray(ref))
    ref = pil(np.pad(big, ((10, 10), (0, 0), (0, 0)), mode="reflect")).resize((10, 10), Image.BILINEAR)
    np.testing.assert_array_equal(np.asarray(Resize(10, method="pad")(pil(big))), np.asarray(ref))
    ref = pil(big).resize((10, 10), Image.BILINEAR)
    np.testing.assert_array_equal(np.asarray(Resize(10, method="squish")(pil(big))), np.asarray(ref))
    # (h, w) sizes; the reflection can be longer than the image (numpy reflects again)
    assert Resize((6, 12), method=ResizeMethod.Squish)(pil(a)).size == (12, 6)  # fastai's names work too
    assert Resize(4, ResizeMethod.Pad, PadMode.Zeros).to_dict() == Resize(4, "pad", "zeros").to_dict()
    np.testing.assert_array_equal(np.asarray(Resize((10, 20))(pil(a))), a)
    tall = np.asarray(Resize((30, 4), method="pad", pad_mode="reflection")(pil(a[:, :4])))
    np.testing.assert_array_equal(tall, np.pad(a[:, :4], ((10, 10), (0, 0), (0, 0)), mode="reflect"))
    with pytest.raises(ValueError, match="method"):
        Resize(10, method="stretch")


def test_random_resized_crop():
    t = RandomResizedCrop((12, 16), min_scale=0.3)
    w, h = 50, 40
    with item_seed(1):
        boxes = [t.box(w, h) for _ in range(200)]
    for left, top, cw, ch in boxes:
        assert 0 <= left and left + cw <= w and 0 <= top and top + ch <= h
        assert 0.3 * w * h * 0.9 <= cw * ch <= w * h  # rounding of the sides: a little under min_scale
        assert 3 / 4 * 0.9 <= cw / ch <= 4 / 3 * 1.1
    assert len(set(boxes)) > 100
    img = pil(rand_img(h, w))
    with item_seed(2):
        assert t(img, split_idx=0).size == (16, 12)
    # validation: the whole image squished to size + 8 (0.14 of 16, up to a multiple of 8), centre-cropped
    ref = img.resize((24, 20), Image.BILINEAR).crop((4, 4, 20, 16))
    np.testing.assert_array_equal(np.asarray(t(img, split_idx=1)), np.asarray(ref))
    np.testing.assert_array_equal(np.asarray(t(img)), np.asarray(ref))
    # a strip too long for any allowed ratio: the centre, cut to ratio 4/3
    assert RandomResizedCrop(8, min_scale=0.9).box(100, 10, np.random.default_rng(0)) == (43, 0, 13, 10)


# -- batch transforms --------------------------------------------------------------------------------
def test_presizing_crop_on_the_batch():
    t = RandomResizedCropGPU(min_scale=0.5)
    m = t.matrix(500, np.random.default_rng(0), (20, 30))
    fx, fy, cx, cy = m[:, 0, 0], m[:, 1, 1], m[:, 0, 2], m[:, 1, 2]
    assert np.all(fx * fy >= 0.5 - 1e-12) and np.all(fx <= 1) and np.all(fy <= 1)
    np.testing.assert_allclose(fx * 30 / (fy * 20), 1.0)  # ratio (1, 1): square regions, in pixels
    assert np.all(np.abs(cx) <= 1 - fx + 1e-12) and np.all(np.abs(cy) <= 1 - fy + 1e-12)  # inside the image
    tfms = Pipeline(aug_transforms(size=8, min_scale=0.75))
    x = batch(3, 3, 12, 12)
    assert tfms(x, split_idx=0).shape == (3, 3, 8, 8)
    plain = resample(x, np.tile(np.eye(3), (3, 1, 1)), size=8)
    np.testing.assert_array_equal(tfms(x, split_idx=1).numpy(), plain.numpy())  # square: the whole image
    wide = batch(2, 3, 6, 10)
    np.testing.assert_allclose(  # validation, wide image: the centre square (the width's middle 0.6)
        Pipeline(aug_transforms(size=6, min_scale=0.75))(wide, split_idx=1).numpy(),
        resample(wide, np.tile(np.diag([0.6, 1.0, 1.0]), (2, 1, 1)), size=6).numpy(),
    )


def test_flips_are_exact():
    x = batch(3, 3, 5, 7)
    np.testing.assert_array_equal(Flip(p=1.0)(x, split_idx=0).numpy(), x.numpy()[..., ::-1])
    np.testing.assert_array_equal(Flip(p=0.0)(x, split_idx=0).numpy(), x.numpy())
    sq = batch(16, 2, 5, 5, seed=1)
    a = sq.numpy()
    syms = [np.rot90(f, k, axes=(-2, -1)) for f in (a, a[..., ::-1]) for k in range(4)]
    fk.manual_seed(0)
    out = Dihedral(p=1.0)(sq, split_idx=0).numpy()
    seen = set()
    for i in range(16):
        k = next(k for k, s in enumerate(syms) if np.array_equal(out[i], s[i]))
        seen.add(k)
    assert len(seen) > 3


def test_affine_identity_quarter_turn_and_padding():
    x = batch(2, 3, 6, 6)
    a = x.numpy()
    np.testing.assert_array_equal(resample(x, np.tile(np.eye(3), (2, 1, 1))).numpy(), a)
    ident = AffineCoordTfm([Rotate(max_deg=0.0, p=1.0), Zoom(1.0, 1.0, p=1.0), Warp(0.0, p=1.0), Flip(p=0.0)])
    np.testing.assert_array_equal(ident(x, split_idx=0).numpy(), a)
    np.testing.assert_array_equal(resample(x, rotation_matrices([90, -90])).numpy()[0], np.rot90(a[0], 1, (-2, -1)))
    np.testing.assert_array_equal(resample(x, rotation_matrices([90, -90])).numpy()[1], np.rot90(a[1], -1, (-2, -1)))
    # a shift by k whole pixels reads the padding: 'reflection' is numpy's 'reflect' (edge not repeated)
    x = batch(2, 3, 5, 9, seed=3)
    a = x.numpy()
    for k in (3, -3, 11):
        shift = np.tile(np.eye(3), (2, 1, 1))
        shift[:, 0, 2] = 2 * k / (9 - 1)  # normalised units: 2 / (w - 1) per pixel
        for mode, np_mode in PAD_MODES.items():
            padded = np.pad(a, ((0, 0), (0, 0), (0, 0), (abs(k), abs(k))), mode=np_mode)
            ref = padded[..., abs(k) + k : abs(k) + k + 9]
            np.testing.assert_array_equal(resample(x, shift, pad_mode=mode).numpy(), ref)


@pytest.mark.parametrize("pad_mode", ["reflection", "border", "zeros"])
def test_resample_matches_torch_grid_sample(pad_mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 7, 9)).astype(np.float32)
    m = np.tile(np.eye(3), (3, 1, 1))
    m[:, :2] += rng.normal(0, 0.4, (3, 2, 3))
    grid = F.affine_grid(torch.tensor(m[:, :2], dtype=torch.float32), (3, 2, 5, 8), align_corners=True)
    ref = F.grid_sample(torch.tensor(x), grid, padding_mode=pad_mode, align_corners=True).numpy()
    np.testing.assert_allclose(resample(fk.from_numpy(x), m, (5, 8), pad_mode).numpy(), ref, atol=2e-6)
    # perspective: the grid is the map applied to each output pixel, divided by its third coordinate
    h = perspective_matrices(rng.uniform(-0.3, 0.3, 3), rng.uniform(-0.3, 0.3, 3))
    gx, gy = np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 7))
    p = np.einsum("nij,hwj->nhwi", h, np.stack([gx, gy, np.ones_like(gx)], -1))
    grid = torch.tensor((p[..., :2] / p[..., 2:]).astype(np.float32))
    ref = F.grid_sample(torch.tensor(x), grid, padding_mode=pad_mode, align_corners=True).numpy()
    np.testing.assert_allclose(resample(fk.from_numpy(x), h, pad_mode=pad_mode).numpy(), ref, atol=2e-6)


def test_warp_moves_the_corners():
    h = perspective_matrices([0.2], [-0.1])[0]
    for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
        p = h @ [sx, sy, 1]
        np.testing.assert_allclose(p[:2] / p[2], [sx * (1 - 0.2 * sy), sy * (1 + 0.1 * sx)], atol=1e-12)


def test_lighting():
    x = batch(4, 3, 5, 5)
    assert LightingTfm([Brightness(0.0, p=1.0), Contrast(0.0, p=1.0)])(x, split_idx=0) is x
    a, b = np.array([1.0, 1.5, 0.7, 1.0]), np.array([0.0, 0.3, -0.2, 0.0])
    v = np.clip(x.numpy().astype(np.float64), 1e-7, 1 - 1e-7)
    ref = 1 / (1 + np.exp(-(np.log(v / (1 - v)) * a.reshape(-1, 1, 1, 1) + b.reshape(-1, 1, 1, 1))))
    out = lighting(x, a, b).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-6)
    np.testing.assert_allclose(out[0], x.numpy()[0], atol=1e-6)  # a = 1, b = 0: the round trip is exact to 1e-6
    # brightness draws c in 0.5 (1 +- m) and adds logit(c); contrast multiplies by c in [1 - m, 1 / (1 - m)]
    rng = np.random.default_rng(0)
    ones, off = Brightness(0.4, p=1.0).affine(1000, rng)
    assert np.all(ones == 1) and np.all(np.abs(off) <= np.log(0.7 / 0.3) + 1e-12) and off.std() > 0.1
    scale, zeros = Contrast(0.4, p=1.0).affine(1000, rng)
    assert np.all(zeros == 0) and scale.min() >= 0.6 - 1e-12 and scale.max() <= 1 / 0.6 + 1e-12


def test_augmentation_only_on_the_training_set():
    x = batch(4, 3, 8, 8)
    tfms = Pipeline(aug_transforms(max_rotate=30.0, max_lighting=0.5))
    fk.manual_seed(0)
    assert tfms(x, split_idx=0).numpy().tolist() != x.numpy().tolist()
    for split in (1, None):  # validation, and predict outside a loader
        np.testing.assert_array_equal(tfms(x, split_idx=split).numpy(), x.numpy())
    sized = Pipeline(aug_transforms(size=4))
    ref = resample(x, np.tile(np.eye(3), (4, 1, 1)), size=4)
    np.testing.assert_array_equal(sized(x, split_idx=1).numpy(), ref.numpy())  # validation: only resized
    assert sized(x, split_idx=0).shape == (4, 3, 4, 4)


def test_validation_loader_never_augments(tmp_path):
    files = make_pets(tmp_path, n=3)
    kw = dict(valid_pct=0.5, seed=0, bs=6, num_workers=2, shuffle=False)
    plain = ImageDataLoaders.from_name_func(tmp_path, files, lambda n: n[0], item_tfms=Resize(8), **kw)
    aug = ImageDataLoaders.from_name_func(
        tmp_path,
        files,
        lambda n: n[0],
        item_tfms=RandomResizedCrop(8, min_scale=0.2),
        batch_tfms=aug_transforms(max_rotate=45.0, max_lighting=0.6, p_affine=1.0, p_lighting=1.0),
        **kw,
    )
    v_aug = [b[0].numpy() for b in aug.valid]
    assert all(np.array_equal(a, b) for a, b in zip(v_aug, [b[0].numpy() for b in aug.valid]))
    # the validation images are RandomResizedCrop's centre crop, nothing else
    rrc = RandomResizedCrop(8, min_scale=0.2)
    ref = np.stack([ToArray()(rrc(OpenImage()(f), split_idx=1)) for f in aug.valid_ds.files[:6]]) / 255
    np.testing.assert_allclose(v_aug[0], ref, atol=1e-7)
    t_aug = aug.train.one_batch()[0].numpy()
    t_plain = plain.train.one_batch()[0].numpy()
    assert t_aug.shape == t_plain.shape and not np.allclose(t_aug, t_plain)
    for d in (plain, aug):
        d.train.close()
        d.valid.close()


def test_seeded_reproducibility_with_worker_threads(tmp_path):
    files = make_pets(tmp_path, n=4)

    def epoch(seed):
        fk.manual_seed(seed)
        dls = ImageDataLoaders.from_name_func(
            tmp_path,
            files,
            lambda n: n[0],
            seed=0,
            bs=4,
            num_workers=2,
            item_tfms=RandomResizedCrop(8, min_scale=0.3),
            batch_tfms=aug_transforms(p_affine=1.0),
        )
        out = [(x.numpy(), y.tolist()) for x, y in dls.train]
        dls.train.close()
        return out

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert len(a) == 3
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        assert ya == yb
    assert not all(np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_every_transform_round_trips_through_json():
    from fastkern.learner import _pipeline

    tfms = [
        Resize((6, 8), method="pad", pad_mode="border"),
        RandomResizedCrop(6, min_scale=0.5, ratio=(0.5, 2.0)),
        OpenImage("L"),
        ToArray(),
        IntToFloat(),
        Normalize.from_stats(*imagenet_stats),
        Flip(p=0.3),
        Dihedral(),
        Rotate(max_deg=20.0),
        Zoom(0.9, 1.2),
        Warp(0.3, size=5, pad_mode="zeros"),
        Brightness(0.3),
        Contrast(0.1, p=0.5),
        *aug_transforms(size=(4, 5), flip_vert=True, pad_mode="border", min_scale=0.5),
        RandomResizedCropGPU(6, min_scale=0.3, ratio=(0.8, 1.25)),
    ]
    items = json.loads(json.dumps(Pipeline(tfms).to_list()))
    for q in (Pipeline.from_list(items), _pipeline(items)):  # _pipeline: load_learner's checked rebuild
        assert q.to_list() == items
    with pytest.raises(ValueError, match="cannot merge"):
        AffineCoordTfm([{"name": "Brightness", "max_lighting": 0.1}])
    x = batch(3, 3, 6, 6)
    for t in tfms[6:]:
        u = from_dict(t.to_dict())
        assert type(u) is type(t)
        fk.manual_seed(5)
        ya = t(x, split_idx=0).numpy()
        fk.manual_seed(5)
        np.testing.assert_array_equal(u(x, split_idx=0).numpy(), ya)
    img = pil(rand_img(10, 14))
    for t in tfms[:2]:
        with item_seed(3):
            ya = np.asarray(t(img, split_idx=0))
        with item_seed(3):
            np.testing.assert_array_equal(np.asarray(from_dict(t.to_dict())(img, split_idx=0)), ya)


def test_show_batch_writes_a_png(tmp_path):
    files = make_pets(tmp_path / "imgs", n=2)
    dls = ImageDataLoaders.from_name_re(
        tmp_path,
        files,
        r"^(.+)_\d+\.png$",
        valid_pct=0.25,
        item_tfms=Resize(8),
        batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)],
        bs=4,
        num_workers=0,
    )
    out = dls.show_batch(max_n=4, nrows=1, fname=tmp_path / "batch.png")
    assert Path(out).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(dls.valid.show_batch(fname=tmp_path / "v.png")).stat().st_size > 0


def test_predict_and_export_use_the_validation_behaviour(tmp_path):
    from fastkern.models import create_model

    files = make_pets(tmp_path / "imgs", n=2)
    dls = ImageDataLoaders.from_name_func(
        tmp_path,
        files,
        lambda n: n[0].isupper(),
        item_tfms=RandomResizedCrop(16),
        batch_tfms=[*aug_transforms(size=12), Normalize.from_stats(*imagenet_stats)],
        bs=4,
        num_workers=0,
    )
    fk.manual_seed(0)
    learn = fk.Learner(dls, create_model("simple_cnn", n_out=2, in_channels=3), loss_func=fk.nn.CrossEntropyLoss())
    learn.fit(1, 1e-3)  # trains on augmented batches, validates on plain ones
    label, idx, probs = learn.predict(files[0])
    assert label in (False, True) and probs.shape == (2,)
    loaded = fk.load_learner(learn.export(tmp_path / "m.safetensors"))
    for f in files[:3]:  # deterministic, and the same after the round trip
        np.testing.assert_allclose(loaded.predict(f)[2].numpy(), learn.predict(f)[2].numpy(), atol=1e-6)
        np.testing.assert_array_equal(learn.predict(f)[2].numpy(), learn.predict(f)[2].numpy())


def test_batch_transforms_same_on_every_device(device):
    x = batch(3, 3, 9, 9, seed=4)
    xd = x.to(device)
    tfms = [
        *aug_transforms(p_affine=1.0, p_lighting=1.0, max_rotate=30.0, min_zoom=0.8),
        AffineCoordTfm([Dihedral(p=1.0)], size=(5, 7), pad_mode="zeros"),
        AffineCoordTfm([Rotate(40.0, p=1.0)], pad_mode="border"),
        Normalize.from_stats(*imagenet_stats),
    ]
    for t in tfms:
        fk.manual_seed(7)
        ref = t(x, split_idx=0) if not isinstance(t, Normalize) else t(x)
        fk.manual_seed(7)
        out = t(xd, split_idx=0) if not isinstance(t, Normalize) else t(xd)
        assert out.device == xd.device
        np.testing.assert_allclose(out.cpu().numpy(), ref.numpy(), atol=1e-5)
