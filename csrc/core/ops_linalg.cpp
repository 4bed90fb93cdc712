// Matrix multiply with NumPy/PyTorch matmul semantics (1-D, 2-D, batched, broadcast batch).
#include <algorithm>
#include <vector>

#include "autograd.h"
#include "backend.h"
#include "ops.h"

namespace fk {

static Tensor mT(const Tensor& t) { return transpose(t, -2, -1); }

static void mm_bw(Node& n, const Tensor& g, Tensor* gi) {
  // Batch dims that were broadcast are summed away by the engine.
  if (n.needs(0)) gi[0] = matmul(g, mT(n.saved_at(1)));
  if (n.needs(1)) {
    const Tensor &a = n.saved_at(0), &b = n.saved_at(1);
    if (b.ndim() == 2 && a.ndim() > 2)  // b shared by all batch items: one product over all their rows
      gi[1] = matmul(mT(reshape(a, {-1, a.size(a.ndim() - 1)})), reshape(g, {-1, g.size(g.ndim() - 1)}));
    else
      gi[1] = matmul(mT(a), g);
  }
}

// Whether a's matrices (a: [..., M, K], row stride rsa) are stacked so that row r of
// the flattened [batch*M, K] view is at r*rsa: every batch stride equals the size
// times the stride of the dimension after it, ending at M*rsa.
static bool rows_fold(const Tensor& a, int64_t M, int64_t rsa) {
  int64_t want = M * rsa;
  for (int d = a.ndim() - 3; d >= 0; d--) {
    if (a.size(d) != 1 && a.strides()[d] != want) return false;
    want *= a.size(d);
  }
  return true;
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
  Ref<Node> node = make_node("MmBackward0", mm_bw, {&a, &b});
  if (node) {
    node->save(a);
    node->save(b);
  }
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
  const int64_t rsa = a.strides()[ra], csa = a.strides()[ra + 1], rsb = b.strides()[rb], csb = b.strides()[rb + 1];
  if (out.numel() == 0 || nb == 0) {
  } else if (nb > 1 && b.numel() == K * N && rows_fold(a, M, rsa)) {
    // One B for every batch item, and A's rows are evenly spaced across items: a single
    // (nb*M) x K @ K x N product (a linear layer over a batch of sequences, say).
    backend(out.device())
        .gemm(a.dtype(), nb * M, N, K, a.raw(), rsa, csa, b.raw(), rsb, csb, out.raw(), N, false, nullptr);
  } else {
    std::vector<int64_t> aoff(static_cast<size_t>(nb)), boff(static_cast<size_t>(nb));
    for (int64_t i = 0; i < nb; i++) {
      aoff[size_t(i)] = batch_offset(a, i);
      boff[size_t(i)] = batch_offset(b, i);
    }
    backend(out.device())
        .gemm_batched(a.dtype(), nb, M, N, K, a.raw(), aoff.data(), rsa, csa, b.raw(), boff.data(), rsb, csb,
                      out.raw());
  }
  set_history(out, node);
  return out;
}

static void addmm_bw(Node& n, const Tensor& g, Tensor* gi) {
  if (n.needs(0)) gi[0] = g;  // the engine sums it back to input's broadcast shape
  if (n.needs(1)) gi[1] = matmul(g, mT(n.saved_at(1)));
  if (n.needs(2)) gi[2] = matmul(mT(n.saved_at(0)), g);
}

// input + mat1 @ mat2 (2-D; input broadcasts to the product's shape): the product is
// accumulated straight into a copy of input, as a linear layer adds its bias.
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2) {
  FK_CHECK(mat1.ndim() == 2 && mat2.ndim() == 2, Runtime, "addmm: expected 2-D matrices, got ", to_string(mat1.shape()),
           " and ", to_string(mat2.shape()));
  const int64_t M = mat1.size(0), K = mat1.size(1), N = mat2.size(1);
  FK_CHECK(mat2.size(0) == K, Runtime, "mat1 and mat2 shapes cannot be multiplied (", M, "x", K, " and ", mat2.size(0),
           "x", N, ")");
  check_same_device({&input, &mat1, &mat2});
  const DType dt = promote(promote(input.dtype(), mat1.dtype()), mat2.dtype());
  FK_CHECK(dt != DType::Bool, Type, "addmm is not implemented for bool tensors");
  const Tensor a = to_dtype(mat1, dt), b = to_dtype(mat2, dt);
  Tensor out;
  {
    GradMode off(false);  // the copy of input is only the starting value of out
    out = clone(expand(to_dtype(input, dt), {M, N}));
  }
  backend(out.device())
      .gemm(dt, M, N, K, a.raw(), a.strides()[0], a.strides()[1], b.raw(), b.strides()[0], b.strides()[1], out.raw(), N,
            true, nullptr);
  Ref<Node> node = make_node("AddmmBackward0", addmm_bw, {&input, &mat1, &mat2});
  if (node) {
    node->save(a);
    node->save(b);
  }
  set_history(out, node);
  return out;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  FK_CHECK(a.ndim() >= 1 && b.ndim() >= 1, Runtime, "both arguments to matmul need to be at least 1D, but they are ",
           a.ndim(), "D and ", b.ndim(), "D");
  check_same_device({&a, &b});
  FK_CHECK(a.dtype() == b.dtype(), Runtime, "expected both matmul operands to have the same dtype, but got ",
           dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  const DType dt = a.dtype();
  FK_CHECK(dt != DType::Bool, Type, "matmul is not implemented for bool tensors");
  const Tensor A = to_dtype(a, dt), B = to_dtype(b, dt);
  if (A.ndim() == 1 && B.ndim() == 1)
    FK_CHECK(A.size(0) == B.size(0), Runtime, "inconsistent tensor size, expected tensor [", A.size(0), "] and src [",
             B.size(0), "] to have the same number of elements, but got ", A.size(0), " and ", B.size(0),
             " elements respectively");
  Tensor out = batched_mm(A.ndim() == 1 ? unsqueeze(A, 0) : A, B.ndim() == 1 ? unsqueeze(B, 1) : B);
  if (A.ndim() == 1) out = squeeze(out, -2);
  if (B.ndim() == 1) out = squeeze(out, -1);
  return out;
}

Tensor matmul_ranked(const char* op, const Tensor& a, const Tensor& b, int rank_a, int rank_b) {
  FK_CHECK(a.ndim() == rank_a && b.ndim() == rank_b, Runtime, op, ": expected ", rank_a, "-D and ", rank_b,
           "-D tensors, got shapes ", to_string(a.shape()), " and ", to_string(b.shape()));
  FK_CHECK(rank_a != 3 || a.size(0) == b.size(0), Runtime, op, ": batch sizes differ: shapes ", to_string(a.shape()),
           " and ", to_string(b.shape()), " (bmm does not broadcast; matmul does)");
  return matmul(a, b);
}

}  // namespace fk
