// The CUDA backend's table. Its kernels and device allocator come next (csrc/cuda will
// mirror csrc/cpu's files); until then a CUDA tensor is refused with a clear error.
#include "../core/backend.h"

namespace fk {

const Backend& cuda_backend() {
  throw Error(ErrorKind::NotImplemented,
              str_cat("CUDA tensors are not implemented in fastkern yet: this build "
                      "found ",
                      cuda_device_count(), " CUDA device(s), but the CUDA kernels are still to come"));
}

}  // namespace fk
