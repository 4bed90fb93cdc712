// GEMM micro-kernels, compiled once per instruction set (see kernels.h for the
// contract). One template, written against a tiny vector type per ISA, holds an
// MR x NR block of C in registers while it streams the packed panels of A and B:
// per k it loads NR/W vectors of B, broadcasts MR values of A and issues MR*NR/W
// independent FMAs, enough to hide the FMA latency on both FMA pipes.
#include <algorithm>
#include <cstdint>

#ifndef FK_ISA
#error "FK_ISA must name the instruction set this file is compiled for"
#endif

#include "kernels.h"
#include "vec.h"

namespace fk::FK_ISA {
namespace {

#if defined(__AVX512F__)
// 28 of the 32 zmm registers hold C; the rest hold B and the broadcast A value. The
// narrow kernel (N <= 16) keeps 14 independent FMA chains, still enough for 2 pipes x 4
// cycles of latency.
constexpr int kMR = 14, kNV = 2, kMRNarrow = 14, kNVNarrow = 1;
#elif defined(__AVX2__)
// 12 of the 16 ymm registers hold C, 2 hold B, 1 the broadcast A value (narrow: 12 x 8).
constexpr int kMR = 6, kNV = 2, kMRNarrow = 12, kNVNarrow = 1;
#else
// Scalar "vectors": the compiler may still vectorise across the NV independent columns
// (SSE2 on x86-64, NEON on aarch64).
constexpr int kMR = 4, kNV = 8, kMRNarrow = 8, kNVNarrow = 4;
#endif

// kFullUnit: m == MR and A(i, k) = A[k*csa + i] (packed, or a transposed operand), so the
// MR broadcasts per k use constant offsets. Otherwise each row has its own offset, and
// rows past m repeat row m-1 so that nothing outside A is read. kTable: column k of A
// starts at A + acols[k] instead of A + k*csa.
template <class T, int MR, int NV, bool kFullUnit, bool kTable>
FK_INLINE void micro_tile(int64_t kc, const T* A, int64_t rsa, int64_t csa, const int64_t* acols, const T* B, T* C,
                          int64_t ldc, int m, int n, bool accumulate) {
  using V = Vec<T>;
  using R = typename V::R;
  constexpr int W = V::W, NR = NV * W;
  int64_t off[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) off[i] = kFullUnit ? i : (i < m ? i : m - 1) * rsa;
  // Every loop over i < MR and v < NV is unrolled so acc[][] lives in registers.
  R acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) acc[i][v] = V::zero();
  for (int64_t k = 0; k < kc; k++, B += NR) {
    const T* Ak = kTable ? A + acols[k] : A + k * csa;
    R b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) b[v] = V::load(B + v * W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const R a = V::bcast(Ak + off[i]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; v++) acc[i][v] = V::fma(a, b[v], acc[i][v]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    if (i >= m) break;
#pragma GCC unroll 8
    for (int v = 0; v < NV; v++) {
      T* c = C + i * ldc + v * W;
      const int left = n - v * W;
      if (left >= W)
        V::store(c, accumulate ? V::add(V::load(c), acc[i][v]) : acc[i][v]);
      else if (left > 0)
        V::store_n(c, accumulate ? V::add(V::load_n(c, left), acc[i][v]) : acc[i][v], left);
    }
  }
}

template <class T, int MR, int NV>
void micro_kernel(int64_t kc, const void* A, int64_t rsa, int64_t csa, const int64_t* acols, const void* Bp, void* C,
                  int64_t ldc, int m, int n, bool accumulate) {
  const T* a = static_cast<const T*>(A);
  const T* b = static_cast<const T*>(Bp);
  T* c = static_cast<T*>(C);
  const bool unit = rsa == 1 && m == MR;
  if (acols && unit)
    micro_tile<T, MR, NV, true, true>(kc, a, 1, 0, acols, b, c, ldc, m, n, accumulate);
  else if (acols)
    micro_tile<T, MR, NV, false, true>(kc, a, rsa, 0, acols, b, c, ldc, m, n, accumulate);
  else if (unit)
    micro_tile<T, MR, NV, true, false>(kc, a, 1, csa, nullptr, b, c, ldc, m, n, accumulate);
  else
    micro_tile<T, MR, NV, false, false>(kc, a, rsa, csa, nullptr, b, c, ldc, m, n, accumulate);
}

template <class T>
void pack_panel(void* dst_, int w_pad, const void* src_, int64_t sk, int64_t sj, int64_t kc, int w) {
  T* dst = static_cast<T*>(dst_);
  const T* src = static_cast<const T*>(src_);
  for (int64_t k = 0; k < kc; k++) std::fill(dst + k * w_pad + w, dst + (k + 1) * w_pad, T(0));
  if (sj == 1 || sk != 1) {  // rows of the panel are contiguous (or nothing is): walk k outer
    for (int64_t k = 0; k < kc; k++) {
      T* d = dst + k * w_pad;
      const T* s = src + k * sk;
      if (sj == 1)
        std::copy(s, s + w, d);
      else
        for (int j = 0; j < w; j++) d[j] = s[j * sj];
    }
    return;
  }
  // Columns are contiguous (a row-major A, a transposed B): W x W tiles transposed in registers
  // (where T has a transpose), instead of one strided store per element. A tile narrower than
  // W has zeros in its other lanes, and its whole-vector stores run those zeros into the start
  // of the next row, which is written after it (masked stores are slow on AMD), except at the
  // panel's end.
  using V = Vec<T>;
  int64_t k0 = 0;
  T* const end = dst + kc * w_pad;
  if constexpr (requires(typename V::R* r) { V::transpose(r); })
    for (; k0 + V::W <= kc && V::W > 1; k0 += V::W)
      for (int j = 0; j < w; j += V::W) {
        const int n = std::min(V::W, w - j);
        typename V::R r[V::W];
        for (int u = 0; u < V::W; u++) r[u] = u < n ? V::load(src + (j + u) * sj + k0) : V::zero();
        V::transpose(r);
        for (int u = 0; u < V::W; u++) {
          T* d = dst + (k0 + u) * w_pad + j;
          d + V::W <= end ? V::store(d, r[u]) : V::store_n(d, r[u], int(end - d));
        }
      }
  for (int j = 0; j < w; j++)
    for (int64_t k = k0; k < kc; k++) dst[k * w_pad + j] = src[j * sj + k];
}

}  // namespace

template <class T>
constexpr GemmMicroKernels kernels_for = {
    {kMR, kNV * Vec<T>::W, micro_kernel<T, kMR, kNV>},
    {kMRNarrow, kNVNarrow * Vec<T>::W, micro_kernel<T, kMRNarrow, kNVNarrow>},
    pack_panel<T>,
};
extern const GemmMicroKernels gemm_micro_f32 = kernels_for<float>;
extern const GemmMicroKernels gemm_micro_f64 = kernels_for<double>;

}  // namespace fk::FK_ISA
