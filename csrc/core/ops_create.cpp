// Tensor creation and random numbers.
#include <cmath>
#include <limits>
#include <type_traits>

#include "autograd.h"
#include "ops.h"

namespace fk {

namespace {
// `value` as T. A float that an integer type cannot hold is an error (the conversion would be
// undefined), as is, unless `wrap`, an integer out of T's range.
template <class T>
T value_as(Scalar value, DType dtype, bool wrap) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // PyTorch's rule: a float must lie in T's range; an integer may also be the negative of a
    // value in range for an unsigned T (uint8 -1 is 255).
    using L = std::numeric_limits<T>;
    const bool fits = value.kind == Scalar::Float
                          ? value.f >= double(L::min()) && (sizeof(T) == 8 ? value.f < 0x1p63 : value.f <= double(L::max()))
                          : wrap || sizeof(T) == 8 || (value.i >= -int64_t(L::max()) && value.i <= int64_t(L::max()));
    FK_CHECK(fits, Runtime, "value cannot be converted to type ", dtype_name(dtype), " without overflow: ",
             value.kind == Scalar::Float ? str_cat(value.f) : str_cat(value.i));
  }
  return value.kind == Scalar::Float ? T(value.f) : T(value.i);
}

Tensor filled(const Dims& shape, Scalar value, DType dtype, bool wrap, Device device) {
  Tensor t = empty(shape, dtype, device);
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    const T v = value_as<T>(value, dtype, wrap);
    T* p = t.data<T>();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; i++) p[i] = v;
  });
  return t;
}
}  // namespace

Tensor full(const Dims& shape, Scalar value, DType dtype, Device device) {
  return filled(shape, value, dtype, false, device);
}

Tensor scalar_tensor(Scalar value, DType dtype) {
  // `uint8 + 300` wraps, as in PyTorch. On the CPU: a 0-d CPU tensor mixes with tensors of any device.
  Tensor t = filled(Dims(), value, dtype, true, Device::CPU);
  t.p->wrapped_number = true;
  return t;
}

Tensor arange(double start, double end, double step, DType dtype) {
  FK_CHECK(step != 0, Runtime, "arange: step must be nonzero");
  FK_CHECK(std::isfinite(start) && std::isfinite(end), Runtime, "arange: unsupported range: ", start, " -> ", end);
  FK_CHECK((step > 0 && end >= start) || (step < 0 && end <= start), Runtime,
           "arange: upper bound and lower bound inconsistent with step sign (", start, " -> ", end, " with step ", step,
           ")");
  const double len = std::ceil((end - start) / step);
  FK_CHECK(len < 9e18, Runtime, "arange: too many elements for range ", start, " -> ", end, " with step ", step);
  const int64_t n = len > 0 ? int64_t(len) : 0;
  Tensor t = empty({n}, dtype);
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; i++) p[i] = T(start + double(i) * step);
  });
  return t;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  FK_CHECK(steps >= 0, Runtime, "linspace: number of steps must be non-negative, got ", steps);
  Tensor t = empty({steps}, dtype);
  const double step = steps > 1 ? (end - start) / double(steps - 1) : 0;
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    T* p = t.data<T>();
    // Fill from both ends so the last value is exactly `end`.
    for (int64_t i = 0; i < steps; i++) p[i] = T(i < steps / 2 ? start + double(i) * step : end - double(steps - 1 - i) * step);
    if (steps == 1) p[0] = T(start);
  });
  return t;
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  FK_CHECK(n >= 0 && m >= 0, Runtime, "eye: sizes must be non-negative, got ", n, " and ", m);
  Tensor t = zeros({n, m}, dtype, Device::CPU);
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    for (int64_t i = 0; i < std::min(n, m); i++) t.data<T>()[i * m + i] = T(1);
  });
  return t;
}

// ---- random numbers: one global xoshiro256** stream, reseeded by manual_seed ----
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

// Fills t (any layout) through a contiguous buffer, so the stream order is the logical order.
template <class F>
void fill_random(Tensor& t, F draw) {
  Tensor buf = t.is_contiguous() ? t : empty(t.shape(), t.dtype());
  dispatch_dtype(t.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = buf.data<T>();
    const int64_t n = buf.numel();
    for (int64_t i = 0; i < n; i++) p[i] = T(draw());
  });
  if (buf.p != t.p) copy_(t, buf);
  t.bump_version();
}
}  // namespace

void manual_seed(uint64_t seed) { rng().reseed(seed); }

Tensor& uniform_(Tensor& t, double lo, double hi) {
  check_inplace(t, "uniform_");
  FK_CHECK(is_float(t.dtype()), Type, "uniform_ expects a floating point tensor, got ", dtype_name(t.dtype()));
  FK_CHECK(lo <= hi, Runtime, "uniform_ expects to return a [from, to) range, but found from=", lo, " > to=", hi);
  if (t.dtype() == DType::Float32) {
    // Round down explicitly: a double just below 1 could round up to 1.0f.
    fill_random(t, [&] {
      float v = float(lo + (hi - lo) * rng().uniform());
      return v >= float(hi) && hi > lo ? std::nextafter(float(hi), float(lo)) : v;
    });
  } else {
    fill_random(t, [&] { return lo + (hi - lo) * rng().uniform(); });
  }
  return t;
}

Tensor& normal_(Tensor& t, double mean, double std) {
  check_inplace(t, "normal_");
  FK_CHECK(is_float(t.dtype()), Type, "normal_ expects a floating point tensor, got ", dtype_name(t.dtype()));
  FK_CHECK(std >= 0, Value, "normal_ expects std >= 0.0, but found std ", std);
  // Box-Muller, one pair of uniforms per two values.
  bool have = false;
  double spare = 0;
  fill_random(t, [&] {
    if (have) {
      have = false;
      return mean + std * spare;
    }
    const double u1 = 1.0 - rng().uniform(), u2 = rng().uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare = r * std::sin(2 * M_PI * u2);
    have = true;
    return mean + std * r * std::cos(2 * M_PI * u2);
  });
  return t;
}

Tensor randint(int64_t low, int64_t high, const Dims& shape, DType dtype) {
  FK_CHECK(high > low, Runtime, "random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  Tensor t = empty(shape, dtype);
  const uint64_t span = uint64_t(high) - uint64_t(low);
  fill_random(t, [&] { return int64_t(uint64_t(low) + rng().next() % span); });
  return t;
}

Tensor randperm(int64_t n) {
  FK_CHECK(n >= 0, Runtime, "randperm: n must be non-negative, got ", n);
  Tensor t = arange(0, double(n), 1, DType::Int64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = n - 1; i > 0; i--) std::swap(p[i], p[rng().next() % uint64_t(i + 1)]);
  return t;
}

Scalar item(const Tensor& t) {
  FK_CHECK(t.numel() == 1, Runtime, "a Tensor with ", t.numel(), " elements cannot be converted to Scalar");
  const char* p = t.raw();
  switch (t.dtype()) {
    case DType::Bool: return Scalar::of_bool(*reinterpret_cast<const bool*>(p));
    case DType::UInt8: return Scalar::of_int(*reinterpret_cast<const uint8_t*>(p));
    case DType::Int64: return Scalar::of_int(*reinterpret_cast<const int64_t*>(p));
    case DType::Float32: return Scalar::of(*reinterpret_cast<const float*>(p));
    default: return Scalar::of(*reinterpret_cast<const double*>(p));
  }
}

Tensor canonical_bools(const Tensor& t) {
  if (t.dtype() != DType::Bool || t.numel() == 0) return t;
  Tensor bytes = detach(t);
  bytes.p->dtype = DType::UInt8;  // the same memory, read as bytes
  GradMode off(false);
  if (!*any(binary(BinOp::Gt, bytes, Scalar::of_int(1)), DimList(), false).data<bool>()) return t;
  return binary(BinOp::Ne, bytes, Scalar::of_int(0));
}

}  // namespace fk
