// conv2d on CUDA, lowered to the GEMM of gemm.cu through an explicit column matrix (the CPU's
// column offsets, gemm's `acols`, are not used on the device).
//
// For a chunk of nb images the column matrix is cols[k][n*L + l]: tap k = (c*kh + i)*kw + j of
// every channel c (the groups' taps are consecutive row ranges), and the L = Ho*Wo output
// pixels of each image side by side (row length ld = nb*L). Then, with Kc = (C/groups)*kh*kw:
//   forward:      out[n, group] [Og, L]  = W_g [Og, Kc] @ cols_g[:, image n]   (one batched launch)
//   grad input:   dcols_g[:, image n]    = W_g^T @ gout[n, group]             (one batched launch)
//                 dx = col2im(dcols): each input pixel gathers its taps in a fixed order
//   grad weight:  dW_g [Og, Kc] (+)= gout_g [Og, nb*L] @ cols_g^T, chunk after chunk in order
// Everything is deterministic: no atomics, and the chunking depends on the shapes only.
#include <algorithm>
#include <type_traits>

#include "cuda_util.h"
#include "gemm.h"

namespace fk {
namespace {

struct ConvDims {
  int64_t N, C, O, groups, Cg, Og, KK, Kc, L, HW;
};

ConvDims conv_dims(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups) {
  const int64_t N = x.size(0), C = x.size(1), O = w.size(0), KK = g.kh * g.kw;
  return {N, C, O, groups, C / groups, O / groups, KK, (C / groups) * KK, g.Ho * g.Wo, g.H * g.W};
}

// Images per chunk: the column matrix of a chunk stays under about 256 MiB (the backward
// holds two of them), and as many images as fit go into one product. The emulator takes
// 4 MiB, as the CPU does, so that the tests run convolutions over several chunks.
#ifdef FK_CUDA_EMULATE
constexpr int64_t kColumnBytes = int64_t(4) << 20;
#else
constexpr int64_t kColumnBytes = int64_t(256) << 20;
#endif
int64_t conv_chunk(const ConvDims& c, int64_t es) {
  const int64_t per_image = std::max<int64_t>(1, c.C * c.KK * c.L * es);
  return std::clamp<int64_t>(kColumnBytes / per_image, 1, std::max<int64_t>(c.N, 1));
}

// cols[k][n*L + l] for the nb images of x (contiguous [nb, C, H, W]): zero where the tap falls
// in the padding.
template <class T>
__global__ void im2col_kernel(const T* x, Window2d g, int64_t C, int64_t nb, T* cols) {
  const int64_t L = g.Ho * g.Wo, ld = nb * L, KK = g.kh * g.kw, total = C * KK * ld;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = e / ld, q = e % ld, n = q / L, l = q % L;
    const int64_t c = k / KK, r = k % KK, i = r / g.kw, j = r % g.kw;
    const int64_t ih = (l / g.Wo) * g.sh - g.ph + i * g.dh, iw = (l % g.Wo) * g.sw - g.pw + j * g.dw;
    cols[e] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x[((n * C + c) * g.H + ih) * g.W + iw] : T(0);
  }
}

// The transpose of im2col, as a gather: dx[n][c][h][w] (nb images) is the sum, over the taps
// (i, j) in order, of the column entries that read that pixel.
template <class T>
__global__ void col2im_kernel(const T* cols, Window2d g, int64_t C, int64_t nb, T* dx) {
  const int64_t L = g.Ho * g.Wo, ld = nb * L, total = nb * C * g.H * g.W;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = e % g.W, h = (e / g.W) % g.H, nc = e / (g.H * g.W), c = nc % C, n = nc / C;
    const T* base = cols + c * g.kh * g.kw * ld + n * L;
    T s = T(0);
    for (int64_t i = 0; i < g.kh; i++) {
      const int64_t th = h + g.ph - i * g.dh;  // = oh*sh for the output row that reads h
      if (th < 0) break;                       // (decreasing in i)
      if (th % g.sh != 0 || th / g.sh >= g.Ho) continue;
      const T* row = base + i * g.kw * ld + (th / g.sh) * g.Wo;
      for (int64_t j = 0; j < g.kw; j++) {
        const int64_t tw = w + g.pw - j * g.dw;
        if (tw < 0) break;
        if (tw % g.sw != 0 || tw / g.sw >= g.Wo) continue;
        s += row[j * ld + tw / g.sw];
      }
    }
    dx[e] = s;
  }
}

// gm[o][n*L + l] = gout[n][o][l] for the nb images of gout (contiguous [nb, O, L]).
template <class T>
__global__ void regroup_kernel(const T* gout, int64_t O, int64_t L, int64_t nb, T* gm) {
  const int64_t ld = nb * L, total = O * ld;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t o = e / ld, q = e % ld;
    gm[e] = gout[((q / L) * O + o) * L + q % L];
  }
}

template <class T>
void im2col(const T* x, const Window2d& g, const ConvDims& c, int64_t nb, T* cols) {
  const int64_t total = c.C * c.KK * nb * c.L;
  if (total == 0) return;
  FK_LAUNCH(im2col_kernel<T>, blocks_for(total), kThreads, 0, cuda_stream())(x, g, c.C, nb, cols);
  cuda_launched("conv2d");
}

template <class T>
void forward(const Tensor& X, const Tensor& W, const Window2d& g, const ConvDims& c, const Tensor& out) {
  const int64_t chunk = conv_chunk(c, sizeof(T));
  const Ref<Storage> buf = cuda_alloc(size_t(c.C * c.KK * chunk * c.L) * sizeof(T));
  T* cols = static_cast<T*>(buf->data);
  for (int64_t n0 = 0; n0 < c.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, c.N - n0), ld = nb * c.L;
    im2col(X.data<T>() + n0 * c.C * c.HW, g, c, nb, cols);
    // Product (n, group): out[n, group] [Og, L] = W_g [Og, Kc] @ cols[group rows, image n columns]
    GemmBatch b;
    b.count = nb * c.groups;
    b.inner = c.groups;
    b.a[1] = c.Og * c.Kc;
    b.b[0] = c.L;
    b.b[1] = c.Kc * ld;
    b.c[0] = c.O * c.L;
    b.c[1] = c.Og * c.L;
    cuda_gemm_launch(X.dtype(), c.Og, c.L, c.Kc, W.data<T>(), c.Kc, 1, cols, ld, 1, out.data<T>() + n0 * c.O * c.L, c.L,
                     false, b);
  }
}

template <class T>
void backward(const Tensor& X, const Tensor& Wt, const Tensor& G, const Window2d& g, const ConvDims& c,
              const Tensor& dx, const Tensor& dw) {
  if (dw.defined() && c.N == 0 && dw.numel() > 0) {  // an empty batch contributes nothing
    FK_CUDA(cudaMemsetAsync(dw.raw(), 0, size_t(dw.numel()) * sizeof(T), cuda_stream()));
    return;
  }
  const int64_t chunk = conv_chunk(c, sizeof(T)), ncols = c.C * c.KK * chunk * c.L;
  Ref<Storage> cbuf, dbuf, gbuf;  // scratch, released after the queued kernels (stream-ordered allocator)
  if (dw.defined()) {
    cbuf = cuda_alloc(size_t(ncols) * sizeof(T));
    gbuf = cuda_alloc(size_t(c.O * chunk * c.L) * sizeof(T));
  }
  if (dx.defined()) dbuf = cuda_alloc(size_t(ncols) * sizeof(T));
  for (int64_t n0 = 0; n0 < c.N; n0 += chunk) {
    const int64_t nb = std::min(chunk, c.N - n0), ld = nb * c.L;
    const T* gout = G.data<T>() + n0 * c.O * c.L;
    if (dw.defined()) {
      T* cols = static_cast<T*>(cbuf->data);
      T* gm = static_cast<T*>(gbuf->data);
      im2col(X.data<T>() + n0 * c.C * c.HW, g, c, nb, cols);
      if (c.O * ld > 0) {
        FK_LAUNCH(regroup_kernel<T>, blocks_for(c.O * ld), kThreads, 0, cuda_stream())(gout, c.O, c.L, nb, gm);
        cuda_launched("conv2d_backward");
      }
      // Group gr: dW_g [Og, Kc] (+)= gm_g [Og, ld] @ cols_g^T [ld, Kc]
      GemmBatch b;
      b.count = c.groups;
      b.a[0] = c.Og * ld;
      b.b[0] = c.Kc * ld;
      b.c[0] = c.Og * c.Kc;
      cuda_gemm_launch(X.dtype(), c.Og, c.Kc, ld, gm, ld, 1, cols, 1, ld, dw.data<T>(), c.Kc, n0 > 0, b);
    }
    if (dx.defined()) {
      T* dcols = static_cast<T*>(dbuf->data);
      // Product (n, group): dcols[group rows, image n columns] [Kc, L] = W_g^T [Kc, Og] @ gout[n, group] [Og, L]
      GemmBatch b;
      b.count = nb * c.groups;
      b.inner = c.groups;
      b.a[1] = c.Og * c.Kc;
      b.b[0] = c.O * c.L;
      b.b[1] = c.Og * c.L;
      b.c[0] = c.L;
      b.c[1] = c.Kc * ld;
      cuda_gemm_launch(X.dtype(), c.Kc, c.L, c.Og, Wt.data<T>(), 1, c.Kc, gout, c.L, 1, dcols, ld, false, b);
      const int64_t total = nb * c.C * c.HW;
      if (total > 0) {
        FK_LAUNCH(col2im_kernel<T>, blocks_for(total), kThreads, 0, cuda_stream())(dcols, g, c.C, nb,
                                                                                   dx.data<T>() + n0 * c.C * c.HW);
        cuda_launched("conv2d_backward");
      }
    }
  }
}

}  // namespace

Tensor cuda_conv2d(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups, const Tensor& out) {
  const ConvDims c = conv_dims(x, w, g, groups);
  if (out.numel() == 0) return Tensor();
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) forward<T>(x, w, g, c, out);
  });
  return Tensor();  // the backward gathers its columns again
}

void cuda_conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& gout, const Window2d& g, int64_t groups,
                          const Tensor& kept, const Tensor& dx, const Tensor& dw) {
  const ConvDims c = conv_dims(x, w, g, groups);
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) backward<T>(x, w, gout, g, c, dx, dw);
  });
}

}  // namespace fk
