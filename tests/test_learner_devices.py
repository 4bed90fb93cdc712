"""The training layer on a device: default_device, pinned memory, DataLoader(pin_memory, device),
Module.to in place, layers built on a device, and a Learner that trains, predicts, finds a learning
rate and exports from the device with the CPU's results. On 'cpu' the same tests check the CPU
path and the clear errors a machine without CUDA gives."""

import os

import numpy as np
import pytest

import fastkern as fk
from fastkern import DataLoaders, Learner, accuracy, nn
from fastkern.__main__ import main
from fastkern.data import DataLoader, IntToFloat, TensorDataset
from fastkern.models import create_model
from fastkern.optim import SGD
from fastkern.torch_core import default_device, to_device
from helpers import blobs

needs_cuda = pytest.mark.skipif(not fk.cuda.is_available(), reason="no CUDA device")


@pytest.fixture
def auto_device():
    """default_device's first rule for one test (conftest pins the CPU for the rest)."""
    default_device(None)
    yield
    default_device(False)


def test_default_device_picks_cuda_when_available(auto_device):
    want = "cuda:0" if fk.cuda.is_available() else "cpu"
    assert default_device() == want and fk.default_device() == want
    assert default_device(False) == "cpu" and default_device() == "cpu"  # the setting sticks, as fastai's
    assert default_device(True) == want
    assert default_device(None) == want
    x, y = blobs(64)
    dls = DataLoaders.from_dsets(TensorDataset(x, y), TensorDataset(x, y), bs=16)
    model = create_model("mlp", n_in=4, hidden=(8,), n_out=2)
    assert Learner(dls, model).device == want
    assert Learner(dls, model, device="cpu").device == "cpu"  # the argument overrides
    dls.device = "cpu"
    assert Learner(dls, model).device == "cpu"  # so do the loaders' device


@pytest.mark.skipif(fk.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_pinning_is_a_clear_error_or_a_warning():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        fk.ones(3).pin_memory()
    with pytest.warns(UserWarning, match="no CUDA device"):
        dl = DataLoader(TensorDataset(fk.ones(4, 2)), batch_size=2, pin_memory=True)
    assert not dl.pin_memory and not next(iter(dl))[0].is_pinned()
    assert main(["train", "--device", "cuda"]) == 2


@needs_cuda
def test_pin_memory_and_non_blocking_copies():
    a = np.random.default_rng(0).standard_normal((37, 5)).astype(np.float32)
    x = fk.tensor(a)
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned() and p.device == "cpu" and p.pin_memory() is p
    assert np.array_equal(p.numpy(), a) and np.array_equal(x.t().pin_memory().numpy(), a.T)
    with pytest.raises(RuntimeError, match="cannot pin 'cuda:0' memory"):
        p.cuda().pin_memory()
    # Many pinned batches in flight, each freed while its copy may still be queued: the pool
    # must not hand a block back before the stream has passed it.
    outs = []
    for i in range(50):
        outs.append(fk.full((1000,), float(i)).pin_memory().to("cuda", non_blocking=True))
    assert [o.cpu()[0].item() for o in outs[::7]] == [float(i) for i in range(0, 50, 7)]
    assert all(o.sum().item() == 1000 * i for i, o in enumerate(outs))
    assert fk.empty(0).pin_memory().to("cuda", non_blocking=True).numel() == 0
    g = fk.ones(3, requires_grad=True)
    (g.pin_memory().cuda(non_blocking=True) * 2).sum().backward()
    assert g.grad.tolist() == [2.0, 2.0, 2.0]
    fk.cuda.empty_cache()  # frees the cached pinned blocks too
    assert fk.ones(2).pin_memory().tolist() == [1.0, 1.0]


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_pins_and_moves_batches(device, workers):
    pin = device == "cuda"
    x = fk.arange(60, dtype=fk.uint8).reshape(20, 3)
    y = fk.arange(20)
    ref = list(DataLoader(TensorDataset(x, y), batch_size=6, after_batch=IntToFloat()))
    dl = DataLoader(
        TensorDataset(x, y), batch_size=6, after_batch=IntToFloat(), num_workers=workers, pin_memory=pin, device=device
    )
    got = list(dl)
    assert len(got) == len(ref) == 4
    for (gx, gy), (rx, ry) in zip(got, ref):
        # moved, then made float
        assert gx.device.type == device and gy.device.type == device and gx.dtype == fk.float32
        assert gx.cpu().tolist() == rx.tolist() and gy.cpu().tolist() == ry.tolist()
    dl.close()


def test_normalize_runs_on_the_batch_device(device):
    norm = fk.data.Normalize([0.5, 0.25], [2.0, 4.0])
    x = fk.ones(3, 2, 4, 4, device=device)
    out = norm(x)
    assert out.device.type == device
    assert np.allclose(out[:, 0].cpu().numpy(), 0.25) and np.allclose(out[:, 1].cpu().numpy(), 0.1875)


def test_module_to_moves_in_place(device):
    fk.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    params = list(model.parameters())
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(fk.randn(5, 4)).sum().backward()
    model.to(device)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]  # the optimizer's own
    assert all(p.device.type == device and p.grad.device.type == device for p in params)
    assert all(b.device.type == device for b in model.buffers())
    opt.step()  # the momentum buffers are made on the device
    assert all(s["momentum_buffer"].device.type == device for s in opt.state.values())
    moved = SGD(model.parameters(), lr=0.1, momentum=0.9)
    moved.load_state_dict({k: v for k, v in opt.state_dict().items()})
    assert all(s["momentum_buffer"].device.type == device for s in moved.state.values())
    model.to(fk.float64)
    assert params[0].dtype == fk.float64 and model[1].num_batches_tracked.dtype == fk.int64
    model.cpu()
    assert params[0].device == "cpu"


def test_layers_are_built_on_a_device(device):
    for layer in (
        nn.Linear(3, 4, device=device, dtype=fk.float64),
        nn.Conv2d(2, 4, 3, device=device, dtype=fk.float64),
        nn.BatchNorm2d(4, device=device, dtype=fk.float64),
        nn.Embedding(5, 2, padding_idx=0, device=device, dtype=fk.float64),
    ):
        for name, t in layer.state_dict().items():
            assert t.device.type == device, name
            assert t.dtype == (fk.int64 if name == "num_batches_tracked" else fk.float64), name
    assert nn.Embedding(5, 2, padding_idx=0, device=device).weight[0].cpu().tolist() == [0.0, 0.0]


def _mnist_learner(device, n_train=256, n_valid=128):
    s = fk.data.mnist_sample()
    pick = np.random.default_rng(0).permutation
    ti, vi = pick(len(s.train_y))[:n_train], pick(len(s.valid_y))[:n_valid]
    tfms = fk.data.Pipeline([IntToFloat(), fk.data.Flatten()])
    dls = DataLoaders.from_dsets(
        TensorDataset(s.train_x[fk.tensor(ti)], s.train_y[fk.tensor(ti)]),
        TensorDataset(s.valid_x[fk.tensor(vi)], s.valid_y[fk.tensor(vi)]),
        bs=64,
        seed=0,
        after_batch=tfms,
        vocab=list(s.vocab),
        device=device,
        pin_memory=device == "cuda",
    )
    fk.manual_seed(0)
    model = create_model("mlp", n_in=784, hidden=(32,), n_out=2)
    return Learner(dls, model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy, progress=False, device=device)


def test_learner_on_a_device_trains_predicts_and_exports_as_on_the_cpu(device, tmp_path):
    cpu, dev = _mnist_learner("cpu"), _mnist_learner(device)
    for learn in (cpu, dev):
        learn.fit_one_cycle(2, 1e-2)
    assert all(p.device.type == device for p in dev.model.parameters())
    assert all(t.device.type == device for s in dev.opt.state.values() for t in s.values() if isinstance(t, fk.Tensor))
    np.testing.assert_allclose(np.array(dev.recorder.values), np.array(cpu.recorder.values), rtol=1e-4, atol=1e-5)
    preds, targs = dev.get_preds()
    cpu_preds, cpu_targs = cpu.get_preds()
    assert preds.device == "cpu" and targs.device == "cpu"  # as fastai's: gathered on the host
    np.testing.assert_allclose(preds.numpy(), cpu_preds.numpy(), rtol=1e-4, atol=1e-5)
    item = dev.dls.valid_ds[0][0]
    label, idx, probs = dev.predict(item)
    assert label in ("3", "7") and probs.device == "cpu"
    np.testing.assert_allclose(probs.numpy(), cpu.predict(item)[2].numpy(), rtol=1e-4, atol=1e-5)
    before = {k: v.cpu().numpy().copy() for k, v in dev.model.state_dict().items()}
    sugg = dev.lr_find(num_it=8)
    assert sugg.valley > 0
    after = dev.model.state_dict()
    assert all(np.array_equal(before[k], after[k].cpu().numpy()) for k in before)  # lr_find restores them
    path = dev.export(tmp_path / "m.safetensors")
    for where in ("cpu", device):
        loaded = fk.load_learner(path, device=where)
        assert all(p.device.type == where for p in loaded.model.parameters())
        got = loaded.predict(item)
        assert got[0] == label and np.allclose(got[2].numpy(), probs.numpy(), atol=1e-5)
    assert all(p.device == "cpu" for p in fk.load_learner(path).model.parameters())  # cpu=True, as fastai's


def test_to_device_walks_containers(device):
    b = {"x": (fk.ones(2), [fk.zeros(1), "label"]), "n": 3}
    m = to_device(b, device)
    assert m["x"][0].device.type == device and m["x"][1][0].device.type == device
    assert m["x"][1][1] == "label" and m["n"] == 3


@needs_cuda
@pytest.mark.skipif(bool(os.environ.get("FASTKERN_SANITIZE")), reason="minutes under the sanitizers; its kernels are")
def test_main_job_reaches_the_cpu_accuracy_on_cuda(capsys):
    """`fastkern train` (the embedded MNIST sample, simple_cnn) on each device: the same accuracy."""
    acc = {}
    for device in ("cpu", "cuda"):
        assert main(["train", "--device", device]) == 0
        out = capsys.readouterr().out
        acc[device] = float(out.split("\naccuracy ")[1].split()[0])
    assert acc["cpu"] > 0.97 and abs(acc["cuda"] - acc["cpu"]) <= 0.002, acc


def test_new_tensors_follow_self(device):
    x = fk.ones(2, device=device, dtype=fk.float64)
    for t in (x.new_zeros(3), x.new_ones(3), x.new_full((3,), 2.0), x.new_empty(3), x.new_tensor([1.0, 2.0])):
        assert t.device.type == device and t.dtype == fk.float64
    assert x.new_zeros(2, device="cpu", dtype=fk.float32).device.type == "cpu"
