"""torch.utils.data's names: the datasets and loader of fastkern.data."""

from ..data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split  # noqa: F401
