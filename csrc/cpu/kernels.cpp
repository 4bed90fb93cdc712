// CPU kernels, compiled once per instruction set with FK_ISA naming the namespace.
// Plain loops over contiguous runs that the compiler vectorises for the flags of
// this translation unit; float32 transcendentals use branch-free code below so
// they vectorise too (libm calls would not).
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels.h"
#include "simd_math.h"
#include "vec.h"

#ifndef FK_ISA
#error "FK_ISA must name the instruction set this file is compiled for"
#endif

namespace fk::FK_ISA {
namespace {

// ---- elementwise loops ----------------------------------------------------

// The contiguous and scalar-broadcast cases get their own loops so they vectorise.
template <class O, class A, class B, class F>
FK_INLINE void loop2(int64_t n, O* o, int64_t so, const A* a, int64_t sa, const B* b, int64_t sb, F f) {
  if (so == 1 && sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = f(a[i], b[i]);
  } else if (so == 1 && sa == 1 && sb == 0) {
    const B bv = *b;
    for (int64_t i = 0; i < n; i++) o[i] = f(a[i], bv);
  } else if (so == 1 && sa == 0 && sb == 1) {
    const A av = *a;
    for (int64_t i = 0; i < n; i++) o[i] = f(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; i++) o[i * so] = f(a[i * sa], b[i * sb]);
  }
}

template <class O, class A, class F>
FK_INLINE void loop1(int64_t n, O* o, int64_t so, const A* a, int64_t sa, F f) {
  if (so == 1 && sa == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = f(a[i]);
  } else if (so == 1 && sa == 0) {
    const O v = f(*a);
    for (int64_t i = 0; i < n; i++) o[i] = v;
  } else {
    for (int64_t i = 0; i < n; i++) o[i * so] = f(a[i * sa]);
  }
}

// Python's floor division and modulo for floats (result takes the divisor's sign).
template <class T>
T float_floordiv(T a, T b) {
  if (b == 0) return a / b;
  T mod = std::fmod(a, b);
  T div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;
  if (div == 0) return std::copysign(T(0), a / b);
  T fl = std::floor(div);
  if (div - fl > T(0.5)) fl += 1;
  return fl;
}
template <class T>
T float_rem(T a, T b) {
  T mod = std::fmod(a, b);
  if (mod != 0 && ((b < 0) != (mod < 0))) mod += b;
  return mod;
}

template <class T>
int binary_t(BinOp op, int64_t n, void* out, int64_t so, const void* av, int64_t sa, const void* bv, int64_t sb) {
  T* o = static_cast<T*>(out);
  const T* a = static_cast<const T*>(av);
  const T* b = static_cast<const T*>(bv);
  bool* ob = static_cast<bool*>(out);
  constexpr bool fp = std::is_floating_point_v<T>;
  int status = kOk;
  switch (op) {
    case BinOp::Add: loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return T(x + y); }); break;
    case BinOp::Sub: loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return T(x - y); }); break;
    case BinOp::Mul: loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return T(x * y); }); break;
    case BinOp::Max: loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return (x > y || x != x) ? x : y; }); break;
    case BinOp::Min: loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return (x < y || x != x) ? x : y; }); break;
    case BinOp::Eq: loop2(n, ob, so, a, sa, b, sb, [](T x, T y) { return x == y; }); break;
    case BinOp::Ne: loop2(n, ob, so, a, sa, b, sb, [](T x, T y) { return x != y; }); break;
    case BinOp::Lt: loop2(n, ob, so, a, sa, b, sb, [](T x, T y) { return x < y; }); break;
    case BinOp::Le: loop2(n, ob, so, a, sa, b, sb, [](T x, T y) { return x <= y; }); break;
    case BinOp::Gt: loop2(n, ob, so, a, sa, b, sb, [](T x, T y) { return x > y; }); break;
    case BinOp::Ge: loop2(n, ob, so, a, sa, b, sb, [](T x, T y) { return x >= y; }); break;
    case BinOp::Div:
      if constexpr (fp) loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return x / y; });
      break;
    case BinOp::Atan2:
      if constexpr (fp) loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return std::atan2(x, y); });
      break;
    case BinOp::Pow:
      if constexpr (fp) {
        loop2(n, o, so, a, sa, b, sb, [](T x, T y) {
          return y == T(2)     ? x * x
                 : y == T(0.5) ? std::sqrt(x)
                               : T(std::pow(x, y));  // PyTorch's sqrt: (-inf)^0.5 is NaN
        });
      } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, uint8_t>) {
        loop2(n, o, so, a, sa, b, sb, [&](T x, T y) {
          if (std::is_signed_v<T> && y < 0) {
            status = kNegativeIntPower;
            return T(0);
          }
          uint64_t r = 1, base = uint64_t(x), e = uint64_t(y);  // unsigned: wraps like PyTorch, no UB
          while (e) {
            if (e & 1) r *= base;
            base *= base;
            e >>= 1;
          }
          return T(r);
        });
      }
      break;
    case BinOp::FloorDiv:
      if constexpr (fp) {
        loop2(n, o, so, a, sa, b, sb, float_floordiv<T>);
      } else if constexpr (!std::is_same_v<T, bool>) {
        loop2(n, o, so, a, sa, b, sb, [&](T x, T y) {
          if (y == 0) {
            status = kDivByZero;
            return T(0);
          }
          if (std::is_signed_v<T> && y == T(-1)) return T(0 - uint64_t(x));  // INT64_MIN / -1 wraps
          T q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) q -= 1;
          return q;
        });
      }
      break;
    case BinOp::Rem:
      if constexpr (fp) {
        loop2(n, o, so, a, sa, b, sb, float_rem<T>);
      } else if constexpr (!std::is_same_v<T, bool>) {
        loop2(n, o, so, a, sa, b, sb, [&](T x, T y) {
          if (y == 0) {
            status = kDivByZero;
            return T(0);
          }
          if (std::is_signed_v<T> && y == T(-1)) return T(0);
          T r = x % y;
          if (r != 0 && ((r < 0) != (y < 0))) r += y;
          return r;
        });
      }
      break;
    case BinOp::And:
      if constexpr (!fp) loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return T(x & y); });
      break;
    case BinOp::Or:
      if constexpr (!fp) loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return T(x | y); });
      break;
    case BinOp::Xor:
      if constexpr (!fp) loop2(n, o, so, a, sa, b, sb, [](T x, T y) { return T(x ^ y); });
      break;
    case BinOp::ReluGrad:  // relu's backward in one pass: y > 0 ? g : 0
      loop2(n, o, so, a, sa, b, sb, [](T y, T g) { return y > T(0) ? g : T(0); });
      break;
  }
  return status;
}

// int64 + - * and sums and products wrap around, as PyTorch's: computed in uint64, where C++
// defines wrapping (signed overflow is undefined behaviour), giving the same two's-complement bits.
bool wraps(DType dt, BinOp op) {
  return dt == DType::Int64 && (op == BinOp::Add || op == BinOp::Sub || op == BinOp::Mul);
}
bool wraps(DType dt, RedOp op) { return dt == DType::Int64 && (op == RedOp::Sum || op == RedOp::Prod); }

int binary(BinOp op, DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa, const void* b, int64_t sb) {
  if (wraps(dt, op)) return binary_t<uint64_t>(op, n, out, so, a, sa, b, sb);
  return dispatch_dtype(dt, [&](auto t) { return binary_t<decltype(t)>(op, n, out, so, a, sa, b, sb); });
}

template <class T>
void unary_t(UnOp op, int64_t n, void* out, int64_t so, const void* av, int64_t sa) {
  T* o = static_cast<T*>(out);
  const T* a = static_cast<const T*>(av);
  constexpr bool fp = std::is_floating_point_v<T>;
  switch (op) {
    case UnOp::Neg: loop1(n, o, so, a, sa, [](T x) { return T(-x); }); break;
    case UnOp::Abs:
      loop1(n, o, so, a, sa, [](T x) {
        if constexpr (fp)
          return std::fabs(x);  // clears the sign of -0.0 too
        else if constexpr (std::is_signed_v<T>)
          return T(x < 0 ? T(0 - uint64_t(x)) : x);  // abs(INT64_MIN) wraps
        else
          return x;
      });
      break;
    case UnOp::Relu: loop1(n, o, so, a, sa, [](T x) { return x > T(0) ? x : (x != x ? x : T(0)); }); break;
    case UnOp::Sign: loop1(n, o, so, a, sa, [](T x) { return T((T(0) < x) - (x < T(0))); }); break;
    case UnOp::Not:
      if constexpr (std::is_same_v<T, bool>)
        loop1(n, o, so, a, sa, [](T x) { return !x; });
      else if constexpr (!fp)
        loop1(n, o, so, a, sa, [](T x) { return T(~x); });
      break;
    default:
      if constexpr (fp) {
        switch (op) {
          case UnOp::Exp: loop1(n, o, so, a, sa, exp_<T>); break;
          case UnOp::Log: loop1(n, o, so, a, sa, log_<T>); break;
          case UnOp::Sqrt: loop1(n, o, so, a, sa, [](T x) { return std::sqrt(x); }); break;
          case UnOp::Rsqrt: loop1(n, o, so, a, sa, [](T x) { return T(1) / std::sqrt(x); }); break;
          case UnOp::Sin: loop1(n, o, so, a, sa, [](T x) { return std::sin(x); }); break;
          case UnOp::Cos: loop1(n, o, so, a, sa, [](T x) { return std::cos(x); }); break;
          case UnOp::Tanh: loop1(n, o, so, a, sa, tanh_<T>); break;
          case UnOp::Sigmoid: loop1(n, o, so, a, sa, sigmoid_<T>); break;
          case UnOp::Floor: loop1(n, o, so, a, sa, [](T x) { return std::floor(x); }); break;
          case UnOp::Ceil: loop1(n, o, so, a, sa, [](T x) { return std::ceil(x); }); break;
          case UnOp::Round: loop1(n, o, so, a, sa, [](T x) { return std::nearbyint(x); }); break;
          case UnOp::Trunc: loop1(n, o, so, a, sa, [](T x) { return std::trunc(x); }); break;
          case UnOp::Erf: loop1(n, o, so, a, sa, [](T x) { return std::erf(x); }); break;
          case UnOp::Asin: loop1(n, o, so, a, sa, [](T x) { return std::asin(x); }); break;
          case UnOp::Acos: loop1(n, o, so, a, sa, [](T x) { return std::acos(x); }); break;
          case UnOp::Atan: loop1(n, o, so, a, sa, [](T x) { return std::atan(x); }); break;
          default: break;
        }
      } else {  // rounding an integer is the identity
        loop1(n, o, so, a, sa, [](T x) { return x; });
      }
  }
}

void unary(UnOp op, DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa) {
  if (dt == DType::Int64 && op == UnOp::Neg) return unary_t<uint64_t>(op, n, out, so, a, sa);  // -INT64_MIN wraps
  dispatch_dtype(dt, [&](auto t) { unary_t<decltype(t)>(op, n, out, so, a, sa); });
}

// Float to integer without undefined behaviour: NaN and out-of-range values give
// the smallest integer, as x86 conversions do.
template <class To, class From>
FK_INLINE To convert(From x) {
  if constexpr (std::is_same_v<To, bool>) {
    return x != From(0);
  } else if constexpr (std::is_floating_point_v<From> && !std::is_floating_point_v<To>) {
    const bool ok = x > From(-9.2233720368547758e18) && x < From(9.2233720368547758e18);
    return To(ok ? int64_t(x) : std::numeric_limits<int64_t>::min());
  } else {
    return To(x);
  }
}

void cast(DType to, DType from, int64_t n, void* out, int64_t so, const void* a, int64_t sa) {
  dispatch_dtype(to, [&](auto o) {
    using To = decltype(o);
    dispatch_dtype(from, [&](auto f) {
      using From = decltype(f);
      loop1(n, static_cast<To*>(out), so, static_cast<const From*>(a), sa, convert<To, From>);
    });
  });
}

void clamp(DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa, double lo, double hi) {
  dispatch_dtype(dt, [&](auto t) {
    using T = decltype(t);
    // min(max(x, lo), hi), as PyTorch: lo > hi gives hi, and a NaN input or bound gives NaN.
    if constexpr (std::is_floating_point_v<T>) {
      const T l = T(lo), h = T(hi);
      loop1(n, static_cast<T*>(out), so, static_cast<const T*>(a), sa, [=](T x) {
        const T y = x < l || l != l ? l : x;
        return y > h || h != h ? h : y;
      });
    } else {
      // Integer bounds convert to T as PyTorch's scalars do (uint8 -1 is 255); infinite ones are no bound.
      using L = std::numeric_limits<T>;
      auto bound = [](double v, T none) { return std::abs(v) < 9.2e18 ? T(int64_t(v)) : none; };
      const T l = bound(lo, L::min()), h = bound(hi, L::max());
      loop1(n, static_cast<T*>(out), so, static_cast<const T*>(a), sa, [=](T x) {
        const T y = x < l ? l : x;
        return y > h ? h : y;
      });
    }
  });
}

// ---- reductions -----------------------------------------------------------

// Blocked pairwise summation: lanes of independent accumulators inside a
// 1024-element block (vectorises), blocks combined by recursive halving. Error
// grows with log(n), and the split depends only on n, so results are reproducible.
template <class T>
T sum_block(const T* x, int64_t n) {
  constexpr int L = 32;
  T acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; j++) acc[j] += x[i + j];
  T tail = 0;
  for (; i < n; i++) tail += x[i];
  for (int w = L / 2; w > 0; w /= 2)
    for (int j = 0; j < w; j++) acc[j] += acc[j + w];
  return acc[0] + tail;
}

template <class T>
T sum_pairwise(const T* x, int64_t n) {
  constexpr int64_t B = 1024;
  if (n <= B) return sum_block(x, n);
  const int64_t half = ((n / B + 1) / 2) * B;
  return sum_pairwise(x, half) + sum_pairwise(x + half, n - half);
}

template <class T>
T prod_row(const T* x, int64_t n) {
  constexpr int L = 16;
  T acc[L];
  for (int j = 0; j < L; j++) acc[j] = T(1);
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; j++) acc[j] *= x[i + j];
  T r = T(1);
  for (int j = 0; j < L; j++) r *= acc[j];
  for (; i < n; i++) r *= x[i];
  return r;
}

// max/min propagate NaN, as PyTorch does.
template <class T, bool IsMax>
FK_INLINE T pick(T m, T x) {
  if constexpr (IsMax)
    return (x > m || x != x) ? x : m;
  else
    return (x < m || x != x) ? x : m;
}

template <class T, bool IsMax>
T extreme_row(const T* x, int64_t n) {
  constexpr int L = 16;
  if (n < L) {
    T m = x[0];
    for (int64_t i = 1; i < n; i++) m = pick<T, IsMax>(m, x[i]);
    return m;
  }
  T acc[L];
  for (int j = 0; j < L; j++) acc[j] = x[j];
  int64_t i = L;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; j++) acc[j] = pick<T, IsMax>(acc[j], x[i + j]);
  T m = acc[0];
  for (int j = 1; j < L; j++) m = pick<T, IsMax>(m, acc[j]);
  for (; i < n; i++) m = pick<T, IsMax>(m, x[i]);
  return m;
}

// Index of the first extreme value (first NaN, if any).
template <class T, bool IsMax>
int64_t arg_row(const T* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++) {
    if (x[best] != x[best]) break;
    if (IsMax ? (x[i] > x[best] || x[i] != x[i]) : (x[i] < x[best] || x[i] != x[i])) best = i;
  }
  return best;
}

template <class T>
void reduce_rows_t(RedOp op, int64_t rows, int64_t len, const T* in, int64_t rs, void* out) {
  for (int64_t r = 0; r < rows; r++) {
    const T* x = in + r * rs;
    switch (op) {
      case RedOp::Sum:
        if constexpr (!std::is_same_v<T, bool>) static_cast<T*>(out)[r] = sum_pairwise(x, len);
        break;
      case RedOp::Prod:
        if constexpr (!std::is_same_v<T, bool>) static_cast<T*>(out)[r] = prod_row(x, len);
        break;
      case RedOp::Max: static_cast<T*>(out)[r] = extreme_row<T, true>(x, len); break;
      case RedOp::Min: static_cast<T*>(out)[r] = extreme_row<T, false>(x, len); break;
      case RedOp::ArgMax: static_cast<int64_t*>(out)[r] = arg_row<T, true>(x, len); break;
      case RedOp::ArgMin: static_cast<int64_t*>(out)[r] = arg_row<T, false>(x, len); break;
      case RedOp::All:
      case RedOp::Any: {
        // Inputs are bool here: count the set bytes, which vectorises.
        int64_t c = 0;
        for (int64_t i = 0; i < len; i++) c += x[i] != T(0);
        static_cast<bool*>(out)[r] = op == RedOp::All ? c == len : c != 0;
        break;
      }
    }
  }
}

void reduce_rows(RedOp op, DType dt, int64_t rows, int64_t len, const void* in, int64_t rs, void* out) {
  if (wraps(dt, op)) return reduce_rows_t(op, rows, len, static_cast<const uint64_t*>(in), rs, out);
  dispatch_dtype(dt, [&](auto t) { reduce_rows_t(op, rows, len, static_cast<const decltype(t)*>(in), rs, out); });
}

template <class T, class F>
FK_INLINE void fold_cols(int64_t len, int64_t cols, const T* in, int64_t stride, T* out, F f) {
  for (int64_t r = 1; r < len; r++) {
    const T* x = in + r * stride;
    for (int64_t c = 0; c < cols; c++) out[c] = f(out[c], x[c]);
  }
}

template <class T>
void reduce_cols_t(RedOp op, int64_t len, int64_t cols, const T* in, int64_t stride, void* outv) {
  T* out = static_cast<T*>(outv);
  if (op == RedOp::ArgMax || op == RedOp::ArgMin) {
    int64_t* idx = static_cast<int64_t*>(outv);
    for (int64_t c = 0; c < cols; c++) {
      int64_t best = 0;
      for (int64_t r = 1; r < len; r++) {
        const T b = in[best * stride + c], x = in[r * stride + c];
        if (b != b) break;
        if (op == RedOp::ArgMax ? (x > b || x != x) : (x < b || x != x)) best = r;
      }
      idx[c] = best;
    }
    return;
  }
  if (len == 0) return;  // callers fill empty reductions themselves
  std::memcpy(out, in, cols * sizeof(T));
  switch (op) {
    case RedOp::Sum:
      if constexpr (!std::is_same_v<T, bool>) {
        // Two levels (blocks of 64 rows, then the block sums) bound the rounding error.
        constexpr int64_t B = 64;
        if (len <= B) {
          fold_cols(len, cols, in, stride, out, [](T a, T b) { return T(a + b); });
        } else {
          T* part = new T[cols];
          fold_cols(B, cols, in, stride, out, [](T a, T b) { return T(a + b); });
          for (int64_t r0 = B; r0 < len; r0 += B) {
            const int64_t n = len - r0 < B ? len - r0 : B;
            std::memcpy(part, in + r0 * stride, cols * sizeof(T));
            fold_cols(n, cols, in + r0 * stride, stride, part, [](T a, T b) { return T(a + b); });
            for (int64_t c = 0; c < cols; c++) out[c] += part[c];
          }
          delete[] part;
        }
      }
      break;
    case RedOp::Prod:
      if constexpr (!std::is_same_v<T, bool>) fold_cols(len, cols, in, stride, out, [](T a, T b) { return T(a * b); });
      break;
    case RedOp::Max: fold_cols(len, cols, in, stride, out, pick<T, true>); break;
    case RedOp::Min: fold_cols(len, cols, in, stride, out, pick<T, false>); break;
    case RedOp::All: fold_cols(len, cols, in, stride, out, [](T a, T b) { return T(a && b); }); break;
    case RedOp::Any: fold_cols(len, cols, in, stride, out, [](T a, T b) { return T(a || b); }); break;
    default: break;
  }
}

void reduce_cols(RedOp op, DType dt, int64_t len, int64_t cols, const void* in, int64_t stride, void* out) {
  if (wraps(dt, op)) return reduce_cols_t(op, len, cols, static_cast<const uint64_t*>(in), stride, out);
  dispatch_dtype(dt, [&](auto t) { reduce_cols_t(op, len, cols, static_cast<const decltype(t)*>(in), stride, out); });
}

// ---- matrix multiply ------------------------------------------------------

// Cache-blocked i-k-j loop: the inner j loop streams a row of B and C and
// vectorises. The fast packed GEMM is separate work; this is the reference path.
template <class T>
void gemm_t(int64_t M, int64_t N, int64_t K, const T* A, const T* B, T* C) {
  constexpr int64_t KB = 256, NB = 1024;
  for (int64_t i = 0; i < M * N; i++) C[i] = T(0);
  for (int64_t j0 = 0; j0 < N; j0 += NB) {
    const int64_t nj = N - j0 < NB ? N - j0 : NB;
    for (int64_t k0 = 0; k0 < K; k0 += KB) {
      const int64_t nk = K - k0 < KB ? K - k0 : KB;
      for (int64_t i = 0; i < M; i++) {
        T* c = C + i * N + j0;
        const T* a = A + i * K + k0;
        for (int64_t k = 0; k < nk; k++) {
          const T av = a[k];
          const T* b = B + (k0 + k) * N + j0;
          for (int64_t j = 0; j < nj; j++) c[j] += av * b[j];
        }
      }
    }
  }
}

void gemm(DType dt, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C) {
  dispatch_dtype(dt, [&](auto t) {
    using T = decltype(t);
    if constexpr (!std::is_same_v<T, bool>)
      gemm_t<T>(M, N, K, static_cast<const T*>(A), static_cast<const T*>(B), static_cast<T*>(C));
  });
}

// ---- optimizer updates ---------------------------------------------------------

template <class T>
void adam_t(int64_t n, T* p, const T* g, T* m, T* v, const AdamStep& h) {
  const T b1 = T(h.beta1), b2 = T(h.beta2), step_size = T(h.step_size), inv_bc2 = T(h.inv_bc2), eps = T(h.eps);
  const T wd = T(h.wd), shrink = T(h.shrink);
  for (int64_t i = 0; i < n; i++) {
    T gi = g[i], pi = p[i];
    if (h.decoupled)
      pi *= shrink;
    else
      gi += wd * pi;
    const T mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_bc2 + eps);
  }
}

void adam(DType dt, int64_t n, void* p, const void* g, void* m, void* v, const AdamStep& h) {
  if (dt == DType::Float64)
    adam_t(n, static_cast<double*>(p), static_cast<const double*>(g), static_cast<double*>(m), static_cast<double*>(v),
           h);
  else
    adam_t(n, static_cast<float*>(p), static_cast<const float*>(g), static_cast<float*>(m), static_cast<float*>(v), h);
}

void transpose(DType dt, int64_t rows, int64_t cols, const void* src, int64_t lds, void* dst, int64_t ldd) {
  if (dt == DType::Float32)
    return transpose_matrix(rows, cols, static_cast<const float*>(src), lds, static_cast<float*>(dst), ldd);
  transpose_matrix(rows, cols, static_cast<const double*>(src), lds, static_cast<double*>(dst), ldd);
}

}  // namespace

extern const NnKernels nn_kernels;                             // nn.cpp
extern const GemmMicroKernels gemm_micro_f32, gemm_micro_f64;  // gemm.cpp
extern const WinogradKernels winograd_kernels;                 // winograd.cpp

extern const CpuKernels kernels = {
#define FK_STR2(x) #x
#define FK_STR(x) FK_STR2(x)
    FK_STR(FK_ISA),
    binary,
    unary,
    cast,
    clamp,
    reduce_rows,
    reduce_cols,
    gemm,
    adam,
    transpose,
    &gemm_micro_f32,
    &gemm_micro_f64,
    &nn_kernels,
    &winograd_kernels,
};

}  // namespace fk::FK_ISA
