#include "backend.h"

namespace fk {

const Backend& backend(Device device) {
  FK_CHECK(device == Device::CPU, NotImplemented, "CUDA tensors are not implemented in fastkern yet");
  return cpu_backend();
}

}  // namespace fk
