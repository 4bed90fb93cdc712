"""PyTorch's other per-parameter optimisers: RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam.

Each ``_update`` follows the algorithm box of PyTorch's documentation, op for op
in the order of its single-tensor implementation, so results agree to rounding.
The base class has already negated the gradient when ``maximize`` is set.
"""

import struct

from .._creation import full_like, zeros_like
from .._grad_mode import no_grad
from .optimizer import Optimizer, _check, _check_adam_args, _decay, _l2, _lerp_, _no_differentiable


class RMSprop(Optimizer):
    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0,
        momentum=0,
        centered=False,
        capturable=False,
        foreach=None,
        maximize=False,
        differentiable=False,
    ):
        _check(lr >= 0, "learning rate", lr)
        _check(eps >= 0, "epsilon value", eps)
        _check(momentum >= 0, "momentum value", momentum)
        _check(weight_decay >= 0, "weight_decay value", weight_decay)
        _check(alpha >= 0, "alpha value", alpha)
        _no_differentiable(differentiable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay)
        defaults.update(capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        alpha, mom = group["alpha"], group["momentum"]
        if not state:
            state["step"], state["square_avg"] = 0, zeros_like(p)
            if mom > 0:
                state["momentum_buffer"] = zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = zeros_like(p)
        state["step"] += 1
        grad = _l2(grad, p, group["weight_decay"])
        square_avg = state["square_avg"].mul_(alpha).add_(grad * grad, alpha=1 - alpha)
        if group["centered"]:  # the variance: subtract the squared running mean
            grad_avg = _lerp_(state["grad_avg"], grad, 1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg.add_(group["eps"])
        if mom > 0:
            buf = state["momentum_buffer"].mul_(mom).add_(grad / avg)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.add_(grad / avg, alpha=-group["lr"])


class Adagrad(Optimizer):
    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0,
        weight_decay=0,
        initial_accumulator_value=0,
        eps=1e-10,
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        fused=None,
    ):
        _check(lr >= 0, "learning rate", lr)
        _check(lr_decay >= 0, "lr_decay value", lr_decay)
        _check(weight_decay >= 0, "weight_decay value", weight_decay)
        _check(initial_accumulator_value >= 0, "initial_accumulator_value value", initial_accumulator_value)
        _check(eps >= 0, "epsilon value", eps)
        _no_differentiable(differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay)
        defaults.update(initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize)
        defaults.update(differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        # PyTorch fills the accumulators at construction, so they are in the state dict before any step
        with no_grad():
            for g in self.param_groups:
                for p in g["params"]:
                    self.state[p] = self._initial_state(p, g)

    @staticmethod
    def _initial_state(p, group):
        return {"step": 0, "sum": full_like(p, group["initial_accumulator_value"])}

    def _update(self, p, grad, group, state):
        if not state:  # a parameter added later with add_param_group
            state.update(self._initial_state(p, group))
        state["step"] += 1
        grad = _l2(grad, p, group["weight_decay"])
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        std = state["sum"].add_(grad * grad).sqrt().add_(group["eps"])
        p.add_(grad / std, alpha=-clr)


class Adadelta(Optimizer):
    def __init__(
        self,
        params,
        lr=1.0,
        rho=0.9,
        eps=1e-6,
        weight_decay=0,
        foreach=None,
        *,
        capturable=False,
        maximize=False,
        differentiable=False,
    ):
        _check(lr >= 0, "learning rate", lr)
        _check(0.0 <= rho <= 1.0, "rho value", rho)
        _check(eps >= 0, "epsilon value", eps)
        _check(weight_decay >= 0, "weight_decay value", weight_decay)
        _no_differentiable(differentiable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        defaults.update(capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"], state["square_avg"], state["acc_delta"] = 0, zeros_like(p), zeros_like(p)
        state["step"] += 1
        grad = _l2(grad, p, group["weight_decay"])
        square_avg = state["square_avg"].mul_(rho).add_(grad * grad, alpha=1 - rho)
        std = (square_avg + eps).sqrt_()
        # the step, in the units of the parameter: RMS of past steps over RMS of gradients
        delta = (state["acc_delta"] + eps).sqrt_().div_(std).mul_(grad)
        state["acc_delta"].mul_(rho).add_(delta * delta, alpha=1 - rho)
        p.add_(delta, alpha=-group["lr"])


class Adamax(Optimizer):
    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        foreach=None,
        *,
        maximize=False,
        differentiable=False,
        capturable=False,
    ):
        _check_adam_args(lr, eps, betas, weight_decay, differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=foreach)
        defaults.update(maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        b1, b2 = group["betas"]
        if not state:
            state["step"], state["exp_avg"], state["exp_inf"] = 0, zeros_like(p), zeros_like(p)
        state["step"] += 1
        grad = _l2(grad, p, group["weight_decay"])
        _lerp_(state["exp_avg"], grad, 1 - b1)
        # the infinity norm: a decaying running max of |g| (eps keeps it off zero)
        exp_inf = state["exp_inf"]
        exp_inf.copy_(exp_inf.mul_(b2).maximum(grad.abs().add_(group["eps"])))
        clr = group["lr"] / (1 - b1 ** state["step"])
        p.add_(state["exp_avg"] / exp_inf, alpha=-clr)


def _round_to_float32(x):
    """x as a float32 would hold it."""
    return struct.unpack("f", struct.pack("f", x))[0]


class NAdam(Optimizer):
    """Adam with Nesterov momentum and the momentum_decay warm-up of Dozat (2016).

    ``state["mu_product"]`` is the running product of the momentum coefficients. PyTorch
    keeps it as a float32 tensor (the default dtype) and multiplies in float32; it is
    rounded the same way here so that even float64 parameters follow PyTorch's numbers.
    """

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
    ):
        _check_adam_args(lr, eps, betas, weight_decay, differentiable)
        _check(momentum_decay >= 0, "momentum_decay value", momentum_decay)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        defaults.update(decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach)
        defaults.update(capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        lr, (b1, b2), wd, psi = group["lr"], group["betas"], group["weight_decay"], group["momentum_decay"]
        if not state:
            state["step"], state["mu_product"] = 0, 1.0
            state["exp_avg"], state["exp_avg_sq"] = zeros_like(p), zeros_like(p)
        state["step"] += 1
        t = state["step"]
        bias_correction2 = 1 - b2**t
        grad = _decay(p, grad, lr, wd, group["decoupled_weight_decay"])
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        # a float32 product of float32 factors, exactly as PyTorch's 0-d float32 tensor computes it
        state["mu_product"] = mu_product = _round_to_float32(state["mu_product"] * _round_to_float32(mu))
        _lerp_(state["exp_avg"], grad, 1 - b1)
        exp_avg_sq = state["exp_avg_sq"].mul_(b2).add_(grad * grad, alpha=1 - b2)
        denom = (exp_avg_sq / bias_correction2).sqrt().add_(group["eps"])
        # Nesterov: part of the step along this gradient, part along the momentum one step ahead
        p.add_(grad / denom, alpha=-lr * (1.0 - mu) / (1.0 - mu_product))
        p.add_(state["exp_avg"] / denom, alpha=(-lr * mu_next) / (1.0 - mu_product * mu_next))


class RAdam(Optimizer):
    """Adam whose adaptive term is switched on (and rectified) once the variance estimate is
    tractable (rho_t > 5); before that the step is bias-corrected momentum SGD."""

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        decoupled_weight_decay=False,
        *,
        foreach=None,
        maximize=False,
        capturable=False,
        differentiable=False,
    ):
        _check_adam_args(lr, eps, betas, weight_decay, differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        defaults.update(foreach=foreach, capturable=capturable, decoupled_weight_decay=decoupled_weight_decay)
        defaults.update(differentiable=differentiable)
        super().__init__(params, defaults)

    def _update(self, p, grad, group, state):
        lr, (b1, b2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["step"], state["exp_avg"], state["exp_avg_sq"] = 0, zeros_like(p), zeros_like(p)
        state["step"] += 1
        t = state["step"]
        grad = _decay(p, grad, lr, wd, group["decoupled_weight_decay"])
        exp_avg = _lerp_(state["exp_avg"], grad, 1 - b1)
        exp_avg_sq = state["exp_avg_sq"].mul_(b2).add_(grad * grad, alpha=1 - b2)
        bias_correction1, bias_correction2 = 1 - b1**t, 1 - b2**t
        bias_corrected_exp_avg = exp_avg / bias_correction1
        # length of the approximated simple moving average, and its limit
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2**t) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive_lr = (bias_correction2**0.5) / exp_avg_sq.sqrt().add_(group["eps"])
            p.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
        else:
            p.add_(bias_corrected_exp_avg * lr, alpha=-1.0)
