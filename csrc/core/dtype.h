// Element types and PyTorch's type-promotion lattice.
#pragma once
#include <cstdint>

#include "common.h"

namespace fk {

enum class DType : uint8_t { Bool, UInt8, Int64, Float32, Float64 };
constexpr int kNumDTypes = 5;

enum class Device : uint8_t { CPU, CUDA };
// As PyTorch names a tensor's device (one CUDA device so far: cuda:0).
inline const char* device_str(Device d) { return d == Device::CPU ? "cpu" : "cuda:0"; }

inline int64_t itemsize(DType d) {
  switch (d) {
    case DType::Bool:
    case DType::UInt8: return 1;
    case DType::Float32: return 4;
    default: return 8;
  }
}
inline const char* dtype_name(DType d) {
  static const char* names[] = {"bool", "uint8", "int64", "float32", "float64"};
  return names[int(d)];
}
inline bool is_float(DType d) { return d == DType::Float32 || d == DType::Float64; }
// 0 bool, 1 integer, 2 floating: promotion never moves down a category.
inline int category(DType d) { return d == DType::Bool ? 0 : is_float(d) ? 2 : 1; }

inline DType promote(DType a, DType b) {
  if (a == b) return a;
  if (category(a) != category(b)) return category(a) > category(b) ? a : b;
  return int(a) > int(b) ? a : b;  // within a category the enum is ordered by width
}

// Float result for ops that only make sense in floating point (exp, /, mean...).
inline DType to_float(DType d) { return is_float(d) ? d : DType::Float32; }

// A Python number: its kind decides type promotion, as in PyTorch.
struct Scalar {
  enum Kind : uint8_t { Bool, Int, Float } kind = Float;
  double f = 0;
  int64_t i = 0;
  static Scalar of(double v) { return {Float, v, 0}; }
  static Scalar of_int(int64_t v) { return {Int, double(v), v}; }
  static Scalar of_bool(bool v) { return {Bool, double(v), v}; }
  double as_double() const { return kind == Float ? f : double(i); }
};

// Calls f(T{}) with the C++ type of d.
template <class F>
decltype(auto) dispatch_dtype(DType d, F&& f) {
  switch (d) {
    case DType::Bool: return f(bool{});
    case DType::UInt8: return f(uint8_t{});
    case DType::Int64: return f(int64_t{});
    case DType::Float32: return f(float{});
    default: return f(double{});
  }
}

// Calls f(T{}) with float or double: kernels that exist for the floating types only.
template <class F>
void float_dispatch(DType dt, F&& f) {
  if (dt == DType::Float64)
    f(double{});
  else
    f(float{});
}

}  // namespace fk
