from . import cpu, cuda, mps  # noqa: F401
