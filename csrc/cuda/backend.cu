// The CUDA backend: its table, the stream every kernel runs on, error checks, and copies
// between host and device. Kernels run asynchronously in one stream; the host waits only where
// it reads a value (copies to the host, item(), integer-op status).
#include <atomic>

#include "cuda_util.h"

namespace fk {

int cuda_binary(BinOp op, const Tensor& out, const Tensor& a, const Dims& sa, const Tensor& b, const Dims& sb);
void cuda_unary(UnOp op, const Tensor& out, const Tensor& a, const Dims& sa);
void cuda_cast(const Tensor& out, const Tensor& a, const Dims& sa);
void cuda_clamp(const Tensor& out, const Tensor& a, double lo, double hi);
void cuda_where(const Tensor& out, const Tensor& cond, const Dims& sc, const Tensor& a, const Dims& sa, const Tensor& b,
                const Dims& sb);
void cuda_fill(const Tensor& out, Scalar value);
void cuda_arange(const Tensor& out, double start, double step);
void cuda_linspace(const Tensor& out, double start, double end);
void cuda_reduce(RedOp op, const Tensor& a, const bool* reduced, int64_t len, const Tensor& out);
void cuda_softmax_rows(const Tensor& x, const Tensor& out, bool log);
// gemm.cu, conv.cu
void cuda_gemm(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
               int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate, const int64_t* acols);
void cuda_gemm_batched(DType dt, int64_t nb, int64_t M, int64_t N, int64_t K, const void* A, const int64_t* aoff,
                       int64_t rsa, int64_t csa, const void* B, const int64_t* boff, int64_t rsb, int64_t csb, void* C);
Tensor cuda_conv2d(const Tensor& x, const Tensor& w, const Window2d& g, int64_t groups, const Tensor& out);
void cuda_conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& gout, const Window2d& g, int64_t groups,
                          const Tensor& kept, const Tensor& dx, const Tensor& dw);
// nn.cu
int64_t cuda_cross_entropy(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& loss,
                           int64_t* bad);
void cuda_cross_entropy_backward(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& gl,
                                 const Tensor& dx);
void cuda_max_pool2d(const Tensor& x, const Window2d& g, const Tensor& out, const Tensor& idx);
void cuda_max_pool2d_backward(const Tensor& gout, const Tensor& idx, const Window2d& g, const Tensor& dx);
void cuda_avg_pool2d(const Tensor& x, const Window2d& g, bool count_include_pad, const Tensor& out);
void cuda_avg_pool2d_backward(const Tensor& gout, const Window2d& g, bool count_include_pad, const Tensor& dx);
void cuda_adaptive_avg_pool2d(const Tensor& x, const Tensor& out);
void cuda_adaptive_avg_pool2d_backward(const Tensor& gout, const Tensor& dx);
void cuda_channel_stats(const Tensor& x, const Tensor& mean, const Tensor& var);
void cuda_channel_affine(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& z, const Tensor& e,
                         const Tensor& y);
void cuda_channel_grad_sums(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& sg, const Tensor& sgx);
void cuda_adam(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamStep& h);
// index.cu
bool cuda_wrap_indices(const Tensor& idx, int64_t size, int64_t* bad);
void cuda_gather(const Tensor& a, const std::vector<Tensor>& idx, int64_t block, const Tensor& out);
void cuda_scatter(const Tensor& out, const std::vector<Tensor>& idx, const Tensor& v, int64_t block, bool accumulate);
Tensor cuda_nonzero(const Tensor& a);

namespace {
std::atomic<const char*> last_op{"none"};
}  // namespace

void cuda_check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky launch error so later calls work
  throw Error(ErrorKind::Runtime, str_cat("CUDA error: ", cudaGetErrorString(e), " (in ", what,
                                          "; the last kernel launched was ", last_op.load(), ")"));
}

void cuda_launched(const char* op) {
  last_op = op;
  cuda_check(cudaGetLastError(), op);
}

cudaStream_t cuda_stream() {
  static cudaStream_t s = [] {
    cudaStream_t t;
    FK_CUDA(cudaStreamCreateWithFlags(&t, cudaStreamNonBlocking));
    return t;
  }();
  return s;
}

void cuda_synchronize() {
  backend(Device::CUDA);  // the clear error when there is no device
  FK_CUDA(cudaStreamSynchronize(cuda_stream()));
}

std::string cuda_device_name() {
  backend(Device::CUDA);
  cudaDeviceProp p;
  FK_CUDA(cudaGetDeviceProperties(&p, 0));
  return p.name;
}

namespace {

void copy_between(const Tensor& out, const Tensor& src, bool non_blocking) {
  const size_t n = size_t(src.numel()) * size_t(itemsize(src.dtype()));
  if (n == 0) return;
  const cudaMemcpyKind kind = out.device() == Device::CPU   ? cudaMemcpyDeviceToHost
                              : src.device() == Device::CPU ? cudaMemcpyHostToDevice
                                                            : cudaMemcpyDeviceToDevice;
  FK_CUDA(cudaMemcpyAsync(out.raw(), src.raw(), n, kind, cuda_stream()));
  // Pageable host memory may die or change when this returns: wait for the copy. Pinned memory
  // stays (its allocator holds a released block until the stream passes it), so a non-blocking
  // copy to the device goes on while the host does. A copy to the host always waits: its
  // reader is the CPU, which the stream does not order.
  const bool async =
      kind == cudaMemcpyDeviceToDevice || (non_blocking && kind == cudaMemcpyHostToDevice && src.p->storage->pinned);
  if (!async) cuda_synchronize();
}

}  // namespace

const Backend& cuda_backend() {
  static const Backend b{
      .alloc = cuda_alloc,
      .fill = cuda_fill,
      .arange = cuda_arange,
      .linspace = cuda_linspace,
      .random = cuda_random,
      .manual_seed = cuda_manual_seed,
      .copy_between = copy_between,
      .alloc_pinned = cuda_alloc_pinned,
      .binary = cuda_binary,
      .unary = cuda_unary,
      .cast = cuda_cast,
      .clamp = cuda_clamp,
      .where = cuda_where,
      .reduce = cuda_reduce,
      .gemm = cuda_gemm,
      .gemm_batched = cuda_gemm_batched,
      .softmax_rows = cuda_softmax_rows,
      .cross_entropy = cuda_cross_entropy,
      .cross_entropy_backward = cuda_cross_entropy_backward,
      .conv2d = cuda_conv2d,
      .conv2d_backward = cuda_conv2d_backward,
      .max_pool2d = cuda_max_pool2d,
      .max_pool2d_backward = cuda_max_pool2d_backward,
      .avg_pool2d = cuda_avg_pool2d,
      .avg_pool2d_backward = cuda_avg_pool2d_backward,
      .adaptive_avg_pool2d = cuda_adaptive_avg_pool2d,
      .adaptive_avg_pool2d_backward = cuda_adaptive_avg_pool2d_backward,
      .channel_stats = cuda_channel_stats,
      .channel_affine = cuda_channel_affine,
      .channel_grad_sums = cuda_channel_grad_sums,
      .wrap_indices = cuda_wrap_indices,
      .gather = cuda_gather,
      .scatter = cuda_scatter,
      .nonzero = cuda_nonzero,
      .adam = cuda_adam,
      // No factorisation kernels yet: linalg ops on CUDA tensors raise NotImplementedError.
      .lu = nullptr,
      .lu_solve = nullptr,
      .cholesky = nullptr,
      .qr = nullptr,
      .eigh = nullptr,
      .svd = nullptr,
  };
  return b;
}

}  // namespace fk
