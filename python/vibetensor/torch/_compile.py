"""torch.compile for code that calls it: vibetensor runs eagerly and has no graph compiler, so `compile` gives back
what torch's `backend="eager"` gives - the same computation, run op by op - in torch's shapes: a module comes back
wrapped in an OptimizedModule (its submodule `_orig_mod`, so state_dict keys gain the `_orig_mod.` prefix that
training scripts strip when they save or load, and attributes read through to the original module); a function
comes back as a function; `disable=True` returns the argument itself. `mode`, `options`, `fullgraph`, `dynamic`
and `backend` are accepted and checked as torch checks them, and change nothing.

For whole-step speed vibetensor offers CUDA graphs instead (vt.cuda.graph: capture a training step, replay it)."""
from __future__ import annotations

import functools

from .nn.module import Module

_MODES = (None, "default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")  # torch 2.13's


class OptimizedModule(Module):
    """What compile(module) returns: calls go to the original module (`_orig_mod`), attributes read through."""

    def __init__(self, mod):
        super().__init__()
        self._orig_mod = mod

    def forward(self, *args, **kwargs):
        return self._orig_mod(*args, **kwargs)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "_orig_mod":
                raise
            return getattr(self._orig_mod, name)

    def __repr__(self):
        return f"OptimizedModule(\n  (_orig_mod): {repr(self._orig_mod)}\n)"


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,
            disable=False):
    """torch.compile: a decorator (with or without arguments) or a call on a module or function; see the module
    docstring for what vibetensor returns."""
    if mode is not None and options is not None:
        raise RuntimeError("Either mode or options can be specified, but both can't be specified at the same time.")
    if mode not in _MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: "
                           + ", ".join(m for m in _MODES if m is not None))
    if not (isinstance(backend, str) or callable(backend)):
        raise TypeError(f"backend must be a string or a callable, got {type(backend).__name__}")

    def apply(obj):
        if not callable(obj):
            raise RuntimeError("torch.compile: model must be a callable")
        if disable:
            return obj
        if isinstance(obj, Module):
            return OptimizedModule(obj)

        @functools.wraps(obj)
        def compiled(*args, **kwargs):
            return obj(*args, **kwargs)

        compiled._torchdynamo_orig_callable = obj  # where torch keeps the original function
        return compiled

    return apply if model is None else apply(model)
