"""Hostile files and hostile conditions for fk.load / fk.save / load_learner.

The reader fuzz mutates valid files (byte flips, truncation, header lengths, JSON edits,
random bytes) and loads each in a child process, many cases per child: a signal, an abort
or a hang fails the test, and so does any exception but a ValueError, TypeError or OSError
with a message. FASTKERN_FUZZ_LONG=1 runs far more cases (FASTKERN_FUZZ_SEED picks the seed).
"""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from fastkern import DataLoaders, Learner, nn, serialization
from fastkern.data import AddChannel, IntToFloat, Pipeline, TensorDataset
from fastkern.models import create_model

LONG = bool(os.environ.get("FASTKERN_FUZZ_LONG"))
PER_CHILD = 200
PYTHONPATH = os.pathsep.join([str(Path(fk.__file__).parents[1])] + sys.path)

# Runs in the child: loads each case, one JSON line per outcome, flushed before the next case.
_CHILD = textwrap.dedent("""
    import json, resource, sys
    # A huge allocation is a MemoryError, reported. Counted from the address space in use, so that
    # this works under ASan too (its shadow memory is reserved before any of this runs).
    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) << 10
    resource.setrlimit(resource.RLIMIT_AS, (vm + (4 << 30),) * 2)
    import fastkern as fk

    def touch(obj):  # use what loaded, so a bad shape that got through shows here
        if isinstance(obj, fk.Tensor):
            obj.clone().sum().item()
        elif isinstance(obj, dict):
            [touch(k) or touch(v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple)):
            [touch(v) for v in obj]

    for i, path in enumerate(sys.argv[1:]):
        out = []
        for f in (lambda p: touch(fk.load(p)), lambda p: touch(fk.load_learner(p).model.state_dict())):
            try:
                f(path)
                out.append("ok")
            except Exception as e:
                ok = isinstance(e, (ValueError, TypeError, OSError)) and str(e)
                out.append(("error " if ok else "BAD ") + type(e).__name__ + ": " + str(e)[:300])
        print(json.dumps([i, out]), flush=True)
""")


def _run_child(code, args=(), timeout=120):
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


# -- the valid files mutated --------------------------------------------------------
def _seed_files(folder):
    from safetensors.numpy import save_file

    fk.manual_seed(0)
    obj = {
        "model": {"w": fk.randn(3, 2), "b": fk.zeros(2, dtype=fk.float64)},
        "epoch": 3,
        "opt": {"state": {0: {"step": 1, "m": fk.ones(2)}}, "groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]},
        (1, "k"): [None, True, 1.5, "s", (fk.arange(3), fk.tensor([True, False]))],
    }
    fk.save(obj, folder / "nested.safetensors")
    x, y = fk.zeros(8, 12, 12, dtype=fk.uint8), fk.tensor([0, 1] * 4)
    dls = DataLoaders.from_dsets(
        TensorDataset(x, y),
        TensorDataset(x, y),
        bs=4,
        after_batch=Pipeline([IntToFloat(), AddChannel()]),
        vocab=["3", "7"],
    )
    Learner(
        dls,
        create_model("simple_cnn", n_out=2, widths=(4, 8)),
        loss_func=nn.CrossEntropyLoss(label_smoothing=0.1),
        progress=False,
    ).export(folder / "bundle.safetensors")
    save_file(
        {
            "a": np.arange(6, dtype=np.float32).reshape(2, 3),
            "u": np.arange(4, dtype=np.uint8),
            "b": np.array([True, False]),
            "i": np.arange(2, dtype=np.int64),
            "e": np.zeros((0, 3)),
        },
        folder / "plain.safetensors",
        metadata={"note": "x"},
    )
    return [(folder / n).read_bytes() for n in ("nested.safetensors", "bundle.safetensors", "plain.safetensors")]


_JUNK = [
    None,
    True,
    False,
    0,
    -1,
    1,
    7,
    2**31,
    2**64,
    -(2**63),
    1.5,
    float("nan"),
    "",
    "x",
    "BF16",
    "F16",
    "BOOL",
    "__tensor__",
    "__items__",
    "Module",
    "reduction",
    "os",
    [],
    {},
    [0],
    [0, 2**40],
    [1, 0],
    [0, 0, 0],
    [[1], 2],
    {"__tensor__": "zz"},
    {"__tensor__": 1},
    {"__items__": [[[1], 2]]},
    {"__tuple__": {}},
    {"__items__": [1, 2, 3]},
    {"name": "Module"},
    {"name": "Pipeline"},
    {"name": "cross_entropy"},
    {"reduction": "bogus"},
    ["a", 1, None],
    "[" * 500,
    [[[[[]]]]],
]


def _nodes(tree, path=()):
    """Every (path, value) in a JSON tree."""
    yield path, tree
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        yield from _nodes(v, path + (k,))


def _edit_json(tree, rng):
    """tree with one node replaced by junk, deleted, or (a JSON string inside) edited in turn."""
    path, value = rng.choice(list(_nodes(tree)))
    if isinstance(value, str) and value[:1] in "{[" and rng.random() < 0.7:
        try:
            new = json.dumps(_edit_json(json.loads(value), rng))
        except ValueError:
            new = value[:-1]
    else:
        new = rng.choice(_JUNK)
    if not path:
        return new
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and rng.random() < 0.2:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return tree


def _mutate(data, rng):
    n = int.from_bytes(data[:8], "little")
    kind = rng.choice(["flip", "flip_header", "truncate", "length", "json", "json", "json", "random", "splice"])
    b = bytearray(data)
    if kind in ("flip", "flip_header"):
        hi = 8 + n if kind == "flip_header" else len(b)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(hi)] = rng.randrange(256)
    elif kind == "truncate":
        del b[rng.randrange(len(b)) :]
    elif kind == "length":
        new = rng.choice([0, 1, n - 1, n + 1, n + 8, len(b), len(b) - 8, 2**63, 2**64 - 1, rng.getrandbits(64)])
        b[:8] = (new % 2**64).to_bytes(8, "little")
    elif kind == "json":
        header = _edit_json(json.loads(data[8 : 8 + n]), rng)
        raw = json.dumps(header).encode()
        b = bytearray(len(raw).to_bytes(8, "little") + raw + data[8 + n :])
    elif kind == "random":
        b = bytearray(rng.randbytes(rng.randrange(64)))
        if rng.random() < 0.5:  # a plausible length, then junk
            b = bytearray(len(b).to_bytes(8, "little")) + b
    else:
        at = rng.randrange(len(b))
        b[at:at] = rng.randbytes(rng.randrange(1, 16))
    return kind, bytes(b)


def test_reader_fuzz(tmp_path):
    seeds = _seed_files(tmp_path)
    seed = int(os.environ.get("FASTKERN_FUZZ_SEED", "0"))
    rng = random.Random(seed)
    n_cases = 20_000 if LONG else 400
    outcomes = {"ok": 0, "error": 0}
    for first in range(0, n_cases, PER_CHILD):
        cases = []
        for i in range(first, min(first + PER_CHILD, n_cases)):
            kind, data = _mutate(rng.choice(seeds), rng)
            path = tmp_path / f"case{i - first}.safetensors"
            path.write_bytes(data)
            cases.append((kind, path))
        try:
            res = _run_child(_CHILD, [p for _, p in cases], timeout=600 if LONG else 120)
        except subprocess.TimeoutExpired as e:
            done = len((e.stdout or b"").splitlines())
            pytest.fail(f"seed {seed}: case {first + done} ({cases[done][0]}) hung the reader")
        lines = [json.loads(line) for line in res.stdout.splitlines()]
        if res.returncode != 0:
            kind, path = cases[len(lines)]
            (tmp_path / "crash.safetensors").write_bytes(path.read_bytes())
            pytest.fail(
                f"seed {seed}: case {first + len(lines)} ({kind}) killed the reader with exit code "
                f"{res.returncode} (file kept as {tmp_path / 'crash.safetensors'}):\n{res.stderr[-2000:]}"
            )
        for i, results in lines:
            for r in results:
                assert not r.startswith("BAD"), f"seed {seed}: case {first + i} ({cases[i][0]}): {r}"
                outcomes[r.split()[0]] += 1
    assert outcomes["ok"] and outcomes["error"]  # the mutations neither all break nor all miss


def test_loading_a_device_reads_nothing(tmp_path):
    code = (
        "import resource\n"
        'vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) << 10\n'
        "resource.setrlimit(resource.RLIMIT_AS, (vm + (4 << 30),) * 2)\nimport fastkern as fk\n"
        "try:\n    fk.load('/dev/zero')\nexcept ValueError as e:\n    print(e)"
    )
    res = _run_child(code, timeout=60)
    assert res.returncode == 0 and "cannot load /dev/zero: it is a character device" in res.stdout, res.stderr


# -- saves that do not finish --------------------------------------------------------
def test_save_killed_mid_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    fk.save({"w": fk.ones(3)}, path)
    before = path.read_bytes()
    # the child writes a big checkpoint and is killed after the data is written, before the rename
    code = textwrap.dedent(f"""
        import os, sys, time
        import fastkern as fk
        from fastkern import serialization
        def stall(fd):
            print("written", flush=True)
            time.sleep(60)
        serialization.os.fsync = stall
        fk.save({{"w": fk.zeros(2_000_000)}}, {str(path)!r})
    """)
    env = dict(os.environ, PYTHONPATH=PYTHONPATH)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline() == "written\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 8_000_000
    assert path.read_bytes() == before and fk.load(path)["w"].tolist() == [1, 1, 1]
    fk.save({"w": fk.full((3,), 2.0)}, path)  # the next save cleans up after the killed one
    assert os.listdir(tmp_path) == ["ckpt.safetensors"] and fk.load(path)["w"].tolist() == [2, 2, 2]


def test_disk_full_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    fk.save({"w": fk.ones(3)}, path)
    before = path.read_bytes()

    def full(fd):  # where a full disk shows on network filesystems
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(serialization.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        fk.save({"w": fk.zeros(1000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_disk_full_on_a_real_filesystem(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("mounting a small tmpfs needs root and mount")
    try:
        path = mnt / "ckpt.safetensors"
        fk.save({"w": fk.ones(3)}, path)
        before = path.read_bytes()
        with pytest.raises(OSError) as info:
            fk.save({"w": fk.zeros(100_000)}, path)  # 400 KB on a 64 KB filesystem
        assert info.value.errno == errno.ENOSPC
        assert path.read_bytes() == before and os.listdir(mnt) == ["ckpt.safetensors"]
        assert fk.load(path)["w"].tolist() == [1, 1, 1]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
