"""Learning-rate schedules.

Annealing functions (fastai's ``sched_*``) map a position in [0, 1] to a value;
the Learner's one-cycle and lr_find use them. The PyTorch-style schedulers
(``sched.step()`` once per epoch or batch) are for hand-written loops.
"""

import math


def sched_lin(start, end, pos):
    return start + pos * (end - start)


def sched_cos(start, end, pos):
    # half a cosine: flat at both ends, steepest in the middle
    return start + (1 - math.cos(math.pi * pos)) * (end - start) / 2


def sched_exp(start, end, pos):
    return start * (end / start) ** pos


def combined_cos(pct, start, middle, end):
    """Cosine from start to middle over the first ``pct`` of training, then middle to end."""

    def sched(pos):
        if pos < pct:
            return sched_cos(start, middle, pos / pct)
        return sched_cos(middle, end, (pos - pct) / (1 - pct) if pct < 1 else 1.0)

    return sched


class LRScheduler:
    """Base: ``get_lr()`` computes every group's lr for ``self.last_epoch``."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        return self._last_lr

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambda")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambda = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambda)]


class StepLR(LRScheduler):
    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        # past T_max the cosine keeps going (back up), as PyTorch's
        return [sched_cos(base, self.eta_min, self.last_epoch / self.T_max) for base in self.base_lrs]


class OneCycleLR(LRScheduler):
    """PyTorch's one-cycle (two phases, cosine): lr up from max_lr/div_factor to max_lr over
    pct_start of total_steps, then down to initial/final_div_factor; momentum the opposite way."""

    def __init__(
        self,
        optimizer,
        max_lr,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        last_epoch=-1,
    ):
        n = len(optimizer.param_groups)
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * n
        for g, m in zip(optimizer.param_groups, max_lrs):
            g["initial_lr"], g["max_lr"], g["min_lr"] = m / div_factor, m, m / div_factor / final_div_factor
        self.total_steps, self.cycle_momentum = total_steps, cycle_momentum
        self.up_end = float(pct_start * total_steps) - 1  # the step at which lr peaks
        self.moms = (max_momentum, base_momentum)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times; total_steps is {self.total_steps}")
        up = step <= self.up_end
        pos = step / self.up_end if up else (step - self.up_end) / (self.total_steps - 1 - self.up_end)
        lrs = []
        for g in self.optimizer.param_groups:
            lo, hi = g["initial_lr"], g["max_lr"]
            lrs.append(sched_cos(lo, hi, pos) if up else sched_cos(hi, g["min_lr"], pos))
            if self.cycle_momentum:
                mom = sched_cos(self.moms[0], self.moms[1], pos) if up else sched_cos(self.moms[1], self.moms[0], pos)
                set_momentum(g, mom)
        return lrs


def set_momentum(group, mom):
    """SGD's ``momentum`` or Adam's first beta: the one knob that one-cycle schedules."""
    if "betas" in group:
        group["betas"] = (mom, group["betas"][1])
    else:
        group["momentum"] = mom


def get_momentum(group):
    return group["betas"][0] if "betas" in group else group.get("momentum", 0.0)
