"""Optimisers with PyTorch's update formulas, param groups and state dicts.

Updates run in place under no_grad, so parameters keep their identity (the
model and the optimiser hold the same tensors) and no graph is recorded.

Each optimiser stores PyTorch's group keys, including its implementation
switches (``foreach``, ``fused``, ``capturable``): scripts that pass them run
unchanged and state dicts carry the same keys. fastkern has one update per
parameter, so those switches change nothing; ``differentiable=True`` (a graph
through the update) is refused.

One difference in layout: PyTorch keeps ``state["step"]`` as a 0-d tensor (so
CUDA graphs can capture it); here it is a Python number, which costs no device
round trip. Loading a state dict accepts either.
"""

from collections import defaultdict

from .._C import Tensor, _adam_step
from .._creation import zeros_like
from .._grad_mode import enable_grad, no_grad

# State entries PyTorch keeps as 0-d tensors and fastkern as Python numbers.
_NUMBER_STATE = ("step", "mu_product")


def _check(ok, what, value):
    """PyTorch's argument errors: ValueError("Invalid learning rate: -1")."""
    if not ok:
        raise ValueError(f"Invalid {what}: {value}")


def _check_betas(betas):
    for i, b in enumerate(betas):
        _check(0.0 <= b < 1.0, f"beta parameter at index {i}", b)


def _check_adam_args(lr, eps, betas, weight_decay, differentiable):
    """The argument checks Adam and its variants share, with PyTorch's messages."""
    _check(lr >= 0, "learning rate", lr)
    _check(eps >= 0, "epsilon value", eps)
    _check_betas(betas)
    _check(weight_decay >= 0, "weight_decay value", weight_decay)
    _no_differentiable(differentiable)


def _l2(grad, p, wd):
    """Coupled (L2) weight decay: g + wd * p."""
    return grad.add(p, alpha=wd) if wd else grad


def _decay(p, grad, lr, wd, decoupled):
    """Weight decay as AdamW's (p *= 1 - lr*wd, in place) when decoupled, else L2; returns the gradient."""
    if wd and decoupled:
        p.mul_(1 - lr * wd)
        return grad
    return _l2(grad, p, wd)


def _no_differentiable(differentiable):
    if differentiable:
        raise NotImplementedError("differentiable=True is not supported: fastkern updates in place under no_grad")


def _lerp_(t, end, weight):
    """t += weight * (end - t): PyTorch's lerp_ for the running averages (exp_avg.lerp_(grad, 1 - beta1))."""
    return t.add_(end - t, alpha=weight)


def _state_value(value, p, key):
    """A loaded state entry on p's device (floating tensors in p's dtype, as PyTorch); copies, so the
    state dict and the optimiser never share tensors."""
    if isinstance(value, Tensor):
        if key in _NUMBER_STATE:
            x = value.item()
            return int(x) if key == "step" and float(x).is_integer() else x
        dtype = p.dtype if value.is_floating_point() and p.is_floating_point() else value.dtype
        return value.to(p.device, dtype, copy=True)
    if isinstance(value, (list, tuple)):  # LBFGS keeps lists of tensors
        return type(value)(_state_value(v, p, None) for v in value)
    return value


class Optimizer:
    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        self.defaults = dict(defaults)
        # param -> dict of tensors/numbers (tensors hash by identity); a defaultdict as PyTorch's,
        # for scripts that write opt.state[p]["key"] themselves
        self.state = defaultdict(dict)
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            self.add_param_group(group)

    def add_param_group(self, group):
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.zero_()

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for g in self.param_groups:
                for p in g["params"]:
                    if p.grad is None:
                        continue
                    # every PyTorch optimiser negates the gradient first when maximizing
                    grad = p.grad.neg() if g.get("maximize") else p.grad
                    # no empty entries: SGD without momentum keeps no state, as PyTorch's
                    state = self.state.get(p, {})
                    self._update(p, grad, g, state)
                    if state:
                        self.state[p] = state
        return loss

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    def state_dict(self):
        """Parameters become their position across groups, as PyTorch."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        groups = [
            {**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
            for g in self.param_groups
        ]
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)
        ):
            raise ValueError("loaded state dict has a different number of parameter groups or parameters")
        params = [p for g in self.param_groups for p in g["params"]]
        self.state = defaultdict(dict)
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {k: _state_value(v, p, k) for k, v in s.items()}
        for g, saved in zip(self.param_groups, groups):
            g.update({k: (tuple(v) if k == "betas" else v) for k, v in saved.items() if k != "params"})

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params"]
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0,
        dampening=0,
        weight_decay=0,
        nesterov=False,
        *,
        maximize=False,
        foreach=None,
        differentiable=False,
        fused=None,
    ):
        _check(lr >= 0, "learning rate", lr)
        _check(momentum >= 0, "momentum value", momentum)
        _check(weight_decay >= 0, "weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        _no_differentiable(differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        defaults.update(maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        grad = _l2(grad, p, group["weight_decay"])
        mom = group["momentum"]
        if mom:
            buf = state.get("momentum_buffer")
            if buf is None:  # the first step stores the gradient itself
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(mom).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=mom) if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])


class Adam(Optimizer):
    """Adam; with weight_decay it adds the L2 term to the gradient, unless decoupled_weight_decay (AdamW)."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        amsgrad=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
        fused=None,
        decoupled_weight_decay=False,
    ):
        _check_adam_args(lr, eps, betas, weight_decay, differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        defaults.update(maximize=maximize, foreach=foreach, capturable=capturable, differentiable=differentiable)
        defaults.update(fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        decoupled = group["decoupled_weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"], state["exp_avg_sq"] = zeros_like(p), zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p)
        state["step"] += 1
        t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
        if not group["amsgrad"] and p.is_contiguous() and grad.is_contiguous() and grad.dtype == p.dtype:
            # The update below, fused in C++: one pass instead of a dozen small ops per parameter.
            _adam_step(p, grad, m, v, lr, b1, b2, eps, wd, decoupled, t)
            return
        grad = _decay(p, grad, lr, wd, decoupled)
        _lerp_(m, grad, 1 - b1)
        v.mul_(b2).add_(grad * grad, alpha=1 - b2)
        if group["amsgrad"]:
            vmax = state["max_exp_avg_sq"]
            vmax.copy_(vmax.maximum(v))
            v = vmax
        bias_correction1, bias_correction2 = 1 - b1**t, 1 - b2**t
        denom = (v.sqrt() / bias_correction2**0.5).add_(eps)
        p.add_(m / denom, alpha=-lr / bias_correction1)


class AdamW(Adam):
    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        foreach=None,
        capturable=False,
        differentiable=False,
        fused=None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
