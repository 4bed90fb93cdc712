// The CPU backend's memory and random numbers (allocator.cpp, random.cpp).
#pragma once
#include "../core/backend.h"

namespace fk {

Ref<Storage> cpu_alloc(size_t nbytes);
void cpu_random(const Tensor& out, const RandomFill& r);
void cpu_manual_seed(uint64_t seed);

}  // namespace fk
