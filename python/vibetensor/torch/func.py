"""torch.func.functional_call (also nn.utils.stateless.functional_call): call a module with some of its parameters
and buffers replaced by the given tensors, for that call only - the way meta-learning, per-sample gradient and
model-ensembling code evaluates one module under many sets of weights. The tensors go into the modules' own
parameter and buffer tables and the originals come back afterwards, even when the call raises, so autograd
records the given tensors (gradients flow to them, not to the module's parameters). With tie_weights (the
default), names that share one tensor in the module (lm_head.weight is wte.weight) all take the tensor given for
any of them; strict requires every parameter and buffer to be given and no other name.

The transforms of torch.func live in sibling modules and are re-exported here: grad, grad_and_value, vjp, jvp,
jacrev, jacfwd and hessian (_func_transforms.py, on vibetensor's reverse-mode autograd: jvp and jacfwd by reverse
mode) and vmap (_vmap.py, which calls the function once per sample and stacks the results). They compose as torch's do -
vmap(grad(...)) with functional_call for per-sample gradients, jacrev(jacrev(f)), grad(grad(f)). Not provided:
torch.func.functionalize, linearize and replace_all_batch_norm_modules_. stack_module_state stacks an ensemble's
weights for vmap, as torch's."""
from __future__ import annotations

import contextlib

from ._func_transforms import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp  # noqa: F401
from ._vmap import vmap  # noqa: F401


def _slot(module, name):
    """(table, key) of the dotted name's parameter or buffer, or None."""
    *path, leaf = name.split(".")
    owner = module
    for part in path:
        owner = owner._modules.get(part) if hasattr(owner, "_modules") else None
        if owner is None:
            return None
    for table in (owner._parameters, owner._buffers):
        if leaf in table:
            return table, leaf
    return None


@contextlib.contextmanager
def _swapped(module, tensors, tie_weights, strict):
    names = dict(module.named_parameters(remove_duplicate=False))
    names.update(module.named_buffers(remove_duplicate=False))
    unknown = [k for k in tensors if k not in names]
    missing = [k for k in names if k not in tensors]
    if strict and (unknown or missing):
        raise RuntimeError("Error(s) in reparametrizing for " + type(module).__name__ + ":"
                           + (f"\n\tUnexpected key(s): {', '.join(map(repr, unknown))}." if unknown else "")
                           + (f"\n\tMissing key(s): {', '.join(map(repr, missing))}." if missing else ""))
    wanted = {k: v for k, v in tensors.items() if k in names}
    if tie_weights:  # every name of a given tensor's original takes it too
        by_original = {}
        for k, v in wanted.items():
            if id(names[k]) in by_original and by_original[id(names[k])][1] is not v:
                raise ValueError(f"functional_call got multiple values for keys {by_original[id(names[k])][0]!r} "
                                 f"and {k!r}, which are tied. Consider using tie_weights=False")
            by_original[id(names[k])] = (k, v)
        wanted.update({k: by_original[id(t)][1] for k, t in names.items() if id(t) in by_original})
    saved = []
    try:
        for k, v in wanted.items():
            table, key = _slot(module, k)
            saved.append((table, key, table[key]))
            table[key] = v
        yield
    finally:
        for table, key, original in reversed(saved):
            table[key] = original


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """module(*args, **kwargs) with the named parameters and buffers replaced by the given tensors (one dict, or a
    tuple/list of dicts whose keys must not repeat)."""
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, (list, tuple)):
        merged = {}
        for d in dicts:
            repeated = set(merged) & set(d)
            if repeated:
                raise ValueError(f"{sorted(repeated)} appeared in multiple dictionaries; behavior of functional "
                                 f"call is ambiguous")
            merged.update(d)
        dicts = merged
    args = () if args is None else args if isinstance(args, tuple) else (args,)
    with _swapped(module, dict(dicts), tie_weights, strict):
        return module(*args, **(kwargs or {}))


def _stacked_leaf(tensors, name):
    grads = {t.requires_grad for t in tensors}
    if len(grads) > 1:
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    from . import _functions as F

    out = F.stack(tensors)
    return out.detach().requires_grad_() if grads == {True} else out


def stack_module_state(models):
    """(params, buffers): each name's tensors of the models stacked on a new leading dim, the way an ensemble is
    vmapped over with functional_call; the stacked parameters are new leaves (gradients reach them, not the
    models)."""
    models = list(models)
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if len({m.training for m in models}) > 1:
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    if len({type(m) for m in models}) > 1:
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    tables = [dict(m.named_parameters()) for m in models]
    params = {k: _stacked_leaf([t[k] for t in tables], k) for k in tables[0]}
    tables = [dict(m.named_buffers()) for m in models]
    buffers = {k: _stacked_leaf([t[k] for t in tables], k) for k in tables[0]}
    return params, buffers
