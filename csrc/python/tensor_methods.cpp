// The Tensor class: properties, autograd, views, indexing, operators and in-place methods.
// The ops that are a method and a module function both (x.exp() and fastkern.exp(x)) are
// bound in functions.cpp, NumPy and DLPack in interop.cpp.
#include "convert.h"

namespace {

// ---- small helpers for methods ----------------------------------------------------

template <BinOp op, bool reflected>
nb::object binop(const Tensor& self, nb::handle other) {
  if (other.is_none() && (op == BinOp::Eq || op == BinOp::Ne)) return nb::bool_(op == BinOp::Ne);
  if (nb::isinstance<Tensor>(other)) {
    const Tensor& o = nb::cast<const Tensor&>(other);
    return nb::cast(reflected ? binary(op, o, self) : binary(op, self, o));
  }
  if (auto s = to_scalar(other)) return nb::cast(binary(op, self, *s, reflected));
  if (nb::hasattr(other, "__array_interface__") || PyList_Check(other.ptr()) || PyTuple_Check(other.ptr())) {
    const Tensor o = as_tensor(other);
    return nb::cast(reflected ? binary(op, o, self) : binary(op, self, o));
  }
  return nb::borrow(Py_NotImplemented);
}

void inplace(BinOp op, const Tensor& self, nb::handle other) {
  if (nb::isinstance<Tensor>(other)) return binary_(op, self, nb::cast<const Tensor&>(other));
  if (auto s = to_scalar(other)) return binary_(op, self, *s);
  binary_(op, self, as_tensor(other));
}

template <BinOp op>
nb::handle iop(nb::handle self, nb::handle other) {
  inplace(op, nb::cast<const Tensor&>(self), other);
  return self;
}

// Returns the Python object `self` when an op gave back the same tensor (x.float() is x).
nb::object same_or_new(nb::handle self, Tensor r) {
  return r.p == nb::cast<const Tensor&>(self).p ? nb::borrow(self) : nb::cast(std::move(r));
}

}  // namespace

nb::class_<Tensor> bind_tensor_methods(nb::module_& m) {
  auto cls = nb::class_<Tensor>(m, "Tensor");

  cls.def("__init__",
          [](Tensor* t, const Tensor& other) { new (t) Tensor(other.p); })  // an alias: lets Parameter wrap a tensor
      .def(
          "__init__",
          // The legacy constructor, torch.Tensor(2, 3) or torch.Tensor([1, 2]): a float32 tensor (_legacy.py).
          [](Tensor* t, nb::args args, nb::handle device) {
            nb::object r = nb::module_::import_("fastkern._legacy").attr("tensor_new")(*args, "device"_a = device);
            new (t) Tensor(nb::cast<Tensor>(r).p);
          },
          "args"_a, "device"_a = nb::none())
      .def_prop_ro("shape", [](const Tensor& t) { return dims_tuple(t.shape()); })
      .def(
          "size",
          [](const Tensor& t, nb::handle dim) -> nb::object {
            if (dim.is_none()) return dims_tuple(t.shape());
            return nb::int_(t.size(wrap_dim(to_int64(dim, "dim", ErrorKind::Index), t.ndim())));
          },
          "dim"_a = nb::none())
      .def(
          "stride",
          [](const Tensor& t, nb::handle dim) -> nb::object {
            if (dim.is_none()) return dims_tuple(t.strides());
            return nb::int_(t.strides()[wrap_dim(to_int64(dim, "dim", ErrorKind::Index), t.ndim())]);
          },
          "dim"_a = nb::none())
      .def_prop_ro("ndim", &Tensor::ndim)
      .def("dim", &Tensor::ndim)
      .def("numel", &Tensor::numel)
      .def("nelement", &Tensor::numel)
      .def("element_size", [](const Tensor& t) { return itemsize(t.dtype()); })
      .def_prop_ro("dtype", [](const Tensor& t) { return nb::borrow(g_dtypes[int(t.dtype())]); })
      .def_prop_ro("device", &device_of)
      .def_prop_ro("is_cuda", [](const Tensor& t) { return t.device() == Device::CUDA; })
      .def("storage_offset", [](const Tensor& t) { return t.p->offset; })
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()); })
      .def_prop_ro("_version", &Tensor::version)
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("is_floating_point", [](const Tensor& t) { return is_float(t.dtype()); })
      .def("__len__",
           [](const Tensor& t) {
             if (t.ndim() == 0) throw nb::type_error("len() of a 0-d tensor");
             return t.size(0);
           })
      .def("__hash__", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.p.get()); })
      .def("__bool__",
           [](const Tensor& t) {
             FK_CHECK(t.numel() == 1, Runtime, "Boolean value of Tensor with ", t.numel(), " values is ambiguous");
             return PyObject_IsTrue(py_item(t).ptr()) == 1;
           })
      .def("__float__", [](const Tensor& t) { return nb::cast<double>(nb::float_(py_item(t))); })
      .def("__int__", [](const Tensor& t) { return nb::int_(py_item(t)); })
      .def("__index__",
           [](const Tensor& t) {
             FK_CHECK(!is_float(t.dtype()) && t.numel() == 1, Type,
                      "only integer tensors of a single element can be converted to an index");
             return nb::int_(py_item(t));
           })
      .def("item", &py_item)
      // autograd
      .def_prop_rw(
          "requires_grad", &Tensor::requires_grad,
          [](Tensor& t, bool on) {
            FK_CHECK(t.is_leaf() || on, Runtime,
                     "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                     "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().");
            FK_CHECK(!on || is_float(t.dtype()), Runtime,
                     "only Tensors of floating point dtype can require gradients (got ", dtype_name(t.dtype()), ")");
            t.p->requires_grad = on;
          })
      .def(
          "requires_grad_",
          [](nb::handle self, bool on) {
            nb::setattr(self, "requires_grad", nb::bool_(on));
            return self;
          },
          "requires_grad"_a = true)
      .def_prop_rw(
          "grad",
          [](const Tensor& t) -> std::optional<Tensor> {
            if (!t.p->grad) return std::nullopt;
            return Tensor(t.p->grad);
          },
          [](Tensor& t, std::optional<Tensor> g) {
            if (g) {
              FK_CHECK(g->p != t.p, Runtime, "can't assign Variable as its own grad");  // a reference cycle otherwise
              FK_CHECK(g->shape() == t.shape(), Runtime,
                       "assigned grad has data of a different size: ", to_string(g->shape()), " vs ",
                       to_string(t.shape()));
              FK_CHECK(g->dtype() == t.dtype(), Runtime, "attempting to assign a gradient with dtype ",
                       dtype_name(g->dtype()), " to a tensor of dtype ", dtype_name(t.dtype()));
            }
            t.p->grad = g ? g->p : Ref<TensorImpl>();
          },
          nb::arg("grad").none())
      .def_prop_ro("grad_fn",
                   [](const Tensor& t) -> std::optional<GradFn> {
                     if (!t.p->grad_fn) return std::nullopt;
                     return GradFn{t.p->grad_fn};
                   })
      .def_prop_ro("is_leaf", &Tensor::is_leaf)
      .def_prop_rw(
          "data", [](const Tensor& t) { return untracked_alias(t); }, &set_data)
      .def("detach", [](const Tensor& t) { return detach(t); })
      .def("detach_",
           [](nb::handle self) {
             detach_(nb::cast<const Tensor&>(self));
             return self;
           })
      .def("retain_grad",
           [](const Tensor& t) {
             FK_CHECK(t.is_leaf(), NotImplemented, "retain_grad() on non-leaf tensors is not supported yet");
           })
      .def(
          "backward",
          [](const Tensor& t, std::optional<Tensor> gradient, std::optional<bool> retain_graph, bool create_graph) {
            backward({t}, {gradient.value_or(Tensor())}, retain_graph.value_or(create_graph), create_graph);
          },
          "gradient"_a = nb::none(), "retain_graph"_a = nb::none(), "create_graph"_a = false)
      // views and shapes
      .def("view",
           [](const Tensor& t, nb::args shape) {
             if (shape.size() == 1 && nb::isinstance<DTypeObj>(shape[0])) {
               FK_CHECK(to_dtype_arg(shape[0]) == t.dtype(), NotImplemented,
                        "view(dtype) reinterpretation is not supported");
               return t;
             }
             return view(t, args_dims(shape));
           })
      .def("reshape", [](const Tensor& t, nb::args shape) { return reshape(t, args_dims(shape)); })
      .def("view_as", [](const Tensor& t, const Tensor& o) { return view(t, o.shape()); })
      .def("reshape_as", [](const Tensor& t, const Tensor& o) { return reshape(t, o.shape()); })
      .def("permute", [](const Tensor& t, nb::args dims) { return permute(t, args_dims(dims)); })
      .def("expand", [](const Tensor& t, nb::args shape) { return expand(t, args_dims(shape)); })
      .def("expand_as", [](const Tensor& t, const Tensor& o) { return expand(t, o.shape()); })
      .def("repeat", [](const Tensor& t, nb::args reps) { return repeat(t, args_dims(reps)); })
      .def_prop_ro("T", &reversed_dims)
      .def_prop_ro("mT", [](const Tensor& t) { return transpose(t, -2, -1); })
      .def("t", &transpose2d)
      .def("contiguous", [](nb::handle self) { return same_or_new(self, contiguous(nb::cast<const Tensor&>(self))); })
      .def("clone", [](const Tensor& t) { return clone(t); })
      .def(
          "to",
          // non_blocking: a copy from pinned memory to the device need not wait (ops.h)
          [](nb::handle self, nb::handle a, nb::handle dtype, bool non_blocking, bool copy) {
            const Tensor& t = nb::cast<const Tensor&>(self);
            // to(dtype), to(device), to(device, dtype), to(other tensor)
            std::optional<DType> dt = opt_dtype(dtype);
            std::optional<Device> dev;
            if (nb::isinstance<DTypeObj>(a)) {
              dt = to_dtype_arg(a);
            } else if (nb::isinstance<Tensor>(a)) {
              dt = nb::cast<const Tensor&>(a).dtype();
              dev = nb::cast<const Tensor&>(a).device();
            } else {
              dev = opt_device(a);
            }
            Tensor r = dt ? to_dtype(t, *dt) : t;
            r = dev ? to_device(r, *dev, non_blocking) : r;
            return same_or_new(self, copy && r.p == t.p ? clone(t) : r);
          },
          "device"_a = nb::none(), "dtype"_a = nb::none(), "non_blocking"_a = false, "copy"_a = false)
      .def("cpu",
           [](nb::handle self) { return same_or_new(self, to_device(nb::cast<const Tensor&>(self), Device::CPU)); })
      .def(
          "cuda",
          [](nb::handle self, nb::handle device, bool non_blocking) {
            // cuda(), cuda(0), cuda("cuda:0"): one device so far
            if (PyLong_Check(device.ptr()))
              FK_CHECK(nb::cast<int64_t>(device) == 0, NotImplemented, "fastkern uses one CUDA device, cuda:0, so far");
            else if (!device.is_none())
              FK_CHECK(to_device_arg(device) == Device::CUDA, Runtime, "Invalid device, must be cuda device");
            return same_or_new(self, to_device(nb::cast<const Tensor&>(self), Device::CUDA, non_blocking));
          },
          "device"_a = nb::none(), "non_blocking"_a = false)
      .def("pin_memory", [](nb::handle self) { return same_or_new(self, pin_memory(nb::cast<const Tensor&>(self))); })
      .def("is_pinned", [](const Tensor& t) { return t.p->storage->pinned; })
      .def("type_as", [](const Tensor& t, const Tensor& o) { return to_dtype(t, o.dtype()); })
      .def(
          "__getitem__",
          [](const Tensor& t, nb::handle idx) {
            if (PyLong_Check(idx.ptr()) && !PyBool_Check(idx.ptr()))
              return select(t, 0, to_int64(idx, "index", ErrorKind::Index));
            return index(t, to_index(idx));
          },
          nb::arg("idx").none())
      .def(
          "__setitem__",
          [](const Tensor& t, nb::handle idx, nb::handle value) {
            Tensor v;
            if (auto s = to_scalar(value))
              v = scalar_tensor(*s, t.dtype());
            else
              v = as_tensor(value);
            index_put_(t, to_index(idx), v);
          },
          nb::arg("idx").none(), nb::arg("value"))
      // arithmetic
      .def("__add__", &binop<BinOp::Add, false>)
      .def("__radd__", &binop<BinOp::Add, true>)
      .def("__sub__", &binop<BinOp::Sub, false>)
      .def("__rsub__", &binop<BinOp::Sub, true>)
      .def("__mul__", &binop<BinOp::Mul, false>)
      .def("__rmul__", &binop<BinOp::Mul, true>)
      .def("__truediv__", &binop<BinOp::Div, false>)
      .def("__rtruediv__", &binop<BinOp::Div, true>)
      .def("__floordiv__", &binop<BinOp::FloorDiv, false>)
      .def("__rfloordiv__", &binop<BinOp::FloorDiv, true>)
      .def("__mod__", &binop<BinOp::Rem, false>)
      .def("__rmod__", &binop<BinOp::Rem, true>)
      .def("__pow__", &binop<BinOp::Pow, false>)
      .def("__rpow__", &binop<BinOp::Pow, true>)
      .def("__and__", &binop<BinOp::And, false>)
      .def("__rand__", &binop<BinOp::And, true>)
      .def("__or__", &binop<BinOp::Or, false>)
      .def("__ror__", &binop<BinOp::Or, true>)
      .def("__xor__", &binop<BinOp::Xor, false>)
      .def("__rxor__", &binop<BinOp::Xor, true>)
      .def("__eq__", &binop<BinOp::Eq, false>)
      .def("__ne__", &binop<BinOp::Ne, false>)
      .def("__lt__", &binop<BinOp::Lt, false>)
      .def("__le__", &binop<BinOp::Le, false>)
      .def("__gt__", &binop<BinOp::Gt, false>)
      .def("__ge__", &binop<BinOp::Ge, false>)
      .def("__iadd__", &iop<BinOp::Add>)
      .def("__isub__", &iop<BinOp::Sub>)
      .def("__imul__", &iop<BinOp::Mul>)
      .def("__itruediv__", &iop<BinOp::Div>)
      .def("__matmul__", [](const Tensor& a, const Tensor& b) { return matmul(a, b); })
      .def("__rmatmul__", [](const Tensor& a, const Tensor& b) { return matmul(b, a); })
      .def("__neg__", [](const Tensor& a) { return unary(UnOp::Neg, a); })
      .def("__pos__", [](const Tensor& a) { return a; })
      .def("__abs__", [](const Tensor& a) { return unary(UnOp::Abs, a); })
      .def("__invert__", [](const Tensor& a) { return unary(UnOp::Not, a); })
      // in place
      .def(
          "add_",
          [](nb::handle self, nb::handle o, nb::handle alpha) {
            const Tensor& t = nb::cast<const Tensor&>(self);
            add_scaled_(BinOp::Add, t, operand(t, o), alpha_arg(alpha));
            return self;
          },
          "other"_a, "alpha"_a = nb::none())
      .def(
          "sub_",
          [](nb::handle self, nb::handle o, nb::handle alpha) {
            const Tensor& t = nb::cast<const Tensor&>(self);
            add_scaled_(BinOp::Sub, t, operand(t, o), alpha_arg(alpha));
            return self;
          },
          "other"_a, "alpha"_a = nb::none())
      .def("mul_", &iop<BinOp::Mul>)
      .def("div_", &iop<BinOp::Div>)
      .def("pow_", &iop<BinOp::Pow>)
      .def("zero_",
           [](nb::handle self) {
             fill_(nb::cast<const Tensor&>(self), Scalar::of(0));
             return self;
           })
      .def("fill_",
           [](nb::handle self, nb::handle v) {
             const Tensor& t = nb::cast<const Tensor&>(self);
             if (auto s = to_scalar(v))
               fill_(t, *s);
             else
               copy_(t, as_tensor(v));
             return self;
           })
      .def(
          "copy_",
          // non_blocking is accepted; copy_ between devices waits for its copy
          [](nb::handle self, nb::handle src, bool) {
            copy_(nb::cast<const Tensor&>(self), as_tensor(src));
            return self;
          },
          "src"_a, "non_blocking"_a = false)
      .def(
          "clamp_",
          [](nb::handle self, nb::handle lo, nb::handle hi) {
            clamp_(nb::cast<const Tensor&>(self), opt_double(lo), opt_double(hi));
            return self;
          },
          "min"_a = nb::none(), "max"_a = nb::none())
      .def(
          "uniform_",
          [](nb::handle self, double lo, double hi) {
            Tensor t = nb::cast<Tensor>(self);
            uniform_(t, lo, hi);
            return self;
          },
          "from_"_a = 0.0, "to"_a = 1.0)
      .def(
          "normal_",
          [](nb::handle self, double mean, double std) {
            Tensor t = nb::cast<Tensor>(self);
            normal_(t, mean, std);
            return self;
          },
          "mean"_a = 0.0, "std"_a = 1.0);

  // x.float(), x.long(), ...: the tensor itself when it already has that dtype.
  static const std::pair<const char*, DType> casts[] = {{"float", DType::Float32},
                                                        {"double", DType::Float64},
                                                        {"long", DType::Int64},
                                                        {"bool", DType::Bool},
                                                        {"byte", DType::UInt8}};
  for (const auto& [name, dt] : casts) {
    const DType d = dt;
    cls.def(name, [d](nb::handle self) { return same_or_new(self, to_dtype(nb::cast<const Tensor&>(self), d)); });
  }
  return cls;
}
