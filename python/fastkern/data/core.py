"""Datasets and loaders with torch.utils.data's names, plus fastai's DataLoaders pair.

A DataLoader draws index batches (shuffled by a seeded numpy generator), fetches
the items, collates them into tensors and applies ``after_batch`` to the inputs.
Datasets that can fetch a whole batch at once (``get_batch``, as TensorDataset)
skip the per-item loop, which is what makes an MNIST epoch cheap.
"""

import concurrent.futures as cf
import copy
import math
import multiprocessing
import warnings

import numpy as np

from .._C import Tensor
from ..torch_core import apply_tensors, to_device
from .transforms import call_tfm, item_seed


class Dataset:
    """Map-style dataset: ``__getitem__(i)`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Item i is (t[i] for each tensor); all tensors share their first dimension."""

    def __init__(self, *tensors):
        if not tensors or any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError(f"TensorDataset: size mismatch between tensors {[list(t.shape) for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]

    def get_batch(self, indices):
        from .._creation import from_numpy

        idx = from_numpy(np.asarray(indices, dtype=np.int64))
        return tuple(t[idx] for t in self.tensors)


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __len__(self):
        return len(self.indices)

    def get_batch(self, indices):
        if not hasattr(self.dataset, "get_batch"):
            return default_collate([self.dataset[int(i)] for i in self.indices[np.asarray(indices)]])
        return self.dataset.get_batch(self.indices[np.asarray(indices)])

    def __getattr__(self, name):  # vocab, items, ... of the underlying dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _rng(seed=None, generator=None):
    if generator is not None:
        return generator
    if seed is None:  # follow fk.manual_seed, so seeded programs shuffle reproducibly
        from .._creation import randint

        seed = int(randint(0, 2**62, (1,)).item())
    return np.random.default_rng(seed)


def random_split(dataset, lengths, generator=None, seed=None):
    """Splits into non-overlapping Subsets; lengths may be counts or fractions summing to 1."""
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # leftovers round-robin, as PyTorch
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    perm = _rng(seed, generator).permutation(n)
    ends = np.cumsum(lengths)
    return [Subset(dataset, perm[e - k : e]) for k, e in zip(lengths, ends)]


def default_collate(items):
    """Stacks a list of items into a batch: tuples field by field; tensors, arrays and numbers to tensors."""
    from .._C import stack
    from .._creation import from_numpy, tensor

    first = items[0]
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([it[i] for it in items]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([it[k] for it in items]) for k in first}
    if isinstance(first, Tensor):
        return stack(items)
    if isinstance(first, np.ndarray):
        return from_numpy(np.stack(items))
    if isinstance(first, (bool, int, float, np.number)):
        return tensor(items)
    return list(items)  # strings, paths: left as a list


def _pin(b):
    return apply_tensors(Tensor.pin_memory, b)


def _numpy_items(items):
    """Worker processes return numpy, which pickles without fastkern."""
    if isinstance(items, Tensor):
        return items.numpy()
    if isinstance(items, (tuple, list)):
        return type(items)(_numpy_items(i) for i in items)
    return items


_worker_dataset = None


def _init_worker(dataset):
    global _worker_dataset
    _worker_dataset = dataset


def _fetch_in_worker(indices, seed=None):
    with item_seed(seed):
        return _numpy_items([_worker_dataset[int(i)] for i in indices])


def _is_count(v):
    """A non-negative int (a bool is an int to Python, not a count)."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


class DataLoader:
    """torch.utils.data.DataLoader's main arguments.

    shuffle uses ``generator`` (a numpy Generator) or ``seed`` (each epoch then draws
    a new order from one seeded stream), else a seed from fk's global RNG.
    num_workers > 0 fetches batches ahead in threads (``worker_type="thread"``: decoding
    that releases the GIL, such as Pillow) or processes (``"process"``: the dataset must
    be picklable and its items plain numpy/numbers).
    ``pin_memory`` puts batches in page-locked memory (in the worker threads, when there
    are some), from which a copy to the GPU does not wait; ``device`` (as fastai's) moves each
    batch there, asynchronously from pinned memory, before ``after_batch`` is applied to its
    inputs (every field but the last).
    ``split_idx`` (fastai's: 0 for a training loader, 1 for validation) is passed to random
    transforms in ``after_batch``, which augment only on the training set; a training loader also
    gives each batch a seed for the random item transforms of its dataset (see transforms.item_seed).
    """

    def __init__(
        self,
        dataset,
        batch_size=1,
        shuffle=False,
        drop_last=False,
        collate_fn=None,
        num_workers=0,
        worker_type="thread",
        generator=None,
        seed=None,
        after_batch=None,
        prefetch_factor=2,
        pin_memory=False,
        device=None,
        split_idx=None,
    ):
        if worker_type not in ("thread", "process"):
            raise ValueError(f"worker_type must be 'thread' or 'process', got {worker_type!r}")
        # PyTorch's checks and messages
        if not _is_count(batch_size) or batch_size == 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        if not _is_count(num_workers):
            raise ValueError(
                "num_workers option should be a non-negative integer; use num_workers=0 to disable "
                f"multiprocessing (got num_workers={num_workers})"
            )
        prefetch_factor = 2 if prefetch_factor is None else prefetch_factor  # PyTorch's default, spelled None
        if not _is_count(prefetch_factor):
            raise ValueError(f"prefetch_factor option should be a non-negative integer, got {prefetch_factor}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.collate_fn, self.num_workers, self.worker_type = collate_fn, num_workers, worker_type
        self.after_batch, self.prefetch_factor = after_batch, prefetch_factor
        if pin_memory and not _cuda_available():
            warnings.warn("pin_memory=True, but no CUDA device is available: batches stay in pageable memory")
            pin_memory = False
        self.pin_memory, self.device, self.split_idx = bool(pin_memory), device, split_idx
        self._gen = generator if generator is not None else (np.random.default_rng(seed) if seed is not None else None)
        self._pool = None

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def bs(self):
        return self.batch_size

    def batch_indices(self):
        """The index batches of one epoch (a new shuffle each call)."""
        n = len(self.dataset)
        order = _rng(generator=self._gen).permutation(n) if self.shuffle else np.arange(n)
        return [order[i : i + self.batch_size] for i in range(0, len(self) * self.batch_size, self.batch_size)]

    def batch_seeds(self, n):
        """Seeds for the random item transforms of an epoch's ``n`` batches (None off the training set)."""
        if self.split_idx != 0:
            return [None] * n
        base = int(_rng(generator=self._gen).integers(2**62))
        return [(base, i) for i in range(n)]

    def _fetch(self, indices, seed=None):
        with item_seed(seed):
            if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
                batch = self.dataset.get_batch(indices)
            else:
                batch = (self.collate_fn or default_collate)([self.dataset[int(i)] for i in indices])
        return _pin(batch) if self.pin_memory else batch

    def _finish(self, batch):
        if self.worker_type == "process" and self.num_workers:
            batch = (self.collate_fn or default_collate)(batch)
            batch = _pin(batch) if self.pin_memory else batch
        if self.device is not None:
            batch = to_device(batch, self.device, non_blocking=self.pin_memory)
        if self.after_batch is not None:
            batch = tuple(batch)
            batch = tuple(call_tfm(self.after_batch, b, self.split_idx) for b in batch[:-1]) + batch[-1:]
        return batch

    def _executor(self):
        if self._pool is None:
            if self.worker_type == "thread":
                self._pool = cf.ThreadPoolExecutor(self.num_workers)
            else:
                # spawn: forking a process that runs kernel threads is not safe
                ctx = multiprocessing.get_context("spawn")
                self._pool = cf.ProcessPoolExecutor(self.num_workers, ctx, _init_worker, (self.dataset,))
        return self._pool

    def __iter__(self):
        batches = self.batch_indices()
        seeds = self.batch_seeds(len(batches))
        if not self.num_workers:
            for idx, seed in zip(batches, seeds):
                yield self._finish(self._fetch(idx, seed))
            return
        fetch = self._fetch if self.worker_type == "thread" else _fetch_in_worker
        pool, ahead = self._executor(), max(1, self.num_workers * self.prefetch_factor)
        pending = [pool.submit(fetch, idx, seed) for idx, seed in zip(batches[:ahead], seeds)]
        for i in range(len(batches)):
            batch = pending[i].result()
            if i + ahead < len(batches):
                pending.append(pool.submit(fetch, batches[i + ahead], seeds[i + ahead]))
            pending[i] = None  # drop our reference: the batch is the consumer's now
            yield self._finish(batch)

    def one_batch(self):
        return next(iter(self))

    def new(self, **kwargs):
        """A copy with some attributes changed, as fastai's ``dl.new(shuffle=True)``; the copy
        starts its own workers."""
        dl = copy.copy(self)
        dl._pool = None
        for k, v in kwargs.items():
            if k.startswith("_") or not hasattr(self, k):
                raise TypeError(f"DataLoader.new: unknown argument {k!r}")
            setattr(dl, k, v)
        return dl

    def show_batch(self, max_n=9, nrows=None, ncols=None, fname=None, figsize=None):
        """A grid of the first images of a batch, titled with their labels (see vision.show_batch)."""
        from .vision import show_batch

        vocab = getattr(self.dataset, "vocab", None)
        return show_batch(self, vocab, max_n=max_n, nrows=nrows, ncols=ncols, fname=fname, figsize=figsize)

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _cuda_available():
    from .. import cuda

    return cuda.is_available()


class DataLoaders:
    """fastai's container: ``.train`` and ``.valid`` loaders, plus what predicting on new
    items needs (``vocab``, ``item_tfms`` that turn a raw item into a dataset item)."""

    def __init__(self, *loaders, vocab=None, item_tfms=None, path="."):
        self.loaders = list(loaders)
        ds = loaders[0].dataset if loaders else None
        self.vocab = vocab if vocab is not None else getattr(ds, "vocab", None)
        self.item_tfms = item_tfms if item_tfms is not None else getattr(ds, "item_tfms", None)
        self.path = path

    def __getitem__(self, i):
        return self.loaders[i]

    def __len__(self):
        return len(self.loaders)

    train = property(lambda self: self.loaders[0])
    valid = property(lambda self: self.loaders[1])
    train_ds = property(lambda self: self.train.dataset)
    valid_ds = property(lambda self: self.valid.dataset)

    @property
    def after_batch(self):
        return self.train.after_batch if self.loaders else None

    @property
    def device(self):
        """Where the loaders put their batches (None: where the dataset made them)."""
        return self.train.device if self.loaders else None

    @device.setter
    def device(self, device):
        for dl in self.loaders:
            dl.device = device

    def to(self, device):
        self.device = device
        return self

    def cuda(self):
        return self.to("cuda")

    def cpu(self):
        return self.to("cpu")

    @property
    def c(self):
        """The number of classes (fastai's ``dls.c``)."""
        return len(self.vocab) if self.vocab is not None else None

    def one_batch(self):
        return self.train.one_batch()

    def show_batch(self, max_n=9, nrows=None, ncols=None, fname=None, figsize=None):
        """A grid of training images with their labels, as the model sees them (augmented), denormalised."""
        from .vision import show_batch

        return show_batch(self.train, self.vocab, max_n=max_n, nrows=nrows, ncols=ncols, fname=fname, figsize=figsize)

    @classmethod
    def from_dsets(
        cls,
        train_ds,
        valid_ds,
        bs=64,
        shuffle=True,
        drop_last=None,
        seed=None,
        after_batch=None,
        num_workers=0,
        worker_type="thread",
        vocab=None,
        item_tfms=None,
        path=".",
        val_bs=None,
        device=None,
        pin_memory=False,
    ):
        """Training loader shuffled (and, as fastai, dropping a last partial batch); validation in order.
        The loaders have fastai's split_idx: random transforms augment the training batches only."""
        kw = dict(
            after_batch=after_batch,
            num_workers=num_workers,
            worker_type=worker_type,
            device=device,
            pin_memory=pin_memory,
        )
        train = DataLoader(
            train_ds,
            bs,
            shuffle=shuffle,
            drop_last=shuffle if drop_last is None else drop_last,
            seed=seed,
            split_idx=0,
            **kw,
        )
        valid = DataLoader(valid_ds, val_bs or bs, split_idx=1, **kw)
        return cls(train, valid, vocab=vocab, item_tfms=item_tfms, path=path)
