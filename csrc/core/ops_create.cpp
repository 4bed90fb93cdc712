// Tensor creation and random numbers.
#include <cmath>
#include <limits>
#include <type_traits>

#include "autograd.h"
#include "backend.h"
#include "ops.h"

namespace fk {

namespace {
// A float that an integer type cannot hold is an error (the conversion would be undefined), as
// is, unless `wrap`, an integer out of the type's range.
void check_fits(Scalar value, DType dtype, bool wrap) {
  dispatch_dtype(dtype, [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // PyTorch's rule: a float must lie in T's range; an integer may also be the negative of a
      // value in range for an unsigned T (uint8 -1 is 255).
      using L = std::numeric_limits<T>;
      const bool fits =
          value.kind == Scalar::Float
              ? value.f >= double(L::min()) && (sizeof(T) == 8 ? value.f < 0x1p63 : value.f <= double(L::max()))
              : wrap || sizeof(T) == 8 || (value.i >= -int64_t(L::max()) && value.i <= int64_t(L::max()));
      FK_CHECK(fits, Runtime, "value cannot be converted to type ", dtype_name(dtype),
               " without overflow: ", value.kind == Scalar::Float ? str_cat(value.f) : str_cat(value.i));
    }
  });
}

Tensor filled(const Dims& shape, Scalar value, DType dtype, bool wrap, Device device) {
  check_fits(value, dtype, wrap);
  Tensor t = empty(shape, dtype, device);
  backend(device).fill(t, value);
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

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  FK_CHECK(step != 0, Runtime, "arange: step must be nonzero");
  FK_CHECK(std::isfinite(start) && std::isfinite(end), Runtime, "arange: unsupported range: ", start, " -> ", end);
  FK_CHECK((step > 0 && end >= start) || (step < 0 && end <= start), Runtime,
           "arange: upper bound and lower bound inconsistent with step sign (", start, " -> ", end, " with step ", step,
           ")");
  const double len = std::ceil((end - start) / step);
  FK_CHECK(len < 9e18, Runtime, "arange: too many elements for range ", start, " -> ", end, " with step ", step);
  Tensor t = empty({len > 0 ? int64_t(len) : 0}, dtype, device);
  backend(t.device()).arange(t, start, step);
  return t;
}

Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device) {
  FK_CHECK(steps >= 0, Runtime, "linspace: number of steps must be non-negative, got ", steps);
  Tensor t = empty({steps}, dtype, device);
  backend(t.device()).linspace(t, start, end);
  return t;
}

Tensor eye(int64_t n, int64_t m, DType dtype, Device device) {
  FK_CHECK(n >= 0 && m >= 0, Runtime, "eye: sizes must be non-negative, got ", n, " and ", m);
  Tensor t = zeros({n, m}, dtype, device);
  copy_(make_view(t, {std::min(n, m)}, {m + 1}, 0), scalar_tensor(Scalar::of_int(1), dtype));  // the diagonal
  return t;
}

// ---- random numbers: each device's generator, reseeded by manual_seed ----
namespace {
// Fills t (any layout) through a contiguous buffer, so the stream order is the logical order.
void fill_random(Tensor& t, const RandomFill& r) {
  Tensor buf = t.is_contiguous() ? t : empty(t.shape(), t.dtype(), t.device());
  backend(t.device()).random(buf, r);
  if (buf.p != t.p) copy_(t, buf);
  t.bump_version();
}
}  // namespace

void manual_seed(uint64_t seed) {
  backend(Device::CPU).manual_seed(seed);
  if (cuda_device_count() > 0) backend(Device::CUDA).manual_seed(seed);  // every device's, as torch.manual_seed
}

Tensor& uniform_(Tensor& t, double lo, double hi) {
  check_inplace(t, "uniform_");
  FK_CHECK(is_float(t.dtype()), Type, "uniform_ expects a floating point tensor, got ", dtype_name(t.dtype()));
  FK_CHECK(lo <= hi, Runtime, "uniform_ expects to return a [from, to) range, but found from=", lo, " > to=", hi);
  fill_random(t, {RandomFill::Uniform, lo, hi});
  return t;
}

Tensor& normal_(Tensor& t, double mean, double std) {
  check_inplace(t, "normal_");
  FK_CHECK(is_float(t.dtype()), Type, "normal_ expects a floating point tensor, got ", dtype_name(t.dtype()));
  FK_CHECK(std >= 0, Value, "normal_ expects std >= 0.0, but found std ", std);
  fill_random(t, {RandomFill::Normal, mean, std});
  return t;
}

Tensor randint(int64_t low, int64_t high, const Dims& shape, DType dtype, Device device) {
  FK_CHECK(high > low, Runtime, "random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  Tensor t = empty(shape, dtype, device);
  const uint64_t span = uint64_t(high) - uint64_t(low);
  fill_random(t, {RandomFill::Integer, 0, 0, low, span});
  return t;
}

Tensor randperm(int64_t n, Device device) {
  FK_CHECK(n >= 0, Runtime, "randperm: n must be non-negative, got ", n);
  Tensor t = empty({n}, DType::Int64, device);
  fill_random(t, {RandomFill::Permutation});
  return t;
}

Scalar item(const Tensor& t) {
  FK_CHECK(t.numel() == 1, Runtime, "a Tensor with ", t.numel(), " elements cannot be converted to Scalar");
  GradMode off(false);
  const Tensor host = to_device(t, Device::CPU);  // a device's value is read from a host copy
  const char* p = host.raw();
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
  if (!item(any(binary(BinOp::Gt, bytes, Scalar::of_int(1)), DimList(), false)).i) return t;
  return binary(BinOp::Ne, bytes, Scalar::of_int(0));
}

}  // namespace fk
