// provisional: the real-CUDA half of runtime.h (the emulation half comes from the simt branch)
#pragma once
#include <cuda_runtime.h>
#define FK_LAUNCH(kernel, grid, block, smem, stream) kernel<<<grid, block, smem, stream>>>
#define FK_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
