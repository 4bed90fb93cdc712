"""fk.save / fk.load: tensors and plain containers in one safetensors file, no pickle.

Tensors are stored under their dotted path in the object (a model state dict keeps
its own key names, so other safetensors readers see ordinary names); everything
else (dicts, lists, numbers, strings) goes in a JSON "skeleton" in the file's
metadata. Writes go to a temporary file that is renamed over the target, so an
interrupted save leaves the previous file intact.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np

_META_KEY = "fastkern"
FORMAT_VERSION = 1


def _flatten(obj, path, tensors):
    """Returns obj's JSON skeleton and fills ``tensors`` {name: ndarray}."""
    from ._C import Tensor

    if isinstance(obj, Tensor):
        name = path or "tensor"
        if name in tensors:
            raise ValueError(f"fk.save: two tensors would be stored under the name {name!r}")
        arr = obj.detach().numpy()
        tensors[name] = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)  # (keeps 0-d as 0-d)
        return {"__tensor__": name}
    if isinstance(obj, dict):
        items = [(k, _flatten(v, f"{path}.{k}" if path else str(k), tensors)) for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("__") for k, _ in items):
            return dict(items)
        # non-string keys (an optimizer's parameter indices) survive as a list of pairs
        return {"__items__": [[k, v] for k, v in items]}
    if isinstance(obj, (list, tuple)):
        out = [_flatten(v, f"{path}.{i}" if path else str(i), tensors) for i, v in enumerate(obj)]
        return {"__tuple__": out} if isinstance(obj, tuple) else out
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    raise TypeError(f"fk.save: cannot store an object of type {type(obj).__name__} at {path or 'top level'!r} "
                    "(tensors, dicts, lists, tuples, numbers, strings and None are supported)")


def _unflatten(skel, tensors):
    from ._creation import from_numpy

    if isinstance(skel, dict):
        if "__tensor__" in skel:
            return from_numpy(tensors[skel["__tensor__"]])
        if "__tuple__" in skel:
            return tuple(_unflatten(v, tensors) for v in skel["__tuple__"])
        if "__items__" in skel:
            return {k: _unflatten(v, tensors) for k, v in skel["__items__"]}
        return {k: _unflatten(v, tensors) for k, v in skel.items()}
    if isinstance(skel, list):
        return [_unflatten(v, tensors) for v in skel]
    return skel


def to_bytes(obj, metadata=None):
    """The safetensors bytes for ``obj``; ``metadata`` adds string entries to the header."""
    from safetensors.numpy import save

    tensors = {}
    skel = _flatten(obj, "", tensors)
    meta = {_META_KEY: json.dumps({"version": FORMAT_VERSION, "skeleton": skel})}
    meta.update(metadata or {})
    return save(tensors, metadata=meta)


def from_bytes(data):
    """(object, metadata) from safetensors bytes. Files written by other tools load as {name: tensor}."""
    from safetensors.numpy import load

    tensors = load(data)
    meta = _read_metadata(data)
    if _META_KEY not in meta:
        return _unflatten({k: {"__tensor__": k} for k in tensors}, tensors), meta
    info = json.loads(meta[_META_KEY])
    if info.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"file written by a newer fastkern (format {info['version']}; this one reads {FORMAT_VERSION})")
    return _unflatten(info["skeleton"], tensors), meta


def _read_metadata(data):
    # safetensors layout: 8-byte little-endian header length, then the JSON header.
    n = int.from_bytes(data[:8], "little")
    return json.loads(bytes(data[8:8 + n])).get("__metadata__", {}) or {}


def atomic_write(path, data):
    """Writes bytes to ``path`` via a temp file in the same folder, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
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
    """Loads what ``save`` wrote (``map_location`` and ``weights_only`` accepted for PyTorch compatibility)."""
    with open(f, "rb") as fh:
        data = fh.read()
    obj, _ = from_bytes(data)
    return obj
