"""fastkern.nn: layers and losses with PyTorch names."""
from . import functional  # noqa: F401
