"""fastkern.linalg: torch.linalg's norms (composites of fastkern ops) and the factorisation ops
det, inv, solve, cholesky, qr, eigh, eigvalsh, svd and svdvals (C++: csrc/core/ops_linalg.cpp, CPU
kernels in csrc/cpu/linalg.cpp; no CUDA kernels yet, so CUDA tensors raise NotImplementedError)."""

import math
from collections import namedtuple

from . import _C
from .autograd import Function

det = _C.det
inv = _C.inverse


def solve(A, B, *, left=True):
    """X with A X = B (B a matrix [..., n, k] or a vector [..., n]; batch dims broadcast)."""
    if not left:  # X A = B  <=>  A^T X^T = B^T
        return _C._linalg_solve(A.mT, B.mT).mT
    return _C._linalg_solve(A, B)


def cholesky(A, *, upper=False):
    """L, lower triangular with a positive diagonal, with A = L L^T (A symmetric positive-definite;
    only its lower triangle is read); L^T with upper=True."""
    L = _C._linalg_cholesky(A)
    return L.mT if upper else L


QR = namedtuple("QR", ["Q", "R"])
Eigh = namedtuple("Eigh", ["eigenvalues", "eigenvectors"])
SVD = namedtuple("SVD", ["U", "S", "Vh"])


def qr(A, mode="reduced"):
    """A = QR with Q's columns orthonormal and R upper triangular: mode 'reduced' (Q [..., m, k], R
    [..., k, n], k = min(m, n)), 'r' (R only; Q empty) or 'complete' where that is the same
    (m <= n). Signs as LAPACK's, so as PyTorch's."""
    if mode not in ("reduced", "r", "complete"):
        raise RuntimeError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), 'r', or 'complete'"
        )
    if mode == "complete" and A.shape[-2] > A.shape[-1]:
        raise NotImplementedError("linalg.qr: mode='complete' with more rows than columns is not implemented")
    Q, R = _C._linalg_qr(A)
    return QR(A.new_empty(0) if mode == "r" else Q, R)


def eigh(A, UPLO="L"):
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of the symmetric matrices A,
    reading A's lower triangle (UPLO='L') or upper one ('U'). An eigenvector's sign is arbitrary."""
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return Eigh(*_C._linalg_eigh(A.mT if UPLO == "U" else A))


def eigvalsh(A, UPLO="L"):
    return eigh(A, UPLO).eigenvalues


def svd(A, full_matrices=True):
    """A = U diag(S) Vh with S descending. Only the reduced form (full_matrices=False) is computed;
    full_matrices=True gives it too when that is the same (square A), else NotImplementedError.
    Singular vectors' signs are arbitrary (pairs of them flip together)."""
    m, n = A.shape[-2], A.shape[-1]
    if full_matrices and m != n:
        raise NotImplementedError(
            "linalg.svd: full_matrices=True for a non-square matrix is not implemented; pass full_matrices=False"
        )
    return SVD(*_C._linalg_svd(A))


def svdvals(A):
    return _C._linalg_svd(A)[1]


def _dims(x, dim):
    if dim is None:
        return tuple(range(x.ndim))
    return tuple(d % max(x.ndim, 1) for d in ((dim,) if isinstance(dim, int) else dim))


class _PNorm(Function):
    """sum(|x|^p)^(1/p) over dims for a finite p other than 1 (p = 0: the count of nonzeros), with
    PyTorch's gradient, which is finite where x or the norm is 0."""

    @staticmethod
    def forward(ctx, x, p, dims, keepdim):
        ax = x.abs()
        if p == 0:
            n = (ax != 0).to(x.dtype).sum(dims, keepdim=True)
        elif p == 2:
            n = (ax * ax).sum(dims, keepdim=True).sqrt()
        else:
            n = (ax**p).sum(dims, keepdim=True) ** (1 / p)
        ctx.p = p
        ctx.save_for_backward(x, n)
        return n if keepdim else n.squeeze(dims) if dims else n

    @staticmethod
    def backward(ctx, g):
        x, n = ctx.saved_tensors
        g = g.reshape(n.shape)  # the kept dims back
        p = ctx.p
        if p == 0:
            return x.new_zeros(x.shape), None, None, None
        if p < 1:  # |x|^(p-1) is inf at 0: 0 there; n^(1-p) is 0 for a zero norm
            scaled = _C.where(x == 0, 0.0, x.sign() * x.abs() ** (p - 1))
            return scaled * g * n ** (1 - p), None, None, None
        scale = _C.where(n == 0, 0.0, g / (n if p == 2 else n ** (p - 1)))
        return (x if p == 2 else x.sign() * x.abs() ** (p - 1)) * scale, None, None, None


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The ord-norm of x over dim (all of x by default) as a vector, as torch.linalg.vector_norm:
    ord = 2, 1, inf, -inf, 0 or any other real number."""
    if not x.is_floating_point():
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point tensor as input. Got {x.dtype}")
    if dtype is not None:
        x = x.to(dtype)
    dims = _dims(x, dim)
    if ord == math.inf or ord == -math.inf:
        if x.numel() == 0 and ord == math.inf and dim is None:
            return x.new_zeros(())  # torch: the inf-norm of nothing is 0
        ax = x.abs()
        return ax.amax(dims, keepdim=keepdim) if ord > 0 else ax.amin(dims, keepdim=keepdim)
    if ord == 1:
        return x.abs().sum(dims, keepdim=keepdim)
    return _PNorm.apply(x, ord, dims, keepdim)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The matrix norm of A over the two dims: 'fro', or 1, -1, inf, -inf (the largest or smallest
    column or row abs sum), 'nuc' (the sum of singular values), 2 and -2 (the largest and smallest)."""
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions (got {A.ndim})")
    if dtype is not None:
        A = A.to(dtype)
    d0, d1 = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        s = svdvals(A.permute(*[d for d in range(A.ndim) if d not in (d0, d1)], d0, d1))
        out = s.sum(-1) if ord == "nuc" else s.amax(-1) if ord == 2 else s.amin(-1)
        return out.unsqueeze(min(d0, d1)).unsqueeze(max(d0, d1)) if keepdim else out
    if ord not in (1, -1, math.inf, -math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    # 1-norms sum over rows (d0) then take the column extreme (d1); inf-norms the other way round.
    summed, other = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = A.abs().sum(summed, keepdim=True)
    out = sums.amax(other, keepdim=True) if ord > 0 else sums.amin(other, keepdim=True)
    return out if keepdim else out.squeeze((d0, d1))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm: a vector norm when dim is an int or A is 1-D (ord None: 2), a matrix norm
    when dim is a pair or A is 2-D with an ord (ord None: the 2-norm of all of A)."""
    if isinstance(dim, int) or (dim is not None and len(dim) == 1):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is not None and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got {A.ndim}D.")


def tensor_norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm and Tensor.norm: p 'fro' (or None) is the 2-norm over dim (all dims by default),
    'nuc' the nuclear norm, a number the vector p-norm over dim."""
    if p in ("fro", None):
        if dim is not None and not isinstance(dim, int) and len(dim) == 2:
            return matrix_norm(input, "fro", dim, keepdim, dtype=dtype)
        return vector_norm(input, 2, dim, keepdim, dtype=dtype)
    if p == "nuc":
        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


_C.Tensor.norm = tensor_norm
