#include "tensor.h"

#include <algorithm>

#include "autograd.h"
#include "backend.h"

namespace fk {

std::string to_string(const Dims& d) {
  std::string s = "[";
  for (int i = 0; i < d.n; i++) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

int64_t checked_numel(const Dims& shape) {
  int64_t span = 1, numel = 1;
  for (int i = 0; i < shape.n; i++) {
    FK_CHECK(shape[i] >= 0, Runtime, "Trying to create tensor with negative dimension ", shape[i], ": ",
             to_string(shape));
    // (bounded by 2^63 / 8, so byte strides fit too, as NumPy and DLPack need)
    FK_CHECK(!__builtin_mul_overflow(span, std::max<int64_t>(shape[i], 1), &span) && span <= INT64_MAX / 8, Runtime,
             "numel: integer multiplication overflow: the sizes or strides of shape ", to_string(shape),
             " do not fit in int64");
    numel *= shape[i];
  }
  return numel;
}

int wrap_dim(int64_t dim, int ndim) {
  const int n = ndim == 0 ? 1 : ndim;  // 0-d tensors accept dim 0 and -1, as in PyTorch
  FK_CHECK(dim >= -n && dim < n, Index, "Dimension out of range (expected to be in range of [", -n, ", ", n - 1,
           "], but got ", dim, ")");
  return int(dim < 0 ? dim + n : dim);
}

Ref<Storage> alloc_storage(size_t nbytes, Device device) {
  Ref<Storage> s = backend(device).alloc(nbytes);
  s->device = device;
  return s;
}

Ref<Storage> wrap_storage(void* data, size_t nbytes, void (*release)(void*, size_t, void*), void* ctx) {
  Ref<Storage> s(new Storage());
  s->data = data;
  s->nbytes = nbytes;
  s->release = release;
  s->ctx = ctx;
  return s;
}

// ---- tensors -----------------------------------------------------------------

TensorImpl::~TensorImpl() = default;

Dims contiguous_strides(const Dims& shape) {
  Dims s = Dims::filled(shape.n, 1);
  for (int i = shape.n - 2; i >= 0; i--) s[i] = s[i + 1] * (shape[i + 1] > 1 ? shape[i + 1] : 1);
  return s;
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int i = ndim() - 1; i >= 0; i--) {
    if (size(i) == 1) continue;
    if (strides()[i] != expect) return numel() == 0;
    expect *= size(i);
  }
  return true;
}

static size_t checked_nbytes(const Dims& shape, DType dtype) {
  int64_t bytes = 0;
  FK_CHECK(!__builtin_mul_overflow(checked_numel(shape), itemsize(dtype), &bytes) && bytes < (int64_t(1) << 48),
           Runtime, "out of memory: a ", dtype_name(dtype), " tensor of shape ", to_string(shape),
           " is too large to allocate");
  return size_t(bytes);
}

static Tensor contiguous_over(Ref<Storage> storage, const Dims& shape, DType dtype) {
  Ref<TensorImpl> t(new TensorImpl());
  t->storage = std::move(storage);
  t->shape = shape;
  t->strides = contiguous_strides(shape);
  t->dtype = dtype;
  return Tensor(std::move(t));
}

Tensor empty(const Dims& shape, DType dtype, Device device) {
  return contiguous_over(alloc_storage(checked_nbytes(shape, dtype), device), shape, dtype);
}

Tensor empty_pinned(const Dims& shape, DType dtype) {
  Ref<Storage> s = backend(Device::CUDA).alloc_pinned(checked_nbytes(shape, dtype));
  s->device = Device::CPU;
  return contiguous_over(std::move(s), shape, dtype);
}

std::optional<int64_t> extent(const Dims& shape, const Dims& strides) {
  if (checked_numel(shape) == 0) return 0;
  int64_t last = 0;
  for (int i = 0; i < shape.n; i++) {
    int64_t step = 0;
    if (strides[i] < 0 || __builtin_mul_overflow(shape[i] - 1, strides[i], &step) ||
        __builtin_add_overflow(last, step, &last))
      return std::nullopt;
  }
  return last + 1;
}

// The elements a geometry reaches must lie inside the storage: a view can never read or
// write outside its buffer, whatever computed its shape, strides and offset.
static void check_in_bounds(const Storage& s, DType dtype, const Dims& shape, const Dims& strides, int64_t offset) {
  const std::optional<int64_t> n = extent(shape, strides);
  int64_t end = 0;
  const bool inside = n && (*n == 0 || (offset >= 0 && !__builtin_add_overflow(offset, *n, &end) &&
                                        end <= int64_t(s.nbytes) / itemsize(dtype)));
  FK_CHECK(inside, Runtime, "view of shape ", to_string(shape), ", strides ", to_string(strides), " and offset ",
           offset, " reaches outside its storage of ", s.nbytes / size_t(itemsize(dtype)), " elements");
}

Tensor make_view(const Tensor& base, const Dims& shape, const Dims& strides, int64_t offset) {
  check_in_bounds(*base.p->storage, base.dtype(), shape, strides, offset);
  Ref<TensorImpl> t(new TensorImpl());
  t->storage = base.p->storage;
  t->offset = offset;
  t->shape = shape;
  t->strides = strides;
  t->dtype = base.dtype();
  t->is_view = true;
  t->base = base.p->is_view ? base.p->base : base.p;
  return Tensor(std::move(t));
}

Tensor detach(const Tensor& x) {
  Tensor t = make_view(x, x.shape(), x.strides(), x.p->offset);
  t.p->is_view = x.p->is_view;
  if (!x.p->is_view) t.p->base.reset();  // a saved output must not keep its own history alive
  return t;
}

namespace {
void release_alias(void*, size_t, void* owner) { delete static_cast<Ref<Storage>*>(owner); }
}  // namespace

Tensor untracked_alias(const Tensor& x) {
  const Storage& owner = *x.p->storage;
  Tensor t = detach(x);
  t.p->storage = wrap_storage(owner.data, owner.nbytes, release_alias, new Ref<Storage>(x.p->storage));
  t.p->storage->device = owner.device;
  return t;
}

void detach_(const Tensor& t) {
  t.p->grad_fn.reset();
  t.p->requires_grad = false;
}

void set_data(const Tensor& t, const Tensor& src) {
  t.p->storage = src.p->storage;
  t.p->offset = src.p->offset;
  t.p->shape = src.shape();
  t.p->strides = src.strides();
  t.p->dtype = src.dtype();
}

}  // namespace fk
