"""Reads PyTorch ``.pth`` checkpoints (torch.save of a state dict) without PyTorch, and without
ever letting the file run code.

A .pth file is a pickle whose tensors point at raw storages kept beside it: in a zip archive
(``<name>/data.pkl`` and ``<name>/data/<key>``, torch >= 1.6) or, in the legacy format, in the
same stream after the pickle. Unpickling normally imports and calls whatever the file names, so
this reader's ``find_class`` allows only the few globals a state dict is made of (OrderedDict,
torch's tensor-rebuild functions and storage types), each mapped to a harmless stand-in defined
here; any other global is refused before it is imported. Tensors are built afterwards from the
storage bytes with NumPy, every offset, size and stride checked against the storage first.

``load(path)`` returns the pickled object with fastkern tensors in place of torch's. A forbidden
global is a pickle.UnpicklingError naming it; anything else wrong with the file a ValueError.
"""

import io
import math
import pickle
import pickletools
import warnings
import zipfile
from collections import OrderedDict

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy torch.save file
_LEGACY_PROTOCOL = 1001
_MAX_DEPTH = 100  # containers nested deeper are refused (and keep the walk off the recursion limit)
_MAX_EXPANDED = 2**30  # bytes a stride-0 (expanded) tensor may grow to beyond its storage

# torch storage type -> (dtype in the file, dtype fastkern gets): fastkern keeps float32/64,
# int64, uint8 and bool, so half precision widens to float32 and smaller ints to int64.
_STORAGES = {
    "FloatStorage": ("<f4", np.float32),
    "DoubleStorage": ("<f8", np.float64),
    "HalfStorage": ("<f2", np.float32),
    "BFloat16Storage": ("<u2", np.float32),  # the top half of a float32's bits; widened below
    "LongStorage": ("<i8", np.int64),
    "IntStorage": ("<i4", np.int64),
    "ShortStorage": ("<i2", np.int64),
    "CharStorage": ("i1", np.int64),
    "ByteStorage": ("u1", np.uint8),
    "BoolStorage": ("u1", np.bool_),
}


class _Frozen:
    """The stand-ins find_class hands out are shared by every load: a file must not change them
    (pickle's BUILD opcode sets attributes on whatever is on its stack)."""

    __slots__ = ()

    def __setattr__(self, name, value):
        raise ValueError(f"a .pth file may not modify {self!r}")

    def __setstate__(self, state):
        raise ValueError(f"a .pth file may not modify {self!r}")


class _StorageType(_Frozen):
    """Stands for torch.<X>Storage in the pickle: only names a dtype, and cannot be called."""

    __slots__ = ("name", "file_dtype", "dtype")

    def __init__(self, name):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "file_dtype", np.dtype(_STORAGES[name][0]))
        object.__setattr__(self, "dtype", _STORAGES[name][1])

    def __repr__(self):
        return f"torch.{self.name}"


class _Function(_Frozen):
    """Stands for one of torch's functions that a pickle may call."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args):
        return self.fn(*args)

    def __repr__(self):
        return self.fn.__name__


class _Storage:
    """A storage named in the pickle; its bytes arrive once the pickle has been read."""

    __slots__ = ("type", "key", "numel", "data")

    def __init__(self, stype, key, numel):
        self.type, self.key, self.numel, self.data = stype, key, numel, None

    def __setstate__(self, state):  # a pickle must not rewrite our objects (BUILD)
        raise ValueError("a .pth file may not set the state of a storage")


class _TensorSpec:
    """What _rebuild_tensor_v2 was called with: a view of a storage, made a tensor later."""

    __slots__ = ("storage", "offset", "size", "stride", "requires_grad")

    def __init__(self, storage, offset, size, stride, requires_grad=False):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.requires_grad = requires_grad

    def __setstate__(self, state):
        raise ValueError("a .pth file may not set the state of a tensor")


def _is_index(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *metadata):
    if not isinstance(storage, _Storage):
        raise ValueError(f"a tensor's storage is a {type(storage).__name__}, not a storage")
    if not (_is_index(storage_offset) and isinstance(size, tuple) and isinstance(stride, tuple)):
        raise ValueError("a tensor's offset, size or stride is malformed")
    if len(size) != len(stride) or len(size) > 64 or not all(map(_is_index, size + stride)):
        raise ValueError(f"a tensor has size {size} and stride {stride}")
    return _TensorSpec(storage, storage_offset, size, stride, bool(requires_grad))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, _TensorSpec):
        raise ValueError("a parameter wraps something other than a tensor")
    data.requires_grad = bool(requires_grad)
    return data


# (module, name) -> the stand-in find_class returns; nothing else can be named by the file.
_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Function(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor"): _Function(_rebuild_tensor),  # torch < 0.4 files
    ("torch._utils", "_rebuild_parameter"): _Function(_rebuild_parameter),
    **{("torch", name): _StorageType(name) for name in _STORAGES},
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages=None):
        super().__init__(file, encoding="utf-8")  # Python 2 strings decode as torch.load decodes them
        self.storages = storages  # {key: _Storage} shared by a file's tensors; None: no tensors allowed

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(
            f"refusing to load the global '{module}.{name}': fastkern reads only state dicts "
            "(tensors in dicts, lists and tuples) from .pth files and never runs their code. "
            "If it holds a whole model, save model.state_dict() instead"
        )

    def persistent_load(self, pid):
        if self.storages is None:
            raise ValueError("unexpected persistent id outside the object pickle")
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")):
            raise ValueError(f"unsupported persistent id {pid!r:.100}")
        stype, key, _location, numel = pid[1:5]  # every location loads to the CPU
        view = pid[5] if len(pid) == 6 else None
        if not (isinstance(stype, _StorageType) and isinstance(key, (str, bytes)) and _is_index(numel)):
            raise ValueError(f"malformed storage reference {pid!r:.100}")
        key = key.decode("ascii") if isinstance(key, bytes) else key
        st = self.storages.get(key)
        if st is None:
            st = self.storages[key] = _Storage(stype, key, numel)
        elif st.type is not stype or st.numel != numel:
            raise ValueError(f"storage {key!r} is referred to with two types or sizes")
        if view is None:
            return st
        # legacy files may refer to a slice of a storage: (view key, offset, size)
        if not (isinstance(view, tuple) and len(view) == 3 and _is_index(view[1]) and _is_index(view[2])):
            raise ValueError(f"malformed storage view {view!r:.100}")
        if view[1] + view[2] > numel:
            raise ValueError(f"storage view {view!r:.100} lies outside its storage")
        sub = _Storage(stype, key, view[2])
        sub.data = (st, view[1])  # resolved once the parent's bytes are read
        return sub


def _unpickle(buf, storages=None):
    """The next pickle in the BytesIO ``buf``, through _Unpickler. Its opcodes are walked first
    without running any (pickletools): a length field claiming more bytes than the data holds is
    refused there, where the unpickler would allocate that much before noticing."""
    start = buf.tell()
    try:
        with warnings.catch_warnings():  # it decodes protocol-0 strings, warning of odd escapes in them
            warnings.simplefilter("ignore", DeprecationWarning)
            for _ in pickletools.genops(buf):  # stops after the pickle's STOP
                pass
    except ValueError as e:
        raise ValueError(f"malformed pickle ({e})") from None
    buf.seek(start)
    return _Unpickler(buf, storages).load()


def _storage_array(st, byteorder):
    """The storage's elements as a 1-D array of the file's dtype."""
    if isinstance(st.data, tuple):  # a view of another storage
        parent, offset = st.data
        return _storage_array(parent, byteorder)[offset : offset + st.numel]
    if st.data is None:
        raise ValueError(f"storage {st.key!r} has no data in the file")
    dt = st.type.file_dtype
    return np.frombuffer(st.data, dt.newbyteorder(">") if byteorder == "big" and dt.itemsize > 1 else dt)


def _tensor(spec, byteorder):
    from ._creation import from_numpy

    arr = _storage_array(spec.storage, byteorder)
    numel = math.prod(spec.size)
    if numel:
        last = spec.offset + sum((n - 1) * s for n, s in zip(spec.size, spec.stride))
        if last >= arr.size:
            raise ValueError(
                f"a tensor of size {spec.size}, stride {spec.stride} and offset {spec.offset} "
                f"reaches past its storage of {arr.size} elements"
            )
        if numel > arr.size and numel * arr.itemsize > _MAX_EXPANDED:  # stride 0 could ask for any size
            raise ValueError(f"a tensor of size {spec.size} expands its storage of {arr.size} elements too far")
        item = arr.itemsize
        view = np.lib.stride_tricks.as_strided(
            arr[spec.offset :], spec.size, [s * item for s in spec.stride], writeable=False
        )
    else:
        view = np.empty(spec.size, arr.dtype)
    dtype = spec.storage.type.dtype
    if spec.storage.type.name == "BFloat16Storage":
        out = (view.astype(np.uint32) << 16).view(np.float32)
    else:
        out = np.array(view, dtype=dtype)  # a contiguous copy in native byte order
    t = from_numpy(out)
    return t.requires_grad_() if spec.requires_grad and t.is_floating_point() else t


def _materialize(obj, byteorder, depth=0):
    """obj with every _TensorSpec replaced by a fastkern tensor."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"containers nested deeper than {_MAX_DEPTH} levels")
    if isinstance(obj, _TensorSpec):
        return _tensor(obj, byteorder)
    if isinstance(obj, (_Storage, _StorageType)):
        raise ValueError("a bare storage is not supported (save tensors, not storages)")
    if isinstance(obj, dict):  # an OrderedDict stays one (a state dict's own type)
        return type(obj)((k, _materialize(v, byteorder, depth + 1)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, byteorder, depth + 1) for v in obj)
    return obj


def _load_zip(path, zf):
    names = zf.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ValueError(f"{path} is a zip file but not a torch.save archive (no single <name>/data.pkl)")
    prefix = pkls[0][: -len("data.pkl")]
    if prefix + "constants.pkl" in names or prefix + "code/" in {n[: len(prefix) + 5] for n in names}:
        raise ValueError(f"{path} is a TorchScript archive (torch.jit.save), not a state dict")
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = zf.read(prefix + "byteorder").decode("ascii", "replace").strip()
        if byteorder not in ("little", "big"):
            raise ValueError(f"{path}: unknown byte order {byteorder!r}")
    storages = {}
    obj = _unpickle(io.BytesIO(zf.read(pkls[0])), storages)
    for st in storages.values():
        name = f"{prefix}data/{st.key}"
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise ValueError(f"{path}: storage {st.key!r} is missing from the archive") from None
        want = st.numel * st.type.file_dtype.itemsize
        if info.file_size != want:  # checked before reading: a zip entry may claim any size
            raise ValueError(f"{path}: storage {st.key!r} holds {info.file_size} bytes, not the {want} it needs")
        st.data = zf.read(name)
    return obj, byteorder


def _load_legacy(path, data):
    """torch.save(..., _use_new_zipfile_serialization=False): five pickles, then the storages."""
    buf = io.BytesIO(data)
    if _unpickle(buf) != _LEGACY_MAGIC:
        raise ValueError(f"{path} is not a PyTorch file (bad magic number)")
    if _unpickle(buf) != _LEGACY_PROTOCOL:
        raise ValueError(f"{path}: unsupported legacy torch.save protocol")
    info = _unpickle(buf)
    byteorder = "little" if not isinstance(info, dict) or info.get("little_endian", True) else "big"
    storages = {}
    obj = _unpickle(buf, storages)
    keys = _unpickle(buf)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise ValueError(f"{path}: malformed list of storage keys")
    pos, view = buf.tell(), memoryview(data)
    for key in keys:  # each storage: its element count (8 bytes), then its bytes
        if key not in storages:
            raise ValueError(f"{path}: the file holds data for an unknown storage {key!r}")
        st = storages[key]
        n = int.from_bytes(data[pos : pos + 8], byteorder) if pos + 8 <= len(data) else -1
        nbytes = st.numel * st.type.file_dtype.itemsize
        if n != st.numel or pos + 8 + nbytes > len(data):
            raise ValueError(f"{path}: storage {key!r} is truncated or has the wrong size")
        st.data = view[pos + 8 : pos + 8 + nbytes]  # no copy: tensors are copied out of it later
        pos += 8 + nbytes
    return obj, byteorder


def load(path):
    """The object torch.save wrote to ``path`` (a state dict, or dicts/lists of tensors), with
    fastkern tensors (on the CPU) in place of torch's. Any other pickled object is refused with a
    pickle.UnpicklingError naming it; a malformed file raises ValueError."""
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        try:
            if head == b"PK\x03\x04":
                with zipfile.ZipFile(f) as zf:
                    obj, byteorder = _load_zip(path, zf)
            elif head[:1] == b"\x80":  # a pickle's PROTO opcode
                obj, byteorder = _load_legacy(path, f.read())
            else:
                raise ValueError(f"{path} is not a PyTorch .pth file (neither a zip archive nor a pickle)")
        except pickle.UnpicklingError as e:
            raise pickle.UnpicklingError(f"{path}: {e}") from None
        except (ValueError, zipfile.BadZipFile) as e:
            raise ValueError(str(e) if str(path) in str(e) else f"{path}: {e}") from None
        except Exception as e:  # anything a hostile pickle provokes (EOF, wrong argument types, ...)
            raise ValueError(f"malformed PyTorch file {path}: {type(e).__name__}: {e}") from None
    try:
        return _materialize(obj, byteorder)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
