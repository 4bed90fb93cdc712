"""The PyTorch functions written with other fastkern ops (python/fastkern/_composite.py, the
nn additions): odd shapes (empty, 0-d, non-contiguous), gradients through them against torch, and
errors on bad input. tests/test_api_coverage.py compares each with torch on a standard sample."""

import numpy as np
import pytest

import fastkern as fk
import fastkern.nn.functional as F
from helpers import assert_close, to_np, torch

needs_torch = pytest.mark.skipif(torch is None, reason="compares with torch")

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 5, 4))

# name: f(m, t) with t of shape [3, 5, 4] (made non-contiguous by the test)
CASES = {
    "split": lambda m, t: m.split(t, [2, 0, 3], 1),
    "chunk": lambda m, t: m.chunk(t, 4, 1),
    "unbind": lambda m, t: m.unbind(t, -1),
    "gather": lambda m, t: m.gather(t, 2, m.tensor(RNG_IDX)),
    "scatter_add": lambda m, t: m.scatter_add(t, 0, m.tensor(RNG_IDX[:2] % 3), t[:2, :, :2] * 2),
    "index_select": lambda m, t: m.index_select(t, 1, m.tensor([4, 4, 0])),
    "flip": lambda m, t: m.flip(t, (0, 2)),
    "roll": lambda m, t: m.roll(t, (1, -2), (1, 2)),
    "tril": lambda m, t: m.tril(t, 1),
    "triu": lambda m, t: m.triu(t, -1),
    "diagonal": lambda m, t: m.diagonal(t, 1, 1, 2),
    "cumsum": lambda m, t: m.cumsum(t, 1),
    "cumprod": lambda m, t: m.cumprod(t, 2),
    "cummax": lambda m, t: m.cummax(t, 1),
    "sort": lambda m, t: m.sort(t, 1, descending=True),
    "topk": lambda m, t: m.topk(t, 2, 1, largest=False),
    "median": lambda m, t: m.median(t, 2, keepdim=True),
    "einsum": lambda m, t: m.einsum("abc,bd->acd", t, t[0]),
    "movedim": lambda m, t: m.movedim(t, (0, 1), (2, 0)),
    "tile": lambda m, t: m.tile(t, (2, 1, 1, 1)),
    "repeat_interleave": lambda m, t: m.repeat_interleave(t, 2, 1),
    "kron": lambda m, t: m.kron(t[0], t[1, :2]),
    "masked_fill": lambda m, t: m.masked_fill(t, t > 0, 0.5),
    "logaddexp": lambda m, t: m.logaddexp(t, t.flip(0)),
    "fmod": lambda m, t: m.fmod(t * 3, 1.5),
    "layer_norm": lambda m, t: m.nn.functional.layer_norm(t, (5, 4)),
    "group_norm": lambda m, t: m.nn.functional.group_norm(t.reshape(1, 3, 20), 3),
    "glu": lambda m, t: m.nn.functional.glu(t, 2),
    "normalize": lambda m, t: m.nn.functional.normalize(t, dim=2),
    "mode": lambda m, t: m.mode((t * 2).round(), 1, keepdim=True),
    "unfold": lambda m, t: m.nn.functional.unfold(t[None], (2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
    "fold": lambda m, t: m.nn.functional.fold(t[:, :4].reshape(1, 6, 8), (4, 8), (2, 3), padding=(0, 1), stride=(2, 2)),
    "conv_transpose1d": lambda m, t: m.nn.functional.conv_transpose1d(
        t, t.permute(1, 0, 2)[:, :2, :3], stride=3, padding=1
    ),
}
RNG_IDX = RNG.integers(0, 4, (3, 5, 2))


@needs_torch
@pytest.mark.parametrize("name", CASES)
def test_non_contiguous_input_values_and_gradients_match_torch(name):
    base = np.ascontiguousarray(A.transpose(2, 1, 0))  # t below is its transpose: the values of A, not contiguous
    fx, tx = fk.tensor(base, requires_grad=True), torch.tensor(base, requires_grad=True)
    fo, to = CASES[name](fk, fx.permute(2, 1, 0)), CASES[name](torch, tx.permute(2, 1, 0))
    fo = [o for o in (fo if isinstance(fo, tuple) else (fo,))]
    to = [o for o in (to if isinstance(to, tuple) else (to,))]
    assert len(fo) == len(to)
    for a, b in zip(fo, to):
        assert tuple(a.shape) == tuple(b.shape), name
        assert_close(to_np(a), b.detach().numpy(), rtol=1e-10, atol=1e-12, msg=name)
    floats = [(a, b) for a, b in zip(fo, to) if b.is_floating_point()]
    ws = [RNG.standard_normal(tuple(b.shape)) for _, b in floats]
    sum((a * fk.tensor(w)).sum() for (a, _), w in zip(floats, ws)).backward()
    sum((b * torch.tensor(w)).sum() for (_, b), w in zip(floats, ws)).backward()
    assert_close(to_np(fx.grad), tx.grad.numpy(), rtol=1e-9, atol=1e-10, msg=name)


@needs_torch
def test_empty_and_zero_dim_inputs_match_torch():
    cases = [
        lambda m: m.split(m.zeros(0, 3), 2),
        lambda m: m.chunk(m.zeros(0), 3),
        lambda m: m.sort(m.zeros(2, 0), 1).values,
        lambda m: m.cumsum(m.zeros(0, 2), 0),
        lambda m: m.flip(m.zeros(0, 2), [0]),
        lambda m: m.tril(m.zeros(0, 3)),
        lambda m: m.topk(m.zeros(3), 0).values,
        lambda m: m.cumsum(m.tensor(2.0), 0),
        lambda m: m.einsum("i,i->", m.zeros(0), m.zeros(0)),
        lambda m: m.gather(m.zeros(2, 3), 1, m.zeros(2, 0, dtype=m.int64)),
        lambda m: m.nn.functional.one_hot(m.zeros(0, dtype=m.int64), 3),
    ]
    for f in cases:
        got, want = f(fk), f(torch)
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
        for g, w in zip(got, want):
            assert_close(to_np(g), w.numpy())


def test_bad_input_errors():
    x = fk.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"split_with_sizes expects split_sizes to sum exactly to 4"):
        fk.split(x, [1, 2], 1)
    with pytest.raises(RuntimeError, match="split_size be positive"):
        x.split(0)
    with pytest.raises(RuntimeError, match="chunks` to be greater than 0"):
        x.chunk(0)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.unbind(2)
    with pytest.raises(RuntimeError, match="Index tensor must have the same number of dimensions as input tensor"):
        x.gather(1, fk.zeros(3, dtype=fk.int64))
    with pytest.raises(RuntimeError, match=r"selected index k out of range \(k=5, size 4\)"):
        x.topk(5)
    with pytest.raises(RuntimeError, match="einsum\\(\\): 2 operands in the equation, but 1 given"):
        fk.einsum("ij,jk", x)
    with pytest.raises(NotImplementedError, match="ellipsis"):
        fk.einsum("...i->i", x)
    with pytest.raises(RuntimeError, match="do not match an operand of 2 dims"):
        fk.einsum("ijk->i", x)
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        F.one_hot(fk.tensor([0, 3]), 3)
    with pytest.raises(RuntimeError, match="only applicable to index tensor"):
        F.one_hot(fk.tensor([0.0]))
    with pytest.raises(RuntimeError, match=r"expected input with shape \[\*, 5\], but got input of size \[3, 4\]"):
        F.layer_norm(x, 5)
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(x.reshape(1, 3, 4), 2)
    with pytest.raises(NotImplementedError, match="groups > 1"):
        F.conv_transpose2d(fk.zeros(1, 2, 3, 3), fk.zeros(2, 1, 2, 2), groups=2)
    with pytest.raises(NotImplementedError, match="only mode='nearest'"):
        F.interpolate(fk.zeros(1, 1, 2, 2), scale_factor=2, mode="bilinear")
    with pytest.raises(RuntimeError, match="must have the same size as input along dim"):
        fk.repeat_interleave(x, fk.tensor([1, 2]), 0)
    with pytest.raises(TypeError, match="only floating-point types"):
        fk.set_default_dtype(fk.int64)


def test_default_dtype_float64_reaches_creation_and_layers():
    fk.set_default_dtype(fk.float64)
    try:
        assert fk.zeros(1).dtype == fk.tensor([1.5]).dtype == fk.randn(2).dtype == fk.float64
        assert fk.arange(0.5, 2).dtype == fk.float64 and fk.nn.Linear(2, 3).weight.dtype == fk.float64
        assert fk.tensor([1, 2]).dtype == fk.int64 and fk.get_default_dtype() == fk.float64
    finally:
        fk.set_default_dtype(fk.float32)
    assert fk.zeros(1).dtype == fk.float32


def test_seeds():
    fk.manual_seed(123)
    assert fk.initial_seed() == 123
    a = fk.rand(3)
    s = fk.seed()
    assert fk.initial_seed() == s and 0 <= s < 2**63
    fk.manual_seed(123)
    assert fk.rand(3).tolist() == a.tolist()


def test_deepcopy_of_a_module_and_tensors():
    import copy

    m = fk.nn.Linear(2, 3)
    m.weight.grad = fk.ones(3, 2)
    c = copy.deepcopy(m)
    assert c.weight is not m.weight and isinstance(c.weight, fk.nn.Parameter) and c.weight.requires_grad
    assert c.weight.tolist() == m.weight.tolist() and c.weight.grad.tolist() == [[1.0, 1.0]] * 3
    with fk.no_grad():
        c.weight.zero_()
    assert m.weight.abs().sum().item() > 0  # a copy, not an alias
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(m.weight * 2)


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(fk.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, g):
            return g  # should be 2 x g

    x = fk.tensor([0.5, 2.0], dtype=fk.float64, requires_grad=True)
    assert fk.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    assert not fk.autograd.gradcheck(Wrong.apply, (x,), raise_exception=False)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        fk.autograd.gradcheck(Wrong.apply, (x,))


@needs_torch
def test_rnns_match_torch_with_an_initial_state_and_unbatched():
    torch.manual_seed(0)
    for name, kw in [
        ("LSTM", dict(num_layers=2, bidirectional=True)),
        ("GRU", dict(bidirectional=True)),
        ("RNN", dict(nonlinearity="relu")),
    ]:
        ref = getattr(torch.nn, name)(3, 4, **kw).double()
        mine = getattr(fk.nn, name)(3, 4, **kw).double()
        mine.load_state_dict({k: fk.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
        x = RNG.standard_normal((5, 2, 3))
        layers = ref.num_layers * (2 if ref.bidirectional else 1)
        h = RNG.standard_normal((layers, 2, 4))
        state_t = (torch.tensor(h), torch.tensor(h * 0.5)) if name == "LSTM" else torch.tensor(h)
        state_f = (fk.tensor(h), fk.tensor(h * 0.5)) if name == "LSTM" else fk.tensor(h)
        out_t, _ = ref(torch.tensor(x), state_t)
        out_f, _ = mine(fk.tensor(x), state_f)
        assert_close(to_np(out_f), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
        unb_t, _ = ref(torch.tensor(x[:, 0]))
        unb_f, _ = mine(fk.tensor(x[:, 0]))
        assert_close(to_np(unb_f), unb_t.detach().numpy(), rtol=1e-10, atol=1e-12)


@needs_torch
def test_embedding_bag_with_offsets_and_transformer_with_masks_match_torch():
    torch.manual_seed(0)
    for mode in ("sum", "mean", "max"):
        ref = torch.nn.EmbeddingBag(6, 3, mode=mode).double()
        mine = fk.nn.EmbeddingBag(6, 3, mode=mode).double()
        mine.load_state_dict({k: fk.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
        idx, offsets = [1, 4, 4, 0, 5, 2], [0, 2, 2, 5]  # an empty third bag
        want = ref(torch.tensor(idx), torch.tensor(offsets))
        got = mine(fk.tensor(idx), fk.tensor(offsets))
        assert_close(to_np(got), want.detach().numpy(), rtol=1e-12)
        got.sum().backward()
        want.sum().backward()
        assert_close(to_np(mine.weight.grad), ref.weight.grad.numpy(), rtol=1e-12)
    ref = torch.nn.Transformer(4, 2, 2, 1, 8, dropout=0.0, batch_first=True).double().eval()
    mine = fk.nn.Transformer(4, 2, 2, 1, 8, dropout=0.0, batch_first=True).double().eval()
    mine.load_state_dict({k: fk.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    src, tgt = RNG.standard_normal((2, 5, 4)), RNG.standard_normal((2, 3, 4))
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.float64)
    fmask = fk.nn.Transformer.generate_square_subsequent_mask(3, dtype=fk.float64)
    assert_close(to_np(fmask), tmask.numpy())
    pad = np.array([[False] * 5, [False] * 4 + [True]])
    want = ref(torch.tensor(src), torch.tensor(tgt), tgt_mask=tmask, src_key_padding_mask=torch.tensor(pad))
    got = mine(fk.tensor(src), fk.tensor(tgt), tgt_mask=fmask, src_key_padding_mask=fk.tensor(pad))
    assert_close(to_np(got), want.detach().numpy(), rtol=1e-9, atol=1e-10)


@needs_torch
@pytest.mark.parametrize("name", ["erfinv", "lgamma", "digamma"])
def test_special_functions_and_their_gradients_match_torch(name):
    if name == "erfinv":
        xs = np.concatenate([np.linspace(-0.999, 0.999, 41), [0.0, 1e-300, -1.0, 1.0]])
    else:  # both sides of 0.5 (the reflection), near the poles at 0, -1, -2, ... and large
        xs = np.concatenate([np.linspace(-4.7, 10, 61), [0.5, 1.0, 2.0, -0.999, -1.001, 30.0, 1e3]])
    fx, tx = fk.tensor(xs, requires_grad=True), torch.tensor(xs, requires_grad=True)
    fo, to = getattr(fk, name)(fx), getattr(torch, name)(tx)
    assert_close(to_np(fo), to.detach().numpy(), rtol=1e-9, atol=1e-12)
    fo.sum().backward()
    to.sum().backward()
    assert_close(to_np(fx.grad), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    assert getattr(fk.tensor([0.25, 0.75]), name)().dtype == fk.float32
    assert getattr(fk, name)(fk.tensor([1])).dtype == fk.float32  # integers as float, as torch


@needs_torch
def test_conv3d_matches_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 5, 6, 7))
    for kw, wshape in [
        ({}, (3, 4, 3, 2, 3)),
        ({"stride": (2, 1, 2), "padding": (1, 0, 1), "dilation": (1, 2, 1)}, (3, 4, 2, 2, 2)),
        ({"groups": 2, "padding": 1}, (4, 2, 3, 3, 3)),
    ]:
        w = rng.standard_normal(wshape)
        fx, fw = fk.tensor(x, requires_grad=True), fk.tensor(w, requires_grad=True)
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        fo, to = F.conv3d(fx, fw, **kw), torch.nn.functional.conv3d(tx, tw, **kw)
        assert_close(to_np(fo), to.detach().numpy(), rtol=1e-10, atol=1e-12)
        fo.sum().backward()
        to.sum().backward()
        assert_close(to_np(fx.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        assert_close(to_np(fw.grad), tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(RuntimeError, match="smaller than the kernel"):
        F.conv3d(fk.zeros(1, 1, 1, 4, 4), fk.zeros(1, 1, 2, 2, 2))
