"""torch.func's differentiation transforms - grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian - on vibetensor's
reverse-mode autograd, with the small pytree support (tuples, lists, dicts, namedtuples) they and vmap need.

Note [Transform levels]: torch.func gives each transform a level of its own; here a transform makes a fresh tensor
per differentiated input (a view of it when it already requires grad, so a surrounding grad / autograd graph still
reaches it; otherwise a detached copy that requires grad) and differentiates with respect to those. The results keep
a graph - are computed with create_graph - only where the function's output reaches a tensor from outside the
transform that requires grad (an enclosing transform's input, a captured parameter) while grad mode was on at the
call; otherwise they come back detached, as torch's do. That is what lets grad(grad(f)), jacrev(jacrev(f)),
vmap(grad(f)) and an outer .backward() through grad(f) compose. jacfwd and jvp are computed by reverse mode (jvp by
double backward): the results are the same, the cost is one backward per output element."""
from __future__ import annotations

import functools

from .._C import core as _core
from ..autograd.functional import _grad
from ..autograd.grad_mode import enable_grad, is_grad_enabled

Tensor = _core.Tensor


# ---- pytrees: a spec is None for a leaf, else (kind, context, child specs) -------------------------------------
def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def tree_flatten(tree):
    """(leaves, spec): tuples, lists, dicts and namedtuples are nodes; everything else (None too) is a leaf."""
    leaves = []

    def walk(t):
        if isinstance(t, (tuple, list)):
            kind = type(t) if _is_namedtuple(t) else (tuple if isinstance(t, tuple) else list)
            return (kind, None, [walk(c) for c in t])
        if isinstance(t, dict):
            return (dict, list(t.keys()), [walk(t[k]) for k in t])
        leaves.append(t)
        return None

    spec = walk(tree)
    return leaves, spec


def tree_unflatten(leaves, spec):
    it = iter(leaves)

    def build(s):
        if s is None:
            return next(it)
        kind, ctx, children = s
        values = [build(c) for c in children]
        if kind is dict:
            return dict(zip(ctx, values))
        if kind is tuple or kind is list:
            return kind(values)
        return kind(*values)  # namedtuple

    return build(spec)


def spec_str(spec):
    """A spec as torch prints one: * for a leaf, containers around."""
    if spec is None:
        return "*"
    kind, ctx, children = spec
    parts = [spec_str(c) for c in children]
    if kind is dict:
        return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(ctx, parts)) + "}"
    if kind is list:
        return "[" + ", ".join(parts) + "]"
    inner = ", ".join(parts) + ("," if len(parts) == 1 else "")
    return ("(" if kind is tuple else kind.__name__ + "(") + inner + ")"


def broadcast_prefix(prefix, spec):
    """The prefix tree's leaf values spread over the leaves of `spec` (a prefix leaf - an int, None, anything that is
    not a container - covers its whole subtree); None where the structures do not match."""
    if not isinstance(prefix, (tuple, list, dict)):
        return [prefix] * _count(spec)
    if spec is None:
        return None
    kind, ctx, children = spec
    if isinstance(prefix, dict):
        if kind is not dict or set(prefix) != set(ctx):
            return None
        items = [prefix[k] for k in ctx]
    else:
        pkind = type(prefix) if _is_namedtuple(prefix) else (tuple if isinstance(prefix, tuple) else list)
        if pkind is not kind or len(prefix) != len(children):
            return None
        items = list(prefix)
    out = []
    for p, c in zip(items, children):
        sub = broadcast_prefix(p, c)
        if sub is None:
            return None
        out.extend(sub)
    return out


def _count(spec):
    return 1 if spec is None else sum(_count(c) for c in spec[2])


# ---- levels (Note [Transform levels]) -----------------------------------------------------------------------------
class _Level:
    """The differentiated inputs of one transform call: fresh tensors, and the graph nodes that are ours."""

    def __init__(self, tree):
        leaves, self.spec = tree_flatten(tree)
        for t in leaves:
            if not isinstance(t, Tensor):
                raise ValueError(f"Thing passed to transform API must be Tensor, got {type(t)}")
        self.inputs = [t.view_as(t) if t.requires_grad else t.detach().requires_grad_() for t in leaves]
        self._own_leaves = {id(t) for t, old in zip(self.inputs, leaves) if not old.requires_grad}
        self._own_nodes = [t.view_as(t).grad_fn.next_functions[0][0]
                           for t, old in zip(self.inputs, leaves) if not old.requires_grad]

    def tree(self):
        return tree_unflatten(self.inputs, self.spec)

    def reaches_outside(self, tensors):
        """Whether any of the tensors has a graph reaching a tensor that requires grad outside this level."""
        nodes = []
        for t in tensors:
            if not isinstance(t, Tensor) or not t.requires_grad:
                continue
            if t.grad_fn is None:
                if id(t) not in self._own_leaves:
                    return True
                continue
            nodes.append(t.grad_fn)
        seen = set(self._own_nodes)
        while nodes:
            node = nodes.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            nexts = node.next_functions
            if not nexts and node.name() == "AccumulateGrad":
                return True
            nodes.extend(n for n, _ in nexts)
        return False

    def keeps_graph(self, tensors, outer_grad_enabled):
        return outer_grad_enabled and self.reaches_outside(tensors)


def _zeros_filled(grads, refs):
    from . import zeros_like

    return [g if g is not None else zeros_like(r) for g, r in zip(grads, refs)]


def _released(t, keep):
    return t if keep or not isinstance(t, Tensor) else t.detach()


def _check_argnums(argnums, num_args):
    """argnums wrapped into range, checked as torch.func checks them (RuntimeError)."""
    if not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")

    def one(a):
        if not isinstance(a, int):
            raise RuntimeError(f"argnum must be int, got: {type(a)}")
        if -num_args <= a < num_args:
            return a % num_args
        raise RuntimeError(f"Got argnum={a}, but only {num_args} positional inputs")

    if isinstance(argnums, int):
        return one(argnums)
    wrapped = tuple(one(a) for a in argnums)
    if not wrapped:
        raise RuntimeError("argnums must be non-empty")
    if len(set(wrapped)) != len(wrapped):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return wrapped


def _enter(args, argnums):
    """(the args with the differentiated ones replaced by a level's fresh tensors, that level)."""
    nums = _check_argnums(argnums, len(args))
    level = _Level(args[nums] if isinstance(nums, int) else tuple(args[i] for i in nums))
    new = level.tree()
    args = list(args)
    for pos, i in enumerate((nums,) if isinstance(nums, int) else nums):
        args[i] = new if isinstance(nums, int) else new[pos]
    return tuple(args), level


def _split_aux(output, has_aux, api):
    if not has_aux:
        return output, None
    if not (isinstance(output, tuple) and len(output) == 2):
        raise RuntimeError(f"{api}: output of function f should be a tuple: (output, aux) if has_aux is True")
    for leaf in tree_flatten(output[1])[0]:
        if not isinstance(leaf, Tensor):
            raise RuntimeError(f"Expected tensors, got unsupported type {type(leaf)}")
    return output


def _release_aux(level, aux, outer):
    leaves, spec = tree_flatten(aux)
    return tree_unflatten([_released(t, level.keeps_graph([t], outer)) for t in leaves], spec)


def _tensor_outputs(flat, api):
    if not flat:
        raise RuntimeError(f"{api}: Expected f to be a function that has non-empty output (got output = {flat})")
    for o in flat:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got unsupported type {type(o)}")


# ---- grad / vjp -----------------------------------------------------------------------------------------------
def grad_and_value(func, argnums=0, has_aux=False):
    """A function returning (d func / d args[argnums], func(*args)) - ((grads, (value, aux)) with has_aux) - for a
    func whose output is a scalar Tensor; the gradients have the structure of the differentiated argument(s)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        outer = is_grad_enabled()
        with enable_grad():
            args, level = _enter(args, argnums)
            output, aux = _split_aux(func(*args, **kwargs), has_aux, "grad_and_value(f)(*args)")
            if not isinstance(output, Tensor):
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a Tensor, got "
                                   f"{type(output)}")
            if output.dim() != 0:
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a scalar Tensor, got "
                                   f"tensor with {output.dim()} dims. Maybe you wanted to use the vjp or jacrev "
                                   f"APIs instead?")
            keep = level.keeps_graph([output], outer)
            grads = _zeros_filled(_grad((output,), level.inputs, create_graph=keep), level.inputs)
        grads = tree_unflatten([_released(g, keep) for g in grads], level.spec)
        output = _released(output, keep)
        if has_aux:
            return grads, (output, _release_aux(level, aux, outer))
        return grads, output

    return wrapper


def grad(func, argnums=0, has_aux=False):
    """A function returning d func / d args[argnums] ((grads, aux) with has_aux) for a scalar-valued func."""
    inner = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        grads, value = inner(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return wrapper


def vjp(func, *primals, has_aux=False):
    """(func(*primals), vjp_fn) - plus aux with has_aux - where vjp_fn(cotangents) gives the tuple of
    vector-Jacobian products, one per primal; cotangents have the structure of func's output."""
    outer = is_grad_enabled()
    with enable_grad():
        level = _Level(tuple(primals))
        output, aux = _split_aux(func(*level.tree()), has_aux, "vjp(f, *primals)")
        flat_out, out_spec = tree_flatten(output)
        _tensor_outputs(flat_out, "vjp(f, *primals)")
        for o in flat_out:
            if not o.is_floating_point() and not o.is_complex():
                raise RuntimeError(f"vjp(f, ...): All outputs of f must be floating-point or complex Tensors, got "
                                   f"Tensor with dtype {o.dtype}")
    keep = level.keeps_graph(flat_out, outer)

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        flat_ct, ct_spec = tree_flatten(cotangents)
        if ct_spec != out_spec:
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {spec_str(ct_spec)}, primal output: "
                               f"{spec_str(out_spec)}")
        if create_graph is None:
            create_graph = is_grad_enabled() and (keep or any(c.requires_grad for c in flat_ct))
        with enable_grad():
            grads = _grad(tuple(flat_out), level.inputs, tuple(flat_ct), create_graph=create_graph,
                          retain_graph=retain_graph)
            grads = _zeros_filled(grads, level.inputs)
        return tree_unflatten([_released(g, create_graph) for g in grads], level.spec)

    output = tree_unflatten([_released(o, keep) for o in flat_out], out_spec)
    if has_aux:
        return output, vjp_fn, _release_aux(level, aux, outer)
    return output, vjp_fn


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """(func(*primals), J @ tangents) - plus aux with has_aux - by the double-backward trick."""
    from . import zeros_like

    api = "jvp(f, primals, tangents)"
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{api}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals).")
    flat_p, p_spec = tree_flatten(primals)
    flat_t, t_spec = tree_flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError(f"{api}: Expected primals and tangents to have the same python structure. For example, "
                           f"if primals is a tuple of 3 tensors, tangents also must be. Got primals with structure "
                           f"{spec_str(p_spec)} and tangents with structure {spec_str(t_spec)}")
    outer = is_grad_enabled()
    with enable_grad():
        level = _Level(primals)
        output, aux = _split_aux(func(*level.tree()), has_aux, api)
        flat_out, out_spec = tree_flatten(output)
        _tensor_outputs(flat_out, api)
        keep = level.keeps_graph(flat_out, outer) or (outer and any(t.requires_grad for t in flat_t))
        dummies = [zeros_like(o, requires_grad=True) for o in flat_out]
        back = _grad(tuple(flat_out), level.inputs, tuple(dummies), create_graph=True)
        out_t = _grad(tuple(back), dummies, tuple(flat_t), create_graph=keep)
    if strict and any(t is None for t in out_t):
        raise RuntimeError("jvp(f, primals, tangents, strict=True): The output of f is independent of the inputs. "
                           "This is not allowed with strict=True.")
    out_t = [_released(t, keep) for t in _zeros_filled(out_t, flat_out)]
    result = (tree_unflatten([_released(o, keep) for o in flat_out], out_spec), tree_unflatten(out_t, out_spec))
    return result + (_release_aux(level, aux, outer),) if has_aux else result


# ---- Jacobians ------------------------------------------------------------------------------------------------
def _jacobian_rows(out, inputs, create_graph):
    """d out / d inputs, one tensor per input shaped out.shape + input.shape, by one backward per element."""
    from . import stack, zeros

    per_input = [[] for _ in inputs]
    flat = out.reshape(-1)
    for j in range(out.numel()):
        grads = _zeros_filled(_grad((flat[j],), inputs, retain_graph=True, create_graph=create_graph), inputs)
        for k, g in enumerate(grads):
            per_input[k].append(g)
    return [stack(rows).view(tuple(out.shape) + tuple(inp.shape)) if rows
            else zeros(tuple(out.shape) + tuple(inp.shape), dtype=inp.dtype, device=inp.device)
            for rows, inp in zip(per_input, inputs)]


def _jacobian_transform(func, argnums, has_aux):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        outer = is_grad_enabled()
        with enable_grad():
            args, level = _enter(args, argnums)
            output, aux = _split_aux(func(*args, **kwargs), has_aux, "vjp(f, *primals)")
            flat_out, out_spec = tree_flatten(output)
            _tensor_outputs(flat_out, "vjp(f, *primals)")
            keep = level.keeps_graph(flat_out, outer)
            jac = [tree_unflatten([_released(r, keep) for r in _jacobian_rows(o, level.inputs, keep)], level.spec)
                   for o in flat_out]
        jac = tree_unflatten(jac, out_spec)
        return (jac, _release_aux(level, aux, outer)) if has_aux else jac

    return wrapper


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """The Jacobian of func with respect to args[argnums]: for every output (in func's output structure) the
    structure of the differentiated argument(s), each entry shaped output.shape + input.shape. chunk_size is
    accepted (the rows are computed one at a time anyway)."""
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
    return _jacobian_transform(func, argnums, has_aux)


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """jacrev's result, under torch's forward-mode name and signature (computed by reverse mode here)."""
    return _jacobian_transform(func, argnums, has_aux)


def hessian(func, argnums=0):
    """The second derivatives of a scalar-valued func with respect to args[argnums]: jacfwd of jacrev."""
    return jacfwd(jacrev(func, argnums), argnums)
