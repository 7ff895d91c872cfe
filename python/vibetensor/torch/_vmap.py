"""torch.func.vmap (also torch.vmap): map a function over a batch dimension of its inputs. This one slices the batch
dimension, calls the function once per sample and stacks the results at out_dims - correctness over speed, so any
function works, grad and the other transforms inside it included, and nesting is plain recursion. in_dims and
out_dims follow torch's rules: an int or None for everything, or a (nested) tuple matching the arguments / outputs,
any leaf of which covers its whole subtree. randomness: "different" lets each sample draw its own numbers, "same"
replays one draw for all of them (the generator state is put back before each sample), "error" raises when the
function drew random numbers. chunk_size is checked and otherwise changes nothing here.

An output with out_dims None must be the same for every sample (torch raises for one that depends on the batch; here
that is checked by comparing the per-sample values). A batch of size 0 calls the function once on zeros of one
sample's shape to learn the output shapes, and returns empty outputs."""
from __future__ import annotations

import functools

from .._C import core as _core
from ._func_transforms import broadcast_prefix, spec_str, tree_flatten, tree_unflatten

Tensor = _core.Tensor

_RANDOMNESS = ("error", "different", "same")


def _name(func):
    return getattr(func, "__name__", repr(func))


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """func vectorised over dimension in_dims of its (positional) inputs; outputs batched at out_dims."""
    if randomness not in _RANDOMNESS:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        leaves, spec, dims, size = _batched_inputs(func, in_dims, args)
        state = _core.get_rng_state()
        outputs = []
        for i in range(max(size, 1)):
            if randomness == "same":
                _core.set_rng_state(*state)
            sample = [_sample(x, d, i, size) for x, d in zip(leaves, dims)]
            before = _core.get_rng_state()
            outputs.append(func(*tree_unflatten(sample, spec), **kwargs))
            if randomness == "error" and _core.get_rng_state() != before:
                raise RuntimeError("vmap: called random operation while in randomness error mode. Please either use "
                                   "the 'same' or 'different' randomness flags on vmap or perform the randomness "
                                   "operation out of vmap")
        return _stacked(func, out_dims, outputs, size)

    return wrapper


def _batched_inputs(func, in_dims, args):
    """(flat args, their spec, the in_dim of each, the batch size), with torch's checks and messages."""
    name = _name(func)
    if not isinstance(in_dims, (int, tuple)):
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected `in_dims` to be int or a "
                         f"(potentially nested) tuple matching the structure of inputs, got: {type(in_dims)}.")
    if len(args) == 0:
        raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add inputs, or you are trying "
                         f"to vmap over a function with no inputs. The latter is unsupported.")
    leaves, spec = tree_flatten(args)
    dims = broadcast_prefix(in_dims, spec)
    if dims is None:
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the "
                         f"structure of `inputs`. in_dims has structure {spec_str(tree_flatten(in_dims)[1])} but "
                         f"inputs has structure {spec_str(spec)}.")
    sizes = []
    for i, (x, d) in enumerate(zip(leaves, dims)):
        if d is None:
            continue
        if not isinstance(d, int) or isinstance(d, bool):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for an input but "
                             f"in_dim must be either an integer dimension or None.")
        if not isinstance(x, Tensor):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for an input but the "
                             f"input is of type {type(x)}. We cannot vmap over non-Tensor arguments, please use None "
                             f"as the respective in_dim")
        if not -x.dim() <= d < x.dim():
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for some input, but "
                             f"that input is a Tensor of dimensionality {x.dim()} so expected in_dim to satisfy "
                             f"-{x.dim()} <= in_dim < {x.dim()}.")
        dims[i] = d % x.dim()
        sizes.append(x.shape[dims[i]])
    if not sizes:
        raise ValueError("vmap: Expected at least one Tensor to vmap over")
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                         f"{sizes} for the mapped dimension")
    return leaves, spec, dims, sizes[0]


def _sample(x, d, i, size):
    if d is None:
        return x
    if size == 0:  # a stand-in sample: zeros of one sample's shape
        from . import zeros

        shape = tuple(x.shape[:d]) + tuple(x.shape[d + 1:])
        return zeros(shape, dtype=x.dtype, device=x.device)
    return x.select(d, i)


def _stacked(func, out_dims, outputs, size):
    from . import equal, stack

    name = _name(func)
    flat, spec = tree_flatten(outputs[0])
    if not isinstance(out_dims, (int, tuple, list, dict)) and out_dims is not None:
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a python "
                         f"collection of ints representing where in the outputs the vmapped dimension should "
                         f"appear.")
    # a one-element tuple of out_dims for a single (non-tuple) output is that output's out_dim, as in torch
    if isinstance(out_dims, tuple) and len(out_dims) == 1 and spec is None:
        out_dims = out_dims[0]
    dims = broadcast_prefix(out_dims, spec)
    if dims is None:
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not compatible with the "
                         f"structure of `outputs`. out_dims has structure {spec_str(tree_flatten(out_dims)[1])} but "
                         f"outputs has structure {spec_str(spec)}.")
    per_sample = [tree_flatten(o)[0] for o in outputs]
    result = []
    for k, d in enumerate(dims):
        values = [leaves[k] for leaves in per_sample]
        if d is None:
            first = values[0]
            if isinstance(first, Tensor) and any(not (tuple(v.shape) == tuple(first.shape) and equal(v, first))
                                                 for v in values[1:]):
                raise ValueError(f"vmap({name}, ...): `{name}` can not return a BatchedTensor when out_dim is None")
            result.append(first)
            continue
        if not isinstance(values[0], Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type {type(values[0])}. "
                             f"Did you mean to set out_dims= to None for output?")
        if not isinstance(d, int):
            raise ValueError(f"vmap({name}, ..., out_dims={out_dims}): `out_dims` must be an int, None or a python "
                             f"collection of ints representing where in the outputs the vmapped dimension should "
                             f"appear.")
        out = stack(values, d)
        result.append(out.narrow(d % out.dim(), 0, 0) if size == 0 else out)
    return tree_unflatten(result, spec)
