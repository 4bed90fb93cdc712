// GEMM driver. float32/float64 go through packed panels and the per-ISA
// register-blocked micro-kernel (Goto/BLIS style); int64/uint8 through the naive
// reference kernel, which only has to be correct.
//
// Reproducibility: K is cut into blocks that depend on the shape alone, each C
// element sums its K blocks in order, and threads split only M or N, so the result
// is bitwise the same for any thread count.
#include "gemm_driver.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace fk {
namespace {

// Blocking, tuned on a Zen 4-class core (32 KiB L1d, 1 MiB L2), not hard limits. K
// blocks are at most kKC long when A is packed (an MR x kc panel of A stays in L1) and
// kKCUnpackedA when A is read in place (no such panel; longer blocks mean fewer passes
// over C and fewer barriers).
constexpr int64_t kKC = 256, kKCUnpackedA = 1024;
constexpr int64_t kNCols = 512;  // columns of packed B swept per A panel (kc x 512 in L2)
// Pack A only when it meets more B panels than this and has this many elements.
constexpr int64_t kPackAPanels = 4, kPackAElems = int64_t(1) << 19;
// Below this many multiply-adds one thread is faster than waking the pool.
constexpr int64_t kParallelMACs = int64_t(1) << 20;

// 64-byte aligned scratch, one per calling thread, grown on demand and kept (a few MiB
// at most for 2048-square): packing buffers are needed on every call and fresh large
// allocations cost page faults.
template <class T>
T* scratch(size_t n) {
  thread_local std::unique_ptr<char[]> buf;
  thread_local size_t cap = 0;
  const size_t bytes = n * sizeof(T) + 64;
  if (bytes > cap) {
    buf.reset(new char[bytes]);
    cap = bytes;
  }
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(buf.get()) + 63) & ~uintptr_t(63));
}

// A spin barrier between the parts of one parallel_for. Each caller arrives with the
// number of parts it runs (one, or all of them when parallel_for ran serially), so
// nobody waits for a part that no thread will run.
class PartsBarrier {
 public:
  explicit PartsBarrier(int64_t parts) : parts_(parts) {}
  void arrive_and_wait(int64_t mine) {
    const int64_t gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(mine, std::memory_order_acq_rel) + mine == parts_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
    } else {
      while (gen_.load(std::memory_order_acquire) == gen) std::this_thread::yield();
    }
  }

 private:
  const int64_t parts_;
  std::atomic<int64_t> count_{0}, gen_{0};
};

template <class T>
void gemm_packed(const GemmMicroKernels& uks, int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa,
                 const int64_t* acols, const T* B, int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate) {
  const GemmMicroKernel& uk = N <= uks.narrow.nr ? uks.narrow : uks.wide;
  const int MR = uk.mr, NR = uk.nr;
  const int64_t mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;  // panels of A and of B
  // The micro-kernel can read A where it is (its strides are free; only B must be
  // packed). Packing A pays off only for a large A that meets many B panels: then its
  // panels stream from contiguous memory instead of MR rows pages apart.
  const bool pack_a = !acols && np > kPackAPanels && M * K >= kPackAElems;
  // K blocks of near-equal length, chosen from the shape alone (never the thread count).
  const int64_t kc_limit = pack_a ? kKC : kKCUnpackedA;
  const int64_t nkb = (K + kc_limit - 1) / kc_limit, kc_max = (K + nkb - 1) / nkb;
  // Two sets of packed panels: K block kb+1 is packed while others may still read kb.
  const int64_t set = ((pack_a ? mp * MR : 0) + np * NR) * kc_max;
  T* packed = scratch<T>(size_t(2 * set));
  const int64_t nc = std::max<int64_t>(1, kNCols / NR);  // B panels per sweep
  // Each part computes a slice of C's panels along one side; it packs the A and B
  // panels of its share of both sides, waits until all parts have packed, computes.
  // The side is the one that splits more evenly (a partial share costs a whole one),
  // and threads are used only when that leaves little idle.
  const int64_t threads = M * N * K >= kParallelMACs ? num_threads() : 1;
  const bool split_m = evenness(mp, threads) >= evenness(np, threads);
  const int64_t parts = evenness(split_m ? mp : np, threads) >= kMinEvenness ? threads : 1;
  PartsBarrier packed_all(parts);
  parallel_for(parts, 1, [&](int64_t t0, int64_t t1) {
    const int64_t a0 = mp * t0 / parts, a1 = mp * t1 / parts, b0 = np * t0 / parts, b1 = np * t1 / parts;
    const int64_t r0 = split_m ? a0 : 0, r1 = split_m ? a1 : mp, c0 = split_m ? 0 : b0, c1 = split_m ? np : b1;
    for (int64_t kb = 0; kb < nkb; kb++) {
      const int64_t k0 = K * kb / nkb, kc = K * (kb + 1) / nkb - k0;
      T* Bp = packed + (kb & 1) * set;
      T* Ap = Bp + np * NR * kc_max;
      for (int64_t p = a0; p < a1 && pack_a; p++)
        uks.pack(Ap + p * MR * kc, MR, A + p * MR * rsa + k0 * csa, csa, rsa, kc,
                 int(std::min<int64_t>(MR, M - p * MR)));
      for (int64_t p = b0; p < b1; p++)
        uks.pack(Bp + p * NR * kc, NR, B + k0 * rsb + p * NR * csb, rsb, csb, kc,
                 int(std::min<int64_t>(NR, N - p * NR)));
      packed_all.arrive_and_wait(t1 - t0);
      const bool acc = accumulate || kb > 0;
      for (int64_t jc = c0; jc < c1; jc += nc)
        for (int64_t ir = r0; ir < r1; ir++) {
          const int64_t i0 = ir * MR;
          const T* a = pack_a ? Ap + ir * MR * kc : A + i0 * rsa + (acols ? 0 : k0 * csa);
          const int64_t ar = pack_a ? 1 : rsa, ac = pack_a ? MR : csa;
          for (int64_t jr = jc; jr < std::min(jc + nc, c1); jr++) {
            const int64_t j0 = jr * NR;
            uk.run(kc, a, ar, ac, acols ? acols + k0 : nullptr, Bp + jr * NR * kc, C + i0 * ldc + j0, ldc,
                   int(std::min<int64_t>(MR, M - i0)), int(std::min<int64_t>(NR, N - j0)), acc);
          }
        }
    }
  });
}

// The reference path: row-major copies, then the naive kernel over row blocks.
template <class T>
void gemm_reference(DType dt, int64_t M, int64_t N, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B,
                    int64_t rsb, int64_t csb, T* C, int64_t ldc, bool accumulate) {
  std::vector<T> pa, pb, pc;
  if (!(csa == 1 && rsa == K)) {
    pa.resize(size_t(M * K));
    for (int64_t i = 0; i < M; i++)
      for (int64_t k = 0; k < K; k++) pa[size_t(i * K + k)] = A[i * rsa + k * csa];
    A = pa.data();
  }
  if (!(csb == 1 && rsb == N)) {
    pb.resize(size_t(K * N));
    for (int64_t k = 0; k < K; k++)
      for (int64_t j = 0; j < N; j++) pb[size_t(k * N + j)] = B[k * rsb + j * csb];
    B = pb.data();
  }
  T* out = C;
  if (accumulate || ldc != N) {
    pc.resize(size_t(M * N));
    out = pc.data();
  }
  const CpuKernels& k = cpu_kernels();
  const int64_t rows = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, N * K));
  const int64_t tasks = (M + rows - 1) / rows;
  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t r0 = t * rows, nr = std::min(rows, M - r0);
      k.gemm(dt, nr, N, K, A + r0 * K, B, out + r0 * N);
    }
  });
  if (out != C)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = accumulate ? T(C[i * ldc + j] + out[i * N + j]) : out[i * N + j];
}

}  // namespace

void gemm(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
          int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate, const int64_t* acols) {
  if (M == 0 || N == 0) return;
  FK_CHECK(!acols || is_float(dt), Runtime, "gemm: column offsets of A need a floating point dtype");
  dispatch_dtype(dt, [&](auto z) {
    using T = decltype(z);
    if constexpr (!std::is_same_v<T, bool>) {
      const T* a = static_cast<const T*>(A);
      const T* b = static_cast<const T*>(B);
      T* c = static_cast<T*>(C);
      if (K == 0) {
        if (!accumulate)
          for (int64_t i = 0; i < M; i++) std::memset(c + i * ldc, 0, size_t(N) * sizeof(T));
      } else if constexpr (std::is_same_v<T, float>) {
        gemm_packed(*cpu_kernels().gemm_f32, M, N, K, a, rsa, csa, acols, b, rsb, csb, c, ldc, accumulate);
      } else if constexpr (std::is_same_v<T, double>) {
        gemm_packed(*cpu_kernels().gemm_f64, M, N, K, a, rsa, csa, acols, b, rsb, csb, c, ldc, accumulate);
      } else {
        gemm_reference(dt, M, N, K, a, rsa, csa, b, rsb, csb, c, ldc, accumulate);
      }
    }
  });
}

}  // namespace fk
