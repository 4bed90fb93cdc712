// Float math written so the compiler vectorises it (libm calls would not be):
// included by the per-ISA kernel files, inside their fk::<isa> namespace.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace fk::FK_ISA {

#define FK_INLINE inline __attribute__((always_inline))

FK_INLINE float exp_f32(float x) {
  const float xc = x < -104.f ? -104.f : (x > 89.f ? 89.f : x);
  // Round to nearest by the 1.5*2^23 trick: exact for |v| < 2^22 and vectorises.
  const float kf = (xc * 1.44269504f + 12582912.f) - 12582912.f;
  const float r = (xc - kf * 0.693145751953125f) - kf * 1.428606765330187e-06f;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  // 2^k in two halves so k may reach 129 (overflow to inf) or -150 (underflow to 0).
  const int32_t k = int32_t(kf);
  const int32_t k1 = k >> 1, k2 = k - k1;
  const float s1 = std::bit_cast<float>((k1 + 127) << 23), s2 = std::bit_cast<float>((k2 + 127) << 23);
  const float y = p * s1 * s2;
  return x != x ? x : y;
}

FK_INLINE float log_f32(float x) {
  // Scale subnormals into the normal range first.
  const bool tiny = x < 1.17549435e-38f;
  const float xs = tiny ? x * 8388608.f : x;
  const int32_t i = std::bit_cast<int32_t>(xs);
  int32_t e = ((i >> 23) & 0xff) - 127 - (tiny ? 23 : 0);
  float m = std::bit_cast<float>((i & 0x7fffff) | 0x3f800000);  // [1, 2)
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  // log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.172
  const float s = (m - 1.f) / (m + 1.f), s2 = s * s;
  float p = 1.f / 11.f;
  p = p * s2 + 1.f / 9.f;
  p = p * s2 + 1.f / 7.f;
  p = p * s2 + 1.f / 5.f;
  p = p * s2 + 1.f / 3.f;
  p = p * s2 + 1.f;
  const float ef = float(e);
  float y = (ef * 0.693145751953125f + 2.f * s * p) + ef * 1.428606765330187e-06f;
  y = x == 0.f ? -std::numeric_limits<float>::infinity() : y;
  y = x == std::numeric_limits<float>::infinity() ? x : y;
  return (x < 0.f || x != x) ? std::numeric_limits<float>::quiet_NaN() : y;
}

FK_INLINE float tanh_f32(float x) {
  const float ax = x < 0.f ? -x : x;
  // Small |x|: odd Taylor series (cancellation would spoil 1 - 2/(e^2x+1) there).
  const float x2 = x * x;
  float p = -1382.f / 155925.f;
  p = p * x2 + 62.f / 2835.f;
  p = p * x2 - 17.f / 315.f;
  p = p * x2 + 2.f / 15.f;
  p = p * x2 - 1.f / 3.f;
  const float small = x + x * x2 * p;
  const float t = 1.f - 2.f / (exp_f32(2.f * ax) + 1.f);
  const float large = x < 0.f ? -t : t;
  return ax < 0.3f ? small : (x != x ? x : large);
}

FK_INLINE float sigmoid_f32(float x) { return 1.f / (1.f + exp_f32(-x)); }

template <class T>
FK_INLINE T exp_(T x) {
  if constexpr (std::is_same_v<T, float>)
    return exp_f32(x);
  else
    return std::exp(x);
}
template <class T>
FK_INLINE T log_(T x) {
  if constexpr (std::is_same_v<T, float>)
    return log_f32(x);
  else
    return std::log(x);
}
template <class T>
FK_INLINE T tanh_(T x) {
  if constexpr (std::is_same_v<T, float>)
    return tanh_f32(x);
  else
    return std::tanh(x);
}
template <class T>
FK_INLINE T sigmoid_(T x) {
  if constexpr (std::is_same_v<T, float>)
    return sigmoid_f32(x);
  else
    return T(1) / (T(1) + std::exp(-x));
}

}  // namespace fk::FK_ISA
