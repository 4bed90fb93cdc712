// NumPy and DLPack: tensors to and from arrays and capsules, sharing memory. nanobind's ndarray
// speaks DLPack (legacy and versioned capsules, any device); fastkern supplies the device and
// checks what it imports.
#include "convert.h"
#include "../core/backend.h"

namespace {

// ---- dtypes and devices ------------------------------------------------------------

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

// The DLPack device (type, id) of a tensor. Storage records no device index yet: one CUDA device.
std::pair<int, int> dl_device(const Tensor& t) {
  const int type = t.device() == Device::CUDA ? nb::device::cuda::value : nb::device::cpu::value;
  return {type, 0};
}

std::string device_str(const Tensor& t) { return t.device() == Device::CUDA ? "cuda:0" : "cpu"; }

// ---- export ------------------------------------------------------------------------

// An nb::ndarray over t's memory, on t's device, that keeps t's storage alive.
template <class Framework>
nb::ndarray<Framework> as_ndarray(const Tensor& t) {
  size_t shape[kMaxDims];
  for (int i = 0; i < t.ndim(); i++) shape[i] = size_t(t.size(i));
  auto* keep = new Ref<Storage>(t.p->storage);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<Ref<Storage>*>(p); });
  const auto [type, id] = dl_device(t);
  return nb::ndarray<Framework>(t.raw(), size_t(t.ndim()), shape, owner, t.strides().v, dl_dtype(t.dtype()), type, id);
}

nb::object to_numpy(const Tensor& t) {
  FK_CHECK(t.device() == Device::CPU, Type, "can't convert ", device_str(t),
           " device type tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first.");
  FK_CHECK(!t.requires_grad(), Runtime,
           "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.");
  return as_ndarray<nb::numpy>(t).cast();
}

// Tensor.__dlpack__: nanobind's array_api object makes the capsule (legacy, or versioned when
// max_version asks for 1.x) and refuses a dl_device other than the tensor's own.
nb::object to_dlpack(const Tensor& t, nb::handle stream, nb::handle max_version, nb::handle dl_device_arg,
                     nb::handle copy) {
  // copy=True is honoured here (nanobind refuses it): the consumer gets memory nobody else has.
  const bool fresh = copy.is(Py_True);
  const Tensor src = fresh ? clone(detach(t)) : t;
  // stream: CPU memory needs no synchronisation; device memory is handed over once the work
  // queued on it is done, which orders any consumer stream after it.
  if (src.device() == Device::CUDA) cuda_synchronize();
  return as_ndarray<nb::array_api>(src).cast().attr("__dlpack__")("stream"_a = stream, "max_version"_a = max_version,
                                                                  "dl_device"_a = dl_device_arg,
                                                                  "copy"_a = fresh ? nb::handle(Py_None) : copy);
}

// ---- import ------------------------------------------------------------------------

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
    FK_CHECK(a.stride(i) >= 0, Value,
             "At least one stride in the given numpy array is negative, and tensors with "
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

// The storage over imported memory owns the nb::ndarray, and so the producer's managed tensor.
void release_ndarray(void*, size_t, void* a) {
  if (!Py_IsInitialized()) return;  // at exit the producer is gone; leave its memory be
  nb::gil_scoped_acquire gil;       // producers' deleters may touch Python objects
  delete static_cast<nb::ndarray<>*>(a);
}

// nanobind's caster says only that it refused `obj`; say why.
[[noreturn]] void import_failed(nb::handle obj) {
  const bool is_capsule = PyCapsule_CheckExact(obj.ptr());
  if (is_capsule) {
    const char* name = PyCapsule_GetName(obj.ptr());
    const std::string s = name ? name : "";
    FK_CHECK(s.rfind("used_", 0) != 0, Runtime,
             "from_dlpack: the capsule was already consumed (a DLPack capsule can be imported only once)");
    FK_CHECK(s == "dltensor" || s == "dltensor_versioned", Type,
             "from_dlpack: expected a DLPack capsule named 'dltensor' or 'dltensor_versioned', got '", s, "'");
  }
  // Read-only memory is the usual refusal: a read-only import takes it (and lets it go again).
  nb::ndarray<nb::ro> readonly;
  if (nb::try_cast(obj, readonly, false))
    throw nb::buffer_error(
        "from_dlpack: the producer's memory is read-only, and fastkern tensors are always "
        "writable; import a writable copy instead");
  const bool has_dlpack = !is_capsule && nb::hasattr(obj, "__dlpack__");
  // The caster swallows the producer's own error (e.g. a tensor that requires grad): ask again.
  if (has_dlpack) obj.attr("__dlpack__")();
  FK_CHECK(is_capsule || has_dlpack, Type, "from_dlpack: expected an object with __dlpack__ or a DLPack capsule, got ",
           Py_TYPE(obj.ptr())->tp_name);
  throw Error(ErrorKind::Value,
              "from_dlpack: the DLPack tensor was refused (ndim outside 0..128, or __dlpack__ "
              "returned no DLPack capsule)");
}

Tensor from_dlpack(nb::handle obj) {
  nb::ndarray<> a;  // any device, dtype and layout: checked below with fastkern's words
  if (!nb::try_cast(obj, a, false)) import_failed(obj);
  const int dev = a.device_type();
  if (dev == nb::device::cuda::value) {
    FK_CHECK(cuda_device_count() > 0, Runtime, "from_dlpack: the tensor is on cuda:", a.device_id(),
             ", and CUDA is not available to fastkern here; copy it to the CPU first");
    FK_CHECK(a.device_id() == 0, NotImplemented, "from_dlpack: the tensor is on cuda:", a.device_id(),
             ", and fastkern uses one CUDA device, cuda:0, so far");
  } else {
    FK_CHECK(dev == nb::device::cpu::value, Runtime,
             "from_dlpack: only CPU and CUDA tensors are supported (device type ", dev, ")");
  }
  const nb::dlpack::dtype d = a.dtype();
  FK_CHECK(d.lanes == 1, Type, "from_dlpack: vector dtypes are not supported");
  const auto dt = from_dl_dtype(d);
  FK_CHECK(dt.has_value(), Type, "from_dlpack: unsupported dtype (code ", int(d.code), ", bits ", int(d.bits), ")");
  FK_CHECK(a.ndim() <= size_t(kMaxDims), Value, "from_dlpack: at most ", kMaxDims, " dims are supported, got ",
           a.ndim());
  Ref<TensorImpl> t(new TensorImpl());
  for (size_t i = 0; i < a.ndim(); i++) t->shape.push_back(a.shape_ptr()[i]);
  checked_numel(t->shape);
  for (size_t i = 0; i < a.ndim(); i++) {  // nanobind fills in the strides a producer leaves out
    FK_CHECK(a.stride(i) >= 0, Value, "from_dlpack: negative strides are not supported, got ", a.stride(i), " at dim ",
             i);
    t->strides.push_back(a.stride(i));
  }
  t->dtype = *dt;
  // The memory spans up to the last element's offset; the strides are the producer's word.
  const std::optional<int64_t> n = extent(t->shape, t->strides);
  FK_CHECK(n.has_value(), Value, "from_dlpack: the strides ", to_string(t->strides), " overflow for shape ",
           to_string(t->shape));
  void* data = a.data();  // data + byte_offset
  t->storage = wrap_storage(data, size_t(*n) * itemsize(*dt), release_ndarray, new nb::ndarray<>(std::move(a)));
  if (dev == nb::device::cuda::value) t->storage->device = Device::CUDA;
  return canonical_bools(Tensor(std::move(t)));
}

}  // namespace

void bind_interop(nb::module_& m, nb::class_<Tensor>& cls) {
  cls.def("numpy", &to_numpy)
      .def("__dlpack__", &to_dlpack, nb::kw_only(), "stream"_a = nb::none(), "max_version"_a = nb::none(),
           "dl_device"_a = nb::none(), "copy"_a = nb::none())
      .def("__dlpack_device__", &dl_device);
  m.def("_from_numpy", [](nb::ndarray<nb::device::cpu> a, nb::handle owner) { return from_numpy(a, owner); });
  m.def("from_dlpack", &from_dlpack, "ext_tensor"_a);
}
