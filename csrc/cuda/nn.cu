// CUDA kernels of the nn ops: pooling and its gradients, batch norm's passes, cross entropy and
// the fused Adam step. Each has the semantics of the CPU kernel (csrc/cpu/nn.cpp, kernels.cpp).
// Every floating-point result is deterministic: backwards gather (each input pixel sums the
// outputs that reach it, in the CPU's order) instead of scattering, and sums run in fixed trees
// over splits that depend on the sizes only. No float atomics.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda_util.h"

namespace fk {
namespace {

#define FK_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// ---- pooling -------------------------------------------------------------------

// Valid taps [lo, hi) of the window of output position o along one axis.
__device__ inline void taps_of(int64_t o, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t* lo,
                               int64_t* hi) {
  const int64_t start = o * s - p;
  int64_t l = 0, h = k;
  while (l < k && start + l * d < 0) l++;
  while (h > l && start + (h - 1) * d >= in) h--;
  *lo = l;
  *hi = h;
}

// One thread per output: the first maximum of the window (the first NaN, if any) and its
// position h*W + w in the plane.
template <class T>
__global__ void max_pool_kernel(Window2d g, int64_t n, const T* x, T* out, int64_t* idx) {
  const int64_t L = g.Ho * g.Wo;
  FK_GRID_STRIDE(i, n) {
    const int64_t p = i / L, o = i % L, oh = o / g.Wo, ow = o % g.Wo;
    int64_t rlo, rhi, clo, chi;
    taps_of(oh, g.H, g.kh, g.sh, g.ph, g.dh, &rlo, &rhi);
    taps_of(ow, g.W, g.kw, g.sw, g.pw, g.dw, &clo, &chi);
    const T* in = x + p * g.H * g.W;
    const int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    int64_t arg = (h0 + rlo * g.dh) * g.W + w0 + clo * g.dw;
    // A dilated window can miss the image entirely (kernel 2, dilation 4, padding 1 on 3 rows):
    // -inf, as PyTorch, with the index it reports (no pixel has it, so no gradient flows).
    const bool empty = rlo == rhi || clo == chi;
    T best = empty ? -T(INFINITY) : in[arg];
    for (int64_t a = rlo; a < rhi && best == best; a++)
      for (int64_t b = clo; b < chi; b++) {
        const int64_t at = (h0 + a * g.dh) * g.W + w0 + b * g.dw;
        const T v = in[at];
        if (v > best || v != v) {  // the first NaN wins, as in PyTorch
          best = v;
          arg = at;
          if (v != v) break;
        }
      }
    out[i] = best;
    idx[i] = arg;
  }
}

// Outputs along one axis whose window (start o*s - p, taps t*d for t < k) has a tap at input
// position `at`: for tap t from k-1 down, o = (at + p - t*d) / s when exact; ascending o.
// Calls f(o) for each.
template <class F>
__device__ inline void outputs_with_tap(int64_t at, int64_t out, int64_t k, int64_t s, int64_t p, int64_t d, F&& f) {
  for (int64_t t = k - 1; t >= 0; t--) {
    const int64_t q = at + p - t * d;
    if (q < 0) continue;
    if (q % s) continue;
    const int64_t o = q / s;
    if (o >= out) break;  // o grows as t falls
    f(o);
  }
}

// One thread per input pixel: the sum, in output order (the CPU's scatter order), of the
// upstream gradients of the windows whose saved max is this pixel.
template <class T>
__global__ void max_pool_backward_kernel(Window2d g, int64_t n, const T* gout, const int64_t* idx, T* dx) {
  const int64_t HW = g.H * g.W, L = g.Ho * g.Wo;
  FK_GRID_STRIDE(i, n) {
    const int64_t p = i / HW, at = i % HW, ih = at / g.W, iw = at % g.W;
    const int64_t* ip = idx + p * L;
    const T* gp = gout + p * L;
    T acc = dx[i];
    outputs_with_tap(ih, g.Ho, g.kh, g.sh, g.ph, g.dh, [&](int64_t oh) {
      outputs_with_tap(iw, g.Wo, g.kw, g.sw, g.pw, g.dw, [&](int64_t ow) {
        const int64_t o = oh * g.Wo + ow;
        if (ip[o] == at) acc += gp[o];
      });
    });
    dx[i] = acc;
  }
}

// The window of output (oh, ow) clipped to the image, and PyTorch's divisor (as the CPU's).
struct AvgWindow {
  int64_t h0, h1, w0, w1, div;
};
__device__ inline AvgWindow avg_window(const Window2d& g, int64_t oh, int64_t ow, bool include_pad) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = h0 + g.kh < g.H + g.ph ? h0 + g.kh : g.H + g.ph, w1 = w0 + g.kw < g.W + g.pw ? w0 + g.kw : g.W + g.pw;
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = h0 > 0 ? h0 : 0;
  w0 = w0 > 0 ? w0 : 0;
  h1 = h1 < g.H ? h1 : g.H;
  w1 = w1 < g.W ? w1 : g.W;
  return {h0, h1, w0, w1, include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

template <class T>
__global__ void avg_pool_kernel(Window2d g, int64_t n, bool include_pad, const T* x, T* out) {
  const int64_t L = g.Ho * g.Wo;
  FK_GRID_STRIDE(i, n) {
    const int64_t p = i / L, o = i % L;
    const AvgWindow w = avg_window(g, o / g.Wo, o % g.Wo, include_pad);
    const T* in = x + p * g.H * g.W;
    T s = 0;
    for (int64_t ih = w.h0; ih < w.h1; ih++)
      for (int64_t iw = w.w0; iw < w.w1; iw++) s += in[ih * g.W + iw];
    out[i] = w.div > 0 ? s / T(w.div) : T(0);
  }
}

// Outputs [lo, hi) along one axis whose unclipped window [o*s - p, o*s - p + k) holds `at`.
__device__ inline void covering(int64_t at, int64_t out, int64_t k, int64_t s, int64_t p, int64_t* lo, int64_t* hi) {
  const int64_t a = at + p - k + 1;  // o*s >= a
  int64_t l = a <= 0 ? 0 : (a + s - 1) / s;
  int64_t h = (at + p) / s + 1;  // o*s <= at + p
  *lo = l;
  *hi = h < out ? h : out;
}

template <class T>
__global__ void avg_pool_backward_kernel(Window2d g, int64_t n, bool include_pad, const T* gout, T* dx) {
  const int64_t HW = g.H * g.W, L = g.Ho * g.Wo;
  FK_GRID_STRIDE(i, n) {
    const int64_t p = i / HW, ih = (i % HW) / g.W, iw = i % g.W;
    int64_t ohl, ohh, owl, owh;
    covering(ih, g.Ho, g.kh, g.sh, g.ph, &ohl, &ohh);
    covering(iw, g.Wo, g.kw, g.sw, g.pw, &owl, &owh);
    const T* gp = gout + p * L;
    T acc = dx[i];
    for (int64_t oh = ohl; oh < ohh; oh++)
      for (int64_t ow = owl; ow < owh; ow++) {
        const AvgWindow w = avg_window(g, oh, ow, include_pad);
        if (w.div <= 0 || ih < w.h0 || ih >= w.h1 || iw < w.w0 || iw >= w.w1) continue;
        acc += gp[oh * g.Wo + ow] / T(w.div);
      }
    dx[i] = acc;
  }
}

struct Adaptive {
  int64_t H, W, Ho, Wo;
};

template <class T>
__global__ void adaptive_kernel(Adaptive a, int64_t n, const T* x, T* out) {
  const int64_t L = a.Ho * a.Wo;
  FK_GRID_STRIDE(k, n) {
    const int64_t p = k / L, i = (k % L) / a.Wo, j = k % a.Wo;
    const int64_t h0 = i * a.H / a.Ho, h1 = ((i + 1) * a.H + a.Ho - 1) / a.Ho;
    const int64_t w0 = j * a.W / a.Wo, w1 = ((j + 1) * a.W + a.Wo - 1) / a.Wo;
    const T inv = T(1) / T((h1 - h0) * (w1 - w0));
    const T* in = x + p * a.H * a.W;
    T s = 0;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) s += in[h * a.W + w];
    out[k] = s * inv;
  }
}

// Adaptive bins along one axis that hold input position h: [h*O/I, ceil((h+1)*O/I)).
__device__ inline void bins_of(int64_t h, int64_t in, int64_t out, int64_t* lo, int64_t* hi) {
  *lo = h * out / in;
  const int64_t e = ((h + 1) * out + in - 1) / in;
  *hi = e < out ? e : out;
}

template <class T>
__global__ void adaptive_backward_kernel(Adaptive a, int64_t n, const T* gout, T* dx) {
  const int64_t HW = a.H * a.W, L = a.Ho * a.Wo;
  FK_GRID_STRIDE(k, n) {
    const int64_t p = k / HW, h = (k % HW) / a.W, w = k % a.W;
    int64_t il, ih, jl, jh;
    bins_of(h, a.H, a.Ho, &il, &ih);
    bins_of(w, a.W, a.Wo, &jl, &jh);
    const T* gp = gout + p * L;
    T acc = dx[k];
    for (int64_t i = il; i < ih; i++) {
      const int64_t h0 = i * a.H / a.Ho, h1 = ((i + 1) * a.H + a.Ho - 1) / a.Ho;
      if (h < h0 || h >= h1) continue;
      for (int64_t j = jl; j < jh; j++) {
        const int64_t w0 = j * a.W / a.Wo, w1 = ((j + 1) * a.W + a.Wo - 1) / a.Wo;
        if (w < w0 || w >= w1) continue;
        const T inv = T(1) / T((h1 - h0) * (w1 - w0));
        acc += gp[i * a.Wo + j] * inv;
      }
    }
    dx[k] = acc;
  }
}

// ---- block-wide fixed-order trees ----------------------------------------------------

// The block's threads (blockDim.x a power of two, at most kThreads) combine their values in a
// fixed tree; every thread gets the result. `sh` holds kThreads values; the block syncs first,
// so sh may be reused right after.
template <class A, class J>
__device__ A block_tree(A v, A* sh, J join) {
  __syncthreads();
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned w = blockDim.x / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) sh[threadIdx.x] = join(sh[threadIdx.x], sh[threadIdx.x + w]);
    __syncthreads();
  }
  return sh[0];
}

struct Pair {
  double a, b;
};

// ---- batch norm ---------------------------------------------------------------------

// Per-channel sums over x [N, C, S], in double: channel c's N*S items are split into `parts`
// contiguous runs (a count fixed by the sizes), one block each; partial[c*parts + part] gets
// the run's two sums of f(item offset) in a fixed tree.
struct Channels {
  int64_t N, C, S, parts;
};

template <class F>
__global__ void channel_partials(Channels ch, F f, Pair* partial) {
  __shared__ Pair sh[kThreads];
  const int64_t count = ch.N * ch.S, chunk = (count + ch.parts - 1) / ch.parts;
  for (int64_t task = blockIdx.x; task < ch.C * ch.parts; task += gridDim.x) {
    const int64_t c = task / ch.parts, part = task % ch.parts;
    const int64_t end = (part + 1) * chunk < count ? (part + 1) * chunk : count;
    Pair acc{0, 0};
    for (int64_t k = part * chunk + threadIdx.x; k < end; k += blockDim.x) {
      const int64_t n = k / ch.S, s = k % ch.S;
      const Pair v = f(c, (n * ch.C + c) * ch.S + s);
      acc.a += v.a;
      acc.b += v.b;
    }
    acc = block_tree(acc, sh, [](Pair x, Pair y) { return Pair{x.a + y.a, x.b + y.b}; });
    if (threadIdx.x == 0) partial[task] = acc;
  }
}

// One thread per channel: the parts' sums in order, times `scale`, into out_a and out_b (either
// may be null).
__global__ void channel_join(Channels ch, const Pair* partial, double scale, double* out_a, double* out_b) {
  FK_GRID_STRIDE(c, ch.C) {
    Pair acc{0, 0};
    for (int64_t p = 0; p < ch.parts; p++) {
      acc.a += partial[c * ch.parts + p].a;
      acc.b += partial[c * ch.parts + p].b;
    }
    if (out_a) out_a[c] = acc.a * scale;
    if (out_b) out_b[c] = acc.b * scale;
  }
}

template <class T>
struct SumX {
  const T* x;
  __device__ Pair operator()(int64_t, int64_t off) const { return {double(x[off]), 0}; }
};

template <class T>
struct SumSqDev {
  const T* x;
  const double* mean;
  __device__ Pair operator()(int64_t c, int64_t off) const {
    const double d = double(x[off]) - mean[c];
    return {d * d, 0};
  }
};

template <class T>
struct GradSums {
  const T* g;
  const T* x;
  const double* mean;
  __device__ Pair operator()(int64_t c, int64_t off) const {
    const double gv = double(g[off]);
    return {gv, gv * (double(x[off]) - mean[c])};
  }
};

Channels channels_of(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), S = x.numel() / std::max<int64_t>(1, N * C);
  // Few channels with many items each: split them so the grid fills the device.
  const int64_t count = N * S;
  const int64_t parts = C >= 256 ? 1 : std::min<int64_t>(std::max<int64_t>(count >> 14, 1), 256);
  return {N, C, S, parts};
}

template <class F>
void channel_sums(const char* op, const Channels& ch, F f, double scale, double* out_a, double* out_b) {
  Ref<Storage> partial = cuda_alloc(size_t(ch.C * ch.parts) * sizeof(Pair));
  Pair* pp = static_cast<Pair*>(partial->data);
  FK_LAUNCH(channel_partials<F>, grid_for(ch.C * ch.parts), kThreads, 0, cuda_stream())(ch, f, pp);
  cuda_launched(op);
  FK_LAUNCH(channel_join, blocks_for(ch.C), kThreads, 0, cuda_stream())(ch, pp, scale, out_a, out_b);
  cuda_launched(op);
}

template <class T>
__global__ void channel_affine_kernel(int64_t n, int64_t C, int64_t S, const T* x, const double* a, const double* b,
                                      const T* z, const double* e, T* y) {
  FK_GRID_STRIDE(i, n) {
    const int64_t c = (i / S) % C;
    const T v = T(a[c]) * x[i] + T(b[c]);
    y[i] = z ? v + T(e[c]) * z[i] : v;
  }
}

// ---- cross entropy --------------------------------------------------------------------

// One block: the number of rows not ignored, and the first row whose target is outside
// [0, C) (-1 if none) with its target: res[0..2].
__global__ void check_targets(const int64_t* t, int64_t rows, int64_t C, int64_t ignore, int64_t* res) {
  __shared__ Pair sh[kThreads];
  // (counts and row indices below 2^53 are exact in double)
  double counted = 0, first = double(rows);
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    if (t[r] == ignore) continue;
    if (t[r] < 0 || t[r] >= C) {
      if (double(r) < first) first = double(r);
    } else {
      counted += 1;
    }
  }
  const Pair p =
      block_tree(Pair{counted, first}, sh, [](Pair x, Pair y) { return Pair{x.a + y.a, x.b < y.b ? x.b : y.b}; });
  if (threadIdx.x == 0) {
    const int64_t bad = int64_t(p.b);
    res[0] = int64_t(p.a);
    res[1] = bad < rows ? bad : -1;
    res[2] = bad < rows ? t[bad] : 0;
  }
}

// A row's max m (NaN-propagating; 0 when -inf) and s = sum(exp(x - m)), as the CPU's
// row_shift_sum; with `mean`, also the row's mean.
template <class T>
__device__ void row_stats(const T* xr, int64_t cols, T* sh, T* m_out, T* s_out, T* mean_out) {
  T m = -T(INFINITY);
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) m = xr[i] > m || xr[i] != xr[i] ? xr[i] : m;
  m = block_tree(m, sh, [](T a, T b) { return (b > a || b != b) && a == a ? b : a; });
  if (m == -T(INFINITY)) m = 0;
  T s = 0, sx = 0;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    s += std::exp(xr[i] - m);
    if (mean_out) sx += xr[i];
  }
  const auto add = [](T a, T b) { return a + b; };
  s = block_tree(s, sh, add);
  if (mean_out) *mean_out = block_tree(sx, sh, add) / T(cols);
  *m_out = m;
  *s_out = s;
}

template <class T>
__global__ void cross_entropy_kernel(int64_t rows, int64_t cols, const T* x, const int64_t* t, int64_t ignore,
                                     double eps, T* loss) {
  __shared__ T sh[kThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t tr = t[r];
    if (tr == ignore) {  // (the same for the whole block: no thread waits at a barrier alone)
      if (threadIdx.x == 0) loss[r] = 0;
      continue;
    }
    const T* xr = x + r * cols;
    T m, s, mean = 0;
    row_stats(xr, cols, sh, &m, &s, eps != 0 ? &mean : nullptr);
    // logsumexp - (1-eps) x_t - eps mean, grouped around m
    if (threadIdx.x == 0) loss[r] = std::log(s) + T(1 - eps) * (m - xr[tr]) + T(eps) * (m - mean);
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(int64_t rows, int64_t cols, const T* x, const int64_t* t, int64_t ignore,
                                              double eps, const T* gl, T* gx) {
  __shared__ T sh[kThreads];
  const T smooth = T(eps / double(cols));
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t tr = t[r];
    T* gr = gx + r * cols;
    if (tr == ignore) {
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) gr[i] = 0;
      continue;
    }
    const T* xr = x + r * cols;
    T m, s;
    row_stats(xr, cols, sh, &m, &s, static_cast<T*>(nullptr));
    const T g = gl[r], scale = g / s;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
      T v = std::exp(xr[i] - m) * scale - g * smooth;
      if (i == tr) v -= g * T(1 - eps);
      gr[i] = v;
    }
  }
}

// Threads per row: a power of two from 32 to kThreads, about the row's length.
unsigned row_threads(int64_t cols) {
  unsigned t = 32;
  while (t < unsigned(kThreads) && int64_t(t) < cols) t *= 2;
  return t;
}

// ---- Adam ------------------------------------------------------------------------------

template <class T>
__global__ void adam_kernel(int64_t n, T* p, const T* g, T* m, T* v, AdamStep h) {
  const T b1 = T(h.beta1), b2 = T(h.beta2), step_size = T(h.step_size), inv_bc2 = T(h.inv_bc2), eps = T(h.eps);
  const T wd = T(h.wd), shrink = T(h.shrink);
  FK_GRID_STRIDE(i, n) {
    T gi = g[i], pi = p[i];
    if (h.decoupled)
      pi *= shrink;
    else
      gi += wd * pi;
    const T mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) * inv_bc2 + eps);
  }
}

}  // namespace

// ---- the backend's entry points ------------------------------------------------------------

void cuda_max_pool2d(const Tensor& x, const Window2d& g, const Tensor& out, const Tensor& idx) {
  const int64_t n = out.numel();
  if (n == 0) return;
  float_dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(max_pool_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(g, n, x.data<T>(), out.data<T>(),
                                                                             idx.data<int64_t>());
  });
  cuda_launched("max_pool2d");
}

void cuda_max_pool2d_backward(const Tensor& gout, const Tensor& idx, const Window2d& g, const Tensor& dx) {
  const int64_t n = dx.numel();
  if (n == 0 || gout.numel() == 0) return;
  float_dispatch(gout.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(max_pool_backward_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(
        g, n, gout.data<T>(), idx.data<int64_t>(), dx.data<T>());
  });
  cuda_launched("max_pool2d_backward");
}

void cuda_avg_pool2d(const Tensor& x, const Window2d& g, bool count_include_pad, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  float_dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(avg_pool_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(g, n, count_include_pad, x.data<T>(),
                                                                             out.data<T>());
  });
  cuda_launched("avg_pool2d");
}

void cuda_avg_pool2d_backward(const Tensor& gout, const Window2d& g, bool count_include_pad, const Tensor& dx) {
  const int64_t n = dx.numel();
  if (n == 0 || gout.numel() == 0) return;
  float_dispatch(gout.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(avg_pool_backward_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(g, n, count_include_pad,
                                                                                      gout.data<T>(), dx.data<T>());
  });
  cuda_launched("avg_pool2d_backward");
}

void cuda_adaptive_avg_pool2d(const Tensor& x, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const Adaptive a{x.size(2), x.size(3), out.size(2), out.size(3)};
  float_dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(adaptive_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(a, n, x.data<T>(), out.data<T>());
  });
  cuda_launched("adaptive_avg_pool2d");
}

void cuda_adaptive_avg_pool2d_backward(const Tensor& gout, const Tensor& dx) {
  const int64_t n = dx.numel();
  if (n == 0 || gout.numel() == 0) return;
  const Adaptive a{dx.size(2), dx.size(3), gout.size(2), gout.size(3)};
  float_dispatch(gout.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(adaptive_backward_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(a, n, gout.data<T>(),
                                                                                      dx.data<T>());
  });
  cuda_launched("adaptive_avg_pool2d_backward");
}

void cuda_channel_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const Channels ch = channels_of(x);
  if (ch.C == 0) return;
  const double inv = 1.0 / double(ch.N * ch.S);  // (0 items: NaN statistics, as the CPU's 0/0)
  double* mp = mean.data<double>();
  float_dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    channel_sums("batch_norm", ch, SumX<T>{x.data<T>()}, inv, mp, nullptr);
    // second pass around the mean: no cancellation for large means
    channel_sums("batch_norm", ch, SumSqDev<T>{x.data<T>(), mp}, inv, var.data<double>(), nullptr);
  });
}

void cuda_channel_affine(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& z, const Tensor& e,
                         const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const Channels ch = channels_of(x);
  float_dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    FK_LAUNCH(channel_affine_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(
        n, ch.C, ch.S, x.data<T>(), a.data<double>(), b.data<double>(), z.defined() ? z.data<T>() : nullptr,
        e.defined() ? e.data<double>() : nullptr, y.data<T>());
  });
  cuda_launched("batch_norm");
}

void cuda_channel_grad_sums(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& sg, const Tensor& sgx) {
  const Channels ch = channels_of(x);
  if (ch.C == 0) return;
  float_dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    channel_sums("batch_norm_backward", ch, GradSums<T>{g.data<T>(), x.data<T>(), mean.data<double>()}, 1.0,
                 sg.data<double>(), sgx.data<double>());
  });
}

int64_t cuda_cross_entropy(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& loss,
                           int64_t* bad) {
  const int64_t rows = x.size(0), cols = x.size(1);
  if (rows == 0) return 0;
  // Validate the targets on the device and read back three numbers.
  Ref<Storage> res = cuda_alloc(3 * sizeof(int64_t));
  int64_t* rp = static_cast<int64_t*>(res->data);
  FK_LAUNCH(check_targets, 1, kThreads, 0, cuda_stream())(t.data<int64_t>(), rows, cols, ignore, rp);
  cuda_launched("cross_entropy");
  int64_t host[3] = {0, -1, 0};
  FK_CUDA(cudaMemcpyAsync(host, rp, sizeof(host), cudaMemcpyDeviceToHost, cuda_stream()));
  FK_CUDA(cudaStreamSynchronize(cuda_stream()));
  if (host[1] >= 0) {
    *bad = host[2];
    return -1;
  }
  float_dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(cross_entropy_kernel<T>, grid_for(rows), row_threads(cols), 0, cuda_stream())(
        rows, cols, x.data<T>(), t.data<int64_t>(), ignore, eps, loss.data<T>());
  });
  cuda_launched("cross_entropy");
  return host[0];
}

void cuda_cross_entropy_backward(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& gl,
                                 const Tensor& dx) {
  const int64_t rows = x.size(0), cols = x.size(1);
  if (rows == 0 || cols == 0) return;
  float_dispatch(x.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(cross_entropy_backward_kernel<T>, grid_for(rows), row_threads(cols), 0, cuda_stream())(
        rows, cols, x.data<T>(), t.data<int64_t>(), ignore, eps, gl.data<T>(), dx.data<T>());
  });
  cuda_launched("cross_entropy_backward");
}

void cuda_adam(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamStep& h) {
  const int64_t n = p.numel();
  if (n == 0) return;
  float_dispatch(p.dtype(), [&](auto z) {
    using T = decltype(z);
    FK_LAUNCH(adam_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(n, p.data<T>(), g.data<T>(), m.data<T>(),
                                                                         v.data<T>(), h);
  });
  cuda_launched("adam");
}

}  // namespace fk
