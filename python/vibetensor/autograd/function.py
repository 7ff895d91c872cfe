"""Custom differentiable functions: subclass vt.autograd.Function with static forward(ctx, *args) and
backward(ctx, *grads), call it with .apply(*args). forward runs without recording history; when grad mode is on
and a tensor argument requires grad, the outputs get a PyNode (core/bindings/autograd.cpp) whose backward calls
this class's backward. Gradients returned for inputs are checked against the inputs' shapes there."""
from __future__ import annotations

from .._C import autograd as _ag
from .._C import core as _core
from .grad_mode import no_grad

Tensor = _core.Tensor


class FunctionCtx:
    """The `ctx` of forward/backward: save_for_backward, saved_tensors, needs_input_grad,
    mark_non_differentiable, and any attribute the Function wants to stash."""

    def __init__(self):
        self.to_save = ()
        self.needs_input_grad = ()
        self._non_differentiable = ()
        self._saved = None

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save tensors, but argument was {type(t).__name__}")
        self.to_save = tensors

    @property
    def saved_tensors(self):
        if self._saved is None:  # forward without recording: the tensors as given
            return tuple(self.to_save)
        return tuple(self._saved.unpack())

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable = tensors


class Function:
    """Base class of custom autograd functions (see the module docstring)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement the backward function for custom autograd.Function.")

    @classmethod
    def apply(cls, *args):
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args)
        if not (_ag.is_grad_enabled() and any(ctx.needs_input_grad)):
            return out
        single = not isinstance(out, tuple)
        outs = [out] if single else list(out)
        tensor_at = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]

        def backward_bridge(*grads):
            # the node hands over a gradient per tensor output; torch's backward takes one per output, None for
            # those that are not tensors (a block returning (hidden, None, bias) gets (g_hidden, None, g_bias))
            if len(grads) == len(tensor_at) != len(outs):
                full = [None] * len(outs)
                for i, g in zip(tensor_at, grads):
                    full[i] = g
                grads = full
            return cls.backward(ctx, *grads)

        wired = _ag._function_node(f"{cls.__name__}Backward", list(args), outs, backward_bridge, list(ctx.to_save),
                                   list(ctx._non_differentiable), ctx)
        return wired[0] if single else tuple(wired)
