"""Grad-mode switches: context managers that also work as decorators."""

import functools

from ._C import _set_grad_enabled, is_grad_enabled


class _Mode:
    enabled = None

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.enabled)

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_Mode):
    """Disables gradient recording: `with fastkern.no_grad(): ...` or `@fastkern.no_grad()`."""

    enabled = False


class enable_grad(_Mode):
    enabled = True


class set_grad_enabled(_Mode):
    """Sets grad mode now; as a context manager, restores the previous mode on exit."""

    def __init__(self, mode):
        self.enabled = bool(mode)
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.enabled)

    def __enter__(self):
        pass

    def __call__(self, fn):
        _set_grad_enabled(self._prev)
        return super().__call__(fn)


class inference_mode(_Mode):
    """torch.inference_mode: no recording, as no_grad (fastkern has no separate inference tensors).
    inference_mode(False) records as usual."""

    def __init__(self, mode=True):
        self.enabled = not mode
