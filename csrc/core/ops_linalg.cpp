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

static void vec_mm_bw(Node& n, const Tensor& g, Tensor* gi) {
  // dot (g a number): g b and g a; mv: the outer product g b^T and A^T g
  const Tensor &a = n.saved_at(0), &b = n.saved_at(1);
  const bool dot = a.ndim() == 1;
  if (n.needs(0)) gi[0] = dot ? g * b : unsqueeze(g, 1) * unsqueeze(b, 0);
  if (n.needs(1)) gi[1] = dot ? g * a : matmul(mT(a), g);
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
  if (B.ndim() == 1 && A.ndim() <= 2) {  // dot and mv: one node each, as PyTorch's
    Tensor out;
    {
      GradMode off(false);
      out = squeeze(batched_mm(A.ndim() == 1 ? unsqueeze(A, 0) : A, unsqueeze(B, 1)), -1);
      if (A.ndim() == 1) out = squeeze(out, -1);
    }
    if (Ref<Node> n = make_node(A.ndim() == 1 ? "DotBackward0" : "MvBackward0", vec_mm_bw, {&A, &B})) {
      n->save(A);
      n->save(B);
      set_history(out, n);
    }
    return out;
  }
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

// ---- factorisations: det, inv, solve and cholesky from the backend's LU and Cholesky kernels

static int64_t rows(const Tensor& t) { return t.size(t.ndim() - 2); }
static int64_t cols(const Tensor& t) { return t.size(t.ndim() - 1); }

// PyTorch's checks on A of [..., n, n], and the backend that factorises on A's device.
static const Backend& square_float(const char* op, const Tensor& a) {
  FK_CHECK(a.ndim() >= 2, Runtime, op, ": The input tensor A must have at least 2 dimensions (got shape ",
           to_string(a.shape()), ")");
  FK_CHECK(rows(a) == cols(a), Runtime, op, ": A must be batches of square matrices, but they are ", rows(a), " by ",
           cols(a), " matrices");
  FK_CHECK(is_float(a.dtype()), Runtime, op, ": Expected a floating point tensor as input. Got ",
           dtype_name(a.dtype()));
  const Backend& b = backend(a.device());
  FK_CHECK(b.lu, NotImplemented, op, " has no ", device_str(a.device()),
           " kernel yet: move the tensor to the CPU first (.cpu())");
  return b;
}

// The diagonals of a batch of matrices, as a view [..., n] (no history: for LU factors).
static Tensor diagonal(const Tensor& m) {
  Dims shape = m.shape(), strides = m.strides();
  shape.n--;
  strides.n--;
  strides[strides.n - 1] = m.strides()[m.ndim() - 2] + m.strides()[m.ndim() - 1];
  return make_view(m, shape, strides, m.p->offset);
}

// A's LU factors (a contiguous copy, without history) and row swaps.
static std::pair<Tensor, Tensor> lu_factor(const Backend& be, const Tensor& a) {
  GradMode off(false);
  const Tensor lu = clone(detach(a));
  Dims ps = a.shape();
  ps.n--;
  const Tensor piv = empty(ps, DType::Int64, a.device());
  if (lu.numel()) be.lu(lu, piv);
  return {lu, piv};
}

// inv and solve need every U[k, k] nonzero: PyTorch's error names the first that is not.
static void check_invertible(const char* op, const Tensor& lu) {
  GradMode off(false);
  const Tensor zeros_at = nonzero(binary(BinOp::Eq, diagonal(lu), Scalar::of(0)));  // [count, batch dims + 1]
  if (zeros_at.size(0) == 0) return;
  const Tensor first = contiguous(to_device(select(zeros_at, 0, 0), Device::CPU));
  const int64_t k = first.data<int64_t>()[first.numel() - 1];
  throw Error(ErrorKind::Runtime, str_cat(op, ": The diagonal element ", k + 1,
                                          " is zero, the inversion could not be completed because the input "
                                          "matrix is singular."));
}

static void det_bw(Node& n, const Tensor& g, Tensor* gi) {
  // d det(A) / dA = det(A) A^-T (A invertible)
  const Tensor scale = unsqueeze(unsqueeze(g * n.saved_at(1), -1), -1);
  gi[0] = scale * mT(inv(n.saved_at(0)));
}

Tensor det(const Tensor& a) {
  const Backend& be = square_float("linalg.det", a);
  auto [lu, piv] = lu_factor(be, a);
  Tensor out;
  {
    GradMode off(false);
    // prod(diag U), negated once per row swap
    const Tensor steps = arange(0, double(cols(a)), 1, DType::Int64, a.device());
    const Tensor swaps = sum(binary(BinOp::Ne, piv, steps), DimList::of({-1}), false);
    const Tensor odd = to_dtype(binary(BinOp::Rem, swaps, Scalar::of_int(2)), a.dtype());
    out = prod(diagonal(lu), DimList::of({-1}), false) * (1.0 - odd * 2.0);
  }
  Ref<Node> n = make_node("LinalgDetBackward0", det_bw, {&a});
  if (n) {
    n->save(a);
    set_history(out, n);
    n->save(out);
  }
  return out;
}

// A^-1 B for A's factors and B of [batch..., n, m] broadcast to A's batch: a new tensor.
static Tensor lu_apply(const Backend& be, const Tensor& lu, const Tensor& piv, const Tensor& b) {
  GradMode off(false);
  const Tensor x = clone(detach(b));
  if (x.numel()) be.lu_solve(lu, piv, x);
  return x;
}

static void inv_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor x = mT(n.saved_at(0));  // d(A^-1) = -A^-1 dA A^-1
  gi[0] = -matmul(matmul(x, g), x);
}

Tensor inv(const Tensor& a) {
  const Backend& be = square_float("linalg.inv", a);
  auto [lu, piv] = lu_factor(be, a);
  check_invertible("linalg.inv", lu);
  Tensor out = lu_apply(be, lu, piv, expand(eye(cols(a), cols(a), a.dtype(), a.device()), a.shape()));
  Ref<Node> n = make_node("LinalgInvExBackward0", inv_bw, {&a});
  if (n) {
    set_history(out, n);
    n->save(out);
  }
  return out;
}

static void solve_bw(Node& n, const Tensor& g, Tensor* gi) {
  // X = A^-1 B: dB = A^-T g, dA = -dB X^T (B and X as columns when B was a vector).
  const Tensor &a = n.saved_at(0), &x = n.saved_at(1);
  const bool vec = n.ints[0] != 0;
  const Tensor gb = solve(mT(a), g);
  if (n.needs(1)) gi[1] = gb;
  if (n.needs(0)) gi[0] = -matmul(vec ? unsqueeze(gb, -1) : gb, mT(vec ? unsqueeze(x, -1) : x));
}

Tensor solve(const Tensor& a, const Tensor& b) {
  const Backend& be = square_float("linalg.solve", a);
  check_same_device({&a, &b});
  FK_CHECK(a.dtype() == b.dtype(), Runtime,
           "linalg.solve: Expected A and B to have the same dtype, but found A of type ", dtype_name(a.dtype()),
           " and B of type ", dtype_name(b.dtype()), " instead");
  // B is a vector (or a batch of them) when it has one dim fewer than A and A's leading sizes, as PyTorch rules.
  Dims lead = a.shape();
  lead.n--;
  const bool vec = b.ndim() == 1 || (b.ndim() == a.ndim() - 1 && b.shape() == lead);
  const Tensor B = vec ? unsqueeze(b, -1) : b;
  FK_CHECK(B.ndim() >= 2 && rows(B) == rows(a), Runtime,
           "linalg.solve: Incompatible shapes of A and B for the equation ", "AX = B (", to_string(a.shape()), " and ",
           to_string(b.shape()), ")");
  Dims ba = a.shape(), bb = B.shape();
  ba.n -= 2;
  bb.n -= 2;
  Dims shape_a = broadcast_shapes(ba, bb), shape_b = shape_a;
  shape_a.push_back(rows(a));
  shape_a.push_back(rows(a));
  shape_b.push_back(rows(a));
  shape_b.push_back(cols(B));
  auto [lu, piv] = lu_factor(be, expand(a, shape_a));
  check_invertible("linalg.solve", lu);
  Tensor out = lu_apply(be, lu, piv, expand(B, shape_b));
  if (vec) out = squeeze(out, -1);
  Ref<Node> n = make_node("LinalgSolveExBackward0", solve_bw, {&a, &b});
  if (n) {
    n->ints = {vec};
    n->save(a);
    set_history(out, n);
    n->save(out);
  }
  return out;
}

// Phi(x): the lower triangle of each matrix with half its diagonal (zeros above). Phi(M) + Phi(M)^T
// is the symmetric matrix with M's lower triangle (the backwards of cholesky and qr use it).
static Tensor lower_half_diag(const Tensor& x) {
  const int64_t k = cols(x);
  const Tensor r = reshape(arange(0, double(k), 1, DType::Int64, x.device()), {k, 1});
  const Tensor c = arange(0, double(k), 1, DType::Int64, x.device());
  const Tensor half = where(binary(BinOp::Eq, r, c), scalar_tensor(Scalar::of(0.5), x.dtype()),
                            scalar_tensor(Scalar::of(1), x.dtype()));
  return where(binary(BinOp::Ge, r, c), x, scalar_tensor(Scalar::of(0), x.dtype())) * half;
}

static void cholesky_bw(Node& n, const Tensor& g, Tensor* gi) {
  // A = L L^T: dA = sym(L^-T Phi(L^T dL) L^-1).
  const Tensor& l = n.saved_at(0);
  const Tensor li = inv(l);
  const Tensor s = matmul(matmul(mT(li), lower_half_diag(matmul(mT(l), g))), li);
  gi[0] = (s + mT(s)) * 0.5;
}

Tensor cholesky(const Tensor& a) {
  const Backend& be = square_float("linalg.cholesky", a);
  Tensor out;
  {
    GradMode off(false);
    out = clone(detach(a));
  }
  const int64_t bad = out.numel() ? be.cholesky(out) : -1;
  if (bad >= 0) {
    const int64_t n = cols(a), item = bad / n;
    throw Error(ErrorKind::Runtime,
                str_cat("linalg.cholesky: ", a.ndim() > 2 ? str_cat("(Batch element ", item, "): ") : "",
                        "The factorization could not be completed because the input is not positive-definite (the "
                        "leading minor of order ",
                        bad % n + 1, " is not positive-definite)."));
  }
  Ref<Node> n = make_node("LinalgCholeskyExBackward0", cholesky_bw, {&a});
  if (n) {
    set_history(out, n);
    n->save(out);
  }
  return out;
}

// ---- qr, eigh and svd: several differentiable outputs, so a node each (with the same input).
// Every backward is linear in the outputs' gradients: each node's formula takes its own output's
// gradient with the others' as zero, and the engine sums the nodes' contributions.

// A fresh contiguous copy of a for a kernel to overwrite, without history.
static Tensor scratch(const Tensor& a) {
  GradMode off(false);
  return clone(detach(a));
}

// A = QR (m >= n): dA = (gQ + Q sym(M)) R^-T with M = R gR^T - gQ^T Q, sym(M) = Phi(M) + Phi(M)^T.
static Tensor qr_grad(const Tensor& q, const Tensor& r, const Tensor& gq, const Tensor& gr) {
  FK_CHECK(rows(q) >= cols(r), NotImplemented,
           "linalg.qr: the gradient of the QR of a matrix with fewer rows than columns is not implemented (got ",
           rows(q), " by ", cols(r), ")");
  const Tensor m = gr.defined() ? matmul(r, mT(gr)) : -matmul(mT(gq), q);
  const Tensor phi = lower_half_diag(m);
  Tensor b = matmul(q, phi + mT(phi));
  if (gq.defined()) b = b + gq;
  return mT(solve(r, mT(b)));  // b R^-T
}
static void qr_q_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = qr_grad(n.saved_at(0), n.saved_at(1), g, {}); }
static void qr_r_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = qr_grad(n.saved_at(0), n.saved_at(1), {}, g); }

// Makes each output of a multi-output op the result of its own node over `a`, every node saving all
// outputs (its own with save's care, the others without history, which would be a refcount cycle).
static void set_histories(const char* name, const Tensor& a, const std::vector<Tensor>& outs,
                          std::initializer_list<BackwardFn> fns) {
  std::vector<Ref<Node>> nodes;
  for (BackwardFn fn : fns) nodes.push_back(make_node(name, fn, {&a}));
  if (!nodes[0]) return;
  for (size_t i = 0; i < outs.size(); i++) set_history(outs[i], nodes[i]);
  for (size_t i = 0; i < outs.size(); i++)
    for (size_t j = 0; j < outs.size(); j++) nodes[i]->save(i == j ? outs[j] : detach(outs[j]));
}

std::pair<Tensor, Tensor> qr(const Tensor& a) {
  FK_CHECK(a.ndim() >= 2, Runtime, "linalg.qr: The input tensor A must have at least 2 dimensions (got shape ",
           to_string(a.shape()), ")");
  FK_CHECK(is_float(a.dtype()), Runtime, "linalg.qr: Expected a floating point tensor as input. Got ",
           dtype_name(a.dtype()));
  const Backend& be = backend(a.device());
  FK_CHECK(be.qr, NotImplemented, "linalg.qr has no ", device_str(a.device()),
           " kernel yet: move the tensor to the CPU first (.cpu())");
  const int64_t m = rows(a), n = cols(a), k = std::min(m, n);
  Dims qs = a.shape(), rs = a.shape();
  qs[qs.n - 1] = k;
  rs[rs.n - 2] = k;
  const Tensor work = scratch(a), q = empty(qs, a.dtype(), a.device()), r = empty(rs, a.dtype(), a.device());
  if (work.numel()) be.qr(work, q, r);  // else q or r has no elements either
  set_histories("LinalgQrBackward0", a, {q, r}, {qr_q_bw, qr_r_bw});
  return {q, r};
}

// 1 / (x_j - x_i) off the diagonal (i != j), 0 on it, for each vector x [..., n]: [..., n, n].
static Tensor inverse_gaps(const Tensor& x) {
  const int64_t n = x.size(x.ndim() - 1);
  const Tensor gap = unsqueeze(x, -2) - unsqueeze(x, -1);
  const Tensor diag = eye(n, n, DType::Bool, x.device());
  return where(diag, scalar_tensor(Scalar::of(0), x.dtype()),
               scalar_tensor(Scalar::of(1), x.dtype()) / where(diag, scalar_tensor(Scalar::of(1), x.dtype()), gap));
}

// A = V diag(w) V^T: dA = V (diag(gw) + F o (V^T gV)) V^T, F = inverse_gaps(w).
static void eigh_w_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& v = n.saved_at(1);
  gi[0] = matmul(v * unsqueeze(g, -2), mT(v));
}
static void eigh_v_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor &w = n.saved_at(0), &v = n.saved_at(1);
  gi[0] = matmul(matmul(v, inverse_gaps(w) * matmul(mT(v), g)), mT(v));
}

std::pair<Tensor, Tensor> eigh(const Tensor& a) {
  const Backend& be = square_float("linalg.eigh", a);
  FK_CHECK(be.eigh, NotImplemented, "linalg.eigh has no ", device_str(a.device()), " kernel yet");
  Dims ws = a.shape();
  ws.n--;
  const Tensor work = scratch(a), w = empty(ws, a.dtype(), a.device()), v = empty(a.shape(), a.dtype(), a.device());
  if (work.numel()) be.eigh(work, w, v);
  set_histories("LinalgEighBackward0", a, {w, v}, {eigh_w_bw, eigh_v_bw});
  return {w, v};
}

// A = U diag(S) Vh (m >= n): dA = U [(skew(U^T gU) o F) S + S (skew(V^T gV) o F) + diag(gS)] Vh
// + (I - U U^T) gU S^-1 Vh, with V = Vh^T, F = inverse_gaps(S^2) and skew(X) = X - X^T.
static void svd_u_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor &u = n.saved_at(0), &s = n.saved_at(1), &vh = n.saved_at(2);
  const Tensor utg = matmul(mT(u), g);
  const Tensor inner = (utg - mT(utg)) * inverse_gaps(s * s) * unsqueeze(s, -2);
  const Tensor outside = (g - matmul(u, utg)) / unsqueeze(s, -2);  // the part of gU off U's columns
  gi[0] = matmul(matmul(u, inner) + outside, vh);
}
static void svd_s_bw(Node& n, const Tensor& g, Tensor* gi) {
  gi[0] = matmul(n.saved_at(0) * unsqueeze(g, -2), n.saved_at(2));
}
static void svd_vh_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor &u = n.saved_at(0), &s = n.saved_at(1), &vh = n.saved_at(2);
  const Tensor vtg = matmul(vh, mT(g));  // V^T gV with gV = g^T
  const Tensor inner = unsqueeze(s, -1) * ((vtg - mT(vtg)) * inverse_gaps(s * s));
  gi[0] = matmul(matmul(u, inner), vh);
}

std::array<Tensor, 3> svd(const Tensor& a) {
  FK_CHECK(a.ndim() >= 2, Runtime, "linalg.svd: The input tensor A must have at least 2 dimensions (got shape ",
           to_string(a.shape()), ")");
  FK_CHECK(is_float(a.dtype()), Runtime, "linalg.svd: Expected a floating point tensor as input. Got ",
           dtype_name(a.dtype()));
  if (rows(a) < cols(a)) {  // A^T = U S Vh gives A = Vh^T S U^T
    auto [u, s, vh] = svd(mT(a));
    return {mT(vh), s, mT(u)};
  }
  const Backend& be = backend(a.device());
  FK_CHECK(be.svd, NotImplemented, "linalg.svd has no ", device_str(a.device()),
           " kernel yet: move the tensor to the CPU first (.cpu())");
  const int64_t n = cols(a);
  Dims ss = a.shape(), vs = a.shape();
  ss.n--;
  ss[ss.n - 1] = n;
  vs[vs.n - 2] = n;
  const Tensor work = scratch(a), u = empty(a.shape(), a.dtype(), a.device()), s = empty(ss, a.dtype(), a.device()),
               vh = empty(vs, a.dtype(), a.device());
  if (work.numel()) be.svd(work, u, s, vh);
  set_histories("LinalgSvdBackward0", a, {u, s, vh}, {svd_u_bw, svd_s_bw, svd_vh_bw});
  return {u, s, vh};
}

}  // namespace fk
