#include "parallel.h"

#include "../core/common.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace fk {
namespace {

thread_local bool t_in_pool = false;

// Threads far beyond the machine's only add hand-off cost (and stacks): at most 4 per
// hardware thread, and at least 64 so that tests of many-thread splits run anywhere.
const int kMaxThreads = int(std::max(64u, 4 * std::thread::hardware_concurrency()));

int default_threads() {
  for (const char* var : {"FASTKERN_NUM_THREADS", "OMP_NUM_THREADS"})
    if (const char* v = std::getenv(var))
      if (int n = std::atoi(v); n > 0) return std::min(n, kMaxThreads);
  return std::max(1u, std::thread::hardware_concurrency());
}

// Waking a sleeping thread costs tens of microseconds on a VM, more than many small ops
// take, so waits first spin this long. They yield rather than pause: on a busy machine
// the thread being waited for may share the core.
constexpr auto kSpin = std::chrono::microseconds(100);

template <class F>
bool spin_until(F done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  while (!done()) {
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() > until) return done();
  }
  return true;
}

// One word holds the job's generation, its chunk count and the next unclaimed chunk, so
// a worker can never claim a chunk of a job that has already finished.
constexpr int kBits = 20;
constexpr uint64_t kMask = (uint64_t(1) << kBits) - 1;
constexpr uint64_t kGenMask = (uint64_t(1) << (64 - 2 * kBits)) - 1;

struct Pool {
  std::mutex mu;
  std::condition_variable wake, done;
  std::vector<std::thread> workers;
  std::atomic<uint64_t> state{0};
  std::atomic<int64_t> remaining{0};
  std::atomic<int> sleepers{0};
  const std::function<void(int64_t, int64_t)>* job = nullptr;  // stable while the job has chunks left
  int64_t n = 0;
  uint64_t gen = 0;
  int threads = default_threads();

  static uint64_t gen_of(uint64_t s) { return s >> (2 * kBits); }

  // Runs chunks of generation g until none is left to claim.
  void run_chunks(uint64_t g) {
    uint64_t s = state.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t chunks = (s >> kBits) & kMask, next = s & kMask;
      if (gen_of(s) != g || next >= chunks) return;
      if (!state.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
      (*job)(n* int64_t(next) / int64_t(chunks), n * int64_t(next + 1) / int64_t(chunks));
      if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu);
        done.notify_one();
      }
      s = state.load(std::memory_order_acquire);
    }
  }

  void worker() {
    t_in_pool = true;
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = seen;
      spin_until([&] { return (g = gen_of(state.load(std::memory_order_acquire))) != seen; });
      if (g == seen) {
        std::unique_lock<std::mutex> lk(mu);
        sleepers++;
        wake.wait(lk, [&] { return gen_of(state.load(std::memory_order_acquire)) != seen; });
        sleepers--;
        g = gen_of(state.load(std::memory_order_acquire));
      }
      seen = g;
      run_chunks(g);
    }
  }

  void run(int64_t total, int64_t nchunks, const std::function<void(int64_t, int64_t)>& f) {
    try {
      while (int(workers.size()) < threads - 1) workers.emplace_back([this] { worker(); });
    } catch (const std::system_error&) {
      threads = int(workers.size()) + 1;  // the system gave no more threads: run with those there are
    }
    job = &f;
    n = total;
    gen = (gen + 1) & kGenMask;
    remaining.store(nchunks, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mu);  // pairs with the sleepers' predicate check
      state.store((gen << (2 * kBits)) | (uint64_t(nchunks) << kBits), std::memory_order_release);
    }
    if (sleepers.load() > 0) wake.notify_all();
    t_in_pool = true;
    run_chunks(gen);
    t_in_pool = false;
    if (spin_until([&] { return remaining.load(std::memory_order_acquire) == 0; })) return;
    std::unique_lock<std::mutex> lk(mu);
    done.wait(lk, [&] { return remaining.load(std::memory_order_acquire) == 0; });
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
  FK_CHECK(n > 0, Runtime, "set_num_threads expects a positive integer, got ", n);
  std::lock_guard<std::mutex> g(g_run_mu);
  // Threads beyond n stay parked; at most n chunks are handed out per job.
  g_pool->threads = std::min(n, kMaxThreads);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t chunks = std::min<int64_t>({num_threads(), grain > 0 ? n / grain : n, int64_t(kMask)});
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

void parallel_for_even(int64_t n, const std::function<void(int64_t, int64_t)>& f) {
  const int64_t t = num_threads();
  if (t > 1 && n >= t && evenness(n, t) >= kMinEvenness)
    parallel_for(n, 1, f);
  else
    f(0, n);
}

}  // namespace fk
