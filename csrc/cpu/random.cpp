// The CPU's random numbers: one global xoshiro256** stream, reseeded by manual_seed.
#include <cmath>

#include "allocator.h"

namespace fk {
namespace {

struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) { reseed(seed); }
  void reseed(uint64_t seed) {
    for (auto& x : s) {  // splitmix64 spreads the seed over the state
      seed += 0x9e3779b97f4a7c15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      x = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};
Rng& rng() {
  static Rng r(0x5eed);
  return r;
}

template <class T, class F>
void draw_each(const Tensor& out, F draw) {
  T* p = out.data<T>();
  const int64_t n = out.numel();
  for (int64_t i = 0; i < n; i++) p[i] = T(draw());
}

template <class T>
void fill(const Tensor& out, const RandomFill& r) {
  const double lo = r.a, hi = r.b;
  switch (r.kind) {
    case RandomFill::Uniform:
      if constexpr (std::is_same_v<T, float>) {
        // Round down explicitly: a double just below hi could round up to hi as a float.
        draw_each<T>(out, [&] {
          const float v = float(lo + (hi - lo) * rng().uniform());
          return v >= float(hi) && hi > lo ? std::nextafter(float(hi), float(lo)) : v;
        });
      } else {
        draw_each<T>(out, [&] { return lo + (hi - lo) * rng().uniform(); });
      }
      break;
    case RandomFill::Normal: {
      // Box-Muller, one pair of uniforms per two values.
      bool have = false;
      double spare = 0;
      draw_each<T>(out, [&] {
        if (have) {
          have = false;
          return lo + hi * spare;
        }
        const double u1 = 1.0 - rng().uniform(), u2 = rng().uniform();
        const double rad = std::sqrt(-2.0 * std::log(u1));
        spare = rad * std::sin(2 * M_PI * u2);
        have = true;
        return lo + hi * rad * std::cos(2 * M_PI * u2);
      });
      break;
    }
    case RandomFill::Integer:
      draw_each<T>(out, [&] { return int64_t(uint64_t(r.low) + rng().next() % r.span); });
      break;
    case RandomFill::Permutation: {  // Fisher-Yates over 0 .. n-1
      T* p = out.data<T>();
      const int64_t n = out.numel();
      for (int64_t i = 0; i < n; i++) p[i] = T(i);
      for (int64_t i = n - 1; i > 0; i--) std::swap(p[i], p[rng().next() % uint64_t(i + 1)]);
      break;
    }
  }
}

}  // namespace

void cpu_random(const Tensor& out, const RandomFill& r) {
  dispatch_dtype(out.dtype(), [&](auto z) { fill<decltype(z)>(out, r); });
}

void cpu_manual_seed(uint64_t seed) { rng().reseed(seed); }

}  // namespace fk
