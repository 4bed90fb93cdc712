"""Learner: the event loop, callbacks and cancellation, schedules, lr_find, predictions,
checkpoints and export, layer groups, progress output, metrics."""

import math

import numpy as np
import pytest

import fastkern as fk
from fastkern import Callback, DataLoaders, Learner, accuracy, error_rate, nn
from fastkern.data import TensorDataset
from fastkern.learner import (
    CancelBatchException,
    CancelFitException,
    CancelStepException,
    body_head_splitter,
    suggest_lrs,
)
from fastkern.metrics import F1Score, Precision, Recall, top_k_accuracy
from fastkern.models import create_model
from helpers import blobs
from fastkern.optim import SGD


def make_learner(bs=32, seed=0, **kw):
    fk.manual_seed(seed)
    x, y = blobs()
    vx, vy = blobs(128, seed=1)
    dls = DataLoaders.from_dsets(TensorDataset(x, y), TensorDataset(vx, vy), bs=bs, seed=seed, vocab=["neg", "pos"])
    kw.setdefault("metrics", accuracy)
    kw.setdefault("progress", False)
    return Learner(dls, create_model("mlp", n_in=4, hidden=(8,), n_out=2), **kw)


def weights(learn):
    return {k: v.numpy().copy() for k, v in learn.model.state_dict().items()}


def test_fit_learns_and_records():
    learn = make_learner(lr=1e-2)
    learn.fit(3)
    rec = learn.recorder
    assert len(rec.values) == 3 and len(rec.losses) == 3 * len(learn.dls.train)
    train_loss, valid_loss, acc = rec.values[-1]
    assert acc > 0.95 and valid_loss < rec.values[0][1] + 1e-6
    assert rec.metric_names == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert rec.log[0] == 2 and rec.log[-1] >= 0
    assert learn.validate()[1] == pytest.approx(acc)
    assert all(lr == 1e-2 for lr in rec.lrs)


def test_event_order():
    from fastkern.learner import EVENTS

    class Log(Callback):
        order = 100

        def __init__(self):
            self.seen = []

    for e in EVENTS:  # one method per event, each logging its name
        setattr(Log, e, (lambda ev: lambda self: self.seen.append(ev))(e))
    rec = Log()
    learn = make_learner(bs=128, cbs=[rec])
    learn.fit(1)
    batch = [
        "before_batch",
        "after_pred",
        "after_loss",
        "before_backward",
        "after_backward",
        "before_step",
        "after_step",
        "after_batch",
    ]
    valid_batch = ["before_batch", "after_pred", "after_loss", "after_batch"]
    want = (
        ["before_fit", "before_epoch", "before_train"]
        + batch * 2
        + ["after_train", "before_validate"]
        + valid_batch
        + ["after_validate", "after_epoch", "after_fit"]
    )
    assert rec.seen == want


def test_callback_reads_learner_state_and_cancels():
    class StopAfter(Callback):
        def __init__(self, n):
            self.n, self.calls = n, []

        def after_batch(self):
            if self.training:
                self.calls.append((self.epoch, self.iter))  # learner attributes read through the callback
                if self.train_iter >= self.n:
                    raise CancelFitException()

        def after_cancel_fit(self):
            self.cancelled = True

    cb = StopAfter(3)
    learn = make_learner(cbs=[cb])
    learn.fit(5)
    assert cb.calls == [(0, 0), (0, 1), (0, 2)] and cb.cancelled and learn.train_iter == 3
    assert learn.recorder.values == []  # no epoch finished


def test_cancel_batch_and_step_skip_updates():
    class SkipAll(Callback):
        def before_batch(self):
            if self.training:
                raise CancelBatchException()

    learn = make_learner(cbs=[SkipAll()])
    w0 = weights(learn)
    learn.fit(1)
    assert all(np.array_equal(w0[k], v) for k, v in weights(learn).items())

    class NoStep(Callback):
        def before_step(self):
            raise CancelStepException()

    learn = make_learner(cbs=[NoStep()])
    w0 = weights(learn)
    learn.fit(1)
    assert all(np.array_equal(w0[k], v) for k, v in weights(learn).items())
    assert len(learn.recorder.losses) == len(learn.dls.train)  # batches still ran and were recorded


def test_fit_one_cycle_schedule_shape():
    learn = make_learner(bs=16)
    learn.fit_one_cycle(2, 0.1, pct_start=0.25, div=25, div_final=1e5)
    lrs, moms = learn.recorder.lrs, learn.recorder.moms
    n = len(lrs)
    assert n == 2 * len(learn.dls.train)
    peak = int(np.argmax(lrs))
    assert abs(peak - 0.25 * n) <= 1
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1, rel=1e-2)
    # each batch sets the lr at its start: the last one is at position (n - 1) / n of the schedule
    from fastkern.optim.lr_scheduler import combined_cos

    assert lrs[-1] == pytest.approx(combined_cos(0.25, 0.1 / 25, 0.1, 0.1 / 1e5)((n - 1) / n))
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))
    # momentum (Adam's beta1) mirrors the lr: 0.95 -> 0.85 -> 0.95
    assert moms[0] == pytest.approx(0.95) and min(moms) == pytest.approx(0.85, abs=1e-3)
    assert int(np.argmin(moms)) == peak and moms[-1] == pytest.approx(0.95, abs=1e-3)
    # cosine: halfway through the warm-up the lr is halfway between its ends
    mid = lrs[peak // 2]
    assert mid == pytest.approx((0.1 / 25 + 0.1) / 2, rel=0.1)
    assert learn.recorder.values[-1][2] > 0.95


def test_one_cycle_leaves_plain_sgd_without_momentum():
    learn = make_learner(opt_func=SGD)
    learn.fit_one_cycle(1, 0.1)
    assert learn.opt.param_groups[0]["momentum"] == 0


def test_lr_find_stops_on_divergence_and_restores_weights():
    # least squares with plain SGD: any lr above 2 / (largest Hessian eigenvalue) diverges
    fk.manual_seed(0)
    x = fk.randn(256, 4)
    y = x @ fk.tensor([[1.0], [-2.0], [0.5], [3.0]])
    dls = DataLoaders.from_dsets(TensorDataset(x, y), TensorDataset(x, y), bs=8, seed=0)
    learn = Learner(
        dls, create_model("linear", n_in=4, n_out=1), loss_func=nn.MSELoss(), opt_func=SGD, lr=1e-2, progress=False
    )
    learn.fit(1)
    w0 = weights(learn)
    sugg = learn.lr_find()
    lrs, losses = learn.recorder.lrs, learn.recorder.losses
    assert len(lrs) < 100  # SGD up to lr=10 diverges before the end
    assert losses[-1] > 4 * min(losses) or math.isnan(losses[-1])
    assert all(b > a for a, b in zip(lrs, lrs[1:])) and lrs[0] == pytest.approx(1e-7)
    # exponential: log-lr rises by a constant step
    steps = np.diff(np.log(lrs))
    np.testing.assert_allclose(steps, np.log(1e8) / 100, rtol=1e-6)
    assert all(np.array_equal(w0[k], v) for k, v in weights(learn).items())
    assert all(1e-7 <= s <= 10 for s in sugg) and sugg._fields == ("valley", "minimum", "steep")
    assert learn.opt.param_groups[0]["lr"] == learn.lr  # the lr is put back too


def test_lr_find_runs_num_it_without_divergence():
    learn = make_learner(bs=8)
    learn.lr_find(end_lr=1e-3, num_it=50)
    assert len(learn.recorder.lrs) == 50 and learn.train_iter == 50


def test_suggestions_on_a_synthetic_curve():
    lrs = list(np.logspace(-7, 1, 100))
    losses = [
        2.0 if lr < 1e-4 else 2.0 - 0.3 * math.log10(lr / 1e-4) if lr < 1e-1 else 1.1 + 3 * (lr - 0.1) for lr in lrs
    ]
    s = suggest_lrs(lrs, losses)
    assert 1e-4 < s.valley < 1e-1 and 1e-3 < s.minimum < 2e-2 and 1e-4 <= s.steep < 1e-1


def test_get_preds_and_predict():
    learn = make_learner(lr=1e-2, loss_func=nn.CrossEntropyLoss())
    learn.fit(2)
    preds, targs, decoded, losses = learn.get_preds(with_decoded=True, with_loss=True)
    assert preds.shape == (128, 2) and targs.shape == (128,) and losses.shape == (128,)
    np.testing.assert_allclose(preds.sum(1).numpy(), 1, rtol=1e-5)  # softmax applied
    assert decoded.tolist() == preds.argmax(1).tolist()
    assert losses.mean().item() == pytest.approx(learn.validate()[0], rel=1e-5)
    inputs, *_ = learn.get_preds(with_input=True)
    assert inputs.shape == (128, 4)
    x = learn.dls.valid_ds[0][0]
    cls, idx, probs = learn.predict(x)
    assert cls in ("neg", "pos") and cls == ["neg", "pos"][idx.item()]
    np.testing.assert_allclose(probs.numpy(), preds[0].numpy(), rtol=1e-5)


def test_save_load_round_trip(tmp_path):
    learn = make_learner(path=tmp_path)
    learn.fit(1)
    path = learn.save("stage1")
    assert path == tmp_path / "models" / "stage1.safetensors" and path.exists()
    w1, step = weights(learn), learn.opt.state_dict()["state"][0]["step"]
    learn.fit(1)
    learn.load("stage1")
    assert all(np.array_equal(w1[k], v) for k, v in weights(learn).items())
    assert learn.opt.state_dict()["state"][0]["step"] == step
    other = make_learner(seed=5)
    other.load(path)
    assert all(np.array_equal(w1[k], v) for k, v in weights(other).items())


def test_export_and_load_learner(tmp_path):
    from fastkern.data import AddChannel, IntToFloat, Pipeline

    s = fk.data.mnist_sample()
    n = 512
    dls = DataLoaders.from_dsets(
        TensorDataset(s.train_x[:n], s.train_y[:n]),
        TensorDataset(s.valid_x[:64], s.valid_y[:64]),
        bs=64,
        after_batch=Pipeline([IntToFloat(), AddChannel()]),
        vocab=s.vocab,
    )
    learn = Learner(dls, create_model("simple_cnn", n_out=2, widths=(4, 8)), progress=False)
    learn.fit(1)
    path = learn.export(tmp_path / "model.safetensors")
    loaded = fk.load_learner(path)
    img = s.valid_x[3]
    a, b = learn.predict(img), loaded.predict(img)
    assert a[0] == b[0] and a[0] in ("3", "7")
    np.testing.assert_allclose(a[2].numpy(), b[2].numpy(), rtol=1e-6)
    # fastai's cpu=False: the model goes to default_device() (the GPU when there is one, unless
    # set otherwise, as conftest does; test_learner_devices checks that rule)
    on = fk.load_learner(path, cpu=False)
    assert all(p.device == fk.default_device() for p in on.model.parameters())

    with pytest.raises(ValueError, match="not a fastkern Learner export"):
        fk.save({"w": fk.ones(1)}, tmp_path / "w.safetensors")
        fk.load_learner(tmp_path / "w.safetensors")


class TwoLayer(nn.Module):
    """A model of the user's own: rebuilt only when load_learner is told to trust it."""

    def __init__(self, n_in, hidden=8, n_out=2, act=nn.ReLU):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(n_in, hidden), act())
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.head(self.body(x))


def _export_any(tmp_path, model, name):
    from fastkern.data import IntToFloat

    s = fk.data.mnist_sample()
    dls = DataLoaders.from_dsets(
        TensorDataset(s.train_x[:256], s.train_y[:256]),
        TensorDataset(s.valid_x[:64], s.valid_y[:64]),
        bs=64,
        after_batch=IntToFloat(),
        vocab=s.vocab,
    )
    learn = Learner(dls, model, progress=False)
    learn.fit(1, 1e-2)
    return learn, learn.export(tmp_path / name), s.valid_x[5]


def test_export_any_model_without_pickle(tmp_path):
    from collections import OrderedDict

    # Plain containers of fastkern layers, dtypes and tuples among the arguments, a layer
    # replaced after construction (as transfer learning replaces a head), an OrderedDict.
    plain = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 5, dtype=fk.float32)
    )
    plain[4] = nn.Linear(16, 2)
    plain.append(nn.Sequential(OrderedDict(out=nn.Identity())))
    learn, path, img = _export_any(tmp_path, plain, "plain.safetensors")
    loaded = fk.load_learner(path)
    assert repr(loaded.model) == repr(learn.model)
    a, b = learn.predict(img), loaded.predict(img)
    assert a[0] == b[0] and np.allclose(a[2].numpy(), b[2].numpy(), rtol=1e-6)

    # A class of the user's: refused by name unless trusted; then rebuilt from its recorded arguments.
    learn, path, img = _export_any(tmp_path, TwoLayer(784, hidden=12, act=nn.ReLU), "own.safetensors")
    with pytest.raises(ValueError, match="test_learner.TwoLayer, which is not a module class of fastkern.*trusted"):
        fk.load_learner(path)
    loaded = fk.load_learner(path, trusted=[TwoLayer])
    assert isinstance(loaded.model, TwoLayer) and loaded.model.body[1].out_features == 12
    assert np.allclose(learn.predict(img)[2].numpy(), loaded.predict(img)[2].numpy(), rtol=1e-6)
    # trusting a different class of the same kind is not trusting this one
    with pytest.raises(ValueError, match="not a module class of fastkern"):
        fk.load_learner(path, trusted=[nn.Linear])

    # Arguments an export cannot hold are a clear error naming where they are.
    odd = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    object.__setattr__(odd[1], "_init_args", ((784, 2), {"bias": lambda: 1}))
    with pytest.raises(ValueError, match=r"cannot export model.1 \(Linear, argument bias\): a function"):
        Learner(None, odd, progress=False).export(tmp_path / "odd.safetensors")


def test_freeze_unfreeze_and_discriminative_lr():
    fk.manual_seed(0)
    x, y = blobs()
    dls = DataLoaders.from_dsets(TensorDataset(x, y), TensorDataset(x, y), bs=64)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(dls, model, splitter=body_head_splitter, progress=False)
    learn.freeze()
    assert len(learn.opt.param_groups) == 2
    assert not model[0].weight.requires_grad and not model[3].weight.requires_grad
    assert model[1].weight.requires_grad and model[5].weight.requires_grad  # batch norm and head train
    before = model[0].weight.detach().numpy().copy()
    learn.fit(1, lr=slice(1e-3, 1e-2))
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), before)
    assert [g["lr"] for g in learn.opt.param_groups] == pytest.approx([1e-3, 1e-2])
    learn.unfreeze()
    assert all(p.requires_grad for p in model.parameters())
    learn.fit_one_cycle(1, slice(1e-2))
    assert max(learn.recorder.lrs) == pytest.approx(1e-2, rel=0.05)  # the recorder follows the last group
    assert learn.opt.param_groups[0]["lr"] == pytest.approx(learn.opt.param_groups[1]["lr"] / 10)
    assert not np.array_equal(model[0].weight.detach().numpy(), before)


def test_progress_table_has_no_control_characters(capsys):
    learn = make_learner(progress=True)
    learn.fit(2)
    out, err = capsys.readouterr()
    assert "\r" not in out + err and "\x1b" not in out + err  # not a terminal: table only, no bar
    lines = out.strip().splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "time"]
    assert len(lines) == 3 and lines[1].split()[0] == "0" and lines[2].split()[-1].count(":") == 1
    learn.lr_find(num_it=10)
    out, _ = capsys.readouterr()
    assert out == ""  # lr_find prints no table rows


def test_recorder_plots_write_png(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    learn = make_learner()
    learn.fit_one_cycle(1, 1e-2)
    assert learn.recorder.plot_sched() == "sched.png"
    assert learn.recorder.plot_loss(fname=tmp_path / "l.png") == tmp_path / "l.png"
    sugg = learn.lr_find(show_plot=True)
    assert sugg.valley > 0
    for f in ("sched.png", "l.png", "lr_find.png"):
        assert (tmp_path / f).read_bytes()[:4] == b"\x89PNG"


def test_metrics():
    pred = fk.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.3, 0.4, 0.2]])
    targ = fk.tensor([1, 0, 1, 2])
    assert accuracy(pred, targ).item() == pytest.approx(0.5)
    assert error_rate(pred, targ).item() == pytest.approx(0.5)
    assert top_k_accuracy(pred, targ, k=2).item() == pytest.approx(0.75)
    assert top_k_accuracy(pred, targ, k=3).item() == pytest.approx(1.0)

    class L:  # what a metric reads from the learner
        pass

    # binary: predictions from argmax of (N, 2) outputs; tp=2, fp=1, fn=1
    lrn = L()
    lrn.pred = fk.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    lrn.yb = (fk.tensor([1, 1, 0, 1, 0]),)
    for cls, want in ((Precision, 2 / 3), (Recall, 2 / 3), (F1Score, 2 / 3)):
        m = cls()
        m.reset()
        m.accumulate(lrn)
        assert m.value == pytest.approx(want)
    assert F1Score().name == "f1_score" and Precision().name == "precision"
    # sigmoid outputs with a threshold
    lrn.pred, lrn.yb = fk.tensor([0.9, 0.2, 0.7]), (fk.tensor([1, 1, 0]),)
    r = Recall()
    r.reset()
    r.accumulate(lrn)
    assert r.value == pytest.approx(0.5)


def test_precision_accumulates_over_batches():
    learn = make_learner(metrics=[Precision(), Recall(), F1Score()], lr=1e-2)
    learn.fit(1)
    preds, targs = learn.get_preds()
    p = preds.argmax(1).numpy()
    t = targs.numpy()
    tp, fp, fn = ((p == 1) & (t == 1)).sum(), ((p == 1) & (t == 0)).sum(), ((p == 0) & (t == 1)).sum()
    assert learn.recorder.values[-1][2:] == pytest.approx([tp / (tp + fp), tp / (tp + fn), 2 * tp / (2 * tp + fp + fn)])


def _export_small(path):
    """An export of a small CNN with a batch pipeline, a vocab and a loss with arguments."""
    from fastkern.data import AddChannel, IntToFloat, Pipeline

    x = fk.zeros(8, 12, 12, dtype=fk.uint8)
    y = fk.tensor([0, 1] * 4)
    dls = DataLoaders.from_dsets(
        TensorDataset(x, y),
        TensorDataset(x, y),
        bs=4,
        after_batch=Pipeline([IntToFloat(), AddChannel()]),
        vocab=["3", "7"],
    )
    learn = Learner(
        dls,
        create_model("simple_cnn", n_out=2, widths=(4, 8)),
        loss_func=nn.CrossEntropyLoss(label_smoothing=0.1),
        progress=False,
    )
    return learn.export(path)


def _rewrite_bundle(path, edit):
    """Saves the export at ``path`` again with its learner metadata changed by ``edit(info)``."""
    import json
    from fastkern.serialization import load_with_metadata

    state, meta = load_with_metadata(path)
    info = json.loads(meta["fastkern_learner"])
    edit(info)
    fk.save(state, path, metadata={"fastkern_learner": json.dumps(info)})


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda i: i["loss"].update(name="Module"), "unknown loss 'Module'"),
        (lambda i: i.update(loss={"name": "functional", "function": True}), "unknown loss function 'functional'"),
        (lambda i: i["loss"]["args"].update(reduction="bogus"), "reduction 'bogus'"),
        (lambda i: i["loss"]["args"].update(label_smoothing="x"), "label_smoothing='x' is not of the kind"),
        (lambda i: i["loss"].update(args=[1]), "arguments of loss 'CrossEntropyLoss' are not a dict"),
        (lambda i: i.update(loss=5), "'loss' is not a loss spec"),
        (
            lambda i: i["model"].update({"class": "os.system"}),
            "is a os.system, which is not a module class of fastkern",
        ),
        (lambda i: i["model"].update({"class": ["x"]}), "the class name is not a string"),
        (lambda i: i["model"]["args"].append({"type": "builtins.eval"}), "builtins.eval, which is not a module class"),
        (lambda i: i["model"].update(kwargs=[]), "the arguments or children of Sequential are malformed"),
        (lambda i: i["model"]["args"][0].update(module=5), "not a module spec"),
        (lambda i: i["model"]["args"].append({"set": [1]}), "is not an argument an export writes"),
        (lambda i: i["model"]["children"]["0"]["kwargs"].update(bogus=1), "Conv2d\\) has no argument 'bogus'"),
        (lambda i: i["model"]["children"]["0"]["kwargs"].update(out_channels=3), "Error\\(s\\) in loading state_dict"),
        (lambda i: i["model"]["children"]["0"]["kwargs"].update(groups=3), "must be divisible by groups"),
        (lambda i: i.update(vocab={"a": 1}), "'vocab' is not a list of labels"),
        (lambda i: i.update(after_batch=[{"div": 2}]), "'after_batch' is not a list of transforms"),
        (lambda i: i.update(after_batch=[{"name": "Pipeline"}]), "unknown transform 'Pipeline'"),
        (lambda i: i["after_batch"][0].update(div="x"), "div='x' is not of the kind of its default 255.0"),
        (lambda i: i["after_batch"][0].update(mode="L"), "transform 'IntToFloat' has no argument 'mode'"),
        (lambda i: i.pop("item_tfms"), "lacks one of model"),
        (lambda i: i.pop("model"), "lacks one of model"),
    ],
)
def test_load_learner_refuses_malformed_bundles(tmp_path, edit, match):
    path = _export_small(tmp_path / "model.safetensors")
    assert isinstance(fk.load_learner(path).loss_func, nn.CrossEntropyLoss)
    _rewrite_bundle(path, edit)
    with pytest.raises(ValueError, match=f"malformed bundle {path}: .*{match}"):
        fk.load_learner(path)


def test_load_learner_refuses_bad_learner_json(tmp_path):
    path = _export_small(tmp_path / "model.safetensors")
    state = fk.load(path)
    for text in ("{", "[" * 100_000, "5"):
        fk.save(state, path, metadata={"fastkern_learner": text})
        with pytest.raises(ValueError, match=f"malformed bundle {path}"):
            fk.load_learner(path)
