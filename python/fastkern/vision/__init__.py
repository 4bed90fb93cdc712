"""fastkern.vision: computer-vision models (and, in time, image pipelines)."""

from . import models  # noqa: F401
