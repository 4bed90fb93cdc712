// Indexing arguments: x[...] as the IndexItems of fk::index and fk::index_put_.
#include "convert.h"

namespace fk_bind {

DeviceObj parse_device(const std::string& s) {
  const size_t colon = s.find(':');
  const std::string type = s.substr(0, colon);
  FK_CHECK(type == "cpu" || type == "cuda", Runtime,
           "Expected one of cpu, cuda device type at start of device string: ", s);
  DeviceObj d{type == "cpu" ? Device::CPU : Device::CUDA};
  if (colon == std::string::npos) return d;
  const std::string idx = s.substr(colon + 1);
  FK_CHECK(!idx.empty() && idx.size() < 10 && idx.find_first_not_of("0123456789") == std::string::npos, Runtime,
           "Invalid device string: '", s, "'");
  d.index = std::stoll(idx);
  FK_CHECK(d.type == Device::CUDA || d.index == 0, Runtime, "CPU device index must be -1 or zero, got ", d.index);
  // One device per type so far: a second GPU must not silently mean the first.
  FK_CHECK(d.index == 0, NotImplemented, "fastkern uses one CUDA device, cuda:0, so far (asked for ", s, ")");
  return d;
}

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

}  // namespace fk_bind
