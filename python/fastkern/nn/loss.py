"""Loss modules. Each also knows the activation that turns model outputs into
predictions and how to decode those (fastai's loss ``activation``/``decodes``),
which Learner.get_preds and Learner.predict use."""

from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def activation(self, x):
        return x

    def decodes(self, x):
        return x

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.weight, self.ignore_index, self.label_smoothing = weight, ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)

    def activation(self, x):
        return x.softmax(-1)

    def decodes(self, x):
        return x.argmax(-1)


class NLLLoss(_Loss):
    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)

    def activation(self, x):
        return x.exp()

    def decodes(self, x):
        return x.argmax(-1)


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, reduction="mean", thresh=0.5):
        super().__init__(reduction)
        self.thresh = thresh

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target.to(dtype=input.dtype), reduction=self.reduction)

    def activation(self, x):
        return x.sigmoid()

    def decodes(self, x):
        return x > self.thresh


class BCELoss(BCEWithLogitsLoss):
    """Binary cross-entropy on probabilities."""

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target.to(dtype=input.dtype), reduction=self.reduction)

    def activation(self, x):
        return x
