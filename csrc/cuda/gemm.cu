// The CUDA GEMM: C (+)= A @ B for single and batched products, our own kernels (no cuBLAS).
//
// float32/float64: a shared-memory tiled kernel with register blocking. A block computes a
// BM x BN tile of C; per K slice of BK it stages the BM x BK panel of A (transposed, so a
// column is contiguous) and the BK x BN panel of B in shared memory, and each thread
// accumulates a TM x TN micro-tile in registers. The next slice is loaded from global memory
// into registers while the current one is computed (two shared buffers, one barrier per
// slice). A thread's micro-tile is runs of 4 rows (columns), 4*TY (4*TX) apart, so it reads
// its fragments as 16-byte vectors, which a warp reads without bank conflicts (broadcasts
// along A, consecutive vectors along B). Operands are read through their row and column
// strides: every transpose works without a copy, the load mapping following whichever stride
// is 1.
// Integer dtypes go through a simple kernel (one thread per element of C), wrapping as the CPU.
//
// Deterministic: no atomics, and every element of C is summed by one thread in increasing k,
// whatever the grid. Products with few tiles and a long K (weight gradients) split K into parts
// fixed by the shapes alone, each summed so, and a second kernel adds the parts in order.
#include <algorithm>
#include <type_traits>

#include "cuda_util.h"
#include "gemm.h"

namespace fk {
namespace {

template <class T>
struct GemmArgs {
  int64_t M, N, K;
  const T* A;
  int64_t rsa, csa;
  const T* B;
  int64_t rsb, csb;
  T* C;
  int64_t ldc;
  bool accumulate;
  GemmBatch batch;
  // Split K: product z's K range is cut into `ksplit` parts of `kpart` (a multiple of the K
  // slice), and part s of product z goes to work[(z*ksplit + s)*M*N ...] (row-major M x N)
  // instead of C; sum_parts then adds them up in order. ksplit == 1: no work, straight into C.
  int64_t ksplit, kpart;
  T* work;
};

// Element offsets of product z's A, B and C.
__device__ __forceinline__ void batch_offsets(const GemmBatch& b, int64_t z, int64_t& ao, int64_t& bo, int64_t& co) {
  const int64_t zo = z / b.inner, zi = z % b.inner;
  ao = b.aoff ? b.aoff[z] : zo * b.a[0] + zi * b.a[1];
  bo = b.boff ? b.boff[z] : zo * b.b[0] + zi * b.b[1];
  co = zo * b.c[0] + zi * b.c[1];
}

constexpr unsigned kMaxGridX = 0x7fffffffu, kMaxGridYZ = 65535;

// Four consecutive values from 16-byte aligned shared memory, as vector loads.
template <class T>
__device__ __forceinline__ void load4(const T* s, T* d) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 v = *reinterpret_cast<const float4*>(s);
    d[0] = v.x, d[1] = v.y, d[2] = v.z, d[3] = v.w;
  } else {
    const double2 u = *reinterpret_cast<const double2*>(s), v = *reinterpret_cast<const double2*>(s + 2);
    d[0] = u.x, d[1] = u.y, d[2] = v.x, d[3] = v.y;
  }
}

// a_kfast: A's panel is loaded with consecutive threads walking k (A's rows contiguous), else
// walking i (A column-major, a transposed operand); b_nfast likewise for B along j, else k.
template <class T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN)) gemm_tiled(GemmArgs<T> p, bool a_kfast, bool b_nfast) {
  constexpr int TX = BN / TN, TY = BM / TM, NT = TX * TY;
  static_assert(NT % BK == 0 && NT % BM == 0 && NT % BN == 0, "panels must split evenly among the threads");
  constexpr int LA = BM * BK / NT, LB = BK * BN / NT;
  // Rows padded by 4: the transposing stores (k-fast loads) then fall in distinct banks.
  constexpr int PA = BM + 4, PB = BN + 4;
  static_assert(TM % 4 == 0 && TN % 4 == 0, "micro-tiles are read as runs of 4");
  __shared__ __align__(16) T As[2][BK][PA];
  __shared__ __align__(16) T Bs[2][BK][PB];
  const int tid = int(threadIdx.x), tx = tid % TX, ty = tid / TX;
  // The panel positions this thread loads: its first (row, k) of A and (k, column) of B, and
  // the step to its next one (NT elements further in the walking order).
  const int ai = a_kfast ? tid / BK : tid % BM, ak = a_kfast ? tid % BK : tid / BM;
  const int adi = a_kfast ? NT / BK : 0, adk = a_kfast ? 0 : NT / BM;
  const int bk = b_nfast ? tid / BN : tid % BK, bj = b_nfast ? tid % BN : tid / BK;
  const int bdk = b_nfast ? NT / BN : 0, bdj = b_nfast ? 0 : NT / BK;
  const int64_t M = p.M, N = p.N;
  const int64_t mtiles = (M + BM - 1) / BM, ntiles = (N + BN - 1) / BN;
  const int64_t astep = adi * p.rsa + adk * p.csa, bstep = bdk * p.rsb + bdj * p.csb;
  for (int64_t zs = blockIdx.z; zs < p.batch.count * p.ksplit; zs += gridDim.z)
    for (int64_t tm = blockIdx.y; tm < mtiles; tm += gridDim.y)
      for (int64_t tn = blockIdx.x; tn < ntiles; tn += gridDim.x) {
        const int64_t z = zs / p.ksplit, kbeg = (zs % p.ksplit) * p.kpart;
        const int64_t K = p.ksplit > 1 ? (p.K - kbeg < p.kpart ? p.K - kbeg : p.kpart) : p.K;
        const int64_t ktiles = (K + BK - 1) / BK;
        int64_t ao, bo, co;
        batch_offsets(p.batch, z, ao, bo, co);
        const int64_t m0 = tm * BM, n0 = tn * BN;
        // this thread's first element of the panels
        const T* A = p.A + ao + (m0 + ai) * p.rsa + (kbeg + ak) * p.csa;
        const T* B = p.B + bo + (kbeg + bk) * p.rsb + (n0 + bj) * p.csb;
        const bool part = p.ksplit > 1;
        T* C = part ? p.work + zs * M * N : p.C + co;
        const int64_t ldc = part ? N : p.ldc;
        const bool accumulate = p.accumulate && !part;
        // Rows of A and columns of B left in the matrices from this thread's first ones.
        const int64_t arows = M - m0 - ai, bcols = N - n0 - bj;
        T ra[LA], rb[LB];
        auto load = [&](int64_t k0) {
          const T* a = A + k0 * p.csa;
          const T* b = B + k0 * p.rsb;
#pragma unroll
          for (int l = 0; l < LA; l++) ra[l] = l * adi < arows && k0 + ak + l * adk < K ? a[l * astep] : T(0);
#pragma unroll
          for (int l = 0; l < LB; l++) rb[l] = k0 + bk + l * bdk < K && l * bdj < bcols ? b[l * bstep] : T(0);
        };
        auto stash = [&](int buf) {
#pragma unroll
          for (int l = 0; l < LA; l++) As[buf][ak + l * adk][ai + l * adi] = ra[l];
#pragma unroll
          for (int l = 0; l < LB; l++) Bs[buf][bk + l * bdk][bj + l * bdj] = rb[l];
        };
        T acc[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
          for (int j = 0; j < TN; j++) acc[i][j] = T(0);
        if (ktiles > 0) {
          load(0);
          stash(0);
        }
        __syncthreads();
        for (int64_t t = 0; t < ktiles; t++) {
          const int cur = int(t & 1);
          if (t + 1 < ktiles) load((t + 1) * BK);  // in flight while this slice is computed
#pragma unroll
          for (int kk = 0; kk < BK; kk++) {
            T a[TM], b[TN];
#pragma unroll
            for (int g = 0; g < TM / 4; g++) load4(&As[cur][kk][g * 4 * TY + 4 * ty], a + 4 * g);
#pragma unroll
            for (int g = 0; g < TN / 4; g++) load4(&Bs[cur][kk][g * 4 * TX + 4 * tx], b + 4 * g);
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
              for (int j = 0; j < TN; j++) acc[i][j] += a[i] * b[j];
          }
          // The other buffer was last read before the previous barrier: free to refill.
          if (t + 1 < ktiles) stash(cur ^ 1);
          __syncthreads();
        }
#pragma unroll
        for (int i = 0; i < TM; i++) {
          const int64_t r = m0 + (i / 4) * 4 * TY + 4 * ty + i % 4;
          if (r >= M) continue;
          T* c = C + r * ldc;
#pragma unroll
          for (int j = 0; j < TN; j++) {
            const int64_t col = n0 + (j / 4) * 4 * TX + 4 * tx + j % 4;
            if (col < N) c[col] = accumulate ? T(c[col] + acc[i][j]) : acc[i][j];
          }
        }
      }
}

// C_z (+)= the sum of product z's K parts in `work`, in part order.
template <class T>
__global__ void sum_parts(GemmArgs<T> p) {
  const int64_t MN = p.M * p.N, total = p.batch.count * MN;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t z = e / MN, ij = e % MN;
    int64_t ao, bo, co;
    batch_offsets(p.batch, z, ao, bo, co);
    const T* w = p.work + z * p.ksplit * MN + ij;
    T s = w[0];
    for (int64_t part = 1; part < p.ksplit; part++) s += w[part * MN];
    T* c = p.C + co + (ij / p.N) * p.ldc + ij % p.N;
    *c = p.accumulate ? T(*c + s) : s;
  }
}

// Integer products: one thread per element of C, summed in uint64 (int64 wraps around, uint8
// keeps the low byte, as the CPU's reference kernel).
template <class T>
__global__ void gemm_simple(GemmArgs<T> p) {
  const int64_t MN = p.M * p.N;
  for (int64_t z = blockIdx.z; z < p.batch.count; z += gridDim.z) {
    int64_t ao, bo, co;
    batch_offsets(p.batch, z, ao, bo, co);
    const T* A = p.A + ao;
    const T* B = p.B + bo;
    T* C = p.C + co;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < MN; e += int64_t(gridDim.x) * blockDim.x) {
      const int64_t i = e / p.N, j = e % p.N;
      uint64_t s = 0;
      for (int64_t k = 0; k < p.K; k++) s += uint64_t(A[i * p.rsa + k * p.csa]) * uint64_t(B[k * p.rsb + j * p.csb]);
      T* c = C + i * p.ldc + j;
      *c = p.accumulate ? T(uint64_t(*c) + s) : T(s);
    }
  }
}

// Enough 128 x 128 tiles to fill a large GPU once (132 SMs on an H100/H200); below that the
// 64 x 64 tiles keep more SMs busy.
constexpr int64_t kBigTileBlocks = 132;
// Products with fewer tiles than that and a long K (a weight gradient: a small C summed over a
// batch) split K into parts of at least kMinPart, up to about two blocks per SM, computed
// side by side and then added in order. The split depends on the shapes only: reproducible.
constexpr int64_t kMinPart = 512, kSplitBlocks = 2 * kBigTileBlocks;

template <class T, int BM, int BN, int BK, int TM, int TN>
void launch_tiled(GemmArgs<T> p) {
  const int64_t mtiles = (p.M + BM - 1) / BM, ntiles = (p.N + BN - 1) / BN, tiles = mtiles * ntiles * p.batch.count;
  p.ksplit = 1;
  p.kpart = p.K;
  p.work = nullptr;
  Ref<Storage> work;  // released after the queued kernels (the stream-ordered allocator)
  if (tiles < kBigTileBlocks && p.K >= 2 * kMinPart) {
    const int64_t parts = std::min((kSplitBlocks + tiles - 1) / tiles, p.K / kMinPart);
    p.kpart = ((p.K + parts - 1) / parts + BK - 1) / BK * BK;
    p.ksplit = (p.K + p.kpart - 1) / p.kpart;
    work = cuda_alloc(size_t(p.ksplit * p.batch.count * p.M * p.N) * sizeof(T));
    p.work = static_cast<T*>(work->data);
  }
  const dim3 grid(unsigned(std::min<int64_t>(ntiles, kMaxGridX)), unsigned(std::min<int64_t>(mtiles, kMaxGridYZ)),
                  unsigned(std::min<int64_t>(p.batch.count * p.ksplit, kMaxGridYZ)));
  const bool a_kfast = !(p.rsa == 1 && p.csa != 1), b_nfast = !(p.rsb == 1 && p.csb != 1);
  FK_LAUNCH((gemm_tiled<T, BM, BN, BK, TM, TN>), grid, (BM / TM) * (BN / TN), 0, cuda_stream())(p, a_kfast, b_nfast);
  cuda_launched("matmul");
  if (p.ksplit > 1) {
    FK_LAUNCH(sum_parts<T>, blocks_for(p.batch.count * p.M * p.N), kThreads, 0, cuda_stream())(p);
    cuda_launched("matmul");
  }
}

}  // namespace

void cuda_gemm_launch(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
                      int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate, const GemmBatch& batch) {
  if (M == 0 || N == 0 || batch.count == 0) return;
  dispatch_dtype(dt, [&](auto z) {
    using T = decltype(z);
    if constexpr (!std::is_same_v<T, bool>) {
      const GemmArgs<T> p{M,
                          N,
                          K,
                          static_cast<const T*>(A),
                          rsa,
                          csa,
                          static_cast<const T*>(B),
                          rsb,
                          csb,
                          static_cast<T*>(C),
                          ldc,
                          accumulate,
                          batch,
                          1,
                          K,
                          nullptr};
      if constexpr (std::is_same_v<T, float>) {
        if (((M + 127) / 128) * ((N + 127) / 128) * batch.count >= kBigTileBlocks)
          launch_tiled<float, 128, 128, 8, 8, 8>(p);
        else
          launch_tiled<float, 64, 64, 16, 4, 4>(p);
      } else if constexpr (std::is_same_v<T, double>) {
        launch_tiled<double, 64, 64, 16, 4, 4>(p);
      } else {
        const dim3 grid(blocks_for(M * N), 1, unsigned(std::min<int64_t>(batch.count, kMaxGridYZ)));
        FK_LAUNCH(gemm_simple<T>, grid, kThreads, 0, cuda_stream())(p);
        cuda_launched("matmul");
      }
    }
  });
}

// The table's gemm. Column offsets (`acols`) are a CPU convolution device: the CUDA
// convolution lowers with an explicit im2col buffer instead, so nothing passes them here.
void cuda_gemm(DType dt, int64_t M, int64_t N, int64_t K, const void* A, int64_t rsa, int64_t csa, const void* B,
               int64_t rsb, int64_t csb, void* C, int64_t ldc, bool accumulate, const int64_t* acols) {
  FK_CHECK(!acols, Runtime, "gemm: the CUDA backend takes no column offsets of A");
  cuda_gemm_launch(dt, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, GemmBatch{});
}

// The table's gemm_batched: host offsets that step evenly (a plain batch) become strides;
// others (broadcast batch dims) are copied to the device for the kernel to read.
void cuda_gemm_batched(DType dt, int64_t nb, int64_t M, int64_t N, int64_t K, const void* A, const int64_t* aoff,
                       int64_t rsa, int64_t csa, const void* B, const int64_t* boff, int64_t rsb, int64_t csb,
                       void* C) {
  if (nb == 0 || M == 0 || N == 0) return;
  const int64_t es = itemsize(dt);
  const int64_t a0 = aoff[0], b0 = boff[0], sa = nb > 1 ? aoff[1] - a0 : 0, sb = nb > 1 ? boff[1] - b0 : 0;
  bool even = true;
  for (int64_t i = 0; i < nb && even; i++) even = aoff[i] == a0 + i * sa && boff[i] == b0 + i * sb;
  GemmBatch batch;
  batch.count = nb;
  batch.c[0] = M * N;
  Ref<Storage> offs;  // released when this returns: the stream-ordered allocator reuses it only after the kernel
  if (even) {
    A = static_cast<const char*>(A) + a0 * es;
    B = static_cast<const char*>(B) + b0 * es;
    batch.a[0] = sa;
    batch.b[0] = sb;
  } else {
    const size_t bytes = size_t(nb) * sizeof(int64_t);
    offs = cuda_alloc(2 * bytes);
    int64_t* d = static_cast<int64_t*>(offs->data);
    FK_CUDA(cudaMemcpyAsync(d, aoff, bytes, cudaMemcpyHostToDevice, cuda_stream()));
    FK_CUDA(cudaMemcpyAsync(d + nb, boff, bytes, cudaMemcpyHostToDevice, cuda_stream()));
    FK_CUDA(cudaStreamSynchronize(cuda_stream()));  // the host arrays may die when this returns
    batch.aoff = d;
    batch.boff = d + nb;
  }
  cuda_gemm_launch(dt, M, N, K, A, rsa, csa, B, rsb, csb, C, N, false, batch);
}

}  // namespace fk
