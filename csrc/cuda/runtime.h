// The one header through which fastkern's .cu files reach CUDA. Compiled by nvcc it is the real
// CUDA runtime; with FK_CUDA_EMULATE the same sources are compiled as host C++ against the SIMT
// emulator in emu/ (tests on machines without a GPU: see emu/README.md).
//
//   FK_LAUNCH(kernel, grid, block, smem, stream)(args...)   launches kernel<<<grid, block, smem, stream>>>
//   FK_DYNAMIC_SHARED(T, name);                            T* name: the launch's dynamic shared memory
//
// A kernel template with several template arguments goes in parentheses:
// FK_LAUNCH((k<float, 4>), ...). Errors are read as usual, with cudaGetLastError().
#pragma once

#ifdef FK_CUDA_EMULATE

#include "emu/simt.h"

#define FK_LAUNCH(kernel, grid, block, smem, stream) ::fk_emu::make_launch(kernel, #kernel, grid, block, smem, stream)
#define FK_DYNAMIC_SHARED(T, name) T* const name = reinterpret_cast<T*>(::fk_emu::detail::dynamic_shared())

#else

#include <cuda_runtime.h>

#define FK_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>
// One byte array for every kernel, cast to T: nvcc rejects `extern __shared__ T name[]` in a
// kernel template instantiated for two types T ("declaration is incompatible").
#define FK_DYNAMIC_SHARED(T, name)                                    \
  extern __shared__ __align__(16) unsigned char fk_dynamic_shared_[]; \
  T* const name = reinterpret_cast<T*>(fk_dynamic_shared_)

#endif
