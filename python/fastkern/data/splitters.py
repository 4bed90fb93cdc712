"""fastai's splitters: functions from a list of items to (train indices, valid indices)."""

from pathlib import Path

import numpy as np


def RandomSplitter(valid_pct=0.2, seed=None):
    """A random ``valid_pct`` of the items for validation; the same split for the same seed."""

    def split(items):
        n = len(items)
        perm = np.random.default_rng(seed).permutation(n)
        cut = int(valid_pct * n)
        return sorted(perm[cut:].tolist()), sorted(perm[:cut].tolist())

    return split


def GrandparentSplitter(train_name="train", valid_name=("valid", "val")):
    """By folder: items are paths ``.../<train_name or valid_name>/<label>/<file>``."""
    valid_names = {valid_name} if isinstance(valid_name, str) else set(valid_name)

    def split(items):
        parents = [Path(p).parent.parent.name for p in items]
        return (
            [i for i, g in enumerate(parents) if g == train_name],
            [i for i, g in enumerate(parents) if g in valid_names],
        )

    return split


def EndSplitter(valid_pct=0.2, valid_last=True):
    """By order, for time series: the last ``valid_pct`` (or the first, valid_last=False) is validation."""

    def split(items):
        n = len(items)
        k = int(valid_pct * n)
        idx = list(range(n))
        return (idx[: n - k], idx[n - k :]) if valid_last else (idx[k:], idx[:k])

    return split


def IndexSplitter(valid_idx):
    """The given indices for validation, the rest for training."""

    def split(items):
        valid = set(int(i) for i in valid_idx)
        return [i for i in range(len(items)) if i not in valid], sorted(valid)

    return split
