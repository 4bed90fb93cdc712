"""Command line: ``fastkern [COMMAND] ...`` (also ``python -m fastkern``).

Commands:
  train      train a small CNN (default: on the embedded MNIST 3s/7s sample; the default command)
  baseline   fastbook chapter-4 pixel-similarity baseline on MNIST 3s vs 7s
  bench      a short benchmark table
  serve      an exported image classifier as a local web page and JSON API
  clean      a dataset cleaner page (fastai's ImageClassifierCleaner); --apply/--undo/--recover for scripts
"""

from __future__ import annotations

import argparse
import os
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


def _baseline_args(p):
    p.add_argument(
        "--data",
        metavar="DIR",
        help="folder with the full MNIST IDX files (train-images-idx3-ubyte.gz, ...) instead of the embedded sample",
    )


def _train_args(p):
    p.add_argument(
        "--dataset",
        default="sample",
        metavar="NAME|DIR",
        help="'sample' (embedded MNIST 3s/7s, default), 'mnist', 'fashion-mnist', or an image folder "
        "(class subfolders, optionally under train/ and valid/ or val/)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="local folder with the MNIST/Fashion-MNIST files (default: $FASTKERN_DATA, else the download cache)",
    )
    p.add_argument(
        "--model",
        default="simple_cnn",
        help="architecture from fastkern.models: simple_cnn (default), mlp, simple_net, linear",
    )
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-2, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--bs", type=int, default=64, help="batch size")
    p.add_argument("--size", type=int, default=64, help="image size for image folders")
    p.add_argument("--workers", type=int, default=2, help="decoding threads for image folders")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available, else cpu)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--export",
        metavar="FILE",
        help="write the trained model (weights + architecture + vocab + "
        "transforms, one safetensors file) for fastkern.load_learner",
    )


def _train_data(args, device):
    """(DataLoaders, input shape (C, H, W), description)."""
    from pathlib import Path

    import fastkern as fk
    from fastkern.data import AddChannel, DataLoaders, Flatten, IntToFloat, Pipeline, TensorDataset

    flat = args.model != "simple_cnn"
    name = args.dataset
    if name in ("sample", "mnist", "fashion-mnist"):
        if name == "sample":
            d = fk.data.mnist_sample(args.data)  # --data: the 3s and 7s of the full MNIST files
            desc = f"MNIST 3s and 7s from {args.data}" if args.data else "embedded MNIST sample (3s and 7s)"
        else:
            d = (fk.data.mnist if name == "mnist" else fk.data.fashion_mnist)(args.data)
            desc = name
        tfms = Pipeline([IntToFloat(), Flatten() if flat else AddChannel()])
        dls = DataLoaders.from_dsets(
            TensorDataset(d.train_x, d.train_y),
            TensorDataset(d.valid_x, d.valid_y),
            bs=args.bs,
            seed=args.seed,
            after_batch=tfms,
            vocab=list(d.vocab),
            device=device,  # the uint8 batches move, and become float there
            pin_memory=device.type == "cuda",
        )
        return dls, (1, 28, 28), desc
    if not Path(name).is_dir():
        raise FileNotFoundError(f"--dataset {name!r}: not 'sample', 'mnist', 'fashion-mnist' or a folder")
    dls = fk.data.image_folder_dls(
        name,
        size=args.size,
        bs=args.bs,
        seed=args.seed,
        num_workers=args.workers,
        device=device,
        pin_memory=device.type == "cuda",
    )
    if flat:
        dls.train.after_batch.tfms.append(Flatten())
    return dls, (3, args.size, args.size), f"image folder {name}"


def _train(args) -> int:
    import fastkern as fk
    from fastkern import Learner, accuracy, nn
    from fastkern.models import create_model

    t0 = time.perf_counter()
    fk.manual_seed(args.seed)
    try:
        device = fk.device(args.device) if args.device else fk.default_device()
        if device.type == "cuda" and not fk.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available (fastkern.cuda.is_available() is False)")
        dls, (c, h, w), desc = _train_data(args, device)
    except (OSError, ValueError, RuntimeError) as e:  # missing data, failed download: a message, not a traceback
        print(f"fastkern train: error: {e}", file=sys.stderr)
        return 2
    n_out = len(dls.vocab)
    kwargs = dict(n_out=n_out, in_channels=c) if args.model == "simple_cnn" else dict(n_in=c * h * w, n_out=n_out)
    try:
        model = create_model(args.model, **kwargs).to(device)
    except (ValueError, RuntimeError) as e:
        print(f"fastkern train: error: {e}", file=sys.stderr)
        return 2
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy, device=device)
    n_train, n_valid = len(dls.train_ds), len(dls.valid_ds)
    print(
        f"fastkern {fk.__version__}: {args.model} on {desc}: {n_train} training / {n_valid} validation images, "
        f"{n_out} classes"
    )
    where = (
        f"on {fk.cuda.get_device_name()}"
        if device.type == "cuda"
        else f"on the CPU, {fk.get_num_threads()} threads, {fk.backends.cpu.capability()} kernels"
    )
    print(f"fit_one_cycle({args.epochs}, {args.lr}), batch size {args.bs}, {where}\n")
    learn.fit_one_cycle(args.epochs, args.lr)
    acc = learn.recorder.values[-1][2]
    print(f"\naccuracy {acc:.4f} on {n_valid} validation images; total time {time.perf_counter() - t0:.1f} s")
    if args.export:
        path = learn.export(os.path.abspath(args.export))
        print(f"exported to {path}")
    return 0


def _bench(args) -> int:
    from fastkern import benchmarks

    benchmarks.main()
    return 0


def _server_args(p):
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--quiet", action="store_true", help="do not log each request")


def _serve_args(p):
    p.add_argument("model", metavar="MODEL", help="an exported image classifier (learn.export, train --export)")
    _server_args(p)
    p.add_argument("--top-k", type=int, default=5, help="probabilities shown and returned (default 5)")
    p.add_argument("--max-mb", type=float, default=20, help="largest upload in MB (default 20)")
    p.add_argument("--max-megapixels", type=float, default=50, help="largest image in megapixels (default 50)")


def _serve(args) -> int:
    from fastkern.apps import serve

    try:
        if args.top_k < 1 or args.max_mb <= 0 or args.max_megapixels <= 0:
            raise ValueError("--top-k, --max-mb and --max-megapixels must be positive")
        server = serve.make_server(
            args.model,
            args.host,
            args.port,
            args.top_k,
            int(args.max_mb * 2**20),
            int(args.max_megapixels * 1e6),
            args.quiet,
        )
    except (OSError, ValueError) as e:  # no such model, not an image classifier, port taken
        print(f"fastkern serve: error: {e}", file=sys.stderr)
        return 2
    return server.run("serve")


def _clean_args(p):
    p.add_argument("data", metavar="DATA_DIR", help="the dataset: class folders, optionally under split folders")
    p.add_argument("--model", metavar="MODEL", help="the exported classifier that ranks the images (for the page)")
    _server_args(p)
    p.add_argument("--order", choices=("loss", "confidence"), default="loss", help="the page's first order")
    act = p.add_mutually_exclusive_group()
    act.add_argument(
        "--apply",
        metavar="MARKS.json",
        help='apply marks {"split/class/file.jpg": "keep" | "delete" | "<class>"} instead of serving the page',
    )
    act.add_argument("--undo", action="store_true", help="move the files of the last apply back")
    act.add_argument(
        "--recover", choices=("complete", "rollback"), help="finish or reverse an apply (or undo) that was interrupted"
    )
    p.add_argument("--dry-run", action="store_true", help="with --apply: list the moves, make none")


def _clean(args) -> int:
    import json

    from fastkern.apps import clean

    def show(moves):
        for m in moves:
            print(f"  {m['action']}: {m['src']} -> {m['dst']}")

    try:
        if not os.path.isdir(args.data):
            raise FileNotFoundError(f"no dataset folder {args.data}")
        if args.dry_run and not args.apply:
            raise ValueError("--dry-run goes with --apply")
        if args.apply:
            with open(args.apply) as f:
                try:
                    marks = json.load(f)
                except ValueError as e:
                    raise ValueError(f"{args.apply} is not JSON: {e}") from None
            moves = clean.apply(args.data, marks, dry_run=args.dry_run)
            print(f"{'would make' if args.dry_run else 'made'} {len(moves)} move(s)" + (":" if moves else ""))
            show(moves)
        elif args.undo:
            moves = clean.undo(args.data)
            print(f"moved {len(moves)} file(s) back:")
            show([dict(m, src=m["dst"], dst=m["src"], action="back") for m in moves])
        elif args.recover:
            what, moves, notes = clean.recover(args.data, args.recover)
            print(f"the interrupted {what} is {'completed' if args.recover == 'complete' else 'rolled back'}")
            for n in notes:
                print(f"  note: {n}")
        else:
            if not args.model:
                raise ValueError("the page needs --model MODEL (or give --apply, --undo or --recover)")
            server = clean.make_server(args.data, args.model, args.host, args.port, args.order, args.quiet)
            return server.run("clean")
    except (OSError, ValueError) as e:  # CleanError is a ValueError
        print(f"fastkern clean: error: {e}", file=sys.stderr)
        return 2
    return 0


# name -> (help, add_arguments, run)
COMMANDS = {
    "train": ("train a small CNN; default: the embedded MNIST 3s/7s sample (the default command)", _train_args, _train),
    "baseline": ("pixel-similarity baseline on MNIST 3s vs 7s", _baseline_args, _baseline),
    "bench": ("a short benchmark against NumPy and (if installed) PyTorch on this machine", lambda p: None, _bench),
    "serve": ("serve an exported image classifier as a local web page and JSON API", _serve_args, _serve),
    "clean": ("clean an image dataset with a model's help (a local page, or --apply/--undo)", _clean_args, _clean),
}
DEFAULT = "train"


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
