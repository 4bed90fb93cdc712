// Storage, TensorImpl and the Tensor handle.
#pragma once
#include <optional>

#include "common.h"
#include "dtype.h"

namespace fk {

struct Node;

// A refcounted buffer. Views share it, and with it the version counter that
// autograd uses to detect in-place changes to saved tensors.
struct Storage : RefCounted {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device = Device::CPU;
  uint64_t version = 0;
  bool pinned = false;  // page-locked host memory (pin_memory): copies to a device need not wait
  void (*release)(void* data, size_t nbytes, void* ctx) = nullptr;
  void* ctx = nullptr;
  // Scalars and tiny tensors live here: no second allocation on the hot path.
  alignas(16) unsigned char inline_buf[32];
  ~Storage() override {
    if (release) release(data, nbytes, ctx);
  }
};

// Number of CUDA devices; 0 when the CUDA backend was not built or no device is present.
int cuda_device_count();

// Fresh storage from the caching allocator of `device`.
Ref<Storage> alloc_storage(size_t nbytes, Device device = Device::CPU);
// Storage over memory owned elsewhere; `release(data, nbytes, ctx)` runs when it dies.
Ref<Storage> wrap_storage(void* data, size_t nbytes, void (*release)(void*, size_t, void*), void* ctx);

struct TensorImpl : RefCounted {
  Ref<Storage> storage;
  int64_t offset = 0;   // in elements
  Dims shape, strides;  // strides in elements
  DType dtype = DType::Float32;
  bool requires_grad = false;  // set on leaves; non-leaves have grad_fn
  bool is_view = false;
  Ref<TensorImpl> base;         // for views: the tensor that owns the memory layout (never itself a view)
  bool wrapped_number = false;  // a Python scalar turned tensor: weakest in type promotion
  Ref<TensorImpl> grad;
  Ref<Node> grad_fn;
  ~TensorImpl() override;  // out of line: Node is incomplete here
};

struct Tensor {
  Ref<TensorImpl> p;

  Tensor() = default;
  explicit Tensor(Ref<TensorImpl> impl) : p(std::move(impl)) {}
  explicit Tensor(TensorImpl* impl) : p(impl) {}

  bool defined() const { return bool(p); }
  TensorImpl* impl() const { return p.get(); }
  const Dims& shape() const { return p->shape; }
  const Dims& strides() const { return p->strides; }
  int ndim() const { return p->shape.n; }
  int64_t size(int d) const { return p->shape[d]; }
  int64_t numel() const { return p->shape.prod(); }
  DType dtype() const { return p->dtype; }
  Device device() const { return p->storage->device; }
  bool is_contiguous() const;
  char* raw() const { return static_cast<char*>(p->storage->data) + p->offset * itemsize(p->dtype); }
  template <class T>
  T* data() const {
    return reinterpret_cast<T*>(raw());
  }
  bool requires_grad() const { return p->requires_grad || bool(p->grad_fn); }
  bool is_leaf() const { return !p->grad_fn; }
  uint64_t version() const { return p->storage->version; }
  void bump_version() const { p->storage->version++; }
};

Dims contiguous_strides(const Dims& shape);
// The elements a geometry spans from its first one: 1 + the offset of its last element, 0 when
// it has none; nullopt for a negative stride or an offset beyond int64.
std::optional<int64_t> extent(const Dims& shape, const Dims& strides);

// New uninitialised contiguous tensor.
Tensor empty(const Dims& shape, DType dtype, Device device = Device::CPU);
// A CPU tensor in page-locked memory from the CUDA backend (an error without a CUDA device).
Tensor empty_pinned(const Dims& shape, DType dtype);
// A view: same storage, new geometry. Autograd is the caller's business.
Tensor make_view(const Tensor& base, const Dims& shape, const Dims& strides, int64_t offset);
// Same memory, no autograd history, same version counter (PyTorch's detach()).
Tensor detach(const Tensor& t);
// Same memory, own version counter, so in-place changes through it are not tracked (`.data`).
Tensor untracked_alias(const Tensor& t);
// x.detach_(): drops the history, in place.
void detach_(const Tensor& t);
// x.data = src: t takes src's memory and geometry, keeping its own autograd identity.
void set_data(const Tensor& t, const Tensor& src);

}  // namespace fk
