// GEMM driver: gathers strided operands into row-major blocks and runs the
// per-ISA kernel over row blocks in parallel.
#include "gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace fk {

template <class T>
static void gemm_t(int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t rsb,
                   int64_t csb, T* C, int64_t ldc, bool accumulate, DType dt) {
  // Row-major copies of operands that are not already row-major.
  std::vector<T> pa, pb, pc;
  if (!(csa == 1 && rsa == K)) {
    pa.resize(size_t(M * K));
    for (int64_t i = 0; i < M; i++)
      for (int64_t k = 0; k < K; k++) pa[size_t(i * K + k)] = A[i * rsa + k * csa];
    A = pa.data();
  }
  if (!(csb == 1 && rsb == N)) {
    pb.resize(size_t(K * N));
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < N; j++) pb[size_t(k * N + j)] = B[k * rsb + j * csb];
    B = pb.data();
  }
  T* out = C;
  if (accumulate || ldc != N) {
    pc.resize(size_t(M * N));
    out = pc.data();
  }
  const CpuKernels& k = cpu_kernels();
  const int64_t rows = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, N * K));
  const int64_t tasks = (M + rows - 1) / rows;
  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t r0 = t * rows, nr = std::min(rows, M - r0);
      k.gemm(dt, nr, N, K, A + r0 * K, B, out + r0 * N);
    }
  });
  if (out != C)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = accumulate ? T(C[i * ldc + j] + out[i * N + j]) : out[i * N + j];
}

void gemm(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
          int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  dispatch_dtype(dt, [&](auto z) {
    using T = decltype(z);
    if constexpr (!std::is_same_v<T, bool>) {
      if (K == 0) {
        if (!accumulate)
          for (int64_t i = 0; i < M; i++) std::memset(static_cast<T*>(C) + i * ldc, 0, size_t(N) * sizeof(T));
        return;
      }
      gemm_t<T>(M, N, K, static_cast<const T*>(A), rsa, csa, static_cast<const T*>(B), rsb, csb, static_cast<T*>(C),
                ldc, accumulate, dt);
    }
  });
}

}  // namespace fk
