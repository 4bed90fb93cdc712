// The CUDA backend, built when nvcc is found (FASTKERN_CUDA=AUTO). So far it answers
// which devices exist; device memory and kernels plug into Device::CUDA next.
#include <cuda_runtime.h>

namespace fk {

int cuda_device_count() {
  int n = 0;
  // No driver or no device reads as zero devices, not as an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace fk
