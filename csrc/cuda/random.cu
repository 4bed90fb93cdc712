// The CUDA generator: Philox-4x32-10, counter-based, so element i of a fill is a function of
// (seed, offset, i) alone: the values do not depend on the launch shape or the device.
#include <cmath>
#include <vector>

#include "cuda_util.h"

namespace fk {
namespace {

struct Philox {
  uint32_t c[4];
};

// The Philox-4x32 round function, 10 rounds (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011); the multipliers and key increments are the paper's constants.
__host__ __device__ inline Philox philox(uint64_t counter, uint64_t offset, uint64_t seed) {
  uint32_t x0 = uint32_t(counter), x1 = uint32_t(counter >> 32), x2 = uint32_t(offset), x3 = uint32_t(offset >> 32);
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; r++) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * x0, p1 = uint64_t(0xCD9E8D57u) * x2;
    const uint32_t y0 = uint32_t(p1 >> 32) ^ x1 ^ k0, y2 = uint32_t(p0 >> 32) ^ x3 ^ k1;
    x0 = y0;
    x1 = uint32_t(p1);
    x2 = y2;
    x3 = uint32_t(p0);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{x0, x1, x2, x3}};
}

__host__ __device__ inline double unit53(uint32_t hi, uint32_t lo) {  // [0, 1) with 53 random bits
  return double((uint64_t(hi) << 21) ^ (lo >> 11)) * 0x1.0p-53;
}

struct Generator {
  uint64_t seed = 0x5eed, offset = 0;
};
Generator& gen() {
  static Generator g;
  return g;
}

template <class T>
__global__ void random_kernel(T* out, int64_t n, RandomFill r, uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const Philox p = philox(uint64_t(i), offset, seed);
    if (r.kind == RandomFill::Uniform) {
      const double u = unit53(p.c[0], p.c[1]);
      T v = T(r.a + (r.b - r.a) * u);
      if (v >= T(r.b) && r.b > r.a) v = T(r.a);  // rounding up to the excluded bound
      out[i] = v;
    } else if (r.kind == RandomFill::Normal) {  // Box-Muller, one value per element
      const double u1 = 1.0 - unit53(p.c[0], p.c[1]), u2 = unit53(p.c[2], p.c[3]);
      out[i] = T(r.a + r.b * sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2));
    } else {
      const uint64_t bits = (uint64_t(p.c[0]) << 32) | p.c[1];
      out[i] = T(int64_t(uint64_t(r.low) + bits % r.span));
    }
  }
}

}  // namespace

void cuda_manual_seed(uint64_t seed) { gen() = {seed, 0}; }

void cuda_random(const Tensor& out, const RandomFill& r) {
  Generator& g = gen();
  const int64_t n = out.numel();
  if (r.kind == RandomFill::Permutation) {
    // Fisher-Yates is sequential: shuffle on the host with this generator's stream, then copy.
    std::vector<int64_t> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; i++) p[size_t(i)] = i;
    for (int64_t i = n - 1; i > 0; i--) {
      const Philox q = philox(uint64_t(i), g.offset, g.seed);
      std::swap(p[size_t(i)], p[size_t(((uint64_t(q.c[0]) << 32) | q.c[1]) % uint64_t(i + 1))]);
    }
    FK_CUDA(cudaMemcpyAsync(out.raw(), p.data(), size_t(n) * sizeof(int64_t), cudaMemcpyHostToDevice, cuda_stream()));
    FK_CUDA(cudaStreamSynchronize(cuda_stream()));
  } else if (n > 0) {
    dispatch_dtype(out.dtype(), [&](auto z) {
      using T = decltype(z);
      FK_LAUNCH(random_kernel<T>, blocks_for(n), kThreads, 0, cuda_stream())(out.data<T>(), n, r, g.seed, g.offset);
    });
    cuda_launched("random");
  }
  g.offset++;  // the next fill draws from fresh counters
}

}  // namespace fk
