// Fused optimizer updates: one pass over a parameter instead of a dozen small ops.
#include <cmath>

#include "autograd.h"
#include "backend.h"
#include "ops.h"

namespace fk {

void adam_step_(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, double lr, double beta1,
                double beta2, double eps, double weight_decay, bool decoupled, int64_t step) {
  for (const Tensor* t : {&grad, &m, &v})
    FK_CHECK(t->shape() == p.shape() && t->dtype() == p.dtype() && t->is_contiguous(), Runtime,
             "adam_step_: parameter, gradient and moments must share shape and dtype and be contiguous (parameter ",
             to_string(p.shape()), " ", dtype_name(p.dtype()), ", got ", to_string(t->shape()), " ",
             dtype_name(t->dtype()), ")");
  FK_CHECK(is_float(p.dtype()) && p.is_contiguous(), Runtime,
           "adam_step_: expected a contiguous floating point parameter");
  FK_CHECK(step >= 1, Value, "adam_step_: step counts from 1, got ", step);
  check_inplace(p, "adam_step_");
  const double bc1 = 1 - std::pow(beta1, double(step)), bc2 = std::sqrt(1 - std::pow(beta2, double(step)));
  const AdamStep h{beta1, beta2, lr / bc1, 1 / bc2, eps, weight_decay, 1 - lr * weight_decay, decoupled};
  backend(p.device()).adam(p, grad, m, v, h);
  for (const Tensor* t : {&p, &m, &v}) t->bump_version();
}

}  // namespace fk
