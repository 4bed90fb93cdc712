from . import cpu  # noqa: F401
