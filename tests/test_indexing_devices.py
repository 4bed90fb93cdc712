"""Indexing with tensors (gather, scatter, index_put_ with accumulate, nonzero) on every device,
checked against the CPU and NumPy where a kernel can go wrong: sizes that cross block and tile
boundaries, duplicates (deterministic accumulation), negative and out-of-range indices, empty
index lists, masks that select nothing or everything, every dtype, and CPU indices on another
device's tensor."""

import numpy as np
import pytest

import fastkern as fk
from helpers import DTYPE_NAMES, NP_DTYPES, assert_close, to_np

SIZES = [1, 2, 31, 32, 33, 255, 256, 257, 2047, 2048, 2049, 4099]


def _values(rng, n, dtype):
    if dtype == "bool":
        return rng.random(n) < 0.5
    if dtype == "uint8":
        return rng.integers(0, 256, n).astype(np.uint8)
    if dtype == "int64":
        return rng.integers(-1000, 1000, n).astype(np.int64)
    return rng.standard_normal(n).astype(NP_DTYPES[dtype])


@pytest.mark.parametrize("n", SIZES)
def test_gather_rows_across_block_sizes(n, device):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, 3)).astype(np.float32)
    idx = rng.integers(-n, n, size=2 * n + 1)
    x = fk.tensor(a, device=device)
    got = x[fk.tensor(idx, device=device)]
    assert got.device == x.device
    assert np.array_equal(to_np(got), a[idx])
    flat = rng.integers(-3 * n, 3 * n, size=n)  # one element per index: block 1
    assert np.array_equal(to_np(x.reshape(-1)[fk.tensor(flat, device=device)]), a.reshape(-1)[flat])


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_gather_and_scatter_every_dtype(dtype, device):
    rng = np.random.default_rng(0)
    a = _values(rng, 300, dtype).reshape(100, 3)
    idx = np.array([5, -1, 0, 99, 5, 42])
    x = fk.tensor(a, device=device)
    assert np.array_equal(to_np(x[fk.tensor(idx, device=device)]), a[idx])
    v = _values(rng, 6, dtype)
    uniq = np.array([7, 3, -2, 50])
    x[fk.tensor(uniq, device=device), 1] = fk.tensor(v[:4], device=device)
    a[uniq, 1] = v[:4]
    assert np.array_equal(to_np(x), a)


@pytest.mark.parametrize("n", [1, 33, 257, 3001])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_accumulating_duplicates_is_deterministic(n, dtype, device):
    """x[idx]'s gradient accumulates with duplicates (index_put_ with accumulate=True): the same
    bits on a rerun and the CPU's order of additions."""
    rng = np.random.default_rng(n)
    rows = max(1, n // 10)
    idx = rng.integers(-rows, rows, size=n)  # many duplicates, negatives too
    g = _values(rng, n * 4, dtype).reshape(n, 4)
    base = _values(rng, rows * 4, dtype).reshape(rows, 4)

    def run(dev):
        x = fk.tensor(base, device=dev, requires_grad=True)
        x[fk.tensor(idx, device=dev)].backward(fk.tensor(g, device=dev))
        return to_np(x.grad)

    first, second, cpu = run(device), run(device), run("cpu")
    assert first.tobytes() == second.tobytes() == cpu.tobytes()
    ref = np.zeros((rows, 4))
    np.add.at(ref, idx, g.astype(np.float64))
    assert_close(first, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n", [2, 257, 2049, 20000])
def test_setitem_duplicates_last_value_wins_as_on_the_cpu(n, device):
    rng = np.random.default_rng(n)
    idx = rng.integers(0, 7, size=n)
    v = rng.standard_normal(n).astype(np.float32)
    out = []
    for dev in (device, "cpu"):
        x = fk.zeros(7, device=dev)
        x[fk.tensor(idx, device=dev)] = fk.tensor(v, device=dev)
        out.append(to_np(x))
    ref = np.zeros(7, np.float32)
    for i, j in enumerate(idx):
        ref[j] = v[i]
    assert np.array_equal(out[0], ref) and np.array_equal(out[1], ref)


def test_scatter_with_a_block_of_rows_and_a_broadcast_value(device):
    a = np.zeros((6, 300), np.float32)
    x = fk.tensor(a, device=device)
    x[fk.tensor([4, 1, 4], device=device)] = 2.5  # one value broadcast over rows of 300
    a[[4, 1, 4]] = 2.5
    assert np.array_equal(to_np(x), a)
    w = fk.zeros(6, 300, device=device, requires_grad=True)
    w[fk.tensor([0, 0, 5], device=device)].sum().backward()  # accumulates rows of 300
    expect = np.zeros((6, 300), np.float32)
    expect[0] = 2
    expect[5] = 1
    assert np.array_equal(to_np(w.grad), expect)


def test_out_of_range_indices_raise_the_cpus_index_error(device):
    x = fk.arange(10.0, device=device)
    for bad, shown in (([1, 10, 3], 10), ([0, -11], -11), ([3, 12, 40, -20], 12)):
        with pytest.raises(IndexError, match=f"index {shown} is out of bounds for dimension 0 with size 10"):
            x[fk.tensor(bad, device=device)]
        with pytest.raises(IndexError, match=f"index {shown} is out of bounds for dimension 0 with size 10"):
            x[fk.tensor(bad, device=device)] = 1.0
    big = np.arange(5000)
    big[4321] = 5000  # the first bad one far into the list, past a block
    big[4500] = -6000
    with pytest.raises(IndexError, match="index 5000 is out of bounds"):
        fk.zeros(5000, device=device)[fk.tensor(big, device=device)]
    assert x.tolist() == list(range(10))  # a failed put leaves the tensor alone


def test_empty_index_lists_and_empty_tensors(device):
    x = fk.arange(12.0, device=device).reshape(3, 4)
    e = fk.tensor([], dtype=fk.int64, device=device)
    assert x[e].shape == (0, 4) and x[:, e].shape == (3, 0)
    x[e] = 5.0
    w = fk.zeros(3, 4, device=device, requires_grad=True)
    w[e].sum().backward()
    assert not w.grad.cpu().numpy().any()
    assert x.cpu().tolist() == np.arange(12.0).reshape(3, 4).tolist()
    z = fk.zeros(0, 5, device=device)
    assert z[fk.tensor([], dtype=fk.int64, device=device)].shape == (0, 5)
    assert z[:, fk.tensor([1, 4], device=device)].shape == (0, 2)


@pytest.mark.parametrize("n", [1, 5, 2047, 2048, 2049, 5000])
def test_masks_that_select_nothing_everything_and_some(n, device):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(np.float32)
    x = fk.tensor(a, device=device)
    for m in (np.zeros(n, bool), np.ones(n, bool), rng.random(n) < 0.3):
        assert np.array_equal(to_np(x[fk.tensor(m, device=device)]), a[m])
        y = fk.tensor(a, device=device)
        y[fk.tensor(m, device=device)] = -1.0
        b = a.copy()
        b[m] = -1.0
        assert np.array_equal(to_np(y), b)


@pytest.mark.parametrize(
    "shape", [(), (1,), (7,), (3, 5), (2, 3, 4), (33, 65), (2048,), (2049,), (3, 1, 700), (2, 0, 3)]
)
def test_nonzero_matches_numpy(shape, device):
    rng = np.random.default_rng(len(shape))
    for fill in ("some", "none", "all"):
        a = rng.random(shape) < 0.4 if fill == "some" else np.full(shape, fill == "all")
        nz = fk.tensor(a, device=device).nonzero()
        assert nz.dtype == fk.int64 and nz.device == ("cpu" if device == "cpu" else "cuda:0")
        expect = np.argwhere(a)
        assert nz.shape == expect.shape, (fill, nz.shape, expect.shape)
        assert np.array_equal(to_np(nz), expect)


def test_nonzero_of_numbers_and_views(device):
    a = np.array([[0.0, 1.5, 0.0], [-2.0, 0.0, np.nan]])
    x = fk.tensor(a, device=device)
    assert np.array_equal(to_np(x.nonzero()), np.argwhere(a))
    assert np.array_equal(to_np(x.T.nonzero()), np.argwhere(a.T))  # non-contiguous input
    i = fk.tensor([0, 3, 0, -1], device=device)
    assert to_np(i.nonzero()).tolist() == [[1], [3]]


def test_cpu_indices_and_masks_on_a_device_tensor(device):
    a = np.arange(20.0, dtype=np.float32).reshape(4, 5)
    x = fk.tensor(a, device=device)
    cpu_idx = fk.tensor([3, -1, 0])
    assert np.array_equal(to_np(x[cpu_idx]), a[[3, -1, 0]])
    mask = fk.tensor([True, False, True, False])
    assert np.array_equal(to_np(x[mask]), a[[True, False, True, False]])
    assert np.array_equal(to_np(x[1, cpu_idx[:2]]), a[1, [3, -1]])
    x[cpu_idx, 2] = fk.tensor(-1.0)  # a CPU 0-d value mixes with any device
    a[[3, -1, 0], 2] = -1.0
    assert np.array_equal(to_np(x), a)
    if device != "cpu":
        with pytest.raises(RuntimeError, match=r"indices should be either on cpu or on the same device"):
            fk.tensor(a)[fk.tensor([0, 1], device=device)]


def test_gradients_through_gather_with_duplicates(device):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((50, 8))
    idx = rng.integers(0, 50, size=1000)
    g = rng.standard_normal((1000, 8))
    grads = []
    for dev in (device, device, "cpu"):
        x = fk.tensor(a, device=dev, requires_grad=True)
        x[fk.tensor(idx, device=dev)].backward(fk.tensor(g, device=dev))
        grads.append(to_np(x.grad))
    assert grads[0].tobytes() == grads[1].tobytes() == grads[2].tobytes()
    ref = np.zeros_like(a)
    np.add.at(ref, idx, g)
    assert np.allclose(grads[0], ref)
