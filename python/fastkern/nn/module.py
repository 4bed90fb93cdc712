"""nn.Module and the containers (Sequential, ModuleList), with PyTorch's behaviour."""

from collections import OrderedDict, namedtuple

from .._C import Tensor
from .._grad_mode import no_grad
from .parameter import Parameter

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of layers and models: subclasses set attributes in __init__ and define forward."""

    training = True

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        # The constructor's arguments: an export writes them as the architecture (nn/spec.py).
        object.__setattr__(self, "_init_args", (args, kwargs))
        return self

    def __init__(self):
        # Set through object.__setattr__ because our __setattr__ reads these dicts.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- attribute registration ------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError("cannot assign before Module.__init__() call")
        params, bufs, mods = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, (Parameter, Module)):
            # Re-assigning a name to another kind of member moves it.
            for store in (d, params, bufs, mods):
                store.pop(name, None)
            (params if isinstance(value, Parameter) else mods)[name] = value
        elif name in params or name in mods:
            if value is not None:
                kind = "parameter" if name in params else "child module"
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as {kind} '{name}' "
                    f"({'Parameter' if name in params else 'Module'} or None expected)"
                )
            (params if name in params else mods)[name] = None
        elif name in bufs:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' (Tensor or None expected)")
            bufs[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only called when normal lookup fails
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter '{name}'")
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        self._buffers[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def add_module(self, name, module):
        self._modules[name] = module

    register_module = add_module

    # -- traversal -------------------------------------------------------------
    def named_modules(self, memo=None, prefix=""):
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, store, prefix, recurse):
        seen = set()  # a tensor shared by two layers (tied weights) is listed once
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, t in getattr(m, store).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mprefix}.{name}" if mprefix else name), t

    def named_parameters(self, prefix="", recurse=True):
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # -- modes and gradients ---------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    # -- state -----------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name; detached tensors sharing storage."""
        out = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copies tensors in place; with strict, missing or unexpected keys are an error."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            errors += [f"Missing key(s) in state_dict: {', '.join(map(repr, missing))}."] if missing else []
            errors += [f"Unexpected key(s) in state_dict: {', '.join(map(repr, unexpected))}."] if unexpected else []
        bad = {
            k: type(state_dict[k]).__name__ for k in own if k in state_dict and not isinstance(state_dict[k], Tensor)
        }
        if bad:
            raise TypeError(
                f"load_state_dict for {type(self).__name__}: expected tensors, got "
                + ", ".join(f"{k!r}: {name}" for k, name in bad.items())
            )
        for k, t in own.items():
            if k in state_dict and tuple(state_dict[k].shape) != tuple(t.shape):
                errors.append(
                    f"size mismatch for {k}: copying a param with shape {list(state_dict[k].shape)} "
                    f"from checkpoint, the shape in current model is {list(t.shape)}."
                )
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        with no_grad():
            for k, t in own.items():
                if k in state_dict:
                    src = state_dict[k]
                    t.copy_(src if src.dtype == t.dtype else src.to(dtype=t.dtype))
        return _IncompatibleKeys(missing, unexpected)

    def to(self, device=None, dtype=None, non_blocking=False):
        """Moves/casts parameters and buffers in place: each Parameter keeps its identity (an
        optimizer holding it sees the moved one) and its grad moves with it. Integer buffers keep
        their dtype, as PyTorch's. Also ``to(dtype)`` and ``to(tensor)``."""
        from .. import Tensor, dtype as dtype_type

        if isinstance(device, dtype_type):
            device, dtype = None, device
        elif isinstance(device, Tensor):
            device, dtype = device.device, device.dtype
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.to(device, dtype, non_blocking)
                    if p.grad is not None:
                        p.grad = p.grad.to(device, dtype, non_blocking)
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = b.to(device, dtype if b.is_floating_point() else None)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else device)

    def float(self):
        from .. import float32

        return self.to(dtype=float32)

    def double(self):
        from .. import float64

        return self.to(dtype=float64)

    # -- printing --------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))


class Sequential(Module):
    """Calls its modules in order: Sequential(m1, m2) or Sequential(OrderedDict(name=m))."""

    def __init__(self, *args):
        super().__init__()
        items = args[0].items() if len(args) == 1 and isinstance(args[0], OrderedDict) else enumerate(args)
        for name, m in items:
            self.add_module(str(name), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return mods[idx]

    def __setitem__(self, idx, module):
        setattr(self, list(self._modules)[idx], module)

    def __delitem__(self, idx):
        names = list(self._modules)
        for name in names[idx] if isinstance(idx, slice) else [names[idx]]:
            del self._modules[name]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        return ModuleList(mods[idx]) if isinstance(idx, slice) else mods[idx]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules):
        for name, m in modules.items() if hasattr(modules, "items") else modules:
            self.add_module(name, m)

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __delitem__(self, name):
        del self._modules[name]

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


class ParameterList(Module):
    def __init__(self, values=None):
        super().__init__()
        for v in values or ():
            self.append(v)

    def append(self, value):
        self.register_parameter(str(len(self._parameters)), value if isinstance(value, Parameter) else Parameter(value))
        return self

    def __getitem__(self, idx):
        return list(self._parameters.values())[idx]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())
