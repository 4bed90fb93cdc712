// Dense factorisations of batches of small matrices: LU with partial pivoting (det, inv, solve),
// Cholesky, Householder QR, and Jacobi rotations for eigh (two-sided) and the SVD (one-sided). Plain loops over
// row-major matrices, compiled once: the matrices linear algebra tutorials use are small, and no BLAS or LAPACK is
// linked. Batch items run on the thread pool.
#include "linalg.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "parallel.h"

namespace fk {
namespace {

// The batch of [..., rows, cols] contiguous t: f(item index) in parallel when there is work enough.
template <class F>
void each_matrix(const Tensor& t, int64_t work_per_item, F f) {
  const int64_t rows = t.size(t.ndim() - 2), cols = t.size(t.ndim() - 1);
  const int64_t batch = rows * cols != 0 ? t.numel() / (rows * cols) : 0;
  parallel_for(batch, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, work_per_item)),
               [&](int64_t b, int64_t e) {
                 for (int64_t i = b; i < e; i++) f(i);
               });
}

template <class T>
void lu_one(T* a, int64_t n, int64_t* piv) {
  for (int64_t k = 0; k < n; k++) {
    int64_t p = k;  // the largest pivot in the column keeps the multipliers at most 1
    for (int64_t i = k + 1; i < n; i++)
      if (std::abs(a[i * n + k]) > std::abs(a[p * n + k])) p = i;
    piv[k] = p;
    if (p != k)
      for (int64_t j = 0; j < n; j++) std::swap(a[k * n + j], a[p * n + j]);
    const T d = a[k * n + k];
    if (d == T(0)) continue;  // singular: the column below is zero already, U keeps the zero
    for (int64_t i = k + 1; i < n; i++) {
      const T l = a[i * n + k] /= d;
      for (int64_t j = k + 1; j < n; j++) a[i * n + j] -= l * a[k * n + j];
    }
  }
}

// b (n x m) = A^-1 b from A's LU factors: the row swaps, then L y = b and U x = y.
template <class T>
void lu_solve_one(const T* lu, const int64_t* piv, T* b, int64_t n, int64_t m) {
  for (int64_t i = 0; i < n; i++)
    if (piv[i] != i)
      for (int64_t j = 0; j < m; j++) std::swap(b[i * m + j], b[piv[i] * m + j]);
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < i; r++)
      for (int64_t j = 0; j < m; j++) b[i * m + j] -= lu[i * n + r] * b[r * m + j];
  for (int64_t i = n - 1; i >= 0; i--) {
    for (int64_t r = i + 1; r < n; r++)
      for (int64_t j = 0; j < m; j++) b[i * m + j] -= lu[i * n + r] * b[r * m + j];
    for (int64_t j = 0; j < m; j++) b[i * m + j] /= lu[i * n + i];
  }
}

// L in a's lower triangle (reading only that triangle of a), zeros above; the order (1-based)
// of the first leading minor that is not positive-definite, or 0.
template <class T>
int64_t cholesky_one(T* a, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    T s = a[j * n + j];
    for (int64_t k = 0; k < j; k++) s -= a[j * n + k] * a[j * n + k];
    if (!(s > T(0))) return j + 1;  // NaN too
    const T d = std::sqrt(s);
    a[j * n + j] = d;
    for (int64_t i = j + 1; i < n; i++) {
      T v = a[i * n + j];
      for (int64_t k = 0; k < j; k++) v -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = v / d;
    }
    for (int64_t i = 0; i < j; i++) a[i * n + j] = T(0);
  }
  return 0;
}

// Reduced QR of a (m x n, overwritten) by Householder reflections H_j = I - tau v v^T, which
// zero column j below the diagonal: q (m x k) and r (k x n), k = min(m, n). LAPACK's signs: R's
// diagonal is -sign(a_jj) times the column's norm, except where nothing below it needed zeroing.
template <class T>
void qr_one(T* a, T* q, T* r, int64_t m, int64_t n) {
  const int64_t k = std::min(m, n);
  std::vector<T> vs(size_t(m * k), T(0)), taus(size_t(k), T(0));
  for (int64_t j = 0; j < k; j++) {
    T below = 0;
    for (int64_t i = j + 1; i < m; i++) below += a[i * n + j] * a[i * n + j];
    if (below == T(0)) continue;  // nothing to zero: H_j = I, as LAPACK (which keeps R_jj's sign)
    const T alpha = a[j * n + j], norm2 = below + alpha * alpha;
    const T beta = -std::copysign(std::sqrt(norm2), alpha);
    T* v = vs.data() + j * m;
    for (int64_t i = j; i < m; i++) v[i] = a[i * n + j];
    v[j] = alpha - beta;
    const T vv = norm2 - alpha * alpha + v[j] * v[j];
    const T tau = taus[size_t(j)] = T(2) / vv;
    for (int64_t c = j; c < n; c++) {
      T dot = 0;
      for (int64_t i = j; i < m; i++) dot += v[i] * a[i * n + c];
      for (int64_t i = j; i < m; i++) a[i * n + c] -= tau * dot * v[i];
    }
  }
  for (int64_t i = 0; i < k; i++)
    for (int64_t c = 0; c < n; c++) r[i * n + c] = c >= i ? a[i * n + c] : T(0);
  // Q = H_0 ... H_{k-1} applied to the first k columns of I, the last reflection first.
  for (int64_t i = 0; i < m; i++)
    for (int64_t c = 0; c < k; c++) q[i * k + c] = T(i == c);
  for (int64_t j = k - 1; j >= 0; j--) {
    const T* v = vs.data() + j * m;
    for (int64_t c = 0; c < k; c++) {
      T dot = 0;
      for (int64_t i = j; i < m; i++) dot += v[i] * q[i * k + c];
      for (int64_t i = j; i < m; i++) q[i * k + c] -= taus[size_t(j)] * dot * v[i];
    }
  }
}

// The rotation (c, s) of Jacobi's method that zeroes the off-diagonal entry of the symmetric 2x2
// [[app, apq], [apq, aqq]] (the smaller angle of the two that do).
template <class T>
std::pair<T, T> jacobi_rotation(T app, T aqq, T apq) {
  const T theta = (aqq - app) / (T(2) * apq);
  const T t = std::copysign(T(1), theta) / (std::abs(theta) + std::sqrt(theta * theta + T(1)));
  const T c = T(1) / std::sqrt(t * t + T(1));
  return {c, t * c};
}

// (x, y) <- (c x - s y, s x + c y) over `count` elements `step` apart: two columns (or rows) of a
// matrix times a Jacobi rotation.
template <class T>
void rotate_pair(T* x, T* y, int64_t count, int64_t step, T c, T s) {
  for (int64_t k = 0; k < count; k++) {
    const T xk = x[k * step], yk = y[k * step];
    x[k * step] = c * xk - s * yk;
    y[k * step] = s * xk + c * yk;
  }
}

// Order of `vals` (n of them), ascending or descending.
template <class T>
std::vector<int64_t> order_of(const T* vals, int64_t n, bool ascending) {
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t(0));
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t x, int64_t y) { return ascending ? vals[x] < vals[y] : vals[x] > vals[y]; });
  return idx;
}

constexpr int kMaxSweeps = 64;  // Jacobi converges quadratically: a few sweeps in practice

// Eigenvalues w (ascending) and eigenvectors (the columns of v) of the symmetric matrix whose
// lower triangle is a's (a is overwritten), by cyclic two-sided Jacobi rotations.
template <class T>
void eigh_one(T* a, T* w, T* v, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i + 1; j < n; j++) a[i * n + j] = a[j * n + i];
  std::vector<T> vec(size_t(n * n), T(0));
  for (int64_t i = 0; i < n; i++) vec[size_t(i * n + i)] = T(1);
  const T eps = std::numeric_limits<T>::epsilon();
  for (int sweep = 0; sweep < kMaxSweeps; sweep++) {
    T off = 0, all = 0;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) (i == j ? all : off) += a[i * n + j] * a[i * n + j];
    if (off <= eps * eps * (all + off)) break;
    for (int64_t p = 0; p < n; p++)
      for (int64_t q = p + 1; q < n; q++) {
        if (a[p * n + q] == T(0)) continue;
        const auto [c, s] = jacobi_rotation(a[p * n + p], a[q * n + q], a[p * n + q]);
        rotate_pair(a + p, a + q, n, n, c, s);          // A J: columns p and q
        rotate_pair(a + p * n, a + q * n, n, 1, c, s);  // J^T (A J): rows p and q
        rotate_pair(vec.data() + p, vec.data() + q, n, n, c, s);
      }
  }
  std::vector<T> diag(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) diag[size_t(i)] = a[i * n + i];
  const std::vector<int64_t> idx = order_of(diag.data(), n, true);
  for (int64_t j = 0; j < n; j++) {
    w[j] = diag[size_t(idx[size_t(j)])];
    for (int64_t i = 0; i < n; i++) v[i * n + j] = vec[size_t(i * n + idx[size_t(j)])];
  }
}

// Reduced SVD of a (m x n, m >= n, overwritten) by one-sided Jacobi rotations that make its
// columns orthogonal: then a = U S with S the column norms, and the rotations make V. Singular
// values descending; u (m x n), s (n), vh = V^T (n x n).
template <class T>
void svd_one(T* a, T* u, T* s, T* vh, int64_t m, int64_t n) {
  std::vector<T> vec(size_t(n * n), T(0));
  for (int64_t i = 0; i < n; i++) vec[size_t(i * n + i)] = T(1);
  const T eps = std::numeric_limits<T>::epsilon();
  for (int sweep = 0; sweep < kMaxSweeps; sweep++) {
    bool rotated = false;
    for (int64_t p = 0; p < n; p++)
      for (int64_t q = p + 1; q < n; q++) {
        T app = 0, aqq = 0, apq = 0;
        for (int64_t i = 0; i < m; i++) {
          app += a[i * n + p] * a[i * n + p];
          aqq += a[i * n + q] * a[i * n + q];
          apq += a[i * n + p] * a[i * n + q];
        }
        if (std::abs(apq) <= eps * std::sqrt(app * aqq) || apq == T(0)) continue;
        rotated = true;
        const auto [c, sn] = jacobi_rotation(app, aqq, apq);
        rotate_pair(a + p, a + q, m, n, c, sn);
        rotate_pair(vec.data() + p, vec.data() + q, n, n, c, sn);
      }
    if (!rotated) break;
  }
  std::vector<T> norms(size_t(n), T(0));
  for (int64_t j = 0; j < n; j++) {
    for (int64_t i = 0; i < m; i++) norms[size_t(j)] += a[i * n + j] * a[i * n + j];
    norms[size_t(j)] = std::sqrt(norms[size_t(j)]);
  }
  const std::vector<int64_t> idx = order_of(norms.data(), n, false);
  for (int64_t j = 0; j < n; j++) {
    const int64_t c = idx[size_t(j)];
    const T sj = s[j] = norms[size_t(c)];
    // A zero singular value leaves its column of U zero (rank-deficient input).
    for (int64_t i = 0; i < m; i++) u[i * n + j] = sj > T(0) ? a[i * n + c] / sj : T(0);
    for (int64_t i = 0; i < n; i++) vh[j * n + i] = vec[size_t(i * n + c)];
  }
}

template <class F>
void float_types(DType dt, F f) {
  if (dt == DType::Float64)
    f(double());
  else
    f(float());
}

}  // namespace

void cpu_lu(const Tensor& a, const Tensor& piv) {
  const int64_t n = a.size(a.ndim() - 1);
  float_types(a.dtype(), [&](auto z) {
    using T = decltype(z);
    each_matrix(a, n * n * n, [&](int64_t i) { lu_one(a.data<T>() + i * n * n, n, piv.data<int64_t>() + i * n); });
  });
}

void cpu_lu_solve(const Tensor& lu, const Tensor& piv, const Tensor& b) {
  const int64_t n = lu.size(lu.ndim() - 1), m = b.size(b.ndim() - 1);
  float_types(lu.dtype(), [&](auto z) {
    using T = decltype(z);
    each_matrix(b, n * n * m, [&](int64_t i) {
      lu_solve_one(lu.data<T>() + i * n * n, piv.data<int64_t>() + i * n, b.data<T>() + i * n * m, n, m);
    });
  });
}

void cpu_qr(const Tensor& a, const Tensor& q, const Tensor& r) {
  const int64_t m = a.size(a.ndim() - 2), n = a.size(a.ndim() - 1), k = std::min(m, n);
  float_types(a.dtype(), [&](auto z) {
    using T = decltype(z);
    each_matrix(a, m * n * k, [&](int64_t i) {
      qr_one(a.data<T>() + i * m * n, q.data<T>() + i * m * k, r.data<T>() + i * k * n, m, n);
    });
  });
}

void cpu_eigh(const Tensor& a, const Tensor& w, const Tensor& v) {
  const int64_t n = a.size(a.ndim() - 1);
  float_types(a.dtype(), [&](auto z) {
    using T = decltype(z);
    each_matrix(a, 8 * n * n * n,
                [&](int64_t i) { eigh_one(a.data<T>() + i * n * n, w.data<T>() + i * n, v.data<T>() + i * n * n, n); });
  });
}

void cpu_svd(const Tensor& a, const Tensor& u, const Tensor& s, const Tensor& vh) {
  const int64_t m = a.size(a.ndim() - 2), n = a.size(a.ndim() - 1);
  float_types(a.dtype(), [&](auto z) {
    using T = decltype(z);
    each_matrix(a, 8 * m * n * n, [&](int64_t i) {
      svd_one(a.data<T>() + i * m * n, u.data<T>() + i * m * n, s.data<T>() + i * n, vh.data<T>() + i * n * n, m, n);
    });
  });
}

int64_t cpu_cholesky(const Tensor& a) {
  const int64_t n = a.size(a.ndim() - 1);
  const int64_t batch = n ? a.numel() / (n * n) : 0;
  std::vector<int64_t> bad(size_t(batch), 0);
  float_types(a.dtype(), [&](auto z) {
    using T = decltype(z);
    each_matrix(a, n * n * n, [&](int64_t i) { bad[size_t(i)] = cholesky_one(a.data<T>() + i * n * n, n); });
  });
  for (int64_t i = 0; i < batch; i++)
    if (bad[size_t(i)]) return i * n + bad[size_t(i)] - 1;
  return -1;
}

}  // namespace fk
