"""PyTorch functions written with other fastkern ops, so their gradients come from those ops':
more elementwise math, comparisons, shape and indexing helpers, einsum, and sorting (whose order
is found by NumPy on a CPU copy; the values are then gathered with fastkern ops, on the tensor's
device, with their gradient). Each is a module function and, where PyTorch has one, a Tensor
method (registered at the end)."""

import math
from collections import namedtuple

import numpy as np

from . import _C
from ._C import Tensor
from ._creation import arange, ones, tensor
from ._size import broadcast_shapes
from .autograd import Function
from .linalg import vector_norm


def _wrap(dim, ndim):
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {dim})"
        )
    return dim % max(ndim, 1)


def _index_on(x, values):
    """An int64 index tensor of `values` on x's device."""
    return tensor(np.asarray(values, dtype=np.int64), device=x.device)


# ---- elementwise


def square(input):
    return input * input


def reciprocal(input):
    return 1 / input


def log2(input):
    return input.log() * (1 / math.log(2))


def log10(input):
    return input.log() * (1 / math.log(10))


def log1p(input):
    return (input + 1).log()  # as log(1 + x): loses precision for |x| below float eps, unlike torch's


def expm1(input):
    return input.exp() - 1


def tan(input):
    return input.sin() / input.cos()


def sinh(input):
    return (input.exp() - (-input).exp()) * 0.5


def cosh(input):
    return (input.exp() + (-input).exp()) * 0.5


class _Erfinv(Function):
    """erf's inverse: Winitzki's closed-form estimate, then Newton steps on erf (each doubles the
    correct digits); backward sqrt(pi)/2 exp(y^2), as torch's."""

    @staticmethod
    def forward(ctx, x):
        x = x if x.is_floating_point() else x.float()
        a = 0.147
        ln = (1 - x * x).log()
        first = 2 / (math.pi * a) + ln / 2
        y = x.sign() * ((first * first - ln / a).sqrt() - first).sqrt()
        for _ in range(3):
            step = (y.erf() - x) / ((-(y * y)).exp() * (2 / math.sqrt(math.pi)))
            y = _C.where(isfinite(y), y - step, y)  # +-1 map to +-inf, kept
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y * y).exp() * (math.sqrt(math.pi) / 2)


def erfinv(input):
    return _Erfinv.apply(input)


_LANCZOS = (
    0.99999999999980993,
    676.5203681218851,
    -1259.1392167224028,
    771.32342877765313,
    -176.61502916214059,
    12.507343278686905,
    -0.13857109526572012,
    9.9843695780195716e-6,
    1.5056327351493116e-7,
)


def _lgamma_right(x):
    """log|Gamma(x)| for x >= 0.5 by Lanczos' approximation (g = 7, 9 terms; ~1e-15 relative)."""
    z = x - 1
    a = sum(c / (z + i) for i, c in enumerate(_LANCZOS[1:], 1)) + _LANCZOS[0]
    t = z + 7.5
    return (z + 0.5) * t.log() - t + a.log() + 0.5 * math.log(2 * math.pi)


def lgamma(input):
    """log|Gamma(x)|; below 0.5 by the reflection Gamma(x) Gamma(1 - x) = pi / sin(pi x). Each branch
    sees only inputs it is defined for, so the other's gradient is not NaN."""
    x = input if input.is_floating_point() else input.float()
    right = x >= 0.5
    pos = _C.where(right, x, 1.0)
    neg = _C.where(right, 0.25, x)
    reflected = math.log(math.pi) - (neg * math.pi).sin().abs().log() - _lgamma_right(1 - neg)
    return _C.where(right, _lgamma_right(pos), reflected)


def _digamma_right(x):
    """psi(x) for x >= 0.5: shifted by 6 (psi(x) = psi(x + 6) - sum 1/(x + k)), then the asymptotic
    series, whose error there is below 1e-11."""
    y = x + 6
    inv2 = 1 / (y * y)
    series = y.log() - 0.5 / y - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return series - sum(1 / (x + k) for k in range(6))


def digamma(input):
    x = input if input.is_floating_point() else input.float()
    right = x >= 0.5
    pos = _C.where(right, x, 1.0)
    neg = _C.where(right, 0.25, x)
    reflected = _digamma_right(1 - neg) - math.pi / tan(neg * math.pi)
    return _C.where(right, _digamma_right(pos), reflected)


def frac(input):
    return input - input.trunc()


def lerp(input, end, weight):
    return input + weight * (end - input)


def hypot(input, other):
    return (input * input + other * other).sqrt()


def logaddexp(input, other):
    m = _C.maximum(input, other).detach()  # shifted, so exp never overflows
    return m + ((input - m).exp() + (other - m).exp()).log()


def float_power(input, exponent):
    return input.double() ** (exponent.double() if isinstance(exponent, Tensor) else exponent)


def isnan(input):
    return input != input


def isinf(input):
    return input.abs() == math.inf


def isfinite(input):
    return (input - input) == 0  # inf - inf and nan - nan are nan


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    close = ((input - other).abs() <= atol + rtol * other.abs()) | (input == other)
    return close | (isnan(input) & isnan(other)) if equal_nan else close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def equal(input, other):
    return input.shape == other.shape and bool((input == other).all())


def count_nonzero(input, dim=None):
    return (input != 0).sum(dim)


def nansum(input, dim=None, keepdim=False):
    return _C.where(isnan(input), 0, input).sum(dim, keepdim=keepdim)


def dist(input, other, p=2):
    return vector_norm(input - other, p)


def var_mean(input, dim=None, *, correction=1, keepdim=False):
    return input.var(dim, correction=correction, keepdim=keepdim), input.mean(dim, keepdim=keepdim)


def std_mean(input, dim=None, *, correction=1, keepdim=False):
    return input.std(dim, correction=correction, keepdim=keepdim), input.mean(dim, keepdim=keepdim)


def clone(input):
    return input.clone()


def is_floating_point(input):
    return input.is_floating_point()


def cumsum(input, dim):
    """Running sums along dim, as a product with a triangle of ones (O(n^2) work, fine for the
    lengths tutorials use)."""
    x = movedim(input, dim, -1)
    n = x.shape[-1] if x.ndim else 1
    tri = ones(n, n, dtype=x.dtype if x.is_floating_point() else _C.int64, device=x.device).triu()
    return movedim((x if x.is_floating_point() else x.long()) @ tri, -1, dim) if x.ndim else input.clone()


# ---- shapes


def movedim(input, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    n = input.ndim
    src, dst = [_wrap(d, n) for d in src], [_wrap(d, n) for d in dst]
    rest = iter(d for d in range(n) if d not in src)
    where_from = dict(zip(dst, src))
    return input.permute(*[where_from[i] if i in where_from else next(rest) for i in range(n)]) if n else input


def swapaxes(input, axis0, axis1):
    return input.transpose(axis0, axis1)


def t(input):
    return input.t()


def split(tensor, split_size_or_sections, dim=0):
    dim = _wrap(dim, tensor.ndim)
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise RuntimeError(f"split expects split_size be positive, but got split_size={split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at dimension "
                f"{dim}), but got split_sizes={sizes}"
            )
    starts = np.cumsum([0] + sizes[:-1])
    return tuple(tensor.narrow(dim, int(s), int(k)) for s, k in zip(starts, sizes))


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    dim = _wrap(dim, input.ndim)
    n = input.shape[dim]
    if n == 0:  # torch gives `chunks` empty pieces
        return tuple(input.narrow(dim, 0, 0) for _ in range(chunks))
    return split(input, -(-n // chunks), dim)


def unbind(input, dim=0):
    dim = _wrap(dim, input.ndim)
    return tuple(input.select(dim, i) for i in range(input.shape[dim]))


def hstack(tensors):
    return _C.cat(tensors, 0 if all(t.ndim == 1 for t in tensors) else 1)


def vstack(tensors):
    return _C.cat([t.reshape(1, -1) if t.ndim < 2 else t for t in tensors], 0)


def tile(input, dims):
    dims = tuple(dims)
    x = input.reshape((1,) * (len(dims) - input.ndim) + tuple(input.shape))
    return x.repeat(*((1,) * (x.ndim - len(dims)) + dims))


def repeat_interleave(input, repeats, dim=None):
    x = input.flatten() if dim is None else input
    dim = 0 if dim is None else _wrap(dim, x.ndim)
    n = x.shape[dim]
    reps = repeats.tolist() if isinstance(repeats, Tensor) else repeats
    counts = [reps] * n if isinstance(reps, int) else reps
    if len(counts) != n:
        raise RuntimeError(
            f"repeat_interleave: repeats must have the same size as input along dim ({len(counts)} vs {n})"
        )
    return index_select(x, dim, _index_on(x, np.repeat(np.arange(n), counts)))


def broadcast_to(input, size):
    return input.expand(*size)


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.expand(*shape) for t in tensors)


def meshgrid(*tensors, indexing="ij"):
    ts = tensors[0] if len(tensors) == 1 and not isinstance(tensors[0], Tensor) else tensors
    if indexing not in ("ij", "xy"):
        raise ValueError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}')
    ts = list(ts)
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = [t.numel() for t in ts]
    grids = [t.reshape([-1 if i == j else 1 for j in range(len(ts))]).expand(*shape) for i, t in enumerate(ts)]
    if swap:  # "xy" is "ij" over the first two swapped, their grids swapped back
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def rot90(input, k=1, dims=(0, 1)):
    d0, d1 = dims
    k %= 4
    if k == 1:
        return flip(input, [d1]).transpose(d0, d1)
    if k == 2:
        return flip(input, [d0, d1])
    if k == 3:
        return flip(input, [d0]).transpose(d0, d1)
    return input.clone()


# ---- indexing


def _at(dim, index):
    """An indexing tuple that puts `index` at `dim` (full slices before it)."""
    return (slice(None),) * dim + (index,)


def index_select(input, dim, index):
    return input[_at(_wrap(dim, input.ndim), index)]


def take(input, index):
    return input.reshape(-1)[index]


def flip(input, dims):
    dims = [dims] if isinstance(dims, int) else dims
    for d in dims:
        d = _wrap(d, input.ndim)
        input = index_select(input, d, arange(input.shape[d] - 1, -1, -1, device=input.device))
    return input


def roll(input, shifts, dims=None):
    if dims is None:
        return roll(input.flatten(), shifts, 0).view(input.shape)
    shifts = [shifts] if isinstance(shifts, int) else shifts
    dims = [dims] if isinstance(dims, int) else dims
    for s, d in zip(shifts, dims):
        d = _wrap(d, input.ndim)
        n = input.shape[d]
        input = index_select(input, d, (arange(n, device=input.device) - s) % max(n, 1))
    return input


def _gather_index(input, dim, index):
    """The advanced index that picks input[..., index[i, j, ...], ...] along dim, for every position
    of index (torch.gather's semantics)."""
    dim = _wrap(dim, input.ndim)
    if index.ndim != input.ndim:
        raise RuntimeError(
            f"Index tensor must have the same number of dimensions as input tensor ({index.ndim} vs {input.ndim})"
        )
    shape = tuple(index.shape)
    return tuple(
        index if d == dim else arange(n, device=input.device).reshape([-1 if e == d else 1 for e in range(len(shape))])
        for d, n in enumerate(shape)
    )


def gather(input, dim, index):
    return input[_gather_index(input, dim, index)]


def _src_values(src, index):
    return src[tuple(slice(0, n) for n in index.shape)] if isinstance(src, Tensor) and src.ndim else src


def scatter(input, dim, index, src=None, value=None):
    out = input.clone()
    out[_gather_index(input, dim, index)] = _src_values(value if src is None else src, index)
    return out


def scatter_(self, dim, index, src=None, value=None):
    self[_gather_index(self, dim, index)] = _src_values(value if src is None else src, index)
    return self


class _ScatterAdd(Function):
    @staticmethod
    def forward(ctx, input, idx, src):
        out = input.clone()
        _C._scatter_nd_(out, list(idx), src, True)  # repeated positions add up
        ctx.idx = idx
        return out

    @staticmethod
    def backward(ctx, g):
        return g, None, g[ctx.idx]


def scatter_add(input, dim, index, src):
    return _ScatterAdd.apply(input.contiguous(), _gather_index(input, dim, index), _src_values(src, index))


def masked_fill(input, mask, value):
    return _C.where(mask, value, input)


def masked_fill_(self, mask, value):
    self[mask.expand_as(self)] = value
    return self


def masked_select(input, mask):
    x, m = broadcast_tensors(input, mask)
    return x[m]


def index_fill_(self, dim, index, value):
    self[_at(_wrap(dim, self.ndim), index)] = value
    return self


def tril(input, diagonal=0):
    m, n = input.shape[-2:]
    keep = arange(m, device=input.device).reshape(m, 1) + diagonal >= arange(n, device=input.device)
    return _C.where(keep, input, 0)


def triu(input, diagonal=0):
    m, n = input.shape[-2:]
    keep = arange(m, device=input.device).reshape(m, 1) + diagonal <= arange(n, device=input.device)
    return _C.where(keep, input, 0)


def diagonal(input, offset=0, dim1=0, dim2=1):
    x = movedim(input, (dim1, dim2), (-2, -1))
    m, n = x.shape[-2:]
    k = max(0, min(m + min(offset, 0), n - max(offset, 0)))
    rows = arange(k, device=x.device) - min(offset, 0)
    return x[..., rows, rows + offset]


def diag(input, diagonal=0):
    if input.ndim == 2:
        return input.diagonal(diagonal)
    if input.ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")
    n = input.shape[0] + abs(diagonal)
    rows = arange(input.shape[0], device=input.device) - min(diagonal, 0)
    out = input.new_zeros((n, n))
    out[rows, rows + diagonal] = input  # recorded: input's gradient is read back from the same places
    return out


def trace(input):
    return diagonal(input).sum()


def fill_diagonal_(self, fill_value, wrap=False):
    n = min(self.shape)
    idx = arange(n, device=self.device)
    self[(idx,) * self.ndim] = fill_value
    return self


def outer(input, vec2):
    return input.reshape(-1, 1) * vec2.reshape(1, -1)


def cross(input, other, dim=None):
    dim = next(d for d in range(input.ndim) if input.shape[d] == 3) if dim is None else _wrap(dim, input.ndim)
    a = [input.select(dim, i) for i in range(3)]
    b = [other.select(dim, i) for i in range(3)]
    return _C.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]], dim)


def cdist(x1, x2, p=2.0):
    return vector_norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p, -1)


def einsum(equation, *operands):
    """Einstein summation, as torch.einsum ("ij,jk->ik"; without "->", the letters used once, in
    order): each operand laid out over all the letters, multiplied with broadcasting, and summed
    over the letters the output does not keep. No ellipsis or repeated letter within an operand."""
    ops = operands[0] if len(operands) == 1 and not isinstance(operands[0], Tensor) else operands
    eq = equation.replace(" ", "")
    lhs, _, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        raise RuntimeError(f"einsum(): {len(terms)} operands in the equation, but {len(ops)} given")
    if "." in eq or any(len(set(t)) != len(t) for t in terms):
        raise NotImplementedError("einsum(): ellipsis and repeated subscripts within an operand are not supported")
    if not _:
        out = "".join(sorted(c for c in set(lhs) if c.isalpha() and lhs.count(c) == 1))
    letters = list(dict.fromkeys(out + "".join(terms)))
    total = None
    for term, x in zip(terms, ops):
        if len(term) != x.ndim:
            raise RuntimeError(f"einsum(): the subscripts '{term}' do not match an operand of {x.ndim} dims")
        order = sorted(range(len(term)), key=lambda i: letters.index(term[i]))
        x = x.permute(*order) if order else x
        x = x.reshape([x.shape[sorted(term, key=letters.index).index(c)] if c in term else 1 for c in letters])
        total = x if total is None else total * x
    summed = tuple(range(len(out), len(letters)))
    return total.sum(summed) if summed else total


def tensordot(a, b, dims=2):
    if isinstance(dims, int):
        dims = (list(range(a.ndim - dims, a.ndim)), list(range(dims)))
    da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    letters = "abcdefghijklmnopqrstuvwxyz"
    la, lb = list(letters[: a.ndim]), list(letters[a.ndim : a.ndim + b.ndim])
    for x, y in zip(da, db):
        lb[y] = la[x]
    keep = [c for c in la if c not in lb] + [c for c in lb if c not in la]
    return einsum(f"{''.join(la)},{''.join(lb)}->{''.join(keep)}", a, b)


# ---- sorting


_sort_result = namedtuple("sort", ["values", "indices"])
_topk_result = namedtuple("topk", ["values", "indices"])
_median_result = namedtuple("median", ["values", "indices"])
_mode_result = namedtuple("mode", ["values", "indices"])


def _order(input, dim, descending):
    """int64 indices that sort input along dim (stable), found by NumPy on a CPU copy."""
    a = input.detach().cpu().numpy()
    idx = np.argsort(-a if descending and a.dtype != np.bool_ else a, axis=dim, kind="stable")
    if descending and a.dtype == np.bool_:
        idx = np.flip(np.argsort(a, axis=dim, kind="stable"), axis=dim)
    return _index_on(input, idx)


def sort(input, dim=-1, descending=False, stable=False):
    if input.ndim == 0:
        return _sort_result(input.clone(), tensor(0, device=input.device))
    idx = _order(input, _wrap(dim, input.ndim), descending)
    return _sort_result(gather(input, dim, idx), idx)


def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending).indices


def topk(input, k, dim=-1, largest=True, sorted=True):
    dim = _wrap(dim, input.ndim)
    if not 0 <= k <= (input.shape[dim] if input.ndim else 1):
        raise RuntimeError(f"selected index k out of range (k={k}, size {input.shape[dim] if input.ndim else 1})")
    values, indices = sort(input, dim, descending=largest)
    return _topk_result(values.narrow(dim, 0, k), indices.narrow(dim, 0, k))


def median(input, dim=None, keepdim=False):
    """The lower median, as torch's; with dim, its values and indices."""
    if dim is None:
        flat = input.reshape(-1)
        return sort(flat).values[(flat.numel() - 1) // 2]
    dim = _wrap(dim, input.ndim)
    values, indices = sort(input, dim)
    at = (input.shape[dim] - 1) // 2
    pick = (lambda t: t.narrow(dim, at, 1)) if keepdim else (lambda t: t.select(dim, at))
    return _median_result(pick(values), pick(indices))


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest of those tied) and the index of its last
    occurrence, as torch's; the value's gradient goes to that index."""
    dim = _wrap(dim, input.ndim)
    a = np.moveaxis(input.detach().cpu().numpy(), dim, -1) if input.ndim else input.detach().cpu().numpy()[None]
    flat = a.reshape(-1, a.shape[-1])
    idx = np.empty(len(flat), dtype=np.int64)
    for r, row in enumerate(flat):
        values, counts = np.unique(row, return_counts=True)
        best = values[np.argmax(counts)]  # np.unique sorts, and argmax takes the first of the ties
        idx[r] = len(row) - 1 - np.argmax(row[::-1] == best)
    idx = _index_on(input, idx.reshape(a.shape[:-1]))
    if input.ndim == 0:
        return _mode_result(input.clone(), idx.reshape(()))
    values = gather(input, dim, idx.unsqueeze(dim))
    return _mode_result(*((values, idx.unsqueeze(dim)) if keepdim else (values.squeeze(dim), idx)))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique(dim=...) is not implemented")
    values, inverse, counts = np.unique(input.detach().cpu().numpy(), return_inverse=True, return_counts=True)
    out = [tensor(values, device=input.device)]
    if return_inverse:
        out.append(_index_on(input, inverse.reshape(input.shape)))
    if return_counts:
        out.append(_index_on(input, counts))
    return out[0] if len(out) == 1 else tuple(out)


def bucketize(input, boundaries, *, right=False):
    side = "right" if right else "left"
    return _index_on(input, np.searchsorted(boundaries.cpu().numpy(), input.detach().cpu().numpy(), side=side))


def searchsorted(sorted_sequence, values, *, right=False, side=None):
    side = side or ("right" if right else "left")
    seq, vals = sorted_sequence.cpu().numpy(), values.detach().cpu().numpy()
    if seq.ndim == 1:
        return _index_on(values, np.searchsorted(seq, vals, side=side))
    rows = [
        np.searchsorted(s, v, side=side)
        for s, v in zip(seq.reshape(-1, seq.shape[-1]), vals.reshape(-1, vals.shape[-1]))
    ]
    return _index_on(values, np.stack(rows).reshape(vals.shape))


# ---- registration: module functions and Tensor methods

# fmt: off
_BOTH = [  # torch has each as a function and a Tensor method
    square, reciprocal, log2, log10, log1p, expm1, tan, sinh, cosh, frac, lerp, hypot, logaddexp, float_power,
    erfinv, lgamma, digamma, isnan, isinf, isfinite, isclose, allclose, equal, count_nonzero, nansum, dist, cumsum,
    movedim, swapaxes, split, chunk, unbind, tile, repeat_interleave, broadcast_to, rot90, index_select, take, flip,
    roll, gather, scatter, scatter_add, masked_fill, masked_select, tril, triu, diagonal, diag, trace, outer, cross,
    sort, argsort, topk, median, mode, unique,
]
FUNCTIONS = _BOTH + [
    var_mean, std_mean, clone, is_floating_point, t, hstack, vstack, broadcast_tensors, meshgrid, cdist, einsum,
    tensordot, bucketize, searchsorted,
]
# fmt: on
for _f in _BOTH + [scatter_, masked_fill_, index_fill_, fill_diagonal_]:
    setattr(Tensor, _f.__name__, _f)
Tensor.where = lambda self, condition, other: _C.where(condition, self, other)


# ---- more elementwise, products and running reductions


def fmod(input, other):
    """C's fmod: the remainder with the dividend's sign (remainder() has the divisor's)."""
    r = _C.remainder(input, other)
    return _C.where((r != 0) & ((r < 0) != (input < 0)), r - other, r)


def fmax(input, other):
    return _C.where(isnan(other), input, _C.where(isnan(input), other, _C.maximum(input, other)))


def fmin(input, other):
    return _C.where(isnan(other), input, _C.where(isnan(input), other, _C.minimum(input, other)))


def dstack(tensors):
    def at_least_3d(t):
        return t.reshape(1, -1, 1) if t.ndim < 2 else t.unsqueeze(-1) if t.ndim == 2 else t

    return _C.cat([at_least_3d(t) for t in tensors], 2)


def kron(input, other):
    n = max(input.ndim, other.ndim)
    a = input.reshape((1,) * (n - input.ndim) + tuple(input.shape))
    b = other.reshape((1,) * (n - other.ndim) + tuple(other.shape))
    prod = a.reshape([s for d in a.shape for s in (d, 1)]) * b.reshape([s for d in b.shape for s in (1, d)])
    return prod.reshape([x * y for x, y in zip(a.shape, b.shape)])


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    return input * beta + _C.bmm(batch1, batch2) * alpha


def _running(input, dim, step):
    """The running values of step(previous, current) along dim, one slice at a time."""
    dim = _wrap(dim, input.ndim)
    if input.ndim == 0 or input.shape[dim] == 0:
        return input.clone()
    out = [input.select(dim, 0)]
    for i in range(1, input.shape[dim]):
        out.append(step(out[-1], input.select(dim, i)))
    return _C.stack(out, dim)


def cumprod(input, dim):
    return _running(input, dim, lambda acc, x: acc * x)


_cum_result = namedtuple("cummax", ["values", "indices"])


def _cum_extreme(input, dim, largest):
    dim = _wrap(dim, input.ndim)
    a = np.moveaxis(input.detach().cpu().numpy(), dim, -1) if input.ndim else input.detach().cpu().numpy()[None]
    idx = np.zeros(a.shape, dtype=np.int64)
    best = a[..., 0].copy() if a.shape[-1] else a[..., :0]
    for i in range(1, a.shape[-1]):  # ties go to the later index, as torch's
        better = a[..., i] >= best if largest else a[..., i] <= best
        idx[..., i] = np.where(better, i, idx[..., i - 1])
        best = np.where(better, a[..., i], best)
    idx = _index_on(input, np.moveaxis(idx, -1, dim) if input.ndim else idx[0])
    return _cum_result(gather(input, dim, idx) if input.ndim else input.clone(), idx)


def cummax(input, dim):
    return _cum_extreme(input, dim, True)


def cummin(input, dim):
    return _cum_extreme(input, dim, False)


def apply_(self, callable):
    """Applies a Python function to every element, in place (CPU tensors only, as torch's)."""
    if self.device.type != "cpu":
        raise TypeError("apply_ is only implemented on CPU tensors")
    self.copy_(tensor(np.vectorize(callable, otypes=[self.numpy().dtype])(self.numpy())))
    return self


def map_(self, tensor_, callable):
    if self.device.type != "cpu":
        raise TypeError("map_ is only implemented on CPU tensors")
    other = broadcast_to(tensor_, self.shape).numpy()
    self.copy_(tensor(np.vectorize(callable, otypes=[self.numpy().dtype])(self.numpy(), other)))
    return self


FUNCTIONS += [fmod, fmax, fmin, dstack, kron, baddbmm, cumprod, cummax, cummin]
for _f in (fmod, fmax, fmin, kron, baddbmm, cumprod, cummax, cummin, apply_, map_):
    setattr(Tensor, _f.__name__, _f)
