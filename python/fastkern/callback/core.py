"""The callback machinery of the training loop: the events, the Callback base class, the
Cancel*Exception a callback raises to skip the rest of a stage, and the two callbacks the
loop itself relies on (TrainEvalCallback, always present; GatherPreds, for get_preds)."""

from ..metrics import _snake


class CancelFitException(Exception):
    pass


class CancelEpochException(Exception):
    pass


class CancelTrainException(Exception):
    pass


class CancelValidException(Exception):
    pass


class CancelBatchException(Exception):
    pass


class CancelBackwardException(Exception):
    pass


class CancelStepException(Exception):
    pass


EVENTS = (
    "before_fit before_epoch before_train before_batch after_pred after_loss before_backward after_backward "
    "before_step after_step after_cancel_batch after_batch after_cancel_train after_train before_validate "
    "after_cancel_validate after_validate after_cancel_epoch after_epoch after_cancel_fit after_fit"
).split()
# Events inside the batch loop respect a callback's run_train/run_valid.
_INNER = {
    "before_batch",
    "after_pred",
    "after_loss",
    "before_backward",
    "after_backward",
    "before_step",
    "after_step",
    "after_cancel_batch",
    "after_batch",
}


class Callback:
    """Define methods named after events. Reading an attribute the callback lacks reads the
    learner's (``self.epoch``, ``self.loss``, ``self.model``...); to change the learner's state,
    assign through ``self.learn``."""

    order = 0
    run_train = run_valid = True
    learn = None

    def __getattr__(self, name):
        learn = self.__dict__.get("learn") or type(self).learn
        if learn is not None and not name.startswith("__"):
            return getattr(learn, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def name(self):
        n = type(self).__name__
        return _snake(n[: -len("Callback")] if n.endswith("Callback") and n != "Callback" else n)

    def __call__(self, event):
        training = getattr(self.learn, "training", False)
        if event not in _INNER or (self.run_train and training) or (self.run_valid and not training):
            fn = getattr(type(self), event, None)
            if fn is not None:
                fn(self)

    def __repr__(self):
        return type(self).__name__


class TrainEvalCallback(Callback):
    """Switches train/eval mode and counts iterations (``train_iter``, ``pct_train``)."""

    order = -10

    def before_fit(self):
        self.learn.epoch, self.learn.train_iter, self.learn.pct_train = 0, 0, 0.0

    def before_train(self):
        self.learn.training = True
        self.model.train()

    def after_batch(self):
        if self.learn.training:
            self.learn.train_iter += 1
            self.learn.pct_train += 1.0 / (self.n_iter * self.n_epoch)

    def before_validate(self):
        self.learn.training = False
        self.model.eval()


class GatherPreds(Callback):
    """Collects the predictions, targets and inputs of a validation pass (``Learner.get_preds``),
    on the CPU as fastai's (a GPU need not hold a whole dataset's worth)."""

    order = 70  # after the recorder

    def before_validate(self):
        self.preds, self.targs, self.inputs = [], [], []

    def after_batch(self):
        self.preds.append(self.pred.detach().cpu())
        if len(self.yb):
            self.targs.append(self.yb[0].cpu())
        if self.xb:
            self.inputs.append(self.xb[0].cpu())
