// A small persistent thread pool for the heavy kernels. Small ops never touch it.
#pragma once
#include <cstdint>
#include <functional>

namespace fk {

int num_threads();
void set_num_threads(int n);

// Runs f(begin, end) over [0, n) split into at most num_threads() contiguous
// chunks of at least `grain` items; serial when that gives one chunk or when
// called from inside a pool thread.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// How evenly `parts` equal pieces of work spread over `threads`: the mean share over the
// busiest thread's share (1 when they divide evenly). Work is split across threads only
// when this is at least kMinEvenness: a partial share costs as long as a whole one.
constexpr double kMinEvenness = 0.85;
inline double evenness(int64_t parts, int64_t threads) {
  return parts > 0 ? double(parts) / double(threads * ((parts + threads - 1) / threads)) : 0.0;
}

// Runs f(begin, end) over n pieces of work: split across threads when there are at least as
// many pieces as threads and they divide evenly among them (each piece then runs whole on one
// thread, with no hand-offs), else all at once on the caller, whose pieces split their own
// loops across threads instead.
void parallel_for_even(int64_t n, const std::function<void(int64_t, int64_t)>& f);

// Set by the bindings: parallel regions release the Python GIL (release returns a
// token for reacquire), so other Python threads, such as data loaders, run meanwhile.
void set_gil_hooks(void* (*release)(), void (*reacquire)(void*));

}  // namespace fk
