// The CUDA caching allocator. cudaMalloc and cudaFree synchronise the device and cost tens of
// microseconds, so released blocks are kept and reused: segments come from cudaMalloc, blocks
// are cut from them best-fit and merged with free neighbours when released. All kernels run on
// one stream per device, in order, so a block released by one op can be handed to the next.
#include <bit>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "cuda_util.h"

namespace fk {
namespace {

constexpr size_t kRound = 512;              // every block is a multiple of this
constexpr size_t kSmall = size_t(1) << 20;  // requests up to 1 MiB share 2 MiB segments
constexpr size_t kSegment = size_t(2) << 20;

struct Block {
  char* ptr;
  size_t size;
  bool small;
  bool free = true;
  Block* prev = nullptr;  // neighbours inside the segment
  Block* next = nullptr;
};
struct BySize {
  bool operator()(const Block* a, const Block* b) const {
    return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
  }
};

struct Pool {
  std::mutex mu;
  std::set<Block*, BySize> free[2];  // [small?]
  std::unordered_map<void*, Block*> live;
  CudaMemoryStats stats;
};
Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: storages may die during interpreter exit
  return *p;
}

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

// cudaFree of every segment that is wholly free. Called with the lock held.
void release_cached(Pool& p) {
  for (auto& set : p.free)
    for (auto it = set.begin(); it != set.end();) {
      Block* b = *it;
      if (b->prev || b->next) {
        ++it;
        continue;
      }
      cudaFree(b->ptr);
      p.stats.reserved -= int64_t(b->size);
      it = set.erase(it);
      delete b;
    }
}

void release_block(void* data, size_t, void*) {
  Pool& p = pool();
  std::lock_guard<std::mutex> g(p.mu);
  auto it = p.live.find(data);
  if (it == p.live.end()) return;
  Block* b = it->second;
  p.live.erase(it);
  p.stats.allocated -= int64_t(b->size);
  b->free = true;
  auto& set = p.free[b->small];
  if (Block* n = b->next; n && n->free) {  // merge the free neighbours into b
    set.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (b->next) b->next->prev = b;
    delete n;
  }
  if (Block* q = b->prev; q && q->free) {
    set.erase(q);
    q->size += b->size;
    q->next = b->next;
    if (q->next) q->next->prev = q;
    delete b;
    b = q;
  }
  set.insert(b);
}

Block* new_segment(Pool& p, size_t size, bool small, size_t request) {
  const size_t seg = small ? kSegment : round_up(size, kSegment);
  void* ptr = nullptr;
  if (cudaMalloc(&ptr, seg) != cudaSuccess) {
    cudaGetLastError();  // clear it: the process stays usable
    release_cached(p);
    if (cudaMalloc(&ptr, seg) != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw Error(ErrorKind::OutOfMemory,
                  str_cat("CUDA out of memory. Tried to allocate ", mib(request), " (", mib(free_b), " free of ",
                          mib(total_b), "; fastkern holds ", mib(size_t(p.stats.reserved)), ", ",
                          mib(size_t(p.stats.allocated)), " of it in tensors)"));
    }
  }
  p.stats.reserved += int64_t(seg);
  return new Block{static_cast<char*>(ptr), seg, small};
}

}  // namespace

std::string mib(size_t bytes) { return str_cat(double(bytes) / double(1 << 20), " MiB"); }

Ref<Storage> cuda_alloc(size_t nbytes) {
  Ref<Storage> s(new Storage());
  s->nbytes = nbytes;
  if (nbytes == 0) return s;  // no memory, as an empty CPU tensor's inline buffer is never read
  const size_t size = round_up(nbytes, kRound);
  const bool small = size <= kSmall;
  Pool& p = pool();
  std::lock_guard<std::mutex> g(p.mu);
  auto& set = p.free[small];
  Block key{nullptr, size, small};
  auto it = set.lower_bound(&key);
  Block* b;
  if (it != set.end()) {
    b = *it;
    set.erase(it);
  } else {
    b = new_segment(p, size, small, nbytes);
  }
  // Split off the rest; in the large pool only a rest worth a large request, against fragments.
  if (b->size - size >= (small ? kRound : kSmall + 1)) {
    Block* rest = new Block{b->ptr + size, b->size - size, small, true, b, b->next};
    if (b->next) b->next->prev = rest;
    b->next = rest;
    b->size = size;
    set.insert(rest);
  }
  b->free = false;
  p.live[b->ptr] = b;
  p.stats.allocated += int64_t(b->size);
  p.stats.peak = std::max(p.stats.peak, p.stats.allocated);
  s->data = b->ptr;
  s->release = release_block;
  return s;
}

CudaMemoryStats cuda_memory_stats() {
  std::lock_guard<std::mutex> g(pool().mu);
  return pool().stats;
}

void cuda_reset_peak_memory() {
  std::lock_guard<std::mutex> g(pool().mu);
  pool().stats.peak = pool().stats.allocated;
}

// ---- page-locked host memory (pin_memory) ---------------------------------------------------
// cudaMallocHost and cudaFreeHost synchronise the device, so released host blocks are cached by
// power-of-two size. A copy from a block may still be queued on the stream when its tensor
// dies: each released block carries an event recorded then, and is handed out again only once
// the stream has passed it.
namespace {

struct HostBlock {
  void* ptr;
  size_t size;
  cudaEvent_t released;
};
struct HostPool {
  std::mutex mu;
  std::multimap<size_t, HostBlock> free;  // by size
  std::unordered_map<void*, HostBlock> live;
};
HostPool& host_pool() {
  static HostPool* p = new HostPool();  // never destroyed, as pool()
  return *p;
}

void release_host_block(void* data, size_t, void*) {
  HostPool& p = host_pool();
  std::lock_guard<std::mutex> g(p.mu);
  auto it = p.live.find(data);
  if (it == p.live.end()) return;
  HostBlock b = it->second;
  p.live.erase(it);
  // At exit the runtime may be gone; the block then simply stays with the process.
  if (cudaEventRecord(b.released, cuda_stream()) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  p.free.emplace(b.size, b);
}

}  // namespace

Ref<Storage> cuda_alloc_pinned(size_t nbytes) {
  Ref<Storage> s(new Storage());
  s->nbytes = nbytes;
  s->pinned = true;
  if (nbytes == 0) return s;
  const size_t size = std::bit_ceil(std::max(nbytes, kRound));
  HostPool& p = host_pool();
  std::lock_guard<std::mutex> g(p.mu);
  HostBlock b{nullptr, size, nullptr};
  for (auto [it, end] = p.free.equal_range(size); it != end; ++it) {
    const cudaError_t e = cudaEventQuery(it->second.released);
    if (e == cudaSuccess) {
      b = it->second;
      p.free.erase(it);
      break;
    }
    if (e != cudaErrorNotReady) cuda_check(e, "cudaEventQuery");
  }
  if (!b.ptr) {
    if (cudaMallocHost(&b.ptr, size) != cudaSuccess) {
      cudaGetLastError();
      throw Error(ErrorKind::OutOfMemory, str_cat("pin_memory: cannot page-lock ", mib(size), " of host memory"));
    }
    const cudaError_t e = cudaEventCreateWithFlags(&b.released, cudaEventDisableTiming);
    if (e != cudaSuccess) {
      cudaFreeHost(b.ptr);
      cuda_check(e, "cudaEventCreateWithFlags");
    }
  }
  p.live[b.ptr] = b;
  s->data = b.ptr;
  s->release = release_host_block;
  return s;
}

void cuda_empty_cache() {
  {
    HostPool& h = host_pool();
    std::lock_guard<std::mutex> g(h.mu);
    if (!h.free.empty()) cuda_synchronize();  // every cached block's copies are then done
    for (auto& [size, b] : h.free) {
      cudaFreeHost(b.ptr);
      cudaEventDestroy(b.released);
    }
    h.free.clear();
  }
  if (cuda_memory_stats().reserved == 0) return;  // nothing held (and perhaps no device)
  cuda_synchronize();                             // kernels still queued may use blocks about to be freed
  std::lock_guard<std::mutex> g(pool().mu);
  release_cached(pool());
}

}  // namespace fk
