"""Printing as PyTorch prints (string for string against torch where it is installed), print options,
fastkern.Size, Tensor.type and the legacy constructors (FloatTensor(2, 3), ...)."""

import pickle
import runpy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastkern as fk
from helpers import DEVICES, torch

needs_torch = pytest.mark.skipif(torch is None, reason="compares with torch")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def default_printoptions():
    yield
    fk.set_printoptions(profile="default")
    if torch is not None:
        torch.set_printoptions(profile="default")


@pytest.fixture
def torch_spelling(monkeypatch):
    """Prints dtypes as torch does ("torch.float64"), so that line breaks, which depend on the
    length of the suffixes, can be compared with torch's string for string."""
    monkeypatch.setattr(fk._tensor_str, "_dtype_str", lambda d: "torch." + repr(d).split(".")[1])


def same_as_torch(a, requires_grad=False, **options):
    """repr of the array `a` as a fastkern and as a torch tensor, under the same print options."""
    fk.set_printoptions(**options)
    torch.set_printoptions(**options)
    f, t = fk.from_numpy(a.copy()), torch.from_numpy(a.copy())
    if requires_grad:
        f, t = f.requires_grad_(), t.requires_grad_()
    assert repr(f) == repr(t)
    assert str(f) == str(t)


RNG = np.random.default_rng(0)
SHAPES = [
    (),
    (1,),
    (5,),
    (2, 3),
    (3, 1, 4),
    (2, 1, 3, 2),
    (0,),
    (0, 3),
    (2, 0, 2),
    (30,),
    (2000,),
    (40, 40),
    (11, 11, 11),
]
DTYPES = [np.float32, np.float64, np.int64, np.uint8, np.bool_]


def sample(shape, dtype, scale):
    a = RNG.standard_normal(shape) * scale
    if dtype is np.uint8:
        a = np.abs(a) % 256
    return np.asarray(a).astype(dtype)


@needs_torch
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("scale", [1.0, 1e-5, 1e9, 300.0])
def test_random_tensors_print_as_torch(shape, dtype, scale, torch_spelling):
    same_as_torch(sample(shape, dtype, scale))


SPECIAL = [
    [1.0, 2.0, 3.0],  # integer-valued floats: "1."
    [-0.397, 1.5],
    [np.nan, np.inf, -np.inf, 1.5],
    [np.nan, 1.0, 2.0],
    [np.nan, np.inf],  # no nonzero finite value: int mode, never scientific
    [0.0, -0.0],
    [0.0, 0.0],
    [1e-5, 1.0],  # min < 1e-4: scientific
    [1e-4, 1.0],
    [1e9, 1.0],  # max > 1e8
    [123456789.0, 1.0],
    [1e8, 1e8],
    [0.1, 100.0],
    [0.1, 1000.0],
    [0.1, 100.1],  # max/min > 1000
    [9.99996, 1.0],  # rounds up to a wider "10.0000"
    [-1e-30, 1e30],
    [1e10, -1.0, np.nan],
    [[1.5, -2.25], [1000.0, 0.0]],
    np.arange(100) * 1.5,
    np.arange(-50, 50) ** 3,
    np.linspace(-1, 1, 1001),
]


@needs_torch
@pytest.mark.parametrize("values", SPECIAL, ids=range(len(SPECIAL)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hand_picked_floats_print_as_torch(values, dtype, torch_spelling):
    with np.errstate(over="ignore"):
        a = np.array(values, dtype=dtype)
    same_as_torch(a)
    same_as_torch(a[..., ::-1])  # the values reversed
    if a.ndim == 1:
        same_as_torch(a[:1].reshape(()))  # a 0-d tensor


@needs_torch
@pytest.mark.parametrize(
    "a",
    [
        np.array([True, False, True]),
        np.array([[True], [False]]),
        np.array([0, 255, 7], dtype=np.uint8),
        np.array([-1, 10**12, 3]),
        np.array(7),
        np.array(False),
        np.arange(1200).reshape(30, 40),
        np.zeros((0,), np.int64),
        np.zeros((0, 2), np.bool_),
    ],
    ids=range(9),
)
def test_integers_and_bools_print_as_torch(a, torch_spelling):
    same_as_torch(a)


OPTIONS = [
    dict(precision=2),
    dict(precision=0),
    dict(precision=8, linewidth=200),
    dict(threshold=5),
    dict(threshold=5, edgeitems=1),
    dict(threshold=3, edgeitems=0),
    dict(linewidth=40),
    dict(linewidth=10),
    dict(profile="short"),
    dict(profile="full"),
    dict(sci_mode=True),
    dict(sci_mode=False),
    dict(profile="short", precision=6),
]


@needs_torch
@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("shape", [(), (7,), (50,), (2000,), (4, 5, 6), (12, 12, 12)], ids=str)
def test_print_options_as_torch(options, shape, torch_spelling):
    for a in (sample(shape, np.float32, 1.0), sample(shape, np.float64, 1e5), sample(shape, np.int64, 1e6)):
        same_as_torch(a, **options)
        assert fk.get_printoptions() == torch._tensor_str.get_printoptions()


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_autograd_suffixes_as_torch(dtype, torch_spelling):
    a = np.linspace(-1, 1, 19).astype(dtype) * 12345.678
    same_as_torch(a, requires_grad=True)
    same_as_torch(a[:3], requires_grad=True)
    same_as_torch(a[:0], requires_grad=True)
    for op in (lambda x: x * 3, lambda x: x + 1, lambda x: x.exp(), lambda x: x[1:4], lambda x: x.view(-1)):
        f, t = op(fk.from_numpy(a.copy()).requires_grad_()), op(torch.from_numpy(a.copy()).requires_grad_())
        assert repr(f) == repr(t)


@needs_torch
def test_parameter_prints_as_torch(torch_spelling):
    assert repr(fk.nn.Parameter(fk.ones(2, 3))) == repr(torch.nn.Parameter(torch.ones(2, 3)))
    f = fk.nn.Parameter(fk.ones(2, dtype=fk.float64), requires_grad=False)
    assert str(f) == str(torch.nn.Parameter(torch.ones(2, dtype=torch.float64), requires_grad=False))


@needs_torch
def test_views_print_as_torch():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    for view in (lambda x: x.transpose(0, 2), lambda x: x[:, 1], lambda x: x[..., ::2], lambda x: x.permute(2, 0, 1)):
        assert repr(view(fk.from_numpy(a.copy()))) == repr(view(torch.from_numpy(a.copy())))


FLOATS = dict(allow_subnormal=False)
ARRAYS = st.one_of(
    hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5), elements=st.floats(width=32, **FLOATS)
    ),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6), elements=st.floats(**FLOATS)),
    hnp.arrays(np.int64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6)),
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6)),
    hnp.arrays(np.bool_, hnp.array_shapes(min_dims=1, max_dims=2, max_side=6)),
)


@needs_torch
@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    a=ARRAYS,
    precision=st.integers(0, 8),
    linewidth=st.integers(5, 120),
    threshold=st.sampled_from([1000, 20, 4]),
    edgeitems=st.integers(0, 3),
    sci_mode=st.sampled_from([None, None, True, False]),
)
def test_hypothesis_arrays_print_as_torch(a, precision, linewidth, threshold, edgeitems, sci_mode, torch_spelling):
    # every option is given, so each example starts from the same state whatever the one before set
    same_as_torch(
        a, precision=precision, linewidth=linewidth, threshold=threshold, edgeitems=edgeitems, sci_mode=sci_mode
    )


# ---- fastkern's own spelling, without torch ----------------------------------------------------------


def test_known_strings():
    assert repr(fk.tensor([-0.397, 1.5])) == "tensor([-0.3970,  1.5000])"
    assert repr(fk.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(fk.tensor(3.5)) == "tensor(3.5000)"
    assert repr(fk.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert repr(fk.tensor([float("nan"), float("inf"), 1.0])) == "tensor([nan, inf, 1.])"
    assert repr(fk.tensor([1, 2], dtype=fk.float64)) == "tensor([1., 2.], dtype=fastkern.float64)"
    assert repr(fk.tensor([1, 2], dtype=fk.uint8)) == "tensor([1, 2], dtype=fastkern.uint8)"
    assert repr(fk.tensor([True, False])) == "tensor([ True, False])"
    assert repr(fk.tensor([])) == "tensor([])"
    assert repr(fk.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(fk.zeros(0, dtype=fk.int64)) == "tensor([], dtype=fastkern.int64)"
    assert repr(fk.ones(2, requires_grad=True) * 2) == "tensor([2., 2.], grad_fn=<MulBackward0>)"
    assert repr(fk.ones(2, requires_grad=True)) == "tensor([1., 1.], requires_grad=True)"
    assert repr(fk.nn.Parameter(fk.ones(1))) == "Parameter containing:\ntensor([1.], requires_grad=True)"
    assert repr(fk.arange(2000)) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    assert repr(fk.ones(2, 2)) == "tensor([[1., 1.],\n        [1., 1.]])"


def test_long_suffixes_wrap_with_fastkern_spelling():
    # "fastkern.float64" is 3 characters longer than "torch.float64": this line fits in torch's 80 columns
    # (tensor([0.0000, 1.2500, 2.5000], dtype=torch.float64, grad_fn=<MulBackward0>)), not in ours
    x = fk.tensor([0.0, 1.25, 2.5], dtype=fk.float64) * fk.ones(3, dtype=fk.float64, requires_grad=True)
    assert repr(x) == "tensor([0.0000, 1.2500, 2.5000], dtype=fastkern.float64,\n       grad_fn=<MulBackward0>)"


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])
def test_device_suffix_before_dtype(device):
    x = fk.ones(2, dtype=fk.float64, device=device)
    assert repr(x) == f"tensor([1., 1.], device='{x.device}', dtype=fastkern.float64)"
    assert repr(fk.ones(2, device=device)) == "tensor([1., 1.], device='cuda:0')"


def test_subclass_named_in_prefix():
    class Sub(fk.Tensor):
        pass

    assert repr(Sub(fk.ones(2))) == "Sub([1., 1.])"


def test_set_get_printoptions_and_context():
    defaults = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}
    assert fk.get_printoptions() == defaults
    fk.set_printoptions(precision=2, sci_mode=True)
    assert repr(fk.tensor([1.12345])) == "tensor([1.12e+00])"
    fk.set_printoptions(precision=2)  # leaving sci_mode out sets it back to automatic, as in PyTorch
    assert repr(fk.tensor([1.12345])) == "tensor([1.12])"
    fk.set_printoptions(profile="default")
    with fk.printoptions(threshold=5):
        assert repr(fk.arange(10)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    assert fk.get_printoptions() == defaults
    fk.set_printoptions(profile="full")
    assert "..." not in repr(fk.arange(5000))
    with pytest.raises(ValueError, match="profile"):
        fk.set_printoptions(profile="long")


@pytest.mark.parametrize(
    "options",
    [
        dict(precision=0.5),
        dict(precision=-1),
        dict(threshold=(2, 3)),
        dict(edgeitems=-1),
        dict(linewidth="80"),
        dict(sci_mode=1e308),
        dict(precision=2, threshold="x"),
    ],
    ids=str,
)
def test_bad_printoptions_are_refused_and_change_nothing(options):
    # found by tests/test_fuzz_api.py: a bad option made every later repr, and so error messages, raise
    before = fk.get_printoptions()
    with pytest.raises(ValueError, match="set_printoptions"):
        fk.set_printoptions(**options)
    assert fk.get_printoptions() == before
    assert repr(fk.tensor([1.5])) == "tensor([1.5000])"


# ---- fastkern.Size --------------------------------------------------------------------------------------


def test_size():
    x = fk.zeros(2, 3)
    assert type(x.shape) is fk.Size and type(x.size()) is fk.Size and isinstance(x.shape, tuple)
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3 and x.size(dim=0) == 2
    assert type(x.size(0)) is int
    assert repr(x.shape) == str(x.shape) == "fastkern.Size([2, 3])"
    assert repr(fk.tensor(1.0).shape) == "fastkern.Size([])"
    assert f"{x.shape}" == "fastkern.Size([2, 3])"
    assert x.shape.numel() == 6 and fk.Size([]).numel() == 1 and fk.Size() == ()
    assert type(x.shape + (4,)) is fk.Size and type((4,) + x.shape) is fk.Size and type(x.shape * 2) is fk.Size
    assert x.shape + (4,) == (2, 3, 4) and (4,) + x.shape == (4, 2, 3)
    assert hash(x.shape) == hash((2, 3)) and fk.Size([fk.tensor(3)]) == (3,)
    assert pickle.loads(pickle.dumps(x.shape)) == x.shape and type(pickle.loads(pickle.dumps(x.shape))) is fk.Size
    with pytest.raises(TypeError):
        fk.Size([1.5])
    # a Size goes wherever a tuple of sizes does
    assert fk.zeros(x.shape).shape == (2, 3) and x.view(x.shape).shape == (2, 3) and fk.ones(*x.size()).shape == (2, 3)
    assert fk.zeros(x.shape[1:]).shape == (3,)


@needs_torch
def test_size_repr_as_torch():
    for shape in [(), (0,), (2, 3), (1, 2, 3, 4)]:
        assert repr(fk.zeros(shape).shape).replace("fastkern.", "torch.") == repr(torch.zeros(shape).shape)


# ---- Tensor.type and the legacy types -----------------------------------------------------------------

TYPES = [
    (fk.float32, "FloatTensor"),
    (fk.float64, "DoubleTensor"),
    (fk.int64, "LongTensor"),
    (fk.uint8, "ByteTensor"),
    (fk.bool, "BoolTensor"),
]


@pytest.mark.parametrize("dtype, name", TYPES, ids=[n for _, n in TYPES])
def test_type_names_and_conversions(dtype, name):
    x = fk.tensor([0, 1, 2]).to(dtype)
    assert x.type() == "fastkern." + name
    legacy = getattr(fk, name)
    assert isinstance(x, legacy) and legacy.dtype == dtype and not legacy.is_cuda
    assert repr(legacy) == f"<class 'fastkern.{name}'>"
    assert x.type(dtype) is x and x.type(legacy) is x and x.type("fastkern." + name) is x
    y = fk.tensor([0.0, 1.5, 2.0])
    for spelling in (dtype, legacy, "fastkern." + name, "torch." + name):
        assert y.type(spelling).dtype == dtype
    assert y.type(dtype).tolist() == fk.tensor([0.0, 1.5, 2.0], dtype=dtype).tolist()
    assert not isinstance(x, fk.cuda.FloatTensor) and fk.cuda.FloatTensor.is_cuda


@pytest.mark.parametrize("device", [d for d in DEVICES if d != "cpu"])
def test_type_on_device(device):
    x = fk.ones(2, device=device)
    assert x.type() == "fastkern.cuda.FloatTensor" and isinstance(x, fk.cuda.FloatTensor)
    assert fk.ones(2).type("torch.cuda.LongTensor").type() == "fastkern.cuda.LongTensor"
    assert x.type(fk.DoubleTensor).type() == "fastkern.DoubleTensor"
    assert fk.cuda.FloatTensor(2, 3).type() == "fastkern.cuda.FloatTensor"


def test_type_rejects_unknown_names():
    with pytest.raises(ValueError, match="invalid type"):
        fk.ones(2).type("fastkern.HalfTensor")


def test_legacy_constructors():
    assert fk.FloatTensor(2, 3).shape == (2, 3) and fk.FloatTensor(2, 3).dtype == fk.float32  # uninitialised
    assert fk.LongTensor(fk.Size([4])).shape == (4,) and fk.LongTensor(4).dtype == fk.int64
    assert repr(fk.FloatTensor()) == "tensor([])" and fk.DoubleTensor(0).shape == (0,)
    assert repr(fk.FloatTensor([1, 2])) == "tensor([1., 2.])"
    assert repr(fk.DoubleTensor([[1, 2]])) == "tensor([[1., 2.]], dtype=fastkern.float64)"
    assert fk.LongTensor([1.7, -2.5]).tolist() == [1, -2]  # truncates, as torch
    assert fk.BoolTensor([1, 0, 2]).tolist() == [True, False, True]
    assert fk.ByteTensor(np.array([3, 4])).dtype == fk.uint8
    assert fk.FloatTensor((2, 3)).tolist() == [2.0, 3.0]  # a tuple is data, not sizes
    x = fk.ones(2)
    alias = fk.FloatTensor(x)
    alias[0] = 5
    assert x.tolist() == [5.0, 1.0]  # shares memory
    with pytest.raises(TypeError, match="expected fastkern.FloatTensor"):
        fk.FloatTensor(fk.ones(2, dtype=fk.int64))
    with pytest.raises(TypeError):
        fk.FloatTensor(2.5)
    with pytest.raises(RuntimeError, match="negative dimension"):
        fk.FloatTensor(-1)
    assert type(fk.FloatTensor(1)) is fk.Tensor and not issubclass(fk.FloatTensor, fk.Tensor)


def test_tensor_legacy_constructor():
    assert fk.Tensor(2, 3).shape == (2, 3) and fk.Tensor(2, 3).dtype == fk.float32
    assert repr(fk.Tensor([1, 2])) == "tensor([1., 2.])" and repr(fk.Tensor()) == "tensor([])"
    assert fk.Tensor(fk.Size([4])).shape == (4,) and fk.Tensor((2, 3)).tolist() == [2.0, 3.0]
    with pytest.raises(TypeError, match="expected sizes"):
        fk.Tensor("abc", 2)


def test_tensor_of_a_tensor_aliases_it():
    x = fk.ones(2, dtype=fk.int64)
    y = fk.Tensor(x)
    y[0] = 7
    assert x.tolist() == [7, 1] and y.dtype == fk.int64  # torch.Tensor(long_tensor) keeps its dtype too


@needs_torch
def test_legacy_behaviour_as_torch(torch_spelling):
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "ByteTensor", "BoolTensor"):
        f, t = getattr(fk, name), getattr(torch, name)
        assert repr(f([1, 0, 3])) == repr(t([1, 0, 3]))
        assert repr(f()) == repr(t()) and f(2, 3).shape == t(2, 3).shape
        assert f([1, 2]).type().replace("fastkern.", "torch.") == t([1, 2]).type()
        assert isinstance(fk.ones(1).to(f.dtype), f) and isinstance(torch.ones(1).to(t.dtype), t)


def test_legacy_example_runs(capsys):
    runpy.run_path(str(ROOT / "examples" / "legacy_api.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "fastkern.FloatTensor" in out and "fastkern.Size([2, 3])" in out
