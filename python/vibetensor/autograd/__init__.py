"""vibetensor.autograd: reverse-mode automatic differentiation, torch.autograd-shaped.

The engine, the graph nodes and the backward formulas are C++ (core/include/vt/autograd/, Note [Backward
engine]); this package holds the Python surface: grad modes, backward/grad, custom Functions, gradcheck and
functional (torch.autograd.functional: vjp, jvp, jacobian, hessian, vhp, hvp)."""
from __future__ import annotations

from .._C import autograd as _ag
from .._C import core as _core
from .function import Function, FunctionCtx  # noqa: F401
from .grad_mode import (  # noqa: F401
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, set_grad_enabled,
)
from .gradcheck import gradcheck, gradgradcheck  # noqa: F401
from .variable import Variable  # noqa: F401
from . import functional  # noqa: F401,E402
from . import profiler  # noqa: F401,E402
from . import graph  # noqa: F401,E402

Tensor = _core.Tensor
Node = _ag.Node


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulates d(tensors)/d(leaf) into each leaf's .grad (only into `inputs` when given)."""
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) or [None] * len(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    inputs = _as_list(inputs) or []
    _ag.backward(tensors, grads, bool(retain_graph), bool(create_graph), inputs)


def _batched_grad(outputs, inputs, grads, retain_graph, create_graph, unused_ok):
    """is_grads_batched: each grad_output's first dim is a batch of vectors; one vector-Jacobian product per
    batch entry (the graph kept until the last), stacked: [B, *input.shape] per input."""
    for i, (g, o) in enumerate(zip(grads, outputs)):
        if g is None or tuple(g.shape[1:]) != tuple(o.shape):
            shape = "None" if g is None else f"torch.Size({list(g.shape)[1:]})"
            raise RuntimeError(
                "If `is_grads_batched=True`, we interpret the first dimension of each grad_output as the batch "
                "dimension. The sizes of the remaining dimensions are expected to match the shape of "
                f"corresponding output, but a mismatch was detected: grad_output[{i}] has a shape of {shape} and "
                f"output[{i}] has a shape of torch.Size({list(o.shape)}).")
    n = grads[0].shape[0]
    if any(g.shape[0] != n for g in grads):
        raise RuntimeError("is_grads_batched: every grad_output must have the same batch size")
    per = [_ag.grad(outputs, inputs, [g[b] for g in grads], bool(retain_graph) or b < n - 1, bool(create_graph),
                    unused_ok) for b in range(n)]
    from ..torch import _functions as F

    return tuple(None if per[0][k] is None else F.stack([p[k] for p in per]) for k in range(len(inputs)))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         is_grads_batched=False, materialize_grads=False):
    """Returns d(outputs)/d(inputs) as a tuple, one entry per input, without touching any .grad."""
    outputs = _as_list(outputs)
    single_input = isinstance(inputs, Tensor)
    inputs = _as_list(inputs)
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    unused_ok = bool(allow_unused) or materialize_grads
    if is_grads_batched:
        result = _batched_grad(outputs, inputs, grads, retain_graph, create_graph, unused_ok)
        if materialize_grads:  # torch's zeros here have the input's shape, without the batch dim
            result = tuple(r if r is not None else _core.zeros(list(i.shape), dtype=i.dtype, device=i.device)
                           for r, i in zip(result, inputs))
        return result
    result = _ag.grad(outputs, inputs, grads, bool(retain_graph), bool(create_graph), unused_ok)
    if materialize_grads:
        result = tuple(r if r is not None else _core.zeros(list(i.shape), dtype=i.dtype, device=i.device)
                       for r, i in zip(result, inputs))
    return result if not single_input else tuple(result)


def _tensor_backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs)


Tensor.backward = _tensor_backward
