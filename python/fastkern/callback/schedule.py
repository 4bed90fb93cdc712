"""Hyper-parameter schedules as callbacks: ParamScheduler (which ``fit_one_cycle`` uses),
LRFinder (``lr_find``) and the learning-rate suggestions read from its curve.

The annealing functions (``sched_lin``, ``sched_cos``, ``sched_exp``, ``combined_cos``) are
defined in ``fastkern.optim.lr_scheduler``, whose PyTorch-style schedulers use them too;
they are re-exported here under fastai's module name.
"""

import math
from collections import namedtuple

from ..optim.lr_scheduler import combined_cos, sched_cos, sched_exp, sched_lin, set_momentum  # noqa: F401
from .core import Callback, CancelFitException, CancelValidException


class ParamScheduler(Callback):
    """Sets hyper-parameters before each training batch from functions of pct_train.

    ``scheds`` maps 'lr' or 'mom' to one function or a list with one per param group.
    """

    order = 60
    run_valid = False

    def __init__(self, scheds):
        self.scheds = scheds

    def before_batch(self):
        pos = self.pct_train
        for name, fns in self.scheds.items():
            groups = self.opt.param_groups
            fns = fns if isinstance(fns, (list, tuple)) else [fns] * len(groups)
            for g, fn in zip(groups, fns):
                _set_hyper(g, name, fn(pos))


def _set_hyper(group, name, value):
    if name == "lr":
        group["lr"] = value
    elif name == "mom":
        # SGD built without momentum stays plain SGD (as fastai); Adam schedules beta1
        if "betas" in group or group.get("momentum"):
            set_momentum(group, value)
    else:
        group[name] = value


class LRFinder(ParamScheduler):
    """Raises the lr exponentially each batch; stops at num_it or when the smoothed loss
    passes 4x its minimum; restores the weights and optimizer state afterwards."""

    def __init__(self, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True):
        super().__init__({"lr": lambda pos: sched_exp(start_lr, end_lr, pos)})
        self.num_it, self.stop_div = num_it, stop_div

    def before_fit(self):
        self._saved = ({k: v.clone() for k, v in self.model.state_dict().items()}, _clone_state(self.opt.state_dict()))
        self.best_loss = float("inf")

    def before_batch(self):
        pos = self.train_iter / self.num_it
        for g in self.opt.param_groups:
            g["lr"] = self.scheds["lr"](pos)

    def after_batch(self):
        if not self.training:
            return
        loss = self.smooth_loss
        self.best_loss = min(self.best_loss, loss)
        if (self.stop_div and (loss > 4 * self.best_loss or math.isnan(loss))) or self.train_iter >= self.num_it:
            raise CancelFitException()

    def before_validate(self):
        raise CancelValidException()

    def after_fit(self):
        model_state, opt_state = self._saved
        self.model.load_state_dict(model_state)
        self.opt.load_state_dict(opt_state)
        self.opt.zero_grad()


def _clone_state(obj):
    if isinstance(obj, dict):
        return {k: _clone_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone_state(v) for v in obj]
    return obj.clone() if hasattr(obj, "clone") else obj


SuggestedLRs = namedtuple("SuggestedLRs", ["valley", "minimum", "steep"])


def suggest_lrs(lrs, losses):
    """fastai's three suggestions from an lr_find curve (first 10% and last 5 points dropped).

    minimum: a tenth of the lr at the lowest loss; steep: where the loss falls fastest per
    log-lr; valley: the middle of the longest run of decreasing loss.
    """
    n = len(lrs)
    lo, hi = n // 10, max(n - 5, n // 10 + 2)
    lrs, losses = lrs[lo:hi], losses[lo:hi]
    if len(lrs) < 2:
        raise ValueError("lr_find recorded too few points to suggest a learning rate")
    i_min = min(range(len(losses)), key=losses.__getitem__)
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i])) for i in range(len(lrs) - 1)]
    i_steep = min(range(len(slopes)), key=slopes.__getitem__)
    # valley: the longest decreasing subsequence of the losses, taken as the stretch of that many
    # points ending where it ends (a sparse run through a noisy flat start would reach too far
    # back); suggest its middle
    run = [1] * len(losses)
    for i in range(len(losses)):
        for j in range(i):
            if losses[i] < losses[j]:
                run[i] = max(run[i], run[j] + 1)
    end = max(range(len(run)), key=run.__getitem__)
    i_valley = end - run[end] // 2
    return SuggestedLRs(lrs[i_valley], lrs[i_min] / 10, lrs[i_steep])
