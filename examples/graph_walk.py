"""Walking the autograd graph from a loss, as PyTorch's autograd tutorials do.

Every tensor an op made records that op in ``grad_fn``; ``grad_fn.next_functions`` holds a
(node, input_nr) pair per input of the op, down to an ``AccumulateGrad`` node for each leaf
(whose ``variable`` is the leaf). Replacing ``import fastkern as fk`` by ``import torch as fk``
prints the same graph.

    python examples/graph_walk.py
"""

import fastkern as fk


def walk(fn, depth=0, lines=None):
    """The graph below `fn`, one indented line per node (a node reached twice is listed twice)."""
    lines = [] if lines is None else lines
    if fn is None:
        return lines
    name = type(fn).__name__ if type(fn).__name__ == "AccumulateGrad" else fn.name()
    extra = f"  (leaf of shape {list(fn.variable.shape)})" if hasattr(fn, "variable") else ""
    lines.append("  " * depth + name + extra)
    for next_fn, _ in fn.next_functions:
        walk(next_fn, depth + 1, lines)
    return lines


def main(verbose=True):
    fk.manual_seed(0)
    x = fk.randn(8, 3)
    target = fk.randn(8, 1)
    w = fk.randn(3, 1, requires_grad=True)
    b = fk.zeros(1, requires_grad=True)
    loss = ((x @ w + b - target) ** 2).mean()
    lines = walk(loss.grad_fn)
    if verbose:
        print("loss.grad_fn:", loss.grad_fn)
        print("loss.grad_fn.next_functions:", loss.grad_fn.next_functions)
        print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
