"""fastkern.data: datasets, loaders, splitters and transforms (torch.utils.data and fastai names),
and the data sets: the embedded MNIST sample, full MNIST and Fashion-MNIST."""

from .core import DataLoader, DataLoaders, Dataset, Subset, TensorDataset, default_collate, random_split
from .mnist import ImageClassData, MnistSample, fashion_mnist, mnist, mnist_sample, read_idx
from .splitters import EndSplitter, GrandparentSplitter, IndexSplitter, RandomSplitter
from .transforms import AddChannel, Flatten, IntToFloat, Normalize, Pipeline, Resize, Transform
from .vision import ImageFolder, get_image_files, image_folder_dls

__all__ = [
    "AddChannel",
    "DataLoader",
    "DataLoaders",
    "Dataset",
    "EndSplitter",
    "Flatten",
    "GrandparentSplitter",
    "ImageClassData",
    "ImageFolder",
    "IndexSplitter",
    "IntToFloat",
    "MnistSample",
    "Normalize",
    "Pipeline",
    "RandomSplitter",
    "Resize",
    "Subset",
    "TensorDataset",
    "Transform",
    "default_collate",
    "fashion_mnist",
    "get_image_files",
    "image_folder_dls",
    "mnist",
    "mnist_sample",
    "random_split",
    "read_idx",
]
