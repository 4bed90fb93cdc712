"""A custom autograd Function, as in PyTorch's "Defining new autograd functions" tutorial.

Fits y = sin(x) on [-pi, pi] with y = a + b * P3(c + d * x), where P3(t) = (5t^3 - 3t) / 2 is the
Legendre polynomial of degree 3, written as an autograd Function with its own backward
(P3'(t) = 1.5 (5t^2 - 1)). Replacing ``import fastkern as fk`` by ``import torch as fk`` gives
the PyTorch script; nothing else changes.

    python examples/custom_function.py [--steps 2000]
"""

import argparse
import math

import fastkern as fk


class LegendrePolynomial3(fk.autograd.Function):
    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)  # backward needs t, not P3(t)
        return 0.5 * (5 * t**3 - 3 * t)

    @staticmethod
    def backward(ctx, grad_output):
        (t,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * t**2 - 1)


def main(steps=2000, lr=5e-6, verbose=True):
    dtype = fk.float64
    x = fk.linspace(-math.pi, math.pi, 2000, dtype=dtype)
    y = fk.sin(x)
    # Starting values near the solution, as the tutorial's: far ones make this fit diverge.
    a = fk.full((), 0.0, dtype=dtype, requires_grad=True)
    b = fk.full((), -1.0, dtype=dtype, requires_grad=True)
    c = fk.full((), 0.0, dtype=dtype, requires_grad=True)
    d = fk.full((), 0.3, dtype=dtype, requires_grad=True)
    P3 = LegendrePolynomial3.apply
    losses = []
    for step in range(steps):
        y_pred = a + b * P3(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        if verbose and step % 200 == 199:
            print(f"step {step + 1:5d}  loss {loss.item():.3f}")
        loss.backward()
        with fk.no_grad():
            for p in (a, b, c, d):
                p -= lr * p.grad
                p.grad = None
    if verbose:
        print(f"Result: y = {a.item():.4f} + {b.item():.4f} * P3({c.item():.4f} + {d.item():.4f} x)")
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    main(parser.parse_args().steps)
