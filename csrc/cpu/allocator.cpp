// The CPU's caching allocator. Large blocks come from mmap, pre-faulted, and are kept on
// free lists by size class when released, so a loop of large ops does not pay page faults
// each time.
#include "allocator.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace fk {
namespace {

constexpr size_t kInline = sizeof(Storage::inline_buf);
constexpr size_t kLarge = size_t(256) << 10;

struct BlockCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  size_t cached = 0, limit = 0;
  BlockCache() {
    const char* env = std::getenv("FASTKERN_CPU_CACHE_MB");
    limit = (env ? size_t(std::atoll(env)) : 2048) << 20;
  }
};
BlockCache& cache() {
  static BlockCache* c = new BlockCache();  // never destroyed: storages may die during interpreter exit
  return *c;
}

// Round up to 4 steps per octave (at most 25% waste), so freed blocks get reused.
size_t size_class(size_t n) {
  size_t p = 1;
  while (p * 2 <= n) p *= 2;
  const size_t step = p / 4;
  return (n + step - 1) / step * step;
}

void release_large(void* data, size_t nbytes, void*) {
  BlockCache& c = cache();
  {
    std::lock_guard<std::mutex> g(c.mu);
    if (c.cached + nbytes <= c.limit) {
      c.free[nbytes].push_back(data);
      c.cached += nbytes;
      return;
    }
  }
  munmap(data, nbytes);
}

void* alloc_large(size_t nbytes) {
  // Refuse what cannot fit: pre-faulting more than physical memory would summon the OOM killer.
  static const size_t phys = size_t(sysconf(_SC_PHYS_PAGES)) * size_t(sysconf(_SC_PAGESIZE));
  FK_CHECK(nbytes <= phys, Runtime, "out of memory: tried to allocate ", nbytes >> 20, " MiB with ", phys >> 20,
           " MiB of physical memory");
  BlockCache& c = cache();
  {
    std::lock_guard<std::mutex> g(c.mu);
    auto it = c.free.find(nbytes);
    if (it != c.free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= nbytes;
      return p;
    }
  }
  void* p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    // Out of address space or memory: drop the cache and try once more.
    std::vector<std::pair<void*, size_t>> drop;
    {
      std::lock_guard<std::mutex> g(c.mu);
      for (auto& [sz, v] : c.free)
        for (void* q : v) drop.push_back({q, sz});
      c.free.clear();
      c.cached = 0;
    }
    for (auto& [q, sz] : drop) munmap(q, sz);
    p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    FK_CHECK(p != MAP_FAILED, Runtime, "out of memory: failed to allocate ", nbytes, " bytes");
  }
  return p;
}

void release_malloc(void* data, size_t, void*) { std::free(data); }

}  // namespace

Ref<Storage> cpu_alloc(size_t nbytes) {
  Ref<Storage> s(new Storage());
  if (nbytes <= kInline) {
    s->data = s->inline_buf;  // scalars and tiny tensors: no second allocation on the hot path
  } else if (nbytes < kLarge) {
    s->data = std::aligned_alloc(64, (nbytes + 63) / 64 * 64);
    FK_CHECK(s->data, Runtime, "out of memory: failed to allocate ", nbytes, " bytes");
    s->release = release_malloc;
  } else {
    nbytes = size_class(nbytes);
    s->data = alloc_large(nbytes);
    s->release = release_large;
  }
  s->nbytes = nbytes;
  return s;
}

}  // namespace fk
