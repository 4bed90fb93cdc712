// Dense factorisations of batches of small matrices: LU with partial pivoting (det, inv, solve)
// and Cholesky. Plain loops over row-major matrices, compiled once: the matrices linear algebra
// tutorials use are small, and no BLAS or LAPACK is linked. Batch items run on the thread pool.
#include "linalg.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "parallel.h"

namespace fk {
namespace {

// The batch of [..., rows, cols] contiguous t: f(item index) in parallel when there is work enough.
template <class F>
void each_matrix(const Tensor& t, int64_t work_per_item, F f) {
  const int64_t rows = t.size(t.ndim() - 2), cols = t.size(t.ndim() - 1);
  const int64_t batch = rows * cols ? t.numel() / (rows * cols) : 0;
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
