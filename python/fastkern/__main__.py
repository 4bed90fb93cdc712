"""Command line: ``fastkern [COMMAND] ...`` (also ``python -m fastkern``).

Commands:
  baseline   fastbook chapter-4 pixel-similarity baseline on MNIST 3s vs 7s (the default)
"""
from __future__ import annotations

import argparse
import sys
import time


def _baseline(args) -> int:
    import fastkern as fk
    from fastkern.data import mnist_sample

    t0 = time.perf_counter()
    try:
        s = mnist_sample(args.data)  # threes come first in every split, so slices select a class
    except (OSError, ValueError) as e:  # missing or bad data files: a message, not a traceback
        print(f"fastkern baseline: error: {e}", file=sys.stderr)
        return 2
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    with fk.no_grad():
        n3_train = int((s.train_y == 0).sum().item())
        n3_valid = int((s.valid_y == 0).sum().item())
        train = s.train_x.float() / 255
        valid = s.valid_x.float() / 255
        mean3, mean7 = train[:n3_train].mean(0), train[n3_train:].mean(0)

        # (N,28,28) - (28,28) broadcasts: one mean-absolute-error distance per image.
        def dist(a, b):
            return (a - b).abs().mean((-1, -2))

        pred7 = dist(valid, mean3) >= dist(valid, mean7)  # fastbook: is_3 = d3 < d7
        correct = (pred7.long() == s.valid_y).float()
        acc3 = correct[:n3_valid].mean().item()
        acc7 = correct[n3_valid:].mean().item()
        acc = correct.mean().item()
    t_compute = time.perf_counter() - t0

    n_valid = correct.shape[0]
    src = args.data or "embedded MNIST_SAMPLE"
    print(f"fastkern {getattr(fk, '__version__', '?')}: pixel-similarity baseline (fastbook ch. 4), 3s vs 7s")
    print(f"data: {src}; train means from {n3_train} threes + {s.train_x.shape[0] - n3_train} sevens\n")
    print(f"  {'digit':<6}{'images':>8}{'accuracy':>10}")
    for name, n, a in (("3", n3_valid, acc3), ("7", n_valid - n3_valid, acc7), ("all", n_valid, acc)):
        print(f"  {name:<6}{n:>8}{a:>10.4f}")
    print(f"\nelapsed: load {t_load * 1e3:.1f} ms, compute {t_compute * 1e3:.1f} ms")
    return 0


# name -> (help, add_arguments, run). Later: train, bench.
def _baseline_args(p):
    p.add_argument("--data", metavar="DIR", help="folder with the full MNIST IDX files "
                   "(train-images-idx3-ubyte.gz, ...) instead of the embedded sample")


COMMANDS = {"baseline": ("pixel-similarity baseline on MNIST 3s vs 7s (default)", _baseline_args, _baseline)}
DEFAULT = "baseline"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fastkern", description="fastkern demos and tools.")
    ap.add_argument("--version", action="store_true", help="print the version and exit")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_args(p)
        p.set_defaults(run=run)
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # No command given (e.g. `fastkern` or `fastkern --data DIR`): run the default one.
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, DEFAULT)
    args = build_parser().parse_args(argv)
    if args.version:
        import fastkern as fk

        print(f"fastkern {getattr(fk, '__version__', '?')}")
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
