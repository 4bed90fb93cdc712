"""Training progress: a tqdm bar per epoch and a results table, one row per epoch.

The bar goes to stderr and only when stderr is a terminal (or in a notebook), so
a log file gets the table alone, with no carriage returns or escape codes. The
table is plain fixed-width text on stdout, which reads the same in a terminal, a
log file and a notebook.
"""

import contextlib
import sys

from .core import Callback


def in_notebook():
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _tqdm():
    """tqdm for this output: the notebook widget when one can show, the terminal bar when
    stderr is a TTY, else None (no bar)."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:
            pass
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm
    return None


def format_time(seconds):
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def format_row(names, values=None):
    """One table line (the header when values is None); columns as wide as their name, at least 10."""
    cells = []
    for name, v in zip(names, names if values is None else values):
        if values is None:
            text = name
        elif name == "time":
            text = format_time(v)
        elif name == "epoch" or isinstance(v, int):
            text = str(v)
        elif v is None:
            text = "None"
        else:
            text = f"{v:.6f}"
        cells.append(text.ljust(max(len(name), 10)))
    return "  ".join(cells).rstrip()


class ProgressCallback(Callback):
    order = 60

    def __init__(self, file=None):
        self.file, self.show_table = file, True

    def before_fit(self):
        self._tqdm, self.bar, self._header_done = _tqdm(), None, False

    def _start_bar(self, stage):
        if self._tqdm is None or self.dl is None:
            return
        desc = f"epoch {self.epoch + 1}/{self.n_epoch} {stage}"
        self.bar = self._tqdm(
            total=len(self.dl),
            desc=desc,
            leave=False,
            file=sys.stderr,
            mininterval=0.2,
            unit="batch",
            dynamic_ncols=True,
        )

    def before_train(self):
        self._start_bar("train")

    def before_validate(self):
        self._start_bar("valid")

    def after_batch(self):
        if self.bar is not None:
            self.bar.update(1)
            if self.training and self.bar.n % 10 == 0:
                self.bar.set_postfix_str(f"loss {self.smooth_loss:.4f}", refresh=False)

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    after_train = after_validate = after_fit = _close_bar

    def after_epoch(self):
        if not self.show_table:
            return
        out = self.file or sys.stdout
        names = self.recorder.metric_names
        if not self._header_done:
            print(format_row(names), file=out)
            self._header_done = True
        print(format_row(names, self.recorder.log), file=out, flush=True)

    @contextlib.contextmanager
    def no_table(self):
        old, self.show_table = self.show_table, False
        try:
            yield
        finally:
            self.show_table = old
