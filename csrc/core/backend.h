// The device seam: what each device provides, as whole ops over tensors whose shapes, dtypes
// and broadcasting core has already settled. Inputs come with strides broadcast to the
// output's shape (0 along broadcast dims). Core picks a device's table with backend(device);
// csrc/cpu/backend.cpp holds the CPU's.
#pragma once
#include <vector>

#include "op_list.h"
#include "tensor.h"

namespace fk {

// Status a kernel reports for integer inputs it cannot compute (never thrown from kernels).
enum KernelStatus : int { kOk = 0, kDivByZero = 1, kNegativeIntPower = 2 };

// Geometry of a 2-d window op (convolution or pooling) on one H x W plane.
struct Window2d {
  int64_t H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo;
};

// Adam's constants for one step: m = b1*m + (1-b1)*g, v = b2*v + (1-b2)*g*g,
// p -= step_size * m / (sqrt(v)*inv_bc2 + eps), with L2 (g += wd*p) or decoupled (p *= shrink) decay.
struct AdamStep {
  double beta1, beta2, step_size, inv_bc2, eps, wd, shrink;
  bool decoupled;
};

// What a random fill draws: Uniform in [a, b); Normal with mean a and standard deviation b;
// Integer low + [0, span); Permutation: a random permutation of 0 .. numel-1 (int64).
struct RandomFill {
  enum Kind : uint8_t { Uniform, Normal, Integer, Permutation } kind;
  double a = 0, b = 0;
  int64_t low = 0;
  uint64_t span = 0;
};

struct Backend {
  // Fresh uninitialised storage of nbytes from the device's allocator.
  Ref<Storage> (*alloc)(size_t nbytes);
  // Fills of a contiguous out: every element `value` (core has checked that it fits out's
  // dtype); out[i] = start + i*step; evenly spaced from start to exactly end.
  void (*fill)(const Tensor& out, Scalar value);
  void (*arange)(const Tensor& out, double start, double step);
  void (*linspace)(const Tensor& out, double start, double end);
  // Draws a contiguous out from the device's generator, in element order, so a seed gives the
  // same values whatever the layout; manual_seed restarts the generator.
  void (*random)(const Tensor& out, const RandomFill& r);
  void (*manual_seed)(uint64_t seed);
  // Copies contiguous src into contiguous out of the same shape and dtype, one of them on this
  // device and the other on the CPU. The CPU's table has none: the other device moves the bytes.
  // With non_blocking, a copy from pinned host memory may return before it is done (later work
  // on the device is ordered after it); every other copy has finished on return.
  void (*copy_between)(const Tensor& out, const Tensor& src, bool non_blocking);
  // Page-locked host storage (Storage::pinned) for fast, asynchronous copies to this device;
  // the CPU's table has none.
  Ref<Storage> (*alloc_pinned)(size_t nbytes);
  // out = op(a, b) with a and b of the compute dtype (out bool for comparisons); returns a
  // KernelStatus for integer inputs an op cannot compute.
  int (*binary)(BinOp op, const Tensor& out, const Tensor& a, const Dims& sa, const Tensor& b, const Dims& sb);
  void (*unary)(UnOp op, const Tensor& out, const Tensor& a, const Dims& sa);
  // out = a converted to out's dtype.
  void (*cast)(const Tensor& out, const Tensor& a, const Dims& sa);
  // out = min(max(a, lo), hi), a of out's shape.
  void (*clamp)(const Tensor& out, const Tensor& a, double lo, double hi);
  // out = cond ? a : b, a and b of out's dtype.
  void (*where)(const Tensor& out, const Tensor& cond, const Dims& sc, const Tensor& a, const Dims& sa, const Tensor& b,
                const Dims& sb);
  // out (contiguous, the kept dims in order) = the reduction of a over the dims flagged in
  // `reduced`, `len` elements each (> 0); a of the kernel's input dtype.
  void (*reduce)(RedOp op, const Tensor& a, const bool* reduced, int64_t len, const Tensor& out);
  // C = A @ B (C += A @ B when `accumulate`) on device pointers: A(i, k) = A[i*rsa + k*csa] of an
  // M x K matrix, B(k, j) = B[k*rsb + j*csb], C row-major with row stride ldc (strides in
  // elements, so transposed operands need no copy). With `acols` (float types), column k of A
  // starts at A + acols[k]: a convolution reads its image as the column matrix this way.
  void (*gemm)(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
               int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate, const int64_t* acols);
  // nb products C_i = A_i @ B_i (as gemm) with A_i at A + aoff[i], B_i at B + boff[i]
  // (element offsets) and C_i the i-th M x N block of the contiguous C.
  void (*gemm_batched)(DType dt, int64_t nb, int64_t M, int64_t N, int64_t K, const void* A, const int64_t* aoff,
                       int64_t rsa, int64_t csa, const void* B, const int64_t* boff, int64_t rsb, int64_t csb, void* C);
  // softmax (or log-softmax) of each row of the last dim of x into out, both contiguous.
  void (*softmax_rows)(const Tensor& x, const Tensor& out, bool log);
  // Per-row cross entropy of x [N, C] (contiguous) with int64 targets t [N] and label smoothing
  // eps into loss [N] (0 where t is `ignore`), and its gradient dx for per-row upstream gl.
  // cross_entropy returns the number of rows not ignored, or -1 (computing nothing) with the
  // first target outside [0, C) in *bad.
  int64_t (*cross_entropy)(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& loss,
                           int64_t* bad);
  void (*cross_entropy_backward)(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& gl,
                                 const Tensor& dx);
  // conv2d of contiguous x [N, C, H, W] and w [O, C/groups, kh, kw] into out (no bias); returns
  // what the backward may reuse (undefined if nothing), which core saves and hands back.
  Tensor (*conv2d)(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups, const Tensor& out);
  // Its gradients dx and dw (either may be undefined: not needed) for the contiguous upstream gout.
  void (*conv2d_backward)(const Tensor& x, const Tensor& w, const Tensor& gout, const Window2d& g, int64_t groups,
                          const Tensor& kept, const Tensor& dx, const Tensor& dw);
  // Pooling over the planes of contiguous [N, C, H, W] tensors with geometry g; idx gets each
  // max's position h*W + w in its plane, and the backwards write dx (zeroed by the caller).
  void (*max_pool2d)(const Tensor& x, const Window2d& g, const Tensor& out, const Tensor& idx);
  void (*max_pool2d_backward)(const Tensor& gout, const Tensor& idx, const Window2d& g, const Tensor& dx);
  void (*avg_pool2d)(const Tensor& x, const Window2d& g, bool count_include_pad, const Tensor& out);
  void (*avg_pool2d_backward)(const Tensor& gout, const Window2d& g, bool count_include_pad, const Tensor& dx);
  void (*adaptive_avg_pool2d)(const Tensor& x, const Tensor& out);
  void (*adaptive_avg_pool2d_backward)(const Tensor& gout, const Tensor& dx);
  // Batch norm's passes over x [N, C, ...] (contiguous), per channel c with float64 [C] tensors:
  // the mean and biased variance; y = a[c]*x + b[c] (+ e[c]*z when z is defined); the sums of g
  // and of g*(x - mean[c]).
  void (*channel_stats)(const Tensor& x, const Tensor& mean, const Tensor& var);
  void (*channel_affine)(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& z, const Tensor& e,
                         const Tensor& y);
  void (*channel_grad_sums)(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& sg, const Tensor& sgx);
  // Indexing. wrap_indices: int64 indices (contiguous) into [0, size), negative ones counted from
  // the end; false (with the first offending value in *bad) if one is out of range. gather:
  // out[i] = the `block` contiguous elements of a (contiguous) at the position named by the i-th
  // entry of each index tensor (idx[j] indexes dim j); scatter: the reverse into contiguous
  // out, adding when `accumulate`. nonzero: the [count, ndim] int64 positions of the true
  // elements of a contiguous bool tensor.
  bool (*wrap_indices)(const Tensor& idx, int64_t size, int64_t* bad);
  void (*gather)(const Tensor& a, const std::vector<Tensor>& idx, int64_t block, const Tensor& out);
  void (*scatter)(const Tensor& out, const std::vector<Tensor>& idx, const Tensor& v, int64_t block, bool accumulate);
  Tensor (*nonzero)(const Tensor& a);
  // One Adam step in place over contiguous p, m, v with gradient g.
  void (*adam)(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamStep& h);
  // Factorisations of batches of square float matrices, contiguous [batch..., n, n], in place
  // (null where a device has no kernel yet: core says so). lu: each matrix's LU factors (L's
  // multipliers below the diagonal, U on and above), row k swapped with row piv[k] (int64,
  // [batch..., n]) at step k. lu_solve: b [batch..., n, m] becomes A^-1 b from those. cholesky: L
  // in the lower triangle, zeros above; returns item * n + k for the first item whose leading
  // minor of order k + 1 is not positive-definite, or -1.
  void (*lu)(const Tensor& a, const Tensor& piv);
  void (*lu_solve)(const Tensor& lu, const Tensor& piv, const Tensor& b);
  int64_t (*cholesky)(const Tensor& a);
  // With a [batch..., m, n] (overwritten): qr, the reduced Q [..., m, k] and R [..., k, n]
  // (k = min(m, n)); svd (m >= n), U [..., m, n], the singular values S [..., n] descending and
  // Vh [..., n, n]. eigh (m = n, the lower triangle read): eigenvalues w [..., n] ascending and
  // eigenvectors as the columns of v [..., n, n].
  void (*qr)(const Tensor& a, const Tensor& q, const Tensor& r);
  void (*eigh)(const Tensor& a, const Tensor& w, const Tensor& v);
  void (*svd)(const Tensor& a, const Tensor& u, const Tensor& s, const Tensor& vh);
};

const Backend& cpu_backend();

// The CUDA runtime beyond ops, for fastkern.cuda (csrc/cuda; a build without CUDA says it has
// none).
struct CudaMemoryStats {
  int64_t allocated = 0, peak = 0, reserved = 0;  // bytes in tensors, their peak, bytes held
};
CudaMemoryStats cuda_memory_stats();
void cuda_reset_peak_memory();
void cuda_empty_cache();
void cuda_synchronize();
std::string cuda_device_name();
const Backend& backend(Device device);

}  // namespace fk
