// NumPy and DLPack: tensors to and from arrays and capsules, sharing memory.
#include "convert.h"

namespace {

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
  for (size_t i = 0; i < a.ndim(); i++) {
    shape.push_back(int64_t(a.shape(i)));
    strides.push_back(a.stride(i));
    FK_CHECK(a.stride(i) >= 0, Value, "At least one stride in the given numpy array is negative, and tensors with "
             "negative strides are not currently supported. (You can probably work around this by making a copy of "
             "your array with array.copy().)");
  }
  const size_t nbytes = size_t(*extent(shape, strides)) * itemsize(*dt);
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
  checked_numel(t->shape);
  t->strides = d.strides ? Dims() : contiguous_strides(t->shape);
  if (d.strides)
    for (int i = 0; i < d.ndim; i++) {
      FK_CHECK(d.strides[i] >= 0, Value, "from_dlpack: negative strides are not supported, got ",
               d.strides[i], " at dim ", i);
      t->strides.push_back(d.strides[i]);
    }
  t->dtype = *dt;
  // The memory spans up to the last element's offset; the strides are the producer's word.
  const std::optional<int64_t> n = extent(t->shape, t->strides);
  FK_CHECK(n.has_value(), Value, "from_dlpack: the strides ", to_string(t->strides), " overflow for shape ",
           to_string(t->shape));
  char* data = static_cast<char*>(d.data) + d.byte_offset;
  t->storage = wrap_storage(data, size_t(*n) * itemsize(*dt), release_dlpack, m);
  PyCapsule_SetName(cap.ptr(), "used_dltensor");
  return canonical_bools(Tensor(std::move(t)));
}

}  // namespace

void bind_interop(nb::module_& m, nb::class_<Tensor>& cls) {
  cls.def("numpy", &to_numpy)
      .def("__dlpack__", [](const Tensor& t, nb::kwargs) { return to_dlpack(t); })
      .def("__dlpack_device__", [](const Tensor&) { return nb::make_tuple(1, 0); });
  m.def("_from_numpy", [](nb::ndarray<nb::device::cpu> a, nb::handle owner) { return from_numpy(a, owner); });
  m.def("from_dlpack", &from_dlpack, "ext_tensor"_a);
}
