// Walks N operands that share one logical shape, each with its own strides
// (broadcast inputs have stride 0), calling a kernel on runs along the last
// dimension. Dimensions that are contiguous for every operand are merged first,
// so same-layout tensors become a single run however many dims they have.
#pragma once
#include <algorithm>

#include "parallel.h"
#include "../core/tensor.h"

namespace fk {

template <int N>
struct StridedLoop {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];
  char* base[N];
  int64_t elsize[N];
  int64_t total = 1;

  // ops[i] viewed with `shape`; strides[i] already broadcast to it.
  StridedLoop(const Dims& shp, const Tensor* const (&ops)[N], const Dims* const (&strd)[N]) {
    for (int i = 0; i < N; i++) {
      base[i] = ops[i]->raw();
      elsize[i] = itemsize(ops[i]->dtype());
    }
    // Drop size-1 dims, then merge neighbours that are contiguous for all operands.
    for (int d = 0; d < shp.n; d++) {
      total *= shp[d];
      if (shp[d] == 1) continue;
      bool merge = ndim > 0;
      for (int i = 0; i < N && merge; i++) merge = strides[i][ndim - 1] == (*strd[i])[d] * shp[d];
      if (merge) {
        shape[ndim - 1] *= shp[d];
        for (int i = 0; i < N; i++) strides[i][ndim - 1] = (*strd[i])[d];
      } else {
        shape[ndim] = shp[d];
        for (int i = 0; i < N; i++) strides[i][ndim] = (*strd[i])[d];
        ndim++;
      }
    }
    if (ndim == 0) {  // a single element
      shape[0] = 1;
      for (int i = 0; i < N; i++) strides[i][0] = 0;
      ndim = 1;
    }
  }

  // f(n, ptrs, inner_strides) for the elements [begin, end) in row-major order.
  template <class F>
  void run_range(int64_t begin, int64_t end, F&& f) const {
    if (begin >= end) return;  // also keeps size-0 dims out of the index arithmetic below
    const int last = ndim - 1;
    int64_t idx[kMaxDims];
    int64_t rem = begin;
    for (int d = last; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    char* p[N];
    int64_t inner[N];
    for (int i = 0; i < N; i++) inner[i] = strides[i][last];
    while (begin < end) {
      for (int i = 0; i < N; i++) {
        int64_t off = 0;
        for (int d = 0; d <= last; d++) off += idx[d] * strides[i][d];
        p[i] = base[i] + off * elsize[i];
      }
      const int64_t n = std::min(shape[last] - idx[last], end - begin);
      f(n, p, inner);
      begin += n;
      idx[last] += n;
      for (int d = last; d > 0 && idx[d] == shape[d]; d--) {
        idx[d] = 0;
        idx[d - 1]++;
      }
    }
  }

  // Whole loop, split across threads when there are at least `grain` elements per thread.
  template <class F>
  void run(F&& f, int64_t grain = 1 << 16) const {
    if (total < 2 * grain) return run_range(0, total, f);
    parallel_for(total, grain, [&](int64_t b, int64_t e) { run_range(b, e, f); });
  }
};

}  // namespace fk
