"""torch.utils.checkpoint: run part of a model without keeping its activations and run it again in backward.

checkpoint(fn, *args) calls fn under no_grad, keeps only its inputs, and in backward calls fn again with grad
enabled on detached copies of them, then backpropagates the incoming gradients through that second call, so
the inputs and every parameter fn uses receive their gradients, as with a plain call. The RNG state is put
back for the second call (preserve_rng_state=True, torch's default), so dropout draws the same mask, and so is
the forward's autocast state (backward runs with autocast suspended), so the second call computes in the same
dtypes as the first (its casts are not cached: the cache belongs to the forward's region). Like
torch's non-reentrant variant, parameters get gradients even when no input requires grad, and keyword
arguments are allowed; use_reentrant is accepted and does not change the result.
"""
from __future__ import annotations

from ... import autograd as _autograd
from ..._C import autograd as _ag
from ..._C import core as _core


def _grad_tensors(outputs, grads):
    pairs = [(o, g) for o, g in zip(outputs, grads) if isinstance(o, _core.Tensor) and o.requires_grad]
    return [o for o, _ in pairs], [g for _, g in pairs]


class _Checkpoint(_autograd.Function):
    @staticmethod
    def forward(ctx, run, preserve_rng, anchor, *args):
        ctx.run, ctx.rng = run, _core.get_rng_state() if preserve_rng else None
        ctx.autocast = list(_ag._get_autocast())
        ctx.autocast[5] = False  # no cast cache in the recomputation (it has no region exit to clear it)
        ctx.tensor_at = [i for i, a in enumerate(args) if isinstance(a, _core.Tensor)]
        ctx.others = [None if isinstance(a, _core.Tensor) else a for a in args]
        ctx.save_for_backward(*[args[i] for i in ctx.tensor_at])
        with _autograd.no_grad():
            out = run(*args)
        ctx.single = isinstance(out, _core.Tensor)
        return out if ctx.single else tuple(out)

    @staticmethod
    def backward(ctx, *grads):
        args = list(ctx.others)
        inputs = []
        for i, t in zip(ctx.tensor_at, ctx.saved_tensors):
            d = t.detach().requires_grad_(t.requires_grad)
            args[i] = d
            inputs.append(d)
        stash = _core.get_rng_state()
        if ctx.rng is not None:
            _core.set_rng_state(*ctx.rng)
        from ..amp.autocast_mode import _Regions  # (here: amp wraps functions when imported, after this module)

        engine_state = _ag._get_autocast()
        _Regions.add(1)  # the composites' policy wrappers look at the thread state only while a region is counted
        _ag._set_autocast(*ctx.autocast)
        try:
            with _autograd.enable_grad():
                out = ctx.run(*args)
        finally:
            _ag._set_autocast(*engine_state)
            _Regions.add(-1)
            if ctx.rng is not None:
                _core.set_rng_state(*stash)
        outs = (out,) if ctx.single else tuple(out)
        tensors, gs = _grad_tensors(outs, grads)
        if tensors:
            _autograd.backward(tensors, [g if g is not None else o.new_zeros(o.shape) for o, g in zip(tensors, gs)])
        grads_in = [None] * len(ctx.others)
        for i, d in zip(ctx.tensor_at, inputs):
            grads_in[i] = d.grad if d.requires_grad else None
        return (None, None, None, *grads_in)


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               preserve_rng_state=True, **kwargs):
    """function(*args, **kwargs), its activations recomputed in backward instead of kept."""
    if context_fn is not None:
        raise NotImplementedError("checkpoint: context_fn is not supported")
    run = (lambda *a: function(*a, **kwargs)) if kwargs else function
    if not _autograd.is_grad_enabled():
        return function(*args, **kwargs)
    # an anchor that requires grad: the output has history (and the parameters inside get their gradients)
    # even when no input requires grad, as with torch's non-reentrant checkpoint
    from .. import _functions as F

    anchor = F.empty(0).requires_grad_(True)
    return _Checkpoint.apply(run, preserve_rng_state, anchor, *args)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Runs the modules of a Sequential (or list) in `segments` checkpointed chunks; the last chunk runs plainly."""
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if segments < 1:
        raise ValueError("checkpoint_sequential: segments must be at least 1")
    size = max(len(fns) // segments, 1)

    def chunk(start, end):
        def run(x):
            for f in fns[start:end]:
                x = f(x)
            return x
        return run

    end = 0
    for start in range(0, size * (segments - 1), size):
        end = min(start + size, len(fns))
        input = checkpoint(chunk(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return chunk(end, len(fns))(input)
