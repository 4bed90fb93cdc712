// Python bindings: argument conversion and nothing else. Operators and common
// methods go straight to the C++ ops, with no Python wrapper in between.
//
// The module is bound in parts: module.cpp (this file: the entry point, exception translation,
// dtype and device objects), convert.h/.cpp (argument conversion), tensor_methods.cpp,
// autograd.cpp (the graph's nodes), interop.cpp (NumPy and DLPack) and functions.cpp.
#include <typeinfo>

#include "convert.h"
#include "../cpu/parallel.h"  // the thread pool releases the GIL through hooks set here

namespace {
std::string device_obj_str(const DeviceObj& d) {
  return d.index < 0 ? device_name(d.type) : str_cat(device_name(d.type), ":", d.index);
}
}  // namespace

NB_MODULE(_C, m) {
  // Module objects referenced from Python-level caches at interpreter exit are not leaks.
  nb::set_leak_warnings(false);
  set_gil_hooks([]() -> void* { return PyGILState_Check() ? PyEval_SaveThread() : nullptr; },
                [](void* state) {
                  if (state) PyEval_RestoreThread(static_cast<PyThreadState*>(state));
                });
  // torch.cuda.OutOfMemoryError's twin: a RuntimeError, so `except RuntimeError` catches it too.
  static PyObject* oom = PyErr_NewException("fastkern.cuda.OutOfMemoryError", PyExc_RuntimeError, nullptr);
  m.attr("OutOfMemoryError") = nb::handle(oom);
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
        case ErrorKind::OutOfMemory: type = oom; break;
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
      .def("__init__", [](DeviceObj* d, const std::string& s) { new (d) DeviceObj(parse_device(s)); })
      .def_prop_ro("type", [](const DeviceObj& d) { return device_name(d.type); })
      .def_prop_ro("index", [](const DeviceObj& d) { return d.index < 0 ? std::nullopt : std::optional(d.index); })
      .def("__str__", &device_obj_str)
      .def("__repr__",
           [](const DeviceObj& d) {
             return str_cat("device(type='", device_name(d.type), "'", d.index < 0 ? "" : str_cat(", index=", d.index),
                            ")");
           })
      .def("__eq__",
           [](const DeviceObj& d, nb::handle o) {
             if (nb::isinstance<DeviceObj>(o)) {
               const DeviceObj& e = nb::cast<const DeviceObj&>(o);
               return e.type == d.type && e.index == d.index;
             }
             return nb::isinstance<nb::str>(o) && nb::cast<std::string>(o) == device_obj_str(d);
           })
      .def("__hash__", [](const DeviceObj& d) { return std::hash<std::string>()(device_obj_str(d)); });

  bind_autograd(m);
  nb::class_<Tensor> cls = bind_tensor_methods(m);
  bind_interop(m, cls);
  bind_functions(m, cls);
}
