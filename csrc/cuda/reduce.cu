// CUDA reductions and row softmax. Every floating-point result is deterministic: a fixed tree
// over a fixed split that depends on the sizes only, and no float atomics.
#include <cmath>
#include <type_traits>

#include "cuda_util.h"

namespace fk {
namespace {

// How one reduction accumulates: A is the accumulator (plain data, so it can live in shared
// memory), `item` makes one from element j, `join` combines two (commutative: every pair
// order in the tree gives the CPU's answer up to rounding, and arg ties go to the lower index).
template <class T, RedOp OP>
struct Red {
  using A = T;
  static __device__ A init() {
    if constexpr (OP == RedOp::Prod)
      return T(1);
    else if constexpr (OP == RedOp::All)
      return T(1);
    else
      return T(0);
  }
  static __device__ A item(T x, int64_t) { return x; }
  static __device__ A join(A a, A b) {
    if constexpr (OP == RedOp::Sum)
      return T(a + b);
    else if constexpr (OP == RedOp::Prod)
      return T(a * b);
    else if constexpr (OP == RedOp::All)
      return T(a && b);
    else
      return T(a || b);  // Any
  }
  static __device__ void store(void* out, int64_t o, A a) {
    if constexpr (OP == RedOp::All || OP == RedOp::Any)
      static_cast<bool*>(out)[o] = a != T(0);
    else
      static_cast<T*>(out)[o] = a;
  }
};

// max/min propagate NaN, as PyTorch does; `has` marks the identity (no element yet).
template <class T, bool IsMax>
struct Extreme {
  struct A {
    T v;
    bool has;
  };
  static __device__ A init() { return {T(0), false}; }
  static __device__ A item(T x, int64_t) { return {x, true}; }
  static __device__ A join(A a, A b) {
    if (!a.has) return b;
    if (!b.has) return a;
    const bool take_b = IsMax ? (b.v > a.v || b.v != b.v) : (b.v < a.v || b.v != b.v);
    return take_b && a.v == a.v ? b : a;
  }
  static __device__ void store(void* out, int64_t o, A a) { static_cast<T*>(out)[o] = a.v; }
};
template <class T>
struct Red<T, RedOp::Max> : Extreme<T, true> {};
template <class T>
struct Red<T, RedOp::Min> : Extreme<T, false> {};

// The index of the first extreme value (of the first NaN, if any).
template <class T, bool IsMax>
struct ArgExtreme {
  struct A {
    T v;
    int64_t i;  // -1: no element yet
  };
  static __device__ A init() { return {T(0), -1}; }
  static __device__ A item(T x, int64_t j) { return {x, j}; }
  static __device__ A join(A a, A b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool an = a.v != a.v, bn = b.v != b.v;
    bool take_b;
    if (an || bn)
      take_b = an && bn ? b.i < a.i : bn;
    else if (a.v == b.v)
      take_b = b.i < a.i;
    else
      take_b = IsMax ? b.v > a.v : b.v < a.v;
    return take_b ? b : a;
  }
  static __device__ void store(void* out, int64_t o, A a) { static_cast<int64_t*>(out)[o] = a.i; }
};
template <class T>
struct Red<T, RedOp::ArgMax> : ArgExtreme<T, true> {};
template <class T>
struct Red<T, RedOp::ArgMin> : ArgExtreme<T, false> {};

// Offsets of the items of a collapsed (sizes, strides) grid, row-major.
struct Walk {
  int nd = 0;
  int64_t size[kMaxDims], stride[kMaxDims];
  __device__ int64_t at(int64_t i) const {
    if (nd <= 1) return nd ? i * stride[0] : 0;
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
      off += (i % size[d]) * stride[d];
      i /= size[d];
    }
    return off;
  }
};

Walk make_walk(const Dims& sizes, const Dims& strides) {
  Walk w;
  for (int i = 0; i < sizes.n; i++) {
    if (sizes[i] == 1) continue;
    if (w.nd && w.stride[w.nd - 1] == strides[i] * sizes[i]) {
      w.size[w.nd - 1] *= sizes[i];
      w.stride[w.nd - 1] = strides[i];
    } else {
      w.size[w.nd] = sizes[i];
      w.stride[w.nd] = strides[i];
      w.nd++;
    }
  }
  return w;
}

// The block's threads combine their accumulators in a fixed tree; thread 0 gets the result.
template <class R>
__device__ typename R::A block_join(typename R::A acc) {
  __shared__ typename R::A sh[kThreads];
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) sh[threadIdx.x] = R::join(sh[threadIdx.x], sh[threadIdx.x + w]);
    __syncthreads();
  }
  return sh[0];
}

// One thread per output: short reductions.
template <class T, class R>
__global__ void reduce_per_thread(const T* in, Walk kept, Walk red, int64_t nout, int64_t len, void* out) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < nout; o += int64_t(gridDim.x) * blockDim.x) {
    const T* base = in + kept.at(o);
    typename R::A acc = R::init();
    for (int64_t j = 0; j < len; j++) acc = R::join(acc, R::item(base[red.at(j)], j));
    R::store(out, o, acc);
  }
}

// One block per (output, part): part p of `parts` reduces a contiguous run of the items; with
// one part it stores the result, with more it writes its accumulator to `partial`.
template <class T, class R>
__global__ void reduce_per_block(const T* in, Walk kept, Walk red, int64_t nout, int64_t len, int64_t parts, void* out,
                                 typename R::A* partial) {
  const int64_t chunk = (len + parts - 1) / parts;
  for (int64_t task = blockIdx.x; task < nout * parts; task += gridDim.x) {
    const int64_t o = task / parts, p = task % parts;
    const T* base = in + kept.at(o);
    const int64_t end = (p + 1) * chunk < len ? (p + 1) * chunk : len;
    typename R::A acc = R::init();
    for (int64_t j = p * chunk + threadIdx.x; j < end; j += blockDim.x) acc = R::join(acc, R::item(base[red.at(j)], j));
    acc = block_join<R>(acc);
    if (threadIdx.x == 0) {
      if (parts == 1)
        R::store(out, o, acc);
      else
        partial[task] = acc;
    }
    __syncthreads();  // sh is reused by the next task
  }
}

template <class R>
__global__ void join_parts(const typename R::A* partial, int64_t nout, int64_t parts, void* out) {
  for (int64_t o = blockIdx.x; o < nout; o += gridDim.x) {
    typename R::A acc = R::init();
    for (int64_t p = threadIdx.x; p < parts; p += blockDim.x) acc = R::join(acc, partial[o * parts + p]);
    acc = block_join<R>(acc);
    if (threadIdx.x == 0) R::store(out, o, acc);
    __syncthreads();
  }
}

template <class T>
using Wrapped = std::conditional_t<std::is_same_v<T, int64_t>, uint64_t, T>;

template <class T, RedOp OP>
void reduce_as(const Tensor& a, const bool* reduced, int64_t len, const Tensor& out) {
  using R = Red<T, OP>;
  Dims ks, kt, rs, rt;
  for (int i = 0; i < a.ndim(); i++) {
    (reduced[i] ? rs : ks).push_back(a.size(i));
    (reduced[i] ? rt : kt).push_back(a.strides()[i]);
  }
  const Walk kept = make_walk(ks, kt), red = make_walk(rs, rt);
  const int64_t nout = ks.prod();
  if (nout == 0) return;
  const T* in = a.data<T>();
  if (len <= 64) {
    FK_LAUNCH((reduce_per_thread<T, R>), blocks_for(nout), kThreads, 0, cuda_stream())(in, kept, red, nout, len,
                                                                                       out.raw());
    cuda_launched("reduce");
    return;
  }
  // Few long reductions: split each into parts (a count fixed by the sizes, so results are
  // reproducible on any GPU), then join the parts.
  const int64_t parts = nout < 64 && len >= (1 << 16) ? std::min<int64_t>(len >> 14, 1024) : 1;
  Ref<Storage> partial;
  if (parts > 1) partial = cuda_alloc(size_t(nout * parts) * sizeof(typename R::A));
  auto* pp = parts > 1 ? static_cast<typename R::A*>(partial->data) : nullptr;
  FK_LAUNCH((reduce_per_block<T, R>), grid_for(nout * parts), kThreads, 0, cuda_stream())(in, kept, red, nout, len,
                                                                                          parts, out.raw(), pp);
  cuda_launched("reduce");
  if (parts > 1) {
    FK_LAUNCH(join_parts<R>, grid_for(nout), kThreads, 0, cuda_stream())(pp, nout, parts, out.raw());
    cuda_launched("reduce");
  }
}

// ---- row softmax -------------------------------------------------------------------------

template <class T>
struct MaxOf {
  using A = T;
  static __device__ A join(A a, A b) { return (b > a || b != b) && a == a ? b : a; }
};
template <class T>
struct SumOf {
  using A = T;
  static __device__ A join(A a, A b) { return a + b; }
};

// One block per row: the max (NaN-propagating), the sum of exp(x - max), then the outputs.
template <class T>
__global__ void softmax_rows_kernel(const T* x, T* y, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T m = -T(INFINITY);
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) m = MaxOf<T>::join(m, xr[i]);
    m = block_join<MaxOf<T>>(m);
    __syncthreads();
    if (m == -T(INFINITY)) m = 0;
    T s = 0;
    for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) s += std::exp(xr[i] - m);
    s = block_join<SumOf<T>>(s);
    __syncthreads();
    if (log) {
      const T ls = std::log(s);
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = (xr[i] - m) - ls;
    } else {
      const T inv = T(1) / s;
      for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = std::exp(xr[i] - m) * inv;
    }
  }
}

}  // namespace

void cuda_reduce(RedOp op, const Tensor& a, const bool* reduced, int64_t len, const Tensor& out) {
  dispatch_dtype(a.dtype(), [&](auto z) {
    using T = decltype(z);
    switch (op) {
      // int64 sums and products wrap around, as PyTorch's: in uint64, where C++ defines that
      case RedOp::Sum:
        if constexpr (!std::is_same_v<T, bool>) reduce_as<Wrapped<T>, RedOp::Sum>(a, reduced, len, out);
        break;
      case RedOp::Prod:
        if constexpr (!std::is_same_v<T, bool>) reduce_as<Wrapped<T>, RedOp::Prod>(a, reduced, len, out);
        break;
      case RedOp::Max: reduce_as<T, RedOp::Max>(a, reduced, len, out); break;
      case RedOp::Min: reduce_as<T, RedOp::Min>(a, reduced, len, out); break;
      case RedOp::ArgMax: reduce_as<T, RedOp::ArgMax>(a, reduced, len, out); break;
      case RedOp::ArgMin: reduce_as<T, RedOp::ArgMin>(a, reduced, len, out); break;
      case RedOp::All: reduce_as<T, RedOp::All>(a, reduced, len, out); break;
      case RedOp::Any: reduce_as<T, RedOp::Any>(a, reduced, len, out); break;
    }
  });
}

void cuda_softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  const int64_t cols = x.size(x.ndim() - 1), rows = x.numel() / cols;
  if (rows == 0) return;
  dispatch_dtype(x.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) {
      FK_LAUNCH(softmax_rows_kernel<T>, grid_for(rows), kThreads, 0, cuda_stream())(x.data<T>(), out.data<T>(), rows,
                                                                                    cols, log);
      cuda_launched(log ? "log_softmax" : "softmax");
    }
  });
}

}  // namespace fk
