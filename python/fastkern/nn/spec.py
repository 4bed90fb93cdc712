"""A model's architecture as data, so that an exported Learner rebuilds it without pickle.

Every Module remembers the arguments it was built with (``Module.__new__``). ``module_spec``
writes a model as JSON-ready data: its class by qualified name, those arguments bound to the
constructor's parameter names (modules among them as specs in turn), and the specs of its
children. ``build_module`` calls each class with its arguments, then puts back every child whose
spec differs from what the constructor made: a layer replaced after construction, as transfer
learning replaces a head, comes back as it was exported.

Loading never imports or runs anything a file names: classes defined in fastkern are looked up
by name among the Module subclasses already defined (importing fastkern's own modules first), and
any other class only among the ones the caller passes in ``trusted``.
"""

import inspect
import re
from collections import OrderedDict

from .._C import device, dtype
from .module import Module

_FASTKERN = re.compile(r"fastkern(\.[A-Za-z_][A-Za-z0-9_]*)*")


def qualified_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _signature(cls):
    return inspect.signature(cls.__init__)


# -- writing -------------------------------------------------------------------------
def module_spec(m, where="model"):
    """``{"class", "args", "kwargs", "children"}`` for module ``m`` (``where`` names it in errors)."""
    cls = type(m)
    args, kwargs = m.__dict__.get("_init_args", ((), {}))
    params = list(_signature(cls).parameters.values())[1:]  # without self
    bound = inspect.Signature(params).bind(*args, **kwargs).arguments
    varargs = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), None)
    varkw = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
    pos = bound.pop(varargs, ()) if varargs else ()
    named = {**bound, **bound.pop(varkw, {})} if varkw else bound
    # a module among the arguments is usually also a child: errors inside it name it by its path
    paths = {id(c): f"{where}.{k}" for k, c in m._modules.items()}
    enc = lambda v, name: _encode(v, f"{where} ({cls.__name__}, argument {name})", paths)  # noqa: E731
    return {
        "class": qualified_name(cls),
        "args": [enc(v, f"{varargs}[{i}]") for i, v in enumerate(pos)],
        "kwargs": {k: enc(v, k) for k, v in named.items()},
        "children": {k: module_spec(c, f"{where}.{k}") for k, c in m._modules.items() if c is not None},
    }


def _encode(v, where, paths):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, device):  # where the weights go is the loader's choice, not the architecture's
        return None
    if isinstance(v, dtype):
        return {"dtype": str(v).rsplit(".", 1)[-1]}
    if isinstance(v, Module):
        return {"module": module_spec(v, paths.get(id(v), where))}
    if isinstance(v, type) and issubclass(v, Module):
        return {"type": qualified_name(v)}
    if isinstance(v, (list, tuple)):
        items = [_encode(x, where, paths) for x in v]
        return {"tuple": items} if isinstance(v, tuple) else items
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {"dict": {k: _encode(x, where, paths) for k, x in v.items()}}
    raise ValueError(
        f"cannot export {where}: a {type(v).__name__} is not data that an export can hold (numbers, strings, "
        "dtypes, modules, module classes, and lists, tuples and dicts of them)"
    )


# -- reading -------------------------------------------------------------------------
def _fastkern_class(name):
    """The Module subclass defined in fastkern with this qualified name, else None."""
    modname = name.rpartition(".")[0]
    if not _FASTKERN.fullmatch(modname):  # fastkern's own modules only
        return None
    found = _registered().get(name)
    if found is None and modname:
        import importlib

        try:
            importlib.import_module(modname)
        except ImportError:
            return None
        found = _registered().get(name)
    return found


def _registered():
    out, todo = {}, [Module]
    while todo:
        c = todo.pop()
        out[qualified_name(c)] = c
        todo.extend(c.__subclasses__())
    return out


def _resolve(name, trusted, what):
    if not isinstance(name, str):
        raise ValueError(f"{what}: the class name is not a string")
    for c in trusted:
        if qualified_name(c) == name:
            return c
    cls = _fastkern_class(name) if name.startswith("fastkern.") else None
    if cls is None:
        raise ValueError(
            f"{what} is a {name}, which is not a module class of fastkern: if you trust this file, pass the "
            f"class to load_learner(..., trusted=[...]) to build it"
        )
    return cls


def _decode(v, trusted, what):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        return [_decode(x, trusted, what) for x in v]
    if isinstance(v, dict) and len(v) == 1:
        ((kind, x),) = v.items()
        if kind == "tuple" and isinstance(x, list):
            return tuple(_decode(i, trusted, what) for i in x)
        if kind == "dict" and isinstance(x, dict):
            return OrderedDict((k, _decode(i, trusted, what)) for k, i in x.items())
        if kind == "module":
            return build_module(x, trusted, what)
        if kind == "type":
            return _resolve(x, trusted, what)
        if kind == "dtype" and isinstance(x, str):
            from .. import _C

            t = getattr(_C, x, None)
            if isinstance(t, dtype):
                return t
    raise ValueError(f"{what}: {str(v)[:80]} is not an argument an export writes")


def _check_kwargs(cls, kwargs, what):
    """Each keyword must name a parameter of the constructor (which checks the values itself)."""
    params = _signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    for k in kwargs:
        p = params.get(k)
        if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or k == "self":
            raise ValueError(f"{what} has no argument {k!r}")


def build_module(spec, trusted=(), what="model"):
    """The module a ``module_spec`` describes (weights freshly initialised)."""
    if not isinstance(spec, dict) or not {"class", "args", "kwargs", "children"} <= spec.keys():
        raise ValueError(f"{what}: not a module spec (class, args, kwargs, children)")
    cls = _resolve(spec["class"], trusted, what)
    args, kwargs, children = spec["args"], spec["kwargs"], spec["children"]
    if not isinstance(args, list) or not isinstance(kwargs, dict) or not isinstance(children, dict):
        raise ValueError(f"{what}: the arguments or children of {cls.__name__} are malformed")
    _check_kwargs(cls, kwargs, f"{what} ({cls.__name__})")
    m = cls(
        *[_decode(a, trusted, what) for a in args],
        **{k: _decode(v, trusted, f"{what} ({cls.__name__}, argument {k})") for k, v in kwargs.items()},
    )
    for name, child in children.items():
        if not _same(m._modules.get(name), child):
            setattr(m, name, build_module(child, trusted, f"{what}.{name}"))
    return m


def _same(have, spec):
    try:
        return have is not None and module_spec(have) == spec
    except ValueError:  # built with arguments an export cannot hold: not the exported one
        return False
