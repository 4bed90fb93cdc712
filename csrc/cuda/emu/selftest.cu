// The SIMT emulator's self-test: kernels written against ../runtime.h, run case by case.
//
//   selftest [case...]     (no case: every default case; `selftest list` names them all)
//
// Each case prints "PASS name" or "FAIL name" (and INFO lines); the exit status is 0 when all
// passed. Built in emulation by tests/test_simt_emulator.py (under ASan and UBSan, and as a shared
// library with FK_SELFTEST_LIBRARY, whose fk_selftest_main a Python process loads). It also builds
// with nvcc; there the cases that check the emulator's own detections pass without checking.
#include "../runtime.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#ifdef FK_CUDA_EMULATE
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::printf("INFO check failed at selftest.cu:%d: %s\n", __LINE__, #cond); \
      return false;                                                              \
    }                                                                            \
  } while (0)
#define CHECK_CUDA(call) CHECK((call) == cudaSuccess)

// Device memory for n values of T, freed on scope exit.
template <class T>
struct Buffer {
  T* ptr = nullptr;
  size_t n;
  explicit Buffer(size_t count, const std::vector<T>& init = {}) : n(count) {
    if (cudaMalloc(reinterpret_cast<void**>(&ptr), n * sizeof(T)) != cudaSuccess) std::abort();
    if (!init.empty()) cudaMemcpy(ptr, init.data(), n * sizeof(T), cudaMemcpyHostToDevice);
  }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  std::vector<T> get() const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
};

constexpr unsigned kFull = 0xffffffffu;

// ---- Elementwise ---------------------------------------------------------------------------------

__global__ void saxpy(int n, float a, const float* __restrict__ x, float* __restrict__ y) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] = a * x[i] + y[i];
}

__global__ void scale4(const float4* in, float4* out, int n4) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n4) {
    float4 v = __ldg(in + i);
    out[i] = make_float4(2 * v.x, 2 * v.y, 2 * v.z, 2 * v.w);
  }
}

// Every thread writes its coordinates to its own slot.
__global__ void coords(int* out) {
  int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  int thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  int slot = block * blockDim.x * blockDim.y * blockDim.z + thread;
  out[slot * 2] = (blockIdx.x << 24) | (blockIdx.y << 16) | (blockIdx.z << 8);
  out[slot * 2 + 1] = (threadIdx.x << 24) | (threadIdx.y << 16) | (threadIdx.z << 8);
}

// A kernel may change its by-value parameters; each thread has its own copy.
__global__ void own_params(int* out, int k) {
  k += threadIdx.x;
  out[threadIdx.x] = k;
}

bool elementwise() {
  const int n = 100003;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = float(i % 1000), y[i] = float(3 * (i % 7));
  Buffer<float> dx(n, x), dy(n, y);
  FK_LAUNCH(saxpy, 8, 128, 0, 0)(n, 2.0f, dx.ptr, dy.ptr);  // 1024 threads: a hundred turns each
  CHECK_CUDA(cudaGetLastError());
  std::vector<float> out = dy.get();
  for (int i = 0; i < n; ++i) CHECK(out[i] == 2.0f * x[i] + y[i]);

  Buffer<float> d4(1024);
  FK_LAUNCH(scale4, 2, 128, 0, 0)(reinterpret_cast<const float4*>(dx.ptr), reinterpret_cast<float4*>(d4.ptr), 256);
  CHECK_CUDA(cudaGetLastError());
  out = d4.get();
  for (int i = 0; i < 1024; ++i) CHECK(out[i] == 2 * x[i]);

  const dim3 grid(3, 2, 2), block(4, 3, 2);
  Buffer<int> dc(12 * 24 * 2);
  FK_LAUNCH(coords, grid, block, 0, 0)(dc.ptr);
  CHECK_CUDA(cudaGetLastError());
  std::vector<int> c = dc.get();
  for (unsigned bz = 0, slot = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx, ++slot) {
              CHECK(c[slot * 2] == int((bx << 24) | (by << 16) | (bz << 8)));
              CHECK(c[slot * 2 + 1] == int((tx << 24) | (ty << 16) | (tz << 8)));
            }

  Buffer<int> dp(64);
  FK_LAUNCH(own_params, 1, 64, 0, 0)(dp.ptr, 1000);
  std::vector<int> p = dp.get();
  for (int t = 0; t < 64; ++t) CHECK(p[t] == 1000 + t);
  return true;
}

// ---- Device math, unqualified as in CUDA ---------------------------------------------------------

__global__ void device_math(const float* x, float* out) {
  int i = threadIdx.x;
  float v = x[i];
  float* o = out + i * 16;
  o[0] = fmaxf(v, 0.5f), o[1] = fminf(v, 0.5f), o[2] = expf(v), o[3] = logf(fabsf(v) + 1);
  o[4] = sqrtf(fabsf(v)), o[5] = tanhf(v), o[6] = erff(v), o[7] = floorf(v);
  o[8] = ceilf(v), o[9] = roundf(v), o[10] = truncf(v), o[11] = rsqrtf(fabsf(v) + 1);
  o[12] = __expf(v), o[13] = __fdividef(v, 3.0f), o[14] = max(v, 0.25f);
  o[15] = float(min(i, 7) + __popc(unsigned(i)) + __clz(i) + __ffs(i) + __float_as_int(__int_as_float(i)));
}

bool math() {
  const int n = 64;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = (i - 32) * 0.37f;
  Buffer<float> dx(n, x), dout(n * 16);
  FK_LAUNCH(device_math, 1, n, 0, 0)(dx.ptr, dout.ptr);
  CHECK_CUDA(cudaGetLastError());
  std::vector<float> out = dout.get();
  auto near = [](float a, double b, double tol) { return std::fabs(a - b) <= tol * (1 + std::fabs(b)); };
  for (int i = 0; i < n; ++i) {
    const float v = x[i], *o = &out[i * 16];
    CHECK(o[0] == std::max(v, 0.5f) && o[1] == std::min(v, 0.5f));
    CHECK(near(o[2], std::exp(double(v)), 1e-6) && near(o[3], std::log(std::fabs(double(v)) + 1), 1e-6));
    CHECK(near(o[4], std::sqrt(std::fabs(double(v))), 1e-6) && near(o[5], std::tanh(double(v)), 1e-6));
    CHECK(near(o[6], std::erf(double(v)), 1e-6) && o[7] == std::floor(v) && o[8] == std::ceil(v));
    CHECK(o[9] == std::round(v) && o[10] == std::trunc(v));
    CHECK(near(o[11], 1 / std::sqrt(std::fabs(double(v)) + 1), 1e-6) && near(o[12], std::exp(double(v)), 1e-5));
    CHECK(near(o[13], v / 3.0, 1e-6) && o[14] == std::max(v, 0.25f));
    int bits = 0, clz = 32, ffs = 0;
    for (int b = 31; b >= 0; --b)
      if (i >> b & 1) bits++, clz = std::min(clz, 31 - b), ffs = b + 1;
    CHECK(o[15] == float(std::min(i, 7) + bits + clz + ffs + i));
  }
  return true;
}

// ---- Block reduction -----------------------------------------------------------------------------

template <int B>
__global__ void block_sum(const int* in, int* out, int* odd, int n) {
  __shared__ int s[B];
  int t = threadIdx.x, i = blockIdx.x * B + t;
  int v = i < n ? in[i] : 0;
  s[t] = v;
  __syncthreads();
  for (int stride = B / 2; stride > 0; stride >>= 1) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  int odd_count = __syncthreads_count(v & 1);
  if (t == 0) out[blockIdx.x] = s[0], odd[blockIdx.x] = odd_count;
}

bool block_reduce() {
  const int n = 10000, blocks = (n + 255) / 256;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = (i * 37) % 101 - 50;
  Buffer<int> din(n, in), dout(blocks), dodd(blocks);
  FK_LAUNCH(block_sum<256>, blocks, 256, 0, 0)(din.ptr, dout.ptr, dodd.ptr, n);
  CHECK_CUDA(cudaGetLastError());
  std::vector<int> out = dout.get(), odd = dodd.get();
  for (int b = 0; b < blocks; ++b) {
    int sum = 0, odds = 0;
    for (int i = b * 256; i < std::min(n, b * 256 + 256); ++i) sum += in[i], odds += in[i] & 1;
    CHECK(out[b] == sum);
    CHECK(odd[b] == odds);
  }
  return true;
}

// ---- Warp shuffles -------------------------------------------------------------------------------

__global__ void warp_ops(const int* in, int* sum, int* prefix, int* bcast, int* butterfly, int* seg, float* fsum,
                         double* dsum) {
  int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
  int v = in[i];
  int s = v;
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(kFull, s, o);
  if (lane == 0) sum[i / 32] = s;
  int p = v;
  for (int o = 1; o < 32; o <<= 1) {
    int u = __shfl_up_sync(kFull, p, o);
    if (lane >= o) p += u;
  }
  prefix[i] = p;
  bcast[i] = __shfl_sync(kFull, v, 5);
  int x = v;
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(kFull, x, o);
  butterfly[i] = x;
  seg[i] = __shfl_sync(kFull, v, 3, 8);  // lane 3 of each group of 8
  float f = float(v) * 0.5f;
  for (int o = 16; o > 0; o >>= 1) f += __shfl_down_sync(kFull, f, o);
  double d = double(v) * 0.25;
  for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(kFull, d, o);
  if (lane == 0) fsum[i / 32] = f, dsum[i / 32] = d;
}

// A block of 48 threads: its second warp has 16 lanes.
__global__ void partial_warp(unsigned* ballot, int* from_missing) {
  ballot[threadIdx.x] = __ballot_sync(kFull, 1);
  from_missing[threadIdx.x] = __shfl_down_sync(kFull, int(threadIdx.x), 16);  // lanes 16.. of warp 1 don't exist
}

bool warp_shuffle() {
  const int n = 192, warps = n / 32;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = (i * 13) % 29 - 7;
  Buffer<int> din(n, in), dsum(warps), dprefix(n), dbcast(n), dbutterfly(n), dseg(n);
  Buffer<float> dfsum(warps);
  Buffer<double> ddsum(warps);
  FK_LAUNCH(warp_ops, 2, 96, 0, 0)(din.ptr, dsum.ptr, dprefix.ptr, dbcast.ptr, dbutterfly.ptr, dseg.ptr, dfsum.ptr,
                                   ddsum.ptr);
  CHECK_CUDA(cudaGetLastError());
  std::vector<int> sum = dsum.get(), prefix = dprefix.get(), bcast = dbcast.get(), butterfly = dbutterfly.get(),
                   seg = dseg.get();
  std::vector<float> fsum = dfsum.get();
  std::vector<double> dsumv = ddsum.get();
  for (int w = 0; w < warps; ++w) {
    int total = 0;
    for (int l = 0; l < 32; ++l) {
      total += in[w * 32 + l];
      CHECK(prefix[w * 32 + l] == total);
      CHECK(bcast[w * 32 + l] == in[w * 32 + 5]);
      CHECK(seg[w * 32 + l] == in[w * 32 + (l & ~7) + 3]);
    }
    CHECK(sum[w] == total);
    CHECK(fsum[w] == float(total) * 0.5f);
    CHECK(dsumv[w] == double(total) * 0.25);
    for (int l = 0; l < 32; ++l) CHECK(butterfly[w * 32 + l] == total);
  }

  Buffer<unsigned> dballot(48);
  Buffer<int> dmissing(48);
  FK_LAUNCH(partial_warp, 1, 48, 0, 0)(dballot.ptr, dmissing.ptr);
  CHECK_CUDA(cudaGetLastError());
  std::vector<unsigned> ballot = dballot.get();
  std::vector<int> missing = dmissing.get();
  for (int t = 0; t < 48; ++t) CHECK(ballot[t] == (t < 32 ? kFull : 0xffffu));
  for (int t = 0; t < 32; ++t) CHECK(missing[t] == (t < 16 ? t + 16 : t));
  // A shuffle from a lane that does not exist is undefined; the emulator returns all ones bits.
  if (kEmulated)
    for (int t = 32; t < 48; ++t) CHECK(missing[t] == -1);
  return true;
}

// ---- Votes ---------------------------------------------------------------------------------------

__global__ void votes(unsigned* out) {
  int lane = threadIdx.x % 32, t = threadIdx.x;
  unsigned* o = out + t * 8;
  o[0] = __ballot_sync(kFull, lane % 3 == 0);
  o[1] = __any_sync(kFull, lane == 7);
  o[2] = __all_sync(kFull, lane < 32);
  o[3] = __all_sync(kFull, lane < 31);
  o[4] = lane < 16 ? __ballot_sync(0x0000ffffu, lane & 1) : 0;
  o[5] = __syncthreads_and(t < 1000);
  o[6] = __syncthreads_or(t == 63);
  o[7] = __activemask();
  __syncwarp();
}

// sm_80's warp reductions, over lanes' values lane - 10 (signed) and 1 << lane.
__global__ void warp_reductions(int* out) {
  int lane = threadIdx.x % 32;
  int* o = out + threadIdx.x * 6;
  o[0] = __reduce_add_sync(kFull, lane - 10);
  o[1] = __reduce_min_sync(kFull, lane - 10);
  o[2] = __reduce_max_sync(kFull, unsigned(lane * 3));
  o[3] = int(__reduce_or_sync(kFull, 1u << lane));
  o[4] = int(__reduce_and_sync(kFull, lane == 31 ? 0xf0u : 0xffu));
  o[5] = int(__reduce_xor_sync(0x0000000fu << (lane & ~3), unsigned(lane)));  // groups of 4 lanes
}

bool vote() {
  Buffer<unsigned> d(64 * 8);
  FK_LAUNCH(votes, 1, 64, 0, 0)(d.ptr);
  CHECK_CUDA(cudaGetLastError());
  std::vector<unsigned> o = d.get();
  unsigned every_third = 0;
  for (int l = 0; l < 32; l += 3) every_third |= 1u << l;
  for (int t = 0; t < 64; ++t) {
    const unsigned* v = &o[t * 8];
    int lane = t % 32;
    CHECK(v[0] == every_third);
    CHECK(v[1] == 1 && v[2] == 1 && v[3] == 0);
    CHECK(v[4] == (lane < 16 ? 0xaaaau : 0u));
    CHECK(v[5] == 1 && v[6] == 1);
    CHECK(v[7] == kFull);
  }

  Buffer<int> r(32 * 6);
  FK_LAUNCH(warp_reductions, 1, 32, 0, 0)(r.ptr);
  CHECK_CUDA(cudaGetLastError());
  std::vector<int> rv = r.get();
  for (int l = 0; l < 32; ++l) {
    const int* v = &rv[l * 6];
    CHECK(v[0] == 496 - 320 && v[1] == -10 && v[2] == 93 && v[3] == -1 && v[4] == 0xf0);
    const int g = l & ~3;
    CHECK(v[5] == (g ^ (g + 1) ^ (g + 2) ^ (g + 3)));
  }
  return true;
}

// ---- Atomics -------------------------------------------------------------------------------------

__device__ float atomic_max_float(float* address, float v) {  // the usual CAS loop
  int* a = reinterpret_cast<int*>(address);
  int old = *a;
  while (__int_as_float(old) < v) {
    int seen = atomicCAS(a, old, __float_as_int(v));
    if (seen == old) break;
    old = seen;
  }
  return __int_as_float(old);
}

__global__ void atomics(float* fsum, int* isum, unsigned* wrap, int* imax, int* imin, unsigned long long* count,
                        double* dsum, float* fmax, long long* llmax, unsigned* bits) {
  int gid = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(fsum, 1.0f);
  atomicAdd(isum, int(threadIdx.x));
  atomicSub(isum, 1);
  atomicInc(wrap, 999);
  atomicMax(imax, gid);
  atomicMin(imin, -gid);
  atomicAdd(count, 1ull);
  atomicAdd(dsum, 0.5);
  atomic_max_float(fmax, float(gid % 1000) * 0.25f);
  atomicMax(llmax, (long long)gid << 33);
  atomicOr(bits, 1u << (gid % 32));
}

bool atomic_ops() {
  const int blocks = 100, threads = 256, total = blocks * threads;
  Buffer<float> fsum(1, {0.0f}), fmax(1, {-1.0f});
  Buffer<int> isum(1, {0}), imax(1, {-1}), imin(1, {1});
  Buffer<unsigned> wrap(1, {0u}), bits(1, {0u});
  Buffer<unsigned long long> count(1, {0ull});
  Buffer<double> dsum(1, {0.0});
  Buffer<long long> llmax(1, {0ll});
  FK_LAUNCH(atomics, blocks, threads, 0, 0)(fsum.ptr, isum.ptr, wrap.ptr, imax.ptr, imin.ptr, count.ptr, dsum.ptr,
                                            fmax.ptr, llmax.ptr, bits.ptr);
  CHECK_CUDA(cudaGetLastError());
  CHECK(fsum.get()[0] == float(total));
  CHECK(isum.get()[0] == blocks * (threads * (threads - 1) / 2) - total);
  CHECK(wrap.get()[0] == unsigned(total % 1000));
  CHECK(imax.get()[0] == total - 1);
  CHECK(imin.get()[0] == -(total - 1));
  CHECK(count.get()[0] == (unsigned long long)total);
  CHECK(dsum.get()[0] == total * 0.5);
  CHECK(fmax.get()[0] == 999 * 0.25f);
  CHECK(llmax.get()[0] == (long long)(total - 1) << 33);
  CHECK(bits.get()[0] == kFull);
  return true;
}

// ---- Dynamic shared memory -----------------------------------------------------------------------

template <class T>
__global__ void reverse_block(const T* in, T* out) {
  FK_DYNAMIC_SHARED(T, buf);
  int t = threadIdx.x, base = blockIdx.x * blockDim.x;
  buf[t] = in[base + t];
  __syncthreads();
  out[base + t] = buf[blockDim.x - 1 - t];
}

__global__ void fill_smem(int* out, int words) {
  FK_DYNAMIC_SHARED(int, buf);
  for (int i = threadIdx.x; i < words; i += blockDim.x) buf[i] = i;
  __syncthreads();
  int sum = 0;
  for (int i = threadIdx.x; i < words; i += blockDim.x) sum += buf[words - 1 - i];
  atomicAdd(out, sum);
}

template <class T>
bool reverse_case() {
  const int blocks = 3, threads = 128, n = blocks * threads;
  std::vector<T> in(n);
  for (int i = 0; i < n; ++i) in[i] = T(i);
  Buffer<T> din(n, in), dout(n);
  FK_LAUNCH(reverse_block<T>, blocks, threads, threads * sizeof(T), 0)(din.ptr, dout.ptr);
  CHECK_CUDA(cudaGetLastError());
  std::vector<T> out = dout.get();
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) CHECK(out[b * threads + t] == in[b * threads + threads - 1 - t]);
  return true;
}

bool dynamic_smem() {
  if (!reverse_case<float>() || !reverse_case<double>()) return false;
  const int words = 64 * 1024 / 4;
  Buffer<int> out(1, {0});
  FK_LAUNCH(fill_smem, 1, 256, words * 4, 0)(out.ptr, words);  // 64 KB: more than the default 48 KB
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
  CHECK_CUDA(cudaFuncSetAttribute(fill_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, words * 4));
  FK_LAUNCH(fill_smem, 1, 256, words * 4, 0)(out.ptr, words);
  CHECK_CUDA(cudaGetLastError());
  CHECK(out.get()[0] == words * (words - 1) / 2);
  return true;
}

// ---- Shared memory starts poisoned in every block ------------------------------------------------

__global__ void read_before_write(unsigned* out) {
  __shared__ unsigned s[64];
  FK_DYNAMIC_SHARED(unsigned, d);
  int t = threadIdx.x;
  out[blockIdx.x * 128 + t] = s[t];
  out[blockIdx.x * 128 + 64 + t] = d[t];
  __syncthreads();
  s[t] = 7;
  d[t] = 7;
}

bool shared_poison() {
  if (!kEmulated) return true;  // on a GPU, shared memory starts with whatever was there
  Buffer<unsigned> out(4 * 128);
  FK_LAUNCH(read_before_write, 4, 64, 64 * 4, 0)(out.ptr);
  CHECK_CUDA(cudaGetLastError());
  for (unsigned v : out.get()) CHECK(v == 0xffffffffu);  // not 0, and not the 7s an earlier block left
  return true;
}

// ---- A missing barrier ---------------------------------------------------------------------------

// Each thread reads the slot its left neighbour wrote: without the barrier, whether the neighbour
// has written it yet depends on the order in which threads run.
template <bool Barrier>
__global__ void shift_right(const int* in, int* out) {
  __shared__ int s[256];
  int t = threadIdx.x, i = blockIdx.x * 256 + t;
  s[t] = in[i];
  if (Barrier) __syncthreads();
  out[i] = t > 0 ? s[t - 1] : 0;
}

// A tree reduction without the barrier in its loop.
__global__ void racy_sum(const int* in, int* out) {
  __shared__ int s[256];
  int t = threadIdx.x;
  s[t] = in[blockIdx.x * 256 + t];
  __syncthreads();
  for (int stride = 128; stride > 0; stride >>= 1)
    if (t < stride) s[t] += s[t + stride];  // missing __syncthreads()
  if (t == 0) out[blockIdx.x] = s[0];
}

template <bool Barrier>
int shift_errors() {
  const int n = 4 * 256;
  std::vector<int> in(n);
  for (int i = 0; i < n; ++i) in[i] = i + 1;
  Buffer<int> din(n, in), dout(n);
  FK_LAUNCH(shift_right<Barrier>, 4, 256, 0, 0)(din.ptr, dout.ptr);
  if (cudaGetLastError() != cudaSuccess) return -1;
  std::vector<int> out = dout.get();
  int wrong = 0;
  for (int i = 0; i < n; ++i) wrong += out[i] != (i % 256 ? in[i - 1] : 0);
  return wrong;
}

bool missing_barrier() {
  if (!kEmulated) return true;
#ifdef FK_CUDA_EMULATE
  const std::uint64_t saved = fk_emu::seed();
  bool ok = true;
  std::vector<int> sum_in(2 * 256, 1);
  Buffer<int> din(2 * 256, sum_in), dsum(2);
  for (std::uint64_t seed = 0; seed <= 8; ++seed) {
    fk_emu::set_seed(seed);
    const int with = shift_errors<true>(), without = shift_errors<false>();
    FK_LAUNCH(racy_sum, 2, 256, 0, 0)(din.ptr, dsum.ptr);
    std::vector<int> sums = dsum.get();
    const bool racy_wrong = sums[0] != 256 || sums[1] != 256;
    std::printf("INFO missing_barrier seed=%llu with_barrier_wrong=%d without_barrier_wrong=%d racy_sum_wrong=%d\n",
                (unsigned long long)seed, with, without, int(racy_wrong));
    // Seed 0 runs threads in ascending order, which hides this bug: every left neighbour ran first.
    ok = ok && with == 0 && (seed == 0 ? without == 0 : without > 0) && racy_wrong;
  }
  fk_emu::set_seed(saved);
  return ok;
#else
  return true;
#endif
}

// ---- Failures the emulator reports ---------------------------------------------------------------

__global__ void early_return(int* out) {
  if (threadIdx.x >= 100) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void two_barriers(int* out) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void mixed_collectives(int* out) {
  int lane = threadIdx.x % 32;
  if (lane < 16)
    out[threadIdx.x] = __shfl_sync(kFull, lane, 0);
  else
    out[threadIdx.x] = int(__ballot_sync(kFull, 1));
}

__global__ void foreign_mask(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, int(threadIdx.x), 0); }

__global__ void trapping(int* out) {
  if (blockIdx.x == 1 && threadIdx.x == 3) __trap();
  out[threadIdx.x] = 1;
}

__global__ void ones(int* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = 1; }

#ifdef FK_CUDA_EMULATE
// Launches a broken kernel and checks that it fails, once, with a message that says why.
template <class Launch>
bool fails_with(const char* what, const char* expected, Launch launch) {
  launch();
  const cudaError_t e = cudaGetLastError();
  const std::string message = fk_emu::last_failure();
  std::printf("INFO %s: %s: %s\n", what, cudaGetErrorName(e), message.c_str());
  if (e != cudaErrorLaunchFailure || message.find(expected) == std::string::npos) return false;
  return cudaGetLastError() == cudaSuccess && cudaDeviceSynchronize() == cudaSuccess;  // reported once
}
#endif

bool detections() {
  if (!kEmulated) return true;  // on a GPU these hang, or run with undefined results
#ifdef FK_CUDA_EMULATE
  Buffer<int> out(256);
  CHECK(fails_with("barrier divergence", "early_return<<<(1,1,1), (256,1,1)>>>, block (0,0,0): barrier divergence",
                   [&] { FK_LAUNCH(early_return, 1, 256, 0, 0)(out.ptr); }));
  CHECK(fails_with("different barriers", "threads wait at different barriers",
                   [&] { FK_LAUNCH(two_barriers, 2, 64, 0, 0)(out.ptr); }));
  CHECK(fails_with("mixed collectives", "cannot complete a collective",
                   [&] { FK_LAUNCH(mixed_collectives, 1, 32, 0, 0)(out.ptr); }));
  CHECK(fails_with("foreign mask", "does not name the calling lane",
                   [&] { FK_LAUNCH(foreign_mask, 1, 32, 0, 0)(out.ptr); }));
  CHECK(fails_with("trap", "block (1,0,0): thread (3,0,0) at selftest.cu",
                   [&] { FK_LAUNCH(trapping, 3, 32, 0, 0)(out.ptr); }));
  // The failure is reported by the next synchronising call when nobody asked cudaGetLastError.
  FK_LAUNCH(early_return, 1, 256, 0, 0)(out.ptr);
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure);
  CHECK(cudaGetLastError() == cudaSuccess);
  // The device works afterwards.
  FK_LAUNCH(ones, 4, 64, 0, 0)(out.ptr);
  CHECK_CUDA(cudaGetLastError());
  for (int v : out.get()) CHECK(v == 1);
#endif
  return true;
}

// ---- Invalid launch configurations ---------------------------------------------------------------

bool invalid_config() {
  Buffer<int> out(1024, std::vector<int>(1024, 0));
  const struct {
    dim3 grid, block;
    size_t smem;
  } bad[] = {
      {1, 2048, 0},
      {1, dim3(32, 32, 2), 0},
      {0, 32, 0},
      {1, 0, 0},
      {1, dim3(1, 1, 65), 0},
      {dim3(1, 65536), 32, 0},
      {1, 32, 48 * 1024 + 1},
  };
  for (const auto& b : bad) {
    FK_LAUNCH(ones, b.grid, b.block, b.smem, 0)(out.ptr);
    CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    CHECK(cudaGetLastError() == cudaSuccess);
  }
  for (int v : out.get()) CHECK(v == 0);  // none of them ran
  if (kEmulated) {
    cudaStream_t s;
    CHECK_CUDA(cudaStreamCreate(&s));
    CHECK_CUDA(cudaStreamDestroy(s));
    FK_LAUNCH(ones, 1, 32, 0, s)(out.ptr);  // a destroyed stream
    CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle);
  }
  FK_LAUNCH(ones, 1, 1024, 48 * 1024, 0)(out.ptr);  // the limits themselves are fine
  CHECK_CUDA(cudaGetLastError());
  return true;
}

// ---- Out of memory (run with FASTKERN_EMU_MEMORY_MB=64) ------------------------------------------

bool out_of_memory() {
  if (!kEmulated) return true;
  size_t free = 0, total = 0;
  CHECK_CUDA(cudaMemGetInfo(&free, &total));
  std::printf("INFO memory free=%zu total=%zu\n", free, total);
  CHECK(total == 64u << 20);
  void *a = nullptr, *b = nullptr;
  CHECK_CUDA(cudaMalloc(&a, 40u << 20));
  CHECK(cudaMalloc(&b, 40u << 20) == cudaErrorMemoryAllocation);
  CHECK(b == nullptr);
  CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK_CUDA(cudaMemGetInfo(&free, &total));
  CHECK(free == (64u << 20) - (40u << 20));
  CHECK_CUDA(cudaFree(a));
  CHECK_CUDA(cudaMalloc(&b, 40u << 20));
  CHECK_CUDA(cudaFree(b));
  return true;
}

// ---- The runtime API -----------------------------------------------------------------------------

__constant__ float coefficients[4];

__global__ void use_constants(float* out) { out[threadIdx.x] = coefficients[threadIdx.x % 4]; }

bool runtime_api() {
  int count = 0, device = -1;
  CHECK_CUDA(cudaGetDeviceCount(&count));
  CHECK(count >= 1);
  CHECK_CUDA(cudaSetDevice(0));
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK(device == 0);
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  CHECK(prop.maxThreadsPerBlock == 1024 && prop.warpSize == 32 && prop.sharedMemPerBlock == 48 * 1024);
  int sms = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  CHECK(sms == prop.multiProcessorCount && sms > 0);
  CHECK(std::strcmp(cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory") == 0);
  CHECK(std::strcmp(cudaGetErrorName(cudaErrorInvalidValue), "cudaErrorInvalidValue") == 0);

  std::vector<int> host(1000), back(1000);
  for (int i = 0; i < 1000; ++i) host[i] = i * 3;
  Buffer<int> a(1000), b(1000);
  CHECK_CUDA(cudaMemcpy(a.ptr, host.data(), 4000, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(b.ptr, a.ptr, 4000, cudaMemcpyDeviceToDevice));
  CHECK_CUDA(cudaMemcpy(back.data(), b.ptr, 4000, cudaMemcpyDeviceToHost));
  CHECK(back == host);
  CHECK_CUDA(cudaMemset(b.ptr, 0, 4000));
  CHECK(b.get() == std::vector<int>(1000, 0));

  cudaStream_t s;
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  CHECK_CUDA(cudaEventRecord(start, s));
  CHECK_CUDA(cudaMemsetAsync(b.ptr, 0xff, 4000, s));
  FK_LAUNCH(ones, 10, 100, 0, s)(b.ptr);
  CHECK_CUDA(cudaMemcpyAsync(back.data(), b.ptr, 4000, cudaMemcpyDeviceToHost, s));
  CHECK_CUDA(cudaEventRecord(stop, s));
  CHECK_CUDA(cudaStreamSynchronize(s));
  CHECK_CUDA(cudaEventSynchronize(stop));
  float ms = -1;
  CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
  CHECK(ms >= 0);
  CHECK(back == std::vector<int>(1000, 1));
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  CHECK_CUDA(cudaStreamDestroy(s));

  const float coef[4] = {1.5f, -2, 0.25f, 8};
  CHECK_CUDA(cudaMemcpyToSymbol(coefficients, coef, sizeof coef));
  Buffer<float> c(8);
  FK_LAUNCH(use_constants, 1, 8, 0, 0)(c.ptr);
  std::vector<float> cv = c.get();
  for (int i = 0; i < 8; ++i) CHECK(cv[i] == coef[i % 4]);

  if (kEmulated) {  // what a GPU would fault on, or answer otherwise
    CHECK(count == 1);
    CHECK(std::strcmp(prop.name, "fastkern SIMT emulator") == 0);
    CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice);
    CHECK(cudaMemcpy(back.data(), host.data(), 4000, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(a.ptr + 1, host.data(), 4000, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // past the end
    CHECK(cudaFree(host.data()) == cudaErrorInvalidValue);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    CHECK(cudaGetLastError() == cudaSuccess);
    void* fresh = nullptr;
    CHECK_CUDA(cudaMalloc(&fresh, 64));
    CHECK(reinterpret_cast<std::uintptr_t>(fresh) % 256 == 0);
    unsigned first = 0;
    CHECK_CUDA(cudaMemcpy(&first, fresh, 4, cudaMemcpyDeviceToHost));
    CHECK(first == 0xffffffffu);  // fresh device memory is poisoned
    CHECK_CUDA(cudaFree(fresh));
  }
  return true;
}

// ---- Launches from several host threads at once ---------------------------------------------------

bool host_threads() {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&failures] {
      for (int r = 0; r < 5; ++r)
        if (!block_reduce() || !warp_shuffle()) failures++;
    });
  for (std::thread& t : threads) t.join();
  return failures == 0;
}

// ---- Out-of-bounds accesses: under ASan these abort the process ------------------------------------

__global__ void write_past_end(float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.0f;  // <= : one element too far
}

__global__ void write_past_smem(float* out) {
  FK_DYNAMIC_SHARED(float, buf);
  buf[threadIdx.x + 1] = 1.0f;  // the last thread writes one past the launch's smem bytes
  __syncthreads();
  out[threadIdx.x] = buf[threadIdx.x];
}

bool oob_global() {
  Buffer<float> out(1000);
  FK_LAUNCH(write_past_end, 4, 256, 0, 0)(out.ptr, 1000);
  return cudaDeviceSynchronize() == cudaSuccess;  // only reached without ASan
}

bool oob_shared() {
  Buffer<float> out(64);
  FK_LAUNCH(write_past_smem, 1, 64, 64 * sizeof(float), 0)(out.ptr);
  return cudaDeviceSynchronize() == cudaSuccess;
}

// ---- Launch overhead -----------------------------------------------------------------------------

__global__ void empty_kernel() {}

bool bench() {
  const struct {
    unsigned blocks;
    int reps;
  } runs[] = {{1, 2000}, {1000, 10}};
  for (const auto& r : runs) {
    FK_LAUNCH(empty_kernel, r.blocks, 256, 0, 0)();  // warm up: stacks mapped, pages touched
    CHECK_CUDA(cudaDeviceSynchronize());
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < r.reps; ++i) FK_LAUNCH(empty_kernel, r.blocks, 256, 0, 0)();
    CHECK_CUDA(cudaDeviceSynchronize());
    double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / r.reps;
    std::printf("INFO bench empty kernel %u x 256 threads: %.1f us per launch\n", r.blocks, us);
  }
  return true;
}

// ---- Driver --------------------------------------------------------------------------------------

struct Case {
  const char* name;
  bool (*run)();
  bool by_default;
};
const Case kCases[] = {
    {"elementwise", elementwise, true},
    {"math", math, true},
    {"block_reduce", block_reduce, true},
    {"warp_shuffle", warp_shuffle, true},
    {"vote", vote, true},
    {"atomics", atomic_ops, true},
    {"dynamic_smem", dynamic_smem, true},
    {"shared_poison", shared_poison, true},
    {"missing_barrier", missing_barrier, true},
    {"detections", detections, true},
    {"invalid_config", invalid_config, true},
    {"runtime_api", runtime_api, true},
    {"host_threads", host_threads, true},
    {"out_of_memory", out_of_memory, false},  // with FASTKERN_EMU_MEMORY_MB=64
    {"oob_global", oob_global, false},        // under ASan: aborts
    {"oob_shared", oob_shared, false},        // under ASan: aborts
    {"bench", bench, false},
};

#ifdef FK_SELFTEST_LIBRARY
extern "C" int fk_selftest_main(int argc, char** argv) {
#else
int main(int argc, char** argv) {
#endif
  std::vector<const Case*> chosen;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "list") == 0) {
      for (const Case& c : kCases) std::printf("%s%s\n", c.name, c.by_default ? "" : " (not by default)");
      return 0;
    }
    const Case* found = nullptr;
    for (const Case& c : kCases)
      if (std::strcmp(c.name, argv[i]) == 0) found = &c;
    if (!found) {
      std::fprintf(stderr, "selftest: no case named %s (see `selftest list`)\n", argv[i]);
      return 2;
    }
    chosen.push_back(found);
  }
  if (chosen.empty())
    for (const Case& c : kCases)
      if (c.by_default) chosen.push_back(&c);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {  // an nvcc build without a GPU
    for (const Case* c : chosen) std::printf("SKIP %s (no CUDA device)\n", c->name);
    return 0;
  }
  int failed = 0;
  for (const Case* c : chosen) {
    const bool ok = c->run();
    std::printf("%s %s\n", ok ? "PASS" : "FAIL", c->name);
    std::fflush(stdout);
    failed += !ok;
  }
  return failed ? 1 : 0;
}
