#!/usr/bin/env python3
"""One full training step (forward + backward + SGD update), images/s: fastkern vs PyTorch.

Run: PYTHONPATH=python python bench/train_step.py [--steps N] [--threads N]
(a) MLP 784-30-10 at batch 256; (b) a small CNN on 1x28x28 at batch 64:
conv3x3(1->16)+relu+maxpool2, conv3x3(16->32)+relu+maxpool2, linear(32*7*7->10); (c) a stride-2
CNN: conv3x3/2(1->8)+relu, conv3x3/2(8->16)+relu, linear(16*7*7->10); (d) the classic PyTorch MNIST
example network: conv3x3(1->32)+relu, conv3x3(32->64)+relu, maxpool2, dropout 0.25,
linear(9216->128)+relu, dropout 0.5, linear(128->10), log_softmax and NLL loss.
Both libraries get the same initial weights and data; the models are written with the
functional API so the two sides run exactly the same ops.
"""

import argparse

import numpy as np

from _common import Table, best_times, setup  # bench/ is on sys.path when run as a script


def init(rng, shapes):
    return {
        k: (rng.standard_normal(s) * (2.0 / np.prod(s[1:])) ** 0.5).astype(np.float32)
        if len(s) > 1
        else np.zeros(s, np.float32)
        for k, s in shapes.items()
    }


MLP = {"w1": (30, 784), "b1": (30,), "w2": (10, 30), "b2": (10,)}
CNN = {"c1": (16, 1, 3, 3), "cb1": (16,), "c2": (32, 16, 3, 3), "cb2": (32,), "w": (10, 32 * 7 * 7), "b": (10,)}
CNN2 = {"c1": (8, 1, 3, 3), "cb1": (8,), "c2": (16, 8, 3, 3), "cb2": (16,), "w": (10, 16 * 7 * 7), "b": (10,)}
MNIST_NET = {
    "c1": (32, 1, 3, 3),
    "cb1": (32,),
    "c2": (64, 32, 3, 3),
    "cb2": (64,),
    "w1": (128, 9216),
    "b1": (128,),
    "w2": (10, 128),
    "b2": (10,),
}


def mlp(F, p, x):
    return F.linear(F.relu(F.linear(x.reshape(x.shape[0], -1), p["w1"], p["b1"])), p["w2"], p["b2"])


def cnn(F, p, x):
    h = F.max_pool2d(F.relu(F.conv2d(x, p["c1"], p["cb1"], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["c2"], p["cb2"], padding=1)), 2)
    return F.linear(h.reshape(h.shape[0], -1), p["w"], p["b"])


def cnn2(F, p, x):
    h = F.relu(F.conv2d(x, p["c1"], p["cb1"], stride=2, padding=1))
    h = F.relu(F.conv2d(h, p["c2"], p["cb2"], stride=2, padding=1))
    return F.linear(h.reshape(h.shape[0], -1), p["w"], p["b"])


def mnist_net(F, p, x):
    h = F.relu(F.conv2d(F.relu(F.conv2d(x, p["c1"], p["cb1"])), p["c2"], p["cb2"]))
    h = F.dropout(F.max_pool2d(h, 2), 0.25).reshape(x.shape[0], -1)
    h = F.dropout(F.relu(F.linear(h, p["w1"], p["b1"])), 0.5)
    return F.log_softmax(F.linear(h, p["w2"], p["b2"]), dim=1)


def step_fn(mod, model, params, xb, yb, loss_name, lr=0.01):
    F = mod.nn.functional
    p = {k: mod.tensor(v, requires_grad=True) for k, v in params.items()}
    x, y = mod.tensor(xb), mod.tensor(yb)

    def step():
        loss = getattr(F, loss_name)(model(F, p, x), y)
        loss.backward()
        with mod.no_grad():
            for t in p.values():
                t -= t.grad * lr
                t.grad = None
        return loss

    return step


def images_per_s(steps_by_lib, batch, steps, rounds=5):
    """Images/s of each library's step, best of `rounds` runs of `steps` steps taken in turn."""
    runs = {}
    for lib, step in steps_by_lib.items():
        for _ in range(3):
            step()  # warm-up
        runs[lib] = lambda step=step: [step() for _ in range(steps)]
    return {lib: batch * steps / t for lib, t in best_times(runs, rounds).items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    fk, torch = setup(args.threads)
    rng = np.random.default_rng(0)
    table = Table(
        [
            ("model", "<28"),
            ("batch", ">6"),
            ("fastkern img/s", ">16.0f"),
            ("torch img/s", ">13.0f"),
            ("fk/torch", ">10.2f"),
        ]
    )
    print(table.header())
    models = (
        ("MLP 784-30-10", mlp, MLP, 256, "cross_entropy"),
        ("small CNN 1x28x28", cnn, CNN, 64, "cross_entropy"),
        ("stride-2 CNN 1x28x28", cnn2, CNN2, 64, "cross_entropy"),
        ("PyTorch MNIST example net", mnist_net, MNIST_NET, 64, "nll_loss"),
    )
    for name, model, shapes, batch, loss_name in models:
        params = init(rng, shapes)
        xb = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
        yb = rng.integers(0, 10, batch)
        steps = {
            lib: step_fn(mod, model, params, xb, yb, loss_name)
            for lib, mod in (("fk", fk), ("torch", torch))
            if mod is not None
        }
        res = images_per_s(steps, batch, args.steps)
        t = res.get("torch")
        print(table.row(name, batch, res["fk"], t or None, res["fk"] / t if t else None))
    print("\nfk/torch above 1 means fastkern is faster (target: 1.5).")


if __name__ == "__main__":
    main()
