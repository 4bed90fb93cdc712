"""fastai's Learner: a training loop whose every step is an event that callbacks hook.

    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    learn.fit_one_cycle(1, 1e-2)

The loop (fit -> epoch -> train/validate -> batch -> pred, loss, backward, step)
calls ``before_*``/``after_*`` on every callback in ``order``. A callback may raise
one of the Cancel*Exception to skip the rest of that stage; ``after_cancel_*``
then runs, and the stage's ``after_*`` still does. Recording, progress output,
schedules and lr_find are callbacks too; all but the Recorder live in fastkern.callback.
"""

import contextlib
import inspect
import json
import math
import time
from pathlib import Path

from . import nn
from ._C import Tensor, device
from ._grad_mode import no_grad
from .callback.core import (  # noqa: F401  (the callback names are importable from here as before)
    EVENTS,
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    GatherPreds,
    TrainEvalCallback,
)
from .callback.progress import ProgressCallback
from .callback.schedule import LRFinder, ParamScheduler, SuggestedLRs, suggest_lrs  # noqa: F401
from .metrics import as_metric
from .optim import Adam
from .optim.lr_scheduler import combined_cos, get_momentum
from .torch_core import default_device, to_device


class Recorder(Callback):
    """Keeps per-batch smoothed losses, lrs and momentums, and per-epoch losses and metrics.

    ``values`` holds one [train_loss, valid_loss, *metrics] per epoch; ``log`` is the last table row.
    """

    order = 50

    def __init__(self, beta=0.98):
        self.beta = beta
        self.lrs, self.moms, self.losses, self.iters, self.values, self.log = [], [], [], [], [], []
        self.valid_log = []

    def before_fit(self):
        self.lrs, self.moms, self.losses, self.iters, self.values = [], [], [], [], []
        self._smooth, self._nsmooth = 0.0, 0
        self.learn.smooth_loss = float("nan")

    @property
    def metric_names(self):
        return ["epoch", "train_loss", "valid_loss"] + [m.name for m in self.learn.metrics] + ["time"]

    def before_epoch(self):
        self._start = time.perf_counter()

    def before_train(self):
        self._tot, self._n = 0.0, 0

    def before_validate(self):
        self._vtot, self._vn = 0.0, 0
        for m in self.learn.metrics:
            m.reset()

    def after_batch(self):
        if not len(self.yb) or self.loss is None:  # no targets, or the batch was cancelled before its loss
            return
        bs, loss = self.yb[0].shape[0], self.loss.item()
        if self.training:
            # exponential moving average with bias correction (fastai's AvgSmoothLoss)
            self._nsmooth += 1
            self._smooth = self.beta * self._smooth + (1 - self.beta) * loss
            self.learn.smooth_loss = self._smooth / (1 - self.beta**self._nsmooth)
            self.losses.append(self.learn.smooth_loss)
            self.lrs.append(self.opt.param_groups[-1]["lr"])
            self.moms.append(get_momentum(self.opt.param_groups[-1]))
            self.iters.append(self.train_iter)
            self._tot, self._n = self._tot + loss * bs, self._n + bs
        else:
            self._vtot, self._vn = self._vtot + loss * bs, self._vn + bs
            for m in self.learn.metrics:
                m.accumulate(self.learn)

    def after_validate(self):
        self.valid_log = [self._vtot / self._vn if self._vn else None] + [m.value for m in self.learn.metrics]

    def after_epoch(self):
        train_loss = self._tot / self._n if getattr(self, "_n", 0) else None
        self.values.append([train_loss] + self.valid_log)
        self.log = [self.epoch, train_loss] + self.valid_log + [time.perf_counter() - self._start]

    # -- plots (matplotlib, imported only here) ----------------------------------
    def plot_loss(self, skip_start=5, with_valid=True, fname=None):
        plt = _pyplot()
        fig, ax = plt.subplots()
        ax.plot(self.iters[skip_start:], self.losses[skip_start:], label="train (smoothed)")
        if with_valid and self.values:
            per_epoch = len(self.iters) / max(len(self.values), 1)
            xs = [(i + 1) * per_epoch for i in range(len(self.values))]
            ax.plot(xs, [v[1] for v in self.values], "o-", label="valid")
        ax.set(xlabel="iteration", ylabel="loss")
        ax.legend()
        return _show(fig, fname, "loss.png")

    def plot_lr_find(self, skip_end=5, suggestions=None, fname=None):
        plt = _pyplot()
        fig, ax = plt.subplots()
        end = len(self.lrs) - skip_end if len(self.lrs) > skip_end else len(self.lrs)
        ax.plot(self.lrs[:end], self.losses[:end])
        for (name, lr), color in zip((suggestions or {}).items(), ("C1", "C2", "C3", "C4")):
            ax.axvline(lr, color=color, linestyle="--", label=f"{name}: {lr:.2e}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="loss (smoothed)")
        if suggestions:
            ax.legend()
        return _show(fig, fname, "lr_find.png")

    def plot_sched(self, fname=None):
        plt = _pyplot()
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        a1.plot(self.iters, self.lrs)
        a1.set(xlabel="iteration", ylabel="learning rate")
        a2.plot(self.iters, self.moms)
        a2.set(xlabel="iteration", ylabel="momentum")
        return _show(fig, fname, "sched.png")


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _show(fig, fname, default):
    """Shows the figure on an interactive backend or in a notebook; otherwise writes a PNG."""
    import matplotlib
    import matplotlib.pyplot as plt

    interactive = matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo", "template")
    if fname is not None or not interactive:
        fname = fname or default
        fig.savefig(fname, dpi=100, bbox_inches="tight")
        plt.close(fig)
        print(f"saved {fname}")
        return fname
    plt.show()
    return fig


def _lr_list(lr, n):
    """Per-group lrs: a number for all, slice(hi) as hi/10 then hi, slice(lo, hi) spaced geometrically."""
    if not isinstance(lr, slice):
        return list(lr) if isinstance(lr, (list, tuple)) else [lr] * n
    if lr.stop is None:
        raise ValueError("slice lr needs a stop value: slice(hi) or slice(lo, hi)")
    if lr.start is None:
        return [lr.stop / 10] * (n - 1) + [lr.stop]
    if n == 1:
        return [lr.stop]
    return [lr.start * (lr.stop / lr.start) ** (i / (n - 1)) for i in range(n)]


def trainable_params(model):
    return [p for p in model.parameters() if p.requires_grad]


def default_splitter(model):
    """One layer group holding every parameter."""
    return [list(model.parameters())]


def body_head_splitter(model):
    """Two groups for a Sequential: the last child with parameters onward is the head."""
    children = list(model.children())
    with_params = [i for i, c in enumerate(children) if any(True for _ in c.parameters())]
    if len(with_params) < 2:
        return default_splitter(model)
    cut = with_params[-1]
    body = [p for c in children[:cut] for p in c.parameters()]
    head = [p for c in children[cut:] for p in c.parameters()]
    return [body, head]


_ACTIVATIONS = {
    "cross_entropy": (lambda x: x.softmax(-1), lambda x: x.argmax(-1)),
    "binary_cross_entropy_with_logits": (lambda x: x.sigmoid(), lambda x: x > 0.5),
}


class Learner:
    def __init__(
        self,
        dls,
        model,
        loss_func=None,
        opt_func=Adam,
        lr=1e-3,
        splitter=default_splitter,
        cbs=None,
        metrics=None,
        path=None,
        model_dir="models",
        wd=None,
        train_bn=True,
        moms=(0.95, 0.85, 0.95),
        progress=True,
        device=None,
    ):
        self.dls, self.model = dls, model
        self.device = device
        self.loss_func = nn.CrossEntropyLoss() if loss_func is None else loss_func
        self.opt_func, self.lr, self.splitter = opt_func, lr, splitter
        self.wd, self.train_bn, self.moms = wd, train_bn, moms
        self.metrics = [
            as_metric(m)
            for m in (metrics if isinstance(metrics, (list, tuple)) else [] if metrics is None else [metrics])
        ]
        self.path = Path(path if path is not None else getattr(dls, "path", "."))
        self.model_dir = model_dir
        self.opt, self.training, self.epoch, self.n_epoch = None, False, 0, 1
        self.xb, self.yb, self.pred, self.loss = (), (), None, None
        self.cbs = []
        self.add_cbs([TrainEvalCallback(), Recorder()] + ([ProgressCallback()] if progress else []) + list(cbs or []))

    # -- device ------------------------------------------------------------------
    @property
    def device(self):
        """Where the model trains and predicts: the ``device`` argument, else the loaders'
        device, else ``default_device()`` (CUDA when available, as fastai's)."""
        if self._device is not None:
            return self._device
        dl_device = getattr(self.dls, "device", None) if self.dls is not None else None
        return device(str(dl_device)) if dl_device is not None else default_device()

    @device.setter
    def device(self, d):
        self._device = None if d is None else device(str(d))

    def _place(self):
        """Moves the model, the loss's tensors and the optimizer's state to ``self.device``
        (in place: the optimizer keeps its parameters); returns the device."""
        d = self.device
        self.model.to(d)
        if isinstance(self.loss_func, nn.Module):
            self.loss_func.to(d)
        for state in self.opt.state.values() if self.opt is not None else ():
            for k, v in state.items():
                if isinstance(v, Tensor):
                    state[k] = v.to(d)
        return d

    # -- callbacks ---------------------------------------------------------------
    def add_cb(self, cb):
        cb = cb() if isinstance(cb, type) else cb
        cb.learn = self
        setattr(self, cb.name, cb)
        self.cbs.append(cb)
        self.cbs.sort(key=lambda c: c.order)  # stable: equal orders keep insertion order
        return self

    def add_cbs(self, cbs):
        for cb in cbs:
            self.add_cb(cb)
        return self

    def remove_cb(self, cb):
        self.cbs.remove(cb)
        if getattr(self, cb.name, None) is cb:
            delattr(self, cb.name)
        return self

    @contextlib.contextmanager
    def added_cbs(self, cbs):
        cbs = [cb() if isinstance(cb, type) else cb for cb in (cbs or [])]
        self.add_cbs(cbs)
        try:
            yield self
        finally:
            for cb in cbs:
                self.remove_cb(cb)

    def __call__(self, event):
        for cb in list(self.cbs):
            cb(event)

    def _with_events(self, f, name, ex, final=None):
        try:
            self(f"before_{name}")
            f()
        except ex:
            self(f"after_cancel_{name}")
        self(f"after_{name}")
        if final is not None:
            final()

    # -- optimizer and layer groups ------------------------------------------------
    def create_opt(self):
        groups = [g for g in self.splitter(self.model) if g]
        self.opt = self.opt_func([{"params": g} for g in groups], lr=self.lr)
        if self.wd is not None:
            for g in self.opt.param_groups:
                g["weight_decay"] = self.wd

    def _set_lr(self, lr):
        groups = self.opt.param_groups
        for g, v in zip(groups, _lr_list(lr, len(groups))):
            g["lr"] = v

    def freeze_to(self, n):
        """Trains layer groups n onward only (batch-norm layers stay trainable with train_bn)."""
        if self.opt is None:
            self.create_opt()
        groups = self.opt.param_groups
        bn = {id(p) for m in self.model.modules() if isinstance(m, nn.layers._BatchNorm) for p in m.parameters()}
        frozen = set(range(len(groups))[:n])
        for i, g in enumerate(groups):
            for p in g["params"]:
                p.requires_grad_(i not in frozen or (self.train_bn and id(p) in bn))
                if not p.requires_grad:
                    p.grad = None

    def freeze(self):
        self.freeze_to(-1)

    def unfreeze(self):
        self.freeze_to(0)

    # -- the loop ------------------------------------------------------------------
    def fit(self, n_epoch, lr=None, wd=None, cbs=None, reset_opt=False):
        with self.added_cbs(cbs):
            self._place()
            if reset_opt or self.opt is None:
                self.create_opt()
            wd = self.wd if wd is None else wd
            if wd is not None:
                for g in self.opt.param_groups:
                    g["weight_decay"] = wd
            self._set_lr(self.lr if lr is None else lr)
            self.n_epoch, self.loss = n_epoch, None
            self._with_events(self._do_fit, "fit", CancelFitException, self._end_cleanup)

    def _do_fit(self):
        for epoch in range(self.n_epoch):
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def _do_epoch(self):
        self.dl = self.dls.train
        self._with_events(self._all_batches, "train", CancelTrainException)
        self._do_validate()

    def _do_validate(self, dl=None):
        self.dl = self.dls.valid if dl is None else dl
        self._place()
        with no_grad():
            self._with_events(self._all_batches, "validate", CancelValidException)

    def _all_batches(self):
        self.n_iter = len(self.dl)
        d = self.device
        for i, b in enumerate(self.dl):
            self.iter = i
            b = to_device(tuple(b), d, non_blocking=True)  # waits unless the loader pinned it
            self.xb, self.yb, self.loss = b[:-1], b[-1:], None
            self._with_events(self._do_one_batch, "batch", CancelBatchException)

    def _do_one_batch(self):
        self.pred = self.model(*self.xb)
        self("after_pred")
        if len(self.yb):
            self.loss_grad = self.loss_func(self.pred, *self.yb)
            self.loss = self.loss_grad.detach()
        self("after_loss")
        if not self.training or not len(self.yb):
            return
        self._with_events(self.loss_grad.backward, "backward", CancelBackwardException)
        self._with_events(self.opt.step, "step", CancelStepException)
        self.opt.zero_grad()

    def _end_cleanup(self):
        self.dl, self.xb, self.yb, self.pred, self.loss_grad = None, (), (), None, None

    def fit_one_cycle(
        self,
        n_epoch,
        lr_max=None,
        div=25.0,
        div_final=1e5,
        pct_start=0.25,
        wd=None,
        moms=None,
        cbs=None,
        reset_opt=False,
    ):
        """fastai's one-cycle: lr warms up from lr_max/div to lr_max over pct_start of the
        iterations, then anneals to lr_max/div_final, cosine both ways; momentum goes the other way."""
        if reset_opt or self.opt is None:
            self.create_opt()
        n = len(self.opt.param_groups)
        lr_maxes = _lr_list(self.lr if lr_max is None else lr_max, n)
        scheds = {
            "lr": [combined_cos(pct_start, lr / div, lr, lr / div_final) for lr in lr_maxes],
            "mom": combined_cos(pct_start, *(moms or self.moms)),
        }
        self.fit(n_epoch, cbs=[ParamScheduler(scheds)] + list(cbs or []), wd=wd)

    def fine_tune(self, epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5.0, **kwargs):
        """fastai's transfer learning: one cycle on the last layer group alone (pct_start 0.99),
        then unfreeze and one cycle on everything with rates from base_lr/2/lr_mult (first
        group) to base_lr/2 (last)."""
        self.freeze()
        self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, **kwargs)
        base_lr /= 2
        self.unfreeze()
        self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kwargs)

    def lr_find(self, start_lr=1e-7, end_lr=10, num_it=100, stop_div=True, show_plot=False):
        """Trains with an exponentially rising lr, restores the weights, returns SuggestedLRs."""
        n_epoch = math.ceil(num_it / len(self.dls.train))
        cb = LRFinder(start_lr, end_lr, num_it, stop_div)
        progress = getattr(self, "progress", None)
        with contextlib.ExitStack() as stack:
            if progress is not None:
                stack.enter_context(progress.no_table())
            if self.opt is None:
                self.create_opt()
            lrs = [g["lr"] for g in self.opt.param_groups]
            self.fit(n_epoch, cbs=[cb])
            self._set_lr(lrs)
        sugg = suggest_lrs(self.recorder.lrs, self.recorder.losses)
        if show_plot:
            self.recorder.plot_lr_find(suggestions=sugg._asdict())
        return sugg

    # -- evaluation ----------------------------------------------------------------
    def validate(self, dl=None, cbs=None):
        """[valid_loss, *metrics] on ``dl`` (default: the validation loader)."""
        with self.added_cbs(cbs):
            self._do_validate(dl)
        return list(self.recorder.valid_log)

    def _activation(self):
        act = getattr(self.loss_func, "activation", None)
        if act is None:
            act = _ACTIVATIONS.get(getattr(self.loss_func, "__name__", ""), (None,))[0]
        return act or (lambda x: x)

    def _decodes(self):
        dec = getattr(self.loss_func, "decodes", None)
        if dec is None:
            dec = _ACTIVATIONS.get(getattr(self.loss_func, "__name__", ""), (None, None))[1]
        return dec or (lambda x: x)

    def get_preds(self, ds_idx=1, dl=None, with_input=False, with_decoded=False, with_loss=False, act=None):
        """(predictions, targets[, decoded][, losses]) over a loader, with the loss's activation
        applied (softmax for cross-entropy). ``with_input`` puts the inputs first."""
        from ._C import cat

        dl = self.dls[ds_idx] if dl is None else dl
        gather = GatherPreds()
        with self.added_cbs([gather]):
            self._do_validate(dl)
        raw = cat(gather.preds)
        targs = cat(gather.targs) if gather.targs else None
        res = [(act or self._activation())(raw), targs]
        if with_decoded:
            res.append(self._decodes()(res[0]))
        if with_loss:
            with no_grad():
                d = self.device  # where the loss's own tensors (class weights) are
                res.append(_per_item_loss(self.loss_func, raw.to(d), targs.to(d)).cpu())
        if with_input:
            res.insert(0, cat(gather.inputs))
        return tuple(res)

    def predict(self, item):
        """(decoded class, class index, probabilities) for one raw item (a path, an image, a tensor)."""
        from .data.core import default_collate

        item_tfms, after_batch, vocab = self._item_pipeline()
        x = item_tfms(item) if item_tfms is not None else item
        (xb,) = default_collate([(x,)])
        xb = xb.to(self._place())
        if after_batch is not None:
            xb = after_batch(xb)
        self.model.eval()
        with no_grad():
            probs = self._activation()(self.model(xb))[0].cpu()
        idx = self._decodes()(probs)
        if vocab is not None and idx.ndim == 0:
            return vocab[int(idx.item())], idx, probs
        return idx, idx, probs

    def show_results(self, ds_idx=1, dl=None, max_n=9, shuffle=True, nrows=None, ncols=None, figsize=None, fname=None):
        """fastai's: ``max_n`` images of a batch of the validation set (or ``dl``; a shuffled one
        unless ``shuffle=False``), each titled with its target above the model's prediction, green
        where they agree and red where not. A PNG (show_results.png) when there is no display."""
        from .data.vision import input_images, show_images

        dl = self.dls[ds_idx] if dl is None else dl
        b = (dl.new(shuffle=True) if shuffle else dl).one_batch()
        b = tuple(t[:max_n] for t in b)  # predict only what is shown
        x, _, targs, decoded = self.get_preds(dl=[b], with_input=True, with_decoded=True)
        vocab = self.dls.vocab if self.dls is not None else None
        name = (lambda i: str(vocab[i])) if vocab is not None else str
        targs, decoded = targs.tolist(), decoded.tolist()
        titles = [f"{name(t)}\n{name(p)}" for t, p in zip(targs, decoded)]
        colors = ["green" if t == p else "red" for t, p in zip(targs, decoded)]
        imgs = input_images(x, dl.after_batch)
        return show_images(imgs, titles, colors, nrows, ncols, figsize, fname=fname, default="show_results.png")

    def _item_pipeline(self):
        if self.dls is not None:
            return self.dls.item_tfms, self.dls.after_batch, self.dls.vocab
        return getattr(self, "_exported", (None, None, None))

    # -- checkpoints -----------------------------------------------------------------
    def _file(self, name):
        name = Path(name)
        return name if name.suffix else self.path / self.model_dir / f"{name}.safetensors"

    def save(self, file, with_opt=True):
        """Model (and optimizer) state to path/model_dir/file.safetensors; returns the path."""
        from .serialization import save

        state = {"model": self.model.state_dict()}
        if with_opt and self.opt is not None:
            state["opt"] = self.opt.state_dict()
        path = self._file(file)
        save(state, path)
        return path

    def load(self, file, with_opt=True, strict=True):
        from .serialization import load

        state = load(self._file(file))
        self.model.load_state_dict(state["model"], strict=strict)
        if with_opt and "opt" in state:
            if self.opt is None:
                self.create_opt()
            self.opt.load_state_dict(state["opt"])
        return self

    def export(self, fname="export.safetensors"):
        """One safetensors file: the weights (as host tensors), and in its metadata the model's
        architecture as data (fastkern.nn.spec: classes by name and their constructor arguments),
        the vocab, the item and batch transforms and the loss. No pickle, so loading runs no code
        from the file."""
        from .nn.spec import module_spec
        from .serialization import save

        item_tfms, after_batch, vocab = self._item_pipeline()
        info = {
            "model": module_spec(self.model),
            "vocab": list(vocab) if vocab is not None else None,
            "item_tfms": _tfms_list(item_tfms),
            "after_batch": _tfms_list(after_batch),
            "loss": _loss_spec(self.loss_func),
        }
        path = Path(fname) if Path(fname).is_absolute() else self.path / fname
        save(self.model.state_dict(), path, metadata={"fastkern_learner": json.dumps(info)})
        return path


def _tfms_list(p):
    from .data.transforms import Pipeline

    return None if p is None else Pipeline(p).to_list()


# the losses an export names, and so the only ones load_learner builds
_LOSSES = {
    c.__name__: c for c in (nn.CrossEntropyLoss, nn.NLLLoss, nn.MSELoss, nn.L1Loss, nn.BCEWithLogitsLoss, nn.BCELoss)
}


def _loss_spec(loss):
    if type(loss) in _LOSSES.values():
        # constructor arguments that JSON can hold (a class-weight tensor does not matter for inference)
        args = {
            k: v
            for k, v in vars(loss).items()
            if not k.startswith("_") and k != "training" and isinstance(v, (int, float, str))
        }
        return {"name": type(loss).__name__, "args": args}
    name = getattr(loss, "__name__", None)
    return {"name": name, "function": True} if name in _ACTIVATIONS else None


def load_learner(fname, model=None, cpu=True, device=None, trusted=()):
    """A Learner for inference from ``export``'s file. The model is rebuilt from the file's
    architecture: fastkern's own module classes freely, a class of yours (a Module subclass
    defined outside fastkern) only when you name it in ``trusted``; or pass ``model`` built
    yourself. A bundle that is not what ``export`` writes is a ValueError.

    As fastai's: the model is on the CPU, or with ``cpu=False`` on ``default_device()``;
    ``device`` names the device outright."""
    from .nn.spec import build_module
    from .serialization import load_with_metadata

    state, meta = load_with_metadata(fname)
    if "fastkern_learner" not in meta:
        raise ValueError(f"{fname} is not a fastkern Learner export (no 'fastkern_learner' metadata)")
    try:
        info = _bundle_info(meta["fastkern_learner"])
        # building runs the bundle's arguments through constructors: any error there is the bundle's
        model = build_module(info["model"], tuple(trusted)) if model is None else model
        model.load_state_dict(state)
        item_tfms, after_batch = (_pipeline(info[k]) for k in ("item_tfms", "after_batch"))
        loss = _loss_from_spec(info["loss"])
    except (TypeError, ValueError, RuntimeError, MemoryError, RecursionError) as e:
        raise ValueError(f"malformed bundle {fname}: {e}") from e
    if device is None:
        device = "cpu" if cpu else default_device()
    learn = Learner(None, model, loss_func=loss, progress=False, device=device)
    learn._place()
    learn._exported = (item_tfms, after_batch, info["vocab"])
    return learn


def _bundle_info(text):
    """export's JSON with the type of every field checked (the model's spec is checked as it
    is built)."""
    info = json.loads(text)

    def check(ok, what):
        if not ok:
            raise ValueError(what)

    check(
        isinstance(info, dict) and {"model", "vocab", "item_tfms", "after_batch"} <= info.keys(),
        "the learner metadata lacks one of model, vocab, item_tfms, after_batch",
    )
    vocab = info["vocab"]
    check(
        vocab is None or isinstance(vocab, list) and all(isinstance(v, (str, int, float)) for v in vocab),
        "'vocab' is not a list of labels",
    )
    for k in ("item_tfms", "after_batch"):
        tfms = info[k]
        check(
            tfms is None
            or isinstance(tfms, list)
            and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tfms),
            f"{k!r} is not a list of transforms",
        )
    spec = info.get("loss")
    check(spec is None or isinstance(spec, dict) and isinstance(spec.get("name"), str), "'loss' is not a loss spec")
    return {**info, "loss": spec}


def _pipeline(items):
    from .data.transforms import _REGISTRY, Pipeline

    if items is None:
        return None
    for d in items:
        if d["name"] in _REGISTRY:  # (from_list refuses unknown names)
            _check_args(_REGISTRY[d["name"]], {k: v for k, v in d.items() if k != "name"}, f"transform {d['name']!r}")
    return Pipeline.from_list(items)


def _loss_from_spec(spec):
    if spec is None:
        return None
    name = spec["name"]
    if spec.get("function"):
        if name not in _ACTIVATIONS:
            raise ValueError(f"unknown loss function {name!r} (known: {sorted(_ACTIVATIONS)})")
        from .nn import functional as F

        return getattr(F, name)
    if name not in _LOSSES:
        raise ValueError(f"unknown loss {name!r} (known: {sorted(_LOSSES)})")
    args = spec.get("args", {})
    if not isinstance(args, dict):
        raise ValueError(f"the arguments of loss {name!r} are not a dict")
    _check_args(_LOSSES[name], args, f"loss {name!r}")
    if args.get("reduction", "mean") not in ("mean", "sum", "none"):
        raise ValueError(f"loss {name!r} has reduction {args['reduction']!r} (not 'mean', 'sum' or 'none')")
    return _LOSSES[name](**args)


# JSON value kinds a default's type allows: bool before int (a bool is an int), a list for a tuple
_KINDS = ((bool, (bool,)), (int, (int,)), (float, (int, float)), (str, (str,)), ((tuple, list), (list,)))


def _check_args(fn, kwargs, what):
    """Each of a bundle's keyword arguments must be one of ``fn``'s, of its default's kind."""
    params = inspect.signature(fn).parameters
    for k, v in kwargs.items():
        p = params.get(k)
        if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise ValueError(f"{what} has no argument {k!r}")
        kind = next((ok for t, ok in _KINDS if isinstance(p.default, t)), None)
        if kind is not None and not (isinstance(v, kind) and (bool in kind or not isinstance(v, bool))):
            raise ValueError(f"{what}: argument {k}={v!r} is not of the kind of its default {p.default!r}")


def _per_item_loss(loss_func, pred, targ):
    if hasattr(loss_func, "reduction"):
        old = loss_func.reduction
        loss_func.reduction = "none"
        try:
            return loss_func(pred, targ)
        finally:
            loss_func.reduction = old
    try:
        return loss_func(pred, targ, reduction="none")
    except TypeError:  # a hand-written loss without a reduction argument
        from ._C import stack

        return stack([loss_func(pred[i : i + 1], targ[i : i + 1]) for i in range(pred.shape[0])])
