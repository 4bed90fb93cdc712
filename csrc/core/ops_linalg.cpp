// Matrix multiply with NumPy/PyTorch matmul semantics (1-D, 2-D, batched, broadcast batch).
#include <algorithm>

#include "autograd.h"
#include "gemm.h"
#include "ops.h"

namespace fk {

static Tensor mT(const Tensor& t) { return transpose(t, -2, -1); }

static void mm_bw(Node& n, const Tensor& g, Tensor* gi) {
  // Batch dims that were broadcast are summed away by the engine.
  if (n.needs(0)) gi[0] = matmul(g, mT(n.saved_at(1)));
  if (n.needs(1)) gi[1] = matmul(mT(n.saved_at(0)), g);
}

// a: [..., M, K], b: [..., K, N], both at least 2-D.
static Tensor batched_mm(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(a.ndim() - 2), K = a.size(a.ndim() - 1), N = b.size(b.ndim() - 1);
  FK_CHECK(b.size(b.ndim() - 2) == K, Runtime, "mat1 and mat2 shapes cannot be multiplied (", M, "x", K, " and ",
           b.size(b.ndim() - 2), "x", N, "); matmul got shapes ", to_string(a.shape()), " and ", to_string(b.shape()));
  Dims ba = a.shape(), bb = b.shape();
  ba.n -= 2;
  bb.n -= 2;
  for (int i = 1; i <= std::min(ba.n, bb.n); i++) {
    const int64_t x = ba[ba.n - i], y = bb[bb.n - i];
    FK_CHECK(x == y || x == 1 || y == 1, Runtime, "matmul: batch dimensions of ", to_string(a.shape()), " and ",
             to_string(b.shape()), " are not broadcastable");
  }
  const Dims batch = broadcast_shapes(ba, bb);
  Dims out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = empty(out_shape, a.dtype(), a.device());
  Node* node = make_node("MmBackward0", mm_bw, {&a, &b});
  if (node) {
    node->save(a);
    node->save(b);
  }
  const int64_t es = itemsize(a.dtype());
  // Element offset of batch item i in an operand whose batch dims broadcast to `batch`.
  auto batch_offset = [&](const Tensor& t, int64_t i) {
    const int off = batch.n - (t.ndim() - 2);
    int64_t o = 0;
    for (int d = batch.n - 1; d >= 0; d--) {
      const int64_t idx = i % batch[d];
      i /= batch[d];
      if (d >= off && t.size(d - off) != 1) o += idx * t.strides()[d - off];
    }
    return o;
  };
  const int64_t nb = batch.prod();
  const int ra = a.ndim() - 2, rb = b.ndim() - 2;
  for (int64_t i = 0; i < nb && out.numel() > 0; i++)
    gemm(a.dtype(), M, N, K, a.raw() + batch_offset(a, i) * es, a.strides()[ra], a.strides()[ra + 1],
         b.raw() + batch_offset(b, i) * es, b.strides()[rb], b.strides()[rb + 1], out.raw() + i * M * N * es, N, false);
  set_history(out, node);
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  FK_CHECK(a.ndim() >= 1 && b.ndim() >= 1, Runtime, "both arguments to matmul need to be at least 1D, but they are ",
           a.ndim(), "D and ", b.ndim(), "D");
  FK_CHECK(a.device() == b.device(), Runtime, "matmul: expected both tensors on the same device");
  const DType dt = promote(a.dtype(), b.dtype());
  FK_CHECK(dt != DType::Bool, Type, "matmul is not implemented for bool tensors");
  const Tensor A = to_dtype(a, dt), B = to_dtype(b, dt);
  if (A.ndim() == 1 && B.ndim() == 1)
    FK_CHECK(A.size(0) == B.size(0), Runtime, "inconsistent tensor size, expected tensor [", A.size(0),
             "] and src [", B.size(0), "] to have the same number of elements, but got ", A.size(0), " and ", B.size(0),
             " elements respectively");
  Tensor out = batched_mm(A.ndim() == 1 ? unsqueeze(A, 0) : A, B.ndim() == 1 ? unsqueeze(B, 1) : B);
  if (A.ndim() == 1) out = squeeze(out, -2);
  if (B.ndim() == 1) out = squeeze(out, -1);
  return out;
}

}  // namespace fk
