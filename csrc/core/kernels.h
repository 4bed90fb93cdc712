// The CPU kernel interface. kernels.cpp is compiled once per instruction set
// (AVX-512, AVX2+FMA, baseline) into its own namespace; `cpu_kernels()` picks
// the best table for this CPU once. Kernels see raw pointers, element counts and
// element strides only: no tensors, no autograd.
#pragma once
#include <cstdint>

#include "dtype.h"

namespace fk {

enum class BinOp : uint8_t { Add, Sub, Mul, Div, Pow, FloorDiv, Rem, Max, Min, Eq, Ne, Lt, Le, Gt, Ge, And, Or, Xor };
enum class UnOp : uint8_t { Neg, Abs, Exp, Log, Sqrt, Rsqrt, Sin, Cos, Tanh, Sigmoid, Relu, Sign, Floor, Ceil, Round, Trunc, Not };
enum class RedOp : uint8_t { Sum, Prod, Max, Min, ArgMax, ArgMin, All, Any };

inline bool is_comparison(BinOp op) { return op >= BinOp::Eq && op <= BinOp::Ge; }

// Status a kernel reports for integer inputs it cannot compute (never thrown from kernels).
enum KernelStatus : int { kOk = 0, kDivByZero = 1, kNegativeIntPower = 2 };

// A register-blocked GEMM micro-kernel: C[0:m, 0:n] = (or += when `accumulate`) the
// product of an m x kc block of A and a packed kc x NR panel of B, m <= MR, n <= NR.
// A(i, k) = A[i*rsa + k*csa] for i < m (a packed panel has rsa = 1, csa = MR); B is packed
// k-major, B(k, j) = Bp[k*NR + j], zero past n. C is row-major with row stride ldc; only
// its m x n corner is touched.
struct GemmMicroKernel {
  int mr, nr;
  void (*run)(int64_t kc, const void* A, int64_t rsa, int64_t csa, const void* Bp, void* C, int64_t ldc, int m, int n,
              bool accumulate);
};
// The micro-kernels of one dtype: `wide` for most products, `narrow` (a smaller NR) for
// products with few columns, where the wide one would mostly multiply zero padding.
struct GemmMicroKernels {
  GemmMicroKernel wide, narrow;
};

struct CpuKernels {
  const char* isa;
  // out[i*so] = op(a[i*sa], b[i*sb]) for i < n; a, b and out (bool for comparisons) of type `dt`.
  int (*binary)(BinOp op, DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa, const void* b,
                int64_t sb);
  void (*unary)(UnOp op, DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa);
  void (*cast)(DType to, DType from, int64_t n, void* out, int64_t so, const void* a, int64_t sa);
  void (*clamp)(DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa, double lo, double hi);
  // Row r (r < rows) is the `len` contiguous elements at in + r*row_stride; out[r] gets its reduction.
  void (*reduce_rows)(RedOp op, DType dt, int64_t rows, int64_t len, const void* in, int64_t row_stride, void* out);
  // out[c] = reduction over r < len of in[r*stride + c], for c < cols (columns contiguous).
  void (*reduce_cols)(RedOp op, DType dt, int64_t len, int64_t cols, const void* in, int64_t stride, void* out);
  // Reference GEMM (naive loops, any dtype but bool): C[M,N] = A[M,K] @ B[K,N], all
  // row-major and contiguous. The packed driver in core/gemm.cpp uses the micro-kernels.
  void (*gemm)(DType dt, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C);
  const GemmMicroKernels* gemm_f32;
  const GemmMicroKernels* gemm_f64;
};

const CpuKernels& cpu_kernels();

}  // namespace fk
