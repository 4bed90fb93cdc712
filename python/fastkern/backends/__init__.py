from . import cpu, cuda  # noqa: F401
