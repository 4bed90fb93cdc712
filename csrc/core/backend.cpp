#include "backend.h"

namespace fk {

#ifdef FK_HAVE_CUDA
const Backend& cuda_backend();  // csrc/cuda/backend.cu
#else
int cuda_device_count() { return 0; }
#endif

const Backend& backend(Device device) {
  if (device == Device::CPU) return cpu_backend();
#ifdef FK_HAVE_CUDA
  return cuda_backend();
#else
  throw Error(ErrorKind::NotImplemented,
              "fastkern was built without CUDA support (no CUDA compiler was found when "
              "it was built), so CUDA tensors are not available");
#endif
}

}  // namespace fk
