// The CUDA kernels of the elementwise ops, fills, reductions and row softmax. Each op has the
// CPU kernels' semantics (csrc/cpu/kernels.cpp, nn.cpp) element for element: the test suite
// checks every op on the device against the CPU.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cuda_util.h"

namespace fk {
namespace {

// ---- the elementwise driver: f(offsets) for every item of a geometry -------------------

// One dim (contiguous operands, or ones broadcast from a single element) and under 2^30 items:
// 32-bit index math, and four items per thread per round, a grid apart, so every load
// instruction of a warp stays coalesced while four are in flight.
template <int N, class F>
__global__ void walk_1d(int32_t n, Geometry<N> g, F f) {
  int32_t st[N];
  for (int k = 0; k < N; k++) st[k] = g.nd ? int32_t(g.stride[k][0]) : 0;
  const int32_t step = int32_t(gridDim.x * blockDim.x);
  int32_t i = int32_t(blockIdx.x * blockDim.x + threadIdx.x);
  int64_t off[N];
  for (; i < n - 3 * step; i += 4 * step) {
#pragma unroll
    for (int u = 0; u < 4; u++) {
      for (int k = 0; k < N; k++) off[k] = int64_t(i + u * step) * st[k];
      f(off);
    }
  }
  for (; i < n; i += step) {
    for (int k = 0; k < N; k++) off[k] = int64_t(i) * st[k];
    f(off);
  }
}

template <int N, class F>
__global__ void walk_nd(int64_t n, Geometry<N> g, F f) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    g.offsets(i, off);
    f(off);
  }
}

template <int N, class F>
void walk(const char* op, const Dims& shape, std::initializer_list<const Dims*> strides, F f) {
  const int64_t n = shape.prod();
  if (n == 0) return;
  const Geometry<N> g = make_geometry<N>(shape, strides.begin());
  bool small = n < (int64_t(1) << 30);  // (so i + 4 * step stays under 2^31)
  for (int k = 0; k < N && g.nd == 1; k++) small = small && g.stride[k][0] <= 1;
  if (g.nd <= 1 && small)
    FK_LAUNCH((walk_1d<N, F>), blocks_for((n + 3) / 4), kThreads, 0, cuda_stream())(int32_t(n), g, f);
  else
    FK_LAUNCH((walk_nd<N, F>), blocks_for(n), kThreads, 0, cuda_stream())(n, g, f);
  cuda_launched(op);
}

// Contiguous operands with 16-byte aligned pointers: each thread reads and writes 16 bytes of
// every operand per access (F::vec(v): the kVec items from v * kVec); F::one(i) does the tail.
template <class F>
__global__ void walk_vec(int64_t n, F f) {
  const int64_t nv = n / F::kVec, step = int64_t(gridDim.x) * blockDim.x;
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (int64_t v = t; v < nv; v += step) f.vec(v);
  for (int64_t i = nv * F::kVec + t; i < n; i += step) f.one(i);
}

// Elementwise over (shape, strides), through walk_vec when every operand is contiguous and
// aligned (the pointers of the operands in `ptrs`).
template <int N, class F>
void walk_fast(const char* op, const Dims& shape, std::initializer_list<const Dims*> strides,
               std::initializer_list<const void*> ptrs, F f) {
  const int64_t n = shape.prod();
  const Geometry<N> g = make_geometry<N>(shape, strides.begin());
  bool vec = g.nd == 1 && n >= F::kVec;
  for (int k = 0; k < N && vec; k++) vec = g.stride[k][0] == 1;
  for (const void* p : ptrs) vec = vec && reinterpret_cast<uintptr_t>(p) % 16 == 0;
  if (!vec) return walk<N>(op, shape, strides, f);
  FK_LAUNCH(walk_vec<F>, blocks_for((n + F::kVec - 1) / F::kVec), kThreads, 0, cuda_stream())(n, f);
  cuda_launched(op);
}

// 16 bytes at p[v] into the array `to` (and back): through memcpy, so no type is read as another.
template <class T>
__device__ __forceinline__ void load16(const T* p, int64_t v, T* to) {
  const uint4 w = reinterpret_cast<const uint4*>(p)[v];
  memcpy(to, &w, 16);
}
template <class T, int K>
__device__ __forceinline__ void store_items(T* p, int64_t v, const T (&from)[K]) {
  if constexpr (sizeof(from) == 16) {
    uint4 w;
    memcpy(&w, from, 16);
    reinterpret_cast<uint4*>(p)[v] = w;
  } else {
    memcpy(p + v * K, from, sizeof(from));  // bool results of wider operands: fewer bytes
  }
}

template <class F>
decltype(auto) dispatch(DType d, F&& f) {
  return dispatch_dtype(d, std::forward<F>(f));
}

// ---- binary ops ----------------------------------------------------------------

constexpr bool comparison(BinOp op) { return op >= BinOp::Eq && op <= BinOp::Ge; }

// Python's floor division and modulo for floats (the result takes the divisor's sign).
template <class T>
__device__ T float_floordiv(T a, T b) {
  if (b == 0) return a / b;
  const T mod = std::fmod(a, b);
  T div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;
  if (div == 0) return std::copysign(T(0), a / b);
  T fl = std::floor(div);
  if (div - fl > T(0.5)) fl += 1;
  return fl;
}

template <class T>
__device__ T float_rem(T a, T b) {
  T mod = std::fmod(a, b);
  if (mod != 0 && ((b < 0) != (mod < 0))) mod += b;
  return mod;
}

// One binary op on one element; integer errors set *status (a KernelStatus).
template <BinOp OP, class T>
__device__ __forceinline__ auto binary_op(T x, T y, int* status) {
  constexpr bool fp = std::is_floating_point_v<T>;
  if constexpr (OP == BinOp::Add)
    return T(x + y);
  else if constexpr (OP == BinOp::Sub)
    return T(x - y);
  else if constexpr (OP == BinOp::Mul)
    return T(x * y);
  else if constexpr (OP == BinOp::Max)
    return (x > y || x != x) ? x : y;
  else if constexpr (OP == BinOp::Min)
    return (x < y || x != x) ? x : y;
  else if constexpr (OP == BinOp::Eq)
    return x == y;
  else if constexpr (OP == BinOp::Ne)
    return x != y;
  else if constexpr (OP == BinOp::Lt)
    return x < y;
  else if constexpr (OP == BinOp::Le)
    return x <= y;
  else if constexpr (OP == BinOp::Gt)
    return x > y;
  else if constexpr (OP == BinOp::Ge)
    return x >= y;
  else if constexpr (OP == BinOp::Div) {
    if constexpr (fp)
      return x / y;
    else
      return T(0);  // core divides integers as floats
  } else if constexpr (OP == BinOp::Atan2) {
    if constexpr (fp)
      return std::atan2(x, y);
    else
      return T(0);  // core computes it in float
  } else if constexpr (OP == BinOp::Pow) {
    if constexpr (fp) {
      return y == T(2) ? x * x : y == T(0.5) ? std::sqrt(x) : T(std::pow(x, y));  // PyTorch's sqrt: (-inf)^0.5 is NaN
    } else {
      if constexpr (std::is_signed_v<T>) {
        if (y < 0) {
          *status = kNegativeIntPower;
          return T(0);
        }
      }
      uint64_t r = 1, base = uint64_t(x), e = uint64_t(y);  // unsigned: wraps like PyTorch, no UB
      while (e) {
        if (e & 1) r *= base;
        base *= base;
        e >>= 1;
      }
      return T(r);
    }
  } else if constexpr (OP == BinOp::FloorDiv) {
    if constexpr (fp) {
      return float_floordiv(x, y);
    } else {
      if (y == 0) {
        *status = kDivByZero;
        return T(0);
      }
      if constexpr (std::is_signed_v<T>) {
        if (y == T(-1)) return T(0 - uint64_t(x));  // INT64_MIN / -1 wraps
        T q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0))) q -= 1;
        return q;
      } else {
        return T(x / y);
      }
    }
  } else if constexpr (OP == BinOp::Rem) {
    if constexpr (fp) {
      return float_rem(x, y);
    } else {
      if (y == 0) {
        *status = kDivByZero;
        return T(0);
      }
      if constexpr (std::is_signed_v<T>) {
        if (y == T(-1)) return T(0);
        T r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return r;
      } else {
        return T(x % y);
      }
    }
  } else if constexpr (OP == BinOp::And) {
    if constexpr (fp)
      return T(0);
    else
      return T(x & y);
  } else if constexpr (OP == BinOp::Or) {
    if constexpr (fp)
      return T(0);
    else
      return T(x | y);
  } else if constexpr (OP == BinOp::Xor) {
    if constexpr (fp)
      return T(0);
    else
      return T(x ^ y);
  } else {
    static_assert(OP == BinOp::ReluGrad);
    return x > T(0) ? y : T(0);  // relu's backward in one pass: y > 0 ? g : 0
  }
}

template <BinOp OP, class T>
struct BinaryF {
  using O = std::conditional_t<comparison(OP), bool, T>;
  O* o;
  const T* a;
  const T* b;
  int* status;
  static constexpr int kVec = 16 / int(sizeof(T));
  __device__ void operator()(const int64_t* off) const { o[off[0]] = O(binary_op<OP>(a[off[1]], b[off[2]], status)); }
  __device__ void one(int64_t i) const { o[i] = O(binary_op<OP>(a[i], b[i], status)); }
  __device__ void vec(int64_t v) const {
    T x[kVec], y[kVec];
    O r[kVec];
    load16(a, v, x);
    load16(b, v, y);
#pragma unroll
    for (int k = 0; k < kVec; k++) r[k] = O(binary_op<OP>(x[k], y[k], status));
    store_items(o, v, r);
  }
};

// Integer ops that can fail report through one int in device memory, read back after the op.
struct StatusFlag {
  Ref<Storage> mem = cuda_alloc(sizeof(int));
  int* get() {
    FK_CUDA(cudaMemsetAsync(mem->data, 0, sizeof(int), cuda_stream()));
    return static_cast<int*>(mem->data);
  }
  int read() {
    int s = 0;
    FK_CUDA(cudaMemcpyAsync(&s, mem->data, sizeof(int), cudaMemcpyDeviceToHost, cuda_stream()));
    FK_CUDA(cudaStreamSynchronize(cuda_stream()));
    return s;
  }
};

// int64 + - * (and negation, sums, products) wrap around, as PyTorch's: computed in uint64,
// where C++ defines wrapping, giving the same two's-complement bits.
template <class T, bool Wrapping>
using Wrapped = std::conditional_t<Wrapping && std::is_same_v<T, int64_t>, uint64_t, T>;

template <BinOp OP>
int binary_as(const Tensor& out, const Tensor& a, const Dims& sa, const Tensor& b, const Dims& sb) {
  return dispatch(a.dtype(), [&](auto z) -> int {
    using T = Wrapped<decltype(z), OP == BinOp::Add || OP == BinOp::Sub || OP == BinOp::Mul>;
    using F = BinaryF<OP, T>;
    const Dims so = out.strides();
    constexpr bool can_fail =
        !std::is_floating_point_v<T> && (OP == BinOp::Pow || OP == BinOp::FloorDiv || OP == BinOp::Rem);
    const std::initializer_list<const void*> ptrs = {out.raw(), a.raw(), b.raw()};
    if constexpr (can_fail) {
      StatusFlag flag;
      walk_fast<3>(kBinaryNames[int(OP)], out.shape(), {&so, &sa, &sb}, ptrs,
                   F{reinterpret_cast<typename F::O*>(out.raw()), a.data<T>(), b.data<T>(), flag.get()});
      return flag.read();
    } else {
      walk_fast<3>(kBinaryNames[int(OP)], out.shape(), {&so, &sa, &sb}, ptrs,
                   F{reinterpret_cast<typename F::O*>(out.raw()), a.data<T>(), b.data<T>(), nullptr});
      return kOk;
    }
  });
}

// ---- unary ops ---------------------------------------------------------------------

template <UnOp OP, class T>
__device__ __forceinline__ T unary_op(T x) {
  constexpr bool fp = std::is_floating_point_v<T>;
  if constexpr (OP == UnOp::Neg)
    return T(-x);
  else if constexpr (OP == UnOp::Abs) {
    if constexpr (fp)
      return std::fabs(x);  // clears the sign of -0.0 too
    else if constexpr (std::is_signed_v<T>)
      return T(x < 0 ? T(0 - uint64_t(x)) : x);  // abs(INT64_MIN) wraps
    else
      return x;
  } else if constexpr (OP == UnOp::Relu)
    return x > T(0) ? x : (x != x ? x : T(0));
  else if constexpr (OP == UnOp::Sign) {
    if constexpr (std::is_signed_v<T>)
      return T((T(0) < x) - (x < T(0)));
    else
      return T(T(0) < x);
  } else if constexpr (OP == UnOp::Not) {
    if constexpr (std::is_same_v<T, bool>)
      return !x;
    else if constexpr (fp)
      return x;  // core refuses it for floats
    else
      return T(~x);
  } else if constexpr (!fp) {
    return x;  // rounding an integer is the identity; the float-only ops never get one
  } else if constexpr (OP == UnOp::Exp)
    return std::exp(x);
  else if constexpr (OP == UnOp::Log)
    return std::log(x);
  else if constexpr (OP == UnOp::Sqrt)
    return std::sqrt(x);
  else if constexpr (OP == UnOp::Rsqrt)
    return T(1) / std::sqrt(x);
  else if constexpr (OP == UnOp::Sin)
    return std::sin(x);
  else if constexpr (OP == UnOp::Cos)
    return std::cos(x);
  else if constexpr (OP == UnOp::Tanh)
    return std::tanh(x);
  else if constexpr (OP == UnOp::Sigmoid)
    return T(1) / (T(1) + std::exp(-x));
  else if constexpr (OP == UnOp::Floor)
    return std::floor(x);
  else if constexpr (OP == UnOp::Ceil)
    return std::ceil(x);
  else if constexpr (OP == UnOp::Round)
    return std::rint(x);  // half to even, as nearbyint
  else if constexpr (OP == UnOp::Trunc)
    return std::trunc(x);
  else if constexpr (OP == UnOp::Erf)
    return std::erf(x);
  else if constexpr (OP == UnOp::Asin)
    return std::asin(x);
  else if constexpr (OP == UnOp::Acos)
    return std::acos(x);
  else {
    static_assert(OP == UnOp::Atan);
    return std::atan(x);
  }
}

template <UnOp OP, class T>
struct UnaryF {
  T* o;
  const T* a;
  static constexpr int kVec = 16 / int(sizeof(T));
  __device__ void operator()(const int64_t* off) const { o[off[0]] = unary_op<OP>(a[off[1]]); }
  __device__ void one(int64_t i) const { o[i] = unary_op<OP>(a[i]); }
  __device__ void vec(int64_t v) const {
    T x[kVec], r[kVec];
    load16(a, v, x);
#pragma unroll
    for (int k = 0; k < kVec; k++) r[k] = unary_op<OP>(x[k]);
    store_items(o, v, r);
  }
};

template <UnOp OP>
void unary_as(const Tensor& out, const Tensor& a, const Dims& sa) {
  dispatch(a.dtype(), [&](auto z) {
    using T = Wrapped<decltype(z), OP == UnOp::Neg>;
    const Dims so = out.strides();
    walk_fast<2>(kUnaryNames[int(OP)], out.shape(), {&so, &sa}, {out.raw(), a.raw()},
                 UnaryF<OP, T>{out.data<T>(), a.data<T>()});
  });
}

// ---- casts, clamp, where ---------------------------------------------------------------

// Float to integer without undefined behaviour: NaN and out-of-range values give the smallest
// integer, as the CPU's x86 conversions do.
template <class To, class From>
__device__ __forceinline__ To convert(From x) {
  if constexpr (std::is_same_v<To, bool>) {
    return x != From(0);
  } else if constexpr (std::is_floating_point_v<From> && !std::is_floating_point_v<To>) {
    const bool ok = x > From(-9.2233720368547758e18) && x < From(9.2233720368547758e18);
    return To(ok ? int64_t(x) : INT64_MIN);
  } else {
    return To(x);
  }
}

template <class To, class From>
struct CastF {
  To* o;
  const From* a;
  __device__ void operator()(const int64_t* off) const { o[off[0]] = convert<To, From>(a[off[1]]); }
};

template <class T>
struct ClampF {
  T* o;
  const T* a;
  T lo, hi;
  __device__ void operator()(const int64_t* off) const {
    const T x = a[off[1]];
    if constexpr (std::is_floating_point_v<T>) {  // a NaN input or bound gives NaN; lo > hi gives hi
      const T y = x < lo || lo != lo ? lo : x;
      o[off[0]] = y > hi || hi != hi ? hi : y;
    } else {
      const T y = x < lo ? lo : x;
      o[off[0]] = y > hi ? hi : y;
    }
  }
};

template <class T>
struct WhereF {
  T* o;
  const bool* c;
  const T* a;
  const T* b;
  __device__ void operator()(const int64_t* off) const { o[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]]; }
};

// ---- fills ---------------------------------------------------------------------------

template <class T>
struct FillF {
  T* o;
  T v;
  __device__ void operator()(const int64_t* off) const { o[off[0]] = v; }
};

// out[i] = start + i*step, or evenly from start to exactly end (filled from both ends).
template <class T>
struct RampF {
  T* o;
  double start, step, end;
  int64_t n;
  bool both_ends;
  __device__ void operator()(const int64_t* off) const {
    const int64_t i = off[0];
    const double v = !both_ends  ? start + double(i) * step
                     : n == 1    ? start
                     : i < n / 2 ? start + double(i) * step
                                 : end - double(n - 1 - i) * step;
    o[i] = T(v);
  }
};

template <class T>
void ramp(const Tensor& out, double start, double step, double end, bool both_ends) {
  const Dims s = contiguous_strides(out.shape());
  walk<1>(both_ends ? "linspace" : "arange", out.shape(), {&s},
          RampF<T>{out.data<T>(), start, step, end, out.numel(), both_ends});
}

}  // namespace

// ---- the backend's entry points --------------------------------------------------------

int cuda_binary(BinOp op, const Tensor& out, const Tensor& a, const Dims& sa, const Tensor& b, const Dims& sb) {
  switch (op) {
#define FK_CASE(e, name) \
  case BinOp::e: return binary_as<BinOp::e>(out, a, sa, b, sb);
    FK_BINARY_OPS(FK_CASE)
#undef FK_CASE
  }
  return kOk;
}

void cuda_unary(UnOp op, const Tensor& out, const Tensor& a, const Dims& sa) {
  switch (op) {
#define FK_CASE(e, name) \
  case UnOp::e: return unary_as<UnOp::e>(out, a, sa);
    FK_UNARY_OPS(FK_CASE)
#undef FK_CASE
  }
}

void cuda_cast(const Tensor& out, const Tensor& a, const Dims& sa) {
  const Dims so = out.strides();
  dispatch(out.dtype(), [&](auto o) {
    dispatch(a.dtype(), [&](auto f) {
      using To = decltype(o);
      using From = decltype(f);
      walk<2>("to", out.shape(), {&so, &sa}, CastF<To, From>{out.data<To>(), a.data<From>()});
    });
  });
}

void cuda_clamp(const Tensor& out, const Tensor& a, double lo, double hi) {
  const Dims so = out.strides(), sa = a.strides();
  dispatch(a.dtype(), [&](auto z) {
    using T = decltype(z);
    T l, h;
    if constexpr (std::is_floating_point_v<T>) {
      l = T(lo);
      h = T(hi);
    } else {
      // Integer bounds convert as PyTorch's scalars do (uint8 -1 is 255); infinite ones are no bound.
      using L = std::numeric_limits<T>;
      l = std::abs(lo) < 9.2e18 ? T(int64_t(lo)) : L::min();
      h = std::abs(hi) < 9.2e18 ? T(int64_t(hi)) : L::max();
    }
    walk<2>("clamp", out.shape(), {&so, &sa}, ClampF<T>{out.data<T>(), a.data<T>(), l, h});
  });
}

void cuda_where(const Tensor& out, const Tensor& cond, const Dims& sc, const Tensor& a, const Dims& sa, const Tensor& b,
                const Dims& sb) {
  const Dims so = out.strides();
  dispatch(out.dtype(), [&](auto z) {
    using T = decltype(z);
    walk<4>("where", out.shape(), {&so, &sc, &sa, &sb},
            WhereF<T>{out.data<T>(), cond.data<bool>(), a.data<T>(), b.data<T>()});
  });
}

void cuda_fill(const Tensor& out, Scalar value) {
  const Dims s = contiguous_strides(out.shape());
  dispatch(out.dtype(), [&](auto z) {
    using T = decltype(z);
    const T v = value.kind == Scalar::Float ? T(value.f) : T(value.i);
    walk<1>("fill", out.shape(), {&s}, FillF<T>{out.data<T>(), v});
  });
}

void cuda_arange(const Tensor& out, double start, double step) {
  dispatch(out.dtype(), [&](auto z) { ramp<decltype(z)>(out, start, step, 0, false); });
}

void cuda_linspace(const Tensor& out, double start, double end) {
  const int64_t n = out.numel();
  const double step = n > 1 ? (end - start) / double(n - 1) : 0;
  dispatch(out.dtype(), [&](auto z) { ramp<decltype(z)>(out, start, step, end, true); });
}

}  // namespace fk
