"""fk.save / fk.load: safetensors round trips (no pickle) and atomic writes."""

import json
import math
import os
import stat

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastkern as fk
from fastkern import nn, optim
from fastkern import serialization
from helpers import torch


def test_state_dict_round_trip_all_dtypes(tmp_path):
    sd = {
        "w": fk.randn(3, 4),
        "d": fk.randn(2, dtype=fk.float64),
        "i": fk.arange(5),
        "u": fk.zeros(2, dtype=fk.uint8),
        "b": fk.tensor([True, False]),
        "scalar": fk.tensor(7),
        "empty": fk.zeros(0, 3),
        "t": fk.randn(4, 3).T,
    }
    fk.save(sd, tmp_path / "sd.safetensors")
    back = fk.load(tmp_path / "sd.safetensors")
    assert list(back) == list(sd)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())


def test_file_is_plain_safetensors(tmp_path):
    from safetensors.numpy import load_file

    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    fk.save(m.state_dict(), tmp_path / "m.safetensors")
    raw = load_file(tmp_path / "m.safetensors")
    assert set(raw) == set(m.state_dict())  # the state dict's own names
    assert (tmp_path / "m.safetensors").read_bytes()[:1] != b"\x80"  # not a pickle


def test_nested_objects(tmp_path):
    p = nn.Parameter(fk.randn(3))
    opt = optim.Adam([p], lr=0.01)
    p.grad = fk.ones(3)
    opt.step()
    obj = {"model": {"w": fk.ones(2)}, "opt": opt.state_dict(), "epoch": 3, "tags": ["a", None, 1.5], "pair": (1, 2)}
    fk.save(obj, tmp_path / "ckpt.safetensors")
    back = fk.load(tmp_path / "ckpt.safetensors")
    assert back["epoch"] == 3 and back["tags"] == ["a", None, 1.5] and back["pair"] == (1, 2)
    assert back["opt"]["state"][0]["step"] == 1 and back["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    np.testing.assert_array_equal(back["opt"]["state"][0]["exp_avg"].numpy(), opt.state[p]["exp_avg"].numpy())
    opt2 = optim.Adam([nn.Parameter(fk.randn(3))], lr=0.5)
    opt2.load_state_dict(back["opt"])
    assert opt2.param_groups[0]["lr"] == 0.01
    with pytest.raises(TypeError, match="cannot store"):
        fk.save({"f": object()}, tmp_path / "x.safetensors")


def test_reads_files_from_other_writers(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.arange(4, dtype=np.float32)}, tmp_path / "other.safetensors")
    assert fk.load(tmp_path / "other.safetensors")["a"].tolist() == [0, 1, 2, 3]


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    fk.save({"w": fk.ones(3)}, path)
    before = path.read_bytes()

    def crash(fd):  # the process dies between writing the temp file and renaming it
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        fk.save({"w": fk.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and fk.load(path)["w"].tolist() == [1, 1, 1]
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # the temp file was removed

    class Boom(Exception):
        pass

    def fail_replace(src, dst):
        raise Boom

    monkeypatch.setattr(serialization.os, "replace", fail_replace)
    with pytest.raises(Boom):
        fk.save({"w": fk.zeros(1)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.safetensors"]


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_weights_load_into_torch(tmp_path):
    from safetensors.torch import load_file

    fk.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    fk.save(m.state_dict(), tmp_path / "m.safetensors")
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 3)
    )
    tm.load_state_dict(load_file(tmp_path / "m.safetensors"))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    m.eval(), tm.eval()
    np.testing.assert_allclose(
        m(fk.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


# -- hostile or odd files ---------------------------------------------------------
def _raw_file(path, header, data=b""):
    """A safetensors file from a header dict (or raw header bytes) and the data bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


def _null_device(path):
    """A character device like /dev/null at ``path`` (root only): tests never aim at the real
    /dev/null, which a broken save run as root would replace with a file."""
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return path


def test_load_refuses_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for path, kind in [
        (tmp_path / "fifo", "fifo"),
        (tmp_path, "directory"),
        (_null_device(tmp_path / "null"), "character device"),
    ]:
        with pytest.raises(ValueError, match=f"is a {kind}, not a file"):
            fk.load(path)


def test_pytorch_pickle_is_named(tmp_path):
    if torch is not None:
        torch.save({"w": torch.ones(2)}, tmp_path / "m.pth")
        with pytest.raises(ValueError, match="PyTorch pickle file.*safetensors.torch.save_file"):
            fk.load(tmp_path / "m.pth")
    (tmp_path / "old.pth").write_bytes(b"\x80\x02\x8a\nlZ\xfc\x9cF\xf9 j\xa8P\x19.")  # legacy torch.save start
    with pytest.raises(ValueError, match="PyTorch pickle file"):
        fk.load(tmp_path / "old.pth")
    # a safetensors header of 128 bytes starts with the byte 0x80 too, and is no pickle
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "__metadata__": {"pad": ""}}
    header["__metadata__"]["pad"] = "x" * (128 - len(json.dumps(header)))
    assert fk.load(_raw_file(tmp_path / "h.safetensors", header, bytes(4)))["a"].tolist() == [0]
    assert (tmp_path / "h.safetensors").read_bytes()[0] == 0x80


@pytest.mark.parametrize(
    "header, data, match",
    [
        (b"", b"", "the header is not valid JSON"),
        (b"{", b"", "the header is not valid JSON"),
        (b"[]", b"", "the header is not a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, b"", "the header is not valid JSON"),
        ({"a": {"dtype": "F32", "shape": [2]}}, bytes(8), "lacks dtype, shape or data_offsets"),
        ({"a": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "dtype 5, not a string"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), "not a list of at most 64 sizes"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, bytes(8), "outside the data"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, bytes(8), "outside the data"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "does not fill its 8 bytes"),
        ({"a": {"dtype": "F32", "shape": [0, 2**62], "data_offsets": [0, 0]}}, b"", "a size beyond 2\\*\\*40"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            bytes(12),
            "'b' overlaps",
        ),
        ({"__metadata__": {"fastkern": 5}}, b"", "does not map strings to strings"),
        ({"__metadata__": {"fastkern": "{"}}, b"", "skeleton is not valid JSON"),
        ({"__metadata__": {"fastkern": '{"version": 1}'}}, b"", "lacks 'version' or 'skeleton'"),
        ({"__metadata__": {"fastkern": '{"version": 1, "skeleton": {"__tensor__": "x"}}'}}, b"", "tensor 'x' that"),
        ({"__metadata__": {"fastkern": '{"version": 1, "skeleton": {"__items__": [[[1], 2]]}}'}}, b"", "unhashable"),
        ({"__metadata__": {"fastkern": '{"version": 1, "skeleton": {"__items__": [1]}}'}}, b"", "pairs"),
        ({"__metadata__": {"fastkern": '{"version": 1, "skeleton": {"__tuple__": 1}}'}}, b"", "is not a list"),
        (
            {"__metadata__": {"fastkern": '{"version": 1, "skeleton": ' + "[" * 300 + "]" * 300 + "}"}},
            b"",
            "nested deeper than 100 levels",
        ),
    ],
)
def test_malformed_files_say_so(tmp_path, header, data, match):
    with pytest.raises(ValueError, match="malformed file .*" + match):
        fk.load(_raw_file(tmp_path / "bad.safetensors", header, data))


def test_header_length_is_checked_before_reading(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="header length 4611686018427387904 exceeds the file"):
        fk.load(path)
    path.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="too short"):
        fk.load(path)
    fk.save({"w": fk.ones(100)}, path)
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match="outside the data"):
        fk.load(path)


def test_unsupported_dtype_is_named(tmp_path):
    path = _raw_file(
        tmp_path / "bf16.safetensors", {"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, bytes(4)
    )
    with pytest.raises(
        ValueError,
        match="tensor 'w' has dtype BF16, which fastkern does not support "
        r"\(supported: F32, F64, I64, U8, BOOL\)",
    ):
        fk.load(path)


def test_bool_bytes_other_than_0_and_1_read_as_true(tmp_path):
    path = _raw_file(
        tmp_path / "b.safetensors",
        {"b": {"dtype": "BOOL", "shape": [4], "data_offsets": [0, 4]}},
        bytes([0, 1, 2, 255]),
    )
    b = fk.load(path)["b"]
    assert b.tolist() == [False, True, True, True]
    assert b.numpy().view(np.uint8).tolist() == [0, 1, 1, 1]
    assert (b == fk.tensor([False, True, True, True])).all().item()


def test_loaded_tensors_own_their_memory(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    fk.save({"w": fk.ones(1000)}, path)
    w = fk.load(path)["w"]
    fk.save({"w": fk.zeros(1000)}, path)  # the next epoch's save over the same file
    assert w.sum().item() == 1000 and fk.load(path)["w"].sum().item() == 0


# -- objects: what save writes, load reads back exactly, or save refuses -------------
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.text(max_size=5)
    | st.floats(allow_nan=False)
    | st.sampled_from([math.inf, -math.inf, -0.0])
)
_keys = st.recursive(_scalars, lambda k: st.tuples(k) | st.tuples(k, k), max_leaves=4)
_tensors = st.sampled_from(["f32", "f64", "i64", "u8", "bool", "0d", "empty"]).map(
    lambda kind: {
        "f32": lambda: fk.randn(2, 3),
        "f64": lambda: fk.randn(3, dtype=fk.float64),
        "i64": lambda: fk.arange(4),
        "u8": lambda: fk.zeros(2, dtype=fk.uint8),
        "bool": lambda: fk.tensor([True, False]),
        "0d": lambda: fk.tensor(1.5),
        "empty": lambda: fk.zeros(0, 2),
    }[kind]()
)
_objects = st.recursive(
    _scalars | _tensors,
    lambda c: (
        st.lists(c, max_size=3)
        | st.tuples(c)
        | st.tuples(c, c)
        | st.dictionaries(_keys | st.sampled_from(["__x", "a.b"]), c, max_size=3)
    ),
    max_leaves=12,
)


def _same(a, b):
    if isinstance(a, fk.Tensor):
        return (
            isinstance(b, fk.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.numpy().tobytes() == b.numpy().tobytes()
        )
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b and str(a) == str(b)  # (str tells -0.0 from 0.0)


@settings(
    max_examples=3000 if os.environ.get("FASTKERN_FUZZ_LONG") else 60,
    deadline=None,
    derandomize=not os.environ.get("FASTKERN_FUZZ_LONG"),
)
@given(obj=_objects)
def test_round_trip_or_refuse(obj):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "o.safetensors")
        fk.save("previous", path)
        try:
            fk.save(obj, path)
        except (TypeError, ValueError) as e:
            # only two tensors under one dotted name ({"a.b": t, "a": {"b": t}}) are refused
            assert "two tensors" in str(e), e
            assert fk.load(path) == "previous"
            return
        assert _same(obj, fk.load(path))


def test_save_refuses_before_replacing_the_file(tmp_path):
    path = tmp_path / "o.safetensors"
    fk.save({"w": fk.ones(1)}, path)
    before = path.read_bytes()
    deep = []
    for _ in range(serialization.MAX_DEPTH - 1):
        deep = [deep]
    fk.save(deep, tmp_path / "deep.safetensors")  # the limit itself is fine
    assert _same(fk.load(tmp_path / "deep.safetensors"), deep)
    for bad, err, match in [
        ({fk.ones(1): 1}, TypeError, "tensor cannot be stored as a dict key"),
        ({frozenset(): 1}, TypeError, "dict key of type frozenset|type frozenset"),
        ({"__metadata__": fk.ones(1)}, ValueError, "'__metadata__'"),
        ([deep], ValueError, "nested deeper than 100 levels"),
        ({"w": object()}, TypeError, "cannot store an object of type object"),
    ]:
        with pytest.raises(err, match=match):
            fk.save(bad, path)
    with pytest.raises(ValueError, match="'fastkern' is fastkern's own"):
        fk.save({}, path, metadata={"fastkern": "x"})
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        fk.save({}, path, metadata={"a": 1})
    assert path.read_bytes() == before


# -- writing: through symlinks, never over devices, with the usual permissions ------
def test_save_writes_through_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.safetensors"
    link.symlink_to(tmp_path / "real" / "ckpt.safetensors")  # dangling until the first save
    for v in (1.0, 2.0):
        fk.save({"w": fk.full((2,), v)}, link)
        assert link.is_symlink() and fk.load(tmp_path / "real" / "ckpt.safetensors")["w"].tolist() == [v, v]
    assert sorted(os.listdir(tmp_path)) == ["link.safetensors", "real"]
    assert os.listdir(tmp_path / "real") == ["ckpt.safetensors"]


def test_save_refuses_devices_fifos_and_folders(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    dev = _null_device(tmp_path / "null")
    (tmp_path / "link").symlink_to(dev)
    before = os.stat(dev)
    for path, kind in [
        (dev, "character device"),
        (tmp_path / "link", "character device"),
        (tmp_path / "fifo", "fifo"),
        (tmp_path, "directory"),
    ]:
        with pytest.raises(ValueError, match=f"is a {kind}, not a file"):
            fk.save({"w": fk.ones(1)}, path)
    after = os.stat(dev)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (before.st_ino, before.st_mode, before.st_rdev)
    assert (tmp_path / "link").is_symlink() and stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
    assert sorted(os.listdir(tmp_path)) == ["fifo", "link", "null"]


def test_permissions_follow_umask_and_are_kept(tmp_path):
    old = os.umask(0o027)
    try:
        fk.save({"w": fk.ones(1)}, tmp_path / "new.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.safetensors").st_mode) == 0o640
    os.chmod(tmp_path / "new.safetensors", 0o604)
    fk.save({"w": fk.zeros(1)}, tmp_path / "new.safetensors")
    assert stat.S_IMODE(os.stat(tmp_path / "new.safetensors").st_mode) == 0o604


def test_next_save_removes_leftovers_of_a_killed_save(tmp_path):
    import fcntl

    path = tmp_path / "ckpt.safetensors"
    for name in (
        ".ckpt.safetensors.0123abcd.tmp",
        ".ckpt.safetensors.x_9.tmp",
        ".ckpt.safetensors.busy.tmp",
        ".ckpt.safetensors.bak.0123abcd.tmp",
        ".other.safetensors.0123abcd.tmp",
        "ckpt.safetensors.tmp",
    ):
        (tmp_path / name).write_bytes(b"x" * 100)
    with open(tmp_path / ".ckpt.safetensors.busy.tmp", "rb") as busy:  # a save still writing holds its lock
        fcntl.flock(busy, fcntl.LOCK_EX)
        fk.save({"w": fk.ones(1)}, path)
    assert sorted(os.listdir(tmp_path)) == [
        ".ckpt.safetensors.bak.0123abcd.tmp",
        ".ckpt.safetensors.busy.tmp",
        ".other.safetensors.0123abcd.tmp",
        "ckpt.safetensors",
        "ckpt.safetensors.tmp",
    ]
