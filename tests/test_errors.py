"""Error behaviour: exception types, informative messages, and no process crashes."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastkern as fk
from helpers import assert_raises_with

X = lambda: fk.ones(2, 3)  # noqa: E731

# ----------------------------------------------------------------------------- broadcasting
BROADCAST_FAILURES = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a**b),
    ("maximum", fk.maximum),
    ("eq", lambda a, b: a == b),
    ("lt", lambda a, b: a < b),
    ("fk.add", fk.add),
    ("where", lambda a, b: fk.where(a > 0, a, b)),
    ("add_", lambda a, b: a.add_(b)),
    ("mul_", lambda a, b: a.mul_(b)),
    ("copy_", lambda a, b: a.copy_(b)),
]


@pytest.mark.parametrize("name, op", BROADCAST_FAILURES, ids=[b[0] for b in BROADCAST_FAILURES])
def test_broadcast_error_names_both_shapes(name, op):
    assert_raises_with((RuntimeError, ValueError), lambda: op(fk.ones(2, 3), fk.ones(4)), "[2, 3]", "[4]")


def test_broadcast_error_other_shapes():
    assert_raises_with((RuntimeError, ValueError), lambda: fk.ones(5, 1, 3) + fk.ones(4, 2), "[5, 1, 3]", "[4, 2]")
    assert_raises_with((RuntimeError, ValueError), lambda: fk.ones(0) * fk.ones(2), "[0]", "[2]")


# ----------------------------------------------------------------------------- dims
BAD_DIMS = [
    ("sum", lambda x: x.sum(3), "3"),
    ("sum_neg", lambda x: x.sum(-3), "-3"),
    ("mean_tuple", lambda x: x.mean((0, 4)), "4"),
    ("prod", lambda x: x.prod(2), "2"),
    ("max", lambda x: x.max(dim=2), "2"),
    ("min", lambda x: x.min(-5), "-5"),
    ("argmax", lambda x: x.argmax(3), "3"),
    ("var", lambda x: x.var(3), "3"),
    ("std", lambda x: x.std(2), "2"),
    ("logsumexp", lambda x: x.logsumexp(2), "2"),
    ("softmax", lambda x: x.softmax(5), "5"),
    ("log_softmax", lambda x: x.log_softmax(-3), "-3"),
    ("all", lambda x: x.all(2), "2"),
    ("any", lambda x: x.any(2), "2"),
    ("transpose", lambda x: x.transpose(0, 5), "5"),
    ("permute", lambda x: x.permute(0, 2), "2"),
    ("unsqueeze", lambda x: x.unsqueeze(4), "4"),
    ("squeeze", lambda x: x.squeeze(5), "5"),
    ("flatten", lambda x: x.flatten(0, 3), "3"),
    ("cat", lambda x: fk.cat([x, x], 2), "2"),
    ("stack", lambda x: fk.stack([x, x], 4), "4"),
    ("fk.sum", lambda x: fk.sum(x, 7), "7"),
]


@pytest.mark.parametrize("name, op, dim", BAD_DIMS, ids=[b[0] for b in BAD_DIMS])
def test_bad_dim_raises_index_error(name, op, dim):
    assert_raises_with(IndexError, lambda: op(X()), dim)


# ----------------------------------------------------------------------------- indexing
BAD_INDICES = [
    ("int", lambda x: x[2]),
    ("neg_int", lambda x: x[-3]),
    ("second_dim", lambda x: x[0, 3]),
    ("int_tensor", lambda x: x[fk.tensor([0, 2])]),
    ("list", lambda x: x[[5]]),
    ("adv_dim1", lambda x: x[:, [0, 4]]),
    ("neg_tensor", lambda x: x[fk.tensor([-3])]),
    ("too_many", lambda x: x[0, 0, 0]),
    ("mask_shape", lambda x: x[fk.tensor([True, False, True])]),
    ("set_int", lambda x: x.__setitem__(2, 1.0)),
    ("set_tensor", lambda x: x.__setitem__(fk.tensor([7]), 0.0)),
    ("set_second_dim", lambda x: x.__setitem__((1, -4), 0.0)),
    ("scalar_tensor", lambda x: fk.tensor(1.0)[0]),
]


@pytest.mark.parametrize("name, op", BAD_INDICES, ids=[b[0] for b in BAD_INDICES])
def test_out_of_range_index_raises_index_error(name, op):
    x = X()
    with pytest.raises(IndexError):
        op(x)
    assert x.tolist() == [[1.0] * 3] * 2  # a failed assignment leaves the tensor untouched


# ----------------------------------------------------------------------------- matmul
@pytest.mark.parametrize(
    "a, b", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2, 3)), ((5, 2), (3,)), ((2, 2, 3), (3, 3, 4))]
)
def test_matmul_shape_mismatch_names_both_shapes(a, b):
    with pytest.raises(RuntimeError) as info:
        fk.ones(*a) @ fk.ones(*b)
    msg = str(info.value)
    for shape in (a, b):
        forms = ["[" + ", ".join(map(str, shape)) + "]", "x".join(map(str, shape))]
        assert any(f in msg for f in forms), f"shape {shape} not named in {msg!r}"


def test_matmul_of_scalars_raises():
    with pytest.raises(RuntimeError):
        fk.tensor(2.0) @ fk.ones(3)


# ----------------------------------------------------------------------------- dtypes
BAD_DTYPE = [
    ("int_mean", lambda: fk.tensor([1, 2]).mean()),
    ("int_mean_dim", lambda: fk.tensor([[1, 2]]).mean(0)),
    ("int_var", lambda: fk.tensor([1, 2]).var()),
    ("int_std", lambda: fk.tensor([1, 2]).std()),
    ("int_softmax", lambda: fk.tensor([1, 2]).softmax(0)),
    ("int_requires_grad", lambda: fk.tensor([1, 2]).requires_grad_()),
    ("int_requires_grad_ctor", lambda: fk.tensor([1, 2], requires_grad=True)),
    ("bool_requires_grad", lambda: fk.tensor([True]).requires_grad_()),
    ("invert_float", lambda: ~fk.ones(2)),
    ("and_float", lambda: fk.ones(2) & fk.ones(2)),
    ("int_add_float_inplace", lambda: fk.tensor([1, 2]).add_(1.5)),
]


@pytest.mark.parametrize("name, op", BAD_DTYPE, ids=[b[0] for b in BAD_DTYPE])
def test_bad_dtype_use(name, op):
    with pytest.raises((RuntimeError, TypeError)):
        op()


# ----------------------------------------------------------------------------- shapes / creation / misc
MISC = [
    ("view_numel", lambda: X().view(5), RuntimeError),
    ("view_noncontiguous", lambda: X().T.view(6), RuntimeError),
    ("view_two_minus_one", lambda: X().view(-1, -1), RuntimeError),
    ("reshape_numel", lambda: X().reshape(4), RuntimeError),
    ("expand_mismatch", lambda: X().expand(3, 3), RuntimeError),
    ("expand_fewer_dims", lambda: X().expand(3), RuntimeError),
    ("permute_duplicate", lambda: X().permute(0, 0), RuntimeError),
    ("permute_wrong_len", lambda: X().permute(0), RuntimeError),
    ("cat_mismatch", lambda: fk.cat([fk.ones(2, 3), fk.ones(2, 4)], 0), RuntimeError),
    ("cat_ndim", lambda: fk.cat([fk.ones(2), fk.ones(2, 2)]), RuntimeError),
    ("cat_empty", lambda: fk.cat([]), (RuntimeError, ValueError)),
    ("stack_mismatch", lambda: fk.stack([fk.ones(2), fk.ones(3)]), RuntimeError),
    ("ragged_list", lambda: fk.tensor([[1, 2], [3]]), (ValueError, TypeError, RuntimeError)),
    ("string_data", lambda: fk.tensor([1, "a"]), (ValueError, TypeError, RuntimeError)),
    ("object_data", lambda: fk.tensor(object()), (ValueError, TypeError, RuntimeError)),
    ("item_many", lambda: X().item(), RuntimeError),
    ("bool_many", lambda: bool(fk.ones(2)), RuntimeError),
    ("negative_size", lambda: fk.zeros(-1), (RuntimeError, ValueError)),
    ("randint_empty_range", lambda: fk.randint(5, 5, (3,)), RuntimeError),
    ("arange_zero_step", lambda: fk.arange(0, 10, 0), RuntimeError),
    ("linspace_negative_steps", lambda: fk.linspace(0, 1, -1), RuntimeError),
    ("eye_negative", lambda: fk.eye(-1), RuntimeError),
    ("from_numpy_negative_strides", lambda: fk.from_numpy(np.ones(5)[::-1]), (ValueError, RuntimeError)),
    ("from_dlpack_object", lambda: fk.from_dlpack(object()), (TypeError, RuntimeError, AttributeError)),
    ("int_div_by_zero", lambda: fk.tensor([5]) // fk.tensor([0]), RuntimeError),
    ("int_mod_by_zero", lambda: fk.tensor([5]) % 0, RuntimeError),
]


@pytest.mark.parametrize("name, op, exc", MISC, ids=[m[0] for m in MISC])
def test_misc_errors(name, op, exc):
    with pytest.raises(exc):
        op()


def test_view_size_error_message_names_shape_and_size():
    assert_raises_with(RuntimeError, lambda: X().view(5), "[5]", "6")


def test_autograd_errors():
    x = fk.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError):
        (x * 2).backward()  # non-scalar without gradient
    with pytest.raises(RuntimeError):
        (x * 2).backward(fk.ones(3))  # gradient of the wrong shape
    with pytest.raises(RuntimeError):
        fk.ones(2).sum().backward()  # nothing requires grad
    with pytest.raises(RuntimeError):
        fk.autograd.grad((x * 2).sum(), fk.ones(2))  # input does not require grad
    with pytest.raises(RuntimeError):
        x.grad = fk.ones(3)  # grad of the wrong size
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError):
        y.backward()


# ----------------------------------------------------------------------------- no crashes
CRASH_CASES = {  # each snippet must raise a Python exception ("OK:" snippets must just work)
    "int_floordiv_zero": "fk.tensor([5, 6]) // fk.tensor([1, 0])",
    "int_mod_zero_tensor": "fk.tensor([5]) % fk.tensor([0])",
    "int64_min_floordiv_minus1": "OK:fk.tensor([-2**63]) // -1",
    "huge_alloc": "t = fk.empty(2**62); t[10**15] = 1.0",
    "overflowing_numel": "t = fk.zeros(2**31, 2**31, 2**31); t[5, 5, 5] = 1.0",
    "negative_dim": "fk.ones(2, -3)",
    "huge_index_read": "fk.ones(3)[fk.tensor([10**12])]",
    "huge_index_write": "fk.ones(3).__setitem__(fk.tensor([-10**12]), 1.0)",
    "huge_slice": "OK:fk.ones(3)[10**12:]",
    "expand_negative": "fk.ones(2, 3).expand(-2, 3)",
    "mask_wrong_shape_write": "fk.ones(2, 3).__setitem__(fk.tensor([True, False, True]), 0.0)",
    "value_wrong_shape_write": "fk.ones(2, 3).__setitem__(slice(None), fk.ones(4))",
    "adv_value_wrong_shape": "fk.ones(4).__setitem__(fk.tensor([0, 1]), fk.ones(3))",
    "reshape_huge": "fk.ones(4).reshape(2**40, 2**40)",
    "stack_nothing": "fk.stack([])",
    "randn_negative": "fk.randn(-5)",
    "from_dlpack_int": "fk.from_dlpack(3)",
    "dlpack_capsule_twice": "c = fk.ones(3).__dlpack__(); fk.from_dlpack(c); fk.from_dlpack(c)",
}

_RUNNER = """
import sys
import numpy as np
import fastkern as fk
code = sys.argv[1]
expect_ok = code.startswith("OK:")
try:
    exec(code[3:] if expect_ok else code, {"fk": fk, "np": np})
    print("OK" if expect_ok else "NORAISE")
except Exception as e:
    print(("UNEXPECTED:" if expect_ok else "RAISED:") + type(e).__name__)
"""


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def _run(code, *args):
    return subprocess.run([sys.executable, "-c", code, *args], env=_env(), capture_output=True, text=True, timeout=300)


def test_invalid_calls_raise_instead_of_crashing():
    """Each case runs in its own interpreter, so a segfault fails this test, not the suite."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _RUNNER, code], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, code in CRASH_CASES.items()
    }
    bad = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=300)
        result = out.strip().splitlines()[-1] if out.strip() else ""
        if p.returncode != 0:
            bad[name] = f"crashed (rc={p.returncode}) {err.strip()[-200:]}"
        elif not (result == "OK" or result.startswith("RAISED:")):
            bad[name] = result
    assert not bad, f"cases that did not raise a clean Python exception: {bad}"


def test_reshape_rejects_a_shape_whose_numel_wraps():
    # 2**32 * 2**32 * 4 = 2**66 wraps to 0 in int64 arithmetic: the view of an empty tensor
    # is accepted, and writing into it corrupts memory (hence a subprocess).
    r = _run(_RUNNER, "t = fk.zeros(0).reshape(2**32, 2**32, 4); t[2**31, 5] = 7.0")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].startswith("RAISED:"), r.stdout + r.stderr[-2000:]


def test_memory_stays_alive_across_interop():
    """Views handed to / taken from NumPy keep their memory alive after the owner is dropped."""
    r = _run(
        textwrap.dedent("""
        import gc
        import numpy as np
        import fastkern as fk
        a = np.arange(100000, dtype=np.float64)
        t = fk.from_numpy(a)
        del a; gc.collect()
        junk = [np.full(100000, -1.0) for _ in range(20)]
        assert t[99999].item() == 99999.0 and t.sum().item() == 99999 * 100000 / 2
        u = fk.arange(100000).double()
        n = u.numpy()
        del u; gc.collect()
        junk = [fk.full((100000,), -1.0, dtype=fk.float64) for _ in range(20)]
        assert n[99999] == 99999.0 and n.sum() == 99999 * 100000 / 2
        v = fk.arange(100000).double()
        d = np.from_dlpack(v)
        del v; gc.collect()
        junk = [fk.full((100000,), -1.0, dtype=fk.float64) for _ in range(20)]
        assert d[99999] == 99999.0
        w = fk.arange(10.0).reshape(2, 5)[1]
        assert w.tolist() == [5.0, 6.0, 7.0, 8.0, 9.0]
        print("ok")
    """)
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", f"rc={r.returncode}: {r.stderr[-2000:]}"
