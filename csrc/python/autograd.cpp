// The autograd graph seen from Python: x.grad_fn and its next_functions, down to the
// AccumulateGrad of each leaf, and the node of a custom autograd.Function, whose backward calls
// the Function's Python backward (python/fastkern/autograd.py does the Python side).
#include <set>

#include "convert.h"

namespace {

// A leaf's end of the graph, as PyTorch shows it: its gradient accumulates into `variable`.
struct AccumulateGrad {
  Ref<TensorImpl> leaf;
};

nb::object edge_object(const Edge& e) {
  if (e.fn) return nb::cast(GradFn{e.fn});
  if (e.leaf) return nb::cast(AccumulateGrad{e.leaf});
  return nb::none();
}

// next_functions: one (node, input_nr) pair per input, (None, 0) for one without history.
// Every node here has a single output, so input_nr is always 0.
nb::tuple next_functions(const Node& n) {
  nb::list l;
  for (const Edge& e : n.next) l.append(nb::make_tuple(edge_object(e), 0));
  return nb::tuple(l);
}

std::string object_repr(const char* type, const void* p) {
  std::ostringstream s;
  s << "<" << type << " object at " << p << ">";
  return s.str();
}

// A Function's node keeps its ctx alive; the last node to go releases it, taking the GIL, since
// a graph may be freed where Python does not hold it.
std::shared_ptr<const void> hold(nb::handle ctx) {
  ctx.inc_ref();
  return std::shared_ptr<const void>(ctx.ptr(), [](const void* p) {
    if (!Py_IsInitialized()) return;  // at exit: the interpreter has already gone
    nb::gil_scoped_acquire gil;
    Py_DECREF(static_cast<PyObject*>(const_cast<void*>(p)));
  });
}

// Node names must outlive the nodes: one copy of each Function's name, kept for good.
const char* intern(const std::string& name) {
  static std::set<std::string> names;
  return names.insert(name).first->c_str();
}

// The backward of a Function's node (one per differentiable output; ints[0] is its output's
// index, ints[1] the number of saved tensors): ctx._backward(index, grad, saved) runs the user's
// backward and returns one gradient (or None) per tensor input.
void function_bw(Node& n, const Tensor& g, Tensor* gi) {
  nb::gil_scoped_acquire gil;
  if (n.released && n.ints[1] > 0) n.saved_at(0);  // raises "backward through the graph a second time"
  nb::list saved;
  for (int i = 0; i < int(n.saved.size()); i++)
    saved.append(n.saved[i].t.defined() ? nb::cast(n.saved_at(i)) : nb::none());
  nb::handle ctx(static_cast<PyObject*>(const_cast<void*>(n.extra.get())));
  nb::object grads = ctx.attr("_backward")(n.ints[0], g, saved);
  for (size_t i = 0; i < n.next.size(); i++) {
    nb::handle gr = grads[i];
    if (!gr.is_none()) gi[i] = nb::cast<Tensor>(gr);
  }
}

}  // namespace

void bind_autograd(nb::module_& m) {
  nb::class_<GradFn>(m, "Node")
      .def("name", [](const GradFn& g) { return std::string(g.n->name); })
      .def_prop_ro("next_functions", [](const GradFn& g) { return next_functions(*g.n); })
      .def("__repr__", [](const GradFn& g) { return object_repr(g.n->name, g.n.get()); })
      .def("__eq__",
           [](const GradFn& g, nb::handle o) { return nb::isinstance<GradFn>(o) && nb::cast<GradFn&>(o).n == g.n; })
      .def("__hash__", [](const GradFn& g) { return reinterpret_cast<uintptr_t>(g.n.get()); });
  nb::class_<AccumulateGrad>(m, "AccumulateGrad")
      .def("name", [](const AccumulateGrad&) { return "torch::autograd::AccumulateGrad"; })
      .def_prop_ro("variable", [](const AccumulateGrad& a) { return Tensor(a.leaf); })
      .def_prop_ro("next_functions", [](const AccumulateGrad&) { return nb::tuple(); })
      .def("__repr__", [](const AccumulateGrad& a) { return object_repr("AccumulateGrad", a.leaf.get()); })
      .def("__eq__",
           [](const AccumulateGrad& a, nb::handle o) {
             return nb::isinstance<AccumulateGrad>(o) && nb::cast<AccumulateGrad&>(o).leaf == a.leaf;
           })
      .def("__hash__", [](const AccumulateGrad& a) { return reinterpret_cast<uintptr_t>(a.leaf.get()); });

  // Gives the outputs of Function.apply their history: a node per differentiable output, with
  // edges to the tensor inputs (None for other arguments) and the tensors save_for_backward kept.
  // Returns the outputs, an output that is an input or already has a history replaced by an alias.
  m.def("_function_node", [](nb::handle ctx, const std::string& name, const std::vector<std::optional<Tensor>>& args,
                             std::vector<Tensor> outputs, const std::vector<bool>& differentiable,
                             const std::vector<std::optional<Tensor>>& to_save) {
    std::vector<Tensor> inputs;
    for (const auto& a : args) inputs.push_back(a.value_or(Tensor()));
    std::vector<Ref<Node>> nodes(outputs.size());
    for (size_t k = 0; k < outputs.size(); k++) {
      Tensor& out = outputs[k];
      if (!differentiable[k] || !is_float(out.dtype())) continue;
      nodes[k] = make_node(intern(name), function_bw, inputs);
      if (!nodes[k]) return outputs;  // grad mode off, or no input needs a gradient
      bool alias = out.p->grad_fn || out.p->requires_grad;
      for (const Tensor& in : inputs) alias = alias || (in.defined() && in.p == out.p);
      if (alias) out = detach(out);
      nodes[k]->ints = {int64_t(k), int64_t(to_save.size())};
      nodes[k]->extra = hold(ctx);
      set_history(out, nodes[k]);
    }
    for (size_t k = 0; k < outputs.size(); k++) {
      if (!nodes[k]) continue;
      for (const auto& s : to_save) {
        Tensor t = s.value_or(Tensor());
        // Another output saved with its history would keep that output's node, and so this one,
        // alive from within: a refcount cycle. Its memory is what backward needs.
        for (size_t j = 0; j < outputs.size(); j++)
          if (j != k && t.defined() && t.p == outputs[j].p) t = detach(t);
        nodes[k]->save(t);
      }
    }
    return outputs;
  });
}
