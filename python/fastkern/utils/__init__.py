"""fastkern.utils: torch.utils's names (utils.data)."""

from . import data  # noqa: F401
