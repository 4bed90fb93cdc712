#include "parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// Waits of up to this long spin before sleeping on a condition variable: back-to-back
// parallel ops (a training step's GEMMs) then start and finish without a futex
// wake-up, which costs tens of microseconds on a VM.
constexpr auto kSpin = std::chrono::microseconds(100);

// Spins until done() or kSpin has passed; returns done(). It yields rather than
// pauses: on a busy machine the thread it waits for may share its core.
template <class F>
bool spin_until(F done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  while (!done()) {
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() > until) return done();
  }
  return true;
}

struct Pool {
  std::mutex mu;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  std::atomic<uint64_t> generation{0};
  const std::function<void(int64_t, int64_t)>* job = nullptr;
  int64_t n = 0, chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> remaining{0};
  int threads = default_threads();

  void run_chunks() {
    for (int64_t c; (c = next.fetch_add(1)) < chunks;) {
      (*job)(n * c / chunks, n * (c + 1) / chunks);
      if (remaining.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> g(mu);
        done.notify_one();
      }
    }
  }

  void worker() {
    t_in_pool = true;
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation.load(std::memory_order_acquire) != seen; });
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
    if (spin_until([&] { return remaining.load(std::memory_order_acquire) == 0; })) return;
    std::unique_lock<std::mutex> lk(mu);
    done.wait(lk, [&] { return remaining.load() == 0; });
  }
};

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
  std::lock_guard<std::mutex> g(g_run_mu);
  g_pool->run(n, chunks, f);
}

}  // namespace fk
