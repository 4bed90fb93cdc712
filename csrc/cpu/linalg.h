// Small dense factorisations for the CPU backend's table (core/backend.h describes them).
#pragma once
#include "../core/tensor.h"

namespace fk {

void cpu_lu(const Tensor& a, const Tensor& piv);
void cpu_lu_solve(const Tensor& lu, const Tensor& piv, const Tensor& b);
int64_t cpu_cholesky(const Tensor& a);

}  // namespace fk
