// 3x3 stride-1 float32 convolutions by Winograd F(4x4, 3x3), forward and both gradients.
#pragma once
#include "../core/backend.h"
#include "../core/tensor.h"

namespace fk {

// Whether the Winograd route can run this conv2d (x [N, C, H, W], w [K, C, 3, 3]).
bool winograd_applies(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups);
// out = conv2d(x, w) (contiguous, no bias).
void winograd_forward(const Tensor& x, const Tensor& w, const Window2d& g, const Tensor& out);
// dx and dw (either may be undefined) for the output gradient gout.
void winograd_backward(const Tensor& x, const Tensor& w, const Tensor& gout, const Window2d& g, const Tensor& dx,
                       const Tensor& dw);

}  // namespace fk
