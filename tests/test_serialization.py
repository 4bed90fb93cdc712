"""fk.save / fk.load: safetensors round trips (no pickle) and atomic writes."""
import os

import numpy as np
import pytest

import fastkern as fk
from fastkern import nn, optim
from fastkern import serialization
from helpers import torch


def test_state_dict_round_trip_all_dtypes(tmp_path):
    sd = {"w": fk.randn(3, 4), "d": fk.randn(2, dtype=fk.float64), "i": fk.arange(5), "u": fk.zeros(2, dtype=fk.uint8),
          "b": fk.tensor([True, False]), "scalar": fk.tensor(7), "empty": fk.zeros(0, 3), "t": fk.randn(4, 3).T}
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
    tm = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                             torch.nn.Linear(8, 3))
    tm.load_state_dict(load_file(tmp_path / "m.safetensors"))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    m.eval(), tm.eval()
    np.testing.assert_allclose(m(fk.tensor(x)).detach().numpy(), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
