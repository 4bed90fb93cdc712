"""Metrics as fastai: plain functions ``f(pred, targ)`` are averaged over batches
(weighted by batch size); Precision/Recall/F1 accumulate counts over the whole
validation set, because a mean of per-batch F1 scores is not the F1 score."""


def accuracy(inp, targ, axis=-1):
    """Fraction of rows whose argmax equals the target."""
    return (inp.argmax(axis) == targ.reshape(-1)).float().mean()


def error_rate(inp, targ, axis=-1):
    return 1 - accuracy(inp, targ, axis)


def top_k_accuracy(inp, targ, k=5, axis=-1):
    """Fraction of rows where the target's score is among the k highest (ties count in its favour)."""
    targ = targ.reshape(-1, 1)
    score = _pick(inp, targ)  # the target's own score, (N, 1)
    return ((inp > score).sum(axis) < k).float().mean()


def _pick(inp, targ):
    from ._creation import arange

    return inp[arange(inp.shape[0], device=inp.device), targ.reshape(-1)].reshape(-1, 1)


def binary_predictions(inp, thresh=0.5):
    """Class-1 decisions for binary tasks: argmax for (N, 2) outputs, else a sigmoid output above thresh."""
    if inp.ndim == 2 and inp.shape[1] == 2:
        return inp.argmax(-1)
    return (inp.reshape(-1) > thresh).long()


class Metric:
    """Accumulates over a validation pass: ``reset``, ``accumulate(learn)`` per batch, then ``value``."""

    def reset(self):
        pass

    def accumulate(self, learn):
        raise NotImplementedError

    @property
    def value(self):
        raise NotImplementedError

    @property
    def name(self):
        return _snake(type(self).__name__)


class AvgMetric(Metric):
    """A function of (pred, targ) averaged over batches, weighted by batch size."""

    def __init__(self, func, name=None):
        self.func, self._name = func, name

    def reset(self):
        self.total, self.count = 0.0, 0

    def accumulate(self, learn):
        bs = learn.yb[0].shape[0]
        self.total += float(self.func(learn.pred, *learn.yb)) * bs
        self.count += bs

    @property
    def value(self):
        return self.total / self.count if self.count else None

    @property
    def name(self):
        return self._name or getattr(self.func, "__name__", type(self.func).__name__)


class _Confusion(Metric):
    """Binary true/false positive and negative counts; ``pos_label`` is the positive class."""

    def __init__(self, pos_label=1, thresh=0.5):
        self.pos_label, self.thresh = pos_label, thresh

    def reset(self):
        self.tp = self.fp = self.fn = 0

    def accumulate(self, learn):
        pred = binary_predictions(learn.pred, self.thresh) == self.pos_label
        targ = learn.yb[0].reshape(-1) == self.pos_label
        self.tp += int((pred & targ).sum().item())
        self.fp += int((pred & ~targ).sum().item())
        self.fn += int((~pred & targ).sum().item())


class Precision(_Confusion):
    @property
    def value(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0


class Recall(_Confusion):
    @property
    def value(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class F1Score(_Confusion):
    @property
    def value(self):
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0


def as_metric(m):
    """Functions become AvgMetric; Metric instances (or classes) are used as they are."""
    if isinstance(m, type) and issubclass(m, Metric):
        return m()
    return m if isinstance(m, Metric) else AvgMetric(m)


def _snake(name):
    """CamelCase to snake_case: 'F1Score' -> 'f1_score', 'LRFinder' -> 'lr_finder'."""
    import re

    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().lstrip("_")
