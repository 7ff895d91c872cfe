"""torch.autograd.functional: vjp, jvp, jacobian, hessian, vhp and hvp of a function of tensors, built on reverse-mode
grad. jvp and hvp use the double-backward trick: a backward pass is linear in its upstream gradient, so
differentiating it with respect to a dummy upstream gradient gives the forward (Jacobian- or Hessian-vector)
product. An input given as a Tensor comes back as a Tensor, a tuple as a tuple, and likewise for the function's
outputs; an output independent of an input gives zeros, or raises under strict=True. The inputs are fresh tensors
for the call (views of the given ones when create_graph lets gradients flow back to them), so tensors the function
captures from outside are constants here, as in torch. jacobian's vectorize=True is accepted and computed by the
same per-row loop; its "forward-mode" strategy gives the same numbers by reverse mode."""
from __future__ import annotations

from .._C import core as _core
from .grad_mode import enable_grad, is_grad_enabled, set_grad_enabled

Tensor = _core.Tensor

_STRATEGIES = ("forward-mode", "reverse-mode")


def _vt():
    import vibetensor.torch as vt  # lazily: vibetensor.torch imports this package while it loads

    return vt


def _as_tuple(value, what, fn):
    """(was it a tuple, the tensors as a tuple); anything but Tensors raises TypeError as torch's does."""
    is_tuple = isinstance(value, tuple)
    items = value if is_tuple else (value,)
    for i, el in enumerate(items):
        if not isinstance(el, Tensor):
            where = f"value at index {i}" if is_tuple else f"given {what}"
            raise TypeError(f"The {what} given to {fn} must be either a Tensor or a tuple of Tensors but the {where} "
                            f"has type {type(el)}.")
    return is_tuple, items


def _untuple(res, is_tuple):
    return res if is_tuple else res[0]


def _prepare(tensors, create_graph, need_graph):
    """New tensor objects for the call: a view (gradients flow back to the caller's tensor) when create_graph and it
    requires grad, else a detached copy of the handle that requires grad iff need_graph."""
    return tuple(t.view_as(t) if create_graph and t.requires_grad else t.detach().requires_grad_(need_graph)
                 for t in tensors)


def _finish(tensors, create_graph):
    """Drop the history of the results unless the caller asked for a graph (nested tuples too)."""
    if create_graph:
        return tensors
    return tuple(_finish(t, False) if isinstance(t, tuple) else t.detach() for t in tensors)


def _grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """autograd.grad over the outputs that have a graph only (None where nothing reaches an input)."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    kept = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not kept:
        return (None,) * len(inputs)
    from . import grad as _autograd_grad

    return _autograd_grad([o for o, _ in kept], list(inputs), [g for _, g in kept], retain_graph=retain_graph,
                          create_graph=create_graph, allow_unused=True)


_INDEPENDENT = {
    "back": "The output of the user-provided function is independent of input {i}. This is not allowed in strict "
            "mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the grad_outputs when "
                  "using the double backward trick to compute forward mode gradients. This is not allowed in "
                  "strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. This is not allowed in "
                   "strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} in the "
                         "grad_jacobian. This is not allowed in strict mode as it prevents from using the double "
                         "backward trick to replace forward mode AD.",
}


def _fill_zeros(grads, refs, strict, create_graph, stage):
    """None (independent) -> zeros shaped like refs[i]; under strict, an error naming what is independent."""
    vt = _vt()
    out = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(_INDEPENDENT[stage].format(i=i))
            g = vt.zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(f"The {what} of the user-provided function is independent of input {i}. This is not "
                               f"allowed in strict mode when create_graph=True.")
        out.append(g)
    return tuple(out)


def _strict_check(tensors, kind, strict):
    """strict=True: every output / gradient must carry a graph back to the inputs."""
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(f"The output of the user-provided function is independent of input {i}. This is not "
                               f"allowed in strict mode.")
        if t.requires_grad:
            continue
        if kind == "outputs":
            raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The outputs "
                               f"must be computed in a differentiable manner from the input when running in strict "
                               f"mode.")
        if kind == "grad_inputs":
            raise RuntimeError(f"The gradient with respect to input {i} is independent of the inputs of the "
                               f"user-provided function. This is not allowed in strict mode.")
        if kind == "jacobian":
            raise RuntimeError(f"While computing the hessian, found that the jacobian of the user-provided function "
                               f"with respect to input {i} is independent of the input. This is not allowed in "
                               f"strict mode. You should ensure that your function is twice differentiable and that "
                               f"the jacobian depends on the inputs (this would be violated by a linear function for "
                               f"example).")
        raise RuntimeError(f"The hessian of the user-provided function with respect to input {i} is independent of "
                           f"the input. This is not allowed in strict mode. You should ensure that your function is "
                           f"thrice differentiable and that the hessian depends on the inputs.")


def _check_v(v, refs, refs_tuple, fn, create_graph):
    _, v = _as_tuple(v, "v", fn)
    v = _prepare(v, create_graph, need_graph=False)
    if len(v) != len(refs):
        if refs_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(refs)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (a, b) in enumerate(zip(v, refs)):
        if tuple(a.shape) != tuple(b.shape):
            prefix = f"Entry {i} in " if refs_tuple else ""
            raise RuntimeError(f"{prefix}v has invalid size: should be {tuple(b.shape)} but got {tuple(a.shape)}.")
    return v


def _single_element_v(tensors, whose):
    if len(tensors) != 1 or tensors[0].numel() != 1:
        raise RuntimeError(f"The vector v can only be None if the {whose} a single Tensor with a single element.")


def _scalar_output(outputs, is_tuple, fn):
    if is_tuple:
        raise RuntimeError(f"The function given to {fn} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn} should contain a single element")


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T J): the vector-Jacobian product, shaped like the inputs."""
    with enable_grad():
        in_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph, need_graph=True)
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        _strict_check(outputs, "outputs", strict)
        if v is not None:
            v = _check_v(v, outputs, out_tuple, "vjp", create_graph)
        else:
            _single_element_v(outputs, "user-provided function returns")
    with set_grad_enabled(create_graph or is_grad_enabled()):
        res = _fill_zeros(_grad(outputs, inputs, v, create_graph), inputs, strict, create_graph, "back")
    return _untuple(_finish(outputs, create_graph), out_tuple), _untuple(_finish(res, create_graph), in_tuple)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), J v): the Jacobian-vector product, shaped like the outputs (by double backward)."""
    vt = _vt()
    with enable_grad():
        in_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph, need_graph=True)
        if v is not None:
            v = _check_v(v, inputs, in_tuple, "jvp", create_graph)
        else:
            _single_element_v(inputs, "input to the user-provided function is")
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jvp")
        _strict_check(outputs, "outputs", strict)
        # any finite upstream gradient will do: the backward is linear in it, so it drops out of the product
        dummies = tuple(vt.zeros_like(o, requires_grad=True) for o in outputs)
        grad_inputs = _grad(outputs, inputs, dummies, create_graph=True)
        _strict_check(grad_inputs, "grad_inputs", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        res = _fill_zeros(_grad(grad_inputs, dummies, v, create_graph), outputs, strict, create_graph, "back_trick")
    return _untuple(_finish(outputs, create_graph), out_tuple), _untuple(_finish(res, create_graph), out_tuple)


def _rows(out, inputs, create_graph, strict, out_index, on_missing):
    """d out / d inputs as one tensor per input, shaped out.shape + input.shape, by one backward per element."""
    vt = _vt()
    per_input = [[] for _ in inputs]
    flat = out.reshape(-1)
    for j in range(out.numel()):
        for k, g in enumerate(_grad((flat[j],), inputs, retain_graph=True, create_graph=create_graph)):
            if g is None:
                if strict:
                    raise RuntimeError(on_missing.format(i=out_index, k=k))
                g = vt.zeros_like(inputs[k])
            elif strict and create_graph and not g.requires_grad:
                raise RuntimeError(f"The jacobian of the user-provided function is independent of input {k}. This is "
                                   f"not allowed in strict mode when create_graph=True.")
            per_input[k].append(g)
    return tuple(vt.stack(rows).view(tuple(out.shape) + tuple(inp.shape)) if rows
                 else vt.zeros(tuple(out.shape) + tuple(inp.shape), dtype=inp.dtype, device=inp.device)
                 for rows, inp in zip(per_input, inputs))


def _check_strategy(strategy, create_graph, strict, vectorize, hint):
    if strategy not in _STRATEGIES:
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".' + hint)
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError('torch.autograd.functional.jacobian: `create_graph=True` and `strategy='
                                      '"forward-mode"` are not supported together (yet). Please either set '
                                      '`create_graph=False` or `strategy="reverse-mode"`.')
        if strict:
            raise RuntimeError('torch.autograd.functional.jacobian: `strict=True` and `strategy="forward-mode"` are '
                               'not supported together (yet). Please either set `strict=False` or '
                               '`strategy="reverse-mode"`.')


def _check_vectorize(strategy, strict, vectorize):
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian is only "
                                  "implemented for `vectorize=True`.")
    if strategy == "reverse-mode" and vectorize and strict:
        raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` are not "
                           "supported together. Please either set `strict=False` or `vectorize=False`.")


_OUTPUT_INDEPENDENT = ("Output {i} of the user-provided function is independent of input {k}. This is not allowed in "
                       "strict mode.")


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """d func / d inputs: entry [i][j] has shape outputs[i].shape + inputs[j].shape; the tuple levels follow whether
    the outputs and the inputs were tuples."""
    _check_strategy(strategy, create_graph, strict, vectorize,
                    ' Hint: If your function has more outputs than inputs, "forward-mode" tends to be more '
                    'performant. Otherwise, prefer to use "reverse-mode".')
    with enable_grad():
        in_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        if strategy == "forward-mode":
            _check_vectorize(strategy, strict, vectorize)
        inputs = _prepare(inputs, create_graph, need_graph=True)
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "jacobian")
        _strict_check(outputs, "outputs", strict)
        _check_vectorize(strategy, strict, vectorize)
        jac = tuple(_rows(out, inputs, create_graph, strict, i, _OUTPUT_INDEPENDENT) for i, out in enumerate(outputs))
    jac = _finish(jac, create_graph)
    if not in_tuple:
        jac = tuple(row[0] for row in jac)
    elif strategy == "forward-mode":  # torch's forward-mode path hands back lists at the inputs' level
        return [list(row) for row in jac] if out_tuple else list(jac[0])
    return _untuple(jac, out_tuple)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """Second derivatives of a function with a single-element output: entry [i][j] has shape inputs[i].shape +
    inputs[j].shape (a plain Tensor for a Tensor input)."""
    in_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    _check_strategy(outer_jacobian_strategy, create_graph, strict, vectorize, "")
    with enable_grad():
        if outer_jacobian_strategy == "forward-mode":
            _check_vectorize(outer_jacobian_strategy, strict, vectorize)
        inputs = _prepare(inputs, create_graph, need_graph=True)
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "hessian")
        _strict_check(outputs, "outputs", strict)
        _scalar_output(outputs, out_tuple, "hessian")
        first = _fill_zeros(_grad((outputs[0].reshape(()),), inputs, create_graph=True), inputs, False, True, "back")
        _strict_check(first, "jacobian", strict)
        _check_vectorize(outer_jacobian_strategy, strict, vectorize)
        hess = tuple(_rows(g, inputs, create_graph, strict, i, _OUTPUT_INDEPENDENT) for i, g in enumerate(first))
    hess = _finish(hess, create_graph)
    if not in_tuple:
        return hess[0][0]
    return [list(row) for row in hess] if outer_jacobian_strategy == "forward-mode" else hess


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), v^T H) for a function with a single-element output, shaped like the inputs."""
    with enable_grad():
        in_tuple, inputs = _as_tuple(inputs, "inputs", "vhp")
        inputs = _prepare(inputs, create_graph, need_graph=True)
        if v is not None:
            v = _check_v(v, inputs, in_tuple, "vhp", create_graph)
        else:
            _single_element_v(inputs, "input to the user-provided function is")
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vhp")
        _strict_check(outputs, "outputs", strict)
        _scalar_output(outputs, out_tuple, "vhp")
        jac = _grad(outputs, inputs, create_graph=True)
        _strict_check(jac, "jacobian", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        res = _fill_zeros(_grad(jac, inputs, v, create_graph), inputs, strict, create_graph, "double_back")
    return _untuple(_finish(outputs, create_graph), out_tuple), _untuple(_finish(res, create_graph), in_tuple)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(inputs), H v) for a function with a single-element output (by double backward through v^T H)."""
    vt = _vt()
    with enable_grad():
        in_tuple, inputs = _as_tuple(inputs, "inputs", "hvp")
        inputs = _prepare(inputs, create_graph, need_graph=True)
        if v is not None:
            v = _check_v(v, inputs, in_tuple, "hvp", create_graph)
        else:
            _single_element_v(inputs, "input to the user-provided function is")
        out_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "hvp")
        _strict_check(outputs, "outputs", strict)
        _scalar_output(outputs, out_tuple, "hvp")
        jac = _grad(outputs, inputs, create_graph=True)
        _strict_check(jac, "jacobian", strict)
        dummies = tuple(vt.zeros_like(t, requires_grad=True) for t in inputs)
        double_back = _grad(jac, inputs, dummies, create_graph=True)
        _strict_check(jac, "hessian", strict)
    with set_grad_enabled(create_graph or is_grad_enabled()):
        res = _fill_zeros(_grad(double_back, dummies, v, create_graph), inputs, strict, create_graph,
                          "double_back_trick")
    return _untuple(_finish(outputs, create_graph), out_tuple), _untuple(_finish(res, create_graph), in_tuple)
