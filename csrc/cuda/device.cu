// The CUDA backend's device discovery: built by nvcc (FASTKERN_CUDA=AUTO or ON), or as host C++
// on the SIMT emulator (FASTKERN_CUDA=EMULATE, for tests), whose one device is the emulated one.
// Device memory and kernels plug into Device::CUDA next.
#include "runtime.h"

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
