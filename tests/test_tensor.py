"""Creation, properties, dtypes, views, indexing and NumPy / DLPack interop."""

import ctypes
import gc
import os

import numpy as np
import pytest

import fastkern as fk
from helpers import (
    NP_DTYPES,
    REAL,
    assert_close,
    dtype_name,
    fk_and_torch,
    fk_on,
    helper_test_op,
    ids,
    make_tensor,
    on_device,
    to_np,
    torch,
)

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


# ----------------------------------------------------------------------------- creation
@pytest.mark.parametrize(
    "data, dtype, shape",
    [
        (1.5, "float32", ()),
        (3, "int64", ()),
        (True, "bool", ()),
        ([1.0, 2.5], "float32", (2,)),
        ([[1, 2, 3], [4, 5, 6]], "int64", (2, 3)),
        ([True, False], "bool", (2,)),
        ([1, 2.5], "float32", (2,)),  # mixed int/float -> default float
        ([[[]]], "float32", (1, 1, 0)),
    ],
)
def test_tensor_infers_dtype(data, dtype, shape, device):
    t = fk.tensor(data, device=device)
    assert isinstance(t, fk.Tensor)
    assert dtype_name(t.dtype) == dtype
    assert t.shape == shape and isinstance(t.shape, tuple)
    assert t.tolist() == data


@pytest.mark.parametrize("name", ["float32", "float64", "int64", "bool", "uint8"])
def test_tensor_from_numpy_keeps_dtype_and_copies(name, device):
    a = (np.arange(6).reshape(2, 3) % 3).astype(NP_DTYPES[name])
    before = a.copy()
    t = fk.tensor(a, device=device)
    assert dtype_name(t.dtype) == name and t.shape == (2, 3)
    a[0, 0], a[0, 1] = 1, 0
    np.testing.assert_array_equal(to_np(t), before)  # fk.tensor copies its input
    assert to_np(t).dtype == before.dtype


def test_tensor_dtype_argument_and_requires_grad(device):
    t = fk.tensor([1, 2, 3], dtype=fk.float64, device=device)
    assert t.dtype == fk.float64 and t.tolist() == [1.0, 2.0, 3.0]
    assert fk.tensor([1.9, -1.9], dtype=fk.int64, device=device).tolist() == [1, -1]
    r = fk.tensor([1.0, 2.0], requires_grad=True, device=device)
    assert r.requires_grad and r.is_leaf and r.grad is None


def test_dtype_aliases():
    assert fk.float == fk.float32 and fk.double == fk.float64 and fk.long == fk.int64
    assert fk.float32 != fk.float64 and fk.int64 != fk.uint8 and fk.bool != fk.uint8


def test_properties():
    x = fk.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.shape[-1] == 4 and len(x.shape) == 3
    assert x.ndim == 3 and x.numel() == 24 and x.dtype == fk.float32
    assert str(x.device) == "cpu"
    assert x.is_contiguous() and x.stride() == (12, 4, 1)
    assert x.transpose(0, 2).stride() == (1, 4, 12) and not x.transpose(0, 2).is_contiguous()
    s = fk.tensor(2.0)
    assert s.shape == () and s.ndim == 0 and s.numel() == 1 and s.stride() == ()
    assert fk.zeros(3, 0).numel() == 0


@pytest.mark.parametrize("factory, fill", [(fk.zeros, 0), (fk.ones, 1), (fk.empty, None)])
def test_zeros_ones_empty(factory, fill, device):
    for t in (factory(2, 3, device=device), factory((2, 3), device=device)):
        assert t.shape == (2, 3) and t.dtype == fk.float32
        if fill is not None:
            assert t.tolist() == [[fill] * 3] * 2
    assert factory(4, dtype=fk.int64, device=device).dtype == fk.int64
    assert factory((), dtype=fk.float64, device=device).shape == ()
    assert factory(0, 5, device=device).shape == (0, 5)
    if fill is not None:
        assert factory(2, dtype=fk.bool, device=device).tolist() == [bool(fill)] * 2
        assert factory(2, dtype=fk.uint8, device=device).tolist() == [fill] * 2


def test_full(device):
    t = fk.full((2, 2), 1.5, device=device)
    assert t.dtype == fk.float32 and t.tolist() == [[1.5, 1.5], [1.5, 1.5]]
    assert fk.full((3,), 7, device=device).dtype == fk.int64  # PyTorch infers int64 from an int fill value
    assert fk.full((3,), 7, dtype=fk.float64, device=device).tolist() == [7.0] * 3


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "empty_like", "full_like"])
def test_like_factories(name, device):
    x = fk.tensor([[1, 2, 3]], device=device).transpose(0, 1)
    args = (x, 5) if name == "full_like" else (x,)
    t = getattr(fk, name)(*args)
    assert t.shape == (3, 1) and t.dtype == fk.int64 and on_device(t, device)  # the device is like x's too
    if name != "empty_like":
        assert t.tolist() == [[{"zeros_like": 0, "ones_like": 1, "full_like": 5}[name]]] * 3
    assert getattr(fk, name)(*args, dtype=fk.float64).dtype == fk.float64


@pytest.mark.parametrize(
    "args, kwargs, expected, dtype",
    [
        ((5,), {}, np.arange(5), "int64"),
        ((1, 10, 3), {}, np.arange(1, 10, 3), "int64"),
        ((5, 0, -1), {}, np.arange(5, 0, -1), "int64"),
        ((0, 1, 0.25), {}, np.arange(0, 1, 0.25), "float32"),
        ((5.0,), {}, np.arange(5.0), "float32"),
        ((5,), {"dtype": fk.float64}, np.arange(5.0), "float64"),
        ((3, 3), {}, np.arange(3, 3), "int64"),
    ],
)
def test_arange(args, kwargs, expected, dtype, device):
    t = fk.arange(*args, **kwargs, device=device)
    assert dtype_name(t.dtype) == dtype
    assert_close(t, expected, rtol=0, atol=1e-7)


def test_linspace_and_eye(device):
    assert_close(fk.linspace(0, 1, 5, device=device), np.linspace(0, 1, 5))
    assert fk.linspace(0, 1, 5, device=device).dtype == fk.float32
    assert_close(fk.linspace(-3, 7, 11, device=device), np.linspace(-3, 7, 11))
    assert fk.linspace(2, 3, 1, device=device).tolist() == [2.0]
    assert_close(fk.eye(3, device=device), np.eye(3))
    assert_close(fk.eye(2, 4, device=device), np.eye(2, 4))
    assert fk.eye(3, device=device).dtype == fk.float32


def test_random_creation_and_seed(device):
    fk.manual_seed(0)
    a, b = fk.rand(1000, device=device), fk.randn(10000, device=device)
    fk.manual_seed(0)
    a2, b2 = fk.rand(1000, device=device), fk.randn(10000, device=device)
    assert a.tolist() == a2.tolist() and b.tolist() == b2.tolist()
    fk.manual_seed(1)
    assert fk.rand(1000, device=device).tolist() != a.tolist()
    assert fk.rand(2, 3, device=device).shape == (2, 3) and fk.randn((4, 5), device=device).shape == (4, 5)
    assert a.dtype == fk.float32 and b.dtype == fk.float32
    an, bn = to_np(a), to_np(b)
    assert an.min() >= 0 and an.max() < 1 and abs(an.mean() - 0.5) < 0.05
    assert abs(bn.mean()) < 0.05 and abs(bn.std() - 1) < 0.05
    assert len(np.unique(an)) > 990


def test_randint(device):
    fk.manual_seed(3)
    r = fk.randint(-2, 5, (2000,), device=device)
    assert r.dtype == fk.int64 and r.shape == (2000,)
    assert set(r.tolist()) == set(range(-2, 5))
    assert fk.randint(0, 10, (3, 4), device=device).shape == (3, 4)
    fk.manual_seed(3)
    assert fk.randint(-2, 5, (2000,), device=device).tolist() == r.tolist()


@pytest.mark.parametrize(
    "shapes, dim",
    [
        ([(2, 3), (2, 3), (2, 3)], 0),
        ([(2, 3), (2, 3)], 1),
        ([(2, 3), (2, 3)], 2),
        ([(2, 3), (2, 3)], -1),
        ([(4,)], 0),
        ([(), ()], 0),
        ([(0, 3), (0, 3)], 1),
    ],
)
def test_stack(shapes, dim, device):
    arrs = [np.random.default_rng(i).standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)]
    assert_close(fk.stack([fk.tensor(a, device=device) for a in arrs], dim), np.stack(arrs, dim))


@pytest.mark.parametrize(
    "shapes, dim",
    [
        ([(2, 3), (4, 3), (1, 3)], 0),
        ([(2, 3), (2, 5)], 1),
        ([(2, 3), (2, 5)], -1),
        ([(3,), (0,), (4,)], 0),
        ([(2, 0), (2, 3)], 1),
        ([(2, 3, 4)], 2),
    ],
)
def test_cat(shapes, dim, device):
    arrs = [np.random.default_rng(i).standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)]
    assert_close(fk.cat([fk.tensor(a, device=device) for a in arrs], dim), np.concatenate(arrs, dim))
    assert_close(
        fk.cat(tuple(make_tensor(a, "float32", "strided", device=device) for a in arrs), dim), np.concatenate(arrs, dim)
    )


# ----------------------------------------------------------------------------- views
def arange_t(*shape, dtype=fk.float32, device="cpu"):
    n = int(np.prod(shape))
    return fk.arange(n, device=device).to(dtype).reshape(*shape), np.arange(n, dtype=np.float32).reshape(shape)


@pytest.mark.parametrize(
    "op, ref",
    [
        (lambda x: x.view(6, 4), lambda a: a.reshape(6, 4)),
        (lambda x: x.view(-1), lambda a: a.reshape(-1)),
        (lambda x: x.view(2, -1, 2), lambda a: a.reshape(2, -1, 2)),
        (lambda x: x.reshape(4, -1), lambda a: a.reshape(4, -1)),
        (lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
        (lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
        (lambda x: x.transpose(-1, -2), lambda a: a.swapaxes(-1, -2)),
        (lambda x: x[0].T, lambda a: a[0].T),
        (lambda x: x[:, :1].expand(2, 5, 4), lambda a: np.broadcast_to(a[:, :1], (2, 5, 4))),
        (lambda x: x[0, :1].expand(3, -1, -1), lambda a: np.broadcast_to(a[0, :1], (3, 1, 4))),
        (lambda x: x.unsqueeze(0), lambda a: a[None]),
        (lambda x: x.unsqueeze(-1), lambda a: a[..., None]),
        (lambda x: x.unsqueeze(1), lambda a: a[:, None]),
        (lambda x: x[:1, :, :1].squeeze(), lambda a: a[:1, :, :1].squeeze()),
        (lambda x: x[:1].squeeze(0), lambda a: a[:1].squeeze(0)),
        (lambda x: x[:, :, :1].squeeze(-1), lambda a: a[:, :, :1].squeeze(-1)),
        (lambda x: x.squeeze(1), lambda a: a),  # size-3 dim: no-op
        (lambda x: x.flatten(), lambda a: a.reshape(-1)),
        (lambda x: x.flatten(1), lambda a: a.reshape(2, 12)),
        (lambda x: x.flatten(0, 1), lambda a: a.reshape(6, 4)),
        (lambda x: x.flatten(-2, -1), lambda a: a.reshape(2, 12)),
    ],
)
def test_views_share_memory(op, ref, device):
    x, a = arange_t(2, 3, 4, device=device)
    v = op(x)
    assert_close(v, ref(a))
    # a write through the base is visible in the view (they share memory)
    x.add_(1000)
    assert_close(v, ref(a) + 1000)


def test_view_writes_reach_base(device):
    x, a = arange_t(3, 4, device=device)
    x.view(12)[5] = -1
    x.T[0, 2] = -2
    x.unsqueeze(0)[0, 1, 1] = -3
    x[1:, ::2].fill_(7)
    a.reshape(12)[5] = -1
    a.T[0, 2] = -2
    a[1, 1] = -3
    a[1:, ::2] = 7
    assert_close(x, a)


def test_expand_has_zero_stride_and_reshape_of_noncontiguous_copies(device):
    x = fk.tensor([[1.0], [2.0]], device=device)
    e = x.expand(2, 3)
    assert e.stride()[1] == 0 and e.tolist() == [[1, 1, 1], [2, 2, 2]]
    y, a = arange_t(3, 4, device=device)
    r = y.T.reshape(12)
    assert_close(r, a.T.reshape(12))
    y.add_(1)
    assert_close(r, a.T.reshape(12))  # a copy: unaffected


def test_contiguous_clone_detach(device):
    x, a = arange_t(3, 4, device=device)
    t = x.T
    c = t.contiguous()
    assert c.is_contiguous() and c.stride() == (3, 1)
    assert_close(c, a.T)
    k = x.clone()
    k.add_(1)
    assert_close(x, a)
    assert_close(k, a + 1)
    kt = t.clone()
    assert_close(kt, a.T)
    r = fk.ones(3, requires_grad=True, device=device)
    d = r.detach()
    assert not d.requires_grad and d.grad_fn is None
    with fk.no_grad():
        d.add_(1)
    assert r.tolist() == [2.0, 2.0, 2.0]  # detach shares memory


@pytest.mark.parametrize(
    "src, conv, want, dtype",
    [
        ([1.7, -1.7, 0.0], lambda t: t.long(), [1, -1, 0], "int64"),
        ([1.7, -1.7, 0.0], lambda t: t.to(fk.int64), [1, -1, 0], "int64"),
        ([1.5, 0.0, -2.0], lambda t: t.bool(), [True, False, True], "bool"),
        ([1.5, 0.0, -2.0], lambda t: t.double(), [1.5, 0.0, -2.0], "float64"),
        ([1, 0, 3], lambda t: t.float(), [1.0, 0.0, 3.0], "float32"),
        ([1, 0, 3], lambda t: t.bool(), [True, False, True], "bool"),
        ([True, False], lambda t: t.long(), [1, 0], "int64"),
        ([True, False], lambda t: t.float(), [1.0, 0.0], "float32"),
        ([255, 1, 0], lambda t: t.to(fk.uint8).float(), [255.0, 1.0, 0.0], "float32"),
        ([3, 2], lambda t: t.to(fk.uint8), [3, 2], "uint8"),
    ],
)
def test_dtype_conversion(src, conv, want, dtype, device):
    out = conv(fk.tensor(src, device=device))
    assert dtype_name(out.dtype) == dtype and out.tolist() == want


def test_item_and_tolist(device):
    t = lambda v, **kw: fk.tensor(v, device=device, **kw)  # noqa: E731
    assert t(2.5).item() == 2.5 and type(t(2.5).item()) is float
    assert type(t(3).item()) is int and type(t(True).item()) is bool
    assert t([[4]]).item() == 4
    assert t(3.5).tolist() == 3.5
    assert t([[1, 2], [3, 4]]).T.tolist() == [[1, 3], [2, 4]]
    assert t([0.1], dtype=fk.float64).item() == 0.1  # no detour through float32
    assert t([[1 / 3]], dtype=fk.float64).tolist() == [[1 / 3]]
    assert t(2**53 + 1).item() == 2**53 + 1  # int64 exact


@pytest.mark.parametrize("name", ["float32", "float64", "int64", "uint8", "bool"])
def test_python_number_protocols(name, device):
    dt = getattr(fk, name)
    one, zero = fk.tensor([1], dtype=dt, device=device), fk.tensor(0, dtype=dt, device=device)
    assert bool(one) is True and bool(zero) is False
    assert float(one) == 1.0 and int(one) == 1
    assert int(fk.tensor(3.7, device=device)) == 3 and float(fk.tensor([2.5], device=device)) == 2.5


def test_len_and_iteration(device):
    x = fk.tensor([[1, 2], [3, 4], [5, 6]], device=device)
    assert len(x) == 3 and len(fk.zeros(0, 4, device=device)) == 0
    rows = list(x)
    assert len(rows) == 3 and rows[1].tolist() == [3, 4] and rows[1].shape == (2,)


# ----------------------------------------------------------------------------- indexing
class NPM:
    """Stands in for the module in index builders: m.tensor(...) -> ndarray."""

    tensor = staticmethod(np.asarray)


IDX = np.array([2, 0, 2])
MASK = np.array([True, False, True, True, False])

READ_INDICES = [
    ("int", lambda m: 1),
    ("neg_int", lambda m: -1),
    ("slice", lambda m: slice(1, 4)),
    ("slice_step", lambda m: (slice(1, 5), slice(None, None, 2))),
    ("none_ellipsis", lambda m: (None, Ellipsis, 0)),
    ("ellipsis", lambda m: (Ellipsis, 1)),
    ("int_slice", lambda m: (-1, slice(None), 2)),
    ("none_mid", lambda m: (slice(None), None, 1)),
    ("empty_slice", lambda m: slice(3, 3)),
    ("clamped_slice", lambda m: slice(-100, 100)),
    ("list", lambda m: [0, 2]),
    ("int_tensor", lambda m: m.tensor(IDX)),
    ("int_tensor_2d", lambda m: m.tensor(np.array([[0, 1], [4, 4]]))),
    ("adv_dim1", lambda m: (slice(None), [3, 0])),
    ("adv_pair", lambda m: ([0, 1, 4], [1, 2, 0])),
    ("adv_broadcast", lambda m: (m.tensor(np.array([[0], [4]])), slice(None), m.tensor(np.array([1, 2])))),
    ("bool_mask", lambda m: m.tensor(MASK)),
    ("bool_mask_dim1", lambda m: (slice(None), m.tensor(MASK[:4]))),
]


@pytest.mark.parametrize("index", [e[1] for e in READ_INDICES], ids=ids(READ_INDICES))
def test_getitem_matches_numpy(index, device):
    a = np.random.default_rng(0).standard_normal((5, 4, 3)).astype(np.float32)
    for layout in ("contiguous", "transposed"):
        got = make_tensor(a, "float32", layout, device=device)[index(fk_on(device))]
        assert_close(got, a[index(NPM)], msg=layout)


def test_getitem_by_data_mask_and_scalar_result(device):
    a = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    x = fk.tensor(a, device=device)
    assert_close(x[x > 0], a[a > 0])
    assert_close(x.T[x.T > 0.5], a.T[a.T > 0.5])
    e = x[1, 2]
    assert e.shape == () and e.item() == pytest.approx(float(a[1, 2]))
    assert_close(fk.tensor([1, 2, 3], device=device)[fk.tensor([True, True, True], device=device)], [1, 2, 3])


def test_basic_indexing_is_a_view_advanced_is_a_copy(device):
    x, a = arange_t(4, 5, device=device)
    basic = x[1:3, ::2]
    adv = x[[1, 2]]
    masked = x[x > 10]
    x.mul_(-1)
    assert_close(basic, -a[1:3, ::2])
    assert_close(adv, a[[1, 2]])
    assert_close(masked, a[a > 10])


SET_CASES = [
    ("scalar_int", lambda m: 1, 5.0),
    ("slice_scalar", lambda m: (slice(1, 3), slice(None, None, 2)), -1.0),
    ("slice_tensor", lambda m: (slice(1, 3), slice(None, None, 2)), np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])),
    ("broadcast_row", lambda m: slice(None), np.arange(5.0)),
    ("column", lambda m: (slice(None), 1), np.arange(4.0)),
    ("ellipsis", lambda m: (Ellipsis, -1), 9.0),
    ("int_tensor", lambda m: m.tensor(np.array([3, 0])), 0.0),
    ("list_tensor_value", lambda m: [0, 2], np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])),
    ("adv_pair", lambda m: ([0, 1, 3], [4, 0, 2]), np.array([7.0, 8.0, 9.0])),
    ("bool_mask", lambda m: m.tensor(np.array([True, False, False, True])), 3.0),
]


@pytest.mark.parametrize("index, value", [(e[1], e[2]) for e in SET_CASES], ids=ids(SET_CASES))
def test_setitem_matches_numpy(index, value, device):
    for layout in ("contiguous", "transposed"):
        a = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
        x = make_tensor(a, "float32", layout, device=device)
        is_array = isinstance(value, np.ndarray)
        x[index(fk_on(device))] = fk.tensor(value.astype(np.float32), device=device) if is_array else value
        a[index(NPM)] = value
        assert_close(x, a, msg=layout)


def test_setitem_with_data_mask_and_values(device):
    a = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    x = fk.tensor(a, device=device)
    n = int((a > 0).sum())
    vals = np.arange(n, dtype=np.float32) + 10
    x[x > 0] = fk.tensor(vals, device=device)
    a[a > 0] = vals
    assert_close(x, a)
    x[x < 0] = 0
    a[a < 0] = 0
    assert_close(x, a)


def test_setitem_through_view_and_dtype_cast(device):
    x, a = arange_t(3, 4, device=device)
    v = x[1]
    v[2] = 100.0
    assert x[1, 2].item() == 100.0
    i = fk.zeros(3, dtype=fk.int64, device=device)
    i[1] = 2.7  # value is cast to the tensor's dtype
    assert i.tolist() == [0, 2, 0] and i.dtype == fk.int64
    f = fk.zeros(3, device=device)
    f[fk.tensor([0, 2], device=device)] = fk.tensor([1.0, 2.0], device=device)
    f[1:2] = fk.tensor([5], device=device)  # basic-index assignment casts like copy_
    assert f.tolist() == [1.0, 5.0, 2.0] and f.dtype == fk.float32


# ----------------------------------------------------------------------------- view/index autograd
VIEW_OPS = [  # name, input shapes, fn(m, *xs), np reference, helper kwargs
    ("view", [(2, 3, 4)], lambda m, x: x.view(6, 4), lambda a: a.reshape(6, 4), {"layouts": ("contiguous",)}),
    ("reshape", [(2, 3, 4)], lambda m, x: x.reshape(4, -1), lambda a: a.reshape(4, -1), {}),
    ("permute", [(2, 3, 4)], lambda m, x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), {}),
    ("transpose", [(2, 3, 4)], lambda m, x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2), {}),
    ("T", [(3, 5)], lambda m, x: x.T, lambda a: a.T, {}),
    ("expand", [(3, 1)], lambda m, x: x.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), {}),
    ("squeeze", [(1, 3, 1)], lambda m, x: x.squeeze(), lambda a: a.squeeze(), {}),
    ("squeeze_dim", [(3, 1)], lambda m, x: x.squeeze(-1), lambda a: a.squeeze(-1), {}),
    ("unsqueeze", [(3, 2)], lambda m, x: x.unsqueeze(1), lambda a: a[:, None], {}),
    ("flatten", [(2, 3, 4)], lambda m, x: x.flatten(1), lambda a: a.reshape(2, 12), {}),
    ("getitem_basic", [(5, 4, 3)], lambda m, x: x[1:4, ::2, None, -1], lambda a: a[1:4, ::2, None, -1], {}),
    ("getitem_ellipsis", [(5, 4, 3)], lambda m, x: x[None, ..., 0], lambda a: a[None, ..., 0], {}),
    (
        "getitem_dup_idx",
        [(5, 3)],
        lambda m, x: x[m.tensor(np.array([0, 4, 0, 0]), device=x.device)],
        lambda a: a[[0, 4, 0, 0]],
        {},
    ),
    ("getitem_list_dim1", [(5, 3)], lambda m, x: x[:, [2, 2, 0]], lambda a: a[:, [2, 2, 0]], {}),
    ("getitem_mask", [(5, 3)], lambda m, x: x[m.tensor(MASK, device=x.device)], lambda a: a[MASK], {}),
    ("getitem_data_mask", [(4, 5)], lambda m, x: x[x > 0], lambda a: a[a > 0], {}),
    ("cat", [(2, 3), (4, 3)], lambda m, a, b: m.cat([a, b], 0), lambda a, b: np.concatenate([a, b], 0), {}),
    (
        "cat_dim1",
        [(2, 3), (2, 1), (2, 0)],
        lambda m, a, b, c: m.cat([a, b, c], -1),
        lambda a, b, c: np.concatenate([a, b, c], -1),
        {},
    ),
    ("stack", [(2, 3), (2, 3)], lambda m, a, b: m.stack([a, b], 1), lambda a, b: np.stack([a, b], 1), {}),
    ("clone", [(3, 4)], lambda m, x: x.clone(), lambda a: a.copy(), {}),
    ("contiguous", [(3, 4)], lambda m, x: x.contiguous(), lambda a: a.copy(), {}),
]


def _setitem_slice(m, x, v):
    y = x.clone()
    y[1:3, ::2] = v
    return y


def _setitem_idx(m, x, v):
    y = x * 1
    y[m.tensor(np.array([3, 0]), device=x.device)] = v
    return y


def _setitem_mask(m, x, v):
    y = x.clone()
    y[m.tensor(np.array([True, False, True, False]), device=x.device)] = v
    return y


def _setitem_scalar(m, x):
    y = x.clone()
    y[:, 1] = 0.5
    return y


def _set_ref(index, value=None):
    def ref(a, v=None):
        a = a.copy()
        a[index] = value if v is None else v
        return a

    return ref


VIEW_OPS += [
    ("setitem_slice", [(4, 5), (2, 3)], _setitem_slice, _set_ref((slice(1, 3), slice(None, None, 2))), {}),
    ("setitem_slice_bcast", [(4, 5), (3,)], _setitem_slice, _set_ref((slice(1, 3), slice(None, None, 2))), {}),
    ("setitem_idx", [(4, 5), (2, 5)], _setitem_idx, _set_ref(np.array([3, 0])), {}),
    ("setitem_mask", [(4, 5), (5,)], _setitem_mask, _set_ref(np.array([True, False, True, False])), {}),
    ("setitem_scalar", [(4, 5)], _setitem_scalar, _set_ref((slice(None), 1), 0.5), {}),
]


@pytest.mark.parametrize("name, shapes, fn, ref, kw", VIEW_OPS, ids=ids(VIEW_OPS))
def test_view_and_index_ops_forward_and_grad(name, shapes, fn, ref, kw, device):
    fk_fn, torch_fn = fk_and_torch(fn)
    helper_test_op(shapes, fk_fn, ref, torch_fn, domain=REAL, device=device, **kw)


# ----------------------------------------------------------------------------- numpy / dlpack
@pytest.mark.parametrize("name", ["float32", "float64", "int64", "bool", "uint8"])
def test_from_numpy_shares_memory(name):
    a = np.zeros((2, 3), dtype=NP_DTYPES[name])
    t = fk.from_numpy(a)
    assert dtype_name(t.dtype) == name and t.shape == (2, 3)
    a[0, 1] = 1
    assert t[0, 1].item() == 1
    t[1, 2] = 1
    assert a[1, 2] == 1


def test_from_numpy_strided_array():
    a = np.arange(12.0).reshape(3, 4)
    t = fk.from_numpy(a.T)
    assert t.shape == (4, 3) and not t.is_contiguous() and t.stride() == (1, 4)
    assert_close(t, a.T)
    a[2, 1] = -5
    assert t[1, 2].item() == -5


def test_numpy_shares_memory():
    t = fk.zeros(2, 3)
    n = t.numpy()
    assert n.dtype == np.float32 and n.shape == (2, 3)
    n[0, 0] = 4
    assert t[0, 0].item() == 4
    t.add_(1)
    assert n[1, 1] == 1
    tt = fk.arange(6).reshape(2, 3).T
    nt = tt.numpy()
    np.testing.assert_array_equal(nt, np.arange(6).reshape(2, 3).T)
    nt[0, 1] = 100
    assert tt[0, 1].item() == 100
    assert np.asarray(fk.tensor([[1.5, 2.5]])).tolist() == [[1.5, 2.5]]
    assert fk.tensor(3).numpy().shape == ()


@pytest.mark.parametrize("name", ["float32", "float64", "int64", "uint8", "bool"])
def test_dlpack_with_numpy(name):
    t = fk.tensor(np.array([[0, 1, 1], [0, 0, 1]], dtype=NP_DTYPES[name]))
    assert tuple(t.__dlpack_device__()) == (1, 0)  # kDLCPU, device 0
    n = np.from_dlpack(t)
    assert n.dtype == NP_DTYPES[name] and n.shape == (2, 3)
    t[0, 0] = 1
    assert n[0, 0] == 1  # zero-copy
    a = np.zeros((3, 2), dtype=NP_DTYPES[name])
    f = fk.from_dlpack(a)
    assert dtype_name(f.dtype) == name and f.shape == (3, 2)
    a[2, 1] = 1
    assert f[2, 1].item() == 1


def test_dlpack_noncontiguous_to_numpy():
    x = fk.arange(12.0).reshape(3, 4)[:, ::2]
    n = np.from_dlpack(x)
    np.testing.assert_array_equal(n, np.arange(12.0).reshape(3, 4)[:, ::2])


@needs_torch
@pytest.mark.parametrize("name", ["float32", "float64", "int64", "uint8", "bool"])
def test_dlpack_with_torch(name):
    t = fk.tensor(np.array([[0, 1, 1], [0, 0, 1]], dtype=NP_DTYPES[name]))
    tt = torch.from_dlpack(t)
    assert dtype_name(tt.dtype) == name and tuple(tt.shape) == (2, 3)
    t[0, 0] = 1
    assert tt[0, 0].item() == 1
    src = torch.zeros(2, 4, dtype=getattr(torch, name)).T
    f = fk.from_dlpack(src)
    assert dtype_name(f.dtype) == name and f.shape == (4, 2) and f.stride() == (1, 4)
    src[3, 1] = 1
    assert f[3, 1].item() == 1


def _capsule_name(c):
    return repr(c).split('"')[1]  # <capsule object "NAME" at 0x...>


def test_dlpack_capsule_flavours():
    t = fk.arange(6.0).reshape(2, 3)
    assert t.__dlpack_device__() == (1, 0)  # kDLCPU, device 0
    assert _capsule_name(t.__dlpack__()) == "dltensor"  # legacy unless the consumer names a version
    assert _capsule_name(t.__dlpack__(max_version=(1, 0))) == "dltensor_versioned"
    assert _capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"
    assert _capsule_name(t.__dlpack__(stream=None, dl_device=(1, 0), copy=False)) == "dltensor"
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(2, 0))  # CPU memory is not handed out as CUDA memory
    for max_version in (None, (1, 0)):
        c = t.__dlpack__(max_version=max_version)
        f = fk.from_dlpack(c)
        f[0, 0] = 9 if max_version else 8
        assert t[0, 0].item() == f[0, 0].item()
        assert _capsule_name(c).startswith("used_dltensor")  # consumed
        with pytest.raises(RuntimeError, match="already consumed"):
            fk.from_dlpack(c)


class _Spy:
    """Passes a tensor's DLPack methods through, recording what the consumer asked for."""

    def __init__(self, t):
        self.t, self.calls = t, []

    def __dlpack_device__(self):
        return self.t.__dlpack_device__()

    def __dlpack__(self, **kwargs):
        c = self.t.__dlpack__(**kwargs)
        self.calls.append(_capsule_name(c))
        return c


@needs_torch
@pytest.mark.parametrize("legacy", [False, True], ids=["versioned", "legacy"])
def test_dlpack_torch_round_trip_shares_memory(legacy):
    t = fk.arange(12.0).reshape(3, 4)
    spy = _Spy(t)
    tt = torch.from_dlpack(t.__dlpack__() if legacy else spy)
    assert spy.calls == ([] if legacy else ["dltensor_versioned"])  # torch asks for a versioned capsule
    assert tt.dtype == torch.float32 and tuple(tt.shape) == (3, 4)
    tt[1, 2] = -1
    assert t[1, 2].item() == -1
    t[2, 3] = 100
    assert tt[2, 3].item() == 100
    back = fk.from_dlpack(tt)
    back[0, 0] = 7
    assert t[0, 0].item() == 7 and tt[0, 0].item() == 7


@needs_torch
def test_dlpack_copy_true_exports_fresh_memory():
    t = fk.ones(2, 3)[:, 1:]
    tt = torch.from_dlpack(t, copy=True)
    tt[0, 0] = 5
    assert t.tolist() == [[1.0, 1.0], [1.0, 1.0]] and tt.tolist() == [[5.0, 1.0], [1.0, 1.0]]


@needs_torch
def test_from_dlpack_of_torch_tensors_capsules_and_views():
    src = torch.arange(24.0).reshape(4, 6)
    for obj in (src, torch.utils.dlpack.to_dlpack(src)):  # __dlpack__, and a legacy capsule
        f = fk.from_dlpack(obj)
        assert f.shape == (4, 6) and f.stride() == (6, 1)
        src[3, 5] += 1
        assert f[3, 5].item() == src[3, 5].item()
    view = src[1:, ::2]  # an offset and strides
    f = fk.from_dlpack(view)
    assert f.shape == (3, 3) and f.stride() == (6, 2) and not f.is_contiguous()
    assert f.tolist() == view.tolist()
    f[0, 1] = -3
    assert src[1, 2].item() == -3
    cap = torch.utils.dlpack.to_dlpack(src)
    fk.from_dlpack(cap)
    with pytest.raises(RuntimeError, match="already consumed"):
        fk.from_dlpack(cap)


def test_from_dlpack_of_numpy_arrays():
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    for obj in (a, a.T, a[::2, 1:]):
        f = fk.from_dlpack(obj)
        assert f.tolist() == obj.tolist() and f.stride() == tuple(s // 8 for s in obj.strides)
    f = fk.from_dlpack(a.T)
    f[3, 2] = -1
    assert a[2, 3] == -1
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(BufferError, match="read-only"):
        fk.from_dlpack(ro)
    with pytest.raises(TypeError, match=r"unsupported dtype \(code 0, bits 32\)"):
        fk.from_dlpack(np.ones(3, np.int32))
    with pytest.raises(ValueError, match="negative strides"):
        fk.from_dlpack(a[::-1])
    with pytest.raises(TypeError, match="__dlpack__"):
        fk.from_dlpack([1, 2])


@needs_torch
def test_dlpack_memory_outlives_the_tensor_it_came_from():
    t = fk.arange(100000).double()
    tt, n = torch.from_dlpack(t[1:]), np.from_dlpack(t)
    cap = t.__dlpack__(max_version=(1, 0))
    del t
    gc.collect()
    junk = [fk.full((100000,), -1.0, dtype=fk.float64) for _ in range(10)]
    assert tt[-1].item() == 99999.0 and tt.sum().item() == 99999 * 100000 / 2
    assert n[99999] == 99999.0 and fk.from_dlpack(cap)[99999].item() == 99999.0
    src = torch.arange(100000, dtype=torch.float64)
    f = fk.from_dlpack(src)
    del src, junk
    gc.collect()
    _junk = [torch.full((100000,), -1.0, dtype=torch.float64) for _ in range(10)]  # reuses freed memory
    assert f[99999].item() == 99999.0 and f.sum().item() == 99999 * 100000 / 2


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device_type", ctypes.c_int32),
        ("device_id", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("code", ctypes.c_uint8),
        ("bits", ctypes.c_uint8),
        ("lanes", ctypes.c_uint16),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", ctypes.pythonapi)
)


def _raw_capsule(shape, strides=None, device=(1, 0), dtype=(2, 32, 1), name=b"dltensor"):
    """A legacy capsule over 16 floats claiming any geometry, as a careless or hostile producer
    might; no deleter. Returns the capsule and what must stay alive with it."""
    buf = (ctypes.c_float * 16)(*range(16))
    shp = (ctypes.c_int64 * len(shape))(*shape)
    strd = (ctypes.c_int64 * len(strides))(*strides) if strides is not None else None
    m = _DLManagedTensor(_DLTensor(ctypes.addressof(buf), *device, len(shape), *dtype, shp, strd, 0), None, None)
    return _capsule_new(ctypes.addressof(m), name, None), (buf, shp, strd, m)


def test_from_dlpack_accepts_a_plain_producer():
    cap, keep = _raw_capsule((2, 3))  # no strides: C order
    f = fk.from_dlpack(cap)
    assert f.stride() == (3, 1) and f.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    del f  # before `keep`: the managed tensor must outlive its consumer
    cap, keep = _raw_capsule((3, 2), (1, 5))
    assert fk.from_dlpack(cap).tolist() == [[0.0, 5.0], [1.0, 6.0], [2.0, 7.0]]


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        pytest.param(
            dict(shape=(4,), device=(2, 0)),
            RuntimeError,
            "cuda:0, and CUDA is not available",
            marks=pytest.mark.skipif(fk.cuda.is_available(), reason="CUDA memory imports there"),
        ),
        (dict(shape=(4,), device=(4, 0)), RuntimeError, "only CPU and CUDA tensors"),
        (dict(shape=(4,), dtype=(2, 16, 1)), TypeError, r"unsupported dtype \(code 2, bits 16\)"),
        (dict(shape=(4,), dtype=(2, 32, 2)), TypeError, "vector dtypes"),
        (dict(shape=(1,) * 9), ValueError, "at most 8 dims"),
        (dict(shape=(1,) * 129), ValueError, "ndim outside"),  # nanobind's own limit
        (dict(shape=(4,), name=b"tensor"), TypeError, "named 'dltensor'"),
        (dict(shape=(-1, 2)), RuntimeError, "negative dimension"),
        (dict(shape=(2**62, 4), strides=(4, 1)), RuntimeError, "overflow"),
        (dict(shape=(2, 2), strides=(2, -1)), ValueError, "negative strides"),
        (dict(shape=(2, 2), strides=(2**62, 2**62)), ValueError, "overflow"),
    ],
    ids=[
        "cuda",
        "opencl",
        "float16",
        "lanes",
        "ndim",
        "ndim_nanobind",
        "name",
        "negative_size",
        "numel",
        "negative_stride",
        "extent",
    ],
)
def test_from_dlpack_refuses_what_it_cannot_hold(kw, exc, match):
    cap, keep = _raw_capsule(**kw)
    with pytest.raises(exc, match=match):
        fk.from_dlpack(cap)


@pytest.mark.skipif(
    bool(os.environ.get("FASTKERN_SANITIZE")),
    reason="nanobind fills in missing strides without an overflow check (signed overflow, "
    "which UBSan reports) before fastkern's own check refuses the shape",
)
def test_from_dlpack_refuses_an_overflowing_shape_without_strides():
    cap, keep = _raw_capsule((2**62, 4))
    with pytest.raises(RuntimeError, match="overflow"):
        fk.from_dlpack(cap)
