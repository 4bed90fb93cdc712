// Python bindings: argument conversion and nothing else. Operators and common
// methods go straight to the C++ ops, with no Python wrapper in between.
#include <algorithm>
#include <typeinfo>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "../core/autograd.h"
#include "../core/ops.h"
#include "../core/parallel.h"

namespace nb = nanobind;
using namespace nb::literals;
using namespace fk;

namespace {

// ---- dtype and device objects ----------------------------------------------------

struct DTypeObj {
  DType d;
};
nb::handle g_dtypes[kNumDTypes];  // the unique fastkern.<dtype> objects, owned by the module

DType to_dtype_arg(nb::handle h) {
  if (nb::isinstance<DTypeObj>(h)) return nb::cast<DTypeObj&>(h).d;
  throw nb::type_error(("expected a fastkern dtype, got " + nb::cast<std::string>(nb::repr(h))).c_str());
}
std::optional<DType> opt_dtype(nb::handle h) {
  if (h.is_none()) return std::nullopt;
  return to_dtype_arg(h);
}

struct DeviceObj {
  std::string type;
};

// ---- argument conversion ---------------------------------------------------------

nb::object py_item(const Tensor& t);

// A Python integer (or anything with __index__) as int64: TypeError for other types,
// `kind` (with a message naming the value) when it does not fit.
int64_t to_int64(nb::handle h, const char* what, ErrorKind kind = ErrorKind::Value) {
  PyObject* o = h.ptr();
  if (!PyIndex_Check(o))
    throw nb::type_error(str_cat(what, " must be an integer, not ", Py_TYPE(o)->tp_name).c_str());
  nb::object i = nb::steal(PyNumber_Index(o));
  if (!i.is_valid()) throw nb::python_error();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow) throw Error(kind, str_cat(what, " ", nb::cast<std::string>(nb::str(i)), " is out of the int64 range"));
  return v;
}

std::optional<Scalar> to_scalar(nb::handle h) {
  PyObject* o = h.ptr();
  if (PyBool_Check(o)) return Scalar::of_bool(o == Py_True);
  if (PyFloat_Check(o)) return Scalar::of(PyFloat_AS_DOUBLE(o));
  if (PyLong_Check(o)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) throw nb::value_error("Python integer is out of the int64 range");
    return Scalar::of_int(v);
  }
  if (nb::isinstance<Tensor>(h) || !PyNumber_Check(o)) return std::nullopt;
  // NumPy scalars and other numbers: integers through __index__, the rest through __float__.
  if (PyIndex_Check(o)) return Scalar::of_int(to_int64(h, "number"));
  if (nb::hasattr(h, "__float__")) return Scalar::of(nb::cast<double>(nb::float_(h)));
  return std::nullopt;
}

// Lists, tuples and NumPy arrays become tensors through fastkern.tensor (Python side).
Tensor as_tensor(nb::handle h) {
  if (nb::isinstance<Tensor>(h)) return nb::cast<Tensor>(h);
  return nb::cast<Tensor>(nb::module_::import_("fastkern").attr("tensor")(h));
}

Dims to_dims(nb::handle h) {
  Dims d;
  if (PyIndex_Check(h.ptr())) {
    d.push_back(to_int64(h, "size"));
    return d;
  }
  if (!PySequence_Check(h.ptr()))
    throw nb::type_error(str_cat("expected a sequence of integers, not ", Py_TYPE(h.ptr())->tp_name).c_str());
  for (nb::handle x : h) d.push_back(to_int64(x, "size"));
  return d;
}
// view(2, 3), view((2, 3)) and view([2, 3]) all mean the same.
Dims args_dims(const nb::args& args) {
  if (args.size() == 1 && !PyIndex_Check(args[0].ptr())) return to_dims(args[0]);
  Dims d;
  for (nb::handle x : args) d.push_back(to_int64(x, "size"));
  return d;
}

DimList to_dimlist(nb::handle h) {
  DimList d;
  if (h.is_none()) return d;
  d.dims = to_dims(h);
  d.all = d.dims.empty();  // dim=() reduces everything, as PyTorch's sum(x, ())
  return d;
}

std::optional<Scalar> opt_scalar(nb::handle h) {
  if (h.is_none()) return std::nullopt;
  if (nb::isinstance<Tensor>(h)) {
    const Tensor t = nb::cast<Tensor>(h);
    FK_CHECK(t.numel() == 1, Runtime, "bounds must be numbers or one-element tensors, got shape ", to_string(t.shape()));
    return fk::item(t);
  }
  auto s = to_scalar(h);
  if (!s) throw nb::type_error("expected a number");
  return s;
}
std::optional<double> opt_double(nb::handle h) {
  auto s = opt_scalar(h);
  return s ? std::optional<double>(s->as_double()) : std::nullopt;
}

nb::tuple dims_tuple(const Dims& d) {
  PyObject* t = PyTuple_New(d.n);
  for (int i = 0; i < d.n; i++) PyTuple_SET_ITEM(t, i, PyLong_FromLongLong(d[i]));
  return nb::steal<nb::tuple>(t);
}

// ---- indexing --------------------------------------------------------------------

IndexItem to_index_item(nb::handle h) {
  IndexItem it{};
  PyObject* o = h.ptr();
  if (o == Py_None) {
    it.kind = IndexItem::None;
  } else if (o == Py_Ellipsis) {
    it.kind = IndexItem::Ellipsis;
  } else if (PySlice_Check(o)) {
    it.kind = IndexItem::Slice;
    nb::handle s = h;
    auto part = [&](const char* name) -> std::optional<int64_t> {
      nb::object v = s.attr(name);
      if (v.is_none()) return std::nullopt;
      if (!PyIndex_Check(v.ptr())) throw nb::type_error("slice indices must be integers or None");
      int overflow = 0;  // out-of-range bounds clamp, as in Python slicing
      const long long x = PyLong_AsLongLongAndOverflow(nb::steal(PyNumber_Index(v.ptr())).ptr(), &overflow);
      return overflow ? (overflow > 0 ? INT64_MAX : INT64_MIN) : x;
    };
    it.start = part("start");
    it.stop = part("stop");
    it.step = part("step").value_or(1);
  } else if (PyBool_Check(o)) {
    it.kind = IndexItem::Tensor_;
    it.t = scalar_tensor(Scalar::of_bool(o == Py_True), DType::Bool);
  } else if (PyLong_Check(o)) {
    it.kind = IndexItem::Int;
    it.i = to_int64(h, "index", ErrorKind::Index);
  } else if (nb::isinstance<Tensor>(h)) {
    it.kind = IndexItem::Tensor_;
    it.t = nb::cast<Tensor>(h);
    if (it.t.ndim() == 0 && !is_float(it.t.dtype()) && it.t.dtype() != DType::Bool) {
      it.kind = IndexItem::Int;  // x[t] with a 0-d integer tensor selects, as in PyTorch
      it.i = to_int64(h, "index", ErrorKind::Index);
    }
  } else if (PyIndex_Check(o) && !PySequence_Check(o)) {
    it.kind = IndexItem::Int;
    it.i = to_int64(h, "index", ErrorKind::Index);
  } else {
    it.kind = IndexItem::Tensor_;
    it.t = as_tensor(h);
    if (it.t.numel() == 0 && is_float(it.t.dtype())) it.t = to_dtype(it.t, DType::Int64);  // x[[]]: no indices
  }
  return it;
}

std::vector<IndexItem> to_index(nb::handle h) {
  std::vector<IndexItem> items;
  if (PyTuple_Check(h.ptr())) {
    for (nb::handle x : h) items.push_back(to_index_item(x));
  } else {
    items.push_back(to_index_item(h));
  }
  return items;
}

// ---- NumPy and DLPack ------------------------------------------------------------

nb::dlpack::dtype dl_dtype(DType d) {
  switch (d) {
    case DType::Bool: return nb::dtype<bool>();
    case DType::UInt8: return nb::dtype<uint8_t>();
    case DType::Int64: return nb::dtype<int64_t>();
    case DType::Float32: return nb::dtype<float>();
    default: return nb::dtype<double>();
  }
}

std::optional<DType> from_dl_dtype(nb::dlpack::dtype t) {
  for (int i = 0; i < kNumDTypes; i++)
    if (dl_dtype(DType(i)) == t) return DType(i);
  return std::nullopt;
}

void release_pyobject(void*, size_t, void* obj) {
  if (!Py_IsInitialized()) return;
  nb::gil_scoped_acquire gil;
  Py_DECREF(static_cast<PyObject*>(obj));
}

Tensor from_numpy(nb::ndarray<nb::device::cpu> a, nb::handle owner) {
  const auto dt = from_dl_dtype(a.dtype());
  FK_CHECK(dt.has_value(), Type,
           "can't convert an array of this dtype; the supported types are: float64, float32, int64, uint8 and bool");
  Dims shape, strides;
  int64_t lo = 0, hi = 0;
  for (size_t i = 0; i < a.ndim(); i++) {
    shape.push_back(int64_t(a.shape(i)));
    strides.push_back(a.stride(i));
    FK_CHECK(a.stride(i) >= 0, Value, "At least one stride in the given numpy array is negative, and tensors with "
             "negative strides are not currently supported. (You can probably work around this by making a copy of "
             "your array with array.copy().)");
    if (a.shape(i) > 0) hi += (int64_t(a.shape(i)) - 1) * a.stride(i);
    if (a.shape(i) == 0) lo = 1;
  }
  const size_t nbytes = lo ? 0 : size_t(hi + 1) * itemsize(*dt);
  Py_INCREF(owner.ptr());
  Ref<TensorImpl> t(new TensorImpl());
  t->storage = wrap_storage(a.data(), nbytes, release_pyobject, owner.ptr());
  t->shape = shape;
  t->strides = strides;
  t->dtype = *dt;
  return canonical_bools(Tensor(std::move(t)));
}

nb::object to_numpy(const Tensor& t) {
  FK_CHECK(!t.requires_grad(), Runtime, "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.");
  size_t shape[kMaxDims];
  for (int i = 0; i < t.ndim(); i++) shape[i] = size_t(t.size(i));
  auto* keep = new Ref<Storage>(t.p->storage);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<Ref<Storage>*>(p); });
  nb::ndarray<nb::numpy> arr(t.raw(), size_t(t.ndim()), shape, owner, t.strides().v, dl_dtype(t.dtype()));
  return arr.cast();
}

// The DLPack C ABI (dlpack.h, version 0.8 layout), declared here to avoid a dependency.
struct DLDevice { int32_t device_type, device_id; };
struct DLDataType { uint8_t code, bits; uint16_t lanes; };
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
struct DLExport {  // what a capsule we hand out keeps alive
  DLManagedTensor m;
  Tensor t;
  int64_t shape[kMaxDims], strides[kMaxDims];
};

nb::object to_dlpack(const Tensor& t) {
  auto* e = new DLExport();
  e->t = detach(t);
  for (int i = 0; i < t.ndim(); i++) {
    e->shape[i] = t.size(i);
    e->strides[i] = t.strides()[i];
  }
  const nb::dlpack::dtype d = dl_dtype(t.dtype());
  e->m.dl_tensor = {t.raw(), {1, 0}, t.ndim(), {d.code, d.bits, d.lanes}, e->shape, e->strides, 0};
  e->m.manager_ctx = e;
  e->m.deleter = [](DLManagedTensor* m) { delete static_cast<DLExport*>(m->manager_ctx); };
  PyObject* cap = PyCapsule_New(&e->m, "dltensor", [](PyObject* c) {
    // Unconsumed capsules (still named "dltensor") free their tensor here.
    if (PyCapsule_IsValid(c, "dltensor")) {
      auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
      m->deleter(m);
    }
  });
  return nb::steal(cap);
}

void release_dlpack(void*, size_t, void* m) {
  if (!Py_IsInitialized()) return;
  nb::gil_scoped_acquire gil;  // producers' deleters may touch Python objects
  auto* mt = static_cast<DLManagedTensor*>(m);
  if (mt->deleter) mt->deleter(mt);
}

Tensor from_dlpack(nb::handle obj) {
  nb::object cap = PyCapsule_CheckExact(obj.ptr()) ? nb::borrow(obj) : obj.attr("__dlpack__")();
  FK_CHECK(PyCapsule_IsValid(cap.ptr(), "dltensor"), Type, "from_dlpack: expected a DLPack capsule named 'dltensor'");
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), "dltensor"));
  const DLTensor& d = m->dl_tensor;
  FK_CHECK(d.device.device_type == 1, Runtime, "from_dlpack: only CPU tensors are supported (device type ",
           d.device.device_type, ")");
  FK_CHECK(d.dtype.lanes == 1, Type, "from_dlpack: vector dtypes are not supported");
  const auto dt = from_dl_dtype(nb::dlpack::dtype{d.dtype.code, d.dtype.bits, d.dtype.lanes});
  FK_CHECK(dt.has_value(), Type, "from_dlpack: unsupported dtype (code ", int(d.dtype.code), ", bits ", int(d.dtype.bits),
           ")");
  FK_CHECK(d.ndim >= 0 && d.ndim <= kMaxDims, Value, "from_dlpack: at most ", kMaxDims, " dims are supported, got ",
           d.ndim);
  Ref<TensorImpl> t(new TensorImpl());
  for (int i = 0; i < d.ndim; i++) t->shape.push_back(d.shape[i]);
  const int64_t numel = checked_numel(t->shape);
  t->strides = d.strides ? Dims() : contiguous_strides(t->shape);
  if (d.strides)
    for (int i = 0; i < d.ndim; i++) {
      FK_CHECK(d.strides[i] >= 0, Value, "from_dlpack: negative strides are not supported, got ",
               d.strides[i], " at dim ", i);
      t->strides.push_back(d.strides[i]);
    }
  t->dtype = *dt;
  // The memory spans up to the last element's offset; the strides are the producer's word.
  int64_t last = 0, step = 0;
  for (int i = 0; i < d.ndim && numel > 0; i++)
    FK_CHECK(!__builtin_mul_overflow(t->shape[i] - 1, t->strides[i], &step) && !__builtin_add_overflow(last, step, &last),
             Value, "from_dlpack: the strides ", to_string(t->strides), " overflow for shape ", to_string(t->shape));
  char* data = static_cast<char*>(d.data) + d.byte_offset;
  t->storage = wrap_storage(data, numel ? size_t(last + 1) * itemsize(*dt) : 0, release_dlpack, m);
  PyCapsule_SetName(cap.ptr(), "used_dltensor");
  return canonical_bools(Tensor(std::move(t)));
}

// ---- small helpers for methods ----------------------------------------------------

// The single value of t as a Python number.
nb::object py_item(const Tensor& t) {
  const Scalar v = fk::item(t);
  switch (v.kind) {
    case Scalar::Bool: return nb::bool_(v.i != 0);
    case Scalar::Int: return nb::int_(v.i);
    default: return nb::float_(v.f);
  }
}

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

// The other operand of a method: a tensor, or a number wrapped as PyTorch does.
Tensor operand(const Tensor& self, nb::handle other) {
  if (nb::isinstance<Tensor>(other)) return nb::cast<Tensor>(other);
  if (auto s = to_scalar(other)) return scalar_tensor(*s, scalar_result_type(self, *s));
  return as_tensor(other);
}

// PyTorch's alpha of add/sub (1 when not given).
Scalar alpha_arg(nb::handle alpha) {
  if (alpha.is_none()) return Scalar::of_int(1);
  auto s = to_scalar(alpha);
  if (!s) throw nb::type_error("alpha must be a number");
  return *s;
}

}  // namespace

NB_MODULE(_C, m) {
  // Module objects referenced from Python-level caches at interpreter exit are not leaks.
  nb::set_leak_warnings(false);
  set_gil_hooks([]() -> void* { return PyGILState_Check() ? PyEval_SaveThread() : nullptr; },
                [](void* state) {
                  if (state) PyEval_RestoreThread(static_cast<PyThreadState*>(state));
                });
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error& e) {
      PyObject* type = PyExc_RuntimeError;
      switch (e.kind) {
        case ErrorKind::Value: type = PyExc_ValueError; break;
        case ErrorKind::Index: type = PyExc_IndexError; break;
        case ErrorKind::Type: type = PyExc_TypeError; break;
        case ErrorKind::NotImplemented: type = PyExc_NotImplementedError; break;
        default: break;
      }
      PyErr_SetString(type, e.what());
    } catch (const std::bad_cast&) {  // nanobind's cast_error: an argument of a type it cannot convert
      PyErr_SetString(PyExc_TypeError, "an argument has a type fastkern cannot convert (see the function's signature)");
    }
  });

  nb::class_<DTypeObj>(m, "dtype")
      .def_prop_ro("is_floating_point", [](const DTypeObj& d) { return is_float(d.d); })
      .def_prop_ro("itemsize", [](const DTypeObj& d) { return itemsize(d.d); })
      .def("__repr__", [](const DTypeObj& d) { return std::string("fastkern.") + dtype_name(d.d); })
      .def("__reduce__", [](const DTypeObj& d) { return std::string(dtype_name(d.d)); });
  for (int i = 0; i < kNumDTypes; i++) {
    m.attr(dtype_name(DType(i))) = nb::cast(DTypeObj{DType(i)});
    g_dtypes[i] = m.attr(dtype_name(DType(i)));
  }

  nb::class_<DeviceObj>(m, "device")
      .def("__init__", [](DeviceObj* d, const std::string& s) {
        FK_CHECK(s == "cpu" || s == "cuda" || s.rfind("cuda:", 0) == 0, Runtime, "Expected one of cpu, cuda device type at start of device string: ", s);
        new (d) DeviceObj{s.substr(0, s.find(':'))};
      })
      .def_prop_ro("type", [](const DeviceObj& d) { return d.type; })
      .def("__str__", [](const DeviceObj& d) { return d.type; })
      .def("__repr__", [](const DeviceObj& d) { return "device(type='" + d.type + "')"; })
      .def("__eq__", [](const DeviceObj& d, nb::handle o) {
        if (nb::isinstance<DeviceObj>(o)) return nb::cast<const DeviceObj&>(o).type == d.type;
        return nb::isinstance<nb::str>(o) && nb::cast<std::string>(o) == d.type;
      })
      .def("__hash__", [](const DeviceObj& d) { return std::hash<std::string>()(d.type); });

  struct GradFn {
    Ref<Node> n;
  };
  nb::class_<GradFn>(m, "Node")
      .def("name", [](const GradFn& g) { return std::string(g.n->name); })
      .def("__repr__", [](const GradFn& g) { return "<" + std::string(g.n->name) + ">"; });

  auto cls = nb::class_<Tensor>(m, "Tensor");
  // Defines a method and the module function of the same name (x.exp() and fastkern.exp(x)).
  auto both = [&](const char* name, auto f, auto... extra) {
    cls.def(name, f, extra...);
    m.def(name, f, "input"_a, extra...);
  };

  cls.def("__init__", [](Tensor* t, const Tensor& other) { new (t) Tensor(other.p); })  // an alias: lets Parameter wrap a tensor
      .def_prop_ro("shape", [](const Tensor& t) { return dims_tuple(t.shape()); })
      .def("size", [](const Tensor& t, nb::handle dim) -> nb::object {
        if (dim.is_none()) return dims_tuple(t.shape());
        return nb::int_(t.size(wrap_dim(to_int64(dim, "dim", ErrorKind::Index), t.ndim())));
      }, "dim"_a = nb::none())
      .def("stride", [](const Tensor& t, nb::handle dim) -> nb::object {
        if (dim.is_none()) return dims_tuple(t.strides());
        return nb::int_(t.strides()[wrap_dim(to_int64(dim, "dim", ErrorKind::Index), t.ndim())]);
      }, "dim"_a = nb::none())
      .def_prop_ro("ndim", &Tensor::ndim)
      .def("dim", &Tensor::ndim)
      .def("numel", &Tensor::numel)
      .def("nelement", &Tensor::numel)
      .def("element_size", [](const Tensor& t) { return itemsize(t.dtype()); })
      .def_prop_ro("dtype", [](const Tensor& t) { return nb::borrow(g_dtypes[int(t.dtype())]); })
      .def_prop_ro("device", [](const Tensor&) { return DeviceObj{"cpu"}; })
      .def_prop_ro("is_cuda", [](const Tensor& t) { return t.device() == Device::CUDA; })
      .def("storage_offset", [](const Tensor& t) { return t.p->offset; })
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw()); })
      .def_prop_ro("_version", &Tensor::version)
      .def("is_contiguous", &Tensor::is_contiguous)
      .def("is_floating_point", [](const Tensor& t) { return is_float(t.dtype()); })
      .def("__len__", [](const Tensor& t) {
        if (t.ndim() == 0) throw nb::type_error("len() of a 0-d tensor");
        return t.size(0);
      })
      .def("__hash__", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.p.get()); })
      .def("__bool__", [](const Tensor& t) {
        FK_CHECK(t.numel() == 1, Runtime, "Boolean value of Tensor with ", t.numel(), " values is ambiguous");
        return PyObject_IsTrue(py_item(t).ptr()) == 1;
      })
      .def("__float__", [](const Tensor& t) { return nb::cast<double>(nb::float_(py_item(t))); })
      .def("__int__", [](const Tensor& t) { return nb::int_(py_item(t)); })
      .def("__index__", [](const Tensor& t) {
        FK_CHECK(!is_float(t.dtype()) && t.numel() == 1, Type, "only integer tensors of a single element can be converted to an index");
        return nb::int_(py_item(t));
      })
      .def("item", &py_item)
      .def("numpy", &to_numpy)
      .def("__dlpack__", [](const Tensor& t, nb::kwargs) { return to_dlpack(t); })
      .def("__dlpack_device__", [](const Tensor&) { return nb::make_tuple(1, 0); })
      // autograd
      .def_prop_rw("requires_grad", &Tensor::requires_grad, [](Tensor& t, bool on) {
        FK_CHECK(t.is_leaf() || on, Runtime, "you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().");
        FK_CHECK(!on || is_float(t.dtype()), Runtime, "only Tensors of floating point dtype can require gradients (got ", dtype_name(t.dtype()), ")");
        t.p->requires_grad = on;
      })
      .def("requires_grad_", [](nb::handle self, bool on) {
        nb::setattr(self, "requires_grad", nb::bool_(on));
        return self;
      }, "requires_grad"_a = true)
      .def_prop_rw("grad", [](const Tensor& t) -> std::optional<Tensor> {
        if (!t.p->grad) return std::nullopt;
        return Tensor(t.p->grad);
      }, [](Tensor& t, std::optional<Tensor> g) {
        if (g) {
          FK_CHECK(g->p != t.p, Runtime, "can't assign Variable as its own grad");  // a reference cycle otherwise
          FK_CHECK(g->shape() == t.shape(), Runtime, "assigned grad has data of a different size: ", to_string(g->shape()), " vs ", to_string(t.shape()));
          FK_CHECK(g->dtype() == t.dtype(), Runtime, "attempting to assign a gradient with dtype ", dtype_name(g->dtype()),
                   " to a tensor of dtype ", dtype_name(t.dtype()));
        }
        t.p->grad = g ? g->p : Ref<TensorImpl>();
      }, nb::arg("grad").none())
      .def_prop_ro("grad_fn", [](const Tensor& t) -> std::optional<GradFn> {
        if (!t.p->grad_fn) return std::nullopt;
        return GradFn{t.p->grad_fn};
      })
      .def_prop_ro("is_leaf", &Tensor::is_leaf)
      .def_prop_rw("data", [](const Tensor& t) { return untracked_alias(t); }, &set_data)
      .def("detach", [](const Tensor& t) { return detach(t); })
      .def("detach_", [](nb::handle self) {
        detach_(nb::cast<const Tensor&>(self));
        return self;
      })
      .def("retain_grad", [](const Tensor& t) {
        FK_CHECK(t.is_leaf(), NotImplemented, "retain_grad() on non-leaf tensors is not supported yet");
      })
      .def("backward", [](const Tensor& t, std::optional<Tensor> gradient, std::optional<bool> retain_graph, bool create_graph) {
        backward({t}, {gradient.value_or(Tensor())}, retain_graph.value_or(create_graph), create_graph);
      }, "gradient"_a = nb::none(), "retain_graph"_a = nb::none(), "create_graph"_a = false)
      // views and shapes
      .def("view", [](const Tensor& t, nb::args shape) {
        if (shape.size() == 1 && nb::isinstance<DTypeObj>(shape[0])) {
          FK_CHECK(to_dtype_arg(shape[0]) == t.dtype(), NotImplemented, "view(dtype) reinterpretation is not supported");
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
      .def("t", [](const Tensor& t) {
        FK_CHECK(t.ndim() <= 2, Runtime, "t() expects a tensor with <= 2 dimensions, but self is ", t.ndim(), "D");
        return t.ndim() < 2 ? t : transpose(t, 0, 1);
      })
      .def("contiguous", [](nb::handle self) { return same_or_new(self, contiguous(nb::cast<const Tensor&>(self))); })
      .def("clone", [](const Tensor& t) { return clone(t); })
      .def("to", [](nb::handle self, nb::handle a, nb::handle dtype, bool copy) {
        const Tensor& t = nb::cast<const Tensor&>(self);
        // to(dtype), to(device), to(device, dtype), to(other tensor)
        std::optional<DType> dt = opt_dtype(dtype);
        if (nb::isinstance<DTypeObj>(a)) dt = to_dtype_arg(a);
        else if (nb::isinstance<Tensor>(a)) dt = nb::cast<const Tensor&>(a).dtype();
        else if (!a.is_none()) {
          const std::string dev = nb::cast<std::string>(nb::str(a));
          FK_CHECK(dev == "cpu", NotImplemented, "fastkern has no CUDA tensors yet (asked for device '", dev, "')");
        }
        Tensor r = dt ? to_dtype(t, *dt) : t;
        return same_or_new(self, copy && r.p == t.p ? clone(t) : r);
      }, "device"_a = nb::none(), "dtype"_a = nb::none(), "copy"_a = false)
      .def("cpu", [](nb::handle self) { return nb::borrow(self); })
      .def("cuda", [](const Tensor&, nb::args, nb::kwargs) -> Tensor {
        throw Error(ErrorKind::NotImplemented, "fastkern has no CUDA tensors yet");
      })
      .def("type_as", [](const Tensor& t, const Tensor& o) { return to_dtype(t, o.dtype()); })
      .def("__getitem__", [](const Tensor& t, nb::handle idx) {
        if (PyLong_Check(idx.ptr()) && !PyBool_Check(idx.ptr())) return select(t, 0, to_int64(idx, "index", ErrorKind::Index));
        return index(t, to_index(idx));
      }, nb::arg("idx").none())
      .def("__setitem__", [](const Tensor& t, nb::handle idx, nb::handle value) {
        Tensor v;
        if (auto s = to_scalar(value)) v = scalar_tensor(*s, t.dtype());
        else v = as_tensor(value);
        index_put_(t, to_index(idx), v);
      }, nb::arg("idx").none(), nb::arg("value"))
      // arithmetic
      .def("__add__", &binop<BinOp::Add, false>).def("__radd__", &binop<BinOp::Add, true>)
      .def("__sub__", &binop<BinOp::Sub, false>).def("__rsub__", &binop<BinOp::Sub, true>)
      .def("__mul__", &binop<BinOp::Mul, false>).def("__rmul__", &binop<BinOp::Mul, true>)
      .def("__truediv__", &binop<BinOp::Div, false>).def("__rtruediv__", &binop<BinOp::Div, true>)
      .def("__floordiv__", &binop<BinOp::FloorDiv, false>).def("__rfloordiv__", &binop<BinOp::FloorDiv, true>)
      .def("__mod__", &binop<BinOp::Rem, false>).def("__rmod__", &binop<BinOp::Rem, true>)
      .def("__pow__", &binop<BinOp::Pow, false>).def("__rpow__", &binop<BinOp::Pow, true>)
      .def("__and__", &binop<BinOp::And, false>).def("__rand__", &binop<BinOp::And, true>)
      .def("__or__", &binop<BinOp::Or, false>).def("__ror__", &binop<BinOp::Or, true>)
      .def("__xor__", &binop<BinOp::Xor, false>).def("__rxor__", &binop<BinOp::Xor, true>)
      .def("__eq__", &binop<BinOp::Eq, false>).def("__ne__", &binop<BinOp::Ne, false>)
      .def("__lt__", &binop<BinOp::Lt, false>).def("__le__", &binop<BinOp::Le, false>)
      .def("__gt__", &binop<BinOp::Gt, false>).def("__ge__", &binop<BinOp::Ge, false>)
      .def("__iadd__", &iop<BinOp::Add>).def("__isub__", &iop<BinOp::Sub>)
      .def("__imul__", &iop<BinOp::Mul>).def("__itruediv__", &iop<BinOp::Div>)
      .def("__matmul__", [](const Tensor& a, const Tensor& b) { return matmul(a, b); })
      .def("__rmatmul__", [](const Tensor& a, const Tensor& b) { return matmul(b, a); })
      .def("__neg__", [](const Tensor& a) { return unary(UnOp::Neg, a); })
      .def("__pos__", [](const Tensor& a) { return a; })
      .def("__abs__", [](const Tensor& a) { return unary(UnOp::Abs, a); })
      .def("__invert__", [](const Tensor& a) { return unary(UnOp::Not, a); })
      // in place
      .def("add_", [](nb::handle self, nb::handle o, nb::handle alpha) {
        const Tensor& t = nb::cast<const Tensor&>(self);
        add_scaled_(BinOp::Add, t, operand(t, o), alpha_arg(alpha));
        return self;
      }, "other"_a, "alpha"_a = nb::none())
      .def("sub_", [](nb::handle self, nb::handle o, nb::handle alpha) {
        const Tensor& t = nb::cast<const Tensor&>(self);
        add_scaled_(BinOp::Sub, t, operand(t, o), alpha_arg(alpha));
        return self;
      }, "other"_a, "alpha"_a = nb::none())
      .def("mul_", &iop<BinOp::Mul>)
      .def("div_", &iop<BinOp::Div>)
      .def("pow_", &iop<BinOp::Pow>)
      .def("zero_", [](nb::handle self) {
        fill_(nb::cast<const Tensor&>(self), Scalar::of(0));
        return self;
      })
      .def("fill_", [](nb::handle self, nb::handle v) {
        const Tensor& t = nb::cast<const Tensor&>(self);
        if (auto s = to_scalar(v)) fill_(t, *s);
        else copy_(t, as_tensor(v));
        return self;
      })
      .def("copy_", [](nb::handle self, nb::handle src) {
        copy_(nb::cast<const Tensor&>(self), as_tensor(src));
        return self;
      })
      .def("clamp_", [](nb::handle self, nb::handle lo, nb::handle hi) {
        clamp_(nb::cast<const Tensor&>(self), opt_double(lo), opt_double(hi));
        return self;
      }, "min"_a = nb::none(), "max"_a = nb::none())
      .def("uniform_", [](nb::handle self, double lo, double hi) {
        Tensor t = nb::cast<Tensor>(self);
        uniform_(t, lo, hi);
        return self;
      }, "from_"_a = 0.0, "to"_a = 1.0)
      .def("normal_", [](nb::handle self, double mean, double std) {
        Tensor t = nb::cast<Tensor>(self);
        normal_(t, mean, std);
        return self;
      }, "mean"_a = 0.0, "std"_a = 1.0);

  // x.float(), x.long(), ...: the tensor itself when it already has that dtype.
  static const std::pair<const char*, DType> casts[] = {
      {"float", DType::Float32}, {"double", DType::Float64}, {"long", DType::Int64}, {"bool", DType::Bool},
      {"byte", DType::UInt8}};
  for (const auto& [name, dt] : casts) {
    const DType d = dt;
    cls.def(name, [d](nb::handle self) { return same_or_new(self, to_dtype(nb::cast<const Tensor&>(self), d)); });
  }

  // Elementwise ops from the op list (csrc/core/op_list.h): x.exp(), x.exp_(), fastkern.exp(x),
  // x.mul(y), fastkern.mul(x, y), ...; add and sub (alpha) and the logical forms below.
  nb::list unary_names, binary_names;
  for (int i = 0; i < kNumUnOps; i++) {
    const UnOp o = UnOp(i);
    both(kUnaryNames[i], [o](const Tensor& a) { return unary(o, a); });
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
    both(kBinaryNames[i], [o](const Tensor& a, nb::handle other) { return binary(o, a, operand(a, other)); }, "other"_a);
  }
  both("true_divide", [](const Tensor& a, nb::handle other) { return binary(BinOp::Div, a, operand(a, other)); },
       "other"_a);
  static const std::pair<const char*, BinOp> logical_ops[] = {
      {"logical_and", BinOp::And}, {"logical_or", BinOp::Or}, {"logical_xor", BinOp::Xor}};
  for (const auto& [name, op] : logical_ops) {
    const BinOp o = op;
    both(name, [o](const Tensor& a, nb::handle other) { return logical(o, a, operand(a, other)); }, "other"_a);
  }
  both("logical_not", &logical_not);
  m.attr("_unary_ops") = nb::tuple(unary_names);  // for the test that every op has a reference
  m.attr("_binary_ops") = nb::tuple(binary_names);
  both("add", [](const Tensor& a, nb::handle o, nb::handle alpha) { return add_scaled(BinOp::Add, a, operand(a, o), alpha_arg(alpha)); },
       "other"_a, "alpha"_a = nb::none());
  both("sub", [](const Tensor& a, nb::handle o, nb::handle alpha) { return add_scaled(BinOp::Sub, a, operand(a, o), alpha_arg(alpha)); },
       "other"_a, "alpha"_a = nb::none());
  both("clamp", [](const Tensor& a, nb::handle lo, nb::handle hi) { return clamp(a, opt_scalar(lo), opt_scalar(hi)); },
       "min"_a = nb::none(), "max"_a = nb::none());
  both("clip", [](const Tensor& a, nb::handle lo, nb::handle hi) { return clamp(a, opt_scalar(lo), opt_scalar(hi)); },
       "min"_a = nb::none(), "max"_a = nb::none());
  both("matmul", [](const Tensor& a, const Tensor& b) { return matmul(a, b); }, "other"_a);
  both("addmm", [](const Tensor& a, const Tensor& m1, const Tensor& m2) { return addmm(a, m1, m2); }, "mat1"_a, "mat2"_a);
  both("squeeze", [](const Tensor& a, nb::handle dim) {
    return dim.is_none() ? squeeze(a, std::nullopt) : squeeze_dims(a, to_dims(dim));
  }, "dim"_a = nb::none());
  both("unsqueeze", [](const Tensor& a, int64_t d) { return unsqueeze(a, d); }, "dim"_a);
  both("flatten", [](const Tensor& a, int64_t s, int64_t e) { return flatten(a, s, e); }, "start_dim"_a = 0, "end_dim"_a = -1);
  both("transpose", [](const Tensor& a, int64_t d0, int64_t d1) { return transpose(a, d0, d1); }, "dim0"_a, "dim1"_a);
  both("select", [](const Tensor& a, int64_t d, int64_t i) { return select(a, d, i); }, "dim"_a, "index"_a);
  both("narrow", [](const Tensor& a, int64_t d, int64_t s, int64_t len) { return narrow(a, d, s, len); },
       "dim"_a, "start"_a, "length"_a);
  both("nonzero", [](const Tensor& a) { return nonzero(a); });

  // reductions
  both("sum", [](const Tensor& a, nb::handle dim, bool keepdim, nb::handle dtype) {
    return sum(a, to_dimlist(dim), keepdim, opt_dtype(dtype));
  }, "dim"_a = nb::none(), "keepdim"_a = false, "dtype"_a = nb::none());
  both("mean", [](const Tensor& a, nb::handle dim, bool keepdim) { return mean(a, to_dimlist(dim), keepdim); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  both("prod", [](const Tensor& a, nb::handle dim, bool keepdim) { return prod(a, to_dimlist(dim), keepdim); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  both("amax", [](const Tensor& a, nb::handle dim, bool keepdim) { return amax(a, to_dimlist(dim), keepdim); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  both("amin", [](const Tensor& a, nb::handle dim, bool keepdim) { return amin(a, to_dimlist(dim), keepdim); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  nb::object namedtuple = nb::module_::import_("collections").attr("namedtuple");
  for (const char* name : {"max", "min"}) {
    const bool is_max = name[1] == 'a';
    nb::object result_type = namedtuple(std::string("return_types_") + name, nb::make_tuple("values", "indices"));
    both(name, [is_max, result_type](const Tensor& a, nb::handle dim, bool keepdim) -> nb::object {
      if (dim.is_none()) return nb::cast(is_max ? amax(a, DimList(), false) : amin(a, DimList(), false));
      if (nb::isinstance<Tensor>(dim))  // x.max(other) is maximum
        return nb::cast(binary(is_max ? BinOp::Max : BinOp::Min, a, nb::cast<const Tensor&>(dim)));
      auto [v, i] = max_dim(a, to_int64(dim, "dim", ErrorKind::Index), keepdim, is_max);
      return result_type(v, i);
    }, "dim"_a = nb::none(), "keepdim"_a = false);
  }
  both("argmax", [](const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argmax(a, dim, keepdim, true); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  both("argmin", [](const Tensor& a, std::optional<int64_t> dim, bool keepdim) { return argmax(a, dim, keepdim, false); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  both("all", [](const Tensor& a, nb::handle dim, bool keepdim) { return all(a, to_dimlist(dim), keepdim); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  both("any", [](const Tensor& a, nb::handle dim, bool keepdim) { return any(a, to_dimlist(dim), keepdim); },
       "dim"_a = nb::none(), "keepdim"_a = false);
  // var/std(dim, unbiased, keepdim) and var/std(dim, correction=, keepdim=)
  auto correction = [](nb::handle unbiased, nb::handle corr) {
    if (!corr.is_none()) return nb::cast<double>(nb::float_(corr));
    return unbiased.is_none() || nb::cast<bool>(unbiased) ? 1.0 : 0.0;
  };
  both("var", [correction](const Tensor& a, nb::handle dim, nb::handle unbiased, bool keepdim, nb::handle corr) {
    return var(a, to_dimlist(dim), correction(unbiased, corr), keepdim);
  }, "dim"_a = nb::none(), "unbiased"_a = nb::none(), "keepdim"_a = false, "correction"_a = nb::none());
  both("std", [correction](const Tensor& a, nb::handle dim, nb::handle unbiased, bool keepdim, nb::handle corr) {
    return std_(a, to_dimlist(dim), correction(unbiased, corr), keepdim);
  }, "dim"_a = nb::none(), "unbiased"_a = nb::none(), "keepdim"_a = false, "correction"_a = nb::none());
  both("logsumexp", [](const Tensor& a, nb::handle dim, bool keepdim) { return logsumexp(a, to_dimlist(dim), keepdim); },
       "dim"_a, "keepdim"_a = false);
  both("softmax", [](const Tensor& a, int64_t dim) { return softmax(a, dim); }, "dim"_a);
  both("log_softmax", [](const Tensor& a, int64_t dim) { return log_softmax(a, dim); }, "dim"_a);

  // module-level functions
  m.def("where", [](const Tensor& c, nb::handle a, nb::handle b) {
    // Numbers take the other operand's dtype (or the default dtype when both are numbers).
    const bool ta = nb::isinstance<Tensor>(a), tb = nb::isinstance<Tensor>(b);
    Tensor A = ta ? nb::cast<Tensor>(a) : Tensor(), B = tb ? nb::cast<Tensor>(b) : Tensor();
    if (!ta) A = tb ? operand(B, a) : operand(scalar_tensor(Scalar::of(0), DType::Float32), a);
    if (!tb) B = operand(A, b);
    return where(c, A, B);
  }, "condition"_a, "input"_a, "other"_a);
  m.def("cat", [](const std::vector<Tensor>& ts, int64_t dim) { return cat(ts, dim); }, "tensors"_a, "dim"_a = 0);
  m.def("concat", [](const std::vector<Tensor>& ts, int64_t dim) { return cat(ts, dim); }, "tensors"_a, "dim"_a = 0);
  m.def("stack", [](const std::vector<Tensor>& ts, int64_t dim) { return stack(ts, dim); }, "tensors"_a, "dim"_a = 0);
  m.def("permute", [](const Tensor& t, nb::handle dims) { return permute(t, to_dims(dims)); }, "input"_a, "dims"_a);
  m.def("reshape", [](const Tensor& t, nb::handle shape) { return reshape(t, to_dims(shape)); }, "input"_a, "shape"_a);
  m.def("_full", [](nb::handle shape, nb::handle value, nb::handle dtype) {
    return full(to_dims(shape), *to_scalar(value), to_dtype_arg(dtype));
  });
  m.def("_empty", [](nb::handle shape, nb::handle dtype) { return empty(to_dims(shape), to_dtype_arg(dtype)); });
  m.def("_arange", [](double s, double e, double step, nb::handle dtype) { return arange(s, e, step, to_dtype_arg(dtype)); });
  m.def("_linspace", [](double s, double e, int64_t n, nb::handle dtype) { return linspace(s, e, n, to_dtype_arg(dtype)); });
  m.def("_eye", [](int64_t n, int64_t mm, nb::handle dtype) { return eye(n, mm, to_dtype_arg(dtype)); });
  m.def("_randint", [](int64_t lo, int64_t hi, nb::handle shape, nb::handle dtype) {
    return randint(lo, hi, to_dims(shape), to_dtype_arg(dtype));
  });
  m.def("randperm", [](int64_t n) { return randperm(n); }, "n"_a);
  m.def("manual_seed", [](int64_t seed) { manual_seed(uint64_t(seed)); }, "seed"_a);
  m.def("_from_numpy", [](nb::ndarray<nb::device::cpu> a, nb::handle owner) { return from_numpy(a, owner); });
  m.def("from_dlpack", &from_dlpack, "ext_tensor"_a);
  m.def("is_grad_enabled", &grad_enabled);
  m.def("_set_grad_enabled", &set_grad_enabled);
  m.def("_backward", [](const std::vector<Tensor>& roots, const std::vector<std::optional<Tensor>>& grads, bool retain, bool create) {
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
  m.def("_conv2d", [=](const Tensor& x, const Tensor& w, const OptT& b, nb::handle s, nb::handle p, nb::handle d, int64_t g) {
    return conv2d(x, w, opt_tensor(b), pair(s), pair(p), pair(d), g);
  });
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
  m.def("_cross_entropy", [](const Tensor& x, const Tensor& t, int reduction, double eps, int64_t ignore) {
    return cross_entropy(x, t, reduction, eps, ignore);
  });
  m.def("_adam_step", &adam_step_, "param"_a, "grad"_a, "exp_avg"_a, "exp_avg_sq"_a, "lr"_a, "beta1"_a, "beta2"_a,
        "eps"_a, "weight_decay"_a, "decoupled"_a, "step"_a);
  m.def("get_num_threads", &num_threads);
  m.def("set_num_threads", &set_num_threads, "n"_a);
  m.def("_cpu_capability", [] { return std::string(cpu_kernels().isa); });
#ifdef FK_HAVE_CUDA
  m.attr("_cuda_built") = true;
#else
  m.attr("_cuda_built") = false;
#endif
  m.def("_cuda_device_count", &cuda_device_count);
}
