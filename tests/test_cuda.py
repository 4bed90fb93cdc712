"""The CUDA device's own behaviour, where fastkern.cuda.is_available(): on a GPU, or on the
emulated device of tools/test-cuda-emulated (the op tests run there through the `device` fixture)."""

import numpy as np
import pytest

import fastkern as fk

pytestmark = pytest.mark.skipif(not fk.cuda.is_available(), reason="no CUDA device")


def test_devices_mix_as_in_pytorch():
    c, p = fk.ones(3, device="cuda"), fk.ones(3)
    assert (c + 2).device == "cuda:0" and (c * fk.tensor(2.0)).device == "cuda:0"  # numbers and CPU 0-d mix
    for f in (lambda: c + p, lambda: fk.cat([c, p]), lambda: c @ p, lambda: fk.where(c > 0, c, p)):
        with pytest.raises(RuntimeError, match="same device.*cuda:0 and cpu|same device.*cpu and cuda:0"):
            f()
    assert repr(c) == "tensor([1., 1., 1.], device='cuda:0')"
    with pytest.raises(TypeError, match=r"can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu\(\)"):
        c.numpy()


def test_copies_between_devices_keep_values_and_gradients():
    a = np.random.default_rng(0).standard_normal((4, 5))
    x = fk.tensor(a, requires_grad=True)
    y = x.to("cuda", non_blocking=True)
    assert y.is_cuda and y.grad_fn is not None
    (y * y).sum().backward()
    assert not x.grad.is_cuda and np.allclose(x.grad.numpy(), 2 * a)
    c = fk.zeros(4, 5, device="cuda", dtype=fk.float64)
    c.copy_(fk.tensor(a))  # copy_ across devices, as PyTorch
    assert np.array_equal(c.cpu().numpy(), a) and c.t().contiguous().cpu().tolist() == a.T.tolist()
    assert fk.tensor(a, device="cuda").sum().item() == pytest.approx(a.sum())


def test_the_generator_depends_on_the_seed_not_the_launch_shape():
    fk.manual_seed(3)
    long = fk.rand(100_000, device="cuda")
    fk.manual_seed(3)
    short = fk.rand(10, device="cuda")
    assert long[:10].tolist() == short.tolist()
    assert fk.rand(10, device="cuda").tolist() != short.tolist()  # the next draw moves on
    n = fk.randn(100_000, device="cuda", dtype=fk.float64).cpu().numpy()
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    u = long.cpu().numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    r = fk.randint(-3, 4, (10_000,), device="cuda").cpu().numpy()
    assert set(r.tolist()) == set(range(-3, 4))
    assert sorted(fk.randperm(50, device="cuda").cpu().tolist()) == list(range(50))


def test_memory_statistics_and_the_cache():
    fk.cuda.synchronize()
    base = fk.cuda.memory_allocated()
    x = fk.empty(1 << 20, device="cuda")  # 4 MiB
    assert fk.cuda.memory_allocated() >= base + (4 << 20)
    assert fk.cuda.max_memory_allocated() >= fk.cuda.memory_allocated()
    assert fk.cuda.memory_reserved() >= fk.cuda.memory_allocated()
    del x
    assert fk.cuda.memory_allocated() == base
    held = fk.cuda.memory_reserved()
    fk.cuda.empty_cache()
    assert fk.cuda.memory_reserved() < held
    fk.cuda.reset_peak_memory_stats()
    assert fk.cuda.max_memory_allocated() == fk.cuda.memory_allocated()


def test_out_of_memory_is_a_clear_error_and_the_process_stays_usable():
    with pytest.raises(fk.cuda.OutOfMemoryError, match="CUDA out of memory. Tried to allocate"):
        fk.empty(1 << 44, device="cuda")  # 64 TiB
    assert (fk.ones(3, device="cuda") * 2).sum().item() == 6


def test_save_writes_host_copies_and_load_maps_them(tmp_path):
    w = fk.arange(6, device="cuda", dtype=fk.float32).reshape(2, 3)
    fk.save({"w": w, "b": [fk.ones(2, device="cuda")]}, tmp_path / "m.safetensors")
    back = fk.load(tmp_path / "m.safetensors")
    assert back["w"].device == "cpu" and back["w"].tolist() == w.cpu().tolist()
    on = fk.load(tmp_path / "m.safetensors", map_location="cuda")
    assert on["w"].is_cuda and on["b"][0].is_cuda and on["w"].cpu().tolist() == w.cpu().tolist()
    with pytest.raises(TypeError, match="map_location must be a device"):
        fk.load(tmp_path / "m.safetensors", map_location={"cuda:0": "cpu"})


def test_pytorch_tutorial_device_pattern():
    dev = fk.device("cuda") if fk.cuda.is_available() else fk.device("cpu")
    x = fk.randn(64, 10).to(dev)
    assert x.device.type == "cuda" and x.softmax(1).sum(1).cpu().numpy() == pytest.approx(np.ones(64), rel=1e-5)


def test_dlpack_shares_device_memory():
    x = fk.arange(6, device="cuda", dtype=fk.float32)
    assert x.__dlpack_device__() == (2, 0)
    y = fk.from_dlpack(x)
    assert y.is_cuda and y.cpu().tolist() == x.cpu().tolist()
    x.add_(1)
    assert y.cpu().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():  # a real GPU: both ways with PyTorch
        t = torch.from_dlpack(x)
        assert t.is_cuda and t.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        t.mul_(2)
        torch.cuda.synchronize()
        assert x.cpu().tolist() == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
        back = fk.from_dlpack(torch.ones(3, device="cuda"))
        assert back.is_cuda and back.sum().item() == 3


def test_a_small_cnn_trains_as_on_the_cpu():
    import fastkern.nn.functional as F

    def losses(dev):
        fk.manual_seed(0)
        model = fk.models.create_model("simple_cnn", n_out=10, widths=(4, 8)).to(dev)
        opt = fk.optim.Adam(model.parameters(), lr=1e-2)
        rng = np.random.default_rng(0)
        out = []
        for _ in range(4):
            x = fk.tensor(rng.standard_normal((16, 1, 28, 28)).astype(np.float32), device=dev)
            y = fk.tensor(rng.integers(0, 10, 16), device=dev)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        assert all(p.is_cuda for p in model.parameters()) == (dev == "cuda")
        return out

    np.testing.assert_allclose(losses("cuda"), losses("cpu"), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool"])
def test_contiguous_elementwise_paths_agree_with_the_cpu(dtype):
    # 16-byte vector accesses for aligned contiguous operands, a scalar tail, and the strided
    # path for views that start off the 16-byte grid (x[1:]).
    rng = np.random.default_rng(0)
    dt = getattr(fk, dtype)
    for n in (1, 3, 4, 5, 15, 16, 17, 33, 1000, 1003):
        a = rng.integers(0, 3, n + 1).astype(np.float64)
        b = rng.integers(1, 4, n + 1).astype(np.float64)
        x, y = fk.tensor(a, dtype=dt), fk.tensor(b, dtype=dt)
        xc, yc = x.cuda(), y.cuda()
        for sl in (slice(0, n), slice(1, n + 1)):
            ops = [lambda p, q: p == q, lambda p, q: p > q]
            if dtype != "bool":
                ops += [lambda p, q: p + q, lambda p, q: p * q, lambda p, q: -p, lambda p, q: p.abs()]
            for op in ops:
                assert op(xc[sl], yc[sl]).cpu().tolist() == op(x[sl], y[sl]).tolist(), (n, sl)
