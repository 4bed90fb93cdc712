// The SIMT emulator: what a .cu file of fastkern sees of CUDA when it is compiled as host C++
// (FK_CUDA_EMULATE; include it through ../runtime.h). The grid runs on the calling host thread,
// block after block; a block's threads are fibers that switch at __syncthreads() and at warp
// collectives, in an order shuffled from a seed, so that code missing a barrier sees different
// orders and fails. simt.cpp holds the scheduler and the runtime API; README.md says what is
// emulated and what is not.
#pragma once

#ifndef FK_CUDA_EMULATE
#error "emu/simt.h is the emulation build's CUDA: include runtime.h"
#endif
#ifndef __linux__
#error "the SIMT emulator needs Linux (ELF thread-local storage, ucontext)"
#endif

#include <math.h>  // the C math functions (expf, fmaxf, ...) in the global namespace, as in CUDA

#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>  // printf in kernels
#include <cstring>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- Qualifiers ----------------------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
// Shared memory is static storage, one copy per host thread: the blocks of a grid run one after
// another on the launching thread, so each block has the storage to itself. It is thread_local
// (not plain static) only so that the launch can find it and fill it with a poison pattern
// before each block: every thread_local of a module lives in its TLS segment (see simt.cpp).
// Write `__shared__ T x[N];` (static __shared__ works too); `extern __shared__` is
// FK_DYNAMIC_SHARED.
#define __shared__ thread_local
// __restrict__ is a keyword of g++ and clang++ already.

// ---- Built-in types ------------------------------------------------------------------------------

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};

// The vector types kernels use for wide loads, with CUDA's sizes and alignments.
#define FK_EMU_VEC2(T, name, align) \
  struct __align__(align) name {    \
    T x, y;                         \
  };                                \
  inline constexpr name make_##name(T x, T y) { return name{x, y}; }
#define FK_EMU_VEC3(T, name) \
  struct name {              \
    T x, y, z;               \
  };                         \
  inline constexpr name make_##name(T x, T y, T z) { return name{x, y, z}; }
#define FK_EMU_VEC4(T, name, align) \
  struct __align__(align) name {    \
    T x, y, z, w;                   \
  };                                \
  inline constexpr name make_##name(T x, T y, T z, T w) { return name{x, y, z, w}; }
FK_EMU_VEC4(char, char4, 4)
FK_EMU_VEC4(unsigned char, uchar4, 4)
FK_EMU_VEC2(int, int2, 8)
FK_EMU_VEC3(int, int3)
FK_EMU_VEC4(int, int4, 16)
FK_EMU_VEC2(unsigned int, uint2, 8)
FK_EMU_VEC4(unsigned int, uint4, 16)
FK_EMU_VEC2(long long, longlong2, 16)
FK_EMU_VEC2(unsigned long long, ulonglong2, 16)
FK_EMU_VEC2(float, float2, 8)
FK_EMU_VEC3(float, float3)
FK_EMU_VEC4(float, float4, 16)
FK_EMU_VEC2(double, double2, 16)
#undef FK_EMU_VEC2
#undef FK_EMU_VEC3
#undef FK_EMU_VEC4
inline constexpr uint3 make_uint3(unsigned int x, unsigned int y, unsigned int z) { return {x, y, z}; }

// ---- Runtime API types ---------------------------------------------------------------------------

// CUDA's codes, with its numbers.
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidSymbol = 13,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorAssert = 710,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxBlockDimY = 3,
  cudaDevAttrMaxBlockDimZ = 4,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrTotalConstantMemory = 9,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMaxRegistersPerBlock = 12,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

// The fields of CUDA's cudaDeviceProp that describe the emulated device.
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major;
  int minor;
  int multiProcessorCount;
  int maxThreadsPerMultiProcessor;
  int l2CacheSize;
  size_t sharedMemPerMultiprocessor;
  size_t sharedMemPerBlockOptin;
};

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;
struct CUevent_st;
typedef struct CUevent_st* cudaEvent_t;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02

// ---- Runtime API (simt.cpp) ----------------------------------------------------------------------
// Work on a stream runs at the call, in order (a stream is an in-order queue whose work is done
// when the call returns); synchronising therefore waits for nothing, but it is where a kernel's
// failure is reported, as on a GPU.

const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);

cudaError_t cudaMalloc(void** devPtr, size_t size);
cudaError_t cudaFree(void* devPtr);
cudaError_t cudaMallocHost(void** ptr, size_t size);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemset(void* devPtr, int value, size_t count);
cudaError_t cudaMemsetAsync(void* devPtr, int value, size_t count, cudaStream_t stream = 0);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value);
template <class F>
cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}
// Blocks of that size that fit on one emulated multiprocessor (2048 threads, 228 KB of shared memory).
template <class F>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, F* func, int blockSize, size_t dynamicSMemSize) {
  if (!blocks || !func || blockSize <= 0 || blockSize > 1024) return cudaErrorInvalidValue;
  int n = 2048 / blockSize;
  if (dynamicSMemSize > 0 && size_t(n) * dynamicSMemSize > 228 * 1024) n = int(228 * 1024 / dynamicSMemSize);
  *blocks = n < 32 ? n : 32;
  return cudaSuccess;
}

// __constant__ variables are ordinary globals.
template <class T>
cudaError_t cudaMemcpyToSymbol(const T& symbol, const void* src, size_t count, size_t offset = 0,
                               cudaMemcpyKind = cudaMemcpyHostToDevice) {
  if (offset > sizeof(T) || count > sizeof(T) - offset || (count && !src)) return cudaErrorInvalidValue;
  if (count) std::memcpy(reinterpret_cast<char*>(const_cast<T*>(&symbol)) + offset, src, count);
  return cudaSuccess;
}
template <class T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t count, size_t offset = 0,
                                 cudaMemcpyKind = cudaMemcpyDeviceToHost) {
  if (offset > sizeof(T) || count > sizeof(T) - offset || (count && !dst)) return cudaErrorInvalidValue;
  if (count) std::memcpy(dst, reinterpret_cast<const char*>(&symbol) + offset, count);
  return cudaSuccess;
}

// ---- The emulator's own interface ----------------------------------------------------------------

namespace fk_emu {

// The seed of the thread and block orders (FASTKERN_EMU_SEED at start-up). Seed 0 runs threads
// and blocks in ascending order, the order a naive emulator would use.
void set_seed(std::uint64_t seed);
std::uint64_t seed();
// Caps the memory cudaMalloc hands out, in bytes; 0: no cap (FASTKERN_EMU_MEMORY_MB at start-up).
void set_memory_limit(std::size_t bytes);
// What the last failed launch did wrong (kernel, block, threads, source line), or "" if none failed.
std::string last_failure();

namespace detail {

// The current thread's coordinates, set by the scheduler before it resumes a fiber.
struct Coords {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
extern Coords g_coords;
inline const Coords& coords() { return g_coords; }

// What a fiber can wait at. The order is relied upon: barriers first, then warp collectives.
enum class Op : std::uint8_t {
  Barrier,
  BarrierCount,
  BarrierAnd,
  BarrierOr,  // __syncthreads and its reducing forms
  SyncWarp,
  Ballot,
  Any,
  All,
  ShflIdx,
  ShflUp,
  ShflDown,
  ShflXor,
  ReduceAdd,
  ReduceMinU,
  ReduceMaxU,
  ReduceMinI,
  ReduceMaxI,
  ReduceAnd,
  ReduceOr,
  ReduceXor,
};

// Suspends the calling thread at a block barrier (mask unused) or a warp collective among the
// lanes of mask, until its partners arrive; returns the result for this thread (a shuffled value's
// bits, the ballot, the barrier's count...). value carries this thread's operand.
std::uint64_t collective(Op op, unsigned mask, std::uint64_t value, int arg, int width,
                         const std::source_location& where);
// __activemask(): the lanes of the caller's warp that have not exited.
unsigned active_mask();
// Fails the launch (cudaErrorLaunchFailure) with this thread's location; never returns.
[[noreturn]] void trap(const std::source_location& where);
// The launch's dynamic shared memory: exactly its smem bytes, poisoned before each block.
void* dynamic_shared();

struct LaunchSpec {
  const char* name;
  const void* kernel;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  void (*invoke)(void*);  // runs the kernel body for the current thread
  void* args;
};
cudaError_t launch(const LaunchSpec& spec);

template <class T>
std::uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  std::uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}
template <class T>
T from_bits(std::uint64_t u) {
  T v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

template <class F>
void invoke(void* f) {
  (*static_cast<F*>(f))();
}

}  // namespace detail

// FK_LAUNCH(kernel, grid, block, smem, stream)(args...): the arguments are converted to the
// kernel's parameter types once, as CUDA copies them into the launch, and every thread gets its
// own copy (a kernel may modify its by-value parameters).
template <class... P>
struct Launch {
  void (*kernel)(P...);
  const char* name;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;

  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "FK_LAUNCH: wrong number of kernel arguments");
    std::tuple<P...> params(std::forward<A>(args)...);
    auto body = [this, &params] { std::apply(kernel, params); };
    detail::launch({name, reinterpret_cast<const void*>(kernel), grid, block, smem, stream,
                    &detail::invoke<decltype(body)>, &body});
  }
};

template <class... P>
Launch<P...> make_launch(void (*kernel)(P...), const char* name, dim3 grid, dim3 block, size_t smem,
                         cudaStream_t stream) {
  return {kernel, name, grid, block, smem, stream};
}

}  // namespace fk_emu

// ---- Built-in variables --------------------------------------------------------------------------

#define threadIdx (::fk_emu::detail::coords().thread_idx)
#define blockIdx (::fk_emu::detail::coords().block_idx)
#define blockDim (::fk_emu::detail::coords().block_dim)
#define gridDim (::fk_emu::detail::coords().grid_dim)
constexpr int warpSize = 32;

// ---- Synchronisation and warp collectives --------------------------------------------------------
// Each takes the call site as a defaulted last argument, for the emulator's error messages.

inline void __syncthreads(std::source_location where = std::source_location::current()) {
  ::fk_emu::detail::collective(::fk_emu::detail::Op::Barrier, 0, 0, 0, 0, where);
}
inline int __syncthreads_count(int pred, std::source_location where = std::source_location::current()) {
  return int(::fk_emu::detail::collective(::fk_emu::detail::Op::BarrierCount, 0, pred != 0, 0, 0, where));
}
inline int __syncthreads_and(int pred, std::source_location where = std::source_location::current()) {
  return int(::fk_emu::detail::collective(::fk_emu::detail::Op::BarrierAnd, 0, pred != 0, 0, 0, where));
}
inline int __syncthreads_or(int pred, std::source_location where = std::source_location::current()) {
  return int(::fk_emu::detail::collective(::fk_emu::detail::Op::BarrierOr, 0, pred != 0, 0, 0, where));
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location where = std::source_location::current()) {
  ::fk_emu::detail::collective(::fk_emu::detail::Op::SyncWarp, mask, 0, 0, 32, where);
}
inline unsigned __ballot_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  return unsigned(::fk_emu::detail::collective(::fk_emu::detail::Op::Ballot, mask, pred != 0, 0, 32, where));
}
inline int __any_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  return int(::fk_emu::detail::collective(::fk_emu::detail::Op::Any, mask, pred != 0, 0, 32, where));
}
inline int __all_sync(unsigned mask, int pred, std::source_location where = std::source_location::current()) {
  return int(::fk_emu::detail::collective(::fk_emu::detail::Op::All, mask, pred != 0, 0, 32, where));
}
inline unsigned __activemask() { return ::fk_emu::detail::active_mask(); }

// Overloads, not a template, so that overload resolution picks the type nvcc would (a char
// argument shuffles as an int).
#define FK_EMU_SHFL(T)                                                                                             \
  inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize,                                    \
                       std::source_location where = std::source_location::current()) {                             \
    using namespace ::fk_emu::detail;                                                                              \
    return from_bits<T>(collective(Op::ShflIdx, mask, to_bits(var), srcLane, width, where));                       \
  }                                                                                                                \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,                              \
                          std::source_location where = std::source_location::current()) {                          \
    using namespace ::fk_emu::detail;                                                                              \
    return from_bits<T>(collective(Op::ShflUp, mask, to_bits(var), delta > 64 ? 64 : int(delta), width, where));   \
  }                                                                                                                \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,                            \
                            std::source_location where = std::source_location::current()) {                        \
    using namespace ::fk_emu::detail;                                                                              \
    return from_bits<T>(collective(Op::ShflDown, mask, to_bits(var), delta > 64 ? 64 : int(delta), width, where)); \
  }                                                                                                                \
  inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize,                               \
                           std::source_location where = std::source_location::current()) {                         \
    using namespace ::fk_emu::detail;                                                                              \
    return from_bits<T>(collective(Op::ShflXor, mask, to_bits(var), laneMask, width, where));                      \
  }
FK_EMU_SHFL(int)
FK_EMU_SHFL(unsigned int)
FK_EMU_SHFL(long)
FK_EMU_SHFL(unsigned long)
FK_EMU_SHFL(long long)
FK_EMU_SHFL(unsigned long long)
FK_EMU_SHFL(float)
FK_EMU_SHFL(double)
#undef FK_EMU_SHFL

// sm_80's warp reductions.
#define FK_EMU_REDUCE(name, T, op)                                                                      \
  inline T name(unsigned mask, T value, std::source_location where = std::source_location::current()) { \
    using namespace ::fk_emu::detail;                                                                   \
    return from_bits<T>(collective(Op::op, mask, to_bits(value), 0, 32, where));                        \
  }
FK_EMU_REDUCE(__reduce_add_sync, unsigned, ReduceAdd)
FK_EMU_REDUCE(__reduce_add_sync, int, ReduceAdd)
FK_EMU_REDUCE(__reduce_min_sync, unsigned, ReduceMinU)
FK_EMU_REDUCE(__reduce_min_sync, int, ReduceMinI)
FK_EMU_REDUCE(__reduce_max_sync, unsigned, ReduceMaxU)
FK_EMU_REDUCE(__reduce_max_sync, int, ReduceMaxI)
FK_EMU_REDUCE(__reduce_and_sync, unsigned, ReduceAnd)
FK_EMU_REDUCE(__reduce_or_sync, unsigned, ReduceOr)
FK_EMU_REDUCE(__reduce_xor_sync, unsigned, ReduceXor)
#undef FK_EMU_REDUCE

// One host thread runs all of a launch's threads, so fences order nothing that is not ordered
// already; they stay real fences for host code that might look.
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap(std::source_location where = std::source_location::current()) {
  ::fk_emu::detail::trap(where);
}
inline void __nanosleep(unsigned) {}
long long clock64();
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// ---- Atomics -------------------------------------------------------------------------------------
// CUDA's overload set (no more: code that builds here must build with nvcc), relaxed order.

namespace fk_emu::detail {
template <class T, class F>
T atomic_update(T* address, F f) {
  std::atomic_ref<T> a(*address);
  T old = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {}
  return old;
}
}  // namespace fk_emu::detail

#define FK_EMU_ATOMIC_INT(T)                                                                               \
  inline T atomicAdd(T* a, T v) { return std::atomic_ref<T>(*a).fetch_add(v, std::memory_order_relaxed); } \
  inline T atomicExch(T* a, T v) { return std::atomic_ref<T>(*a).exchange(v, std::memory_order_relaxed); } \
  inline T atomicAnd(T* a, T v) { return std::atomic_ref<T>(*a).fetch_and(v, std::memory_order_relaxed); } \
  inline T atomicOr(T* a, T v) { return std::atomic_ref<T>(*a).fetch_or(v, std::memory_order_relaxed); }   \
  inline T atomicXor(T* a, T v) { return std::atomic_ref<T>(*a).fetch_xor(v, std::memory_order_relaxed); } \
  inline T atomicCAS(T* a, T compare, T v) {                                                               \
    std::atomic_ref<T>(*a).compare_exchange_strong(compare, v, std::memory_order_relaxed);                 \
    return compare;                                                                                        \
  }
FK_EMU_ATOMIC_INT(int)
FK_EMU_ATOMIC_INT(unsigned int)
FK_EMU_ATOMIC_INT(unsigned long long)
#undef FK_EMU_ATOMIC_INT
inline int atomicSub(int* a, int v) { return std::atomic_ref<int>(*a).fetch_sub(v, std::memory_order_relaxed); }
inline unsigned atomicSub(unsigned* a, unsigned v) {
  return std::atomic_ref<unsigned>(*a).fetch_sub(v, std::memory_order_relaxed);
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short compare, unsigned short v) {
  std::atomic_ref<unsigned short>(*a).compare_exchange_strong(compare, v, std::memory_order_relaxed);
  return compare;
}
inline float atomicAdd(float* a, float v) {
  return ::fk_emu::detail::atomic_update(a, [v](float old) { return old + v; });
}
inline double atomicAdd(double* a, double v) {
  return ::fk_emu::detail::atomic_update(a, [v](double old) { return old + v; });
}
inline float atomicExch(float* a, float v) { return std::atomic_ref<float>(*a).exchange(v, std::memory_order_relaxed); }
#define FK_EMU_ATOMIC_MINMAX(T)                                                          \
  inline T atomicMax(T* a, T v) {                                                        \
    return ::fk_emu::detail::atomic_update(a, [v](T old) { return old < v ? v : old; }); \
  }                                                                                      \
  inline T atomicMin(T* a, T v) {                                                        \
    return ::fk_emu::detail::atomic_update(a, [v](T old) { return v < old ? v : old; }); \
  }
FK_EMU_ATOMIC_MINMAX(int)
FK_EMU_ATOMIC_MINMAX(unsigned int)
FK_EMU_ATOMIC_MINMAX(long long)
FK_EMU_ATOMIC_MINMAX(unsigned long long)
#undef FK_EMU_ATOMIC_MINMAX
inline unsigned atomicInc(unsigned* a, unsigned limit) {
  return ::fk_emu::detail::atomic_update(a, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* a, unsigned limit) {
  return ::fk_emu::detail::atomic_update(a,
                                         [limit](unsigned old) { return old == 0 || old > limit ? limit : old - 1; });
}

// ---- Device math the host lacks ------------------------------------------------------------------
// The C functions (expf, logf, sqrtf, tanhf, erff, fmaxf, floorf, ...) come from <math.h>. glibc
// declares __expf and its kin without defining them for programs; the definitions below take
// over those declarations (hence noexcept, to match them).

inline float __expf(float x) noexcept { return expf(x); }
inline float __exp10f(float x) noexcept { return powf(10.0f, x); }
inline float __logf(float x) noexcept { return logf(x); }
inline float __log2f(float x) noexcept { return log2f(x); }
inline float __log10f(float x) noexcept { return log10f(x); }
inline float __sinf(float x) noexcept { return sinf(x); }
inline float __cosf(float x) noexcept { return cosf(x); }
inline float __tanf(float x) noexcept { return tanf(x); }
inline float __powf(float x, float y) noexcept { return powf(x, y); }
inline float __fdividef(float x, float y) noexcept { return x / y; }
inline float __saturatef(float x) noexcept { return x >= 1.0f ? 1.0f : x > 0.0f ? x : 0.0f; }  // NaN -> 0
inline float __fmaf_rn(float x, float y, float z) noexcept { return fmaf(x, y, z); }
inline double __fma_rn(double x, double y, double z) noexcept { return fma(x, y, z); }
inline float __fadd_rn(float x, float y) noexcept { return x + y; }
inline float __fmul_rn(float x, float y) noexcept { return x * y; }
inline float __fdiv_rn(float x, float y) noexcept { return x / y; }
inline float __frcp_rn(float x) noexcept { return 1.0f / x; }
inline float __fsqrt_rn(float x) noexcept { return sqrtf(x); }
inline double __dadd_rn(double x, double y) noexcept { return x + y; }
inline double __dmul_rn(double x, double y) noexcept { return x * y; }
inline float rsqrtf(float x) noexcept { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) noexcept { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) noexcept { return 1.0f / cbrtf(x); }
inline double rcbrt(double x) noexcept { return 1.0 / cbrt(x); }
inline float normcdff(float x) noexcept { return 0.5f * erfcf(-x * 0.70710678118654752f); }
inline double normcdf(double x) noexcept { return 0.5 * erfc(-x * 0.70710678118654752); }

inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(unsigned(x)); }
inline int __clzll(long long x) { return std::countl_zero((unsigned long long)x); }
inline int __ffs(int x) { return x ? std::countr_zero(unsigned(x)) + 1 : 0; }
inline int __ffsll(long long x) { return x ? std::countr_zero((unsigned long long)x) + 1 : 0; }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1);
  return r;
}
inline unsigned __umulhi(unsigned x, unsigned y) { return unsigned((unsigned long long)x * y >> 32); }
inline int __mulhi(int x, int y) { return int((long long)x * y >> 32); }
inline unsigned long long __umul64hi(unsigned long long x, unsigned long long y) {
  return (unsigned long long)((unsigned __int128)x * y >> 64);
}
inline long long __mul64hi(long long x, long long y) { return (long long)((__int128)x * y >> 64); }

// CUDA's min/max overloads (the floating ones are fminf/fmin: a NaN operand loses).
#define FK_EMU_MINMAX(R, A, B)                                                                                     \
  inline R min(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(a) : static_cast<R>(b); } \
  inline R max(A a, B b) { return static_cast<R>(a) < static_cast<R>(b) ? static_cast<R>(b) : static_cast<R>(a); }
FK_EMU_MINMAX(int, int, int)
FK_EMU_MINMAX(unsigned int, unsigned int, unsigned int)
FK_EMU_MINMAX(unsigned int, int, unsigned int)
FK_EMU_MINMAX(unsigned int, unsigned int, int)
FK_EMU_MINMAX(long, long, long)
FK_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
FK_EMU_MINMAX(unsigned long, long, unsigned long)
FK_EMU_MINMAX(unsigned long, unsigned long, long)
FK_EMU_MINMAX(long long, long long, long long)
FK_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
FK_EMU_MINMAX(unsigned long long, long long, unsigned long long)
FK_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef FK_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }
inline unsigned umin(unsigned a, unsigned b) { return min(a, b); }
inline unsigned umax(unsigned a, unsigned b) { return max(a, b); }
inline long long llmin(long long a, long long b) { return min(a, b); }
inline long long llmax(long long a, long long b) { return max(a, b); }
inline unsigned long long ullmin(unsigned long long a, unsigned long long b) { return min(a, b); }
inline unsigned long long ullmax(unsigned long long a, unsigned long long b) { return max(a, b); }
