// Views, reshapes, concatenation and indexing, each with its backward.
#include <algorithm>

#include "autograd.h"
#include "backend.h"
#include "ops.h"

namespace fk {

static void reshape_bw(Node& n, const Tensor& g, Tensor* gi) { gi[0] = reshape(g, n.in_shape[0]); }

// Replaces a single -1 by the size that keeps numel.
static Dims infer_size(const Dims& shape, int64_t numel) {
  Dims out = shape;
  int infer = -1;
  for (int i = 0; i < shape.n; i++) {
    if (shape[i] == -1) {
      FK_CHECK(infer < 0, Runtime, "only one dimension can be inferred in shape ", to_string(shape));
      infer = i;
      out[i] = 1;
    } else {
      FK_CHECK(shape[i] >= 0, Runtime, "invalid shape dimension ", shape[i], " in ", to_string(shape));
    }
  }
  const int64_t known = checked_numel(out);
  if (infer >= 0) {
    FK_CHECK(known != 0 && numel % known == 0, Runtime, "shape '", to_string(shape), "' is invalid for input of size ",
             numel);
    out[infer] = numel / known;
  }
  FK_CHECK(checked_numel(out) == numel, Runtime, "shape '", to_string(shape), "' is invalid for input of size ", numel);
  return out;
}

// Strides that view (shape, strides) as `to` without copying, if any exist: each
// run of old dims that is contiguous in memory may be split or merged freely.
static std::optional<Dims> view_strides(const Dims& shape, const Dims& strides, const Dims& to) {
  Dims out = Dims::filled(to.n, 1);
  if (shape.prod() == 0 || shape.n == 0) return contiguous_strides(to);
  int vd = to.n - 1;
  int64_t base = strides[shape.n - 1], tensor_numel = 1, view_numel = 1;
  for (int td = shape.n - 1; td >= 0; td--) {
    tensor_numel *= shape[td];
    if (td == 0 || (shape[td - 1] != 1 && strides[td - 1] != tensor_numel * base)) {
      while (vd >= 0 && (view_numel < tensor_numel || to[vd] == 1)) {
        out[vd] = view_numel * base;
        view_numel *= to[vd];
        vd--;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (td > 0) {
        base = strides[td - 1];
        tensor_numel = view_numel = 1;
      }
    }
  }
  if (vd != -1) return std::nullopt;
  return out;
}

// A view with a history named as PyTorch names the op that made it (view, squeeze, ...).
static Tensor view_named(const Tensor& a, const Dims& shape, const char* name) {
  const Dims to = infer_size(shape, a.numel());
  auto st = view_strides(a.shape(), a.strides(), to);
  FK_CHECK(st.has_value(), Runtime, "view size is not compatible with input tensor's size and stride (input ",
           to_string(a.shape()), ", requested ", to_string(to), "). Use .reshape(...) instead.");
  Tensor out = make_view(a, to, *st, a.p->offset);
  set_history(out, make_node(name, reshape_bw, {&a}));
  return out;
}

Tensor view(const Tensor& a, const Dims& shape) { return view_named(a, shape, "ViewBackward0"); }

Tensor reshape(const Tensor& a, const Dims& shape) {
  const Dims to = infer_size(shape, a.numel());
  if (view_strides(a.shape(), a.strides(), to)) return view(a, to);
  return view(clone(a), to);
}

static void permute_bw(Node& n, const Tensor& g, Tensor* gi) {
  Dims inv = n.ints;
  for (int i = 0; i < n.ints.n; i++) inv[n.ints[i]] = i;
  gi[0] = permute(g, inv);
}

// permute, transpose and t() are one view; PyTorch names their nodes apart.
static Tensor permute_named(const Tensor& a, const Dims& dims, const char* name) {
  FK_CHECK(dims.n == a.ndim(), Runtime, "permute: number of dims don't match: the tensor has ", a.ndim(), " dims but ",
           dims.n, " were given");
  Dims shape, strides, order;
  bool seen[kMaxDims] = {};
  for (int i = 0; i < dims.n; i++) {
    const int d = wrap_dim(dims[i], a.ndim());
    FK_CHECK(!seen[d], Runtime, "permute: repeated dim ", dims[i], " in ", to_string(dims));
    seen[d] = true;
    order.push_back(d);
    shape.push_back(a.size(d));
    strides.push_back(a.strides()[d]);
  }
  Tensor out = make_view(a, shape, strides, a.p->offset);
  Ref<Node> n = make_node(name, permute_bw, {&a});
  if (n) n->ints = order;
  set_history(out, n);
  return out;
}

Tensor permute(const Tensor& a, const Dims& dims) { return permute_named(a, dims, "PermuteBackward0"); }

static Dims identity_order(int n) {
  Dims order;
  for (int i = 0; i < n; i++) order.push_back(i);
  return order;
}

Tensor transpose(const Tensor& a, int64_t d0, int64_t d1) {
  const int w0 = wrap_dim(d0, a.ndim()), w1 = wrap_dim(d1, a.ndim());
  Dims order = identity_order(a.ndim());
  if (a.ndim() > 0) std::swap(order[w0], order[w1]);
  return permute_named(a, order, "TransposeBackward0");
}

Tensor transpose2d(const Tensor& a) {
  FK_CHECK(a.ndim() <= 2, Runtime, "t() expects a tensor with <= 2 dimensions, but self is ", a.ndim(), "D");
  Dims order = identity_order(a.ndim());
  if (a.ndim() == 2) std::swap(order[0], order[1]);
  return permute_named(a, order, "TBackward0");
}

static void identity_bw(Node&, const Tensor& g, Tensor* gi) { gi[0] = g; }

Tensor expand(const Tensor& a, const Dims& shape) {
  FK_CHECK(shape.n >= a.ndim(), Runtime, "expand: the number of sizes provided (", shape.n,
           ") must be greater or equal to the number of dimensions in the tensor (", a.ndim(), ")");
  Dims sz = shape, st = Dims::filled(shape.n, 0);
  const int off = shape.n - a.ndim();
  for (int i = 0; i < shape.n; i++) {
    if (i < off) {
      FK_CHECK(shape[i] >= 0, Runtime, "expand: the requested size ", shape[i], " at dimension ", i,
               " is negative (-1 is not allowed in a leading, non-existing dimension)");
      continue;
    }
    const int64_t have = a.size(i - off);
    if (shape[i] == -1) sz[i] = have;
    FK_CHECK(sz[i] >= 0, Runtime, "expand: the requested size ", shape[i], " at dimension ", i,
             " is negative (only -1, meaning 'keep this size', is allowed). Target sizes: ", to_string(shape));
    FK_CHECK(sz[i] == have || have == 1, Runtime, "The expanded size of the tensor (", sz[i],
             ") must match the existing size (", have, ") at non-singleton dimension ", i,
             ".  Target sizes: ", to_string(shape), ".  Tensor sizes: ", to_string(a.shape()));
    st[i] = sz[i] == have ? a.strides()[i - off] : 0;
  }
  Tensor out = make_view(a, sz, st, a.p->offset);
  set_history(out, make_node("ExpandBackward0", identity_bw, {&a}));  // the engine sums g back to a's shape
  return out;
}

Tensor squeeze(const Tensor& a, std::optional<int64_t> dim) {
  Dims shape;
  const int d = dim ? wrap_dim(*dim, a.ndim()) : -1;
  for (int i = 0; i < a.ndim(); i++)
    if (!(a.size(i) == 1 && (d < 0 || d == i))) shape.push_back(a.size(i));
  return view_named(a, shape, dim ? "SqueezeBackward1" : "SqueezeBackward0");
}

Tensor unsqueeze(const Tensor& a, int64_t dim) {
  const int d = wrap_dim(dim, a.ndim() + 1);
  Dims shape = a.shape(), strides = a.strides();
  shape.insert(d, 1);
  strides.insert(d, d < a.ndim() ? a.strides()[d] * a.size(d) : 1);
  Tensor out = make_view(a, shape, strides, a.p->offset);
  set_history(out, make_node("UnsqueezeBackward0", reshape_bw, {&a}));
  return out;
}

Tensor flatten(const Tensor& a, int64_t start, int64_t end) {
  const int s = wrap_dim(start, a.ndim()), e = wrap_dim(end, a.ndim());
  if (a.ndim() == 0) return reshape(a, {1});
  FK_CHECK(s <= e, Runtime, "flatten() has invalid args: start_dim (", start, ") cannot come after end_dim (", end,
           ")");
  Dims shape;
  for (int i = 0; i < s; i++) shape.push_back(a.size(i));
  int64_t mid = 1;
  for (int i = s; i <= e; i++) mid *= a.size(i);
  shape.push_back(mid);
  for (int i = e + 1; i < a.ndim(); i++) shape.push_back(a.size(i));
  return reshape(a, shape);
}

// ---- select and slice ----------------------------------------------------------

static void select_bw(Node& n, const Tensor& g, Tensor* gi) {
  Tensor z = zeros(n.in_shape[0], g.dtype(), g.device());
  copy_(select(z, n.ints[0], n.ints[1]), g);
  gi[0] = z;
}

Tensor select(const Tensor& a, int64_t dim, int64_t index) {
  FK_CHECK(a.ndim() > 0, Index,
           "invalid index of a 0-dim tensor. Use `tensor.item()` to convert a 0-dim tensor to a number");
  const int d = wrap_dim(dim, a.ndim());
  const int64_t size = a.size(d);
  FK_CHECK(index >= -size && index < size, Index, "index ", index, " is out of bounds for dimension ", d, " with size ",
           size);
  if (index < 0) index += size;
  Dims shape = a.shape(), strides = a.strides();
  shape.erase(d);
  strides.erase(d);
  Tensor out = make_view(a, shape, strides, a.p->offset + index * a.strides()[d]);
  Ref<Node> n = make_node("SelectBackward0", select_bw, {&a});
  if (n) n->ints = {d, index};
  set_history(out, n);
  return out;
}

static void slice_bw(Node& n, const Tensor& g, Tensor* gi) {
  Tensor z = zeros(n.in_shape[0], g.dtype(), g.device());
  copy_(slice(z, n.ints[0], n.ints[1], n.ints[2], n.ints[3]), g);
  gi[0] = z;
}

Tensor slice(const Tensor& a, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  FK_CHECK(a.ndim() > 0, Index, "slicing a 0-dim tensor is not supported");
  FK_CHECK(step > 0, Value, "step must be greater than zero");
  const int d = wrap_dim(dim, a.ndim());
  const int64_t size = a.size(d);
  auto clampi = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + size : *v;
    return x < 0 ? int64_t(0) : (x > size ? size : x);
  };
  const int64_t b = clampi(start, 0), e = std::max(b, clampi(stop, size));
  Dims shape = a.shape(), strides = a.strides();
  shape[d] = e == b ? 0 : (e - b - 1) / step + 1;  // (no overflow for a huge step)
  if (shape[d] > 1) strides[d] *= step;            // fits: (shape[d] - 1) * step < size
  Tensor out = make_view(a, shape, strides, a.p->offset + b * a.strides()[d]);
  Ref<Node> n = make_node("SliceBackward0", slice_bw, {&a});
  if (n) n->ints = {d, b, e, step};
  set_history(out, n);
  return out;
}

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  FK_CHECK(a.ndim() > 0, Runtime, "narrow() cannot be applied to a 0-dim tensor.");
  FK_CHECK(length >= 0, Runtime, "narrow(): length must be non-negative.");
  const int d = wrap_dim(dim, a.ndim());
  const int64_t size = a.size(d);
  FK_CHECK(start >= -size && start <= size, Index, "start out of range (expected to be in range of [", -size, ", ",
           size, "], but got ", start, ")");
  if (start < 0) start += size;
  FK_CHECK(start <= size - length, Runtime, "start (", start, ") + length (", length, ") exceeds dimension size (",
           size, ").");
  return slice(a, d, start, start + length, 1);
}

static void repeat_bw(Node& n, const Tensor& g, Tensor* gi) {
  // g as (r0, s0, r1, s1, ...) summed over the r's: every copy's gradient added back
  const Dims& in = n.in_shape[0];
  const int lead = n.ints.n - in.n;
  Dims split;
  DimList copies;
  copies.all = false;
  for (int i = 0; i < n.ints.n; i++) {
    split.push_back(n.ints[i]);
    split.push_back(i < lead ? 1 : in[i - lead]);
    copies.dims.push_back(2 * i);
  }
  gi[0] = reshape(sum(reshape(g, split), copies, false), in);
}

Tensor repeat(const Tensor& a, const Dims& reps) {
  FK_CHECK(reps.n >= a.ndim(), Runtime,
           "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor");
  // An interleaved view (1, s0, 1, s1, ...) expanded to (r0, s0, r1, s1, ...), then copied.
  Dims lead = Dims::filled(reps.n - a.ndim(), 1), vshape, eshape, oshape;
  for (int64_t s : a.shape()) lead.push_back(s);
  for (int i = 0; i < reps.n; i++) {
    int64_t size = 0;
    FK_CHECK(reps[i] >= 0 && !__builtin_mul_overflow(reps[i], lead[i], &size), Runtime, "repeat: repeats ",
             to_string(reps), " of a tensor of shape ", to_string(a.shape()), " are negative or overflow int64");
    vshape.push_back(1);
    vshape.push_back(lead[i]);
    eshape.push_back(reps[i]);
    eshape.push_back(lead[i]);
    oshape.push_back(size);
  }
  Tensor out;
  {
    GradMode off(false);  // one RepeatBackward0 node, as PyTorch's
    out = reshape(clone(expand(reshape(detach(a), vshape), eshape)), oshape);
  }
  if (Ref<Node> n = make_node("RepeatBackward0", repeat_bw, {&a})) {
    n->ints = reps;
    set_history(out, n);
  }
  return out;
}

Tensor squeeze_dims(const Tensor& a, const Dims& dims) {
  Dims ds = dims;
  for (int i = 0; i < ds.n; i++) ds[i] = wrap_dim(ds[i], a.ndim());
  std::sort(ds.v, ds.v + ds.n);
  Tensor r = a;
  for (int i = ds.n - 1; i >= 0; i--) r = squeeze(r, ds[i]);  // from the last, so earlier dims stay put
  return r;
}

Tensor reversed_dims(const Tensor& a) {
  Dims rev;
  for (int i = a.ndim() - 1; i >= 0; i--) rev.push_back(i);
  return permute(a, rev);
}

// ---- cat and stack -------------------------------------------------------------

static void cat_bw(Node& n, const Tensor& g, Tensor* gi) {
  const int d = int(n.ints[0]);
  int64_t off = 0;
  for (size_t i = 0; i < n.next.size(); i++) {
    const int64_t len = n.in_shape[i].n ? n.in_shape[i][d] : 0;
    if (n.needs(int(i))) gi[i] = slice(g, d, off, off + len, 1);
    off += len;
  }
}

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  FK_CHECK(!ts.empty(), Runtime, "cat expects a non-empty list of Tensors");
  // Legacy rule kept by PyTorch: 1-d empty tensors are skipped.
  const Tensor* ref = nullptr;
  DType dt = ts[0].dtype();
  for (const Tensor& t : ts) {
    if (!(t.ndim() == 1 && t.numel() == 0) && !ref) ref = &t;
    dt = promote(dt, t.dtype());
  }
  if (!ref) ref = &ts[0];
  for (const Tensor& t : ts) check_same_device({ref, &t});
  const int d = wrap_dim(dim, ref->ndim());
  Dims shape = ref->shape();
  int64_t total = 0;
  for (size_t i = 0; i < ts.size(); i++) {
    const Tensor& t = ts[i];
    if (t.ndim() == 1 && t.numel() == 0 && ref->ndim() != 1) continue;
    FK_CHECK(t.ndim() == ref->ndim(), Runtime, "Tensors must have same number of dimensions: got ", ref->ndim(),
             " and ", t.ndim(), " (tensor ", i, ")");
    for (int j = 0; j < t.ndim(); j++)
      FK_CHECK(j == d || t.size(j) == shape[j], Runtime, "Sizes of tensors must match except in dimension ", d,
               ". Expected size ", shape[j], " but got size ", t.size(j), " for tensor number ", i, " in the list");
    FK_CHECK(!__builtin_add_overflow(total, t.size(d), &total), Runtime, "cat: the sizes along dimension ", d,
             " add up to more than int64 holds");
  }
  shape[d] = total;
  Tensor out = empty(shape, dt, ref->device());
  {
    GradMode off(false);
    int64_t pos = 0;
    for (const Tensor& t : ts) {
      if (t.ndim() != ref->ndim()) continue;
      copy_(slice(out, d, pos, pos + t.size(d), 1), t);
      pos += t.size(d);
    }
  }
  Ref<Node> n = make_node("CatBackward0", cat_bw, ts);
  if (n) n->ints = {d};
  set_history(out, n);
  return out;
}

static void stack_bw(Node& n, const Tensor& g, Tensor* gi) {
  for (size_t i = 0; i < n.next.size(); i++)
    if (n.needs(int(i))) gi[i] = select(g, n.ints[0], int64_t(i));
}

Tensor stack(const std::vector<Tensor>& ts, int64_t dim) {
  FK_CHECK(!ts.empty(), Runtime, "stack expects a non-empty list of Tensors");
  for (size_t i = 1; i < ts.size(); i++)
    FK_CHECK(ts[i].shape() == ts[0].shape(), Runtime, "stack expects each tensor to be equal size, but got ",
             to_string(ts[0].shape()), " at entry 0 and ", to_string(ts[i].shape()), " at entry ", i);
  const int d = wrap_dim(dim, ts[0].ndim() + 1);
  Tensor out;
  {
    GradMode off(false);  // one StackBackward0 node, as PyTorch's, not a cat of unsqueezes
    std::vector<Tensor> us;
    for (const Tensor& t : ts) us.push_back(unsqueeze(t, d));
    out = cat(us, d);
  }
  if (Ref<Node> n = make_node("StackBackward0", stack_bw, ts)) {
    n->ints = {d};
    set_history(out, n);
  }
  return out;
}

Tensor sum_to(const Tensor& g, const Dims& shape) {
  DimList red;
  red.all = false;
  const int lead = g.ndim() - shape.n;
  for (int i = 0; i < g.ndim(); i++)
    if (i < lead || (shape[i - lead] == 1 && g.size(i) != 1)) red.dims.push_back(i);
  if (red.dims.empty()) return g.shape() == shape ? g : reshape(g, shape);
  return reshape(sum(g, red, true), shape);
}

// ---- advanced indexing -----------------------------------------------------------

// Broadcast int64 index tensors on `device` (CPU indices move there, as PyTorch allows),
// bounds-checked against `sizes` and wrapped to >= 0.
static std::vector<Tensor> prepare_indices(const std::vector<Tensor>& idx, const Dims& sizes, Device device,
                                           Dims* bshape) {
  Dims shape;
  for (const Tensor& t : idx) {
    FK_CHECK(!is_float(t.dtype()), Index, "tensors used as indices must be long, int, byte or bool tensors, got ",
             dtype_name(t.dtype()));
    FK_CHECK(t.device() == device || t.device() == Device::CPU, Runtime,
             "indices should be either on cpu or on the same device as the indexed tensor (", device_str(device), ")");
    shape = broadcast_shapes(shape, t.shape());
  }
  std::vector<Tensor> out;
  GradMode off(false);
  for (size_t j = 0; j < idx.size(); j++) {
    Tensor t = clone(expand(to_device(to_dtype(idx[j], DType::Int64), device), shape));
    int64_t bad = 0;
    FK_CHECK(backend(t.device()).wrap_indices(t, sizes[int(j)], &bad), Index, "index ", bad,
             " is out of bounds for dimension ", j, " with size ", sizes[int(j)]);
    out.push_back(t);
  }
  *bshape = shape;
  return out;
}

static void gather_nd_bw(Node& n, const Tensor& g, Tensor* gi) {
  std::vector<Tensor> idx;
  for (size_t i = 0; i < n.saved.size(); i++) idx.push_back(n.saved_at(int(i)));
  Tensor z = zeros(n.in_shape[0], g.dtype(), g.device());
  scatter_nd_(z, idx, g, true);
  gi[0] = z;
}

Tensor gather_nd(const Tensor& a, const std::vector<Tensor>& indices) {
  const int k = int(indices.size());
  FK_CHECK(k <= a.ndim(), Index, "too many indices for tensor of dimension ", a.ndim());
  Dims bshape;
  std::vector<Tensor> idx = prepare_indices(indices, a.shape(), a.device(), &bshape);
  const Tensor A = contiguous(detach(a));
  Dims shape = bshape;
  int64_t block = 1;
  for (int i = k; i < a.ndim(); i++) {
    shape.push_back(a.size(i));
    block *= a.size(i);
  }
  Tensor out = empty(shape, a.dtype(), a.device());
  backend(a.device()).gather(A, idx, block, out);
  Ref<Node> n = make_node("IndexBackward0", gather_nd_bw, {&a});
  if (n)
    for (const Tensor& t : idx) n->save(t);
  set_history(out, n);
  return out;
}

void scatter_nd_(const Tensor& out, const std::vector<Tensor>& indices, const Tensor& v, bool accumulate) {
  FK_CHECK(out.is_contiguous(), Runtime, "scatter_nd_ needs a contiguous destination");
  Dims bshape;
  std::vector<Tensor> idx = prepare_indices(indices, out.shape(), out.device(), &bshape);
  Dims shape = bshape;
  int64_t block = 1;
  for (int i = int(indices.size()); i < out.ndim(); i++) {
    shape.push_back(out.size(i));
    block *= out.size(i);
  }
  GradMode off(false);
  const Tensor V = contiguous(expand(to_device(to_dtype(detach(v), out.dtype()), out.device()), shape));
  backend(out.device()).scatter(out, idx, V, block, accumulate);
  out.bump_version();
}

Tensor nonzero(const Tensor& a) { return backend(a.device()).nonzero(contiguous(to_dtype(detach(a), DType::Bool))); }

// Applies the basic items (ints, slices, None, ...) as views and collects the
// advanced ones (tensors) as (dim, int64 index) pairs in the resulting view.
struct Indexed {
  Tensor view;
  std::vector<int> dims;
  std::vector<Tensor> idx;
  bool adjacent = true;  // advanced dims next to each other: the result keeps them in place
};

static Indexed apply_index(const Tensor& a, const std::vector<IndexItem>& items) {
  bool advanced = false;
  int consumed = 0;
  for (const IndexItem& it : items) {
    if (it.kind == IndexItem::Tensor_) {
      advanced = true;
      consumed += it.t.dtype() == DType::Bool || it.t.dtype() == DType::UInt8 ? it.t.ndim() : 1;  // x[True]: none
    } else if (it.kind == IndexItem::Int || it.kind == IndexItem::Slice) {
      consumed++;
    }
  }
  FK_CHECK(consumed <= a.ndim(), Index, "too many indices for tensor of dimension ", a.ndim(), " (got ", consumed, ")");
  Indexed r{a, {}, {}, true};
  int dim = 0, last_adv = -1;
  bool ellipsis = false;
  for (size_t k = 0; k < items.size(); k++) {
    const IndexItem& it = items[k];
    switch (it.kind) {
      case IndexItem::Int:
        if (advanced) {  // NumPy: ints next to index arrays act as index arrays
          r.dims.push_back(dim);
          r.idx.push_back(scalar_tensor(Scalar::of_int(it.i), DType::Int64));
          r.adjacent = r.adjacent && (last_adv < 0 || last_adv == int(k) - 1);
          last_adv = int(k);
          dim++;
        } else {
          r.view = select(r.view, dim, it.i);
        }
        break;
      case IndexItem::Slice:
        r.view = slice(r.view, dim, it.start, it.stop, it.step);
        dim++;
        break;
      case IndexItem::None:
        r.view = unsqueeze(r.view, dim);
        dim++;
        break;
      case IndexItem::Ellipsis:
        FK_CHECK(!ellipsis, Index, "an index can only have a single ellipsis ('...')");
        ellipsis = true;
        dim += a.ndim() - consumed;
        break;
      case IndexItem::Tensor_: {
        r.adjacent = r.adjacent && (last_adv < 0 || last_adv == int(k) - 1);
        last_adv = int(k);
        const Tensor& t = it.t;
        if (t.dtype() == DType::Bool || t.dtype() == DType::UInt8) {
          const int nd = std::max(1, t.ndim());
          for (int j = 0; j < t.ndim(); j++)
            FK_CHECK(t.size(j) == r.view.size(dim + j), Index, "The shape of the mask ", to_string(t.shape()),
                     " at index ", j, " does not match the shape of the indexed tensor ", to_string(r.view.shape()),
                     " at index ", dim + j);
          if (t.ndim() == 0) {  // x[True]: a new dim of size 1 (or 0)
            r.view = unsqueeze(r.view, dim);
            r.dims.push_back(dim);
            r.idx.push_back(select(nonzero(reshape(t, {1})), 1, 0));
          } else {
            const Tensor nz = nonzero(t);
            for (int j = 0; j < nd; j++) {
              r.dims.push_back(dim + j);
              r.idx.push_back(select(nz, 1, j));
            }
          }
          dim += nd;
        } else {
          r.dims.push_back(dim);
          r.idx.push_back(t);
          dim++;
        }
        break;
      }
    }
  }
  return r;
}

// Puts the advanced dims first: (permuted view, permutation).
static Tensor advanced_first(const Indexed& r, Dims* perm) {
  bool is_adv[kMaxDims] = {};
  for (int d : r.dims) is_adv[d] = true;
  for (int d : r.dims) perm->push_back(d);
  for (int d = 0; d < r.view.ndim(); d++)
    if (!is_adv[d]) perm->push_back(d);
  return permute(r.view, *perm);
}

Tensor index(const Tensor& a, const std::vector<IndexItem>& items) {
  Indexed r = apply_index(a, items);
  if (r.idx.empty()) return r.view.p == a.p ? view(a, a.shape()) : r.view;  // x[...]: an alias that keeps history
  Dims perm;
  Tensor out = gather_nd(advanced_first(r, &perm), r.idx);
  // Adjacent advanced dims stay where the first of them was (NumPy's rule).
  const int first = r.dims[0];
  if (r.adjacent && first > 0) {
    const int nb = out.ndim() - (r.view.ndim() - int(r.dims.size()));
    Dims order;
    for (int i = 0; i < first; i++) order.push_back(nb + i);
    for (int i = 0; i < nb; i++) order.push_back(i);
    for (int i = nb + first; i < out.ndim(); i++) order.push_back(i);
    out = permute(out, order);
  }
  return out;
}

static void index_put_bw(Node& n, const Tensor& g, Tensor* gi) {
  const auto& items = *static_cast<const std::vector<IndexItem>*>(n.extra.get());
  if (n.needs(0)) {
    Tensor ga = clone(g);
    index_put_(ga, items, scalar_tensor(Scalar::of(0), g.dtype()));
    gi[0] = ga;
  }
  if (n.needs(1)) gi[1] = index(g, items);
}

void index_put_(const Tensor& a, const std::vector<IndexItem>& items, const Tensor& value) {
  check_inplace(a, "index_put_");
  Ref<Node> n = make_node("IndexPutBackward0", index_put_bw, {&a, &value});
  if (n) n->extra = std::make_shared<const std::vector<IndexItem>>(items);
  {
    GradMode off(false);
    Indexed r = apply_index(a, items);
    if (r.idx.empty()) {
      // Leading size-1 dims of the value beyond the target's are dropped, as PyTorch does (x[0] = t[None]).
      Tensor v = value;
      while (v.ndim() > r.view.ndim() && v.size(0) == 1) v = squeeze(v, 0);
      copy_(r.view, v);  // copy_ copies an aliasing value first
    } else {
      Dims perm;
      const Tensor dst = advanced_first(r, &perm);
      // The value lines up with the indexed result's shape, where advanced dims may sit in the middle.
      Tensor v = value;
      const int first = r.dims[0];
      if (r.adjacent && first > 0 && v.ndim() > 0) {
        Dims bshape, shape;
        for (const Tensor& t : r.idx) bshape = broadcast_shapes(bshape, t.shape());
        const int nb = bshape.n;
        for (int i = 0; i < first; i++) shape.push_back(dst.size(int(r.dims.size()) + i));
        for (int i = 0; i < nb; i++) shape.push_back(bshape[i]);
        for (int i = int(r.dims.size()) + first; i < dst.ndim(); i++) shape.push_back(dst.size(i));
        v = expand(v, shape);
        Dims order;
        for (int i = 0; i < nb; i++) order.push_back(first + i);
        for (int i = 0; i < first; i++) order.push_back(i);
        for (int i = first + nb; i < shape.n; i++) order.push_back(i);
        v = permute(v, order);
      }
      if (dst.is_contiguous()) {
        scatter_nd_(dst, r.idx, v, false);
      } else {
        Tensor tmp = clone(dst);
        scatter_nd_(tmp, r.idx, v, false);
        copy_(dst, tmp);
      }
    }
  }
  set_history(a, n);
  finish_inplace(a, n);
}

// ---- in-place ops on views -----------------------------------------------------
// After `view.op_()`, the view's node gives its new value. The base's history
// becomes "old base with the view's region replaced" (CopySlices), and the view
// is re-expressed as a region of the new base.

namespace {
struct Region {  // a view's geometry inside its (contiguous) base
  Dims shape, strides;
  int64_t offset;
};

Tensor region_of(const Tensor& contig, const Region& r) {
  return make_view(contig, r.shape, r.strides, contig.p->offset + r.offset);
}

void region_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Region& r = *static_cast<const Region*>(n.extra.get());
  Tensor z = zeros(n.in_shape[0], g.dtype(), g.device());
  copy_(region_of(z, r), g);
  gi[0] = z;
}

void copy_slices_bw(Node& n, const Tensor& g, Tensor* gi) {
  const Region& r = *static_cast<const Region*>(n.extra.get());
  Tensor gb = clone(g);
  if (n.needs(1)) gi[1] = clone(region_of(gb, r));
  if (n.needs(0)) {
    fill_(region_of(gb, r), Scalar::of(0));
    gi[0] = gb;
  }
}
}  // namespace

void finish_inplace(const Tensor& self, const Ref<Node>& node) {
  if (!node || !self.p->is_view || !self.p->base) return;
  const Tensor base(self.p->base);
  FK_CHECK(base.is_contiguous(), NotImplemented,
           "in-place operation on a view of a non-contiguous tensor is not supported with autograd; clone() it first");
  auto r = std::make_shared<const Region>(Region{self.shape(), self.strides(), self.p->offset - base.p->offset});
  Tensor changed = detach(self);
  changed.p->grad_fn = self.p->grad_fn;
  Ref<Node> cs = make_node("CopySlices", copy_slices_bw, {&base, &changed});
  cs->extra = r;
  set_history(base, cs);
  Ref<Node> vn = make_node("AsStridedBackward0", region_bw, {&base});
  vn->extra = r;
  set_history(self, vn);
}

}  // namespace fk
