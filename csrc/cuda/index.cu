// CUDA indexing: wrapping and checking int64 indices, gather, scatter (set or accumulate) and
// nonzero, with the CPU's semantics (csrc/cpu/backend.cpp) element for element.
//
// Scatter is deterministic, duplicates included, without float atomics: the index positions are
// sorted by destination (a bitonic sort on the unique pairs (destination, position), so the
// order never depends on scheduling), and each destination then takes its run in position
// order, as the CPU's loop does: the sum dst + v[first] + v[next] + ... when accumulating, the
// last value otherwise. The sort costs O(n log^2 n) compare-exchanges for n index positions;
// the steps within 2048 slots run in shared memory, so n up to 2048 takes one launch and each
// doubling beyond adds log2(n/2048)+1. The runs cost O(n * block), and one run is walked by
// one thread per element of the block, so many duplicates of one destination serialise.
//
// nonzero counts the true elements per tile, scans the tile counts (one block), reads back the
// total (its one sync), then writes each tile's positions at its offset in row-major order.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda_util.h"

namespace fk {
namespace {

// The index tensors of a gather or scatter: k int64 arrays of `count` entries (already wrapped
// into range) and the element stride of the dim each one indexes.
struct IndexSet {
  int k = 0;
  const int64_t* p[kMaxDims];
  int64_t stride[kMaxDims];
  // Element offset of the block named by index position i.
  __device__ int64_t offset(int64_t i) const {
    int64_t off = 0;
    for (int j = 0; j < k; j++) off += p[j][i] * stride[j];
    return off;
  }
};

IndexSet make_index_set(const std::vector<Tensor>& idx, const Tensor& t) {
  IndexSet s;
  s.k = int(idx.size());
  for (int j = 0; j < s.k; j++) {
    s.p[j] = idx[size_t(j)].data<int64_t>();
    s.stride[j] = t.strides()[j];
  }
  return s;
}

// An unsigned type of each item size: gather moves bits.
template <int Bytes>
using Bits =
    std::conditional_t<Bytes == 1, uint8_t,
                       std::conditional_t<Bytes == 2, uint16_t, std::conditional_t<Bytes == 4, uint32_t, uint64_t>>>;

// ---- wrap_indices ------------------------------------------------------------------------

// Wraps negative indices; the lowest position of an index outside [-size, size) goes to
// *first_bad (integer atomicMin: the same answer in any order).
__global__ void wrap_kernel(int64_t* p, int64_t n, int64_t size, unsigned long long* first_bad) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t v = p[i];
    if (v < -size || v >= size)
      atomicMin(first_bad, static_cast<unsigned long long>(i));
    else if (v < 0)
      p[i] = v + size;
  }
}

// result[0] = the first bad position (or ~0), result[1] = its value (left unwrapped).
__global__ void bad_value_kernel(const int64_t* p, int64_t* result) {
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    const unsigned long long pos = static_cast<unsigned long long>(result[0]);
    if (pos != ~0ull) result[1] = p[pos];
  }
}

// ---- gather ------------------------------------------------------------------------------

template <class U>
__global__ void gather_kernel(const U* a, IndexSet ix, int64_t block, int64_t n, U* out) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = t / block, j = t - i * block;
    out[t] = a[ix.offset(i) + j];
  }
}

// ---- scatter -----------------------------------------------------------------------------

constexpr int64_t kSortChunk = 2048;  // slots a block sorts in shared memory (32 KB)

struct Slot {
  int64_t key;  // the destination's element offset
  int64_t pos;  // the index position
};

__device__ __forceinline__ bool slot_less(const Slot& a, const Slot& b) {
  return a.key < b.key || (a.key == b.key && a.pos < b.pos);
}

// Slots 0 .. count-1 hold (destination, position); the padding up to a power of two sorts last.
__global__ void fill_slots(IndexSet ix, int64_t count, int64_t n2, Slot* s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n2; i += int64_t(gridDim.x) * blockDim.x)
    s[i] = i < count ? Slot{ix.offset(i), i} : Slot{INT64_MAX, INT64_MAX};
}

// One step (k, j) of the bitonic network over n2 slots: thread p compares the pair (i, i + j),
// i the p-th slot whose bit j is clear.
__global__ void bitonic_step(Slot* s, int64_t n2, int64_t k, int64_t j) {
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n2 / 2; p += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = (p / j) * 2 * j + p % j, l = i + j;
    const bool ascending = (i & k) == 0;
    const Slot a = s[i], b = s[l];
    if (ascending ? slot_less(b, a) : slot_less(a, b)) {
      s[i] = b;
      s[l] = a;
    }
  }
}

// The steps of the network whose pairs lie within chunks of `chunk` slots run in shared
// memory, one chunk per block: every (k, j) with k from k_lo to k_hi and j < chunk.
__global__ void bitonic_local(Slot* s, int64_t n2, int64_t chunk, int64_t k_lo, int64_t k_hi) {
  FK_DYNAMIC_SHARED(Slot, sh);
  for (int64_t base = blockIdx.x * chunk; base < n2; base += int64_t(gridDim.x) * chunk) {
    for (int64_t t = threadIdx.x; t < chunk; t += blockDim.x) sh[t] = s[base + t];
    __syncthreads();
    for (int64_t k = k_lo; k <= k_hi; k *= 2)
      for (int64_t j = (k < chunk ? k : chunk) / 2; j > 0; j /= 2) {
        for (int64_t p = threadIdx.x; p < chunk / 2; p += blockDim.x) {
          const int64_t i = (p / j) * 2 * j + p % j, l = i + j;
          const bool ascending = ((base + i) & k) == 0;
          const Slot a = sh[i], b = sh[l];
          if (ascending ? slot_less(b, a) : slot_less(a, b)) {
            sh[i] = b;
            sh[l] = a;
          }
        }
        __syncthreads();
      }
    for (int64_t t = threadIdx.x; t < chunk; t += blockDim.x) s[base + t] = sh[t];
    __syncthreads();  // sh is reloaded for the next chunk
  }
}

// int64 sums wrap around (computed in uint64, where C++ defines it); bool sums are "or".
template <class T>
using Acc = std::conditional_t<std::is_same_v<T, int64_t>, uint64_t, T>;

// Thread (r, j) for sorted slot r that starts a run: element j of that destination takes the
// run in position order.
template <class T>
__global__ void scatter_runs(const Slot* s, int64_t count, const T* v, int64_t block, bool accumulate, T* out) {
  const int64_t n = count * block;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = t / block, j = t - r * block;
    const int64_t key = s[r].key;
    if (r > 0 && s[r - 1].key == key) continue;
    int64_t e = r + 1;
    while (e < count && s[e].key == key) e++;
    T* dst = out + key + j;
    if (accumulate) {
      Acc<T> acc = Acc<T>(*dst);
      for (int64_t q = r; q < e; q++) acc = Acc<T>(acc + Acc<T>(v[s[q].pos * block + j]));
      *dst = T(acc);
    } else {
      *dst = v[s[e - 1].pos * block + j];
    }
  }
}

// One index position needs no sort.
template <class T>
__global__ void scatter_one(IndexSet ix, const T* v, int64_t block, bool accumulate, T* out) {
  const int64_t off = ix.offset(0);
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < block; j += int64_t(gridDim.x) * blockDim.x)
    out[off + j] = accumulate ? T(Acc<T>(out[off + j]) + Acc<T>(v[j])) : v[j];
}

// ---- nonzero -----------------------------------------------------------------------------

constexpr int kItems = 8;                              // elements per thread in a tile
constexpr int64_t kTile = int64_t(kThreads) * kItems;  // elements per tile (one block)

// Exclusive prefix sum of c over the block's threads (in thread order); *total gets the sum.
__device__ int64_t block_exclusive_scan(int64_t c, int64_t* total) {
  __shared__ int64_t sh[kThreads];
  const int t = int(threadIdx.x);
  sh[t] = c;
  __syncthreads();
  for (int d = 1; d < kThreads; d *= 2) {
    const int64_t add = t >= d ? sh[t - d] : 0;
    __syncthreads();
    sh[t] += add;
    __syncthreads();
  }
  const int64_t incl = sh[t];
  *total = sh[kThreads - 1];
  __syncthreads();  // sh is reused by the next call
  return incl - c;
}

// How many of the kItems elements of thread t of the tile are true.
__device__ int64_t thread_count(const bool* a, int64_t n, int64_t tile) {
  const int64_t b = tile * kTile + int64_t(threadIdx.x) * kItems;
  int64_t c = 0;
  for (int u = 0; u < kItems; u++) c += b + u < n && a[b + u];
  return c;
}

__global__ void tile_counts(const bool* a, int64_t n, int64_t ntiles, int64_t* counts) {
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    int64_t total;
    block_exclusive_scan(thread_count(a, n, tile), &total);
    if (threadIdx.x == 0) counts[tile] = total;
  }
}

// One block: counts (ntiles of them) become exclusive offsets in place; counts[ntiles] = total.
__global__ void scan_tiles(int64_t* counts, int64_t ntiles) {
  int64_t carry = 0;
  for (int64_t base = 0; base < ntiles; base += kThreads) {
    const int64_t i = base + threadIdx.x;
    const int64_t c = i < ntiles ? counts[i] : 0;
    int64_t total;
    const int64_t excl = block_exclusive_scan(c, &total);
    if (i < ntiles) counts[i] = carry + excl;
    carry += total;
  }
  if (threadIdx.x == 0) counts[ntiles] = carry;
}

struct Shape {
  int nd = 0;
  int64_t size[kMaxDims];
};

__global__ void write_positions(const bool* a, int64_t n, int64_t ntiles, const int64_t* offsets, Shape sh,
                                int64_t* out) {
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    int64_t total;
    int64_t row = offsets[tile] + block_exclusive_scan(thread_count(a, n, tile), &total);
    const int64_t b = tile * kTile + int64_t(threadIdx.x) * kItems;
    for (int u = 0; u < kItems; u++) {
      if (b + u >= n || !a[b + u]) continue;
      int64_t rem = b + u;
      int64_t* o = out + row * sh.nd;
      for (int d = sh.nd - 1; d >= 0; d--) {
        o[d] = rem % sh.size[d];
        rem /= sh.size[d];
      }
      row++;
    }
  }
}

}  // namespace

// ---- the backend's entry points --------------------------------------------------------

bool cuda_wrap_indices(const Tensor& idx, int64_t size, int64_t* bad) {
  const int64_t n = idx.numel();
  if (n == 0) return true;
  Ref<Storage> mem = cuda_alloc(2 * sizeof(int64_t));
  auto* res = static_cast<int64_t*>(mem->data);
  FK_CUDA(cudaMemsetAsync(res, 0xFF, 2 * sizeof(int64_t), cuda_stream()));
  FK_LAUNCH(wrap_kernel, blocks_for(n), kThreads, 0, cuda_stream())(idx.data<int64_t>(), n, size,
                                                                    reinterpret_cast<unsigned long long*>(res));
  cuda_launched("index");
  FK_LAUNCH(bad_value_kernel, 1, 1, 0, cuda_stream())(idx.data<int64_t>(), res);
  cuda_launched("index");
  int64_t host[2];
  FK_CUDA(cudaMemcpyAsync(host, res, sizeof(host), cudaMemcpyDeviceToHost, cuda_stream()));
  FK_CUDA(cudaStreamSynchronize(cuda_stream()));
  if (host[0] == -1) return true;
  *bad = host[1];
  return false;
}

void cuda_gather(const Tensor& a, const std::vector<Tensor>& idx, int64_t block, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const IndexSet ix = make_index_set(idx, a);
  auto run = [&](auto z) {
    using U = decltype(z);
    FK_LAUNCH(gather_kernel<U>, blocks_for(n), kThreads, 0, cuda_stream())(reinterpret_cast<const U*>(a.raw()), ix,
                                                                           block, n, reinterpret_cast<U*>(out.raw()));
  };
  switch (itemsize(a.dtype())) {
    case 1: run(Bits<1>()); break;
    case 2: run(Bits<2>()); break;
    case 4: run(Bits<4>()); break;
    default: run(Bits<8>()); break;
  }
  cuda_launched("index");
}

void cuda_scatter(const Tensor& out, const std::vector<Tensor>& idx, const Tensor& v, int64_t block, bool accumulate) {
  const int64_t count = idx.empty() ? 1 : idx[0].numel();
  if (count == 0 || block == 0) return;
  const IndexSet ix = make_index_set(idx, out);
  dispatch_dtype(out.dtype(), [&](auto z) {
    using T = decltype(z);
    if (count == 1) {
      FK_LAUNCH(scatter_one<T>, blocks_for(block), kThreads, 0, cuda_stream())(ix, v.data<T>(), block, accumulate,
                                                                               out.data<T>());
      cuda_launched("index_put_");
      return;
    }
    int64_t n2 = 1;
    while (n2 < count) n2 *= 2;
    Ref<Storage> mem = cuda_alloc(size_t(n2) * sizeof(Slot));
    auto* s = static_cast<Slot*>(mem->data);
    FK_LAUNCH(fill_slots, blocks_for(n2), kThreads, 0, cuda_stream())(ix, count, n2, s);
    cuda_launched("index_put_");
    // The network: the steps within a chunk in shared memory, the wider ones through global memory.
    const int64_t chunk = std::min(n2, kSortChunk);
    auto local = [&](int64_t k_lo, int64_t k_hi) {
      FK_LAUNCH(bitonic_local, grid_for(n2 / chunk), kThreads, size_t(chunk) * sizeof(Slot), cuda_stream())(
          s, n2, chunk, k_lo, k_hi);
      cuda_launched("index_put_");
    };
    local(2, chunk);
    for (int64_t k = 2 * chunk; k <= n2; k *= 2) {
      for (int64_t j = k / 2; j >= chunk; j /= 2) {
        FK_LAUNCH(bitonic_step, blocks_for(n2 / 2), kThreads, 0, cuda_stream())(s, n2, k, j);
        cuda_launched("index_put_");
      }
      local(k, k);
    }
    FK_LAUNCH(scatter_runs<T>, blocks_for(count * block), kThreads, 0, cuda_stream())(s, count, v.data<T>(), block,
                                                                                      accumulate, out.data<T>());
    cuda_launched("index_put_");
  });
}

Tensor cuda_nonzero(const Tensor& a) {
  const int64_t n = a.numel();
  if (n == 0) return empty({0, int64_t(a.ndim())}, DType::Int64, Device::CUDA);
  const int64_t ntiles = (n + kTile - 1) / kTile;
  Ref<Storage> mem = cuda_alloc(size_t(ntiles + 1) * sizeof(int64_t));
  auto* counts = static_cast<int64_t*>(mem->data);
  const bool* p = a.data<bool>();
  FK_LAUNCH(tile_counts, grid_for(ntiles), kThreads, 0, cuda_stream())(p, n, ntiles, counts);
  cuda_launched("nonzero");
  FK_LAUNCH(scan_tiles, 1, kThreads, 0, cuda_stream())(counts, ntiles);
  cuda_launched("nonzero");
  int64_t count = 0;
  FK_CUDA(cudaMemcpyAsync(&count, counts + ntiles, sizeof(count), cudaMemcpyDeviceToHost, cuda_stream()));
  FK_CUDA(cudaStreamSynchronize(cuda_stream()));
  Tensor out = empty({count, int64_t(a.ndim())}, DType::Int64, Device::CUDA);
  if (count == 0 || a.ndim() == 0) return out;
  Shape sh;
  sh.nd = a.ndim();
  for (int d = 0; d < sh.nd; d++) sh.size[d] = a.size(d);
  FK_LAUNCH(write_positions, grid_for(ntiles), kThreads, 0, cuda_stream())(p, n, ntiles, counts, sh,
                                                                           out.data<int64_t>());
  cuda_launched("nonzero");
  return out;
}

}  // namespace fk
