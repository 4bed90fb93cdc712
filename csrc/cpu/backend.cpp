// The CPU backend: the strided-loop driver and the thread pool around the per-ISA kernels.
// Compiled once (not per instruction set): the kernels it calls are picked at run time.
#include "../core/backend.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "allocator.h"
#include "conv_driver.h"
#include "gemm_driver.h"
#include "iter.h"
#include "linalg.h"

namespace fk {
namespace {

// ---- fills -------------------------------------------------------------------------

template <class F>
void fill_each(const Tensor& out, F value_at) {
  dispatch_dtype(out.dtype(), [&](auto z) {
    using T = decltype(z);
    T* p = out.data<T>();
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; i++) p[i] = T(value_at(i));
  });
}

void fill(const Tensor& out, Scalar value) {
  if (value.kind == Scalar::Float)
    fill_each(out, [&](int64_t) { return value.f; });
  else
    fill_each(out, [&](int64_t) { return value.i; });
}

void arange(const Tensor& out, double start, double step) {
  fill_each(out, [&](int64_t i) { return start + double(i) * step; });
}

void linspace(const Tensor& out, double start, double end) {
  const int64_t n = out.numel();
  const double step = n > 1 ? (end - start) / double(n - 1) : 0;
  // From both ends, so the last value is exactly `end`.
  fill_each(out, [&](int64_t i) {
    return n == 1 ? start : i < n / 2 ? start + double(i) * step : end - double(n - 1 - i) * step;
  });
}

// ---- elementwise ---------------------------------------------------------------------

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
  loop.run(
      [&](int64_t n, char* const* p, const int64_t* s) { k.cast(out.dtype(), a.dtype(), n, p[0], s[0], p[1], s[1]); });
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
  // Branch-free (a mask of all ones or zeros picks the bits), so the common layouts below
  // become vector code: a select such as a clamp's backward takes no unpredictable branches.
  auto pick = [](bool c, T x, T y) { return T((x & T(-T(c))) | (y & T(~T(-T(c))))); };
  if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 0) {
    const T y = *b;
    for (int64_t i = 0; i < n; i++) o[i] = pick(c[i], a[i], y);
  } else if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
    for (int64_t i = 0; i < n; i++) o[i] = pick(c[i], a[i], b[i]);
  } else {
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = pick(c[i * s[1]], a[i * s[2]], b[i * s[3]]);
  }
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

// ---- reductions ------------------------------------------------------------------

// Merges dims of (sizes, strides) that are contiguous with each other; drops size-1 dims.
void collapse(Dims& sizes, Dims& strides) {
  Dims s, t;
  for (int i = 0; i < sizes.n; i++) {
    if (sizes[i] == 1) continue;
    if (s.n && t[s.n - 1] == strides[i] * sizes[i]) {
      s[s.n - 1] *= sizes[i];
      t[s.n - 1] = strides[i];
    } else {
      s.push_back(sizes[i]);
      t.push_back(strides[i]);
    }
  }
  sizes = s;
  strides = t;
}

// Calls f(offset, i) for each element i of the (sizes, strides) grid, row-major.
template <class F>
void for_each_offset(const Dims& sizes, const Dims& strides, F f) {
  const int64_t n = sizes.prod();
  int64_t idx[kMaxDims] = {};
  for (int64_t i = 0; i < n; i++) {
    int64_t off = 0;
    for (int d = 0; d < sizes.n; d++) off += idx[d] * strides[d];
    f(off, i);
    for (int d = sizes.n - 1; d >= 0 && ++idx[d] == sizes[d]; d--) idx[d] = 0;
  }
}

constexpr int64_t kBlock = 1 << 16;  // fixed split of long rows: results do not depend on the thread count

void reduce(RedOp op, const Tensor& a, const bool* reduced, int64_t len, const Tensor& out) {
  const CpuKernels& k = cpu_kernels();
  const DType dt = a.dtype();
  const int64_t es = itemsize(dt), oes = itemsize(out.dtype());
  Dims ks, kt, rs, rt;  // kept / reduced sizes and strides
  for (int i = 0; i < a.ndim(); i++) {
    (reduced[i] ? rs : ks).push_back(a.size(i));
    (reduced[i] ? rt : kt).push_back(a.strides()[i]);
  }
  collapse(ks, kt);
  collapse(rs, rt);
  const int64_t nout = ks.prod();
  char* in = a.raw();
  char* o = out.raw();
  const bool splittable = op != RedOp::ArgMax && op != RedOp::ArgMin;

  if (rs.n <= 1 && (rs.n == 0 || rt[0] == 1)) {
    // Each output reduces one contiguous row.
    if (nout == 1 && len > 2 * kBlock && splittable) {
      const int64_t nb = (len + kBlock - 1) / kBlock;
      Tensor part = empty({nb}, out.dtype());
      parallel_for(nb, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; i++)
          k.reduce_rows(op, dt, 1, std::min(kBlock, len - i * kBlock), in + i * kBlock * es, 0, part.raw() + i * oes);
      });
      k.reduce_rows(op, out.dtype(), 1, nb, part.raw(), 0, o);  // partials combine with the same op
    } else if (ks.n <= 1) {
      const int64_t rstride = ks.n ? kt[0] : 0;
      parallel_for(nout, std::max<int64_t>(1, kBlock / std::max<int64_t>(len, 1)), [&](int64_t b, int64_t e) {
        k.reduce_rows(op, dt, e - b, len, in + b * rstride * es, rstride, o + b * oes);
      });
    } else {
      for_each_offset(ks, kt,
                      [&](int64_t off, int64_t i) { k.reduce_rows(op, dt, 1, len, in + off * es, 0, o + i * oes); });
    }
    return;
  }
  if (rs.n == 1 && ks.n >= 1 && kt[ks.n - 1] == 1) {
    // Kept dims end in a contiguous run: reduce whole rows of columns at once.
    const int64_t cols = ks[ks.n - 1];
    Dims os = ks, ot = kt;
    os.n--;
    ot.n--;
    for_each_offset(os, ot, [&](int64_t off, int64_t i) {
      parallel_for(cols, 4096, [&](int64_t b, int64_t e) {
        k.reduce_cols(op, dt, len, e - b, in + (off + b) * es, rt[0], o + (i * cols + b) * oes);
      });
    });
    return;
  }
  // Anything else: copy into (kept..., reduced...) order, then reduce rows.
  Dims shape, strides;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < a.ndim(); i++)
      if (reduced[i] == (pass == 1)) {
        shape.push_back(a.size(i));
        strides.push_back(a.strides()[i]);
      }
  const Tensor c = empty(shape, dt);
  cast(c, a, strides);
  k.reduce_rows(op, dt, nout, len, c.raw(), len, o);
}

void gemm_batched(DType dt, int64_t nb, int64_t M, int64_t N, int64_t K, const void* A, const int64_t* aoff,
                  int64_t rsa, int64_t csa, const void* B, const int64_t* boff, int64_t rsb, int64_t csb, void* C) {
  const int64_t es = itemsize(dt);
  auto item = [&](int64_t i) {
    gemm(dt, M, N, K, static_cast<const char*>(A) + aoff[i] * es, rsa, csa, static_cast<const char*>(B) + boff[i] * es,
         rsb, csb, static_cast<char*>(C) + i * M * N * es, N, false);
  };
  // Small products gain nothing from splitting one of them: run whole items per thread
  // instead (gemm called inside the pool stays on its thread; results are identical).
  if (M * N * K < (int64_t(1) << 20))
    parallel_for(nb, std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, M * N * K)),
                 [&](int64_t i0, int64_t i1) {
                   for (int64_t i = i0; i < i1; i++) item(i);
                 });
  else
    for (int64_t i = 0; i < nb; i++) item(i);
}

// ---- rows of nn ops and optimiser updates ------------------------------------------

void softmax_rows(const Tensor& x, const Tensor& out, bool log) {
  const int64_t cols = x.size(x.ndim() - 1), rows = x.numel() / cols, es = itemsize(x.dtype());
  parallel_for(rows, std::max<int64_t>(1, 16384 / cols), [&](int64_t b, int64_t e) {
    cpu_kernels().nn->softmax_rows(x.dtype(), e - b, cols, x.raw() + b * cols * es, out.raw() + b * cols * es, log);
  });
}

int64_t cross_entropy(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& loss, int64_t* bad) {
  const int64_t rows = x.size(0), C = x.size(1);
  const int64_t* tp = t.data<int64_t>();
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; r++) {
    if (tp[r] == ignore) continue;
    if (tp[r] < 0 || tp[r] >= C) {
      *bad = tp[r];
      return -1;
    }
    counted++;
  }
  cpu_kernels().nn->cross_entropy(x.dtype(), rows, C, x.raw(), tp, ignore, eps, loss.raw());
  return counted;
}

void cross_entropy_backward(const Tensor& x, const Tensor& t, int64_t ignore, double eps, const Tensor& gl,
                            const Tensor& dx) {
  cpu_kernels().nn->cross_entropy_backward(x.dtype(), x.size(0), x.size(1), x.raw(), t.data<int64_t>(), ignore, eps,
                                           gl.raw(), dx.raw());
}

// Planes of [N, C, H, W]: N * C of them.
int64_t planes(const Tensor& t) { return t.size(0) * t.size(1); }

void max_pool2d(const Tensor& x, const Window2d& g, const Tensor& out, const Tensor& idx) {
  const int64_t es = itemsize(x.dtype());
  parallel_for(planes(x), std::max<int64_t>(1, 4096 / (g.Ho * g.Wo * g.kh * g.kw)), [&](int64_t b, int64_t e) {
    cpu_kernels().nn->max_pool2d(x.dtype(), g, e - b, x.raw() + b * g.H * g.W * es, out.raw() + b * g.Ho * g.Wo * es,
                                 idx.data<int64_t>() + b * g.Ho * g.Wo);
  });
}

void max_pool2d_backward(const Tensor& gout, const Tensor& idx, const Window2d& g, const Tensor& dx) {
  cpu_kernels().nn->max_pool2d_backward(gout.dtype(), g, planes(dx), gout.raw(), idx.data<int64_t>(), dx.raw());
}

void avg_pool2d(const Tensor& x, const Window2d& g, bool count_include_pad, const Tensor& out) {
  cpu_kernels().nn->avg_pool2d(x.dtype(), g, planes(x), count_include_pad, x.raw(), out.raw());
}

void avg_pool2d_backward(const Tensor& gout, const Window2d& g, bool count_include_pad, const Tensor& dx) {
  cpu_kernels().nn->avg_pool2d_backward(gout.dtype(), g, planes(dx), count_include_pad, gout.raw(), dx.raw());
}

void adaptive_avg_pool2d(const Tensor& x, const Tensor& out) {
  cpu_kernels().nn->adaptive_avg_pool2d(x.dtype(), planes(x), x.size(2), x.size(3), out.size(2), out.size(3), x.raw(),
                                        out.raw());
}

void adaptive_avg_pool2d_backward(const Tensor& gout, const Tensor& dx) {
  cpu_kernels().nn->adaptive_avg_pool2d_backward(gout.dtype(), planes(dx), dx.size(2), dx.size(3), gout.size(2),
                                                 gout.size(3), gout.raw(), dx.raw());
}

// ---- batch norm: channels split across threads, a range holding at least ~32K values

struct Channels {
  int64_t N, C, S;
  explicit Channels(const Tensor& x)
      : N(x.size(0)), C(x.size(1)), S(x.numel() / std::max<int64_t>(1, x.size(0) * x.size(1))) {}
  template <class F>
  void run(F&& f) const {
    parallel_for(C, std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, N * S)), f);
  }
};

void channel_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const Channels ch(x);
  ch.run([&](int64_t c0, int64_t c1) {
    cpu_kernels().nn->channel_stats(x.dtype(), ch.N, ch.C, ch.S, c0, c1, x.raw(), mean.data<double>(),
                                    var.data<double>());
  });
}

void channel_affine(const Tensor& x, const Tensor& a, const Tensor& b, const Tensor& z, const Tensor& e,
                    const Tensor& y) {
  const Channels ch(x);
  ch.run([&](int64_t c0, int64_t c1) {
    cpu_kernels().nn->channel_affine(x.dtype(), ch.N, ch.C, ch.S, c0, c1, x.raw(), a.data<double>(), b.data<double>(),
                                     z.defined() ? z.raw() : nullptr, e.defined() ? e.data<double>() : nullptr,
                                     y.raw());
  });
}

void channel_grad_sums(const Tensor& g, const Tensor& x, const Tensor& mean, const Tensor& sg, const Tensor& sgx) {
  const Channels ch(x);
  ch.run([&](int64_t c0, int64_t c1) {
    cpu_kernels().nn->channel_grad_sums(x.dtype(), ch.N, ch.C, ch.S, c0, c1, g.raw(), x.raw(), mean.data<double>(),
                                        sg.data<double>(), sgx.data<double>());
  });
}

// ---- indexing

bool wrap_indices(const Tensor& idx, int64_t size, int64_t* bad) {
  int64_t* p = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); i++) {
    if (p[i] < -size || p[i] >= size) {
      *bad = p[i];
      return false;
    }
    if (p[i] < 0) p[i] += size;
  }
  return true;
}

// Element offset (in t's contiguous layout) of the block picked by position i of the indices.
int64_t block_offset(const std::vector<Tensor>& idx, const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (size_t j = 0; j < idx.size(); j++) off += idx[j].data<int64_t>()[i] * t.strides()[int(j)];
  return off;
}

void gather(const Tensor& a, const std::vector<Tensor>& idx, int64_t block, const Tensor& out) {
  const int64_t es = itemsize(a.dtype()), count = idx.empty() ? 1 : idx[0].numel();
  for (int64_t i = 0; i < count; i++)
    std::memcpy(out.raw() + i * block * es, a.raw() + block_offset(idx, a, i) * es, size_t(block * es));
}

void scatter(const Tensor& out, const std::vector<Tensor>& idx, const Tensor& v, int64_t block, bool accumulate) {
  const int64_t count = idx.empty() ? 1 : idx[0].numel();
  dispatch_dtype(out.dtype(), [&](auto z) {
    using T = decltype(z);
    for (int64_t i = 0; i < count; i++) {
      T* dst = out.data<T>() + block_offset(idx, out, i);
      const T* src = v.data<T>() + i * block;
      if (accumulate) {
        for (int64_t j = 0; j < block; j++) dst[j] = T(dst[j] + src[j]);
      } else {
        std::memcpy(dst, src, size_t(block) * sizeof(T));
      }
    }
  });
}

Tensor nonzero(const Tensor& a) {
  const bool* p = a.data<bool>();
  const int64_t n = a.numel();
  int64_t count = 0;
  for (int64_t i = 0; i < n; i++) count += p[i];
  Tensor out = empty({count, int64_t(a.ndim())}, DType::Int64);
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0; i < n; i++) {
    if (!p[i]) continue;
    int64_t rem = i;
    for (int d = a.ndim() - 1; d >= 0; d--) {
      o[d] = rem % a.size(d);
      rem /= a.size(d);
    }
    o += a.ndim();
  }
  return out;
}

void adam(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v, const AdamStep& h) {
  // Parameters are small next to the step's other work: split only large ones.
  const int64_t es = itemsize(p.dtype());
  parallel_for(p.numel(), int64_t(1) << 16, [&](int64_t b, int64_t e) {
    cpu_kernels().adam(p.dtype(), e - b, p.raw() + b * es, g.raw() + b * es, m.raw() + b * es, v.raw() + b * es, h);
  });
}

}  // namespace

const Backend& cpu_backend() {
  static const Backend b{
      .alloc = cpu_alloc,
      .fill = fill,
      .arange = arange,
      .linspace = linspace,
      .random = cpu_random,
      .manual_seed = cpu_manual_seed,
      .copy_between = nullptr,  // copies between the CPU and a device are the device's
      .alloc_pinned = nullptr,
      .binary = binary,
      .unary = unary,
      .cast = cast,
      .clamp = clamp,
      .where = where,
      .reduce = reduce,
      .gemm = gemm,
      .gemm_batched = gemm_batched,
      .softmax_rows = softmax_rows,
      .cross_entropy = cross_entropy,
      .cross_entropy_backward = cross_entropy_backward,
      .conv2d = conv2d_cpu,
      .conv2d_backward = conv2d_backward_cpu,
      .max_pool2d = max_pool2d,
      .max_pool2d_backward = max_pool2d_backward,
      .avg_pool2d = avg_pool2d,
      .avg_pool2d_backward = avg_pool2d_backward,
      .adaptive_avg_pool2d = adaptive_avg_pool2d,
      .adaptive_avg_pool2d_backward = adaptive_avg_pool2d_backward,
      .channel_stats = channel_stats,
      .channel_affine = channel_affine,
      .channel_grad_sums = channel_grad_sums,
      .wrap_indices = wrap_indices,
      .gather = gather,
      .scatter = scatter,
      .nonzero = nonzero,
      .adam = adam,
      .lu = cpu_lu,
      .lu_solve = cpu_lu_solve,
      .cholesky = cpu_cholesky,
      .qr = cpu_qr,
      .eigh = cpu_eigh,
      .svd = cpu_svd,
  };
  return b;
}

}  // namespace fk
