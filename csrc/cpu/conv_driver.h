// The CPU's conv2d (the lowering to GEMMs), reached by core through backend(Device::CPU).
#pragma once
#include "kernels.h"
#include "../core/tensor.h"

namespace fk {

// out = conv2d(X, W) (contiguous, bias not included); returns a tensor the backward may reuse
// (the column matrix when it covers every image), or an undefined one.
Tensor conv2d_cpu(const Tensor& X, const Tensor& W, const Window2d& g, int64_t groups, const Tensor& out);
// dx and dw (either may be undefined) of conv2d for the upstream gradient G, with `kept`
// what the forward returned.
void conv2d_backward_cpu(const Tensor& X, const Tensor& W, const Tensor& G, const Window2d& g, int64_t groups,
                         const Tensor& kept, const Tensor& dx, const Tensor& dw);

}  // namespace fk
