"""fastkern.autograd: the engine itself is C++ (csrc/core/autograd.cpp); Function, for
differentiable operations written in Python, calls back into Python from it."""

from . import _C
from ._C import Tensor
from ._creation import tensor, zeros
from ._grad_mode import enable_grad, no_grad, set_grad_enabled  # noqa: F401
from ._size import broadcast_shapes


def _seq(x):
    if x is None:
        return None
    return [x] if isinstance(x, Tensor) else list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    tensors = _seq(tensors)
    grads = _seq(grad_tensors) or [None] * len(tensors)
    _C._backward(tensors, grads, create_graph if retain_graph is None else retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple (no .grad is touched)."""
    outputs, inputs = _seq(outputs), _seq(inputs)
    grads = _seq(grad_outputs) or [None] * len(outputs)
    retain = create_graph if retain_graph is None else retain_graph
    return tuple(_C._grad(outputs, grads, inputs, retain, create_graph, allow_unused))


class FunctionCtx:
    """The `ctx` a Function's forward and backward share (PyTorch's): what forward saves for
    backward, and which inputs need a gradient."""

    to_save = ()
    non_differentiable = ()
    materialize_grads = True
    _saved = None

    def save_for_backward(self, *tensors):
        self.to_save = tensors

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable = tensors

    def set_materialize_grads(self, value):
        """With False, backward gets None (not zeros) for outputs that received no gradient."""
        self.materialize_grads = value

    @property
    def saved_tensors(self):
        if self._saved is None:
            raise RuntimeError("saved_tensors is only available in backward (save them with ctx.save_for_backward)")
        return self._saved

    def _backward(self, index, grad, saved):
        """Called by the engine (csrc/python/autograd.cpp) with the gradient of output `index`:
        runs the Function's backward and returns one gradient, or None, per argument.
        A Function with several outputs has a node per output, each calling backward with its own
        gradient (the others zeros, or None): backward is linear in them, so the sum is the same."""
        grads = [
            grad if i == index else (zeros(shape, dtype=dtype, device=device) if self.materialize_grads else None)
            for i, (shape, dtype, device) in enumerate(self._outputs)
        ]
        self._saved = tuple(saved)
        try:
            result = self._function.backward(self, *grads)
        finally:
            self._saved = None
        result = result if isinstance(result, tuple) else (result,)
        name, n = self._function.__name__ + "Backward", len(self._input_shapes)
        if len(result) < n or any(g is not None for g in result[n:]):
            raise RuntimeError(
                f"function {name} returned an incorrect number of gradients (expected {n}, got {len(result)})"
            )
        out = []
        for i, (shape, g) in enumerate(zip(self._input_shapes, result)):
            if shape is None:  # not a tensor argument: whatever backward returned for it is ignored
                g = None
            elif g is not None and not isinstance(g, Tensor):
                raise TypeError(f"function {name} returned a gradient of type {type(g).__name__} at index {i}")
            if g is not None and not _expands_to(g.shape, shape):
                raise RuntimeError(
                    f"Function {name} returned an invalid gradient at index {i} - got {list(g.shape)} but expected "
                    f"shape compatible with {list(shape)}"
                )
            out.append(g)
        return out


def _expands_to(shape, target):
    try:
        return broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


class Function:
    """A differentiable operation written by hand, as PyTorch's torch.autograd.Function:

        class Exp(Function):
            @staticmethod
            def forward(ctx, x):
                y = x.exp()
                ctx.save_for_backward(y)
                return y

            @staticmethod
            def backward(ctx, grad):
                (y,) = ctx.saved_tensors
                return grad * y

        y = Exp.apply(x)

    forward runs without recording (under no_grad); its tensor outputs get a grad_fn node named
    "<class name>Backward" whose backward calls the static backward, which returns one gradient
    (or None) per argument of forward. forward(*args) with a separate setup_context(ctx, inputs,
    output) works too.
    """

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement the backward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not overridden")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        tensors = [a if isinstance(a, Tensor) else None for a in args]
        recording = _C.is_grad_enabled()
        ctx.needs_input_grad = tuple(recording and t is not None and t.requires_grad for t in tensors)
        with no_grad():
            if cls.setup_context is not Function.setup_context:
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args)
        single = isinstance(out, Tensor)
        outs = [out] if single else list(out)
        where = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
        results = [outs[i] for i in where]
        ctx._function = cls
        ctx._input_shapes = [None if t is None else t.shape for t in tensors]
        ctx._outputs = [(o.shape, o.dtype, o.device) for o in results]
        differentiable = [not any(o is t for t in ctx.non_differentiable) for o in results]
        results = _C._function_node(ctx, cls.__name__ + "Backward", tensors, results, differentiable, list(ctx.to_save))
        ctx.to_save = ctx.non_differentiable = ()  # the nodes hold the saved tensors now
        for i, r in zip(where, results):
            outs[i] = r
        return outs[0] if single else tuple(outs)


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Compares the gradients of func at inputs (a tensor or a tuple; those that require grad are
    checked, in float64 as torch asks) with central differences, output element by output element,
    as torch.autograd.gradcheck. True when they agree; else raises (or returns False)."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    wrt = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def outputs(args):
        out = func(*args)
        return [o for o in ((out,) if isinstance(out, Tensor) else out) if isinstance(o, Tensor)]

    for k, out in enumerate(outputs(inputs)):
        flat_out = out.reshape(-1)
        for j in range(flat_out.numel()):
            analytic = grad(flat_out[j], [inputs[i] for i in wrt], retain_graph=True, allow_unused=True)
            for i, a in zip(wrt, analytic):
                base = inputs[i].detach().clone()  # contiguous, so its flat view reaches every element

                def at(e, delta, i=i, base=base):
                    moved = base.clone()
                    moved.view(-1)[e] += delta
                    args = inputs[:i] + (moved,) + inputs[i + 1 :]
                    with no_grad():
                        return float(outputs(args)[k].reshape(-1)[j])

                diffs = [(at(e, eps) - at(e, -eps)) / (2 * eps) for e in range(base.numel())]
                numeric = tensor(diffs, dtype=_C.float64)
                a = zeros(base.numel(), dtype=_C.float64) if a is None else a.detach().reshape(-1).double()
                if not bool(((a - numeric).abs() <= atol + rtol * numeric.abs()).all()):
                    if raise_exception:
                        raise RuntimeError(
                            f"Jacobian mismatch for output {k} with respect to input {i},\n"
                            f"numerical:{numeric.tolist()}\nanalytical:{a.tolist()}"
                        )
                    return False
    return True
