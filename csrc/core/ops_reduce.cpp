// Reductions and the ops built from them (var, std, logsumexp, softmax).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd.h"
#include "backend.h"
#include "ops.h"

namespace fk {

namespace {

struct Plan {
  bool reduced[kMaxDims] = {};
  Dims out_shape;   // with keepdim
  Dims kept_shape;  // without
  int64_t len = 1;  // elements reduced into each output
};

Plan make_plan(const Tensor& a, const DimList& dl) {
  Plan p;
  if (dl.all) {
    for (int i = 0; i < a.ndim(); i++) p.reduced[i] = true;
  } else {
    for (int64_t d : dl.dims) {
      const int w = wrap_dim(d, a.ndim());
      if (a.ndim() == 0) continue;
      FK_CHECK(!p.reduced[w], Runtime, "dim ", w, " appears multiple times in the list of dims");
      p.reduced[w] = true;
    }
  }
  for (int i = 0; i < a.ndim(); i++) {
    if (p.reduced[i]) {
      p.len *= a.size(i);
      p.out_shape.push_back(1);
    } else {
      p.out_shape.push_back(a.size(i));
      p.kept_shape.push_back(a.size(i));
    }
  }
  return p;
}

// The value reductions take when they cover no elements.
std::optional<Scalar> empty_value(RedOp op) {
  switch (op) {
    case RedOp::Sum: return Scalar::of(0);
    case RedOp::Prod: return Scalar::of(1);
    case RedOp::All: return Scalar::of_bool(true);
    case RedOp::Any: return Scalar::of_bool(false);
    default: return std::nullopt;
  }
}

const char* red_name(RedOp op) {
  static const char* names[] = {"sum", "prod", "max", "min", "argmax", "argmin", "all", "any"};
  return names[int(op)];
}

// max, argmax and the like over all of an empty tensor have no value: PyTorch's error.
[[noreturn]] void no_value_over_all(RedOp op, const Dims& shape) {
  throw Error(ErrorKind::Index, str_cat(red_name(op),
                                        "(): Expected reduction dim to be specified for input.numel() "
                                        "== 0. Specify the reduction dim with the 'dim' argument (input shape ",
                                        to_string(shape), ")"));
}

// A reduced dim of stride 0 (an expand) repeats one value: max, min, all and any see it once,
// a sum sees it `repeat` times, and argmax/argmin find it first at index 0. So the
// expansion is never materialised or walked.
void reduce_expanded(RedOp op, Tensor x, const DimList& dl, const Plan& p, const Tensor& out) {
  int64_t repeat = 1;
  Dims shape = x.shape();
  for (int i = 0; i < x.ndim(); i++)
    if (p.reduced[i] && x.strides()[i] == 0 && shape[i] > 1) {
      repeat *= shape[i];
      shape[i] = 1;
    }
  if (repeat == 1 || op == RedOp::Prod) return backend(out.device()).reduce(op, x, p.reduced, p.len, out);
  if (op == RedOp::ArgMax || op == RedOp::ArgMin) return fill_(out, Scalar::of_int(0));  // one reduced dim
  x = make_view(x, shape, x.strides(), x.p->offset);
  const Plan px = make_plan(x, dl);
  backend(out.device()).reduce(op, x, px.reduced, px.len, out);
  if (op == RedOp::Sum) binary_(BinOp::Mul, out, Scalar::of_int(repeat));
}

// Reduction without autograd. `in_dt`: dtype the kernel reads; `out_dt`: dtype written.
Tensor reduce(RedOp op, const Tensor& a, const DimList& dl, bool keepdim, DType in_dt, DType out_dt) {
  const Plan p = make_plan(a, dl);
  Tensor out = empty(p.out_shape, out_dt, a.device());
  if (p.len == 0 || out.numel() > 0) {
    GradMode off(false);
    if (p.len == 0) {
      auto v = empty_value(op);
      if (!v) {
        if (dl.all) no_value_over_all(op, a.shape());
        int zero = 0;
        while (!(p.reduced[zero] && a.size(zero) == 0)) zero++;
        throw Error(ErrorKind::Index, str_cat(red_name(op), "(): Expected reduction dim ", zero,
                                              " to have non-zero size (input shape ", to_string(a.shape()), ")"));
      }
      fill_(out, *v);
    } else {
      reduce_expanded(op, to_dtype(detach(a), in_dt), dl, p, out);
    }
  }
  if (!keepdim) {  // a fresh contiguous result: drop the reduced dims in place
    out.p->shape = p.kept_shape;
    out.p->strides = contiguous_strides(p.kept_shape);
  }
  return out;
}

// g of the reduced shape, brought back to a's shape (broadcast, not copied).
Tensor unreduce(const Tensor& g, const Node& n) {
  const Dims& in = n.in_shape[0];
  Dims keep;
  for (int i = 0, j = 0; i < in.n; i++) {
    const bool red = n.ints[i] != 0;
    keep.push_back(red ? 1 : (n.scalars[0] ? g.size(i) : g.size(j++)));
  }
  return expand(reshape(g, keep), in);
}

void set_reduced_dims(Node* n, const Tensor& a, const DimList& dl, bool keepdim) {
  const Plan p = make_plan(a, dl);
  for (int i = 0; i < a.ndim(); i++) n->ints.push_back(p.reduced[i]);
  n->scalars[0] = keepdim;
}

DimList dims_of(const Node& n) {
  DimList d;
  d.all = false;
  for (int i = 0; i < n.ints.n; i++)
    if (n.ints[i]) d.dims.push_back(i);
  return d;
}

void sum_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = unreduce(g, n); }
void mean_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = unreduce(g, n) * n.scalars[1]; }

void prod_bw(Node& n, const Tensor& g, Tensor* gi) {
  // d prod / d a_i = product of the others; with zeros, only a lone zero gets a nonzero gradient.
  const Tensor &a = n.saved_at(0), &out = n.saved_at(1);
  const DimList dl = dims_of(n);
  const Tensor is_zero = binary(BinOp::Eq, a, Scalar::of(0));
  const Tensor zero = scalar_tensor(Scalar::of(0), a.dtype());
  const Tensor nz_prod = prod(where(is_zero, scalar_tensor(Scalar::of(1), a.dtype()), a), dl, true);
  const Tensor nzeros = sum(is_zero, dl, true);
  const Tensor others = where(is_zero, where(binary(BinOp::Eq, nzeros, Scalar::of(1)), nz_prod, zero),
                              unreduce(out, n) / where(is_zero, scalar_tensor(Scalar::of(1), a.dtype()), a));
  gi[0] = unreduce(g, n) * others;
}

void extreme_bw(Node& n, const Tensor& g, Tensor* gi) {
  // Ties share the gradient evenly.
  const Tensor &a = n.saved_at(0), &out = n.saved_at(1);
  const Tensor mask = to_dtype(binary(BinOp::Eq, a, unreduce(out, n)), g.dtype());
  gi[0] = unreduce(g, n) * mask / sum(mask, dims_of(n), true);
}

void max_dim_bw(Node& n, const Tensor& g, Tensor* gi) {
  const int d = int(n.ints[n.ints.n - 1]);
  const Dims& in = n.in_shape[0];
  if (in.n == 0) {
    gi[0] = g;
    return;
  }
  Tensor idx = n.saved_at(0);
  Tensor gk = g;
  if (!n.scalars[0]) {
    idx = unsqueeze(idx, d);
    gk = unsqueeze(g, d);
  }
  Dims shape = Dims::filled(in.n, 1);
  shape[d] = in[d];
  const Tensor pos = reshape(arange(0, double(in[d]), 1, DType::Int64, g.device()), shape);
  gi[0] = where(binary(BinOp::Eq, pos, idx), gk, scalar_tensor(Scalar::of(0), g.dtype()));
}

}  // namespace

Tensor sum(const Tensor& a, const DimList& dims, bool keepdim, std::optional<DType> dtype) {
  const DType dt = dtype ? *dtype : is_float(a.dtype()) ? a.dtype() : DType::Int64;
  const Tensor A = to_dtype(a, dt);
  Tensor out = reduce(RedOp::Sum, A, dims, keepdim, dt, dt);
  if (Ref<Node> n = make_node(dims.all ? "SumBackward0" : "SumBackward1", sum_bw, {&A})) {
    set_reduced_dims(n.get(), A, dims, keepdim);
    set_history(out, n);
  }
  return out;
}

Tensor mean(const Tensor& a, const DimList& dims, bool keepdim) {
  FK_CHECK(is_float(a.dtype()), Runtime,
           "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: ",
           dtype_name(a.dtype()));
  Tensor out = reduce(RedOp::Sum, a, dims, keepdim, a.dtype(), a.dtype());
  const int64_t count = make_plan(a, dims).len;
  {
    GradMode off(false);
    binary_(BinOp::Div, out, Scalar::of(double(count)));  // 0/0 gives nan, as PyTorch
  }
  if (Ref<Node> n = make_node(dims.all ? "MeanBackward0" : "MeanBackward1", mean_bw, {&a})) {
    set_reduced_dims(n.get(), a, dims, keepdim);
    n->scalars[1] = 1.0 / double(count);
    set_history(out, n);
  }
  return out;
}

Tensor prod(const Tensor& a, const DimList& dims, bool keepdim) {
  const DType dt = is_float(a.dtype()) ? a.dtype() : DType::Int64;
  const Tensor A = to_dtype(a, dt);
  Tensor out = reduce(RedOp::Prod, A, dims, keepdim, dt, dt);
  if (Ref<Node> n = make_node(dims.all ? "ProdBackward0" : "ProdBackward1", prod_bw, {&A})) {
    set_reduced_dims(n.get(), A, dims, keepdim);
    n->save(A);
    set_history(out, n);
    n->save(out);
  }
  return out;
}

static Tensor extreme(const Tensor& a, const DimList& dims, bool keepdim, bool is_max, const char* name) {
  Tensor out = reduce(is_max ? RedOp::Max : RedOp::Min, a, dims, keepdim, a.dtype(), a.dtype());
  if (Ref<Node> n = make_node(name, extreme_bw, {&a})) {
    set_reduced_dims(n.get(), a, dims, keepdim);
    n->save(a);
    set_history(out, n);
    n->save(out);
  }
  return out;
}

Tensor amax(const Tensor& a, const DimList& dims, bool keepdim) {
  return extreme(a, dims, keepdim, true, "AmaxBackward0");
}
Tensor amin(const Tensor& a, const DimList& dims, bool keepdim) {
  return extreme(a, dims, keepdim, false, "AminBackward0");
}
Tensor max_all(const Tensor& a, bool is_max) {
  return extreme(a, DimList(), false, is_max, is_max ? "MaxBackward1" : "MinBackward1");
}

std::pair<Tensor, Tensor> max_dim(const Tensor& a, int64_t dim, bool keepdim, bool is_max) {
  const int d = wrap_dim(dim, a.ndim());
  const DimList dl = DimList::of({d});
  Tensor values = reduce(is_max ? RedOp::Max : RedOp::Min, a, dl, keepdim, a.dtype(), a.dtype());
  Tensor indices = reduce(is_max ? RedOp::ArgMax : RedOp::ArgMin, a, dl, keepdim, a.dtype(), DType::Int64);
  if (Ref<Node> n = make_node(is_max ? "MaxBackward0" : "MinBackward0", max_dim_bw, {&a})) {
    n->scalars[0] = keepdim;
    n->ints = {a.ndim() ? d : 0};
    n->save(indices);
    set_history(values, n);
  }
  return {values, indices};
}

Tensor argmax(const Tensor& a, std::optional<int64_t> dim, bool keepdim, bool is_max) {
  const RedOp op = is_max ? RedOp::ArgMax : RedOp::ArgMin;
  FK_CHECK(a.dtype() != DType::Bool, Runtime, red_name(op), "(): not implemented for 'Bool' tensors");
  if (!dim) {
    if (a.numel() == 0) no_value_over_all(op, a.shape());
    Tensor flat = reshape(detach(a), {-1});
    Tensor r = reduce(op, flat, DimList::of({0}), false, a.dtype(), DType::Int64);
    return keepdim ? reshape(r, Dims::filled(a.ndim(), 1)) : r;
  }
  return reduce(op, a, DimList::of({*dim}), keepdim, a.dtype(), DType::Int64);
}

Tensor all(const Tensor& a, const DimList& dims, bool keepdim) {
  return reduce(RedOp::All, a, dims, keepdim, DType::Bool, DType::Bool);
}
Tensor any(const Tensor& a, const DimList& dims, bool keepdim) {
  return reduce(RedOp::Any, a, dims, keepdim, DType::Bool, DType::Bool);
}

// The variance in float64 whatever a's dtype, as PyTorch accumulates: float32 squares of values
// near 1e20 overflow, though their variance (and surely their std) may not.
static Tensor var64(const Tensor& a, const DimList& dims, double correction, bool keepdim) {
  FK_CHECK(is_float(a.dtype()), Runtime, "var(): expected a floating point tensor, got ", dtype_name(a.dtype()));
  const Tensor x = to_dtype(a, DType::Float64);
  const Tensor d = x - mean(x, dims, true);
  const double n = double(make_plan(a, dims).len);
  const Tensor v = sum(d * d, dims, keepdim) * (1.0 / std::max(0.0, n - correction));
  if (n - correction <= 0) return v;  // no degrees of freedom: NaN, as in PyTorch
  // Equal finite values have variance exactly 0 (the rounded mean would leave a trace), as in
  // PyTorch, whose gradient there is then 0 too.
  Tensor flat;
  {
    GradMode off(false);
    const Tensor hi = amax(x, dims, keepdim), lo = amin(x, dims, keepdim);
    flat = binary(BinOp::And, binary(BinOp::Eq, hi, lo), binary(BinOp::Lt, unary(UnOp::Abs, hi), Scalar::of(INFINITY)));
  }
  return where(flat, scalar_tensor(Scalar::of(0), v.dtype()), v);
}

static void var_bw(Node& n, const Tensor& g, Tensor* gi) {
  // d var / d a = 2 (a - mean) / (N - correction), taken as 0 where var == 0 (equal values).
  const Tensor &a = n.saved_at(0), &out = n.saved_at(1);
  gi[0] = where(binary(BinOp::Eq, unreduce(out, n), Scalar::of(0)), scalar_tensor(Scalar::of(0), g.dtype()),
                unreduce(g, n) * (a - mean(a, dims_of(n), true)) * (2 * n.scalars[1]));
}

static void std_bw(Node& n, const Tensor& g, Tensor* gi) {
  // d std / d a = (a - mean) / ((N - correction) * std), taken as 0 where std == 0.
  const Tensor &a = n.saved_at(0), &out = n.saved_at(1);
  const DimList dl = dims_of(n);
  const Tensor s = unreduce(out, n);
  gi[0] = where(binary(BinOp::Eq, s, Scalar::of(0)), scalar_tensor(Scalar::of(0), g.dtype()),
                unreduce(g, n) * (a - mean(a, dl, true)) / s * n.scalars[1]);  // selected: g may be inf
}

// var and std: the value without history (from var64), then one node with var's or std's backward.
static Tensor spread(const Tensor& a, const DimList& dims, double correction, bool keepdim, bool is_std) {
  Tensor out;
  {
    GradMode off(false);
    const Tensor v = var64(a, dims, correction, keepdim);
    out = to_dtype(is_std ? unary(UnOp::Sqrt, v) : v, a.dtype());
  }
  if (Ref<Node> n = make_node(is_std ? "StdBackward0" : "VarBackward0", is_std ? std_bw : var_bw, {&a})) {
    set_reduced_dims(n.get(), a, dims, keepdim);
    n->scalars[1] = 1.0 / std::max(0.0, double(make_plan(a, dims).len) - correction);
    n->save(a);
    set_history(out, n);
    n->save(out);
  }
  return out;
}

Tensor var(const Tensor& a, const DimList& dims, double correction, bool keepdim) {
  return spread(a, dims, correction, keepdim, false);
}
Tensor std_(const Tensor& a, const DimList& dims, double correction, bool keepdim) {
  return spread(a, dims, correction, keepdim, true);
}

static void softmax_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor y = n.saved_at(0);
  gi[0] = y * (g - sum(g * y, DimList::of({-1}), true));
}
static void log_softmax_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor y = n.saved_at(0);
  gi[0] = g - unary(UnOp::Exp, y) * sum(g, DimList::of({-1}), true);
}

// Fused along the last dimension.
static Tensor softmax_last(const Tensor& a, bool log) {
  const Tensor A = contiguous(detach(a));
  Tensor out = empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).softmax_rows(A, out, log);
  if (Ref<Node> n =
          make_node(log ? "LogSoftmaxBackward0" : "SoftmaxBackward0", log ? log_softmax_bw : softmax_bw, {&a})) {
    set_history(out, n);
    n->save(out);
  }
  return out;
}

// The max along dims, to subtract before exp: 0 where it is infinite for logsumexp (so an
// all -inf row stays -inf and a +inf one gives inf, as in PyTorch), and 0 only where it is -inf
// for softmax (a +inf max makes the row NaN throughout, as in PyTorch and the row kernel).
static Tensor max_shift(const Tensor& a, const DimList& dims, bool keep_plus_inf) {
  GradMode off(false);
  Tensor m = amax(a, dims, true);
  const Tensor keep = keep_plus_inf ? binary(BinOp::Ne, m, Scalar::of(-INFINITY))
                                    : binary(BinOp::Lt, unary(UnOp::Abs, m), Scalar::of(INFINITY));
  return where(keep, m, scalar_tensor(Scalar::of(0), m.dtype()));
}

static void logsumexp_bw(Node& n, const Tensor& g, Tensor* gi) {
  // d lse / d a = exp(a - lse), the softmax over the reduced dims
  gi[0] = unreduce(g, n) * unary(UnOp::Exp, n.saved_at(0) - unreduce(n.saved_at(1), n));
}

Tensor logsumexp(const Tensor& a, const DimList& dims, bool keepdim) {
  const Tensor A = to_dtype(a, to_float(a.dtype()));
  if (A.numel() == 0) return unary(UnOp::Log, sum(unary(UnOp::Exp, A), dims, keepdim));
  Tensor out;
  {
    GradMode off(false);
    const Tensor m = max_shift(A, dims, false);
    out = unary(UnOp::Log, sum(unary(UnOp::Exp, A - m), dims, true)) + m;
    if (!keepdim) out = reshape(out, make_plan(A, dims).kept_shape);
  }
  if (Ref<Node> n = make_node("LogsumexpBackward0", logsumexp_bw, {&A})) {
    set_reduced_dims(n.get(), A, dims, keepdim);
    n->save(A);
    set_history(out, n);
    n->save(out);
  }
  return out;
}

Tensor softmax(const Tensor& a, int64_t dim) {
  FK_CHECK(is_float(a.dtype()), Runtime, "softmax is not implemented for '", dtype_name(a.dtype()),
           "' tensors; convert to a floating point dtype first");
  const DimList dl = DimList::of({dim});
  wrap_dim(dim, a.ndim());
  if (a.numel() == 0) return clone(a);
  if (a.ndim() > 0 && wrap_dim(dim, a.ndim()) == a.ndim() - 1) return softmax_last(a, false);
  const Tensor e = unary(UnOp::Exp, a - max_shift(a, dl, true));
  return e / sum(e, dl, true);
}

Tensor log_softmax(const Tensor& a, int64_t dim) {
  FK_CHECK(is_float(a.dtype()), Runtime, "log_softmax is not implemented for '", dtype_name(a.dtype()),
           "' tensors; convert to a floating point dtype first");
  const DimList dl = DimList::of({dim});
  wrap_dim(dim, a.ndim());
  if (a.numel() == 0) return clone(a);
  if (a.ndim() > 0 && wrap_dim(dim, a.ndim()) == a.ndim() - 1) return softmax_last(a, true);
  const Tensor s = a - max_shift(a, dl, true);
  return s - unary(UnOp::Log, sum(unary(UnOp::Exp, s), dl, true));
}

}  // namespace fk
