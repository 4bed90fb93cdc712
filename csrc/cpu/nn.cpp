// Neural-network kernels (convolution lowering, pooling, batch-norm loops,
// softmax and cross entropy), compiled once per instruction set like kernels.cpp.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "simd_math.h"
#include "vec.h"

namespace fk::FK_ISA {
namespace {

// Per-thread scratch of n values of T, kept between calls (grown, never shrunk); `slot`
// tells apart the buffers of one type that a kernel uses at the same time.
template <class T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> buf[3];
  buf[slot].resize(size_t(n));
  return buf[slot].data();
}

// ---- depthwise convolution -----------------------------------------------------
// groups == in channels: each output plane is one input plane filtered by kh x kw taps, too
// little work per plane for a GEMM. The plane goes into a zero-padded scratch plane of row
// pitch Wp = W + 2*pw, so the tap loops need no bounds checks. At stride 1 an output plane
// taken with the same pitch is one long run per tap: output position m = oh*Wp + ow reads
// padded position m + i*dh*Wp + j*dw (the Wp - Wo extra columns per row are computed and
// dropped). Output plane q (of O = C*mult per image) reads input plane q / mult, filter q % O.

// Runs of kDwRun outputs as GCC vectors of one register each, kDwRuns runs at a time:
// independent chains of multiply-adds that stay in registers across all taps, so the taps'
// additions to one run do not wait out each other's latency. (A vector wider than the ISA's
// registers is lowered through the stack, 30x slower.)
#if defined(__AVX512F__)
constexpr int64_t kVecBytes = 64;
#elif defined(__AVX2__)
constexpr int64_t kVecBytes = 32;
#else
constexpr int64_t kVecBytes = 16;
#endif
constexpr int64_t kDwRuns = 4;
template <class T>
constexpr int64_t kDwRun = kVecBytes / int64_t(sizeof(T));
template <class T>
constexpr int64_t kDwGroup = kDwRun<T> * kDwRuns;
template <class T>
struct DwRun {
  typedef T type __attribute__((vector_size(kVecBytes)));
};

// out[0:kDwGroup] (+= when accumulating) the sum over taps (i, j) of w[i*kw + j] times the values
// at src + dir*(i*dh*Wp + j*dw): the taps' reads (dir 1) or, for the input gradient, writes (-1).
template <class T>
FK_INLINE void tap_group(const Window2d& g, int64_t Wp, const T* w, const T* src, int64_t dir, T* out,
                         bool accumulate) {
  using V = typename DwRun<T>::type;
  V a[kDwRuns] = {};
  if (accumulate) std::memcpy(a, out, sizeof(a));
  for (int64_t i = 0; i < g.kh; i++)
    for (int64_t j = 0; j < g.kw; j++) {
      const T wv = w[i * g.kw + j], *r = src + dir * (i * g.dh * Wp + j * g.dw);
      for (int64_t u = 0; u < kDwRuns; u++) {
        V x;
        std::memcpy(&x, r + u * kDwRun<T>, sizeof(V));
        a[u] += wv * x;
      }
    }
  std::memcpy(out, a, sizeof(a));
}

// dst[0:n] = src[0:n] for the short rows of small planes, where a library memmove per row
// costs more than the row: with AVX-512, 64-byte moves and one masked move for the rest.
template <class T>
FK_INLINE void copy_row(const T* src, int64_t n, T* dst) {
#if defined(__AVX512F__)
  constexpr int64_t W = 64 / sizeof(T);
  int64_t k = 0;
  for (; k + W <= n; k += W) std::memcpy(dst + k, src + k, 64);
  const __mmask16 m = __mmask16((1u << (n - k)) - 1);
  if constexpr (sizeof(T) == 4)
    _mm512_mask_storeu_ps(dst + k, m, _mm512_maskz_loadu_ps(m, src + k));
  else
    _mm512_mask_storeu_pd(dst + k, __mmask8(m), _mm512_maskz_loadu_pd(__mmask8(m), src + k));
#else
  std::copy(src, src + n, dst);
#endif
}

// The padded plane, with kDwGroup zeros after it for the last group of runs to read.
template <class T>
const T* padded_plane(const Window2d& g, const T* x, int slot) {
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw;
  T* xp = scratch<T>(slot, Hp * Wp + kDwGroup<T>);
  std::fill(xp, xp + Hp * Wp + kDwGroup<T>, T(0));
  for (int64_t h = 0; h < g.H; h++) copy_row(x + h * g.W, g.W, xp + (h + g.ph) * Wp + g.pw);
  return xp;
}

inline bool unit_stride(const Window2d& g) { return g.sh == 1 && g.sw == 1; }

// ---- depthwise convolution on channel lanes (float32, one filter per channel) ----
// On small or strided planes a run of one plane's outputs fills few vector lanes. Here kLanes
// channels at a time are transposed into a zero-padded block [Hp][Wp][kLanes]: one vector is
// one pixel of kLanes channels, each tap one multiply-add per output pixel at any stride. The
// output block [Ho*Wo][kLanes] is transposed back. Each lane's sums are those of its channel
// alone, so where a channel falls among the lanes (how threads split the planes) changes no bit.
using VF = Vec<float>;
constexpr int64_t kLanes = VF::W;

// Pixel p < P of the rows x + c*ld (c < nc; zeros in lanes nc and up) as the vector at
// dst + (p / cols * pitch + p % cols) * kLanes: a plane `cols` wide into one `pitch` wide.
void to_lanes(const float* x, int64_t ld, int64_t nc, int64_t P, int64_t cols, int64_t pitch, float* dst) {
  VF::R r[kLanes];
  int64_t h = 0, w = 0;
  for (int64_t p0 = 0; p0 < P; p0 += kLanes) {
    const int n = int(std::min(kLanes, P - p0));
    for (int64_t c = 0; c < kLanes; c++)
      r[c] = c >= nc ? VF::zero() : n == kLanes ? VF::load(x + c * ld + p0) : VF::load_n(x + c * ld + p0, n);
    VF::transpose(r);
    for (int k = 0; k < n; k++) {
      VF::store(dst + (h * pitch + w) * kLanes, r[k]);
      if (++w == cols) w = 0, h++;
    }
  }
}

constexpr int kStrip = 8;  // accumulators per strip: 8 chains cover two FMA pipes' latency

// f(std::integral_constant<int, R>{}, ow) for the strips of R pixels starting at ow that
// cover a row of Wo: R = kStrip, then one strip of the n < kStrip left.
template <int R = kStrip - 1, class F>
FK_INLINE void tail_strip(int n, int64_t ow, const F& f) {
  if constexpr (R > 0) {
    if (n == R) return f(std::integral_constant<int, R>{}, ow);
    tail_strip<R - 1>(n, ow, f);
  }
}
template <class F>
FK_INLINE void row_strips(int64_t Wo, const F& f) {
  int64_t ow = 0;
  for (; ow + kStrip <= Wo; ow += kStrip) f(std::integral_constant<int, kStrip>{}, ow);
  tail_strip(int(Wo - ow), ow, f);
}

// The output block [Ho*Wo][kLanes] from the input block xb and the weights wb [taps][kLanes].
// KW == 0: any window, each tap one load per multiply-add (its offset from the table off).
// Else KW-wide filters at column stride S, undilated across: per filter row, each input vector
// of a strip is loaded once and multiplied by every tap that reads it (KW + (R-1)*S loads for
// KW*R multiply-adds), so the loads no longer bound the kernel.
template <int KW, int S>
void lanes_block(const Window2d& g, int64_t Wp, const int64_t* off, const float* xb, const float* wb, float* ob) {
  const int64_t step = g.sw * kLanes, taps = g.kh * g.kw, row = g.dh * Wp * kLanes;
  for (int64_t oh = 0; oh < g.Ho; oh++) {
    const float* xr = xb + oh * g.sh * Wp * kLanes;
    float* o = ob + oh * g.Wo * kLanes;
    row_strips(g.Wo, [&](auto r, int64_t ow) {
      constexpr int R = decltype(r)::value;
      const float* x = xr + ow * step;
      VF::R acc[R];
      for (int k = 0; k < R; k++) acc[k] = VF::zero();
      if constexpr (KW == 0) {
        for (int64_t t = 0; t < taps; t++) {
          const VF::R wv = VF::load(wb + t * kLanes);
          for (int k = 0; k < R; k++) acc[k] = VF::fma(wv, VF::load(x + off[t] + k * step), acc[k]);
        }
      } else {
        for (int64_t i = 0; i < g.kh; i++) {
          VF::R wv[KW];
          for (int j = 0; j < KW; j++) wv[j] = VF::load(wb + (i * KW + j) * kLanes);
#pragma GCC unroll 32  // whole, so the weight a multiply-add takes is known and stays in a register
          for (int c = 0; c < (R - 1) * S + KW; c++) {
            const VF::R xv = VF::load(x + i * row + c * kLanes);
#pragma GCC unroll 8
            for (int k = 0; k < R; k++)
              if (c - k * S >= 0 && c - k * S < KW) acc[k] = VF::fma(wv[c - k * S], xv, acc[k]);
          }
        }
      }
      for (int k = 0; k < R; k++) VF::store(o + (ow + k) * kLanes, acc[k]);
    });
  }
}

using LanesBlock = void (*)(const Window2d&, int64_t, const int64_t*, const float*, const float*, float*);
LanesBlock lanes_kernel(const Window2d& g) {
  if (g.dw == 1 && g.sw == 1 && g.kw == 3) return lanes_block<3, 1>;
  if (g.dw == 1 && g.sw == 1 && g.kw == 5) return lanes_block<5, 1>;
  if (g.dw == 1 && g.sw == 2 && g.kw == 3) return lanes_block<3, 2>;
  if (g.dw == 1 && g.sw == 2 && g.kw == 5) return lanes_block<5, 2>;
  return lanes_block<0, 1>;
}

// The block's tap offsets (i*dh*Wp + j*dw) * kLanes, in a per-thread table.
const int64_t* lane_offsets(const Window2d& g, int64_t Wp) {
  int64_t* off = scratch<int64_t>(0, g.kh * g.kw);
  for (int64_t i = 0; i < g.kh; i++)
    for (int64_t j = 0; j < g.kw; j++) off[i * g.kw + j] = (i * g.dh * Wp + j * g.dw) * kLanes;
  return off;
}

// Output planes [q0, q1) of out [N, C, Ho, Wo] from x [N, C, H, W] and w [C, 1, kh, kw]; with
// `flip` the filters turned by 180 degrees (the input gradient at stride 1 is this convolution
// of the output gradient).
void depthwise_lanes(const Window2d& g, int64_t C, int64_t q0, int64_t q1, const float* x, const float* w, bool flip,
                     float* out) {
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, taps = g.kh * g.kw, P = g.Ho * g.Wo;
  float* xb = scratch<float>(0, Hp * Wp * kLanes);
  float* ob = scratch<float>(1, P * kLanes);
  float* wb = scratch<float>(2, taps * kLanes);
  std::fill(xb, xb + Hp * Wp * kLanes, 0.f);  // the border; the inside is rewritten per block
  const int64_t* off = lane_offsets(g, Wp);
  const LanesBlock block = lanes_kernel(g);
  for (int64_t q = q0, nc; q < q1; q += nc) {
    const int64_t c = q % C;
    nc = std::min({q1 - q, kLanes - c % kLanes, C - c});
    to_lanes(w + c * taps, taps, nc, taps, taps, taps, wb);
    if (flip)
      for (int64_t t = 0; t < taps / 2; t++)
        std::swap_ranges(wb + t * kLanes, wb + (t + 1) * kLanes, wb + (taps - 1 - t) * kLanes);
    to_lanes(x + q * g.H * g.W, g.H * g.W, nc, g.H * g.W, g.W, Wp, xb + (g.ph * Wp + g.pw) * kLanes);
    block(g, Wp, off, xb, wb, ob);
    transpose_matrix(P, nc, ob, kLanes, out + q * P, P);
  }
}

// dw [C, 1, kh, kw] rows [o0, o1): per tap, the sum over images (in order) and output pixels
// of the output gradient times the input the tap read.
void depthwise_dw_lanes(const Window2d& g, int64_t N, int64_t C, int64_t o0, int64_t o1, const float* x,
                        const float* gout, float* dw) {
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, taps = g.kh * g.kw, P = g.Ho * g.Wo;
  float* xb = scratch<float>(0, Hp * Wp * kLanes);
  float* gb = scratch<float>(1, P * kLanes);
  float* acc = scratch<float>(2, taps * kLanes);
  std::fill(xb, xb + Hp * Wp * kLanes, 0.f);
  const int64_t* off = lane_offsets(g, Wp);
  const int64_t step = g.sw * kLanes;
  for (int64_t c = o0, nc; c < o1; c += nc) {
    nc = std::min(o1 - c, kLanes - c % kLanes);
    std::fill(acc, acc + taps * kLanes, 0.f);
    for (int64_t n = 0; n < N; n++) {
      to_lanes(x + (n * C + c) * g.H * g.W, g.H * g.W, nc, g.H * g.W, g.W, Wp, xb + (g.ph * Wp + g.pw) * kLanes);
      to_lanes(gout + (n * C + c) * P, P, nc, P, P, P, gb);
      for (int64_t t = 0; t < taps; t++) {
        VF::R a[4] = {VF::zero(), VF::zero(), VF::zero(), VF::zero()};  // four chains of sums
        for (int64_t oh = 0; oh < g.Ho; oh++) {
          const float* xr = xb + oh * g.sh * Wp * kLanes + off[t];
          const float* gr = gb + oh * g.Wo * kLanes;
          int64_t ow = 0;
          for (; ow + 4 <= g.Wo; ow += 4)
            for (int k = 0; k < 4; k++)
              a[k] = VF::fma(VF::load(gr + (ow + k) * kLanes), VF::load(xr + (ow + k) * step), a[k]);
          for (; ow < g.Wo; ow++) a[0] = VF::fma(VF::load(gr + ow * kLanes), VF::load(xr + ow * step), a[0]);
        }
        const VF::R sum = VF::add(VF::add(a[0], a[1]), VF::add(a[2], a[3]));
        VF::store(acc + t * kLanes, VF::add(VF::load(acc + t * kLanes), sum));
      }
    }
    transpose_matrix(taps, nc, acc, kLanes, dw + c * taps, taps);
  }
}

// Whether the lane kernels run this window: float32, one filter per channel, vectors of more
// than one lane, and an input block of at most kLanesMaxBlock floats (a per-thread scratch).
// Measured (bench/conv.py, AVX2 and AVX-512): faster than the plane kernels below on every
// EfficientNet-Lite0 layer, 112x112 planes included.
constexpr int64_t kLanesMaxBlock = int64_t(1) << 20;
bool lanes_apply(const Window2d& g, int64_t mult) {
  return kLanes > 1 && mult == 1 && (g.H + 2 * g.ph) * (g.W + 2 * g.pw) * kLanes <= kLanesMaxBlock;
}

template <class T>
void depthwise_t(const Window2d& g, int64_t O, int64_t mult, int64_t q0, int64_t q1, const T* x, const T* w, T* out) {
  if constexpr (std::is_same_v<T, float>)
    if (lanes_apply(g, mult)) return depthwise_lanes(g, O, q0, q1, x, w, false, out);
  const int64_t Wp = g.W + 2 * g.pw, M = (g.Ho - 1) * Wp + g.Wo;
  T* acc = scratch<T>(1, (unit_stride(g) ? M : g.Wo) + kDwGroup<T>);
  for (int64_t q = q0; q < q1; q++) {
    const T* xp = padded_plane(g, x + q / mult * g.H * g.W, 0);
    const T* wq = w + q % O * g.kh * g.kw;
    T* o = out + q * g.Ho * g.Wo;
    if (unit_stride(g)) {
      for (int64_t m0 = 0; m0 < M; m0 += kDwGroup<T>)
        tap_group(g, Wp, wq, xp + m0, 1, acc + m0, false);  // past M: dropped
      for (int64_t oh = 0; oh < g.Ho; oh++) copy_row(acc + oh * Wp, g.Wo, o + oh * g.Wo);
      continue;
    }
    for (int64_t oh = 0; oh < g.Ho; oh++) {
      std::fill(acc, acc + g.Wo, T(0));
      for (int64_t i = 0; i < g.kh; i++)
        for (int64_t j = 0; j < g.kw; j++) {
          const T wv = wq[i * g.kw + j], *r = xp + (oh * g.sh + i * g.dh) * Wp + j * g.dw;
          for (int64_t ow = 0; ow < g.Wo; ow++) acc[ow] += wv * r[ow * g.sw];
        }
      std::copy(acc, acc + g.Wo, o + oh * g.Wo);
    }
  }
}

// The output gradient of plane q with row pitch Wp, zero in the extra columns and for `lead`
// values before it, up to Hp*Wp + kDwGroup after (unit stride).
template <class T>
const T* pitched_grad(const Window2d& g, const T* gout, int64_t Wp, int64_t lead) {
  const int64_t n = lead + (g.H + 2 * g.ph) * Wp + kDwGroup<T>;
  T* gp = scratch<T>(2, n);
  std::fill(gp, gp + n, T(0));
  for (int64_t oh = 0; oh < g.Ho; oh++) copy_row(gout + oh * g.Wo, g.Wo, gp + lead + oh * Wp);
  return gp + lead;
}

// dx plane p: the sum over its mult output planes of each tap's weight times the output
// gradient, at the positions the tap read, in a padded plane whose inside is then dx. At unit
// stride that is a gather, the forward's runs with the taps reversed: padded position m gets
// w[t] * g[m - off_t] from every tap t at offset off_t.
template <class T>
void depthwise_dx_t(const Window2d& g, int64_t C, int64_t mult, int64_t p0, int64_t p1, const T* gout, const T* w,
                    T* dx) {
  // At stride 1, dx is the convolution of the output gradient, padded by the filter's reach
  // less the forward padding, with the filters turned.
  const Window2d turned{g.Ho, g.Wo, g.kh, g.kw, 1, 1, (g.kh - 1) * g.dh - g.ph, (g.kw - 1) * g.dw - g.pw,
                        g.dh, g.dw, g.H,  g.W};
  if constexpr (std::is_same_v<T, float>)
    if (unit_stride(g) && turned.ph >= 0 && turned.pw >= 0 && lanes_apply(turned, mult))
      return depthwise_lanes(turned, C, p0, p1, gout, w, true, dx);
  const int64_t Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, O = C * mult;
  const int64_t reach = (g.kh - 1) * g.dh * Wp + (g.kw - 1) * g.dw;  // the largest tap offset
  T* dp = scratch<T>(1, Hp * Wp + kDwGroup<T>);
  for (int64_t p = p0; p < p1; p++) {
    std::fill(dp, dp + Hp * Wp + kDwGroup<T>, T(0));
    for (int64_t q = p * mult; q < (p + 1) * mult; q++) {
      const T* wq = w + q % O * g.kh * g.kw;
      const T* gq = gout + q * g.Ho * g.Wo;
      if (unit_stride(g)) {
        const T* gp = pitched_grad(g, gq, Wp, reach);
        for (int64_t m0 = g.ph * Wp; m0 < (g.ph + g.H) * Wp; m0 += kDwGroup<T>)  // the rows dx takes
          tap_group(g, Wp, wq, gp + m0, -1, dp + m0, true);
        continue;
      }
      for (int64_t i = 0; i < g.kh; i++)
        for (int64_t j = 0; j < g.kw; j++) {
          const T wv = wq[i * g.kw + j];
          T* d = dp + i * g.dh * Wp + j * g.dw;
          for (int64_t oh = 0; oh < g.Ho; oh++)
            for (int64_t ow = 0; ow < g.Wo; ow++) d[oh * g.sh * Wp + ow * g.sw] += wv * gq[oh * g.Wo + ow];
        }
    }
    for (int64_t h = 0; h < g.H; h++) copy_row(dp + (h + g.ph) * Wp + g.pw, g.W, dx + (p * g.H + h) * g.W);
  }
}

// Sum of a[k] * b[k*stride] for k < n, in kLanes independent partial sums (a vector of them).
template <class T>
T strided_dot(const T* a, const T* b, int64_t stride, int64_t n) {
  constexpr int kLanes = 16;
  T part[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int l = 0; l < kLanes; l++) part[l] += a[k + l] * b[(k + l) * stride];
  for (; k < n; k++) part[0] += a[k] * b[k * stride];
  T s = 0;
  for (int l = 0; l < kLanes; l++) s += part[l];
  return s;
}

// Sum of a[k] * b[k] over the groups of runs covering k < n (both readable, and a zero, past n).
template <class T>
T run_dot(const T* a, const T* b, int64_t n) {
  using V = typename DwRun<T>::type;
  V acc[kDwRuns] = {};
  for (int64_t k = 0; k < n; k += kDwGroup<T>)
    for (int64_t u = 0; u < kDwRuns; u++) {
      V x, y;
      std::memcpy(&x, a + k + u * kDwRun<T>, sizeof(V));
      std::memcpy(&y, b + k + u * kDwRun<T>, sizeof(V));
      acc[u] += x * y;
    }
  T s = 0;
  for (int64_t u = 0; u < kDwRuns; u++)
    for (int64_t l = 0; l < kDwRun<T>; l++) s += acc[u][l];
  return s;
}

// dw[o]: per tap, the sum over images (in order: the same sums whatever the thread count)
// and output pixels of the output gradient times the input the tap read.
template <class T>
void depthwise_dw_t(const Window2d& g, int64_t N, int64_t C, int64_t mult, int64_t o0, int64_t o1, const T* x,
                    const T* gout, T* dw) {
  if constexpr (std::is_same_v<T, float>)
    if (lanes_apply(g, mult)) return depthwise_dw_lanes(g, N, C, o0, o1, x, gout, dw);
  const int64_t Wp = g.W + 2 * g.pw, O = C * mult, taps = g.kh * g.kw, M = (g.Ho - 1) * Wp + g.Wo;
  for (int64_t o = o0; o < o1; o++) {
    T* d = dw + o * taps;
    std::fill(d, d + taps, T(0));
    for (int64_t n = 0; n < N; n++) {
      const int64_t q = n * O + o;
      const T* xp = padded_plane(g, x + q / mult * g.H * g.W, 0);
      const T* gq = gout + q * g.Ho * g.Wo;
      const T* gp = unit_stride(g) ? pitched_grad(g, gq, Wp, 0) : nullptr;
      for (int64_t i = 0; i < g.kh; i++)
        for (int64_t j = 0; j < g.kw; j++) {
          const T* r = xp + i * g.dh * Wp + j * g.dw;
          T acc = 0;
          if (gp)
            acc = run_dot(gp, r, M);
          else
            for (int64_t oh = 0; oh < g.Ho; oh++) acc += strided_dot(gq + oh * g.Wo, r + oh * g.sh * Wp, g.sw, g.Wo);
          d[i * g.kw + j] += acc;
        }
    }
  }
}

// ---- convolution lowering ------------------------------------------------------

// Output columns ow whose input column ow*sw + off lies inside the image: [lo, hi).
inline std::pair<int64_t, int64_t> valid_cols(const Window2d& g, int64_t off) {
  const int64_t lo = std::clamp<int64_t>((-off + g.sw - 1) / g.sw, 0, g.Wo);
  const int64_t hi = std::clamp<int64_t>((g.W - off + g.sw - 1) / g.sw, lo, g.Wo);
  return {lo, hi};
}

template <class T>
void im2col_rows_t(const Window2d& g, int64_t C, const T* x, T* cols, int64_t ld) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < g.kh; i++)
      for (int64_t j = 0; j < g.kw; j++) {
        T* row = cols + ((c * g.kh + i) * g.kw + j) * ld;
        const T* plane = x + c * g.H * g.W;
        const int64_t off = j * g.dw - g.pw;  // iw = ow*sw + off
        const auto [lo, hi] = valid_cols(g, off);
        for (int64_t oh = 0; oh < g.Ho; oh++) {
          T* out = row + oh * g.Wo;
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(out, out + g.Wo, T(0));
            continue;
          }
          const T* in = plane + ih * g.W;
          std::fill(out, out + lo, T(0));
          if (g.sw == 1)  // the case conv2d uses this layout for (strided rows go pixel-major)
            std::memcpy(out + lo, in + lo + off, size_t(hi - lo) * sizeof(T));
          else
            for (int64_t ow = lo; ow < hi; ow++) out[ow] = in[ow * g.sw + off];
          std::fill(out + hi, out + g.Wo, T(0));
        }
      }
}

template <class T>
void col2im_rows_t(const Window2d& g, int64_t C, const T* cols, int64_t ld, T* dx) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < g.kh; i++)
      for (int64_t j = 0; j < g.kw; j++) {
        const T* row = cols + ((c * g.kh + i) * g.kw + j) * ld;
        T* plane = dx + c * g.H * g.W;
        const int64_t off = j * g.dw - g.pw;
        const auto [lo, hi] = valid_cols(g, off);
        for (int64_t oh = 0; oh < g.Ho; oh++) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* in = row + oh * g.Wo;
          T* out = plane + ih * g.W;
          for (int64_t ow = lo; ow < hi; ow++) out[ow * g.sw + off] += in[ow];
        }
      }
}

// Pixel-major columns: output pixel l owns cols[l*ps .. l*ps + C*kh*kw), its window's taps
// in (c, i, j) order. The image is first copied into a zero-padded buffer so that no tap
// needs a bounds check; then each (c, i) row of a window is one short copy of kw values.
struct Padded {
  int64_t Hp, Wp;
};

inline Padded padded(const Window2d& g) { return {g.H + 2 * g.ph, g.W + 2 * g.pw}; }

// A zeroed per-thread buffer for C padded planes, with kSlack values of slack at its end.
constexpr int64_t kSlack = 8;
template <class T>
T* padded_scratch(const Window2d& g, int64_t C) {
  const Padded p = padded(g);
  const int64_t n = C * p.Hp * p.Wp + kSlack;
  T* buf = scratch<T>(0, n);
  std::fill(buf, buf + n, T(0));
  return buf;
}

// Offsets in the padded planes of the C*kh window rows, from the window's origin.
inline const int64_t* window_rows(const Window2d& g, int64_t C, const Padded& p) {
  int64_t* rows = scratch<int64_t>(0, C * g.kh);
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < g.kh; i++) rows[c * g.kh + i] = (c * p.Hp + i * g.dh) * p.Wp;
  return rows;
}

template <class T>
void im2col_pixels_t(const Window2d& g, int64_t C, const T* x, T* cols, int64_t ps) {
  const Padded p = padded(g);
  T* pad = padded_scratch<T>(g, C);
  for (int64_t c = 0; c < C; c++)
    for (int64_t h = 0; h < g.H; h++)
      std::memcpy(pad + (c * p.Hp + h + g.ph) * p.Wp + g.pw, x + (c * g.H + h) * g.W, size_t(g.W) * sizeof(T));
  const int64_t* rows = window_rows(g, C, p);
  const int64_t R = C * g.kh, kw = g.kw, dw = g.dw;
  // A window row of kw <= kSlack contiguous taps is copied as kSlack values at once: the
  // extra values land where the next row's taps go and are overwritten by them. The rows
  // near the end of a pixel's taps are copied exactly, so nothing is written past them.
  const int64_t wide = dw == 1 && kw <= kSlack ? std::max<int64_t>(0, R + 1 - (kSlack + kw - 1) / kw) : 0;
  for (int64_t oh = 0; oh < g.Ho; oh++)
    for (int64_t ow = 0; ow < g.Wo; ow++) {
      T* out = cols + (oh * g.Wo + ow) * ps;
      const T* win = pad + oh * g.sh * p.Wp + ow * g.sw;
      int64_t r = 0;
      for (; r < wide; r++, out += kw) std::memcpy(out, win + rows[r], sizeof(T) * kSlack);  // one vector each
      for (; r < R; r++, out += kw)
        for (int64_t j = 0; j < kw; j++) out[j] = win[rows[r] + j * dw];
    }
}

// The transpose: every tap is added back to the padded pixel it came from, then the
// interior is copied to dx.
template <class T>
void col2im_pixels_t(const Window2d& g, int64_t C, const T* cols, int64_t ps, T* dx) {
  const Padded p = padded(g);
  T* pad = padded_scratch<T>(g, C);
  const int64_t* rows = window_rows(g, C, p);
  const int64_t R = C * g.kh, kw = g.kw, dw = g.dw;
  for (int64_t oh = 0; oh < g.Ho; oh++)
    for (int64_t ow = 0; ow < g.Wo; ow++) {
      const T* in = cols + (oh * g.Wo + ow) * ps;
      T* win = pad + oh * g.sh * p.Wp + ow * g.sw;
      for (int64_t r = 0; r < R; r++, in += kw)
        for (int64_t j = 0; j < kw; j++) win[rows[r] + j * dw] += in[j];
    }
  for (int64_t c = 0; c < C; c++)
    for (int64_t h = 0; h < g.H; h++)
      std::memcpy(dx + (c * g.H + h) * g.W, pad + (c * p.Hp + h + g.ph) * p.Wp + g.pw, size_t(g.W) * sizeof(T));
}

template <class T>
void im2col_t(const Window2d& g, int64_t C, const T* x, T* cols, int64_t ps, int64_t ks) {
  if (ks == 1) return im2col_pixels_t(g, C, x, cols, ps);
  im2col_rows_t(g, C, x, cols, ks);
}

template <class T>
void col2im_t(const Window2d& g, int64_t C, const T* cols, int64_t ps, int64_t ks, T* dx) {
  if (ks == 1) return col2im_pixels_t(g, C, cols, ps, dx);
  std::fill(dx, dx + C * g.H * g.W, T(0));
  col2im_rows_t(g, C, cols, ks, dx);
}

// ---- pooling -------------------------------------------------------------------

// Valid window taps along one axis for each output position: [lo, hi) in tap units.
struct Taps {
  int64_t lo, hi;
};
inline void window_taps(int64_t out, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, Taps* taps) {
  for (int64_t o = 0; o < out; o++) {
    const int64_t start = o * s - p;
    int64_t lo = 0, hi = k;
    while (lo < k && start + lo * d < 0) lo++;
    while (hi > lo && start + (hi - 1) * d >= in) hi--;
    taps[o] = {lo, hi};
  }
}

// Windows that never leave the image (no padding, no ceil overhang) of planes with int32
// offsets: each output row is built tap by tap across all its columns.
template <class T>
void max_pool_inside_t(const Window2d& g, int64_t planes, const T* x, T* out, int64_t* idx) {
  // Per-row scratch the compiler knows is private, so the selects below become vector blends.
  std::vector<T> best_v(size_t(g.Wo));
  std::vector<int32_t> arg_v(size_t(g.Wo));
  T* __restrict__ best = best_v.data();
  int32_t* __restrict__ arg = arg_v.data();
  for (int64_t p = 0; p < planes; p++) {
    const T* __restrict__ in = x + p * g.H * g.W;
    for (int64_t oh = 0; oh < g.Ho; oh++) {
      const int32_t h0 = int32_t(oh * g.sh), W = int32_t(g.W), sw = int32_t(g.sw);
      for (int32_t ow = 0; ow < int32_t(g.Wo); ow++) {
        best[ow] = in[h0 * W + ow * sw];
        arg[ow] = h0 * W + ow * sw;
      }
      for (int64_t i = 0; i < g.kh; i++)
        for (int64_t j = (i == 0); j < g.kw; j++) {
          const int32_t base = int32_t((h0 + i * g.dh) * g.W + j * g.dw);
          for (int32_t ow = 0; ow < int32_t(g.Wo); ow++) {
            const T v = in[base + ow * sw];
            const bool take = v > best[ow] || (v != v && best[ow] == best[ow]);  // the first NaN wins
            best[ow] = take ? v : best[ow];
            arg[ow] = take ? base + ow * sw : arg[ow];
          }
        }
      T* o = out + (p * g.Ho + oh) * g.Wo;
      int64_t* oi = idx + (p * g.Ho + oh) * g.Wo;
      for (int64_t ow = 0; ow < g.Wo; ow++) {
        o[ow] = best[ow];
        oi[ow] = arg[ow];
      }
    }
  }
}

template <class T>
void max_pool_t(const Window2d& g, int64_t planes, const T* x, T* out, int64_t* idx) {
  if (g.ph == 0 && g.pw == 0 && g.H * g.W < (int64_t(1) << 31) && (g.Ho - 1) * g.sh + (g.kh - 1) * g.dh < g.H &&
      (g.Wo - 1) * g.sw + (g.kw - 1) * g.dw < g.W)
    return max_pool_inside_t(g, planes, x, out, idx);
  std::vector<Taps> rows(size_t(g.Ho)), cols(size_t(g.Wo));
  window_taps(g.Ho, g.H, g.kh, g.sh, g.ph, g.dh, rows.data());
  window_taps(g.Wo, g.W, g.kw, g.sw, g.pw, g.dw, cols.data());
  for (int64_t p = 0; p < planes; p++) {
    const T* in = x + p * g.H * g.W;
    T* o = out + p * g.Ho * g.Wo;
    int64_t* oi = idx + p * g.Ho * g.Wo;
    for (int64_t oh = 0; oh < g.Ho; oh++) {
      const Taps r = rows[size_t(oh)];
      const int64_t h0 = oh * g.sh - g.ph;
      for (int64_t ow = 0; ow < g.Wo; ow++) {
        const Taps c = cols[size_t(ow)];
        const int64_t w0 = ow * g.sw - g.pw;
        int64_t arg = (h0 + r.lo * g.dh) * g.W + w0 + c.lo * g.dw;
        // A dilated window can miss the image entirely (kernel 2, dilation 4, padding 1 on 3
        // rows): -inf, as PyTorch, with the index it reports, which no pixel has (no gradient).
        const bool empty = r.lo == r.hi || c.lo == c.hi;
        T best = empty ? -std::numeric_limits<T>::infinity() : in[arg];
        for (int64_t i = r.lo; i < r.hi && best == best; i++)
          for (int64_t j = c.lo; j < c.hi; j++) {
            const int64_t at = (h0 + i * g.dh) * g.W + w0 + j * g.dw;
            const T v = in[at];
            if (v > best || v != v) {  // the first NaN wins, as in PyTorch
              best = v;
              arg = at;
              if (v != v) break;
            }
          }
        o[oh * g.Wo + ow] = best;
        oi[oh * g.Wo + ow] = arg;
      }
    }
  }
}

template <class T>
void max_pool_backward_t(const Window2d& g, int64_t planes, const T* gout, const int64_t* idx, T* gx) {
  const int64_t L = g.Ho * g.Wo;
  for (int64_t p = 0; p < planes; p++)
    for (int64_t o = 0; o < L; o++)
      if (idx[p * L + o] >= 0 && idx[p * L + o] < g.H * g.W) gx[p * g.H * g.W + idx[p * L + o]] += gout[p * L + o];
}

// The window of output (oh, ow) clipped to the image, and the divisor PyTorch uses.
struct AvgWindow {
  int64_t h0, h1, w0, w1, div;
};
inline AvgWindow avg_window(const Window2d& g, int64_t oh, int64_t ow, bool include_pad) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = std::min(h0 + g.kh, g.H + g.ph), w1 = std::min(w0 + g.kw, g.W + g.pw);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, g.H);
  w1 = std::min(w1, g.W);
  return {h0, h1, w0, w1, include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

template <class T>
void avg_pool_t(const Window2d& g, int64_t planes, bool include_pad, const T* x, T* out) {
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oh = 0; oh < g.Ho; oh++)
      for (int64_t ow = 0; ow < g.Wo; ow++) {
        const AvgWindow w = avg_window(g, oh, ow, include_pad);
        T s = 0;
        for (int64_t ih = w.h0; ih < w.h1; ih++)
          for (int64_t iw = w.w0; iw < w.w1; iw++) s += x[(p * g.H + ih) * g.W + iw];
        out[(p * g.Ho + oh) * g.Wo + ow] = w.div > 0 ? s / T(w.div) : T(0);
      }
}

template <class T>
void avg_pool_backward_t(const Window2d& g, int64_t planes, bool include_pad, const T* gout, T* gx) {
  for (int64_t p = 0; p < planes; p++)
    for (int64_t oh = 0; oh < g.Ho; oh++)
      for (int64_t ow = 0; ow < g.Wo; ow++) {
        const AvgWindow w = avg_window(g, oh, ow, include_pad);
        if (w.div <= 0) continue;
        const T v = gout[(p * g.Ho + oh) * g.Wo + ow] / T(w.div);
        for (int64_t ih = w.h0; ih < w.h1; ih++)
          for (int64_t iw = w.w0; iw < w.w1; iw++) gx[(p * g.H + ih) * g.W + iw] += v;
      }
}

template <class T, bool Backward>
void adaptive_t(int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, const T* a, T* b) {
  for (int64_t p = 0; p < planes; p++)
    for (int64_t i = 0; i < Ho; i++) {
      const int64_t h0 = i * H / Ho, h1 = ((i + 1) * H + Ho - 1) / Ho;
      for (int64_t j = 0; j < Wo; j++) {
        const int64_t w0 = j * W / Wo, w1 = ((j + 1) * W + Wo - 1) / Wo;
        const T inv = T(1) / T((h1 - h0) * (w1 - w0));
        if constexpr (Backward) {
          const T v = a[(p * Ho + i) * Wo + j] * inv;
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) b[(p * H + h) * W + w] += v;
        } else {
          T s = 0;
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) s += a[(p * H + h) * W + w];
          b[(p * Ho + i) * Wo + j] = s * inv;
        }
      }
    }
}

// ---- batch-norm loops ----------------------------------------------------------

// Both passes walk x in memory order ([N, C, S] row by row), accumulating per channel.
// The batch-norm loops work on channels [c0, c1) of x [N, C, S]: for each image that is
// one contiguous run of w = (c1 - c0)*S values, so they run along it with per-position
// accumulators or coefficients (whatever S is, even 1), then fold positions into channels.
// Float partials cover at most kRowBlock images before they are added into double.
constexpr int64_t kRowBlock = 128;

// Per-position coefficients: out[(c - c0)*S + s] = T(v[c]).
template <class T>
const T* expand(int slot, const double* v, int64_t c0, int64_t c1, int64_t S) {
  T* out = scratch<T>(slot, (c1 - c0) * S);
  for (int64_t c = c0; c < c1; c++) std::fill(out + (c - c0) * S, out + (c - c0 + 1) * S, T(v[c]));
  return out;
}

// sums[(c - c0)] (double) = sum over images n and positions s of f(n, j) with j = (c - c0)*S + s;
// f(n, j) reads the j-th value of image n's run. Positions are summed in order.
template <class T, class F>
void channel_sums(int64_t N, int64_t c0, int64_t c1, int64_t S, double* sums, F&& f) {
  const int64_t w = (c1 - c0) * S;
  T* part = scratch<T>(0, w);
  std::vector<double> acc(size_t(w), 0.0);
  for (int64_t n0 = 0; n0 < N; n0 += kRowBlock) {
    std::fill(part, part + w, T(0));
    for (int64_t n = n0; n < std::min(N, n0 + kRowBlock); n++)
      for (int64_t j = 0; j < w; j++) part[j] += f(n, j);
    for (int64_t j = 0; j < w; j++) acc[size_t(j)] += double(part[j]);
  }
  for (int64_t c = c0; c < c1; c++) {
    double t = 0;
    for (int64_t s = 0; s < S; s++) t += acc[size_t((c - c0) * S + s)];
    sums[c] = t;
  }
}

template <class T>
void channel_stats_t(int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const T* x, double* mean, double* var) {
  const double count = double(N * S);
  const T* run = x + c0 * S;
  const int64_t CS = C * S;
  channel_sums<T>(N, c0, c1, S, mean, [&](int64_t n, int64_t j) { return run[n * CS + j]; });
  for (int64_t c = c0; c < c1; c++) mean[c] /= count;
  const T* m = expand<T>(1, mean, c0, c1, S);
  channel_sums<T>(N, c0, c1, S, var, [&](int64_t n, int64_t j) {  // second pass: no cancellation for large means
    const T d = run[n * CS + j] - m[j];
    return d * d;
  });
  for (int64_t c = c0; c < c1; c++) var[c] /= count;
}

template <class T>
void channel_affine_t(int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const T* x, const double* a,
                      const double* b, const T* z, const double* e, T* y) {
  const int64_t w = (c1 - c0) * S, CS = C * S, off = c0 * S;
  const T* ar = expand<T>(0, a, c0, c1, S);
  const T* br = expand<T>(1, b, c0, c1, S);
  const T* er = z ? expand<T>(2, e, c0, c1, S) : nullptr;
  for (int64_t n = 0; n < N; n++) {
    const T* xr = x + n * CS + off;
    T* yr = y + n * CS + off;
    if (z) {
      const T* zr = z + n * CS + off;
      for (int64_t j = 0; j < w; j++) yr[j] = ar[j] * xr[j] + br[j] + er[j] * zr[j];
    } else {
      for (int64_t j = 0; j < w; j++) yr[j] = ar[j] * xr[j] + br[j];
    }
  }
}

template <class T>
void channel_grad_sums_t(int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const T* g, const T* x,
                         const double* mean, double* sg, double* sgx) {
  const T* gr = g + c0 * S;
  const T* xr = x + c0 * S;
  const int64_t CS = C * S;
  const T* m = expand<T>(1, mean, c0, c1, S);
  channel_sums<T>(N, c0, c1, S, sg, [&](int64_t n, int64_t j) { return gr[n * CS + j]; });
  channel_sums<T>(N, c0, c1, S, sgx, [&](int64_t n, int64_t j) { return gr[n * CS + j] * (xr[n * CS + j] - m[j]); });
}

// ---- softmax and cross entropy -------------------------------------------------

template <class T>
FK_INLINE T row_max(const T* x, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; i++) m = x[i] > m || x[i] != x[i] ? x[i] : m;
  return m;
}

// A row's max m (0 when -inf, so all -inf rows stay -inf) and s = sum(exp(x - m)). A +inf or
// NaN max makes s NaN and with it the whole row, as in PyTorch.
// Callers work with x - m and log(s) separately: adding m back first would cost precision.
template <class T>
std::pair<T, T> row_shift_sum(const T* x, int64_t n) {
  T m = row_max(x, n);
  if (m == -std::numeric_limits<T>::infinity()) m = 0;
  T s = 0;
  for (int64_t i = 0; i < n; i++) s += exp_(x[i] - m);
  return {m, s};
}

template <class T>
void softmax_rows_t(int64_t rows, int64_t cols, const T* x, T* y, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    const auto [m, s] = row_shift_sum(xr, cols);
    if (log) {
      const T ls = std::log(s);
      for (int64_t i = 0; i < cols; i++) yr[i] = (xr[i] - m) - ls;
    } else {
      const T inv = T(1) / s;
      for (int64_t i = 0; i < cols; i++) yr[i] = exp_(xr[i] - m) * inv;
    }
  }
}

template <class T>
void cross_entropy_t(int64_t rows, int64_t cols, const T* x, const int64_t* t, int64_t ignore, double eps, T* loss) {
  for (int64_t r = 0; r < rows; r++) {
    const T* xr = x + r * cols;
    if (t[r] == ignore) {
      loss[r] = 0;
      continue;
    }
    const auto [m, s] = row_shift_sum(xr, cols);
    T mean = 0;
    if (eps != 0) {
      for (int64_t i = 0; i < cols; i++) mean += xr[i];
      mean /= T(cols);
    }
    // logsumexp - (1-eps) x_t - eps mean, grouped around m
    loss[r] = std::log(s) + T(1 - eps) * (m - xr[t[r]]) + T(eps) * (m - mean);
  }
}

template <class T>
void cross_entropy_backward_t(int64_t rows, int64_t cols, const T* x, const int64_t* t, int64_t ignore, double eps,
                              const T* gl, T* gx) {
  const T smooth = T(eps / double(cols));
  for (int64_t r = 0; r < rows; r++) {
    const T* xr = x + r * cols;
    T* gr = gx + r * cols;
    if (t[r] == ignore) {
      std::fill(gr, gr + cols, T(0));
      continue;
    }
    const auto [m, s] = row_shift_sum(xr, cols);
    const T g = gl[r], scale = g / s;
    for (int64_t i = 0; i < cols; i++) gr[i] = exp_(xr[i] - m) * scale - g * smooth;
    gr[t[r]] -= g * T(1 - eps);
  }
}

#define FK_FLOAT_KERNEL(name, impl, params, args) \
  void name params {                              \
    float_dispatch(dt, [&](auto tag_) {           \
      using T = decltype(tag_);                   \
      impl args;                                  \
    });                                           \
  }

FK_FLOAT_KERNEL(im2col, im2col_t,
                (DType dt, const Window2d& g, int64_t C, const void* x, void* cols, int64_t ps, int64_t ks),
                (g, C, static_cast<const T*>(x), static_cast<T*>(cols), ps, ks))
FK_FLOAT_KERNEL(col2im, col2im_t,
                (DType dt, const Window2d& g, int64_t C, const void* cols, int64_t ps, int64_t ks, void* dx),
                (g, C, static_cast<const T*>(cols), ps, ks, static_cast<T*>(dx)))
FK_FLOAT_KERNEL(depthwise_conv2d, depthwise_t,
                (DType dt, const Window2d& g, int64_t O, int64_t mult, int64_t q0, int64_t q1, const void* x,
                 const void* w, void* out),
                (g, O, mult, q0, q1, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(out)))
FK_FLOAT_KERNEL(depthwise_conv2d_dx, depthwise_dx_t,
                (DType dt, const Window2d& g, int64_t C, int64_t mult, int64_t p0, int64_t p1, const void* gout,
                 const void* w, void* dx),
                (g, C, mult, p0, p1, static_cast<const T*>(gout), static_cast<const T*>(w), static_cast<T*>(dx)))
FK_FLOAT_KERNEL(depthwise_conv2d_dw, depthwise_dw_t,
                (DType dt, const Window2d& g, int64_t N, int64_t C, int64_t mult, int64_t o0, int64_t o1, const void* x,
                 const void* gout, void* dw),
                (g, N, C, mult, o0, o1, static_cast<const T*>(x), static_cast<const T*>(gout), static_cast<T*>(dw)))
FK_FLOAT_KERNEL(max_pool2d, max_pool_t,
                (DType dt, const Window2d& g, int64_t planes, const void* x, void* out, int64_t* idx),
                (g, planes, static_cast<const T*>(x), static_cast<T*>(out), idx))
FK_FLOAT_KERNEL(max_pool2d_backward, max_pool_backward_t,
                (DType dt, const Window2d& g, int64_t planes, const void* gout, const int64_t* idx, void* gx),
                (g, planes, static_cast<const T*>(gout), idx, static_cast<T*>(gx)))
FK_FLOAT_KERNEL(avg_pool2d, avg_pool_t,
                (DType dt, const Window2d& g, int64_t planes, bool include_pad, const void* x, void* out),
                (g, planes, include_pad, static_cast<const T*>(x), static_cast<T*>(out)))
FK_FLOAT_KERNEL(avg_pool2d_backward, avg_pool_backward_t,
                (DType dt, const Window2d& g, int64_t planes, bool include_pad, const void* gout, void* gx),
                (g, planes, include_pad, static_cast<const T*>(gout), static_cast<T*>(gx)))
FK_FLOAT_KERNEL(adaptive_avg_pool2d, (adaptive_t<T, false>),
                (DType dt, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, const void* x, void* out),
                (planes, H, W, Ho, Wo, static_cast<const T*>(x), static_cast<T*>(out)))
FK_FLOAT_KERNEL(adaptive_avg_pool2d_backward, (adaptive_t<T, true>),
                (DType dt, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, const void* gout, void* gx),
                (planes, H, W, Ho, Wo, static_cast<const T*>(gout), static_cast<T*>(gx)))
FK_FLOAT_KERNEL(channel_stats, channel_stats_t,
                (DType dt, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const void* x, double* mean,
                 double* var),
                (N, C, S, c0, c1, static_cast<const T*>(x), mean, var))
FK_FLOAT_KERNEL(channel_affine, channel_affine_t,
                (DType dt, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const void* x, const double* a,
                 const double* b, const void* z, const double* e, void* y),
                (N, C, S, c0, c1, static_cast<const T*>(x), a, b, static_cast<const T*>(z), e, static_cast<T*>(y)))
FK_FLOAT_KERNEL(channel_grad_sums, channel_grad_sums_t,
                (DType dt, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const void* g, const void* x,
                 const double* mean, double* sg, double* sgx),
                (N, C, S, c0, c1, static_cast<const T*>(g), static_cast<const T*>(x), mean, sg, sgx))
FK_FLOAT_KERNEL(softmax_rows, softmax_rows_t, (DType dt, int64_t rows, int64_t cols, const void* x, void* y, bool log),
                (rows, cols, static_cast<const T*>(x), static_cast<T*>(y), log))
FK_FLOAT_KERNEL(cross_entropy, cross_entropy_t,
                (DType dt, int64_t rows, int64_t cols, const void* x, const int64_t* t, int64_t ignore, double eps,
                 void* loss),
                (rows, cols, static_cast<const T*>(x), t, ignore, eps, static_cast<T*>(loss)))
FK_FLOAT_KERNEL(cross_entropy_backward, cross_entropy_backward_t,
                (DType dt, int64_t rows, int64_t cols, const void* x, const int64_t* t, int64_t ignore, double eps,
                 const void* gl, void* gx),
                (rows, cols, static_cast<const T*>(x), t, ignore, eps, static_cast<const T*>(gl), static_cast<T*>(gx)))

}  // namespace

extern const NnKernels nn_kernels = {
    im2col,
    col2im,
    depthwise_conv2d,
    depthwise_conv2d_dx,
    depthwise_conv2d_dw,
    max_pool2d,
    max_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    channel_stats,
    channel_affine,
    channel_grad_sums,
    softmax_rows,
    cross_entropy,
    cross_entropy_backward,
};

}  // namespace fk::FK_ISA
