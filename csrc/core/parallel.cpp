#include "parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace fk {
namespace {

thread_local bool t_in_pool = false;

int default_threads() {
  for (const char* var : {"FASTKERN_NUM_THREADS", "OMP_NUM_THREADS"})
    if (const char* v = std::getenv(var))
      if (int n = std::atoi(v); n > 0) return n;
  return std::max(1u, std::thread::hardware_concurrency());
}

struct Pool {
  std::mutex mu;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  uint64_t generation = 0;
  const std::function<void(int64_t, int64_t)>* job = nullptr;
  int64_t n = 0, chunks = 0;
  std::atomic<int64_t> next{0};
  int64_t remaining = 0;
  int threads = default_threads();

  void run_chunks() {
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
      (*job)(n * c / chunks, n * (c + 1) / chunks);
      std::lock_guard<std::mutex> g(mu);
      if (--remaining == 0) done.notify_one();
    }
  }

  void worker() {
    t_in_pool = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu);
        wake.wait(lk, [&] { return generation != seen; });
        seen = generation;
      }
      run_chunks();
    }
  }

  void run(int64_t total, int64_t nchunks, const std::function<void(int64_t, int64_t)>& f) {
    while (int(workers.size()) < threads - 1) workers.emplace_back([this] { worker(); });
    {
      std::lock_guard<std::mutex> g(mu);
      job = &f;
      n = total;
      chunks = nchunks;
      remaining = nchunks;
      next = 0;
      generation++;
    }
    wake.notify_all();
    t_in_pool = true;
    run_chunks();
    t_in_pool = false;
    std::unique_lock<std::mutex> lk(mu);
    done.wait(lk, [&] { return remaining == 0; });
  }
};

void* (*g_release_gil)() = nullptr;
void (*g_reacquire_gil)(void*) = nullptr;

// Leaked on purpose: worker threads must not be joined during interpreter exit.
Pool* g_pool = new Pool();
std::mutex g_run_mu;  // one parallel region at a time (callers from several Python threads)

void reset_after_fork() {
  // The child of a fork has none of the parent's threads: start a fresh pool.
  const int threads = g_pool->threads;
  g_pool = new Pool();
  g_pool->threads = threads;
  new (&g_run_mu) std::mutex();
}
[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, reset_after_fork);

}  // namespace

int num_threads() { return g_pool->threads; }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> g(g_run_mu);
  // Threads beyond n stay parked; only n-1 of them take chunks.
  g_pool->threads = std::max(1, n);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t chunks = std::min<int64_t>(num_threads(), grain > 0 ? n / grain : n);
  if (chunks <= 1 || t_in_pool) {
    if (n > 0) f(0, n);
    return;
  }
  struct Unlocked {  // the GIL is given back on every exit path
    void* token = g_release_gil ? g_release_gil() : nullptr;
    ~Unlocked() {
      if (g_reacquire_gil) g_reacquire_gil(token);
    }
  } unlocked;
  std::lock_guard<std::mutex> g(g_run_mu);
  g_pool->run(n, chunks, f);
}

void set_gil_hooks(void* (*release)(), void (*reacquire)(void*)) {
  g_release_gil = release;
  g_reacquire_gil = reacquire;
}

}  // namespace fk
