// The CUDA GEMM's entry for the backend's other files (conv.cu): one launch computes a batch of
// products C_z (+)= A_z @ B_z whose operands sit at offsets given by two-level strides or by
// device arrays, so a convolution runs its per-image, per-group products without copies.
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace fk {

// Where product z of `count` sits: with zo = z / inner and zi = z % inner, A_z starts
// a[0]*zo + a[1]*zi elements after A (or aoff[z] after it when aoff, a device array, is given),
// likewise B_z (boff), and C_z c[0]*zo + c[1]*zi after C.
struct GemmBatch {
  int64_t count = 1, inner = 1;
  int64_t a[2] = {0, 0}, b[2] = {0, 0}, c[2] = {0, 0};
  const int64_t* aoff = nullptr;
  const int64_t* boff = nullptr;
};

// C_z = A_z @ B_z, or C_z += A_z @ B_z when `accumulate`, for every z of `batch`, on the CUDA
// stream (gemm's strides and layout, backend.h; no column offsets). Any dtype but bool.
void cuda_gemm_launch(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
                      int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate, const GemmBatch& batch);

}  // namespace fk
