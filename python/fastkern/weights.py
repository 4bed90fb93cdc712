"""Pretrained weights by file name: finding a checkpoint on disk (or downloading it once),
and loading a state dict from a .pth or .safetensors file into a model.

A checkpoint is looked for, in order, in:
  * $FASTKERN_DATA and $FASTKERN_DATA/models (offline machines stage files there),
  * the fastkern cache, ~/.cache/fastkern/models (or $XDG_CACHE_HOME/fastkern/models),
  * PyTorch's hub cache, ~/.cache/torch/hub/checkpoints (or $TORCH_HOME/hub/checkpoints), where
    torchvision keeps the files it downloaded,
and, for a file that has a download URL, fetched into the fastkern cache. File names in the
torchvision style (``resnet18-f37072fd.pth``) carry the first hex digits of the file's sha256; a
download whose hash does not start with them is discarded.
"""

import hashlib
import os
import re
from pathlib import Path


def _user_cache():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def cache_dir():
    return _user_cache() / "fastkern" / "models"


def search_dirs():
    """The folders a checkpoint is looked for in, in order."""
    dirs = []
    if os.environ.get("FASTKERN_DATA"):
        data = Path(os.environ["FASTKERN_DATA"])
        dirs += [data, data / "models"]
    dirs.append(cache_dir())
    torch_home = Path(os.environ.get("TORCH_HOME") or _user_cache() / "torch")
    dirs.append(torch_home / "hub" / "checkpoints")
    return dirs


def hash_prefix(filename):
    """The sha256 prefix in a torchvision-style name (``name-<hex>.pth``), else None."""
    m = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z]+$", filename)
    return m.group(1) if m else None


def download(url, dest):
    """Fetches ``url`` to ``dest``, checked against the sha256 prefix in ``dest``'s name first;
    a partial or mismatching download never reaches ``dest``."""
    import urllib.request

    from .serialization import atomic_write

    with urllib.request.urlopen(url, timeout=60) as r:
        data = r.read()
    prefix = hash_prefix(Path(dest).name)
    digest = hashlib.sha256(data).hexdigest()
    if prefix and not digest.startswith(prefix):
        raise OSError(f"{url}: sha256 {digest} does not start with {prefix} (a corrupted or changed file)")
    atomic_write(dest, data)
    return Path(dest)


def find(filename, url=None, candidates=(), hint=""):
    """The path of checkpoint ``filename``: one of ``candidates`` (paths tried first, e.g. a file
    shipped by a package), else from search_dirs(), else downloaded from ``url`` into the cache.
    FileNotFoundError lists every place looked at when it is nowhere (and ends with ``hint``)."""
    looked = [Path(c) for c in candidates] + [d / filename for d in search_dirs()]
    for p in looked:
        if p.is_file():
            return p
    why = "no download URL is known for it"
    if url:
        try:
            return download(url, cache_dir() / filename)
        except OSError as e:  # offline (URLError is an OSError), refused, or a hash mismatch
            why = f"downloading {url} failed: {e}"
    places = "\n  ".join(map(str, looked))
    raise FileNotFoundError(f"pretrained weights {filename} not found; looked in:\n  {places}\nand {why}{hint}")


def load_state_dict(path):
    """The state dict in a .pth (read by fastkern.pth, no PyTorch needed) or safetensors file. A
    checkpoint that wraps it as {"state_dict": ...} or {"model": ...} is unwrapped."""
    from . import pth, serialization

    with open(path, "rb") as f:
        head = f.read(9)
    # a zip or pickle start means torch.save; a safetensors header starts with "{" at byte 8
    if head[8:] != b"{" and (head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"):
        sd = pth.load(path)
    else:
        sd = serialization.load(path)
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    return sd


def load_weights(model, weights, strict=True):
    """Loads ``weights`` (a path to a .pth or .safetensors file, or a state dict) into ``model``
    in place and returns the model."""
    sd = weights if isinstance(weights, dict) else load_state_dict(weights)
    model.load_state_dict(sd, strict=strict)
    return model
