// Picks the kernel table for this CPU once, from what the CPU reports.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace fk {

#define FK_DECLARE_ISA(ns)         \
  namespace ns {                   \
  extern const CpuKernels kernels; \
  }
FK_DECLARE_ISA(base)
#ifdef FK_HAVE_X86_ISAS
FK_DECLARE_ISA(avx2)
FK_DECLARE_ISA(avx512)
#endif

static const CpuKernels* pick() {
  // FASTKERN_CPU_ISA=base|avx2 forces a lower path (testing, benchmarking).
  const char* force = std::getenv("FASTKERN_CPU_ISA");
  auto allowed = [&](const char* name) { return !force || std::strcmp(force, name) == 0; };
#ifdef FK_HAVE_X86_ISAS
  __builtin_cpu_init();
  if (allowed("avx512") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return &avx512::kernels;
  if (allowed("avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &avx2::kernels;
#endif
  (void)allowed;
  return &base::kernels;
}

const CpuKernels& cpu_kernels() {
  static const CpuKernels* k = pick();
  return *k;
}

}  // namespace fk
