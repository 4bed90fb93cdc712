"""torch's out= keyword: results written into tensors allocated once, as PyTorch loops that avoid
allocations write them. Replacing ``import fastkern as fk`` by ``import torch as fk`` gives the
PyTorch script.

    python examples/out_kwarg.py
"""

import warnings

import fastkern as fk


def main():
    fk.manual_seed(0)
    x, w = fk.randn(64, 32), fk.randn(32, 16)
    h, act, total = fk.empty(64, 16), fk.empty(64, 16), fk.empty(16)
    for step in range(3):  # the same three buffers every step: no new tensors
        fk.matmul(x, w, out=h)
        fk.tanh(h, out=act)
        fk.sum(act, 0, out=total)
        fk.add(w, total, alpha=-0.01, out=w)  # an out may be an input: w -= 0.01 * total, broadcast
        print(f"step {step}: mean activation {act.mean().item():+.4f}")
    both = fk.empty(0)  # an empty out is resized silently
    fk.cat([total, total], out=both)
    print("cat into an empty out:", tuple(both.shape))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fk.exp(fk.zeros(2, 3), out=fk.empty(5))  # a wrong-sized out is resized too, with a warning
    print("warned:", str(caught[0].message).split(".")[0])


if __name__ == "__main__":
    main()
