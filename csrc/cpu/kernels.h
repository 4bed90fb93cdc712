// The CPU kernel interface. kernels.cpp is compiled once per instruction set
// (AVX-512, AVX2+FMA, baseline) into its own namespace; `cpu_kernels()` picks
// the best table for this CPU once. Kernels see raw pointers, element counts and
// element strides only: no tensors, no autograd.
#pragma once
#include <cstdint>

#include "../core/backend.h"

namespace fk {

// Neural-network loops, float32 and float64 only (csrc/cpu/nn.cpp).
struct NnKernels {
  // cols[l*ps + k*ks] = x[c][oh*sh - ph + i*dh][ow*sw - pw + j*dw] for output pixel l = oh*Wo + ow
  // and tap k = (c*kh + i)*kw + j, 0 outside the image. Either ks == 1 (pixel-major, each
  // pixel's taps contiguous; ps >= C*kh*kw) or ps == 1 (tap-major, each tap's pixels contiguous).
  void (*im2col)(DType dt, const Window2d& g, int64_t C, const void* x, void* cols, int64_t ps, int64_t ks);
  // dx = im2col transposed: each pixel of dx gets the sum of the column entries taken from it.
  void (*col2im)(DType dt, const Window2d& g, int64_t C, const void* cols, int64_t ps, int64_t ks, void* dx);
  // Depthwise convolution (groups == C, O = C*mult output channels, w [O, 1, kh, kw]). Output
  // planes [q0, q1) of out [N, O, Ho, Wo]; plane q reads input plane q / mult and filter q % O.
  void (*depthwise_conv2d)(DType dt, const Window2d& g, int64_t O, int64_t mult, int64_t q0, int64_t q1, const void* x,
                           const void* w, void* out);
  // Its input gradient, input planes [p0, p1) of dx [N, C, H, W].
  void (*depthwise_conv2d_dx)(DType dt, const Window2d& g, int64_t C, int64_t mult, int64_t p0, int64_t p1,
                              const void* gout, const void* w, void* dx);
  // Its weight gradient, filters [o0, o1) of dw [O, 1, kh, kw], summed over the N images.
  void (*depthwise_conv2d_dw)(DType dt, const Window2d& g, int64_t N, int64_t C, int64_t mult, int64_t o0, int64_t o1,
                              const void* x, const void* gout, void* dw);
  // Over `planes` planes; idx gets the argmax position h*W + w inside its plane.
  void (*max_pool2d)(DType dt, const Window2d& g, int64_t planes, const void* x, void* out, int64_t* idx);
  void (*max_pool2d_backward)(DType dt, const Window2d& g, int64_t planes, const void* gout, const int64_t* idx,
                              void* gx);
  void (*avg_pool2d)(DType dt, const Window2d& g, int64_t planes, bool count_include_pad, const void* x, void* out);
  void (*avg_pool2d_backward)(DType dt, const Window2d& g, int64_t planes, bool count_include_pad, const void* gout,
                              void* gx);
  // Output cell (i, j) averages rows [i*H/Ho, ceil((i+1)*H/Ho)) and likewise columns.
  void (*adaptive_avg_pool2d)(DType dt, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo, const void* x,
                              void* out);
  void (*adaptive_avg_pool2d_backward)(DType dt, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                       const void* gout, void* gx);
  // The batch-norm loops, over channels [c0, c1) of x [N, C, S] (so threads can share the
  // channels). Per-channel mean and biased variance (accumulated in double):
  void (*channel_stats)(DType dt, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const void* x, double* mean,
                        double* var);
  // y = a[c]*x + b[c] (+ e[c]*z when z is given): the normalisation and its backward.
  void (*channel_affine)(DType dt, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const void* x,
                         const double* a, const double* b, const void* z, const double* e, void* y);
  // sg[c] = sum of g, sgx[c] = sum of g*(x - mean[c]) over channel c.
  void (*channel_grad_sums)(DType dt, int64_t N, int64_t C, int64_t S, int64_t c0, int64_t c1, const void* g,
                            const void* x, const double* mean, double* sg, double* sgx);
  // Row-wise softmax (or log-softmax) of `rows` contiguous rows of length `cols`.
  void (*softmax_rows)(DType dt, int64_t rows, int64_t cols, const void* x, void* y, bool log);
  // Cross entropy per row with label smoothing eps: loss[r] = logsumexp(x[r]) - (1-eps)*x[r,t_r] - eps*mean(x[r]).
  // Rows whose target is `ignore` get loss 0.
  void (*cross_entropy)(DType dt, int64_t rows, int64_t cols, const void* x, const int64_t* t, int64_t ignore,
                        double eps, void* loss);
  // gx[r] = gl[r] * (softmax(x[r]) - (1-eps)*onehot(t_r) - eps/cols), 0 for ignored rows.
  void (*cross_entropy_backward)(DType dt, int64_t rows, int64_t cols, const void* x, const int64_t* t, int64_t ignore,
                                 double eps, const void* gl, void* gx);
};

// A register-blocked GEMM micro-kernel: C[0:m, 0:n] = (or += when `accumulate`) the
// product of an m x kc block of A and a packed kc x NR panel of B, m <= MR, n <= NR.
// A(i, k) = A[i*rsa + k*csa] for i < m (a packed panel has rsa = 1, csa = MR), or
// A[i*rsa + acols[k]] when acols is given (columns at arbitrary offsets); B is packed
// k-major, B(k, j) = Bp[k*NR + j], zero past n. C is row-major with row stride ldc; only
// its m x n corner is touched.
struct GemmMicroKernel {
  int mr, nr;
  void (*run)(int64_t kc, const void* A, int64_t rsa, int64_t csa, const int64_t* acols, const void* Bp, void* C,
              int64_t ldc, int m, int n, bool accumulate);
};
// The micro-kernels of one dtype: `wide` for most products, `narrow` (a smaller NR) for
// products with few columns, where the wide one would mostly multiply zero padding.
struct GemmMicroKernels {
  GemmMicroKernel wide, narrow;
  // A panel of A or B: dst[k*w_pad + j] = src[k*sk + j*sj] for k < kc, j < w, and zero in
  // columns w .. w_pad-1.
  void (*pack)(void* dst, int w_pad, const void* src, int64_t sk, int64_t sj, int64_t kc, int w);
};

// Winograd F(4x4, 3x3) for float32 (csrc/cpu/winograd.cpp). Channels go in blocks of
// kWinoLanes lanes; "36" below is the 6x6 transformed tile, indexed xi = 6*row + column.
constexpr int kWinoLanes = 16;
// One tile: x, where its 6x6 input patch starts in the blocked input (channel block 0), and
// o, where its 4x4 output tile starts in an NCHW plane, with the rows x cols of it inside the output.
struct WinoTile {
  int64_t x, o;
  int rows, cols;
};
struct WinogradKernels {
  // xb[cb][top + h][left + w][lane] = x[cb*lanes + lane][h][w] for an image x [C, H, W], zero elsewhere in
  // [ceil(C/lanes), Hp, Wp, lanes].
  void (*to_blocked)(int64_t C, int64_t H, int64_t W, const float* x, int64_t Hp, int64_t Wp, int64_t top, int64_t left,
                     float* xb);
  // v[xi*v_xi + t*v_t + voff[cb] + lane] = (B^T d B)[xi] for tile t's patch d, whose element (r, s) in
  // channel block cb is x[tiles[t].x + cb*cb_step + r*row_pitch + s*lanes + lane].
  void (*input)(int64_t nt, const WinoTile* tiles, int64_t cblocks, int64_t cb_step, int64_t row_pitch, const float* x,
                float* v, int64_t v_xi, int64_t v_t, const int64_t* voff);
  // The output tile A^T m A of channel k < K, with m[xi] = m[t*m_t + xi*m_xi + k], written into NCHW planes
  // (row pitch Wo, channel step plane) at out + tiles[t].o.
  void (*output)(int64_t nt, const WinoTile* tiles, const float* m, int64_t m_t, int64_t m_xi, int64_t K, int64_t Wo,
                 int64_t plane, float* out);
  // The adjoint: m[t*m_t + xi*m_xi + kb*lanes + lane] = (A dy A^T)[xi] for the 4x4 gradient tile dy of
  // tile t in a blocked gradient laid out as `input` reads it, element (r, s) of channel block kb at
  // g[tiles[t].x + kb*kb_step + r*row_pitch + s*lanes + lane] (zero outside the output).
  void (*output_adjoint)(int64_t nt, const WinoTile* tiles, int64_t kblocks, int64_t kb_step, int64_t row_pitch,
                         const float* g, float* m, int64_t m_t, int64_t m_xi);
  // One GEMM B panel of transformed filters: u[xi*u_xi + i*nr + o] = (G w G^T)[xi] for the filter of
  // output channel o < O <= nr (zero up to whole blocks of lanes) and input channel i < I, at
  // w[o*so + i*si + r*sr + s*ss]. nr is a multiple of the lanes.
  void (*weight)(int64_t O, int64_t I, const float* w, int64_t so, int64_t si, int64_t sr, int64_t ss, int64_t nr,
                 float* u, int64_t u_xi);
  // The adjoint: w[o*so + i*si + 3*r + s] (+)= (G^T du G)[r][s], du[xi] = du[xi*u_xi + o*u_o + i].
  void (*weight_adjoint)(int64_t O, int64_t I, const float* du, int64_t u_xi, int64_t u_o, float* w, int64_t so,
                         int64_t si, bool accumulate);
};

struct CpuKernels {
  const char* isa;
  // out[i*so] = op(a[i*sa], b[i*sb]) for i < n; a, b and out (bool for comparisons) of type `dt`.
  int (*binary)(BinOp op, DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa, const void* b,
                int64_t sb);
  void (*unary)(UnOp op, DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa);
  void (*cast)(DType to, DType from, int64_t n, void* out, int64_t so, const void* a, int64_t sa);
  void (*clamp)(DType dt, int64_t n, void* out, int64_t so, const void* a, int64_t sa, double lo, double hi);
  // Row r (r < rows) is the `len` contiguous elements at in + r*row_stride; out[r] gets its reduction.
  void (*reduce_rows)(RedOp op, DType dt, int64_t rows, int64_t len, const void* in, int64_t row_stride, void* out);
  // out[c] = reduction over r < len of in[r*stride + c], for c < cols (columns contiguous).
  void (*reduce_cols)(RedOp op, DType dt, int64_t len, int64_t cols, const void* in, int64_t stride, void* out);
  // Reference GEMM (naive loops, any dtype but bool): C[M,N] = A[M,K] @ B[K,N], all
  // row-major and contiguous. The packed driver (gemm_driver.cpp) uses the micro-kernels.
  void (*gemm)(DType dt, int64_t M, int64_t N, int64_t K, const void* A, const void* B, void* C);
  // One Adam step over n contiguous values (float32/float64); h holds the per-step constants.
  void (*adam)(DType dt, int64_t n, void* p, const void* g, void* m, void* v, const AdamStep& h);
  // dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols: a 2-D transpose (float32, float64).
  void (*transpose)(DType dt, int64_t rows, int64_t cols, const void* src, int64_t lds, void* dst, int64_t ldd);
  const GemmMicroKernels* gemm_f32;
  const GemmMicroKernels* gemm_f64;
  const NnKernels* nn;
  const WinogradKernels* winograd;
};

const CpuKernels& cpu_kernels();

}  // namespace fk
