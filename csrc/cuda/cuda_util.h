// What the CUDA backend's files share: error checks, the stream, launch shapes, and the
// strided geometry the elementwise and reduction kernels walk.
#pragma once
#include <string>

#include "../core/backend.h"
#include "runtime.h"

namespace fk {

// A failed CUDA call as a RuntimeError naming the call; the error is cleared, so the process
// stays usable.
void cuda_check(cudaError_t e, const char* what);
#define FK_CUDA(call) ::fk::cuda_check((call), #call)
// After a launch: a bad configuration shows now, a fault in the kernel at the next sync.
void cuda_launched(const char* op);

cudaStream_t cuda_stream();  // the stream every kernel and copy runs on, in order
std::string mib(size_t bytes);

Ref<Storage> cuda_alloc(size_t nbytes);
Ref<Storage> cuda_alloc_pinned(size_t nbytes);
void cuda_random(const Tensor& out, const RandomFill& r);
void cuda_manual_seed(uint64_t seed);

constexpr int kThreads = 256;
// A grid of `tasks` blocks, at least 1 and capped: kernels loop grid-stride over the rest.
inline unsigned grid_for(int64_t tasks) { return unsigned(tasks < 1 ? 1 : tasks > 65535 * 8 ? 65535 * 8 : tasks); }
// Blocks for n items at kThreads each.
inline unsigned blocks_for(int64_t n) { return grid_for((n + kThreads - 1) / kThreads); }

// An N-operand geometry: the output's sizes (collapsed, at most kMaxDims) and every operand's
// strides along them, in elements; passed to kernels by value.
template <int N>
struct Geometry {
  int nd = 0;
  int64_t size[kMaxDims];
  int64_t stride[N][kMaxDims];
  // Element offsets of item i (row-major over size) in each operand.
  __host__ __device__ void offsets(int64_t i, int64_t* off) const {
    for (int k = 0; k < N; k++) off[k] = 0;
    for (int d = nd - 1; d >= 0; d--) {
      const int64_t c = i % size[d];
      i /= size[d];
      for (int k = 0; k < N; k++) off[k] += c * stride[k][d];
    }
  }
};

// The geometry of out's shape with the operands' strides (out's own first), with dims merged
// where every operand is contiguous across them and size-1 dims dropped.
template <int N>
Geometry<N> make_geometry(const Dims& shape, const Dims* const* strides) {
  Geometry<N> g;
  for (int d = 0; d < shape.n; d++) {
    if (shape[d] == 1) continue;
    bool merge = g.nd > 0;
    for (int k = 0; k < N && merge; k++) merge = g.stride[k][g.nd - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      g.size[g.nd - 1] *= shape[d];
      for (int k = 0; k < N; k++) g.stride[k][g.nd - 1] = (*strides[k])[d];
    } else {
      g.size[g.nd] = shape[d];
      for (int k = 0; k < N; k++) g.stride[k][g.nd] = (*strides[k])[d];
      g.nd++;
    }
  }
  return g;
}

// True when every operand walks the geometry contiguously (one dim of stride 1) or not at all.
template <int N>
bool is_linear(const Geometry<N>& g) {
  if (g.nd > 1) return false;
  for (int k = 0; k < N; k++)
    if (g.nd == 1 && g.stride[k][0] != 1) return false;
  return true;
}

}  // namespace fk
