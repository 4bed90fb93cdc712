// Neural-network ops: convolution, pooling, batch norm, linear and fused cross entropy:
// checks, shapes and backward formulas here, the loops behind backend(device).
#include <algorithm>

#include "autograd.h"
#include "backend.h"
#include "ops.h"

namespace fk {

namespace {

void check_float(const Tensor& t, const char* op, const char* what) {
  FK_CHECK(is_float(t.dtype()), Type, op, ": expected a floating point ", what, ", got ", dtype_name(t.dtype()));
}

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (o - 1) * s >= in + p) o--;  // the last window must start inside the input
  return span < 0 ? 0 : o;
}

Window2d window(const Tensor& x, Pair2 k, Pair2 s, Pair2 p, Pair2 d, bool ceil_mode, const char* op) {
  const int64_t H = x.size(x.ndim() - 2), W = x.size(x.ndim() - 1);
  constexpr int64_t kMax = int64_t(1) << 31;  // keeps every window product (Ho * Wo, taps * pixels) in int64
  for (int i = 0; i < 2; i++) {
    FK_CHECK(k[i] > 0 && s[i] > 0 && d[i] > 0 && p[i] >= 0, Runtime, op, ": kernel size, stride and dilation must be ",
             "positive and padding non-negative (got kernel ", k[i], ", stride ", s[i], ", padding ", p[i],
             ", dilation ", d[i], ")");
    FK_CHECK(k[i] < kMax && s[i] < kMax && d[i] < kMax && p[i] < kMax && (i ? W : H) + 2 * p[i] < kMax &&
                 d[i] * (k[i] - 1) < kMax,
             Runtime, op, ": kernel size ", k[i], ", stride ", s[i], ", padding ", p[i], " or dilation ", d[i],
             " too large for input of shape ", to_string(x.shape()),
             " (the padded size and window span must be < 2^31)");
  }
  Window2d g{H,
             W,
             k[0],
             k[1],
             s[0],
             s[1],
             p[0],
             p[1],
             d[0],
             d[1],
             out_size(H, k[0], s[0], p[0], d[0], ceil_mode),
             out_size(W, k[1], s[1], p[1], d[1], ceil_mode)};
  FK_CHECK(g.Ho > 0 && g.Wo > 0, Runtime, op, ": calculated output size (", g.Ho, "x", g.Wo,
           ") is too small for input of shape ", to_string(x.shape()), " with kernel ", k[0], "x", k[1], ", padding ",
           p[0], "x", p[1], ", dilation ", d[0], "x", d[1]);
  return g;
}

// Accepts [N, C, H, W] or an unbatched [C, H, W] (returned as [1, C, H, W]).
Tensor batched4d(const Tensor& x, const char* op) {
  FK_CHECK(x.ndim() == 3 || x.ndim() == 4, Runtime, op, ": expected a 3-D (unbatched) or 4-D input, got shape ",
           to_string(x.shape()));
  check_float(x, op, "input");
  return x.ndim() == 3 ? unsqueeze(x, 0) : x;
}

Tensor unbatch(const Tensor& out, const Tensor& x) { return x.ndim() == 3 ? squeeze(out, 0) : out; }

void window_to_ints(Node* n, const Window2d& g) { n->ints = {g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw}; }

Window2d window_from(const Node& n, const Dims& in, const Tensor& gout) {
  const Dims& s = n.ints;
  return {in[2], in[3], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], gout.size(2), gout.size(3)};
}

// ---- conv2d ------------------------------------------------------------------

void conv_bw(Node& n, const Tensor& gout, Tensor* gi) {
  const Tensor X = n.saved_at(0), W = n.saved_at(1);
  const Tensor kept = n.saved.size() > 2 ? n.saved_at(2) : Tensor();
  const Tensor G = contiguous(gout);
  GradMode off(false);
  const Tensor dx = n.needs(0) ? empty(X.shape(), X.dtype(), X.device()) : Tensor();
  const Tensor dw = n.needs(1) ? empty(W.shape(), W.dtype(), W.device()) : Tensor();
  backend(X.device()).conv2d_backward(X, W, G, window_from(n, X.shape(), G), int64_t(n.scalars[0]), kept, dx, dw);
  if (dx.defined()) gi[0] = dx;
  if (dw.defined()) gi[1] = dw;
  if (n.needs(2)) gi[2] = sum(G, DimList::of({0, 2, 3}), false);
}

}  // namespace

Window2d conv2d_window(const Tensor& x, const Tensor& w, Pair2 stride, Pair2 padding, Pair2 dilation) {
  return window(x, {w.size(2), w.size(3)}, stride, padding, dilation, false, "conv2d");
}

Tensor conv2d(const Tensor& x0, const Tensor& w0, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
              int64_t groups) {
  check_same_device({&x0, &w0, &bias});
  const Tensor x = batched4d(x0, "conv2d");
  FK_CHECK(w0.ndim() == 4, Runtime, "conv2d: expected a 4-D weight [out, in/groups, kh, kw], got shape ",
           to_string(w0.shape()));
  FK_CHECK(w0.dtype() == x.dtype() && (!bias.defined() || bias.dtype() == x.dtype()), Runtime,
           "conv2d: input, weight and bias must have the same dtype, got ", dtype_name(x.dtype()), " and ",
           dtype_name(w0.dtype()));
  FK_CHECK(groups > 0 && x.size(1) % groups == 0 && w0.size(0) % groups == 0 && w0.size(1) * groups == x.size(1),
           Runtime, "conv2d: input of shape ", to_string(x.shape()), " and weight of shape ", to_string(w0.shape()),
           " do not match with groups=", groups, " (expected ", w0.size(1) * groups, " input channels)");
  FK_CHECK(!bias.defined() || (bias.ndim() == 1 && bias.size(0) == w0.size(0)), Runtime, "conv2d: bias of shape ",
           to_string(bias.defined() ? bias.shape() : Dims()), " does not match ", w0.size(0), " output channels");
  const Window2d g = conv2d_window(x, w0, stride, padding, dilation);
  const Tensor X = contiguous(detach(x)), W = contiguous(detach(w0));
  Tensor out = empty({X.size(0), W.size(0), g.Ho, g.Wo}, X.dtype(), X.device());
  const Tensor kept = backend(X.device()).conv2d(X, W, g, groups, out);
  if (bias.defined()) {
    GradMode off(false);
    binary_(BinOp::Add, out, reshape(detach(bias), {W.size(0), 1, 1}));
  }
  if (Ref<Node> n = make_node("ConvolutionBackward0", conv_bw, {&x, &w0, &bias})) {
    window_to_ints(n.get(), g);
    n->scalars[0] = double(groups);
    n->save(X);
    n->save(W);
    if (kept.defined()) n->save(kept);
    set_history(out, n);
  }
  return unbatch(out, x0);
}

// ---- pooling -----------------------------------------------------------------

static void max_pool_bw(Node& n, const Tensor& gout, Tensor* gi) {
  const Tensor idx = n.saved_at(0);
  const Tensor G = contiguous(gout);
  const Dims& in = n.in_shape[0];
  const Window2d g = window_from(n, in, G);
  Tensor dx = zeros(in, G.dtype(), G.device());
  backend(G.device()).max_pool2d_backward(G, idx, g, dx);
  gi[0] = dx;
}

std::pair<Tensor, Tensor> max_pool2d(const Tensor& x0, Pair2 k, Pair2 s, Pair2 p, Pair2 d, bool ceil_mode) {
  const Tensor x = batched4d(x0, "max_pool2d");
  FK_CHECK(p[0] * 2 <= k[0] && p[1] * 2 <= k[1], Runtime, "max_pool2d: pad should be at most half of effective kernel ",
           "size, but got pad=", p[0], "x", p[1], " and kernel_size=", k[0], "x", k[1]);
  const Window2d g = window(x, k, s, p, d, ceil_mode, "max_pool2d");
  const Tensor X = contiguous(detach(x));
  const Dims shape{X.size(0), X.size(1), g.Ho, g.Wo};
  Tensor out = empty(shape, X.dtype(), X.device()), idx = empty(shape, DType::Int64, X.device());
  backend(X.device()).max_pool2d(X, g, out, idx);
  if (Ref<Node> n = make_node("MaxPool2DWithIndicesBackward0", max_pool_bw, {&x})) {
    window_to_ints(n.get(), g);
    n->save(idx);
    set_history(out, n);
  }
  return {unbatch(out, x0), unbatch(idx, x0)};
}

static void avg_pool_bw(Node& n, const Tensor& gout, Tensor* gi) {
  const Tensor G = contiguous(gout);
  const Dims& in = n.in_shape[0];
  const Window2d g = window_from(n, in, G);
  Tensor dx = zeros(in, G.dtype(), G.device());
  backend(G.device()).avg_pool2d_backward(G, g, n.scalars[0] != 0, dx);
  gi[0] = dx;
}

Tensor avg_pool2d(const Tensor& x0, Pair2 k, Pair2 s, Pair2 p, bool ceil_mode, bool count_include_pad) {
  const Tensor x = batched4d(x0, "avg_pool2d");
  FK_CHECK(p[0] * 2 <= k[0] && p[1] * 2 <= k[1], Runtime, "avg_pool2d: pad should be at most half of kernel size, ",
           "but got pad=", p[0], "x", p[1], " and kernel_size=", k[0], "x", k[1]);
  const Window2d g = window(x, k, s, p, {1, 1}, ceil_mode, "avg_pool2d");
  const Tensor X = contiguous(detach(x));
  Tensor out = empty({X.size(0), X.size(1), g.Ho, g.Wo}, X.dtype(), X.device());
  backend(X.device()).avg_pool2d(X, g, count_include_pad, out);
  if (Ref<Node> n = make_node("AvgPool2DBackward0", avg_pool_bw, {&x})) {
    window_to_ints(n.get(), g);
    n->scalars[0] = count_include_pad;
    set_history(out, n);
  }
  return unbatch(out, x0);
}

static void adaptive_bw(Node& n, const Tensor& gout, Tensor* gi) {
  const Tensor G = contiguous(gout);
  const Dims& in = n.in_shape[0];
  Tensor dx = zeros(in, G.dtype(), G.device());
  backend(G.device()).adaptive_avg_pool2d_backward(G, dx);
  gi[0] = dx;
}

Tensor adaptive_avg_pool2d(const Tensor& x0, Pair2 os) {
  const Tensor x = batched4d(x0, "adaptive_avg_pool2d");
  FK_CHECK(os[0] > 0 && os[1] > 0, Runtime, "adaptive_avg_pool2d: output size must be positive, got ", os[0], "x",
           os[1]);
  const Tensor X = contiguous(detach(x));
  Tensor out = empty({X.size(0), X.size(1), os[0], os[1]}, X.dtype(), X.device());
  backend(X.device()).adaptive_avg_pool2d(X, out);
  set_history(out, make_node("AdaptiveAvgPool2DBackward0", adaptive_bw, {&x}));
  return unbatch(out, x0);
}

// ---- batch norm --------------------------------------------------------------
// The per-channel numbers (mean, 1/std, the affine coefficients) are float64 tensors of
// shape [C] on the input's device; the device makes the passes over the data.

// t as float64 [C], or `dflt` everywhere when t is undefined.
static Tensor channel_f64(const Tensor& t, int64_t C, double dflt, Device device) {
  return t.defined() ? contiguous(to_dtype(detach(t), DType::Float64))
                     : full({C}, Scalar::of(dflt), DType::Float64, device);
}

static void batch_norm_bw(Node& n, const Tensor& gout, Tensor* gi) {
  const Tensor X = n.saved_at(0), mean = n.saved_at(1), invstd = n.saved_at(2);
  const Tensor G = contiguous(gout);
  const int64_t N = X.size(0), C = X.size(1), S = X.numel() / std::max<int64_t>(1, N * C);
  const double M = double(N * S);
  const Backend& be = backend(X.device());
  GradMode off(false);
  const Tensor w = channel_f64(n.saved_at(3), C, 1, X.device());
  const Tensor sg = empty({C}, DType::Float64, X.device()), sgx = empty({C}, DType::Float64, X.device());
  be.channel_grad_sums(G, X, mean, sg, sgx);
  if (n.needs(0)) {
    const Tensor a = w * invstd;
    Tensor b = zeros({C}, DType::Float64, X.device()), d = b;
    if (n.scalars[0] != 0) {  // training: the batch statistics depend on x too
      b = -a * invstd * invstd * sgx * (1.0 / M);
      d = -a * sg * (1.0 / M) - b * mean;
    }
    Tensor dx = empty(X.shape(), X.dtype(), X.device());
    be.channel_affine(G, a, d, X, b, dx);  // dx = a*g + d + b*x
    gi[0] = dx;
  }
  if (n.needs(1)) gi[1] = to_dtype(sgx * invstd, n.in_dtype[1]);
  if (n.needs(2)) gi[2] = to_dtype(sg, n.in_dtype[2]);
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  check_same_device({&x, &running_mean, &running_var, &weight, &bias});
  FK_CHECK(x.ndim() >= 2, Runtime, "batch_norm: expected an input of at least 2 dims [N, C, ...], got shape ",
           to_string(x.shape()));
  check_float(x, "batch_norm", "input");
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(1, N * C);
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
    FK_CHECK(!t->defined() || (t->ndim() == 1 && t->size(0) == C), Runtime,
             "batch_norm: expected per-channel tensors of shape [", C, "] for an input of shape ", to_string(x.shape()),
             ", got ", to_string(t->shape()));
  FK_CHECK(training || (running_mean.defined() && running_var.defined()), Runtime,
           "batch_norm: running_mean and running_var are needed in eval mode");
  const Tensor X = contiguous(detach(x));
  const Device dev = X.device();
  const Backend& be = backend(dev);
  Tensor mean, invstd, out = empty(x.shape(), x.dtype(), dev);
  {
    GradMode off(false);
    Tensor var;
    if (training) {
      FK_CHECK(N * S > 1, Value, "Expected more than 1 value per channel when training, got input size ",
               to_string(x.shape()));
      mean = empty({C}, DType::Float64, dev);
      var = empty({C}, DType::Float64, dev);
      be.channel_stats(X, mean, var);
      // running = (1 - momentum) * running + momentum * batch statistic (the variance unbiased)
      const Tensor uvar = var * (double(N * S) / double(N * S - 1));
      for (auto [run, stat] : {std::pair<const Tensor*, const Tensor*>{&running_mean, &mean}, {&running_var, &uvar}}) {
        if (!run->defined()) continue;
        binary_(BinOp::Mul, *run, Scalar::of(1 - momentum));
        binary_(BinOp::Add, *run, to_dtype(*stat, run->dtype()) * momentum);
      }
    } else {
      mean = channel_f64(running_mean, C, 0, dev);
      var = channel_f64(running_var, C, 1, dev);
    }
    invstd = unary(UnOp::Rsqrt, var + eps);
    const Tensor a = channel_f64(weight, C, 1, dev) * invstd;
    be.channel_affine(X, a, channel_f64(bias, C, 0, dev) - mean * a, Tensor(), Tensor(), out);
  }
  if (Ref<Node> n = make_node("NativeBatchNormBackward0", batch_norm_bw, {&x, &weight, &bias})) {
    n->save(X);
    n->save(mean);
    n->save(invstd);
    n->save(weight);
    n->scalars[0] = training;
    set_history(out, n);
  }
  return out;
}

// ---- linear ------------------------------------------------------------------

static void linear_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor x = n.saved_at(0), w = n.saved_at(1);
  if (n.needs(0)) gi[0] = matmul(g, w);
  if (n.needs(1)) gi[1] = matmul(transpose(g, 0, 1), x);
  if (n.needs(2)) gi[2] = sum(g, DimList::of({0}), false);
}

Tensor linear(const Tensor& x0, const Tensor& w, const Tensor& bias) {
  check_same_device({&x0, &w, &bias});
  FK_CHECK(x0.ndim() >= 1 && w.ndim() == 2 && x0.size(x0.ndim() - 1) == w.size(1), Runtime, "linear: input of shape ",
           to_string(x0.shape()), " does not match weight of shape ", to_string(w.shape()),
           " (expected the last input dim to be ", w.ndim() == 2 ? w.size(1) : -1, ")");
  FK_CHECK(x0.dtype() == w.dtype() && (!bias.defined() || bias.dtype() == w.dtype()), Runtime,
           "linear: input, weight and bias must have the same dtype, got ", dtype_name(x0.dtype()), " and ",
           dtype_name(w.dtype()));
  check_float(x0, "linear", "input");
  const int64_t in = w.size(1), outf = w.size(0);
  FK_CHECK(!bias.defined() || (bias.ndim() == 1 && bias.size(0) == outf), Runtime, "linear: bias of shape ",
           to_string(bias.defined() ? bias.shape() : Dims()), " does not match ", outf, " output features");
  int64_t rows = 1;  // (not reshape(-1, in): ambiguous when in == 0)
  for (int i = 0; i + 1 < x0.ndim(); i++) rows *= x0.size(i);
  const Tensor x = x0.ndim() == 2 ? x0 : reshape(x0, {rows, in});
  const int64_t M = x.size(0);
  const DType dt = x.dtype();
  Tensor out = empty({M, outf}, dt, x.device());
  if (bias.defined()) {
    GradMode off(false);
    copy_(out, detach(bias));
  }
  backend(out.device())
      .gemm(dt, M, outf, in, x.raw(), x.strides()[0], x.strides()[1], w.raw(), w.strides()[1], w.strides()[0],
            out.raw(), outf, bias.defined(), nullptr);
  if (Ref<Node> n = make_node(bias.defined() ? "AddmmBackward0" : "MmBackward0", linear_bw, {&x, &w, &bias})) {
    n->save(x);
    n->save(w);
    set_history(out, n);
  }
  if (x0.ndim() == 2) return out;
  Dims shape = x0.shape();
  shape[shape.n - 1] = outf;
  return reshape(out, shape);
}

// ---- cross entropy -------------------------------------------------------------

static void cross_entropy_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Tensor X = n.saved_at(0), t = n.saved_at(1);
  const int64_t rows = X.size(0);
  // Per-row upstream gradient: the reduction's derivative.
  Tensor gl =
      n.ints[0] == 0 ? contiguous(to_dtype(g, X.dtype())) : contiguous(expand(reshape(g * n.scalars[0], {1}), {rows}));
  Tensor dx = empty(X.shape(), X.dtype(), X.device());
  backend(X.device()).cross_entropy_backward(X, t, n.ints[1], n.scalars[1], gl, dx);
  gi[0] = dx;
}

static void mse_bw(Node& n, const Tensor& g, Tensor* gi) {
  // d/dx of (x - y)^2, reduced: 2 (x - y) g, over N for the mean (scalars[0] is 2 or 2 / N)
  const Tensor gd = (n.saved_at(0) - n.saved_at(1)) * (g * n.scalars[0]);
  if (n.needs(0)) gi[0] = gd;  // the engine sums broadcast dims back to each input's shape
  if (n.needs(1)) gi[1] = -gd;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, int reduction) {
  check_float(input, "mse_loss", "input");
  Tensor out;
  int64_t count = 0;
  {
    GradMode off(false);
    const Tensor d = input - target;
    count = d.numel();
    const Tensor sq = d * d;
    out = reduction == 0 ? sq : reduction == 1 ? mean(sq, DimList(), false) : sum(sq, DimList(), false);
  }
  if (Ref<Node> n = make_node("MseLossBackward0", mse_bw, {&input, &target})) {
    n->scalars[0] = reduction == 1 ? 2.0 / double(count) : 2.0;
    n->save(input);
    n->save(target);
    set_history(out, n);
  }
  return out;
}

// ---- nll_loss -------------------------------------------------------------------

static void nll_bw(Node& n, const Tensor& g, Tensor* gi) {
  // -g times each row's weight (0 for ignored rows, 1 / the kept rows for the mean) at its target
  const Tensor& rows = n.saved_at(0);
  const Tensor& cols = n.saved_at(1);
  const Tensor& w = n.saved_at(2);
  Tensor gx = full(n.ints, Scalar::of(0), g.dtype(), g.device());
  scatter_nd_(gx, {rows, cols}, -(expand(g, w.shape()) * w), false);
  gi[0] = gx;
}

Tensor nll_loss(const Tensor& x, const Tensor& target, int reduction, int64_t ignore) {
  check_same_device({&x, &target});
  check_float(x, "nll_loss", "input");
  FK_CHECK(x.ndim() == 2 && target.ndim() == 1 && target.size(0) == x.size(0), Runtime,
           "nll_loss: expected input [N, C] and target [N], got ", to_string(x.shape()), " and ",
           to_string(target.shape()));
  FK_CHECK(!is_float(target.dtype()) && target.dtype() != DType::Bool, Runtime,
           "nll_loss: expected class indices (int64) as target, got ", dtype_name(target.dtype()));
  Tensor out, rows, cols, w;
  {
    GradMode off(false);
    const Tensor t = to_dtype(target, DType::Int64), keep = binary(BinOp::Ne, t, Scalar::of(ignore));
    rows = arange(0, double(x.size(0)), 1, DType::Int64, x.device());
    cols = where(keep, t, scalar_tensor(Scalar::of(0), DType::Int64));
    w = to_dtype(keep, x.dtype());
    const Tensor picked = -(gather_nd(x, {rows, cols}) * w);
    out = reduction == 0 ? picked : sum(picked, DimList(), false);
    if (reduction == 1) {  // over the kept rows (none: 0/0, NaN as PyTorch)
      const Tensor count = sum(w, DimList(), false);
      out = out / count;
      w = w / count;
    }
  }
  if (Ref<Node> n = make_node("NllLossBackward0", nll_bw, {&x})) {
    n->ints = x.shape();
    n->save(rows);
    n->save(cols);
    n->save(w);
    set_history(out, n);
  }
  return out;
}

Tensor cross_entropy(const Tensor& x, const Tensor& target, int reduction, double eps, int64_t ignore) {
  check_same_device({&x, &target});
  check_float(x, "cross_entropy", "input");
  FK_CHECK(x.ndim() == 2 && target.ndim() == 1 && target.size(0) == x.size(0), Runtime,
           "cross_entropy: expected input [N, C] and target [N], got ", to_string(x.shape()), " and ",
           to_string(target.shape()));
  FK_CHECK(!is_float(target.dtype()) && target.dtype() != DType::Bool, Runtime,
           "cross_entropy: expected class indices (int64) as target, got ", dtype_name(target.dtype()));
  FK_CHECK(eps >= 0 && eps <= 1, Runtime, "label_smoothing must be between 0.0 and 1.0, got ", eps);
  const Tensor X = contiguous(detach(x)), t = contiguous(to_dtype(target, DType::Int64));
  Tensor loss = empty({X.size(0)}, X.dtype(), X.device());
  int64_t bad = 0;
  const int64_t counted = backend(X.device()).cross_entropy(X, t, ignore, eps, loss, &bad);
  FK_CHECK(counted >= 0, Index, "Target ", bad, " is out of bounds for ", X.size(1), " classes");
  Tensor out;
  {
    GradMode off(false);
    out = reduction == 0 ? loss : sum(loss, DimList(), false);
    if (reduction == 1) out = out * (1.0 / double(counted));  // 0 counted rows give nan, as PyTorch
  }
  if (Ref<Node> n = make_node("NllLossBackward0", cross_entropy_bw, {&x})) {
    n->ints = {reduction, ignore};
    n->scalars[0] = reduction == 1 ? 1.0 / double(counted) : 1.0;
    n->scalars[1] = eps;
    n->save(X);
    n->save(t);
    set_history(out, n);
  }
  return out;
}

}  // namespace fk
