"""fk.save / fk.load: tensors and plain containers in one safetensors file, no pickle.

Tensors are stored under their dotted path in the object (a model state dict keeps
its own key names, so other safetensors readers see ordinary names); everything
else (dicts, lists, numbers, strings) goes in a JSON "skeleton" in the file's
metadata.

Reading trusts nothing in the file: the header must fit in the file, tensors must lie
inside it without overlapping, the skeleton must be well formed; anything else is a
"malformed file" ValueError, never a crash or an allocation the header asks for. Each
tensor is read straight into an array of its own, so a file is never held whole in
memory and may be replaced (the next epoch's save) while its tensors live.

Writes go to a temporary file next to the target (through a symlink, next to its
target) that is renamed over it, so an interrupted save leaves the previous file intact.
"""

import fcntl
import json
import math
import os
import re
import secrets
import stat
from pathlib import Path

import numpy as np

_META_KEY = "fastkern"
FORMAT_VERSION = 1
MAX_DEPTH = 100  # containers nested deeper are refused by save and load (and keep both off the recursion limit)
_MAX_HEADER = 100_000_000  # safetensors' own limit on its JSON header
_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}


def _flatten(obj, path, tensors, depth=0):
    """Returns obj's JSON skeleton and fills ``tensors`` {name: ndarray} (None: obj is a dict key)."""
    from ._C import Tensor

    where = repr(path) if path else "top level"
    if isinstance(obj, Tensor):
        if tensors is None:
            raise TypeError(f"fk.save: a tensor cannot be stored as a dict key (at {where})")
        name = path or "tensor"
        if name in tensors or name == "__metadata__":  # safetensors keeps that name for its metadata
            raise ValueError(
                f"fk.save: cannot store two tensors, or a tensor named '__metadata__', under the name {name!r}"
            )
        arr = obj.detach().cpu().numpy()  # a device tensor is written as its host copy
        tensors[name] = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)  # (keeps 0-d as 0-d)
        return {"__tensor__": name}
    if isinstance(obj, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise ValueError(f"fk.save: containers nested deeper than {MAX_DEPTH} levels (at {where})")
    if isinstance(obj, dict):
        items = [(k, _flatten(v, f"{path}.{k}" if path else str(k), tensors, depth + 1)) for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k, _ in items):
            return dict(items)
        # other keys (an optimizer's parameter indices, tuples) survive as a list of pairs
        return {"__items__": [[_flatten(k, path, None, depth + 1), v] for k, v in items]}
    if isinstance(obj, list):
        return [_flatten(v, f"{path}.{i}" if path else str(i), tensors, depth + 1) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {
            "__tuple__": [_flatten(v, f"{path}.{i}" if path else str(i), tensors, depth + 1) for i, v in enumerate(obj)]
        }
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(
        f"fk.save: cannot store an object of type {type(obj).__name__} at {where} "
        "(tensors, dicts, lists, tuples, numbers, strings and None are supported)"
    )


def _unflatten(skel, tensors, depth=0):
    """The object for a skeleton; a ValueError says what is wrong with a malformed one."""
    if isinstance(skel, (dict, list)) and depth >= MAX_DEPTH:
        raise ValueError(f"skeleton nested deeper than {MAX_DEPTH} levels")
    if isinstance(skel, list):
        return [_unflatten(v, tensors, depth + 1) for v in skel]
    if not isinstance(skel, dict):
        return skel
    tag = next((k for k in ("__tensor__", "__tuple__", "__items__") if k in skel), None)
    if tag is not None and len(skel) != 1:
        raise ValueError(f"skeleton entry {tag!r} has other keys next to it")
    if tag == "__tensor__":
        name = skel[tag]
        if not isinstance(name, str) or name not in tensors:
            raise ValueError(f"skeleton refers to a tensor {name!r} that the file does not hold")
        return tensors[name]
    if tag is not None and not isinstance(skel[tag], list):
        raise ValueError(f"skeleton entry {tag!r} is not a list")
    if tag == "__tuple__":
        return tuple(_unflatten(v, tensors, depth + 1) for v in skel[tag])
    if tag == "__items__":
        out = {}
        for pair in skel[tag]:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ValueError("skeleton '__items__' holds something other than [key, value] pairs")
            key = _unflatten(pair[0], {}, depth + 1)  # keys hold no tensors
            try:
                hash(key)
            except TypeError:
                raise ValueError(f"skeleton has an unhashable dict key {key!r}") from None
            out[key] = _unflatten(pair[1], tensors, depth + 1)
        return out
    return {k: _unflatten(v, tensors, depth + 1) for k, v in skel.items()}


def to_bytes(obj, metadata=None):
    """The safetensors bytes for ``obj``; ``metadata`` adds string entries to the header."""
    from safetensors.numpy import save

    metadata = metadata or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("fk.save: metadata must map strings to strings")
    if _META_KEY in metadata:
        raise ValueError(f"fk.save: the metadata key {_META_KEY!r} is fastkern's own")
    tensors = {}
    skel = _flatten(obj, "", tensors)
    return save(tensors, metadata={_META_KEY: json.dumps({"version": FORMAT_VERSION, "skeleton": skel}), **metadata})


def _kind(mode):
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _read(path):
    """({name: ndarray}, metadata) from a safetensors file, every part of it checked first."""
    # O_NONBLOCK: opening a fifo must not wait for a writer before we can refuse it
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ValueError(f"cannot load {path}: it is {_kind(st.st_mode)}, not a file")
    size = st.st_size
    with os.fdopen(fd, "rb") as f:
        head = f.read(9)
        # a zip (torch.save) or pickle (legacy torch.save) start; a safetensors header starts with "{"
        if head[8:] != b"{" and (head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"):
            raise ValueError(
                f"{path} is a PyTorch pickle file (torch.save); fastkern does not execute pickles. "
                "Convert it once with torch: safetensors.torch.save_file(torch.load("
                f"{str(path)!r}, weights_only=True), 'model.safetensors'), then fk.load that file; "
                f"or read its state dict here without torch: fastkern.pth.load({str(path)!r})"
            )
        if len(head) < 8:
            raise _bad(path, f"{size} bytes is too short for a safetensors header")
        n = int.from_bytes(head[:8], "little")
        if n > size - 8 or n > _MAX_HEADER:
            raise _bad(path, f"the header length {n} exceeds the file ({size} bytes) or safetensors' 100 MB limit")
        f.seek(8)
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (ValueError, RecursionError) as e:
            raise _bad(path, f"the header is not valid JSON ({type(e).__name__}: {e})") from None
        if not isinstance(header, dict):
            raise _bad(path, "the header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
            raise _bad(path, "'__metadata__' does not map strings to strings")
        entries = [_entry(path, name, e, size - 8 - n) for name, e in header.items()]
        entries.sort(key=lambda e: e[:2])
        end_before = 0
        for start, end, name, _, _ in entries:
            if start < end_before and end > start:
                raise _bad(path, f"tensor {name!r} overlaps the tensor before it")
            end_before = max(end_before, end)
        tensors = {}
        for start, end, name, dtype, shape in entries:
            buf = np.empty(end - start, np.uint8)
            f.seek(8 + n + start)
            if f.readinto(buf) != buf.size:
                raise _bad(path, "the file is shorter than its header says (truncated while reading?)")
            # a BOOL byte other than 0/1 (a hostile file) must still read as a bool
            tensors[name] = (buf != 0 if dtype is np.bool_ else buf.view(dtype)).reshape(shape)
    return tensors, meta


def _bad(path, what):
    return ValueError(f"malformed file {path}: {what}")


def _entry(path, name, e, data_size):
    """(start, end, name, numpy dtype, shape) of a header entry, checked against the data size."""
    if not (isinstance(e, dict) and {"dtype", "shape", "data_offsets"} <= e.keys()):
        raise _bad(path, f"tensor {name!r} lacks dtype, shape or data_offsets")
    dtype, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
    if not isinstance(dtype, str):
        raise _bad(path, f"tensor {name!r} has dtype {dtype!r}, not a string")
    if dtype not in _DTYPES:
        raise ValueError(
            f"{path}: tensor {name!r} has dtype {dtype}, which fastkern does not support "
            f"(supported: {', '.join(_DTYPES)})"
        )

    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    if not (isinstance(shape, list) and len(shape) <= 64 and all(map(is_int, shape))):
        raise _bad(path, f"tensor {name!r} has shape {shape!r}, not a list of at most 64 sizes")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(map(is_int, offsets))
        and offsets[0] <= offsets[1] <= data_size
    ):
        raise _bad(path, f"tensor {name!r} has data_offsets {offsets!r} outside the data ({data_size} bytes)")
    start, end = offsets
    if end - start != math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize:
        raise _bad(path, f"tensor {name!r} of shape {shape} and dtype {dtype} does not fill its {end - start} bytes")
    if any(d > 2**40 for d in shape):  # only possible with a zero next to it; numpy refuses such shapes
        raise _bad(path, f"tensor {name!r} has shape {shape}, with a size beyond 2**40")
    return start, end, name, _DTYPES[dtype], tuple(shape)


def load_with_metadata(f):
    """(object, metadata) from a file ``save`` wrote; files of other writers load as {name: tensor}."""
    from ._creation import from_numpy

    arrays, meta = _read(f)
    tensors = {k: from_numpy(a) for k, a in arrays.items()}
    if _META_KEY not in meta:
        return tensors, meta
    try:
        info = json.loads(meta[_META_KEY])
    except (ValueError, RecursionError) as e:
        raise _bad(f, f"its skeleton is not valid JSON ({type(e).__name__}: {e})") from None
    if not (isinstance(info, dict) and "skeleton" in info and type(info.get("version")) is int):
        raise _bad(f, "its skeleton metadata lacks 'version' or 'skeleton'")
    if info["version"] > FORMAT_VERSION:
        raise ValueError(
            f"file written by a newer fastkern (format {info['version']}; this one reads {FORMAT_VERSION})"
        )
    try:
        return _unflatten(info["skeleton"], tensors), meta
    except ValueError as e:
        raise _bad(f, e) from None


def _remove_leftovers(path):
    """Deletes the temp files of saves to ``path`` killed before their rename: a save still
    writing holds a lock on its temp file (the kernel drops it when the process dies)."""
    ours = re.compile(re.escape(f".{path.name}.") + r"[0-9a-z_]+\.tmp")
    for entry in os.scandir(path.parent):
        if ours.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    os.unlink(entry.path)
                finally:
                    os.close(fd)
            except OSError:  # locked by a live save, or already gone
                pass


def atomic_write(path, data):
    """Writes bytes to ``path`` via a temp file in the same folder, fsync and rename.

    A symlink is written through (its target is replaced, the link stays); an existing
    device, fifo or directory is refused. A new file gets 0o666 less the umask, a
    replaced one keeps its mode.
    """
    path = Path(os.path.realpath(path))
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"cannot save to {path}: it is {_kind(mode)}, not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until renamed: see _remove_leftovers
            if mode is not None:
                os.fchmod(fd, stat.S_IMODE(mode))
            f.write(data)
            f.flush()
            os.fsync(fd)
            os.replace(tmp, path)  # atomic on POSIX
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save(obj, f, metadata=None):
    """Saves a tensor, a state dict or a nested dict/list of them (as torch.save, without pickle)."""
    atomic_write(f, to_bytes(obj, metadata))


def load(f, map_location=None, weights_only=True):
    """Loads what ``save`` wrote. Tensors come back on the CPU, or on ``map_location`` (a device or
    its name, as torch.load's); ``weights_only`` is accepted for compatibility: nothing but tensors
    and plain data is ever loaded."""
    obj = load_with_metadata(f)[0]
    if map_location is None:
        return obj
    from ._C import device

    if not isinstance(map_location, (str, device)):
        raise TypeError(f"fk.load: map_location must be a device or its name, not {type(map_location).__name__}")
    from .torch_core import to_device

    return to_device(obj, device(str(map_location)))
