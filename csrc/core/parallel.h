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

// Set by the bindings: parallel regions release the Python GIL (release returns a
// token for reacquire), so other Python threads, such as data loaders, run meanwhile.
void set_gil_hooks(void* (*release)(), void (*reacquire)(void*));

}  // namespace fk
