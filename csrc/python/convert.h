// Argument conversion for the bindings, shared by the files of csrc/python: Python objects to
// the C++ types of the ops (to_int64, to_scalar, to_dims, to_index, as_tensor, operand, ...) and
// back. They are defined here with internal linkage, so every binding file compiles (and inlines)
// them as the single file did.
#pragma once

#include <algorithm>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "../core/autograd.h"
#include "../core/ops.h"

namespace nb = nanobind;
using namespace nb::literals;
using namespace fk;

// The bindings' own names: an anonymous namespace when the bindings were one file; the using
// directive after it keeps name lookup in every file as it was there.
namespace fk_bind {

// ---- dtype and device objects ----------------------------------------------------

struct DTypeObj {
  DType d;
};
inline nb::handle g_dtypes[kNumDTypes];  // the unique fastkern.<dtype> objects, owned by the module

// fastkern.device, as torch.device: a type and an optional index ("cuda" has none, "cuda:0" has 0).
struct DeviceObj {
  Device type;
  int64_t index = -1;
};
inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }
DeviceObj parse_device(const std::string& s);
// The device a tensor lives on, as PyTorch names it: cpu, or cuda with its index.
inline DeviceObj device_of(const Tensor& t) { return {t.device(), t.device() == Device::CPU ? -1 : 0}; }

// The helpers have internal linkage in every file, as in the single file the bindings were.
namespace {

inline DType to_dtype_arg(nb::handle h) {
  if (nb::isinstance<DTypeObj>(h)) return nb::cast<DTypeObj&>(h).d;
  throw nb::type_error(("expected a fastkern dtype, got " + nb::cast<std::string>(nb::repr(h))).c_str());
}
inline std::optional<DType> opt_dtype(nb::handle h) {
  if (h.is_none()) return std::nullopt;
  return to_dtype_arg(h);
}
// A device argument: a fastkern.device or its string ("cpu", "cuda", "cuda:0").
inline Device to_device_arg(nb::handle h) {
  if (nb::isinstance<DeviceObj>(h)) return nb::cast<DeviceObj&>(h).type;
  if (nb::isinstance<nb::str>(h)) return parse_device(nb::cast<std::string>(h)).type;
  throw nb::type_error(
      ("expected a device (such as 'cpu' or fastkern.device('cuda')), got " + nb::cast<std::string>(nb::repr(h)))
          .c_str());
}
inline std::optional<Device> opt_device(nb::handle h) {
  if (h.is_none()) return std::nullopt;
  return to_device_arg(h);
}

// ---- argument conversion ---------------------------------------------------------

// A Python integer (or anything with __index__) as int64: TypeError for other types,
// `kind` (with a message naming the value) when it does not fit.
inline int64_t to_int64(nb::handle h, const char* what, ErrorKind kind = ErrorKind::Value) {
  PyObject* o = h.ptr();
  if (!PyIndex_Check(o)) throw nb::type_error(str_cat(what, " must be an integer, not ", Py_TYPE(o)->tp_name).c_str());
  nb::object i = nb::steal(PyNumber_Index(o));
  if (!i.is_valid()) throw nb::python_error();
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(i.ptr(), &overflow);
  if (overflow) throw Error(kind, str_cat(what, " ", nb::cast<std::string>(nb::str(i)), " is out of the int64 range"));
  return v;
}

inline std::optional<Scalar> to_scalar(nb::handle h) {
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
inline Tensor as_tensor(nb::handle h) {
  if (nb::isinstance<Tensor>(h)) return nb::cast<Tensor>(h);
  return nb::cast<Tensor>(nb::module_::import_("fastkern").attr("tensor")(h));
}

inline Dims to_dims(nb::handle h) {
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
inline Dims args_dims(const nb::args& args) {
  if (args.size() == 1 && !PyIndex_Check(args[0].ptr())) return to_dims(args[0]);
  Dims d;
  for (nb::handle x : args) d.push_back(to_int64(x, "size"));
  return d;
}

inline DimList to_dimlist(nb::handle h) {
  DimList d;
  if (h.is_none()) return d;
  d.dims = to_dims(h);
  d.all = d.dims.empty();  // dim=() reduces everything, as PyTorch's sum(x, ())
  return d;
}

inline std::optional<Scalar> opt_scalar(nb::handle h) {
  if (h.is_none()) return std::nullopt;
  if (nb::isinstance<Tensor>(h)) {
    const Tensor t = nb::cast<Tensor>(h);
    FK_CHECK(t.numel() == 1, Runtime, "bounds must be numbers or one-element tensors, got shape ",
             to_string(t.shape()));
    return fk::item(t);
  }
  auto s = to_scalar(h);
  if (!s) throw nb::type_error("expected a number");
  return s;
}
inline std::optional<double> opt_double(nb::handle h) {
  auto s = opt_scalar(h);
  return s ? std::optional<double>(s->as_double()) : std::nullopt;
}

inline nb::tuple dims_tuple(const Dims& d) {
  PyObject* t = PyTuple_New(d.n);
  for (int i = 0; i < d.n; i++) PyTuple_SET_ITEM(t, i, PyLong_FromLongLong(d[i]));
  return nb::steal<nb::tuple>(t);
}

// ---- small helpers shared by methods and functions ---------------------------------

// The single value of t as a Python number.
inline nb::object py_item(const Tensor& t) {
  const Scalar v = fk::item(t);
  switch (v.kind) {
    case Scalar::Bool: return nb::bool_(v.i != 0);
    case Scalar::Int: return nb::int_(v.i);
    default: return nb::float_(v.f);
  }
}

// The other operand of a method: a tensor, or a number wrapped as PyTorch does.
inline Tensor operand(const Tensor& self, nb::handle other) {
  if (nb::isinstance<Tensor>(other)) return nb::cast<Tensor>(other);
  if (auto s = to_scalar(other)) return scalar_tensor(*s, scalar_result_type(self, *s));
  return as_tensor(other);
}

// PyTorch's alpha of add/sub (1 when not given).
inline Scalar alpha_arg(nb::handle alpha) {
  if (alpha.is_none()) return Scalar::of_int(1);
  auto s = to_scalar(alpha);
  if (!s) throw nb::type_error("alpha must be a number");
  return *s;
}

}  // namespace

// x.grad_fn: a node of the autograd graph (bound in autograd.cpp).
struct GradFn {
  Ref<Node> n;
};

// ---- indexing (convert.cpp) -------------------------------------------------------

IndexItem to_index_item(nb::handle h);
std::vector<IndexItem> to_index(nb::handle h);

}  // namespace fk_bind
using namespace fk_bind;

// The parts of the module, one file each, called in this order from NB_MODULE (module.cpp).
void bind_autograd(nb::module_& m);                            // autograd.cpp
nb::class_<Tensor> bind_tensor_methods(nb::module_& m);        // tensor_methods.cpp
void bind_interop(nb::module_& m, nb::class_<Tensor>& cls);    // interop.cpp
void bind_functions(nb::module_& m, nb::class_<Tensor>& cls);  // functions.cpp
