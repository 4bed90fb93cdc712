"""fastkern.nn: Module bookkeeping, state dicts, default initialisations, and layers against PyTorch."""

import math

import numpy as np
import pytest

import fastkern as fk
from fastkern import nn
from helpers import to_np, torch

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
        self.register_buffer("scale", fk.ones(1), persistent=False)

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu() * self.scale)


def test_parameter_is_a_tensor_aliasing_its_data():
    w = fk.randn(3, 2)
    p = nn.Parameter(w)
    assert isinstance(p, fk.Tensor) and p.requires_grad and p.is_leaf
    assert type(p * 2) is fk.Tensor  # ops return plain tensors, as PyTorch
    with fk.no_grad():
        p.mul_(0)
    assert w.abs().sum().item() == 0  # shares storage, no copy
    assert "Parameter containing" in repr(p)
    assert not nn.Parameter(fk.zeros(2), requires_grad=False).requires_grad


def test_registration_and_traversal():
    m = Net()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight", "head.1.bias"]
    assert [n for n, _ in m.named_buffers()] == ["scale", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in m.named_children()] == ["conv", "bn", "head"]
    assert [n for n, _ in m.named_modules()] == ["", "conv", "bn", "head", "head.0", "head.1"]
    assert len(list(m.parameters())) == 6
    # re-assigning moves a name between kinds; deleting removes it
    m.extra = nn.Parameter(fk.zeros(1))
    assert "extra" in dict(m.named_parameters())
    m.extra = nn.Linear(1, 1)
    assert "extra" not in dict(m.named_parameters()) and "extra" in dict(m.named_children())
    del m.extra
    assert not hasattr(m, "extra")
    with pytest.raises(TypeError):
        m.conv.weight = fk.zeros(4, 1, 3, 3)  # a plain tensor cannot replace a parameter


def test_shared_parameters_listed_once():
    lin = nn.Linear(2, 2)
    m = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(m.parameters())) == 2


def test_train_eval_zero_grad_requires_grad():
    m = Net()
    assert m.training and m.bn.training
    m.eval()
    assert not m.training and not m.head[1].training
    m.train()
    assert m.bn.training
    m(fk.randn(2, 1, 4, 4)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_state_dict_round_trip_and_strict_keys():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert "scale" not in sd  # non-persistent buffer
    assert list(sd) == [
        "conv.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
        "head.1.weight",
        "head.1.bias",
    ]
    assert not sd["conv.weight"].requires_grad
    b.load_state_dict(sd)
    x = fk.randn(2, 1, 4, 4)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    assert b.conv.weight.requires_grad  # loading copies in place: still the same Parameter

    missing = dict(sd)
    del missing["conv.bias"]
    with pytest.raises(RuntimeError, match="Missing key.*conv.bias"):
        b.load_state_dict(missing)
    extra = dict(sd, stray=fk.zeros(1))
    with pytest.raises(RuntimeError, match="Unexpected key.*stray"):
        b.load_state_dict(extra)
    res = b.load_state_dict(extra, strict=False)
    assert res.unexpected_keys == ["stray"] and res.missing_keys == []
    with pytest.raises(RuntimeError, match="size mismatch for conv.weight"):
        b.load_state_dict(dict(sd, **{"conv.weight": fk.zeros(4, 1, 5, 5)}))


def test_to_dtype_and_device():
    m = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).to(dtype=fk.float64)
    assert m[0].weight.dtype == fk.float64 and isinstance(m[0].weight, nn.Parameter)
    assert m[1].running_mean.dtype == fk.float64 and m[1].num_batches_tracked.dtype == fk.int64
    w = m[0].weight
    assert m.to("cpu")[0].weight is w  # already there: nothing moves


def test_repr_like_pytorch():
    r = repr(nn.Sequential(nn.Conv2d(1, 8, 5, stride=2, padding=2, bias=False), nn.ReLU(), nn.Linear(8, 2)))
    assert "(0): Conv2d(1, 8, kernel_size=(5, 5), stride=(2, 2), padding=(2, 2), bias=False)" in r
    assert "(2): Linear(in_features=8, out_features=2, bias=True)" in r


@pytest.mark.parametrize("make,fan_in", [(lambda: nn.Linear(50, 40), 50), (lambda: nn.Conv2d(6, 40, 3, groups=2), 27)])
def test_default_init_is_pytorchs(make, fan_in):
    fk.manual_seed(0)
    m = make()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound


def test_embedding_and_batchnorm_init():
    fk.manual_seed(0)
    e = nn.Embedding(200, 50, padding_idx=0)
    w = e.weight.detach().numpy()
    assert abs(w[1:].std() - 1) < 0.05 and np.all(w[0] == 0)
    bn = nn.BatchNorm2d(3)
    assert bn.weight.tolist() == [1, 1, 1] and bn.bias.tolist() == [0, 0, 0]
    assert bn.running_var.tolist() == [1, 1, 1] and bn.num_batches_tracked.item() == 0


def test_init_functions(device):
    fk.manual_seed(0)
    t = fk.empty(300, 200, device=device)
    nn.init.kaiming_normal_(t, nonlinearity="relu")
    assert abs(to_np(t).std() - math.sqrt(2 / 200)) < 0.005
    nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu")
    assert np.abs(to_np(t)).max() <= math.sqrt(6 / 300)
    nn.init.xavier_uniform_(t)
    assert np.abs(to_np(t)).max() <= math.sqrt(6 / 500)
    nn.init.xavier_normal_(t, gain=2.0)
    assert abs(to_np(t).std() - 2 * math.sqrt(2 / 500)) < 0.01
    nn.init.zeros_(t)
    assert t.abs().sum().item() == 0
    nn.init.ones_(t)
    nn.init.constant_(t, 3.0)
    assert t.mean().item() == 3.0
    nn.init.normal_(t, 1.0, 0.5)
    assert abs(t.mean().item() - 1) < 0.01
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    p = nn.Parameter(fk.zeros(3, 3, device=device))
    nn.init.uniform_(p, -1, 1)
    assert p.requires_grad and p.grad_fn is None  # in place, not recorded


def test_dropout_module_modes(device):
    d = nn.Dropout(0.5)
    x = fk.ones(1000, device=device)
    y = d(x)
    assert set(np.unique(to_np(y))) <= {0.0, 2.0}
    d.eval()
    assert d(x) is x or d(x).sum().item() == 1000


def _copy_params(fk_mod, t_mod):
    for (n, p), (tn, tp) in zip(fk_mod.state_dict().items(), t_mod.state_dict().items()):
        assert n == tn, (n, tn)
        p.copy_(fk.from_numpy(tp.detach().numpy().copy()))


LAYERS = [
    ("Linear", (7, 5), (4, 7)),
    ("Conv2d", (4, 6, 3), (2, 4, 9, 9)),
    (
        "Conv2d",
        dict(in_channels=4, out_channels=6, kernel_size=(3, 5), stride=2, padding=(1, 2), groups=2),
        (2, 4, 9, 10),
    ),
    ("BatchNorm2d", (3,), (4, 3, 5, 5)),
    ("BatchNorm1d", (6,), (8, 6)),
    ("MaxPool2d", (2,), (2, 3, 8, 8)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 9, 9)),
    ("AvgPool2d", (2,), (2, 3, 8, 8)),
    ("AdaptiveAvgPool2d", (1,), (2, 3, 7, 7)),
    ("AdaptiveAvgPool2d", ((3, 2),), (2, 3, 7, 5)),
    ("Flatten", (), (2, 3, 4)),
    ("ReLU", (), (3, 4)),
    ("LeakyReLU", (0.2,), (3, 4)),
    ("GELU", (), (3, 4)),
    ("Sigmoid", (), (3, 4)),
    ("Tanh", (), (3, 4)),
    ("Softmax", (1,), (3, 4)),
    ("LogSoftmax", (1,), (3, 4)),
    ("Identity", (), (3, 4)),
]


@needs_torch
@pytest.mark.parametrize("name,args,shape", LAYERS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(LAYERS)])
@pytest.mark.parametrize("training", [True, False])
def test_layer_matches_torch(name, args, shape, training, device):
    kw = args if isinstance(args, dict) else {}
    pos = () if isinstance(args, dict) else args
    torch.manual_seed(0)
    t_mod = getattr(torch.nn, name)(*pos, **kw).train(training)
    fk_mod = getattr(nn, name)(*pos, **kw).train(training)
    assert [n for n, _ in fk_mod.state_dict().items()] == list(t_mod.state_dict())
    _copy_params(fk_mod, t_mod)
    fk_mod.to(device)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    xt, xf = torch.tensor(x, requires_grad=True), fk.tensor(x, requires_grad=True, device=device)
    yt, yf = t_mod(xt), fk_mod(xf)
    np.testing.assert_allclose(to_np(yf), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(2).standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.tensor(g))
    yf.backward(fk.tensor(g, device=device))
    np.testing.assert_allclose(to_np(xf.grad), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for (n, p), (_, tp) in zip(fk_mod.named_parameters(), t_mod.named_parameters()):
        np.testing.assert_allclose(to_np(p.grad), tp.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=n)
    for (n, b), (_, tb) in zip(fk_mod.state_dict().items(), t_mod.state_dict().items()):
        # running stats
        np.testing.assert_allclose(to_np(b), tb.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=n)


def test_batchnorm_running_stats_and_eval(device):
    bn = nn.BatchNorm1d(2, momentum=0.5).to(device)
    x = fk.tensor([[1.0, 10.0], [3.0, 30.0]], device=device)
    bn(x)
    # running = 0.5 * old + 0.5 * batch stat; the variance is unbiased (n - 1)
    np.testing.assert_allclose(to_np(bn.running_mean), [1.0, 10.0])
    np.testing.assert_allclose(to_np(bn.running_var), [0.5 + 0.5 * 2.0, 0.5 + 0.5 * 200.0])
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    y = bn(x)
    np.testing.assert_allclose(to_np(y)[:, 0], (np.array([1.0, 3.0]) - 1) / np.sqrt(1.5 + 1e-5), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(2)(x)


def test_embedding_lookup_and_grad(device):
    e = nn.Embedding(5, 3).to(device)
    idx = fk.tensor([[0, 4], [4, 1]], device=device)
    out = e(idx)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(to_np(out[0, 1]), to_np(e.weight[4]))
    out.sum().backward()
    np.testing.assert_array_equal(to_np(e.weight.grad)[:, 0], [1, 1, 0, 0, 2])


@needs_torch
@pytest.mark.parametrize(
    "name,kw",
    [
        ("CrossEntropyLoss", {}),
        ("CrossEntropyLoss", dict(label_smoothing=0.1)),
        ("NLLLoss", {}),
        ("MSELoss", {}),
        ("L1Loss", dict(reduction="sum")),
        ("BCEWithLogitsLoss", {}),
        ("BCELoss", dict(reduction="none")),
    ],
)
def test_loss_modules_match_torch(name, kw, device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        t = rng.integers(0, 4, 6)
        if name == "NLLLoss":
            x = torch.tensor(x).log_softmax(1).numpy()
    else:
        t = rng.random((6, 4)).astype(np.float32)
        if name == "BCELoss":
            x = 1 / (1 + np.exp(-x))
    got = to_np(getattr(nn, name)(**kw)(fk.tensor(x, device=device), fk.tensor(t, device=device)))
    want = getattr(torch.nn, name)(**kw)(torch.tensor(x), torch.tensor(t)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_loss_activation_and_decodes(device):
    ce = nn.CrossEntropyLoss()
    x = fk.tensor([[1.0, 3.0], [2.0, 0.0]], device=device)
    np.testing.assert_allclose(to_np(ce.activation(x).sum(-1)), [1, 1], rtol=1e-6)
    assert ce.decodes(x).tolist() == [1, 0]
    assert nn.BCEWithLogitsLoss().decodes(fk.tensor([0.2, 0.7], device=device)).tolist() == [False, True]
