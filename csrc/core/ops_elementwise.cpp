// Elementwise ops: binary with broadcasting and type promotion, unary, clamp,
// where, casts and copies, each with its backward formula.
#include <cmath>

#include "autograd.h"
#include "backend.h"
#include "ops.h"

namespace fk {

// ---- promotion and broadcasting --------------------------------------------

DType result_type(const Tensor& a, const Tensor& b) {
  // PyTorch: dimensioned tensors > 0-d tensors > Python numbers, except that a
  // weaker operand of a higher category (bool < int < float) still lifts the result.
  auto rank = [](const Tensor& t) { return t.p->wrapped_number ? 0 : t.ndim() == 0 ? 1 : 2; };
  const Tensor& hi = rank(a) >= rank(b) ? a : b;
  const Tensor& lo = rank(a) >= rank(b) ? b : a;
  if (rank(a) == rank(b)) return promote(a.dtype(), b.dtype());
  if (category(lo.dtype()) <= category(hi.dtype())) return hi.dtype();
  if (lo.p->wrapped_number) return lo.dtype() == DType::Float64 ? DType::Float32 : lo.dtype();
  return lo.dtype();
}

DType scalar_result_type(const Tensor& a, const Scalar& s) {
  const DType sd = s.kind == Scalar::Float ? DType::Float32 : s.kind == Scalar::Int ? DType::Int64 : DType::Bool;
  return category(sd) > category(a.dtype()) ? sd : a.dtype();
}

Dims broadcast_shapes(const Dims& a, const Dims& b) {
  const int n = std::max(a.n, b.n);
  Dims out = Dims::filled(n, 1);
  for (int i = 0; i < n; i++) {
    const int64_t x = i < n - a.n ? 1 : a[i - (n - a.n)];
    const int64_t y = i < n - b.n ? 1 : b[i - (n - b.n)];
    FK_CHECK(x == y || x == 1 || y == 1, Runtime, "shapes ", to_string(a), " and ", to_string(b),
             " are not broadcastable: size ", x, " vs ", y, " at dimension ", i);
    out[i] = x == 1 ? y : x;
  }
  return out;
}

// t's strides seen from the broadcast `shape` (0 along broadcast dims).
static Dims bstrides(const Tensor& t, const Dims& shape) {
  Dims s = Dims::filled(shape.n, 0);
  const int off = shape.n - t.ndim();
  for (int i = 0; i < t.ndim(); i++) s[i + off] = t.size(i) == 1 ? 0 : t.strides()[i];
  return s;
}

// Operand checks PyTorch makes before promotion.
static void check_operands(BinOp op, const Tensor& a, const Tensor& b) {
  FK_CHECK(!(op == BinOp::Sub && (a.dtype() == DType::Bool || b.dtype() == DType::Bool)), Runtime,
           "Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, "
           "use the `~` or `logical_not()` operator instead.");
}

// A 0-d CPU tensor (a wrapped Python number, say) mixes with a tensor of any device, as in PyTorch;
// the result lives on the other operand's device.
static bool cpu_scalar(const Tensor& t) { return t.ndim() == 0 && t.device() == Device::CPU; }
static Device result_device(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (!cpu_scalar(*t)) return t->device();
  return Device::CPU;
}

void check_same_device(std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    if (!first) first = t;
    FK_CHECK(t->device() == first->device(), Runtime,
             "Expected all tensors to be on the same device, but found at least two devices, ",
             device_str(first->device()), " and ", device_str(t->device()), "!");
  }
}

// Elementwise ops also take a CPU 0-d tensor with a tensor on any device, as PyTorch does.
static void check_device(const Tensor& a, const Tensor& b) {
  if (!cpu_scalar(a) && !cpu_scalar(b)) check_same_device({&a, &b});
}

// ---- device calls ------------------------------------------------------------

// out = op(a, b); a and b already of the compute dtype, out of the broadcast shape.
static void run_binary(BinOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const int status = backend(out.device()).binary(op, out, a, bstrides(a, out.shape()), b, bstrides(b, out.shape()));
  FK_CHECK(status != kDivByZero, Runtime, "ZeroDivisionError: integer division or modulo by zero");
  FK_CHECK(status != kNegativeIntPower, Runtime, "Integers to negative integer powers are not allowed.");
}

static void run_unary(UnOp op, const Tensor& out, const Tensor& a) {
  backend(out.device()).unary(op, out, a, bstrides(a, out.shape()));
}

// out = a converted to out's dtype, a broadcast to out's shape.
static void run_cast(const Tensor& out, const Tensor& a) {
  backend(out.device()).cast(out, a, bstrides(a, out.shape()));
}

// ---- binary ops --------------------------------------------------------------

static void add_bw(Node&, const Tensor& g, Tensor* gi) {
  gi[0] = g;
  gi[1] = g;
}
static void sub_bw(Node& n, const Tensor& g, Tensor* gi) {
  gi[0] = g;
  if (n.needs(1)) gi[1] = -g;
}
static void mul_bw(Node& n, const Tensor& g, Tensor* gi) {
  if (n.needs(0)) gi[0] = g * n.saved_at(1);
  if (n.needs(1)) gi[1] = g * n.saved_at(0);
}
static void div_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& b = n.saved_at(1);
  if (n.needs(0)) gi[0] = g / b;
  if (n.needs(1)) gi[1] = -g * n.saved_at(0) / (b * b);
}
static void pow_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor &a = n.saved_at(0), &b = n.saved_at(1);
  const Tensor zero = scalar_tensor(Scalar::of(0), g.dtype());
  if (n.needs(0)) {
    // d/da a^b = b a^(b-1), taken as 0 where b == 0 (avoids 0 * inf at a == 0).
    Tensor d = b * binary(BinOp::Pow, a, b - scalar_tensor(Scalar::of(1), b.dtype()));
    gi[0] = g * where(binary(BinOp::Eq, b, Scalar::of(0)), zero, d);
  }
  if (n.needs(1)) {
    Tensor d = n.saved_at(2) * unary(UnOp::Log, a);
    Tensor at_zero = binary(BinOp::And, binary(BinOp::Eq, a, Scalar::of(0)), binary(BinOp::Ge, b, Scalar::of(0)));
    gi[1] = g * where(at_zero, zero, d);
  }
}
// maximum/minimum: ties share the gradient equally, as in PyTorch; the loser gets an exact 0
// (selected, not multiplied: g may be inf).
static void extreme_bw(Node& n, const Tensor& g, Tensor* gi, BinOp wins) {
  const Tensor &a = n.saved_at(0), &b = n.saved_at(1);
  const Tensor win = binary(wins, a, b), tie = binary(BinOp::Eq, a, b), zero = scalar_tensor(Scalar::of(0), g.dtype());
  const Tensor half = g * 0.5;
  if (n.needs(0)) gi[0] = where(win, g, where(tie, half, zero));
  if (n.needs(1)) gi[1] = where(win, zero, where(tie, half, g));
}
static void max_bw(Node& n, const Tensor& g, Tensor* gi) { extreme_bw(n, g, gi, BinOp::Gt); }
static void min_bw(Node& n, const Tensor& g, Tensor* gi) { extreme_bw(n, g, gi, BinOp::Lt); }
// relu_grad(y, g) is linear in g: its own gradient (for double backward) is relu_grad(y, gg).
static void relu_grad_bw(Node& n, const Tensor& g, Tensor* gi) {
  if (n.needs(1)) gi[1] = binary(BinOp::ReluGrad, n.saved_at(0), g);
}
static void atan2_bw(Node& n, const Tensor& g, Tensor* gi) {
  // d atan2(a, b) = (b da - a db) / (a^2 + b^2)
  const Tensor &a = n.saved_at(0), &b = n.saved_at(1);
  const Tensor gr = g / (a * a + b * b);
  if (n.needs(0)) gi[0] = gr * b;
  if (n.needs(1)) gi[1] = -gr * a;
}
static void rem_bw(Node& n, const Tensor& g, Tensor* gi) {
  gi[0] = g;
  if (n.needs(1)) gi[1] = -g * binary(BinOp::FloorDiv, n.saved_at(0), n.saved_at(1));
}

// When the backward needs an operand saved: never, always, or only when the named input
// needs a gradient (x.mul_(2) on a tracked x then saves only the 2, so it stays legal).
enum class Save : uint8_t { No, IfA, IfB, Yes };

// Each op's backward, in the order of op_list.h (checked below).
struct BinaryDef {
  BinOp op;
  const char* backward;  // node name; nullptr: not differentiable
  BackwardFn bw;
  Save a = Save::No, b = Save::No;
  bool save_out = false;
};
static constexpr BinaryDef kBinary[] = {
    {BinOp::Add, "AddBackward0", add_bw},
    {BinOp::Sub, "SubBackward0", sub_bw},
    {BinOp::Mul, "MulBackward0", mul_bw, Save::IfB, Save::IfA},
    {BinOp::Div, "DivBackward0", div_bw, Save::IfB, Save::Yes},
    {BinOp::Pow, "PowBackward1", pow_bw, Save::Yes, Save::Yes, true},
    {BinOp::FloorDiv, nullptr, nullptr},
    {BinOp::Rem, "RemainderBackward0", rem_bw, Save::IfB, Save::IfB},
    {BinOp::Max, "MaximumBackward0", max_bw, Save::Yes, Save::Yes},
    {BinOp::Min, "MinimumBackward0", min_bw, Save::Yes, Save::Yes},
    {BinOp::Atan2, "Atan2Backward0", atan2_bw, Save::Yes, Save::Yes},
    {BinOp::Eq, nullptr, nullptr},
    {BinOp::Ne, nullptr, nullptr},
    {BinOp::Lt, nullptr, nullptr},
    {BinOp::Le, nullptr, nullptr},
    {BinOp::Gt, nullptr, nullptr},
    {BinOp::Ge, nullptr, nullptr},
    {BinOp::And, nullptr, nullptr},
    {BinOp::Or, nullptr, nullptr},
    {BinOp::Xor, nullptr, nullptr},
    {BinOp::ReluGrad, "ThresholdBackwardBackward0", relu_grad_bw, Save::IfB},
};

// Every op of op_list.h has exactly one table entry, at its own position.
template <class Table, class Op>
constexpr bool in_order(const Table& t, int n) {
  if (int(std::size(t)) != n) return false;
  for (int i = 0; i < n; i++)
    if (t[i].op != Op(i)) return false;
  return true;
}
static_assert(in_order<decltype(kBinary), BinOp>(kBinary, kNumBinOps), "kBinary must follow FK_BINARY_OPS");

// Compute dtype of op on operands promoting to `dt`; TypeError for unsupported pairs.
static DType compute_dtype(BinOp op, DType dt) {
  if (op == BinOp::Div || op == BinOp::Atan2) return to_float(dt);
  FK_CHECK(!(op >= BinOp::And && op <= BinOp::Xor && is_float(dt)), Type, "\"", kBinaryNames[int(op)],
           "\" is not implemented for '", dtype_name(dt), "' tensors (it needs integer or bool operands)");
  FK_CHECK(!(dt == DType::Bool && (op == BinOp::Sub || op == BinOp::Pow || op == BinOp::FloorDiv || op == BinOp::Rem)),
           Type, "\"", kBinaryNames[int(op)], "\" is not supported for bool tensors");
  return dt;
}

static bool wanted(Save s, const Node* n) {
  return s == Save::Yes || (s == Save::IfA && n->needs(0)) || (s == Save::IfB && n->needs(1));
}

// Saves what the backward of `op` needs (slot 0: a, slot 1: b).
static void save_binary(Node* n, BinOp op, const Tensor& a, const Tensor& b, bool inplace) {
  const BinaryDef& d = kBinary[int(op)];
  // An in-place op overwrites a, so its backward gets a copy of the original (as PyTorch does).
  n->save(wanted(d.a, n) ? (inplace ? clone(detach(a)) : a) : Tensor());
  n->save(wanted(d.b, n) ? b : Tensor());
}

static Ref<Node> binary_node(BinOp op, const Tensor& a, const Tensor& b, bool inplace, const char* name = nullptr) {
  const BinaryDef& d = kBinary[int(op)];
  if (!d.backward) return nullptr;
  Ref<Node> n = make_node(name ? name : d.backward, d.bw, {&a, &b});
  if (n) save_binary(n.get(), op, a, b, inplace);
  return n;
}

// Whether a and b touch the same bytes in different places (x[1:] += x[:-1]).
static bool overlaps(const Tensor& a, const Tensor& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  auto range = [](const Tensor& t) {
    return std::pair<const char*, const char*>(t.raw(),
                                               t.raw() + *extent(t.shape(), t.strides()) * itemsize(t.dtype()));
  };
  const auto [a0, a1] = range(a);
  const auto [b0, b1] = range(b);
  if (a1 <= b0 || b1 <= a0) return false;
  return !(a.raw() == b.raw() && a.shape() == b.shape() && a.strides() == b.strides() && a.dtype() == b.dtype());
}

// The operand of an in-place op on `self`, copied first if it aliases self's memory elsewhere.
static Tensor unaliased(const Tensor& self, const Tensor& other) {
  return overlaps(self, other) ? clone(other) : other;
}

// PyTorch names the nodes of x ** 2, 2 ** x and 2 - x apart from those of tensor operands.
static const char* scalar_form_name(BinOp op, const Tensor& a, const Tensor& b) {
  if (op == BinOp::Pow && b.p->wrapped_number) return "PowBackward0";
  if (op == BinOp::Pow && a.p->wrapped_number) return "PowBackward2";
  if (op == BinOp::Sub && a.p->wrapped_number) return "RsubBackward1";
  return nullptr;
}

Tensor binary(BinOp op, const Tensor& a, const Tensor& b) {
  check_device(a, b);
  check_operands(op, a, b);
  const DType ct = compute_dtype(op, result_type(a, b));
  const Tensor A = to_dtype(a, ct), B = to_dtype(b, ct);
  const Dims shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape());
  Tensor out = empty(shape, is_comparison(op) ? DType::Bool : ct, result_device({&a, &b}));
  Ref<Node> n = binary_node(op, A, B, false, scalar_form_name(op, a, b));
  run_binary(op, out, A, B);
  if (n) {
    set_history(out, n);
    if (kBinary[int(op)].save_out) n->save(out);
  }
  return out;
}

Tensor binary(BinOp op, const Tensor& a, Scalar s, bool reflected) {
  FK_CHECK(!(op == BinOp::Pow && !reflected && s.kind == Scalar::Int && s.i < 0 && !is_float(a.dtype())), Runtime,
           "Integers to negative integer powers are not allowed.");
  // True division computes in float, so the number keeps its value (uint8 / -4 is -0.5, not / 252).
  const DType sdt = scalar_result_type(a, s);
  const Tensor st = scalar_tensor(s, op == BinOp::Div ? to_float(sdt) : sdt);
  return reflected ? binary(op, st, a) : binary(op, a, st);
}

void check_inplace(const Tensor& self, const char* op) {
  for (int i = 0; i < self.ndim(); i++)
    FK_CHECK(self.strides()[i] != 0 || self.size(i) <= 1 || self.numel() == 0, Runtime,
             "unsupported operation: more than one element of "
             "the written-to tensor refers to a single memory location (",
             op, " on an expanded tensor of shape ", to_string(self.shape()),
             "). Please clone() the tensor before performing the operation.");
  if (!grad_enabled()) return;
  FK_CHECK(!(self.is_leaf() && self.p->requires_grad), Runtime,
           "a leaf Variable that requires grad is being used in an in-place operation (", op,
           "). Wrap it in `with fastkern.no_grad():` or use `.data`");
  if (self.p->is_view && self.p->base) {
    const Tensor base(self.p->base);
    FK_CHECK(!(base.is_leaf() && base.p->requires_grad), Runtime,
             "a view of a leaf Variable that requires grad is being used in an in-place operation (", op, ").");
    FK_CHECK(!base.requires_grad() || base.is_contiguous(), NotImplemented, "in-place ", op,
             " on a view of a non-contiguous tensor that requires grad is not supported; clone() it first");
  }
}

void binary_(BinOp op, const Tensor& self, const Tensor& other) {
  check_device(self, other);
  check_operands(op, self, other);
  const char* name = kBinaryNames[int(op)];
  check_inplace(self, name);
  FK_CHECK(!is_comparison(op), Runtime, "in-place ", name, " is not supported");
  const DType rt = compute_dtype(op, result_type(self, other));
  FK_CHECK(category(rt) <= category(self.dtype()), Runtime, "result type ", dtype_name(rt),
           " can't be cast to the desired output type ", dtype_name(self.dtype()), " (in-place ", name, ")");
  const Dims shape = broadcast_shapes(self.shape(), other.shape());
  FK_CHECK(shape == self.shape(), Runtime, "output with shape ", to_string(self.shape()),
           " doesn't match the broadcast shape ", to_string(shape), " (in-place ", name, " with ",
           to_string(other.shape()), ")");
  const Tensor B = unaliased(self, to_dtype(other, self.dtype()));
  Ref<Node> n = binary_node(op, self, B, true);
  run_binary(op, self, self, B);
  self.bump_version();
  if (n) {
    set_history(self, n);
    if (kBinary[int(op)].save_out) n->save(self);
  }
  finish_inplace(self, n);
}

void binary_(BinOp op, const Tensor& self, Scalar s) {
  binary_(op, self, scalar_tensor(s, scalar_result_type(self, s)));
}

Tensor logical(BinOp op, const Tensor& a, const Tensor& b) {
  return binary(op, to_dtype(a, DType::Bool), to_dtype(b, DType::Bool));
}

Tensor logical_not(const Tensor& a) { return unary(UnOp::Not, to_dtype(a, DType::Bool)); }

static Tensor scaled(const Tensor& b, Scalar alpha) {
  return alpha.as_double() == 1.0 ? b : binary(BinOp::Mul, b, alpha);
}

Tensor add_scaled(BinOp op, const Tensor& a, const Tensor& b, Scalar alpha) { return binary(op, a, scaled(b, alpha)); }

void add_scaled_(BinOp op, const Tensor& self, const Tensor& b, Scalar alpha) { binary_(op, self, scaled(b, alpha)); }

// ---- unary ops ---------------------------------------------------------------

static void neg_bw(Node&, const Tensor& g, Tensor* gi) { gi[0] = -g; }
static void abs_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = g * unary(UnOp::Sign, n.saved_at(0)); }
static void exp_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = g * n.saved_at(1); }
static void log_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = g / n.saved_at(0); }
static void sqrt_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = g / (n.saved_at(1) * 2.0); }
static void rsqrt_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& y = n.saved_at(1);
  gi[0] = g * (y * y * y) * -0.5;
}
static void sin_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = g * unary(UnOp::Cos, n.saved_at(0)); }
static void cos_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = -g * unary(UnOp::Sin, n.saved_at(0)); }
static void tanh_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& y = n.saved_at(1);
  gi[0] = g * (1.0 - y * y);
}
static void sigmoid_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& y = n.saved_at(1);
  gi[0] = g * y * (1.0 - y);
}
static void relu_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = binary(BinOp::ReluGrad, n.saved_at(1), g); }
static void zero_bw(Node&, const Tensor& g, Tensor* gi) { gi[0] = zeros_like(g); }
static void erf_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& x = n.saved_at(0);
  gi[0] = g * unary(UnOp::Exp, -(x * x)) * 1.1283791670955126;  // 2/sqrt(pi)
}

static void asin_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& x = n.saved_at(0);
  gi[0] = g * unary(UnOp::Rsqrt, 1.0 - x * x);
}
static void acos_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& x = n.saved_at(0);
  gi[0] = -g * unary(UnOp::Rsqrt, 1.0 - x * x);
}
static void atan_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& x = n.saved_at(0);
  gi[0] = g / (x * x + 1.0);
}

struct UnaryDef {
  UnOp op;
  const char* backward;
  BackwardFn bw;
  bool float_only, save_in, save_out;
};
static constexpr UnaryDef kUnary[] = {
    {UnOp::Neg, "NegBackward0", neg_bw, false, false, false},
    {UnOp::Abs, "AbsBackward0", abs_bw, false, true, false},
    {UnOp::Exp, "ExpBackward0", exp_bw, true, false, true},
    {UnOp::Log, "LogBackward0", log_bw, true, true, false},
    {UnOp::Sqrt, "SqrtBackward0", sqrt_bw, true, false, true},
    {UnOp::Rsqrt, "RsqrtBackward0", rsqrt_bw, true, false, true},
    {UnOp::Sin, "SinBackward0", sin_bw, true, true, false},
    {UnOp::Cos, "CosBackward0", cos_bw, true, true, false},
    {UnOp::Tanh, "TanhBackward0", tanh_bw, true, false, true},
    {UnOp::Sigmoid, "SigmoidBackward0", sigmoid_bw, true, false, true},
    {UnOp::Relu, "ReluBackward0", relu_bw, false, false, true},
    {UnOp::Sign, "SignBackward0", zero_bw, false, false, false},
    {UnOp::Floor, "FloorBackward0", zero_bw, false, false, false},
    {UnOp::Ceil, "CeilBackward0", zero_bw, false, false, false},
    {UnOp::Round, "RoundBackward0", zero_bw, false, false, false},
    {UnOp::Trunc, "TruncBackward0", zero_bw, false, false, false},
    {UnOp::Erf, "ErfBackward0", erf_bw, true, true, false},
    {UnOp::Asin, "AsinBackward0", asin_bw, true, true, false},
    {UnOp::Acos, "AcosBackward0", acos_bw, true, true, false},
    {UnOp::Atan, "AtanBackward0", atan_bw, true, true, false},
    {UnOp::Not, nullptr, nullptr, false, false, false},
};
static_assert(in_order<decltype(kUnary), UnOp>(kUnary, kNumUnOps), "kUnary must follow FK_UNARY_OPS");

static DType unary_dtype(UnOp op, DType dt) {
  const UnaryDef& d = kUnary[int(op)];
  FK_CHECK(!(op == UnOp::Not && is_float(dt)), Type, "bitwise_not is only defined for integer and bool tensors, got ",
           dtype_name(dt));
  FK_CHECK(!(dt == DType::Bool && (op == UnOp::Neg || op == UnOp::Sign || op == UnOp::Abs)), Type, kUnaryNames[int(op)],
           " is not supported for bool tensors");
  return d.float_only ? to_float(dt) : dt;
}

static Ref<Node> unary_node(UnOp op, const Tensor& a, bool inplace) {
  const UnaryDef& d = kUnary[int(op)];
  if (!d.backward) return nullptr;
  Ref<Node> n = make_node(d.backward, d.bw, {&a});
  if (n) n->save(d.save_in ? (inplace ? clone(detach(a)) : a) : Tensor());
  return n;
}

Tensor unary(UnOp op, const Tensor& a) {
  if (op == UnOp::Sign && a.dtype() == DType::Bool) return clone(a);
  const Tensor A = to_dtype(a, unary_dtype(op, a.dtype()));
  Tensor out = empty(A.shape(), A.dtype(), A.device());
  Ref<Node> n = unary_node(op, A, false);
  run_unary(op, out, A);
  if (n) {
    set_history(out, n);
    if (kUnary[int(op)].save_out) n->save(out);
  }
  return out;
}

void unary_(UnOp op, const Tensor& self) {
  FK_CHECK(unary_dtype(op, self.dtype()) == self.dtype(), Runtime, "result type of ", kUnaryNames[int(op)],
           " can't be cast to the desired output type ", dtype_name(self.dtype()));
  check_inplace(self, kUnaryNames[int(op)]);
  Ref<Node> n = unary_node(op, self, true);
  run_unary(op, self, self);
  self.bump_version();
  if (n) {
    set_history(self, n);
    if (kUnary[int(op)].save_out) n->save(self);
  }
  finish_inplace(self, n);
}

// ---- clamp ---------------------------------------------------------------------

// Selects rather than multiplies by a mask: g may be inf where the input was clamped (inf * 0 is NaN).
static void clamp_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& a = n.saved_at(0);
  Tensor keep;  // lo <= a <= hi, for the bounds given
  if (n.ints[0]) keep = binary(BinOp::Ge, a, Scalar::of(n.scalars[0]));
  if (n.ints[1]) {
    const Tensor le = binary(BinOp::Le, a, Scalar::of(n.scalars[1]));
    keep = keep.defined() ? binary(BinOp::And, keep, le) : le;
  }
  gi[0] = where(keep, g, scalar_tensor(Scalar::of(0), g.dtype()));
}

static Ref<Node> clamp_node(const Tensor& a, std::optional<double> lo, std::optional<double> hi, bool inplace) {
  Ref<Node> n = make_node("ClampBackward1", clamp_bw, {&a});
  if (n) {
    n->save(inplace ? clone(detach(a)) : a);
    n->ints = {lo.has_value(), hi.has_value()};
    n->scalars[0] = lo.value_or(0);
    n->scalars[1] = hi.value_or(0);
  }
  return n;
}

static void run_clamp(const Tensor& out, const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
  FK_CHECK(lo || hi, Runtime, "torch.clamp: At least one of 'min' or 'max' must not be None");
  FK_CHECK(a.dtype() != DType::Bool, Type, "clamp is not supported for bool tensors");
  backend(out.device()).clamp(out, a, lo.value_or(-INFINITY), hi.value_or(INFINITY));
}

Tensor clamp(const Tensor& a0, std::optional<Scalar> lo_s, std::optional<Scalar> hi_s) {
  // Float bounds on an integer tensor give a float result, as in PyTorch.
  DType dt = a0.dtype();
  for (const auto& s : {lo_s, hi_s})
    if (s) dt = scalar_result_type(Tensor(empty({}, dt).p), *s);
  const Tensor a = to_dtype(a0, dt);
  std::optional<double> lo, hi;
  if (lo_s) lo = lo_s->as_double();
  if (hi_s) hi = hi_s->as_double();
  Tensor out = empty(a.shape(), a.dtype(), a.device());
  Ref<Node> n = clamp_node(a, lo, hi, false);
  run_clamp(out, a, lo, hi);
  set_history(out, n);
  return out;
}

void clamp_(const Tensor& self, std::optional<double> lo, std::optional<double> hi) {
  for (const auto& v : {lo, hi})
    FK_CHECK(is_float(self.dtype()) || !v || *v == std::floor(*v), Runtime,
             "result type float32 can't be cast to the "
             "desired output type ",
             dtype_name(self.dtype()), " (clamp_ with the bound ", *v, ")");
  check_inplace(self, "clamp_");
  Ref<Node> n = clamp_node(self, lo, hi, true);
  run_clamp(self, self, lo, hi);
  self.bump_version();
  set_history(self, n);
  finish_inplace(self, n);
}

// ---- where -------------------------------------------------------------------

static void where_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor& c = n.saved_at(0);
  const Tensor zero = scalar_tensor(Scalar::of(0), g.dtype());
  if (n.needs(1)) gi[1] = where(c, g, zero);
  if (n.needs(2)) gi[2] = where(c, zero, g);
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_device(cond, a);
  check_device(a, b);
  FK_CHECK(cond.dtype() == DType::Bool, Type,
           "where expected condition to be a boolean tensor, but got a tensor with dtype ", dtype_name(cond.dtype()));
  const DType dt = result_type(a, b);
  const Tensor A = to_dtype(a, dt), B = to_dtype(b, dt);
  const Dims shape = broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape()));
  Tensor out = empty(shape, dt, result_device({&a, &b, &cond}));
  Ref<Node> n = make_node("WhereBackward0", where_bw, {&cond, &A, &B});
  if (n) n->save(cond);
  backend(out.device()).where(out, cond, bstrides(cond, shape), A, bstrides(A, shape), B, bstrides(B, shape));
  set_history(out, n);
  return out;
}

// ---- casts and copies --------------------------------------------------------

static void identity_bw(Node&, const Tensor& g, Tensor* gi) { gi[0] = g; }

Tensor to_dtype(const Tensor& a, DType dtype) {
  if (a.dtype() == dtype) return a;
  Tensor out = empty(a.shape(), dtype, a.device());
  run_cast(out, a);
  if (is_float(dtype)) set_history(out, make_node("ToCopyBackward0", identity_bw, {&a}));
  out.p->wrapped_number = a.p->wrapped_number;
  return out;
}

static void to_device_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = to_device(g, Device(n.ints[0])); }

Tensor to_device(const Tensor& a, Device device, bool non_blocking) {
  if (a.device() == device) return a;
  const Tensor src = contiguous(detach(a));
  Tensor out = empty(a.shape(), a.dtype(), device);
  backend(device == Device::CPU ? a.device() : device).copy_between(out, src, non_blocking);
  if (Ref<Node> n = make_node("ToCopyBackward0", to_device_bw, {&a})) {
    n->ints = {int64_t(a.device())};
    set_history(out, n);
  }
  return out;
}

Tensor pin_memory(const Tensor& a) {
  FK_CHECK(a.device() == Device::CPU, Runtime, "cannot pin '", device_str(a.device()),
           "' memory: only CPU tensors can be pinned");
  if (a.p->storage->pinned) return a;
  Tensor out = empty_pinned(a.shape(), a.dtype());
  run_cast(out, a);
  set_history(out, make_node("ToCopyBackward0", identity_bw, {&a}));
  return out;
}

Tensor clone(const Tensor& a) {
  Tensor out = empty(a.shape(), a.dtype(), a.device());
  run_cast(out, a);
  set_history(out, make_node("CloneBackward0", identity_bw, {&a}));
  return out;
}

Tensor contiguous(const Tensor& a) { return a.is_contiguous() ? a : clone(a); }

static void copy_bw(Node& n, const Tensor& g, Tensor* gi) {
  if (n.needs(0)) gi[0] = zeros_like(g);  // the old value was overwritten
  gi[1] = g;
}

void copy_(const Tensor& dst, const Tensor& src0) {
  check_inplace(dst, "copy_");
  const Dims shape = broadcast_shapes(dst.shape(), src0.shape());
  FK_CHECK(shape == dst.shape(), Runtime, "copy_: the source of shape ", to_string(src0.shape()),
           " cannot be broadcast to the destination of shape ", to_string(dst.shape()));
  // From another device, as PyTorch's copy_: moved first (its gradient goes back the same way).
  const Tensor src = src0.device() == dst.device() || cpu_scalar(src0) ? src0 : to_device(src0, dst.device());
  Ref<Node> n = make_node("CopyBackwards", copy_bw, {&dst, &src});
  run_cast(dst, unaliased(dst, src));
  dst.bump_version();
  set_history(dst, n);
  finish_inplace(dst, n);
}

bool write_out(const char* op, const Tensor& out, const Tensor& result) {
  FK_CHECK(!(grad_enabled() && (result.requires_grad() || out.requires_grad())), Runtime, op,
           "(): functions with out=... arguments don't support automatic differentiation, but one of the arguments "
           "requires grad.");
  FK_CHECK(category(result.dtype()) <= category(out.dtype()), Runtime, "result type ", dtype_name(result.dtype()),
           " can't be cast to the desired output type ", dtype_name(out.dtype()), " (", op, "() with out=)");
  FK_CHECK(out.device() == result.device(), Runtime, "Expected out tensor to have device ", device_str(result.device()),
           ", but got ", device_str(out.device()), " instead (", op, "() with out=)");
  if (out.shape() == result.shape()) {
    copy_(out, result);  // into out's own layout, as torch keeps a right-sized out's strides
    return false;
  }
  // Resized: fresh memory of the result's shape; out stops being a view of what it viewed.
  const bool had_elements = out.numel() != 0;
  set_data(out, empty(result.shape(), out.dtype(), out.device()));
  out.p->is_view = false;
  out.p->base = Ref<TensorImpl>();
  copy_(out, result);
  return had_elements;
}

static void fill_bw(Node&, const Tensor& g, Tensor* gi) { gi[0] = zeros_like(g); }

void fill_(const Tensor& self, Scalar value) {
  check_inplace(self, "fill_");
  Ref<Node> n = make_node("FillBackward0", fill_bw, {&self});
  run_cast(self, full(Dims(), value, self.dtype()));  // checked: fill_(300) on uint8 is an error, as in PyTorch
  self.bump_version();
  set_history(self, n);
  finish_inplace(self, n);
}

}  // namespace fk
