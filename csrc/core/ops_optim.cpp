// Fused optimizer updates: one pass over a parameter instead of a dozen small ops.
#include <cmath>

#include "autograd.h"
#include "ops.h"

namespace fk {

void adam_step_(const Tensor& p, const Tensor& grad, const Tensor& m, const Tensor& v, double lr, double beta1,
                double beta2, double eps, double weight_decay, bool decoupled, int64_t step) {
  for (const Tensor* t : {&grad, &m, &v})
    FK_CHECK(t->shape() == p.shape() && t->dtype() == p.dtype() && t->is_contiguous(), Runtime,
             "adam_step_: parameter, gradient and moments must share shape and dtype and be contiguous (parameter ",
             to_string(p.shape()), " ", dtype_name(p.dtype()), ", got ", to_string(t->shape()), " ",
             dtype_name(t->dtype()), ")");
  FK_CHECK(is_float(p.dtype()) && p.is_contiguous(), Runtime, "adam_step_: expected a contiguous floating point parameter");
  FK_CHECK(step >= 1, Value, "adam_step_: step counts from 1, got ", step);
  check_inplace(p, "adam_step_");
  const double bc1 = 1 - std::pow(beta1, double(step)), bc2 = std::sqrt(1 - std::pow(beta2, double(step)));
  dispatch_dtype(p.dtype(), [&](auto z) {
    using T = decltype(z);
    if constexpr (std::is_floating_point_v<T>) {
      T* pp = p.data<T>();
      const T* gp = grad.data<T>();
      T* mp = m.data<T>();
      T* vp = v.data<T>();
      const T b1 = T(beta1), b2 = T(beta2), step_size = T(lr / bc1), inv_bc2 = T(1 / bc2), e = T(eps);
      const T wd = T(weight_decay), shrink = T(1 - lr * weight_decay);
      const int64_t n = p.numel();
      for (int64_t i = 0; i < n; i++) {
        T g = gp[i];
        if (decoupled) pp[i] *= shrink;
        else g += wd * pp[i];
        mp[i] = b1 * mp[i] + (1 - b1) * g;
        vp[i] = b2 * vp[i] + (1 - b2) * g * g;
        pp[i] -= step_size * mp[i] / (std::sqrt(vp[i]) * inv_bc2 + e);
      }
    }
  });
  for (const Tensor* t : {&p, &m, &v}) t->bump_version();
}

}  // namespace fk
