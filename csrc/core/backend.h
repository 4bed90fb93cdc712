// The device seam: what each device provides, as whole ops over tensors whose shapes, dtypes
// and broadcasting core has already settled. Inputs come with strides broadcast to the
// output's shape (0 along broadcast dims). Core picks a device's table with backend(device);
// csrc/cpu/backend.cpp holds the CPU's.
#pragma once
#include "kernels.h"
#include "tensor.h"

namespace fk {

struct Backend {
  // out = op(a, b) with a and b of the compute dtype (out bool for comparisons); returns a
  // KernelStatus for integer inputs an op cannot compute.
  int (*binary)(BinOp op, const Tensor& out, const Tensor& a, const Dims& sa, const Tensor& b, const Dims& sb);
  void (*unary)(UnOp op, const Tensor& out, const Tensor& a, const Dims& sa);
  // out = a converted to out's dtype.
  void (*cast)(const Tensor& out, const Tensor& a, const Dims& sa);
  // out = min(max(a, lo), hi), a of out's shape.
  void (*clamp)(const Tensor& out, const Tensor& a, double lo, double hi);
  // out = cond ? a : b, a and b of out's dtype.
  void (*where)(const Tensor& out, const Tensor& cond, const Dims& sc, const Tensor& a, const Dims& sa, const Tensor& b,
                const Dims& sb);
  // out (contiguous, the kept dims in order) = the reduction of a over the dims flagged in
  // `reduced`, `len` elements each (> 0); a of the kernel's input dtype.
  void (*reduce)(RedOp op, const Tensor& a, const bool* reduced, int64_t len, const Tensor& out);
};

const Backend& cpu_backend();
const Backend& backend(Device device);

}  // namespace fk
