// The CPU's conv2d (the lowering to GEMMs), reached by core through backend(Device::CPU).
#pragma once
#include "kernels.h"
#include "../core/tensor.h"

namespace fk {

// The algorithms of conv2d on the CPU. Auto picks by shape (conv_algorithm); the others force
// one where it applies (tests, benchmarks), falling back to Gemm where it does not.
enum class ConvAlgo { Auto, Gemm, Winograd, Depthwise };
void set_conv_algorithm(ConvAlgo a);
// The algorithm conv2d takes for x [N, C, H, W] and w [O, C/groups, kh, kw], in forward and backward.
ConvAlgo conv_algorithm(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups);

// out = conv2d(X, W) (contiguous, bias not included); returns a tensor the backward may reuse
// (the column matrix when it covers every image), or an undefined one.
Tensor conv2d_cpu(const Tensor& X, const Tensor& W, const Window2d& g, int64_t groups, const Tensor& out);
// dx and dw (either may be undefined) of conv2d for the upstream gradient G, with `kept`
// what the forward returned.
void conv2d_backward_cpu(const Tensor& X, const Tensor& W, const Tensor& G, const Window2d& g, int64_t groups,
                         const Tensor& kept, const Tensor& dx, const Tensor& dw);

}  // namespace fk
