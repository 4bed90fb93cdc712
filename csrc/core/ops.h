// The tensor operations. Each op lives with its backward formula in one of the
// ops_*.cpp files; backward formulas are written with these same ops, so they
// work on every device and can themselves be differentiated.
#pragma once
#include <array>
#include <optional>
#include <vector>

#include "op_list.h"
#include "tensor.h"

namespace fk {

// Reduction dims: `all` means every dimension (PyTorch's dim=None).
struct DimList {
  Dims dims;
  bool all = true;
  static DimList of(std::initializer_list<int64_t> l) {
    DimList d;
    d.dims = Dims(l);
    d.all = false;
    return d;
  }
};

// The tensors of one op live on one device: a RuntimeError naming two that differ (undefined
// tensors, such as a missing bias, are skipped).
void check_same_device(std::initializer_list<const Tensor*> ts);

// ---- dtype rules
DType result_type(const Tensor& a, const Tensor& b);
DType scalar_result_type(const Tensor& a, const Scalar& s);
Dims broadcast_shapes(const Dims& a, const Dims& b);

// ---- creation (ops_create.cpp)
Tensor full(const Dims& shape, Scalar value, DType dtype, Device device = Device::CPU);
Tensor scalar_tensor(Scalar value, DType dtype);  // a 0-d "wrapped number"
Tensor arange(double start, double end, double step, DType dtype, Device device = Device::CPU);
Tensor linspace(double start, double end, int64_t steps, DType dtype, Device device = Device::CPU);
Tensor eye(int64_t n, int64_t m, DType dtype, Device device = Device::CPU);
void manual_seed(uint64_t seed);
Tensor& uniform_(Tensor& t, double lo, double hi);
Tensor& normal_(Tensor& t, double mean, double std);
Tensor randint(int64_t low, int64_t high, const Dims& shape, DType dtype, Device device = Device::CPU);
Tensor randperm(int64_t n, Device device = Device::CPU);
// Bool tensors over foreign memory (NumPy, DLPack) may hold bytes other than 0 and 1: returns
// a copy with every nonzero byte as 1, or t itself when all bytes are already 0 or 1.
Tensor canonical_bools(const Tensor& t);
// The value of a one-element tensor (x.item()).
Scalar item(const Tensor& t);

// ---- elementwise (ops_elementwise.cpp)
Tensor binary(BinOp op, const Tensor& a, const Tensor& b);
Tensor binary(BinOp op, const Tensor& a, Scalar b, bool reflected = false);
void binary_(BinOp op, const Tensor& self, const Tensor& other);  // in place into self
void binary_(BinOp op, const Tensor& self, Scalar other);
Tensor unary(UnOp op, const Tensor& a);
// logical_and/or/xor and logical_not: the operands as bool first.
Tensor logical(BinOp op, const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);
// a + alpha * b and a - alpha * b (PyTorch's alpha), and their in-place forms.
Tensor add_scaled(BinOp op, const Tensor& a, const Tensor& b, Scalar alpha);
void add_scaled_(BinOp op, const Tensor& self, const Tensor& b, Scalar alpha);
void unary_(UnOp op, const Tensor& self);
Tensor clamp(const Tensor& a, std::optional<Scalar> lo, std::optional<Scalar> hi);
void clamp_(const Tensor& self, std::optional<double> lo, std::optional<double> hi);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor to_dtype(const Tensor& a, DType dtype);  // same tensor when the dtype already matches
Tensor to_device(const Tensor& a, Device device, bool non_blocking = false);  // likewise for the device
// a's values in page-locked host memory (a itself when it is already there), for copies to the
// CUDA device that need not wait; a must be on the CPU and a CUDA device present.
Tensor pin_memory(const Tensor& a);
Tensor clone(const Tensor& a);
Tensor contiguous(const Tensor& a);                // same tensor when already contiguous
void copy_(const Tensor& dst, const Tensor& src);  // broadcasts and casts src
void fill_(const Tensor& self, Scalar value);
// torch's out=: `result` of op written into `out`, which keeps its dtype (one the result casts to
// without losing its kind: no float into an integer out) and must be on its device and need no
// gradient. An out of another shape is resized to the result's: returns true when it had elements
// (torch then warns).
bool write_out(const char* op, const Tensor& out, const Tensor& result);
// Checks done by every in-place op: autograd rules for leaves and views.
void check_inplace(const Tensor& self, const char* op);
// Last step of an in-place op on a view: the base's history gains the change.
void finish_inplace(const Tensor& self, const Ref<Node>& node);

inline Tensor add(const Tensor& a, const Tensor& b) { return binary(BinOp::Add, a, b); }
inline Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinOp::Sub, a, b); }
inline Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinOp::Mul, a, b); }
inline Tensor div(const Tensor& a, const Tensor& b) { return binary(BinOp::Div, a, b); }
inline Tensor mul(const Tensor& a, double s) { return binary(BinOp::Mul, a, Scalar::of(s)); }
inline Tensor neg(const Tensor& a) { return unary(UnOp::Neg, a); }
inline Tensor zeros(const Dims& shape, DType dt, Device device) { return full(shape, Scalar::of(0), dt, device); }
inline Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
inline Tensor ones_like(const Tensor& t) { return full(t.shape(), Scalar::of(1), t.dtype(), t.device()); }

// ---- shapes, views and indexing (ops_shape.cpp)
Tensor view(const Tensor& a, const Dims& shape);  // shape may hold one -1
Tensor reshape(const Tensor& a, const Dims& shape);
Tensor permute(const Tensor& a, const Dims& dims);
Tensor transpose(const Tensor& a, int64_t d0, int64_t d1);
Tensor transpose2d(const Tensor& a);                // x.t(): a tensor of at most 2 dims, its dims swapped
Tensor expand(const Tensor& a, const Dims& shape);  // -1 keeps a size
Tensor squeeze(const Tensor& a, std::optional<int64_t> dim);
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor flatten(const Tensor& a, int64_t start, int64_t end);
Tensor select(const Tensor& a, int64_t dim, int64_t index);
Tensor slice(const Tensor& a, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step);
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length);  // checked, as PyTorch's
Tensor repeat(const Tensor& a, const Dims& reps);
Tensor squeeze_dims(const Tensor& a, const Dims& dims);  // several dims at once
Tensor reversed_dims(const Tensor& a);                   // x.T
Tensor cat(const std::vector<Tensor>& ts, int64_t dim);
Tensor stack(const std::vector<Tensor>& ts, int64_t dim);
Tensor sum_to(const Tensor& g, const Dims& shape);  // sums broadcast dims away

// One item of a Python index: x[1], x[1:3], x[None], x[...], x[tensor].
struct IndexItem {
  enum Kind : uint8_t { Int, Slice, None, Ellipsis, Tensor_ } kind;
  int64_t i = 0;
  std::optional<int64_t> start, stop;
  int64_t step = 1;
  Tensor t;
};
Tensor index(const Tensor& a, const std::vector<IndexItem>& idx);
void index_put_(const Tensor& a, const std::vector<IndexItem>& idx, const Tensor& value);
// a[i0, i1, ...] with int64 index tensors for the leading dims (broadcast together).
Tensor gather_nd(const Tensor& a, const std::vector<Tensor>& indices);
// out = copy of a with out[indices] = v (accumulate: +=), the backward of gather_nd.
void scatter_nd_(const Tensor& out, const std::vector<Tensor>& indices, const Tensor& v, bool accumulate);
Tensor nonzero(const Tensor& a);  // [n, ndim] int64

// ---- reductions (ops_reduce.cpp)
Tensor sum(const Tensor& a, const DimList& dims, bool keepdim, std::optional<DType> dtype = std::nullopt);
Tensor mean(const Tensor& a, const DimList& dims, bool keepdim);
Tensor prod(const Tensor& a, const DimList& dims, bool keepdim);
Tensor amax(const Tensor& a, const DimList& dims, bool keepdim);  // gradient spread over ties
Tensor amin(const Tensor& a, const DimList& dims, bool keepdim);
Tensor max_all(const Tensor& a, bool is_max);  // x.max(), x.min(): amax over all dims, PyTorch's node name
std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim, bool is_max);  // values, indices
Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim, bool is_max);
Tensor all(const Tensor& a, const DimList& dims, bool keepdim);
Tensor any(const Tensor& a, const DimList& dims, bool keepdim);
Tensor var(const Tensor& a, const DimList& dims, double correction, bool keepdim);
Tensor std_(const Tensor& a, const DimList& dims, double correction, bool keepdim);
Tensor logsumexp(const Tensor& a, const DimList& dims, bool keepdim);
Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);

// ---- linear algebra (ops_linalg.cpp)
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor addmm(const Tensor& input, const Tensor& mat1, const Tensor& mat2);  // input + mat1 @ mat2
// mm (2-D, 2-D), bmm (3-D, 3-D, same batch), mv (2-D, 1-D) and dot (1-D, 1-D): matmul for
// exactly the ranks `op` takes, as PyTorch checks them.
Tensor matmul_ranked(const char* op, const Tensor& a, const Tensor& b, int rank_a, int rank_b);
// Square float matrices [..., n, n] (batched; no CUDA kernels yet): the determinant [...], the
// inverse, X with A X = B (B [..., n, m] or a vector [..., n]; batch dims broadcast) and the
// lower Cholesky factor. Gradients as PyTorch's for invertible (det), positive-definite
// (cholesky) matrices.
Tensor det(const Tensor& a);
Tensor inv(const Tensor& a);
Tensor solve(const Tensor& a, const Tensor& b);
Tensor cholesky(const Tensor& a);
// Reduced QR [..., m, k] and [..., k, n] (k = min(m, n); gradient for m >= n), eigh of the
// symmetric matrices whose lower triangles a holds (eigenvalues ascending, eigenvectors as
// columns) and the reduced SVD U, S (descending), Vh, as PyTorch's (up to the signs of vectors).
std::pair<Tensor, Tensor> qr(const Tensor& a);
std::pair<Tensor, Tensor> eigh(const Tensor& a);
std::array<Tensor, 3> svd(const Tensor& a);

}  // namespace fk

// Arithmetic operators for writing backward formulas legibly.
namespace fk {
inline Tensor operator+(const Tensor& a, const Tensor& b) { return binary(BinOp::Add, a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return binary(BinOp::Sub, a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return binary(BinOp::Mul, a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return binary(BinOp::Div, a, b); }
inline Tensor operator*(const Tensor& a, double s) { return binary(BinOp::Mul, a, Scalar::of(s)); }
inline Tensor operator+(const Tensor& a, double s) { return binary(BinOp::Add, a, Scalar::of(s)); }
inline Tensor operator-(double s, const Tensor& a) { return binary(BinOp::Sub, a, Scalar::of(s), true); }
inline Tensor operator-(const Tensor& a) { return unary(UnOp::Neg, a); }
}  // namespace fk

// ---- neural-network ops (ops_nn.cpp), PyTorch's functional API with NCHW layouts
namespace fk {
using Pair2 = std::array<int64_t, 2>;
struct Window2d;
// The geometry conv2d gives x [N, C, H, W] and w [O, C/groups, kh, kw] (checked as conv2d checks it).
Window2d conv2d_window(const Tensor& x, const Tensor& w, Pair2 stride, Pair2 padding, Pair2 dilation);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
              int64_t groups);
std::pair<Tensor, Tensor> max_pool2d(const Tensor& x, Pair2 kernel, Pair2 stride, Pair2 padding, Pair2 dilation,
                                     bool ceil_mode);
Tensor avg_pool2d(const Tensor& x, Pair2 kernel, Pair2 stride, Pair2 padding, bool ceil_mode, bool count_include_pad);
Tensor adaptive_avg_pool2d(const Tensor& x, Pair2 output_size);
// running_mean/var (optional) are updated in place when training.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps);
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias);
// reduction: 0 none, 1 mean, 2 sum
Tensor cross_entropy(const Tensor& x, const Tensor& target, int reduction, double label_smoothing,
                     int64_t ignore_index);
// (input - target)^2 (broadcast), reduced as cross_entropy's `reduction` says.
Tensor mse_loss(const Tensor& input, const Tensor& target, int reduction);
// Negative log likelihood of log-probabilities x [N, C] at class indices target [N]; rows whose
// target is `ignore` count zero (and not in the mean).
Tensor nll_loss(const Tensor& x, const Tensor& target, int reduction, int64_t ignore);
}  // namespace fk

namespace fk {
// One Adam/AdamW update of a parameter in place (with its moment buffers), in one pass.
// weight_decay is L2 (added to the gradient) unless `decoupled` (AdamW).
void adam_step_(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, double lr, double beta1,
                double beta2, double eps, double weight_decay, bool decoupled, int64_t step);
}  // namespace fk
