"""Callbacks that watch a recorded value each epoch, as fastai's ``callback.tracker``:
stop early, keep the best model, stop on a NaN loss.

The monitored value is one of the Recorder's columns: 'train_loss', 'valid_loss' or a
metric's name ('accuracy', 'f1_score', ...).
"""

import math

import numpy as np

from .core import Callback, CancelFitException


class TrackerCallback(Callback):
    """Tracks ``monitor`` after each epoch: ``best`` holds the best value so far and
    ``new_best`` whether this epoch improved on it by more than ``min_delta``.

    ``comp`` compares a value with the best (``np.less``: lower is better); by default lower is
    better for names containing 'loss' or 'error', higher for the rest. With ``reset_on_fit``
    each fit starts from scratch; without it the best carries over from the previous fit.
    Does nothing during ``lr_find``.
    """

    order = 60

    def __init__(self, monitor="valid_loss", comp=None, min_delta=0.0, reset_on_fit=True):
        if comp is None:
            comp = np.less if "loss" in monitor or "error" in monitor else np.greater
        if comp is np.less:
            min_delta = -min_delta
        self.monitor, self.comp, self.min_delta, self.reset_on_fit = monitor, comp, min_delta, reset_on_fit
        self.best, self.new_best, self._active = None, False, False

    def before_fit(self):
        self._active = not hasattr(self.learn, "lr_finder")  # lr_find's trial run is not tracked
        if not self._active:
            return
        if self.best is None or self.reset_on_fit:
            self.best = math.inf if self.comp is np.less else -math.inf
        names = self.recorder.metric_names[1:-1]  # the columns of recorder.values (no epoch, no time)
        if self.monitor not in names:
            raise ValueError(f"{type(self).__name__}: cannot monitor {self.monitor!r}; the recorded values are {names}")
        self.idx = names.index(self.monitor)

    def after_epoch(self):
        if not self._active:
            return
        val = self.recorder.values[-1][self.idx]
        # an epoch without the value (no validation set) or a NaN never improves
        self.new_best = val is not None and bool(self.comp(val - self.min_delta, self.best))
        if self.new_best:
            self.best = val


class EarlyStoppingCallback(TrackerCallback):
    """Stops the fit (CancelFitException) after ``patience`` epochs in a row without improvement."""

    order = TrackerCallback.order + 3

    def __init__(self, monitor="valid_loss", comp=None, min_delta=0.0, patience=1, reset_on_fit=True):
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, reset_on_fit=reset_on_fit)
        self.patience = patience

    def before_fit(self):
        self.wait = 0
        super().before_fit()

    def after_epoch(self):
        if not self._active:
            return
        super().after_epoch()
        if self.new_best:
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            print(f"No improvement since epoch {self.epoch - self.wait}: early stopping")
            raise CancelFitException()


class SaveModelCallback(TrackerCallback):
    """Saves the model (``Learner.save``, to path/model_dir/fname.safetensors) whenever the
    monitored value improves, and loads that best model back after the fit.

    ``every_epoch``: save every epoch instead (every n-th if a number), as ``fname_{epoch}``,
    and load nothing back. ``at_end``: save at the end of the fit instead of loading the best
    back. ``with_opt``: save (and load) the optimizer state too.
    """

    order = TrackerCallback.order + 1

    def __init__(
        self,
        monitor="valid_loss",
        comp=None,
        min_delta=0.0,
        fname="model",
        every_epoch=False,
        at_end=False,
        with_opt=False,
        reset_on_fit=True,
    ):
        if every_epoch and at_end:
            raise ValueError("SaveModelCallback: every_epoch and at_end cannot both be set")
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, reset_on_fit=reset_on_fit)
        self.fname, self.every_epoch, self.at_end, self.with_opt = fname, every_epoch, at_end, with_opt
        self.last_saved_path = None

    def _save(self, name):
        self.last_saved_path = self.learn.save(name, with_opt=self.with_opt)

    def before_fit(self):
        super().before_fit()
        if self._active and self.reset_on_fit:
            self.last_saved_path = None

    def after_epoch(self):
        if not self._active:
            return
        if self.every_epoch:
            if self.epoch % int(self.every_epoch) == 0:
                self._save(f"{self.fname}_{self.epoch}")
            return
        super().after_epoch()
        if self.new_best:
            print(f"Better model found at epoch {self.epoch} with {self.monitor} value: {self.best}.")
            self._save(self.fname)

    def after_fit(self):
        if not self._active:
            return
        if self.at_end:
            self._save(self.fname)
        elif not self.every_epoch and self.last_saved_path is not None:
            self.learn.load(self.fname, with_opt=self.with_opt)


class TerminateOnNaNCallback(Callback):
    """Stops the fit (CancelFitException) as soon as a batch's loss is NaN or infinite."""

    order = -9

    def after_batch(self):
        if self.loss is not None and not math.isfinite(self.loss.item()):
            raise CancelFitException()
