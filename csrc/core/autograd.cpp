#include "autograd.h"

#include <unordered_map>

#include "ops.h"

namespace fk {

namespace {
thread_local bool t_grad_enabled = true;
uint64_t g_epoch = 0;
thread_local std::vector<Ref<Node>>* t_graveyard = nullptr;  // nodes waiting to be destroyed
}  // namespace

Node::~Node() {
  // Nodes this one alone keeps alive are queued instead of destroyed from
  // inside this destructor; the outermost destructor drains the queue in a loop.
  std::vector<Ref<Node>> queue;
  const bool outer = t_graveyard == nullptr;
  if (outer) t_graveyard = &queue;
  auto defer = [](Ref<Node>& r) {
    if (r && r->refs.load() == 1) t_graveyard->push_back(std::move(r));
  };
  for (Edge& e : next) defer(e.fn);
  for (SavedTensor& s : saved)
    if (s.t.defined() && s.t.p->refs.load() == 1) defer(s.t.p->grad_fn);
  if (pending.defined() && pending.p->refs.load() == 1) defer(pending.p->grad_fn);
  if (outer) {
    while (!queue.empty()) {
      Ref<Node> n = std::move(queue.back());
      queue.pop_back();
      n.reset();
    }
    t_graveyard = nullptr;
  }
}

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

void Node::save(const Tensor& t) {
  // A saved output must not point back at this node (a refcount cycle), so
  // outputs are saved as a detached alias; inputs keep their history.
  const bool out = t.defined() && t.p->grad_fn.get() == this;
  saved.push_back({out ? detach(t) : t, t.defined() ? t.version() : 0, out});
}

Tensor Node::saved_at(int i) {
  FK_CHECK(!released, Runtime,
           "Trying to backward through the graph a second time (or directly access saved tensors after they have "
           "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
           "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time.");
  const SavedTensor& s = saved[i];
  FK_CHECK(!s.t.defined() || s.t.version() == s.version, Runtime,
           "one of the variables needed for gradient computation has been modified by an inplace operation: [",
           dtype_name(s.t.dtype()), " ", to_string(s.t.shape()), "], which is output 0 of ", name, ", is at version ",
           s.t.version(), "; expected version ", s.version, " instead.");
  if (s.is_output && grad_enabled()) {
    // create_graph: re-attach the output to this node for the duration of the formula.
    Tensor t = detach(s.t);
    t.p->grad_fn = Ref<Node>(this);
    return t;
  }
  return s.t;
}

template <class Inputs>
static Ref<Node> make_node_impl(const char* name, BackwardFn fn, const Inputs& inputs) {
  if (!t_grad_enabled) return nullptr;
  bool any = false;
  for (const Tensor* t : inputs) any = any || (t->defined() && t->requires_grad());
  if (!any) return nullptr;
  Ref<Node> n(new Node());
  n->name = name;
  n->fn = fn;
  n->next.reserve(inputs.size());
  for (const Tensor* t : inputs) {
    Edge e;
    if (t->defined() && t->requires_grad()) {
      if (t->p->grad_fn)
        e.fn = t->p->grad_fn;
      else
        e.leaf = t->p;
    }
    n->next.push_back(std::move(e));
    n->in_shape.push_back(t->defined() ? t->shape() : Dims());
    n->in_dtype.push_back(t->defined() ? t->dtype() : DType::Float32);
  }
  return n;
}

Ref<Node> make_node(const char* name, BackwardFn fn, std::initializer_list<const Tensor*> inputs) {
  return make_node_impl(name, fn, inputs);
}

Ref<Node> make_node(const char* name, BackwardFn fn, const std::vector<Tensor>& inputs) {
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : inputs) ptrs.push_back(&t);
  return make_node_impl(name, fn, ptrs);
}

void set_history(const Tensor& out, const Ref<Node>& node) {
  if (!node) return;
  out.p->grad_fn = node;
  out.p->requires_grad = false;
}

namespace {

// Gradient for an input: summed back over broadcast dims and cast to its dtype.
Tensor fit_to_input(const Node& n, int i, Tensor g) {
  if (g.shape() != n.in_shape[i]) g = sum_to(g, n.in_shape[i]);
  if (g.dtype() != n.in_dtype[i] && is_float(n.in_dtype[i])) g = to_dtype(g, n.in_dtype[i]);
  return g;
}

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }

void accumulate_leaf(TensorImpl* leaf, const Tensor& g, bool create_graph) {
  if (!leaf->grad) {
    // Keep the incoming gradient only if nothing else can see or change it.
    const bool own =
        !create_graph && g.p->refs.load() <= 2 && g.p->storage->refs.load() == 1 && g.is_contiguous() && !g.p->grad_fn;
    leaf->grad = own ? g.p : (create_graph ? g.p : clone(detach(g)).p);
  } else if (create_graph) {
    leaf->grad = add(Tensor(leaf->grad), g).p;
  } else {
    binary_(BinOp::Add, Tensor(leaf->grad), g);
  }
}

struct Capture {  // autograd.grad: gradients to return instead of accumulate
  std::unordered_map<TensorImpl*, int> leaves;
  std::unordered_map<Node*, int> nodes;
  std::vector<Tensor> out;
};

void run_engine(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
                bool create_graph, Capture* cap) {
  FK_CHECK(roots.size() == grads.size(), Runtime, "got ", roots.size(), " outputs but ", grads.size(), " gradients");
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < roots.size(); i++) {
    const Tensor& r = roots[i];
    FK_CHECK(r.requires_grad(), Runtime, "element ", i,
             " of tensors does not require grad and does not have a grad_fn");
    Tensor g = grads[i];
    if (!g.defined()) {
      FK_CHECK(r.numel() == 1, Runtime,
               "grad can be implicitly created only for scalar outputs (got a tensor of shape ", to_string(r.shape()),
               ")");
      g = ones_like(r);
    } else {
      FK_CHECK(g.shape() == r.shape(), Runtime, "Mismatch in shape: grad_output[", i, "] has a shape of ",
               to_string(g.shape()), " and output[", i, "] has a shape of ", to_string(r.shape()), ".");
    }
    root_grads.push_back(g);
  }

  GradMode mode(create_graph);
  const uint64_t epoch = ++g_epoch;
  // Count, for every reachable node, how many edges point at it (iterative DFS: deep graphs must not overflow).
  std::vector<Node*> stack, ready;
  for (const Tensor& r : roots) {
    Node* n = r.p->grad_fn.get();
    if (n && n->epoch != epoch) {
      n->epoch = epoch;
      n->deps = 0;
      stack.push_back(n);
    }
  }
  std::vector<Node*> order;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (Edge& e : n->next) {
      Node* m = e.fn.get();
      if (!m) continue;
      if (m->epoch != epoch) {
        m->epoch = epoch;
        m->deps = 0;
        stack.push_back(m);
      }
      m->deps++;
    }
  }
  for (size_t i = 0; i < roots.size(); i++) {
    const Tensor& r = roots[i];
    if (Node* n = r.p->grad_fn.get()) {
      n->pending = accumulate(n->pending, root_grads[i]);
    } else if (cap) {
      auto it = cap->leaves.find(r.p.get());
      if (it != cap->leaves.end()) cap->out[it->second] = accumulate(cap->out[it->second], root_grads[i]);
    } else {
      accumulate_leaf(r.p.get(), root_grads[i], create_graph);
    }
  }
  for (Node* n : order)
    if (n->deps == 0) ready.push_back(n);

  std::vector<Tensor> gin;
  while (!ready.empty()) {
    Ref<Node> n(ready.back());
    ready.pop_back();
    Tensor g = std::move(n->pending);
    n->pending = Tensor();
    if (cap) {
      auto it = cap->nodes.find(n.get());
      if (it != cap->nodes.end()) cap->out[it->second] = g;
    }
    gin.assign(n->next.size(), Tensor());
    if (g.defined()) n->fn(*n, g, gin.data());
    if (!retain_graph) {
      n->saved.clear();
      n->released = true;
    }
    for (size_t i = 0; i < n->next.size(); i++) {
      Edge& e = n->next[i];
      if (!e.active()) continue;
      Tensor gi = gin[i].defined() ? fit_to_input(*n, int(i), gin[i]) : Tensor();
      if (Node* m = e.fn.get()) {
        if (gi.defined()) m->pending = accumulate(m->pending, gi);
        if (--m->deps == 0) ready.push_back(m);
      } else if (gi.defined()) {
        if (cap) {
          auto it = cap->leaves.find(e.leaf.get());
          if (it != cap->leaves.end()) cap->out[it->second] = accumulate(cap->out[it->second], gi);
        } else {
          accumulate_leaf(e.leaf.get(), gi, create_graph);
        }
      }
    }
  }
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
              bool create_graph) {
  run_engine(roots, grads, retain_graph, create_graph, nullptr);
}

std::vector<Tensor> grad(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                         const std::vector<Tensor>& inputs, bool retain_graph, bool create_graph, bool allow_unused) {
  Capture cap;
  cap.out.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); i++) {
    const Tensor& t = inputs[i];
    FK_CHECK(t.requires_grad(), Runtime, "One of the differentiated Tensors (input ", i, ") does not require grad");
    if (t.p->grad_fn)
      cap.nodes[t.p->grad_fn.get()] = int(i);
    else
      cap.leaves[t.p.get()] = int(i);
  }
  run_engine(roots, grads, retain_graph, create_graph, &cap);
  for (size_t i = 0; i < inputs.size(); i++)
    FK_CHECK(allow_unused || cap.out[i].defined(), Runtime, "One of the differentiated Tensors (input ", i,
             ") appears to not have been used in the graph. Set allow_unused=True if this is the desired behavior.");
  return cap.out;
}

}  // namespace fk
