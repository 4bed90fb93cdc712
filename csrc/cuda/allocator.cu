// The CUDA caching allocator. cudaMalloc and cudaFree synchronise the device and cost tens of
// microseconds, so released blocks are kept and reused: segments come from cudaMalloc, blocks
// are cut from them best-fit and merged with free neighbours when released. All kernels run on
// one stream per device, in order, so a block released by one op can be handed to the next.
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

void cuda_empty_cache() {
  if (cuda_memory_stats().reserved == 0) return;  // nothing held (and perhaps no device)
  cuda_synchronize();                             // kernels still queued may use blocks about to be freed
  std::lock_guard<std::mutex> g(pool().mu);
  release_cached(pool());
}

}  // namespace fk
