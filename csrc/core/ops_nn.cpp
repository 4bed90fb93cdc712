// Neural-network ops: convolution, pooling, batch norm, linear and fused
// softmax / cross entropy. Forward and backward call the NnKernels loops and gemm.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd.h"
#include "backend.h"
#include "parallel.h"
#include "ops.h"

namespace fk {

namespace {

const NnKernels& nnk() { return *cpu_kernels().nn; }

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
             " too large for input of shape ", to_string(x.shape()), " (the padded size and window span must be < 2^31)");
  }
  Window2d g{H, W, k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], out_size(H, k[0], s[0], p[0], d[0], ceil_mode),
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
// Lowered to a few large GEMMs: the column matrices of a chunk of images sit side by
// side (K taps by nb*L pixels), so one product covers the whole chunk and the GEMM's own
// blocking and threading do the work, in forward and in both gradients.

struct ConvShape {
  int64_t N, C, O, groups, Cg, Og, K, L, HW;
  // Strides of the column matrix: entry (pixel p, tap k) is at p*ps + k*ks. Pixel-major
  // (ks == 1) when the output rows are strided or short: each window row is then one
  // short copy. Tap-major (ps == 1) otherwise: each tap's output row is one long memcpy.
  bool pixel_major;
  // Stride-1 layers with long rows need no column matrix in the forward (see "implicit"
  // below). (The input gradient as an implicit transposed convolution measured slower
  // than the column-matrix route on 28x28 layers and about equal on 56x56 ones.)
  bool implicit;
  int64_t ps() const { return pixel_major ? K : 1; }
  int64_t ks(int64_t ld) const { return pixel_major ? 1 : ld; }
};

ConvShape conv_shape(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups) {
  const int64_t N = x.size(0), C = x.size(1), O = w.size(0);
  return {N,     C,         O, groups, C / groups, O / groups, (C / groups) * g.kh * g.kw, g.Ho * g.Wo, g.H * g.W,
          g.sw > 1 || g.Wo < 16, g.sh == 1 && g.sw == 1 && g.Wo >= 16};
}

// Images per chunk: keeps a chunk's column matrix near 4 MB, so that it is still in cache
// when the GEMM reads it (one chunk of 64 MB ran the ResNet layers 20-30% slower).
int64_t conv_chunk(const ConvShape& c, DType dt) {
  return std::clamp<int64_t>((int64_t(4) << 20) / std::max<int64_t>(1, c.K * c.L * itemsize(dt)), 1, c.N);
}

// The column matrix of images [n0, n0 + nb) of group gr.
void gather_cols(const ConvShape& c, const Window2d& g, const Tensor& X, int64_t gr, int64_t n0, int64_t nb, char* cols) {
  const int64_t es = itemsize(X.dtype()), ld = nb * c.L, ps = c.ps();
  parallel_for(nb, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; n++)
      nnk().im2col(X.dtype(), g, c.Cg, X.raw() + ((n0 + n) * c.C + gr * c.Cg) * c.HW * es, cols + n * c.L * ps * es,
                   ps, c.ks(ld));
  });
}

// Copies channels [gr*Og, (gr+1)*Og) of images [n0, n0 + nb) between the [N, O, Ho, Wo]
// tensor layout and a matrix of pixels by Og channels, in the direction `to_matrix`: pixel
// (oh, ow) of image n is row (n*Ho + oh)*P + ow. P = Wo packs the pixels ([nb*L, Og]; the
// products run faster with the long pixel dimension as their rows); a wider pitch skips the
// junk rows of an implicit product.
void regroup(const ConvShape& c, const Window2d& g, DType dt, char* tensor, char* matrix, int64_t P, int64_t gr,
             int64_t n0, int64_t nb, bool to_matrix) {
  // Packed pixels are one run per plane.
  const int64_t rows = P == g.Wo ? 1 : g.Ho, cols = P == g.Wo ? c.L : g.Wo;
  dispatch_dtype(dt, [&](auto z) {
    using T = decltype(z);
    T* ten = reinterpret_cast<T*>(tensor);
    T* mat = reinterpret_cast<T*>(matrix);
    parallel_for(nb * c.Og, std::max<int64_t>(1, 4096 / c.L), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; i++) {
        const int64_t n = i / c.Og, o = i % c.Og;
        T* t = ten + ((n0 + n) * c.O + gr * c.Og + o) * c.L;
        T* m = mat + n * g.Ho * P * c.Og + o;
        for (int64_t r = 0; r < rows; r++, t += cols, m += P * c.Og)
          if (to_matrix)
            for (int64_t l = 0; l < cols; l++) m[l * c.Og] = t[l];
          else
            for (int64_t l = 0; l < cols; l++) t[l] = m[l * c.Og];
      }
    });
  });
}

// ---- implicit stride-1 convolution ---------------------------------------------
// A stride-1 window moves one pixel at a time. With the image copied into a zero-padded
// buffer of row pitch P, output pixel (oh, ow) taken as row oh*P + ow has its tap k at
// buf[oh*P + ow + off[k]]: the buffer read through the table of tap offsets is the column
// matrix (gemm's `acols`), with no copy. Rows with ow >= Wo are computed and dropped.

// Tap offsets (c*kh + i)*kw + j -> (c*Hb + i*dh)*Wb + j*dw in a [C, Hb, Wb] buffer.
std::vector<int64_t> tap_offsets(int64_t C, const Window2d& g, int64_t Hb, int64_t Wb) {
  std::vector<int64_t> off;
  off.reserve(size_t(C * g.kh * g.kw));
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < g.kh; i++)
      for (int64_t j = 0; j < g.kw; j++) off.push_back((c * Hb + i * g.dh) * Wb + j * g.dw);
  return off;
}

// buf[c][top + h][left + w] = src[c][h][w] for C planes of H x W, zero elsewhere in [C, Hb, Wb].
void pad_planes(DType dt, const char* src, int64_t C, int64_t H, int64_t W, char* buf, int64_t Hb, int64_t Wb,
                int64_t top, int64_t left) {
  const int64_t es = itemsize(dt);
  parallel_for(C, std::max<int64_t>(1, 4096 / (Hb * Wb)), [&](int64_t c0, int64_t c1) {
    std::memset(buf + c0 * Hb * Wb * es, 0, size_t((c1 - c0) * Hb * Wb * es));
    for (int64_t c = c0; c < c1; c++)
      for (int64_t h = 0; h < H; h++)
        std::memcpy(buf + ((c * Hb + top + h) * Wb + left) * es, src + (c * H + h) * W * es, size_t(W * es));
  });
}

// Runs f(n0, n1) over ranges of images: split across threads when the images divide
// evenly among them (each image's products then run on one thread, with no hand-offs),
// else all at once, the products being split across threads instead.
void for_images(int64_t N, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t t = num_threads();
  if (t > 1 && N >= t && evenness(N, t) >= kMinEvenness)
    parallel_for(N, 1, f);
  else
    f(0, N);
}

// out[n, group gr] = conv(x[n, group gr], W_g): the zero-padded image is the column matrix.
void implicit_forward(const ConvShape& c, const Window2d& g, const Tensor& X, const Tensor& W, Tensor& out) {
  const DType dt = X.dtype();
  const int64_t es = itemsize(dt), Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, M = (g.Ho - 1) * Wp + g.Wo;
  const std::vector<int64_t> off = tap_offsets(c.Cg, g, Hp, Wp);
  for_images(c.N, [&](int64_t n0, int64_t n1) {
    const Tensor buf = empty({c.Cg * Hp * Wp}, dt), mat = empty({M * c.Og}, dt);
    for (int64_t n = n0; n < n1; n++)
      for (int64_t gr = 0; gr < c.groups; gr++) {
        pad_planes(dt, X.raw() + (n * c.C + gr * c.Cg) * c.HW * es, c.Cg, g.H, g.W, buf.raw(), Hp, Wp, g.ph, g.pw);
        // mat[M, Og] = buf-as-columns[M, K] @ W_g^T
        backend(X.device()).gemm(dt, M, c.Og, c.K, buf.raw(), 1, 0, W.raw() + gr * c.Og * c.K * es, 1, c.K,
                                 mat.raw(), c.Og, false, off.data());
        regroup(c, g, dt, out.raw(), mat.raw(), Wp, gr, n, 1, false);
      }
  });
}

void conv_bw(Node& n, const Tensor& gout, Tensor* gi) {
  const Tensor X = n.saved_at(0), Wt = n.saved_at(1);
  const Tensor G = contiguous(gout);
  const Window2d g = window_from(n, X.shape(), G);
  const ConvShape c = conv_shape(X, Wt, g, int64_t(n.scalars[0]));
  const DType dt = X.dtype();
  const int64_t es = itemsize(dt), chunk = conv_chunk(c, dt);
  GradMode off(false);
  Tensor dx = n.needs(0) ? empty(X.shape(), dt) : Tensor();
  Tensor dwt = n.needs(1) ? empty({c.groups, c.K, c.Og}, dt) : Tensor();  // per group, transposed
  const Tensor kept = n.saved.size() > 2 ? n.saved_at(2) : Tensor();  // the forward's column matrix, if it kept it
  // Scratch from the caching allocator: large, and pre-faulted after the first step.
  const Tensor gbuf = empty({c.Og * chunk * c.L}, dt), cbuf = empty({c.K * chunk * c.L}, dt);
  char* const gmat = gbuf.raw();
  char* const cols = cbuf.raw();
  for (int64_t n0 = 0; n0 < c.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, c.N - n0), ld = nb * c.L, ps = c.ps(), ks = c.ks(ld);
    for (int64_t gr = 0; gr < c.groups; gr++) {
      regroup(c, g, dt, G.raw(), gmat, g.Wo, gr, n0, nb, true);
      const char* wg = Wt.raw() + gr * c.Og * c.K * es;
      if (dwt.defined()) {  // dW_g^T[K, Og] (+)= cols[K, ld] @ gout[ld, Og]
        if (!kept.defined()) gather_cols(c, g, X, gr, n0, nb, cols);
        backend(X.device()).gemm(dt, c.K, c.Og, ld, kept.defined() ? kept.raw() : cols, ks, ps, gmat, c.Og, 1,
                                 dwt.raw() + gr * c.K * c.Og * es, c.Og, n0 > 0, nullptr);
      }
      if (dx.defined()) {  // dcols = (gout @ W_g)^T, then scattered back to the pixels
        if (c.pixel_major)  // dcols^T[ld, K] = gout[ld, Og] @ W_g[Og, K]
          backend(X.device()).gemm(dt, ld, c.K, c.Og, gmat, c.Og, 1, wg, c.K, 1, cols, c.K, false, nullptr);
        else  // dcols[K, ld] = W_g^T @ gout^T
          backend(X.device()).gemm(dt, c.K, ld, c.Og, wg, 1, c.K, gmat, 1, c.Og, cols, ld, false, nullptr);
        parallel_for(nb, 1, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; i++)
            nnk().col2im(dt, g, c.Cg, cols + i * c.L * ps * es, ps, ks,
                         dx.raw() + ((n0 + i) * c.C + gr * c.Cg) * c.HW * es);
        });
      }
    }
  }
  if (dx.defined()) gi[0] = dx;
  if (dwt.defined()) gi[1] = reshape(clone(permute(dwt, {0, 2, 1})), Wt.shape());
  if (n.needs(2)) gi[2] = sum(G, DimList::of({0, 2, 3}), false);
}

}  // namespace

Tensor conv2d(const Tensor& x0, const Tensor& w0, const Tensor& bias, Pair2 stride, Pair2 padding, Pair2 dilation,
              int64_t groups) {
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
  const Window2d g = window(x, {w0.size(2), w0.size(3)}, stride, padding, dilation, false, "conv2d");
  const Tensor X = contiguous(detach(x)), W = contiguous(detach(w0));
  const ConvShape c = conv_shape(X, W, g, groups);
  const DType dt = X.dtype();
  const int64_t es = itemsize(dt), chunk = conv_chunk(c, dt);
  Tensor out = empty({c.N, c.O, g.Ho, g.Wo}, dt);
  Tensor cols;  // the column matrix of the last chunk
  if (c.implicit) {
    implicit_forward(c, g, X, W, out);
  } else {
    cols = empty({c.K * chunk * c.L}, dt);
    const Tensor obuf = empty({c.Og * chunk * c.L}, dt);  // scratch, as in the backward
    char* const omat = obuf.raw();
    for (int64_t n0 = 0; n0 < c.N; n0 += chunk) {
      const int64_t nb = std::min(chunk, c.N - n0), ld = nb * c.L;
      for (int64_t gr = 0; gr < groups; gr++) {
        gather_cols(c, g, X, gr, n0, nb, cols.raw());
        // out^T[ld, Og] = cols^T @ W_g^T
        backend(X.device()).gemm(dt, ld, c.Og, c.K, cols.raw(), c.ps(), c.ks(ld), W.raw() + gr * c.Og * c.K * es, 1,
                                 c.K, omat, c.Og, false, nullptr);
        regroup(c, g, dt, out.raw(), omat, g.Wo, gr, n0, nb, false);
      }
    }
  }
  if (bias.defined()) {
    GradMode off(false);
    binary_(BinOp::Add, out, reshape(detach(bias), {c.O, 1, 1}));
  }
  if (Node* n = make_node("ConvolutionBackward0", conv_bw, {&x, &w0, &bias})) {
    window_to_ints(n, g);
    n->scalars[0] = double(groups);
    n->save(X);
    n->save(W);
    // A column matrix that covers every image (a small one) is kept for the weight gradient.
    if (cols.defined() && chunk == c.N && groups == 1) n->save(cols);
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
  if (Node* n = make_node("MaxPool2DWithIndicesBackward0", max_pool_bw, {&x})) {
    window_to_ints(n, g);
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
  if (Node* n = make_node("AvgPool2DBackward0", avg_pool_bw, {&x})) {
    window_to_ints(n, g);
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
  FK_CHECK(os[0] > 0 && os[1] > 0, Runtime, "adaptive_avg_pool2d: output size must be positive, got ", os[0], "x", os[1]);
  const Tensor X = contiguous(detach(x));
  Tensor out = empty({X.size(0), X.size(1), os[0], os[1]}, X.dtype(), X.device());
  backend(X.device()).adaptive_avg_pool2d(X, out);
  set_history(out, make_node("AdaptiveAvgPool2DBackward0", adaptive_bw, {&x}));
  return unbatch(out, x0);
}

// ---- batch norm --------------------------------------------------------------

// Runs f(c0, c1) over channel ranges in parallel, a range holding at least ~32K values.
static void over_channels(int64_t N, int64_t C, int64_t S, const std::function<void(int64_t, int64_t)>& f) {
  parallel_for(C, std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, N * S)), f);
}

static std::vector<double> to_doubles(const Tensor& t, int64_t n, double dflt) {
  std::vector<double> v(size_t(n), dflt);
  if (!t.defined()) return v;
  const Tensor c = contiguous(to_dtype(detach(t), DType::Float64));
  std::copy_n(c.data<double>(), n, v.begin());
  return v;
}

static Tensor from_doubles(const std::vector<double>& v) {
  Tensor t = empty({int64_t(v.size())}, DType::Float64);
  std::copy(v.begin(), v.end(), t.data<double>());
  return t;
}

static void batch_norm_bw(Node& n, const Tensor& gout, Tensor* gi) {
  const Tensor X = n.saved_at(0);
  const std::vector<double> mean = to_doubles(n.saved_at(1), X.size(1), 0), invstd = to_doubles(n.saved_at(2), X.size(1), 0);
  const std::vector<double> w = to_doubles(n.saved_at(3), X.size(1), 1);
  const Tensor G = contiguous(gout);
  const int64_t N = X.size(0), C = X.size(1), S = X.numel() / std::max<int64_t>(1, N * C);
  const double M = double(N * S);
  std::vector<double> sg(static_cast<size_t>(C)), sgx(static_cast<size_t>(C));
  over_channels(N, C, S, [&](int64_t c0, int64_t c1) {
    nnk().channel_grad_sums(X.dtype(), N, C, S, c0, c1, G.raw(), X.raw(), mean.data(), sg.data(), sgx.data());
  });
  if (n.needs(0)) {
    std::vector<double> a(static_cast<size_t>(C)), b(static_cast<size_t>(C)), d(static_cast<size_t>(C));
    const bool training = n.scalars[0] != 0;
    for (int64_t c = 0; c < C; c++) {
      a[c] = w[c] * invstd[c];
      // training: the batch statistics depend on x too
      b[c] = training ? -a[c] * invstd[c] * invstd[c] * sgx[c] / M : 0;
      d[c] = training ? -a[c] * sg[c] / M - b[c] * mean[c] : 0;
    }
    Tensor dx = empty(X.shape(), X.dtype());
    over_channels(N, C, S, [&](int64_t c0, int64_t c1) {
      nnk().channel_affine(X.dtype(), N, C, S, c0, c1, G.raw(), a.data(), d.data(), X.raw(), b.data(), dx.raw());
    });
    gi[0] = dx;
  }
  if (n.needs(1)) {
    std::vector<double> gw(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; c++) gw[c] = sgx[c] * invstd[c];
    gi[1] = to_dtype(from_doubles(gw), n.in_dtype[1]);
  }
  if (n.needs(2)) gi[2] = to_dtype(from_doubles(sg), n.in_dtype[2]);
}

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  FK_CHECK(x.ndim() >= 2, Runtime, "batch_norm: expected an input of at least 2 dims [N, C, ...], got shape ",
           to_string(x.shape()));
  check_float(x, "batch_norm", "input");
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(1, N * C);
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias})
    FK_CHECK(!t->defined() || (t->ndim() == 1 && t->size(0) == C), Runtime, "batch_norm: expected per-channel tensors of shape [",
             C, "] for an input of shape ", to_string(x.shape()), ", got ", to_string(t->shape()));
  FK_CHECK(training || (running_mean.defined() && running_var.defined()), Runtime,
           "batch_norm: running_mean and running_var are needed in eval mode");
  const Tensor X = contiguous(detach(x));
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  if (training) {
    FK_CHECK(N * S > 1, Value, "Expected more than 1 value per channel when training, got input size ", to_string(x.shape()));
    over_channels(N, C, S, [&](int64_t c0, int64_t c1) {
      nnk().channel_stats(X.dtype(), N, C, S, c0, c1, X.raw(), mean.data(), var.data());
    });
    GradMode off(false);
    const double unbias = double(N * S) / double(N * S - 1);
    std::vector<double> uvar(var);
    for (double& v : uvar) v *= unbias;
    // running = (1 - momentum) * running + momentum * batch statistic
    for (auto [run, stat] : {std::pair{&running_mean, &mean}, std::pair{&running_var, &uvar}}) {
      if (!run->defined()) continue;
      binary_(BinOp::Mul, *run, Scalar::of(1 - momentum));
      binary_(BinOp::Add, *run, to_dtype(from_doubles(*stat), run->dtype()) * momentum);
    }
  } else {
    mean = to_doubles(running_mean, C, 0);
    var = to_doubles(running_var, C, 1);
  }
  const std::vector<double> w = to_doubles(weight, C, 1), b = to_doubles(bias, C, 0);
  std::vector<double> invstd(static_cast<size_t>(C)), a(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; c++) {
    invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    a[c] = w[c] * invstd[c];
    shift[c] = b[c] - mean[c] * a[c];
  }
  Tensor out = empty(x.shape(), x.dtype());
  over_channels(N, C, S, [&](int64_t c0, int64_t c1) {
    nnk().channel_affine(X.dtype(), N, C, S, c0, c1, X.raw(), a.data(), shift.data(), nullptr, nullptr, out.raw());
  });
  if (Node* n = make_node("NativeBatchNormBackward0", batch_norm_bw, {&x, &weight, &bias})) {
    n->save(X);
    n->save(from_doubles(mean));
    n->save(from_doubles(invstd));
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
  FK_CHECK(x0.ndim() >= 1 && w.ndim() == 2 && x0.size(x0.ndim() - 1) == w.size(1), Runtime,
           "linear: input of shape ", to_string(x0.shape()), " does not match weight of shape ", to_string(w.shape()),
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
  Tensor out = empty({M, outf}, dt);
  if (bias.defined()) {
    GradMode off(false);
    copy_(out, detach(bias));
  }
  backend(out.device()).gemm(dt, M, outf, in, x.raw(), x.strides()[0], x.strides()[1], w.raw(), w.strides()[1],
                             w.strides()[0], out.raw(), outf, bias.defined(), nullptr);
  if (Node* n = make_node("AddmmBackward0", linear_bw, {&x, &w, &bias})) {
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
  Tensor gl = n.ints[0] == 0 ? contiguous(to_dtype(g, X.dtype())) : contiguous(expand(reshape(g * n.scalars[0], {1}), {rows}));
  Tensor dx = empty(X.shape(), X.dtype(), X.device());
  backend(X.device()).cross_entropy_backward(X, t, n.ints[1], n.scalars[1], gl, dx);
  gi[0] = dx;
}

Tensor cross_entropy(const Tensor& x, const Tensor& target, int reduction, double eps, int64_t ignore) {
  check_float(x, "cross_entropy", "input");
  FK_CHECK(x.ndim() == 2 && target.ndim() == 1 && target.size(0) == x.size(0), Runtime,
           "cross_entropy: expected input [N, C] and target [N], got ", to_string(x.shape()), " and ",
           to_string(target.shape()));
  FK_CHECK(!is_float(target.dtype()) && target.dtype() != DType::Bool, Runtime,
           "cross_entropy: expected class indices (int64) as target, got ", dtype_name(target.dtype()));
  FK_CHECK(eps >= 0 && eps <= 1, Runtime, "label_smoothing must be between 0.0 and 1.0, got ", eps);
  const Tensor X = contiguous(detach(x)), t = contiguous(to_dtype(target, DType::Int64));
  const int64_t rows = X.size(0), C = X.size(1);
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; r++) {
    const int64_t v = t.data<int64_t>()[r];
    if (v == ignore) continue;
    FK_CHECK(v >= 0 && v < C, Index, "Target ", v, " is out of bounds for ", C, " classes");
    counted++;
  }
  Tensor loss = empty({rows}, X.dtype(), X.device());
  backend(X.device()).cross_entropy(X, t, ignore, eps, loss);
  Tensor out;
  {
    GradMode off(false);
    out = reduction == 0 ? loss : sum(loss, DimList(), false);
    if (reduction == 1) out = out * (1.0 / double(counted));  // 0 counted rows give nan, as PyTorch
  }
  if (Node* n = make_node("CrossEntropyBackward0", cross_entropy_bw, {&x})) {
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
