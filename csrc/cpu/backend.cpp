// The CPU backend: the strided-loop driver and the thread pool around the per-ISA kernels.
// Compiled once (not per instruction set): the kernels it calls are picked at run time.
#include "../core/backend.h"

#include <atomic>

#include "iter.h"

namespace fk {
namespace {

int binary(BinOp op, const Tensor& out, const Tensor& a, const Dims& sa, const Tensor& b, const Dims& sb) {
  const CpuKernels& k = cpu_kernels();
  const DType dt = a.dtype();
  std::atomic<int> status{kOk};
  const Dims so = out.strides();
  StridedLoop<3> loop(out.shape(), {&out, &a, &b}, {&so, &sa, &sb});
  loop.run([&](int64_t n, char* const* p, const int64_t* s) {
    if (int st = k.binary(op, dt, n, p[0], s[0], p[1], s[1], p[2], s[2])) status = st;
  });
  return status;
}

void unary(UnOp op, const Tensor& out, const Tensor& a, const Dims& sa) {
  const CpuKernels& k = cpu_kernels();
  const Dims so = out.strides();
  StridedLoop<2> loop(out.shape(), {&out, &a}, {&so, &sa});
  loop.run([&](int64_t n, char* const* p, const int64_t* s) { k.unary(op, a.dtype(), n, p[0], s[0], p[1], s[1]); });
}

void cast(const Tensor& out, const Tensor& a, const Dims& sa) {
  const CpuKernels& k = cpu_kernels();
  const Dims so = out.strides();
  StridedLoop<2> loop(out.shape(), {&out, &a}, {&so, &sa});
  loop.run([&](int64_t n, char* const* p, const int64_t* s) {
    k.cast(out.dtype(), a.dtype(), n, p[0], s[0], p[1], s[1]);
  });
}

void clamp(const Tensor& out, const Tensor& a, double lo, double hi) {
  const CpuKernels& k = cpu_kernels();
  const Dims so = out.strides(), sa = a.strides();
  StridedLoop<2> loop(out.shape(), {&out, &a}, {&so, &sa});
  loop.run([&](int64_t n, char* const* p, const int64_t* s) { k.clamp(a.dtype(), n, p[0], s[0], p[1], s[1], lo, hi); });
}

template <class T>
void select_loop(int64_t n, char* const* p, const int64_t* s) {
  T* o = reinterpret_cast<T*>(p[0]);
  const bool* c = reinterpret_cast<const bool*>(p[1]);
  const T* a = reinterpret_cast<const T*>(p[2]);
  const T* b = reinterpret_cast<const T*>(p[3]);
  for (int64_t i = 0; i < n; i++) o[i * s[0]] = c[i * s[1]] ? a[i * s[2]] : b[i * s[3]];
}

void where(const Tensor& out, const Tensor& cond, const Dims& sc, const Tensor& a, const Dims& sa, const Tensor& b,
           const Dims& sb) {
  const Dims so = out.strides();
  StridedLoop<4> loop(out.shape(), {&out, &cond, &a, &b}, {&so, &sc, &sa, &sb});
  switch (itemsize(out.dtype())) {  // a select moves bytes: only the width matters
    case 1: loop.run(select_loop<uint8_t>); break;
    case 4: loop.run(select_loop<uint32_t>); break;
    default: loop.run(select_loop<uint64_t>); break;
  }
}

}  // namespace

const Backend& cpu_backend() {
  static const Backend b{binary, unary, cast, clamp, where};
  return b;
}

}  // namespace fk
