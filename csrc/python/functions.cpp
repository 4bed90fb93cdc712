// Module-level functions: the ops that are a Tensor method and a function both, creation,
// autograd, neural-network ops, threads and backends.
#include "convert.h"
#include "../core/backend.h"
// The CPU backend's own settings: its thread pool and the instruction set it picked.
#include "../cpu/conv_driver.h"
#include "../cpu/kernels.h"
#include "../cpu/parallel.h"

namespace {

// f with torch's out= as a last argument: the result written into out (write_out, ops.h), and out
// returned; f's own result when out is None. For a lambda or a plain function of tensor result.
template <class F, class... A>
auto out_wrapper(const char* name, F f) {
  return [name, f](A... a, nb::handle out) -> nb::object {
    Tensor r = f(a...);
    if (out.is_none()) return nb::cast(std::move(r));
    const Tensor& o = nb::cast<const Tensor&>(out);
    const Dims had = o.shape();
    if (write_out(name, o, r)) {
      const std::string msg = str_cat(
          "An output with one or more elements was resized since it had shape ", to_string(had),
          ", which does not match the required output shape ", to_string(r.shape()),
          ". This behavior is deprecated, and in a future PyTorch release outputs will not be resized unless they "
          "have zero elements.");
      if (PyErr_WarnEx(PyExc_UserWarning, msg.c_str(), 1) < 0) throw nb::python_error();
    }
    return nb::borrow(out);
  };
}
template <class F, class R, class C, class... A>
auto with_out_of(const char* name, F f, R (C::*)(A...) const) {
  return out_wrapper<F, A...>(name, f);
}
template <class F>
auto with_out(const char* name, F f) {
  return with_out_of(name, f, &F::operator());
}
template <class R, class... A>
auto with_out(const char* name, R (*f)(A...)) {
  return out_wrapper<R (*)(A...), A...>(name, f);
}

}  // namespace

void bind_functions(nb::module_& m, nb::class_<Tensor>& cls) {
  // Defines a method and the module function of the same name (x.exp() and fastkern.exp(x)).
  auto both = [&](const char* name, auto f, auto... extra) {
    cls.def(name, f, extra...);
    m.def(name, f, "input"_a, extra...);
  };
  // The same, the module function with torch's out= (fastkern.exp(x, out=y)).
  auto both_out = [&](const char* name, auto f, auto... extra) {
    cls.def(name, f, extra...);
    m.def(name, with_out(name, f), "input"_a, extra..., nb::kw_only(), "out"_a = nb::none());
  };

  // Elementwise ops from the op list (csrc/core/op_list.h): x.exp(), x.exp_(), fastkern.exp(x),
  // x.mul(y), fastkern.mul(x, y), ...; add and sub (alpha) and the logical forms below.
  nb::list unary_names, binary_names;
  for (int i = 0; i < kNumUnOps; i++) {
    const UnOp o = UnOp(i);
    both_out(kUnaryNames[i], [o](const Tensor& a) { return unary(o, a); });
    cls.def((std::string(kUnaryNames[i]) + "_").c_str(), [o](nb::handle self) {
      unary_(o, nb::cast<const Tensor&>(self));
      return self;
    });
    unary_names.append(kUnaryNames[i]);
  }
  for (int i = 0; i < kNumBinOps; i++) {
    const BinOp o = BinOp(i);
    if (o == BinOp::ReluGrad) continue;  // internal: relu's backward
    binary_names.append(kBinaryNames[i]);
    if (o == BinOp::Add || o == BinOp::Sub) continue;
    both_out(
        kBinaryNames[i], [o](const Tensor& a, nb::handle other) { return binary(o, a, operand(a, other)); }, "other"_a);
  }
  m.def(  // fastkern.pow(2, x): a number to tensor powers, as torch.pow's overload
      "pow",
      [](nb::handle base, const Tensor& exponent) {
        auto s = to_scalar(base);
        if (!s) throw nb::type_error("pow(): expected a tensor or a number as the base");
        return binary(BinOp::Pow, exponent, *s, true);
      },
      "self"_a, "exponent"_a);
  both_out(
      "true_divide", [](const Tensor& a, nb::handle other) { return binary(BinOp::Div, a, operand(a, other)); },
      "other"_a);
  static const std::pair<const char*, BinOp> logical_ops[] = {
      {"logical_and", BinOp::And}, {"logical_or", BinOp::Or}, {"logical_xor", BinOp::Xor}};
  for (const auto& [name, op] : logical_ops) {
    const BinOp o = op;
    both_out(name, [o](const Tensor& a, nb::handle other) { return logical(o, a, operand(a, other)); }, "other"_a);
  }
  both_out("logical_not", &logical_not);
  m.attr("_unary_ops") = nb::tuple(unary_names);  // for the test that every op has a reference
  m.attr("_binary_ops") = nb::tuple(binary_names);
  both_out(
      "add",
      [](const Tensor& a, nb::handle o, nb::handle alpha) {
        return add_scaled(BinOp::Add, a, operand(a, o), alpha_arg(alpha));
      },
      "other"_a, "alpha"_a = nb::none());
  both_out(
      "sub",
      [](const Tensor& a, nb::handle o, nb::handle alpha) {
        return add_scaled(BinOp::Sub, a, operand(a, o), alpha_arg(alpha));
      },
      "other"_a, "alpha"_a = nb::none());
  both_out(
      "clamp", [](const Tensor& a, nb::handle lo, nb::handle hi) { return clamp(a, opt_scalar(lo), opt_scalar(hi)); },
      "min"_a = nb::none(), "max"_a = nb::none());
  both_out(
      "clip", [](const Tensor& a, nb::handle lo, nb::handle hi) { return clamp(a, opt_scalar(lo), opt_scalar(hi)); },
      "min"_a = nb::none(), "max"_a = nb::none());
  both_out("matmul", [](const Tensor& a, const Tensor& b) { return matmul(a, b); }, "other"_a);
  both_out("mm", [](const Tensor& a, const Tensor& b) { return matmul_ranked("mm", a, b, 2, 2); }, "mat2"_a);
  both_out("bmm", [](const Tensor& a, const Tensor& b) { return matmul_ranked("bmm", a, b, 3, 3); }, "mat2"_a);
  both_out("mv", [](const Tensor& a, const Tensor& b) { return matmul_ranked("mv", a, b, 2, 1); }, "vec"_a);
  both_out("dot", [](const Tensor& a, const Tensor& b) { return matmul_ranked("dot", a, b, 1, 1); }, "tensor"_a);
  both("det", &det);
  both("inverse", &inv);
  m.def("_linalg_solve", &solve, "A"_a, "B"_a);  // fastkern.linalg (Python) names these
  m.def("_linalg_cholesky", &cholesky, "A"_a);
  // out[indices] = value, or += with accumulate (repeated indices add up): scatter_add's forward.
  m.def("_scatter_nd_", &scatter_nd_, "out"_a, "indices"_a, "value"_a, "accumulate"_a);
  m.def("_linalg_qr", &qr, "A"_a);
  m.def("_linalg_eigh", &eigh, "A"_a);
  m.def("_linalg_svd", [](const Tensor& a) {
    auto [u, s, vh] = svd(a);
    return nb::make_tuple(u, s, vh);
  });
  both_out(
      "addmm", [](const Tensor& a, const Tensor& m1, const Tensor& m2) { return addmm(a, m1, m2); }, "mat1"_a,
      "mat2"_a);
  both(
      "squeeze",
      [](const Tensor& a, nb::handle dim) {
        return dim.is_none() ? squeeze(a, std::nullopt) : squeeze_dims(a, to_dims(dim));
      },
      "dim"_a = nb::none());
  both("unsqueeze", [](const Tensor& a, int64_t d) { return unsqueeze(a, d); }, "dim"_a);
  both(
      "flatten", [](const Tensor& a, int64_t s, int64_t e) { return flatten(a, s, e); }, "start_dim"_a = 0,
      "end_dim"_a = -1);
  both("transpose", [](const Tensor& a, int64_t d0, int64_t d1) { return transpose(a, d0, d1); }, "dim0"_a, "dim1"_a);
  both("select", [](const Tensor& a, int64_t d, int64_t i) { return select(a, d, i); }, "dim"_a, "index"_a);
  both(
      "narrow", [](const Tensor& a, int64_t d, int64_t s, int64_t len) { return narrow(a, d, s, len); }, "dim"_a,
      "start"_a, "length"_a);
  both_out("nonzero", [](const Tensor& a) { return nonzero(a); });

  // reductions
  both_out(
      "sum",
      [](const Tensor& a, nb::handle dim, bool keepdim, nb::handle dtype) {
        return sum(a, to_dimlist(dim), keepdim, opt_dtype(dtype));
      },
      "dim"_a = nb::none(), "keepdim"_a = false, "dtype"_a = nb::none());
  both_out(
      "mean", [](const Tensor& a, nb::handle dim, bool keepdim) { return mean(a, to_dimlist(dim), keepdim); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  both_out(
      "prod", [](const Tensor& a, nb::handle dim, bool keepdim) { return prod(a, to_dimlist(dim), keepdim); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  both_out(
      "amax", [](const Tensor& a, nb::handle dim, bool keepdim) { return amax(a, to_dimlist(dim), keepdim); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  both_out(
      "amin", [](const Tensor& a, nb::handle dim, bool keepdim) { return amin(a, to_dimlist(dim), keepdim); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  nb::object namedtuple = nb::module_::import_("collections").attr("namedtuple");
  for (const char* name : {"max", "min"}) {
    const bool is_max = name[1] == 'a';
    nb::object result_type = namedtuple(std::string("return_types_") + name, nb::make_tuple("values", "indices"));
    both(
        name,
        [is_max, result_type](const Tensor& a, nb::handle dim, bool keepdim) -> nb::object {
          if (dim.is_none()) return nb::cast(max_all(a, is_max));
          if (nb::isinstance<Tensor>(dim))  // x.max(other) is maximum
            return nb::cast(binary(is_max ? BinOp::Max : BinOp::Min, a, nb::cast<const Tensor&>(dim)));
          auto [v, i] = max_dim(a, to_int64(dim, "dim", ErrorKind::Index), keepdim, is_max);
          return result_type(v, i);
        },
        "dim"_a = nb::none(), "keepdim"_a = false);
  }
  both_out(
      "argmax", [](const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argmax(a, dim, keepdim, true); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  both_out(
      "argmin",
      [](const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argmax(a, dim, keepdim, false); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  both_out(
      "all", [](const Tensor& a, nb::handle dim, bool keepdim) { return all(a, to_dimlist(dim), keepdim); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  both_out(
      "any", [](const Tensor& a, nb::handle dim, bool keepdim) { return any(a, to_dimlist(dim), keepdim); },
      "dim"_a = nb::none(), "keepdim"_a = false);
  // var/std(dim, unbiased, keepdim) and var/std(dim, correction=, keepdim=)
  auto correction = [](nb::handle unbiased, nb::handle corr) {
    if (!corr.is_none()) return nb::cast<double>(nb::float_(corr));
    return unbiased.is_none() || nb::cast<bool>(unbiased) ? 1.0 : 0.0;
  };
  both_out(
      "var",
      [correction](const Tensor& a, nb::handle dim, nb::handle unbiased, bool keepdim, nb::handle corr) {
        return var(a, to_dimlist(dim), correction(unbiased, corr), keepdim);
      },
      "dim"_a = nb::none(), "unbiased"_a = nb::none(), "keepdim"_a = false, "correction"_a = nb::none());
  both_out(
      "std",
      [correction](const Tensor& a, nb::handle dim, nb::handle unbiased, bool keepdim, nb::handle corr) {
        return std_(a, to_dimlist(dim), correction(unbiased, corr), keepdim);
      },
      "dim"_a = nb::none(), "unbiased"_a = nb::none(), "keepdim"_a = false, "correction"_a = nb::none());
  both_out(
      "logsumexp", [](const Tensor& a, nb::handle dim, bool keepdim) { return logsumexp(a, to_dimlist(dim), keepdim); },
      "dim"_a, "keepdim"_a = false);
  both("softmax", [](const Tensor& a, int64_t dim) { return softmax(a, dim); }, "dim"_a);
  both("log_softmax", [](const Tensor& a, int64_t dim) { return log_softmax(a, dim); }, "dim"_a);

  // module-level functions
  const auto out_kw = "out"_a = nb::none();
  m.def("where",
        with_out("where",
                 [](const Tensor& c, nb::handle a, nb::handle b) {
                   // Numbers take the other operand's dtype (or the default dtype when both are numbers).
                   const bool ta = nb::isinstance<Tensor>(a), tb = nb::isinstance<Tensor>(b);
                   Tensor A = ta ? nb::cast<Tensor>(a) : Tensor(), B = tb ? nb::cast<Tensor>(b) : Tensor();
                   if (!ta) A = tb ? operand(B, a) : operand(scalar_tensor(Scalar::of(0), DType::Float32), a);
                   if (!tb) B = operand(A, b);
                   return where(c, A, B);
                 }),
        "condition"_a, "input"_a, "other"_a, nb::kw_only(), out_kw);
  auto cat_ = [](const std::vector<Tensor>& ts, int64_t dim) { return cat(ts, dim); };
  m.def("cat", with_out("cat", cat_), "tensors"_a, "dim"_a = 0, nb::kw_only(), out_kw);
  m.def("concat", with_out("concat", cat_), "tensors"_a, "dim"_a = 0, nb::kw_only(), out_kw);
  m.def("stack", with_out("stack", [](const std::vector<Tensor>& ts, int64_t dim) { return stack(ts, dim); }),
        "tensors"_a, "dim"_a = 0, nb::kw_only(), out_kw);
  m.def("permute", [](const Tensor& t, nb::handle dims) { return permute(t, to_dims(dims)); }, "input"_a, "dims"_a);
  m.def("reshape", [](const Tensor& t, nb::handle shape) { return reshape(t, to_dims(shape)); }, "input"_a, "shape"_a);
  // Creation: `device` None is the CPU.
  auto dev = [](nb::handle d) { return opt_device(d).value_or(Device::CPU); };
  m.def(
      "_full",
      [=](nb::handle shape, nb::handle value, nb::handle dtype, nb::handle device) {
        return full(to_dims(shape), *to_scalar(value), to_dtype_arg(dtype), dev(device));
      },
      "size"_a, "fill_value"_a, "dtype"_a, "device"_a = nb::none());
  m.def(
      "_empty",
      [=](nb::handle shape, nb::handle dtype, nb::handle device) {
        return empty(to_dims(shape), to_dtype_arg(dtype), dev(device));
      },
      "size"_a, "dtype"_a, "device"_a = nb::none());
  m.def(
      "_arange",
      [=](double s, double e, double step, nb::handle dtype, nb::handle device) {
        return arange(s, e, step, to_dtype_arg(dtype), dev(device));
      },
      "start"_a, "end"_a, "step"_a, "dtype"_a, "device"_a = nb::none());
  m.def(
      "_linspace",
      [=](double s, double e, int64_t n, nb::handle dtype, nb::handle device) {
        return linspace(s, e, n, to_dtype_arg(dtype), dev(device));
      },
      "start"_a, "end"_a, "steps"_a, "dtype"_a, "device"_a = nb::none());
  m.def(
      "_eye",
      [=](int64_t n, int64_t mm, nb::handle dtype, nb::handle device) {
        return eye(n, mm, to_dtype_arg(dtype), dev(device));
      },
      "n"_a, "m"_a, "dtype"_a, "device"_a = nb::none());
  m.def(
      "_randint",
      [=](int64_t lo, int64_t hi, nb::handle shape, nb::handle dtype, nb::handle device) {
        return randint(lo, hi, to_dims(shape), to_dtype_arg(dtype), dev(device));
      },
      "low"_a, "high"_a, "size"_a, "dtype"_a, "device"_a = nb::none());
  m.def(
      "randperm", [=](int64_t n, nb::handle device) { return randperm(n, dev(device)); }, "n"_a, nb::kw_only(),
      "device"_a = nb::none());
  m.def("manual_seed", [](int64_t seed) { manual_seed(uint64_t(seed)); }, "seed"_a);
  m.def("is_grad_enabled", &grad_enabled);
  m.def("_set_grad_enabled", &set_grad_enabled);
  m.def("_backward", [](const std::vector<Tensor>& roots, const std::vector<std::optional<Tensor>>& grads, bool retain,
                        bool create) {
    std::vector<Tensor> g;
    for (const auto& x : grads) g.push_back(x.value_or(Tensor()));
    backward(roots, g, retain, create);
  });
  m.def("_grad", [](const std::vector<Tensor>& roots, const std::vector<std::optional<Tensor>>& grads,
                    const std::vector<Tensor>& inputs, bool retain, bool create, bool allow_unused) {
    std::vector<Tensor> g;
    for (const auto& x : grads) g.push_back(x.value_or(Tensor()));
    std::vector<std::optional<Tensor>> out;
    for (const Tensor& t : grad(roots, g, inputs, retain, create, allow_unused))
      out.push_back(t.defined() ? std::optional<Tensor>(t) : std::nullopt);
    return out;
  });
  // neural-network ops; fastkern.nn.functional normalises the arguments
  using OptT = std::optional<Tensor>;
  auto opt_tensor = [](const OptT& t) { return t.value_or(Tensor()); };
  auto pair = [](nb::handle h) {
    const Dims d = to_dims(h);
    FK_CHECK(d.n == 2, Value, "expected a pair of ints, got ", to_string(d));
    return Pair2{d[0], d[1]};
  };
  m.def("_conv2d", [=](const Tensor& x, const Tensor& w, const OptT& b, nb::handle s, nb::handle p, nb::handle d,
                       int64_t g) { return conv2d(x, w, opt_tensor(b), pair(s), pair(p), pair(d), g); });
  m.def("_max_pool2d", [=](const Tensor& x, nb::handle k, nb::handle s, nb::handle p, nb::handle d, bool ceil) {
    return max_pool2d(x, pair(k), pair(s), pair(p), pair(d), ceil);
  });
  m.def("_avg_pool2d", [=](const Tensor& x, nb::handle k, nb::handle s, nb::handle p, bool ceil, bool include_pad) {
    return avg_pool2d(x, pair(k), pair(s), pair(p), ceil, include_pad);
  });
  m.def("_adaptive_avg_pool2d", [=](const Tensor& x, nb::handle os) { return adaptive_avg_pool2d(x, pair(os)); });
  m.def("_batch_norm", [=](const Tensor& x, const OptT& rm, const OptT& rv, const OptT& w, const OptT& b, bool training,
                           double momentum, double eps) {
    return batch_norm(x, opt_tensor(rm), opt_tensor(rv), opt_tensor(w), opt_tensor(b), training, momentum, eps);
  });
  m.def("_linear", [=](const Tensor& x, const Tensor& w, const OptT& b) { return linear(x, w, opt_tensor(b)); });
  m.def("_mse_loss", &mse_loss, "input"_a, "target"_a, "reduction"_a);
  m.def("_nll_loss", &nll_loss, "input"_a, "target"_a, "reduction"_a, "ignore_index"_a);
  m.def("_cross_entropy", [](const Tensor& x, const Tensor& t, int reduction, double eps, int64_t ignore) {
    return cross_entropy(x, t, reduction, eps, ignore);
  });
  m.def("_adam_step", &adam_step_, "param"_a, "grad"_a, "exp_avg"_a, "exp_avg_sq"_a, "lr"_a, "beta1"_a, "beta2"_a,
        "eps"_a, "weight_decay"_a, "decoupled"_a, "step"_a);
  m.def("get_num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, "n"_a);
  m.def("_cpu_capability", [] { return std::string(cpu_kernels().isa); });
  static const char* const conv_algos[] = {"auto", "gemm", "winograd", "depthwise"};
  m.def("_set_conv_algorithm", [](int a) { set_conv_algorithm(ConvAlgo(a)); });
  m.def("_conv_algorithm", [=](const Tensor& x, const Tensor& w, nb::handle s, nb::handle p, nb::handle d,
                               int64_t groups) {
    return std::string(conv_algos[int(conv_algorithm(x, w, conv2d_window(x, w, pair(s), pair(p), pair(d)), groups))]);
  });
#ifdef FK_HAVE_CUDA
  m.attr("_cuda_built") = true;
#else
  m.attr("_cuda_built") = false;
#endif
  m.def("_cuda_device_count", &cuda_device_count);
  m.def("_cuda_memory_stats", [] {
    const CudaMemoryStats s = cuda_memory_stats();
    return nb::make_tuple(s.allocated, s.peak, s.reserved);
  });
  m.def("_cuda_reset_peak_memory", &cuda_reset_peak_memory);
  m.def("_cuda_manual_seed", [](int64_t seed) {
    if (cuda_device_count() > 0) backend(Device::CUDA).manual_seed(uint64_t(seed));  // else nothing to seed
  });
  m.def("_cuda_empty_cache", &cuda_empty_cache);
  m.def("_cuda_synchronize", &cuda_synchronize);
  m.def("_cuda_device_name", &cuda_device_name);
}
