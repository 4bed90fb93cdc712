// conv2d on the CPU, lowered to a few large GEMMs: the column matrices of a chunk of images
// sit side by side (K taps by nb*L pixels), so one product covers the whole chunk and the
// GEMM's own blocking and threading do the work, in forward and in both gradients.
#include "conv_driver.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/backend.h"
#include "kernels.h"
#include "parallel.h"
#include "gemm_driver.h"
#include "winograd_driver.h"

namespace fk {
namespace {

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
  return {N,
          C,
          O,
          groups,
          C / groups,
          O / groups,
          (C / groups) * g.kh * g.kw,
          g.Ho * g.Wo,
          g.H * g.W,
          g.sw > 1 || g.Wo < 16,
          g.sh == 1 && g.sw == 1 && g.Wo >= 16};
}

// Images per chunk: keeps a chunk's column matrix near 4 MB, so that it is still in cache
// when the GEMM reads it (one chunk of 64 MB ran the ResNet layers 20-30% slower), but at least
// two images, so that two threads share the per-image work (im2col, col2im, the transposes to
// and from NCHW) of large images such as ResNet's stem (7 MB of columns each).
int64_t conv_chunk(const ConvShape& c, DType dt) {
  const int64_t fit = (int64_t(4) << 20) / std::max<int64_t>(1, c.K * c.L * itemsize(dt));
  return std::clamp<int64_t>(std::max<int64_t>(fit, 2), 1, c.N);
}

// The column matrix of images [n0, n0 + nb) of group gr.
void gather_cols(const ConvShape& c, const Window2d& g, const Tensor& X, int64_t gr, int64_t n0, int64_t nb,
                 char* cols) {
  const int64_t es = itemsize(X.dtype()), ld = nb * c.L, ps = c.ps();
  parallel_for(nb, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; n++)
      cpu_kernels().nn->im2col(X.dtype(), g, c.Cg, X.raw() + ((n0 + n) * c.C + gr * c.Cg) * c.HW * es,
                               cols + n * c.L * ps * es, ps, c.ks(ld));
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
  const int64_t rows = P == g.Wo ? 1 : g.Ho, cols = P == g.Wo ? c.L : g.Wo, es = itemsize(dt);
  parallel_for(nb * rows, std::max<int64_t>(1, 4096 / (cols * c.Og)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) {
      const int64_t n = i / rows, r = i % rows;
      char* t = tensor + (((n0 + n) * c.O + gr * c.Og) * c.L + r * cols) * es;  // [Og] rows of `cols` pixels
      char* m = matrix + (n * g.Ho * P + r * P) * c.Og * es;                    // [cols] rows of Og channels
      if (to_matrix)
        cpu_kernels().transpose(dt, c.Og, cols, t, c.L, m, c.Og);
      else
        cpu_kernels().transpose(dt, cols, c.Og, m, c.Og, t, c.L);
    }
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

// out[n, group gr] = conv(x[n, group gr], W_g): the zero-padded image is the column matrix.
void implicit_forward(const ConvShape& c, const Window2d& g, const Tensor& X, const Tensor& W, const Tensor& out) {
  const DType dt = X.dtype();
  const int64_t es = itemsize(dt), Hp = g.H + 2 * g.ph, Wp = g.W + 2 * g.pw, M = (g.Ho - 1) * Wp + g.Wo;
  const std::vector<int64_t> off = tap_offsets(c.Cg, g, Hp, Wp);
  parallel_for_even(c.N, [&](int64_t n0, int64_t n1) {
    const Tensor buf = empty({c.Cg * Hp * Wp}, dt), mat = empty({M * c.Og}, dt);
    for (int64_t n = n0; n < n1; n++)
      for (int64_t gr = 0; gr < c.groups; gr++) {
        pad_planes(dt, X.raw() + (n * c.C + gr * c.Cg) * c.HW * es, c.Cg, g.H, g.W, buf.raw(), Hp, Wp, g.ph, g.pw);
        // mat[M, Og] = buf-as-columns[M, K] @ W_g^T
        gemm(dt, M, c.Og, c.K, buf.raw(), 1, 0, W.raw() + gr * c.Og * c.K * es, 1, c.K, mat.raw(), c.Og, false,
             off.data());
        regroup(c, g, dt, out.raw(), mat.raw(), Wp, gr, n, 1, false);
      }
  });
}

// A thin layer (few taps per output: small K) runs with its output channels as the GEMM's
// rows, one image at a time: W_g[Og, K] @ cols[K, L] is the image's [Og, Ho*Wo] block of the
// NCHW output itself, where the pixels-by-channels product would need a transposing copy
// that costs about as much as its K multiply-adds per output.
constexpr int64_t kThinTaps = 32;

void thin_forward(const ConvShape& c, const Window2d& g, const Tensor& X, const Tensor& W, const Tensor& out) {
  const DType dt = X.dtype();
  const int64_t es = itemsize(dt);
  parallel_for_even(c.N, [&](int64_t n0, int64_t n1) {
    const Tensor cols = empty({c.K * c.L}, dt);
    for (int64_t n = n0; n < n1; n++)
      for (int64_t gr = 0; gr < c.groups; gr++) {
        cpu_kernels().nn->im2col(dt, g, c.Cg, X.raw() + (n * c.C + gr * c.Cg) * c.HW * es, cols.raw(), 1, c.L);
        gemm(dt, c.Og, c.L, c.K, W.raw() + gr * c.Og * c.K * es, c.K, 1, cols.raw(), c.L, 1,
             out.raw() + (n * c.O + gr * c.Og) * c.L * es, c.L, false);
      }
  });
}

ConvAlgo forced = ConvAlgo::Auto;

}  // namespace

void set_conv_algorithm(ConvAlgo a) { forced = a; }

ConvAlgo conv_algorithm(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups) {
  const bool wino = winograd_applies(x, w, g, groups), depthwise = groups > 1 && groups == x.size(1);
  if (forced != ConvAlgo::Auto)
    return (forced == ConvAlgo::Winograd && wino) || (forced == ConvAlgo::Depthwise && depthwise) ? forced
                                                                                                  : ConvAlgo::Gemm;
  if (depthwise) return ConvAlgo::Depthwise;
  // Measured (bench/conv.py, batches 1-64 of ResNet's layers, the MNIST networks' layers):
  // Winograd wins from 16 channels in and out (16->32 at 14x14: forward+backward 9 ms
  // against the GEMMs' 17), even on a single 7x7 image; below that its GEMMs are too thin.
  return wino && x.size(1) >= 16 && w.size(0) >= 16 ? ConvAlgo::Winograd : ConvAlgo::Gemm;
}

Tensor conv2d_cpu(const Tensor& X, const Tensor& W, const Window2d& g, int64_t groups, const Tensor& out) {
  switch (conv_algorithm(X, W, g, groups)) {
    case ConvAlgo::Winograd: winograd_forward(X, W, g, out); return Tensor();
    case ConvAlgo::Depthwise:
      parallel_for(X.size(0) * W.size(0), 1, [&](int64_t b, int64_t e) {
        cpu_kernels().nn->depthwise_conv2d(X.dtype(), g, W.size(0), W.size(0) / groups, b, e, X.raw(), W.raw(),
                                           out.raw());
      });
      return Tensor();
    default: break;
  }
  const ConvShape c = conv_shape(X, W, g, groups);
  const DType dt = X.dtype();
  const int64_t es = itemsize(dt), chunk = conv_chunk(c, dt);
  if (c.K <= kThinTaps) {
    thin_forward(c, g, X, W, out);
    return Tensor();
  }
  if (c.implicit) {
    implicit_forward(c, g, X, W, out);
    return Tensor();
  }
  Tensor cols = empty({c.K * chunk * c.L}, dt);         // the column matrix of the last chunk
  const Tensor obuf = empty({c.Og * chunk * c.L}, dt);  // scratch, as in the backward
  char* const omat = obuf.raw();
  for (int64_t n0 = 0; n0 < c.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, c.N - n0), ld = nb * c.L;
    for (int64_t gr = 0; gr < groups; gr++) {
      gather_cols(c, g, X, gr, n0, nb, cols.raw());
      // out^T[ld, Og] = cols^T @ W_g^T
      gemm(dt, ld, c.Og, c.K, cols.raw(), c.ps(), c.ks(ld), W.raw() + gr * c.Og * c.K * es, 1, c.K, omat, c.Og, false);
      regroup(c, g, dt, out.raw(), omat, g.Wo, gr, n0, nb, false);
    }
  }
  // A column matrix that covers every image (a small one) serves the weight gradient too.
  return chunk == c.N && groups == 1 ? cols : Tensor();
}

void conv2d_backward_cpu(const Tensor& X, const Tensor& Wt, const Tensor& G, const Window2d& g, int64_t groups,
                         const Tensor& kept, const Tensor& dx, const Tensor& dw) {
  switch (conv_algorithm(X, Wt, g, groups)) {
    case ConvAlgo::Winograd: return winograd_backward(X, Wt, G, g, dx, dw);
    case ConvAlgo::Depthwise: {
      const int64_t N = X.size(0), C = X.size(1), mult = Wt.size(0) / C;
      if (dx.defined())
        parallel_for(N * C, 1, [&](int64_t b, int64_t e) {
          cpu_kernels().nn->depthwise_conv2d_dx(X.dtype(), g, C, mult, b, e, G.raw(), Wt.raw(), dx.raw());
        });
      if (dw.defined())
        parallel_for(Wt.size(0), 1, [&](int64_t b, int64_t e) {
          cpu_kernels().nn->depthwise_conv2d_dw(X.dtype(), g, N, C, mult, b, e, X.raw(), G.raw(), dw.raw());
        });
      return;
    }
    default: break;
  }
  const ConvShape c = conv_shape(X, Wt, g, groups);
  const DType dt = X.dtype();
  const int64_t es = itemsize(dt), chunk = conv_chunk(c, dt);
  const Tensor dwt = dw.defined() ? empty({c.groups, c.K, c.Og}, dt) : Tensor();       // per group, transposed
  if (dwt.defined() && c.N == 0) std::memset(dwt.raw(), 0, size_t(dwt.numel() * es));  // no images: no gradient
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
        gemm(dt, c.K, c.Og, ld, kept.defined() ? kept.raw() : cols, ks, ps, gmat, c.Og, 1,
             dwt.raw() + gr * c.K * c.Og * es, c.Og, n0 > 0);
      }
      if (dx.defined()) {   // dcols = (gout @ W_g)^T, then scattered back to the pixels
        if (c.pixel_major)  // dcols^T[ld, K] = gout[ld, Og] @ W_g[Og, K]
          gemm(dt, ld, c.K, c.Og, gmat, c.Og, 1, wg, c.K, 1, cols, c.K, false);
        else  // dcols[K, ld] = W_g^T @ gout^T
          gemm(dt, c.K, ld, c.Og, wg, 1, c.K, gmat, 1, c.Og, cols, ld, false);
        parallel_for(nb, 1, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; i++)
            cpu_kernels().nn->col2im(dt, g, c.Cg, cols + i * c.L * ps * es, ps, ks,
                                     dx.raw() + ((n0 + i) * c.C + gr * c.Cg) * c.HW * es);
        });
      }
    }
  }
  if (!dwt.defined()) return;
  // dw[gr*Og + o][k] = dwt[gr][k][o]: a transposing copy (threaded, vectorised where it can be)
  const Dims shape{c.groups, c.Og, c.K};
  cpu_backend().cast(make_view(dw, shape, contiguous_strides(shape), dw.p->offset), dwt, {c.K * c.Og, 1, c.Og});
}

}  // namespace fk
