"""A hand-written training loop with RMSprop and StepLR, as a PyTorch script writes it.

A tiny regression: y = x @ w_true + b_true plus noise, fitted by a linear layer.
Replacing ``import fastkern as fk`` by ``import torch as fk`` (and ``fk.optim`` by
``torch.optim``) gives the PyTorch original; the loop itself does not change.

    python examples/rmsprop_loop.py [--epochs 40]
"""

import argparse

import fastkern as fk
from fastkern import nn, optim


def make_data(n=256, seed=0):
    fk.manual_seed(seed)
    x = fk.randn(n, 4)
    w_true, b_true = fk.tensor([[2.0], [-1.0], [0.5], [3.0]]), 0.7
    y = x @ w_true + b_true + 0.01 * fk.randn(n, 1)
    return x, y


def main(epochs=40, batch_size=32, verbose=True):
    x, y = make_data()
    model = nn.Linear(4, 1)
    opt = optim.RMSprop(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)  # lr halves every 10 epochs
    loss_fn = nn.MSELoss()
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        sched.step()
        losses.append(total / len(x))
        if verbose and (epoch % 5 == 0 or epoch == epochs - 1):
            print(f"epoch {epoch:3d}  lr {sched.get_last_lr()[0]:.4f}  loss {losses[-1]:.5f}")
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    main(parser.parse_args().epochs)
