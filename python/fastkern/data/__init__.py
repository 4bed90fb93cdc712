"""Data sets shipped with fastkern (no network needed) and readers for standard formats."""
from .mnist import MnistSample, mnist_sample, read_idx

__all__ = ["MnistSample", "mnist_sample", "read_idx"]
