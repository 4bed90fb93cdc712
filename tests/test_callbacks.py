"""fastkern.callback: the module layout (and the old import paths), and the tracker callbacks:
early stopping, saving the best model, stopping on a NaN loss, monitoring a metric by name."""

import math

import numpy as np
import pytest

import fastkern as fk
from fastkern import DataLoaders, Learner, accuracy, nn
from fastkern.callback import (
    Callback,
    EarlyStoppingCallback,
    SaveModelCallback,
    TerminateOnNaNCallback,
    TrackerCallback,
)
from fastkern.data import TensorDataset
from fastkern.metrics import Metric
from fastkern.models import create_model
from helpers import blobs


def make_learner(flipped_valid=False, seed=0, **kw):
    """The blobs task; with ``flipped_valid`` the validation labels are the opposite class, so the
    better the model learns the training set, the higher its validation loss."""
    fk.manual_seed(seed)
    x, y = blobs()
    vx, vy = blobs(128, seed=1)
    if flipped_valid:
        vy = 1 - vy
    dls = DataLoaders.from_dsets(TensorDataset(x, y), TensorDataset(vx, vy), bs=32, seed=seed)
    kw.setdefault("metrics", accuracy)
    kw.setdefault("progress", False)
    kw.setdefault("lr", 1e-2)
    return Learner(dls, create_model("mlp", n_in=4, hidden=(8,), n_out=2), **kw)


def weights(learn):
    return {k: v.numpy().copy() for k, v in learn.model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class Snapshots(Callback):
    """The weights at the end of each epoch (after the recorder, before the trackers)."""

    order = 55

    def before_fit(self):
        self.snaps = []

    def after_epoch(self):
        self.snaps.append(weights(self.learn))


class Scripted(Metric):
    """A metric whose value in epoch i is script[i]."""

    def __init__(self, script, name="score"):
        self.script, self._name = script, name

    def accumulate(self, learn):
        self.learn = learn

    @property
    def value(self):
        return self.script[self.learn.epoch]

    @property
    def name(self):
        return self._name


def test_layout_and_old_import_paths():
    import fastkern.callback.core as core
    import fastkern.callback.progress as progress
    import fastkern.callback.schedule as schedule
    import fastkern.learner as learner

    for name in (
        "Callback",
        "CancelFitException",
        "CancelBatchException",
        "CancelStepException",
        "EVENTS",
        "TrainEvalCallback",
        "ParamScheduler",
        "LRFinder",
        "suggest_lrs",
        "SuggestedLRs",
    ):
        assert getattr(learner, name) is getattr(fk.callback, name)
    assert fk.Callback is core.Callback and learner.ProgressCallback is progress.ProgressCallback
    assert schedule.combined_cos is fk.optim.lr_scheduler.combined_cos
    assert fk.EarlyStoppingCallback is EarlyStoppingCallback and fk.SaveModelCallback is SaveModelCallback
    assert progress.format_row(["epoch", "time"], [1, 61.0]).split() == ["1", "01:01"]


def test_default_comparison_follows_the_name():
    assert TrackerCallback().comp is np.less and TrackerCallback("error_rate").comp is np.less
    assert TrackerCallback("accuracy").comp is np.greater
    assert TrackerCallback(min_delta=0.1).min_delta == -0.1  # lower is better: improve by more than 0.1
    with pytest.raises(ValueError, match="monitor 'nope'.*'valid_loss'"):
        make_learner().fit(1, cbs=[TrackerCallback("nope")])
    with pytest.raises(ValueError, match="every_epoch and at_end"):
        SaveModelCallback(every_epoch=True, at_end=True)


def test_early_stopping_when_valid_loss_rises(capsys):
    learn = make_learner(flipped_valid=True)
    cb = EarlyStoppingCallback(patience=2)
    learn.fit(10, cbs=[cb])
    valid = [v[1] for v in learn.recorder.values]
    assert all(b > a for a, b in zip(valid, valid[1:]))  # the toy problem: valid loss rises every epoch
    # epoch 0 is the best; epochs 1 and 2 do not improve on it: stop after epoch 2
    assert len(valid) == 3 and learn.epoch == 2 and cb.best == valid[0] and cb.wait == 2
    assert "No improvement since epoch 0: early stopping" in capsys.readouterr().out
    assert cb not in learn.cbs  # fit's cbs are removed afterwards, as always


def test_early_stopping_patience_and_min_delta():
    # a score that improves, stalls, improves a little, stalls: lower is better
    script = [1.0, 0.8, 0.8, 0.79, 0.85, 0.9, 0.95, 0.5]
    learn = make_learner(metrics=Scripted(script))
    learn.fit(8, cbs=[EarlyStoppingCallback("score", comp=np.less, patience=2)])
    assert len(learn.recorder.values) == 6  # best 0.79 at epoch 3; epochs 4 and 5 do not improve
    learn.fit(8, cbs=[EarlyStoppingCallback("score", comp=np.less, min_delta=0.05, patience=2)])
    assert len(learn.recorder.values) == 4  # 0.8 -> 0.8 -> 0.79 is no improvement by more than 0.05
    learn.fit(8, cbs=[EarlyStoppingCallback("score", comp=np.less, patience=10)])
    assert len(learn.recorder.values) == 8


def test_save_model_keeps_and_reloads_the_best(tmp_path):
    script = [0.5, 0.3, 0.4, 0.6]  # best (lowest) in epoch 1
    learn = make_learner(metrics=Scripted(script), path=tmp_path)
    snaps = Snapshots()
    cb = SaveModelCallback("score", comp=np.less, fname="best")
    learn.fit(4, cbs=[snaps, cb])
    path = tmp_path / "models" / "best.safetensors"
    assert cb.last_saved_path == path and path.exists() and cb.best == 0.3
    assert not same(snaps.snaps[1], snaps.snaps[3])
    assert same(weights(learn), snaps.snaps[1])  # the best epoch's weights are back in the model
    assert "opt" not in fk.load(path)  # with_opt=False: the weights alone
    other = make_learner(seed=3, path=tmp_path)
    other.load("best")
    assert same(weights(other), snaps.snaps[1])


def test_save_model_on_a_rising_valid_loss_with_early_stopping(tmp_path):
    learn = make_learner(flipped_valid=True, path=tmp_path)
    snaps = Snapshots()
    learn.fit(10, cbs=[snaps, EarlyStoppingCallback(patience=1), SaveModelCallback(with_opt=True)])
    assert len(snaps.snaps) == 2  # stopped after epoch 1, the first without improvement
    assert same(weights(learn), snaps.snaps[0]) and not same(snaps.snaps[0], snaps.snaps[1])
    assert "opt" in fk.load(tmp_path / "models" / "model.safetensors")


def test_save_model_every_epoch_and_at_end(tmp_path):
    learn = make_learner(path=tmp_path)
    snaps = Snapshots()
    learn.fit(3, cbs=[snaps, SaveModelCallback(every_epoch=True)])
    for i in range(3):
        saved = {k: v.numpy() for k, v in fk.load(tmp_path / "models" / f"model_{i}.safetensors")["model"].items()}
        assert same(saved, snaps.snaps[i])
    assert same(weights(learn), snaps.snaps[2])  # nothing loaded back
    learn.fit(4, cbs=[SaveModelCallback(every_epoch=2, fname="two")])
    assert sorted(p.name for p in (tmp_path / "models").glob("two_*")) == ["two_0.safetensors", "two_2.safetensors"]
    learn = make_learner(flipped_valid=True, path=tmp_path)
    learn.fit(3, cbs=[SaveModelCallback(at_end=True, fname="end")])
    end = weights(learn)
    learn.load("end")
    assert same(weights(learn), end)  # the last weights saved, the best not loaded back


def test_save_model_monitors_a_metric_by_name(tmp_path):
    learn = make_learner(path=tmp_path, lr=3e-3)
    snaps = Snapshots()
    cb = SaveModelCallback(monitor="accuracy", comp=np.greater)
    learn.fit(5, cbs=[snaps, cb])
    acc = [v[2] for v in learn.recorder.values]
    assert learn.recorder.metric_names[3] == "accuracy" and cb.best == max(acc)
    assert same(weights(learn), snaps.snaps[acc.index(max(acc))])  # the first epoch with the best accuracy


def test_reset_on_fit():
    learn = make_learner(metrics=Scripted([0.5, 0.6, 0.7]))
    cb = EarlyStoppingCallback("score", comp=np.less, patience=1, reset_on_fit=False)
    learn.add_cb(cb)
    learn.fit(3)
    assert len(learn.recorder.values) == 2 and cb.best == 0.5
    learn.fit(3)  # the best carries over: epoch 0 (0.5) does not improve on it
    assert len(learn.recorder.values) == 1
    cb.reset_on_fit = True
    learn.fit(3)
    assert len(learn.recorder.values) == 2


def test_trackers_sit_out_lr_find(tmp_path):
    learn = make_learner(path=tmp_path, cbs=[SaveModelCallback(), EarlyStoppingCallback(patience=1)])
    learn.lr_find(num_it=20)
    assert len(learn.recorder.lrs) == 20 and not (tmp_path / "models").exists()
    learn.fit(2)
    assert (tmp_path / "models" / "model.safetensors").exists()


class NaNAt:
    """Cross-entropy, but call ``at`` returns ``bad`` times the loss (NaN or inf)."""

    def __init__(self, at, bad=math.nan):
        self.at, self.bad, self.calls = at, bad, 0

    def __call__(self, pred, targ):
        loss = nn.functional.cross_entropy(pred, targ)
        self.calls += 1
        return loss * self.bad if self.calls == self.at + 1 else loss


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_terminate_on_nan(bad):
    learn = make_learner(loss_func=NaNAt(3, bad), cbs=[TerminateOnNaNCallback()])
    learn.fit(3)
    # stopped in the batch whose loss was not finite: the recorder never saw it, no epoch ended
    assert len(learn.recorder.losses) == 3 and learn.recorder.values == [] and learn.train_iter == 4
    assert all(math.isfinite(v) for v in learn.recorder.losses)
    learn = make_learner(loss_func=NaNAt(3, bad))  # without the callback the fit goes on
    learn.fit(1)
    assert len(learn.recorder.losses) == len(learn.dls.train)
