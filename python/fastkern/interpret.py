"""fastai's ClassificationInterpretation: what a classifier gets wrong, from its predictions on
the validation set (or any loader).

    interp = ClassificationInterpretation.from_learner(learn)
    interp.plot_confusion_matrix(); interp.most_confused(); interp.plot_top_losses(9)

Plots go to the screen where there is one, else to a PNG (``fname``), as the Recorder's do.
"""

import math

import numpy as np

from ._creation import from_numpy
from .data.vision import input_images, show_images


class ClassificationInterpretation:
    def __init__(self, learn, dl, inputs, preds, targs, decoded, losses):
        self.learn, self.dl = learn, dl
        self.inputs, self.preds, self.targs, self.decoded, self.losses = inputs, preds, targs, decoded, losses
        vocab = learn.dls.vocab if learn.dls is not None else None
        n = preds.shape[1]
        self.vocab = [str(v) for v in vocab] if vocab is not None and len(vocab) == n else [str(i) for i in range(n)]

    @classmethod
    def from_learner(cls, learn, ds_idx=1, dl=None):
        dl = learn.dls[ds_idx] if dl is None else dl
        inputs, preds, targs, decoded, losses = learn.get_preds(
            dl=dl, with_input=True, with_decoded=True, with_loss=True
        )
        return cls(learn, dl, inputs, preds, targs, decoded, losses)

    def confusion_matrix(self):
        """counts[actual, predicted], an int64 numpy array."""
        n = len(self.vocab)
        cm = np.zeros((n, n), dtype=np.int64)
        np.add.at(cm, (self.targs.numpy(), self.decoded.numpy()), 1)
        return cm

    def most_confused(self, min_val=1):
        """(actual, predicted, count) of the off-diagonal cells holding at least min_val, most first."""
        cm, names = self.confusion_matrix(), self.vocab
        cells = [(names[i], names[j], int(cm[i, j])) for i in range(len(cm)) for j in range(len(cm)) if i != j]
        return sorted((c for c in cells if c[2] >= min_val), key=lambda c: -c[2])

    def top_losses(self, k=None, largest=True):
        """(losses, indices) of the k items with the largest (or smallest) loss, as tensors."""
        losses = self.losses.numpy()
        order = np.argsort(-losses if largest else losses, kind="stable")[: k or len(losses)]
        return from_numpy(losses[order].copy()), from_numpy(order.astype(np.int64))

    def plot_confusion_matrix(self, normalize=False, title="Confusion matrix", cmap="Blues", fname=None):
        from .learner import _pyplot, _show

        plt = _pyplot()
        cm = self.confusion_matrix().astype(float)
        if normalize:
            cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        n = len(self.vocab)
        fig, ax = plt.subplots(figsize=(max(4, n * 0.6 + 2),) * 2)
        ax.imshow(cm, cmap=cmap)
        ax.set(title=title, xlabel="Predicted", ylabel="Actual", xticks=range(n), yticks=range(n))
        ax.set_xticklabels(self.vocab, rotation=90)
        ax.set_yticklabels(self.vocab)
        for i in range(n):
            for j in range(n):
                text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                ax.text(j, i, text, ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
        fig.tight_layout()
        return _show(fig, fname, "confusion_matrix.png")

    def plot_top_losses(self, k=9, largest=True, nrows=None, fname=None):
        """The k worst (or best) items as a grid, titled predicted/actual/loss/probability of the
        predicted class."""
        losses, idxs = self.top_losses(k, largest)
        images = input_images(self.inputs, getattr(self.dl, "after_batch", None))
        titles = []
        for loss, i in zip(losses.tolist(), idxs.tolist()):
            pred, actual = int(self.decoded[i].item()), int(self.targs[i].item())
            prob = self.preds[i, pred].item()
            titles.append(f"{self.vocab[pred]}/{self.vocab[actual]} / {loss:.2f} / {prob:.2f}")
        nrows = nrows or math.ceil(math.sqrt(len(idxs)))
        return show_images(
            images[idxs.numpy()],
            titles,
            nrows=nrows,
            suptitle="Prediction/Actual/Loss/Probability",
            fname=fname,
            default="top_losses.png",
            fontsize=9,
        )
