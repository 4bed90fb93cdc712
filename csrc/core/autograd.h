// The autograd graph and engine. An op that records itself creates one Node
// holding edges to its inputs' history, the tensors its backward needs (with
// their versions at save time) and a plain function pointer for the backward.
#pragma once
#include <memory>
#include <vector>

#include "tensor.h"

namespace fk {

struct Node;
using BackwardFn = void (*)(Node& node, const Tensor& grad, Tensor* grad_inputs);

// Where an input's gradient goes: the node that made it, or the leaf itself.
struct Edge {
  Ref<Node> fn;
  Ref<TensorImpl> leaf;
  bool active() const { return fn || leaf; }
};

struct SavedTensor {
  Tensor t;
  uint64_t version;
  bool is_output;  // saved without its history (which is this node) to avoid a refcount cycle
};

struct Node : RefCounted {
  const char* name;
  BackwardFn fn;
  std::vector<Edge> next;      // one per input
  std::vector<Dims> in_shape;  // per input: gradients are summed back to these shapes
  std::vector<DType> in_dtype;
  std::vector<SavedTensor> saved;
  Dims ints;  // op arguments the backward needs (dims, sizes...)
  double scalars[2] = {0, 0};
  std::shared_ptr<const void> extra;  // anything else an op's backward needs (index lists)
  bool released = false;
  // engine scratch
  Tensor pending;
  int deps = 0;
  uint64_t epoch = 0;

  ~Node() override;  // iterative: a long chain must not recurse once per node
  bool needs(int i) const { return next[i].active(); }
  void save(const Tensor& t);
  // The i-th saved tensor; RuntimeError if it was freed or modified in place since.
  Tensor saved_at(int i);
};

bool grad_enabled();
void set_grad_enabled(bool on);
struct GradMode {  // RAII: restores the previous mode
  bool prev;
  explicit GradMode(bool on) : prev(grad_enabled()) { set_grad_enabled(on); }
  ~GradMode() { set_grad_enabled(prev); }
};

// If grad mode is on and an input needs a gradient, a new Node with edges to
// `inputs` (undefined tensors allowed); else null. Owned by the caller until set_history, so an
// op that throws in between (a device without the kernel, out of memory) frees it.
Ref<Node> make_node(const char* name, BackwardFn fn, std::initializer_list<const Tensor*> inputs);
Ref<Node> make_node(const char* name, BackwardFn fn, const std::vector<Tensor>& inputs);
// Makes `node` the history of `out` (a fresh result, or a tensor modified in place).
void set_history(const Tensor& out, const Ref<Node>& node);

// Gradients of `roots` (with `grads`; undefined = ones for scalars) into the .grad of leaves.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph, bool create_graph);
// Gradients of `roots` with respect to `inputs`, returned instead of accumulated.
std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph, bool allow_unused);

}  // namespace fk
