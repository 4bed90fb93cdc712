// Vec<T>: one vector register of T per instruction set (AVX-512, AVX2+FMA, or a scalar
// fallback), with the few operations the GEMM micro-kernel and the lane-blocked kernels need.
// Included by the per-ISA kernel files, inside their fk::<isa> namespace.
#pragma once
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace fk::FK_ISA {

#define FK_INLINE inline __attribute__((always_inline))

// W lanes of T. load_n/store_n touch only the first n (0 < n < W) lanes (the right edge of a
// GEMM's C, the last pixels of a plane).
#if defined(__AVX512F__)
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using R = __m512;
  static constexpr int W = 16;
  static FK_INLINE R zero() { return _mm512_setzero_ps(); }
  static FK_INLINE R load(const float* p) { return _mm512_loadu_ps(p); }
  static FK_INLINE R bcast(const float* p) { return _mm512_set1_ps(*p); }
  static FK_INLINE R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static FK_INLINE R add(R a, R b) { return _mm512_add_ps(a, b); }
  static FK_INLINE void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static FK_INLINE R load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p); }
  static FK_INLINE void store_n(float* p, R v, int n) { _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v); }
  // r[i] = column i of the 16 x 16 tile whose row i was r[i]: 4x4 blocks within each 128-bit
  // lane first, then the lanes themselves.
  static FK_INLINE void transpose(R* r) {
    R a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
      a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);  // per lane: r_i[0] r_i+1[0] r_i[1] r_i+1[1]
      a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {  // b[g + e], lane l: column 4l + e of rows g .. g+3
      b[g] = _mm512_shuffle_ps(a[g], a[g + 2], 0x44);
      b[g + 1] = _mm512_shuffle_ps(a[g], a[g + 2], 0xEE);
      b[g + 2] = _mm512_shuffle_ps(a[g + 1], a[g + 3], 0x44);
      b[g + 3] = _mm512_shuffle_ps(a[g + 1], a[g + 3], 0xEE);
    }
    for (int e = 0; e < 4; e++) {  // column 4l + e is lane l of b[e], b[4 + e], b[8 + e], b[12 + e]
      const R even = _mm512_shuffle_f32x4(b[e], b[4 + e], 0x88), odd = _mm512_shuffle_f32x4(b[e], b[4 + e], 0xDD);
      const R even2 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0x88),
              odd2 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0xDD);
      r[e] = _mm512_shuffle_f32x4(even, even2, 0x88);
      r[4 + e] = _mm512_shuffle_f32x4(odd, odd2, 0x88);
      r[8 + e] = _mm512_shuffle_f32x4(even, even2, 0xDD);
      r[12 + e] = _mm512_shuffle_f32x4(odd, odd2, 0xDD);
    }
  }
};
template <>
struct Vec<double> {
  using R = __m512d;
  static constexpr int W = 8;
  static FK_INLINE R zero() { return _mm512_setzero_pd(); }
  static FK_INLINE R load(const double* p) { return _mm512_loadu_pd(p); }
  static FK_INLINE R bcast(const double* p) { return _mm512_set1_pd(*p); }
  static FK_INLINE R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static FK_INLINE R add(R a, R b) { return _mm512_add_pd(a, b); }
  static FK_INLINE void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static FK_INLINE R load_n(const double* p, int n) { return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p); }
  static FK_INLINE void store_n(double* p, R v, int n) { _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), v); }
};
#elif defined(__AVX2__)
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using R = __m256;
  static constexpr int W = 8;
  static FK_INLINE __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static FK_INLINE R zero() { return _mm256_setzero_ps(); }
  static FK_INLINE R load(const float* p) { return _mm256_loadu_ps(p); }
  static FK_INLINE R bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static FK_INLINE R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static FK_INLINE R add(R a, R b) { return _mm256_add_ps(a, b); }
  static FK_INLINE void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static FK_INLINE R load_n(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static FK_INLINE void store_n(float* p, R v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  // r[i] = column i of the 8 x 8 tile whose row i was r[i]: 4x4 blocks within each 128-bit
  // lane, then the lanes.
  static FK_INLINE void transpose(R* r) {
    R a[8], b[8];
    for (int i = 0; i < 8; i += 2) {
      a[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      a[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int g = 0; g < 8; g += 4) {  // b[g + e], lane l: column 4l + e of rows g .. g+3
      b[g] = _mm256_shuffle_ps(a[g], a[g + 2], 0x44);
      b[g + 1] = _mm256_shuffle_ps(a[g], a[g + 2], 0xEE);
      b[g + 2] = _mm256_shuffle_ps(a[g + 1], a[g + 3], 0x44);
      b[g + 3] = _mm256_shuffle_ps(a[g + 1], a[g + 3], 0xEE);
    }
    for (int e = 0; e < 4; e++) {
      r[e] = _mm256_permute2f128_ps(b[e], b[4 + e], 0x20);
      r[4 + e] = _mm256_permute2f128_ps(b[e], b[4 + e], 0x31);
    }
  }
};
template <>
struct Vec<double> {
  using R = __m256d;
  static constexpr int W = 4;
  static FK_INLINE __m256i mask(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static FK_INLINE R zero() { return _mm256_setzero_pd(); }
  static FK_INLINE R load(const double* p) { return _mm256_loadu_pd(p); }
  static FK_INLINE R bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static FK_INLINE R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static FK_INLINE R add(R a, R b) { return _mm256_add_pd(a, b); }
  static FK_INLINE void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static FK_INLINE R load_n(const double* p, int n) { return _mm256_maskload_pd(p, mask(n)); }
  static FK_INLINE void store_n(double* p, R v, int n) { _mm256_maskstore_pd(p, mask(n), v); }
};
#else
// Portable fallback: scalar "vectors".
template <class T>
struct Vec {
  using R = T;
  static constexpr int W = 1;
  static FK_INLINE R zero() { return T(0); }
  static FK_INLINE R load(const T* p) { return *p; }
  static FK_INLINE R bcast(const T* p) { return *p; }
  static FK_INLINE R fma(R a, R b, R c) { return a * b + c; }
  static FK_INLINE R add(R a, R b) { return a + b; }
  static FK_INLINE void store(T* p, R v) { *p = v; }
  static FK_INLINE R load_n(const T* p, int) { return *p; }
  static FK_INLINE void store_n(T* p, R v, int) { *p = v; }
  static FK_INLINE void transpose(R*) {}  // a 1 x 1 tile
};
#endif

// dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols: W x W tiles transposed in registers
// (float32), the edges and other types one value at a time.
template <class T>
inline void transpose_matrix(int64_t rows, int64_t cols, const T* src, int64_t lds, T* dst, int64_t ldd) {
  int64_t i0 = 0;
  if constexpr (std::is_same_v<T, float>) {
    using V = Vec<float>;
    for (; i0 + V::W <= rows && V::W > 1; i0 += V::W) {
      int64_t j0 = 0;
      for (; j0 + V::W <= cols; j0 += V::W) {
        V::R r[V::W];
        for (int u = 0; u < V::W; u++) r[u] = V::load(src + (i0 + u) * lds + j0);
        V::transpose(r);
        for (int u = 0; u < V::W; u++) V::store(dst + (j0 + u) * ldd + i0, r[u]);
      }
      for (; j0 < cols; j0++)
        for (int64_t i = i0; i < i0 + V::W; i++) dst[j0 * ldd + i] = src[i * lds + j0];
    }
  }
  for (int64_t i = i0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) dst[j * ldd + i] = src[i * lds + j];
}

}  // namespace fk::FK_ISA
