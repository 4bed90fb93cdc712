// Small dense factorisations for the CPU backend's table (core/backend.h describes them).
#pragma once
#include "../core/tensor.h"

namespace fk {

void cpu_lu(const Tensor& a, const Tensor& piv);
void cpu_lu_solve(const Tensor& lu, const Tensor& piv, const Tensor& b);
int64_t cpu_cholesky(const Tensor& a);
void cpu_qr(const Tensor& a, const Tensor& q, const Tensor& r);
void cpu_eigh(const Tensor& a, const Tensor& w, const Tensor& v);
void cpu_svd(const Tensor& a, const Tensor& u, const Tensor& s, const Tensor& vh);

}  // namespace fk
