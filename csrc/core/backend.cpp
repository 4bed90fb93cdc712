#include "backend.h"

namespace fk {

#ifdef FK_HAVE_CUDA
const Backend& cuda_backend();  // csrc/cuda/backend.cu
#else
[[noreturn]] static void no_cuda() {
  throw Error(ErrorKind::Runtime,
              "CUDA is not available: fastkern was built without CUDA support (no CUDA compiler was found when it "
              "was built)");
}
int cuda_device_count() { return 0; }
CudaMemoryStats cuda_memory_stats() { return {}; }
void cuda_reset_peak_memory() {}
void cuda_empty_cache() {}
void cuda_synchronize() { no_cuda(); }
std::string cuda_device_name() { no_cuda(); }
#endif

const Backend& backend(Device device) {
  if (device == Device::CPU) return cpu_backend();
#ifdef FK_HAVE_CUDA
  static const int devices = cuda_device_count();
  FK_CHECK(devices > 0, Runtime, "CUDA is not available: no CUDA device was found (fastkern.cuda.is_available() is ",
           "False)");
  return cuda_backend();
#else
  no_cuda();
#endif
}

}  // namespace fk
