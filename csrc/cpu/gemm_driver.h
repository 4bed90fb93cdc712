// The CPU GEMM driver (packing, blocking, threads) around the per-ISA micro-kernels; core
// reaches it as backend(Device::CPU).gemm.
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace fk {

// C = A @ B, or C += A @ B when `accumulate`. Element (i, k) of the M x K matrix A is
// A[i*rsa + k*csa] and (k, j) of the K x N matrix B is B[k*rsb + j*csb] (strides in
// elements, so transposed operands need no copy); C is row-major with row stride ldc.
// Splits large products across the thread pool. With `acols` (float types only), column k
// of A starts at A + acols[k] instead of A + k*csa: a convolution reads its input image as
// the column matrix this way, with no copy.
void gemm(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
          int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate, const int64_t* acols = nullptr);

}  // namespace fk
