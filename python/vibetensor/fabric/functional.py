"""Differentiable collectives over lists of per-device tensors (multi-device autograd).

    ys = all_reduce_autograd(xs)          # out of place; backward: the gradients are all-reduced (sum)
    ys = all_gather_autograd(xs)          # backward: reduce_scatter of the output gradients
    ys = reduce_scatter_autograd(xs)      # backward: all_gather of the output gradients

Each is a vibetensor.autograd.Function whose forward and backward call the collectives, so gradients cross
devices through the same stream-ordered paths as the forward (event fences only, no host sync).
"""
from __future__ import annotations

from .collectives import all_gather, all_reduce, reduce_scatter


def _vt():
    import vibetensor.torch as vt

    return vt


def _function():
    from ..autograd import Function

    return Function


def _make_all_reduce():
    class AllReduce(_function()):
        @staticmethod
        def forward(ctx, *xs):
            vt = _vt()
            outs = [vt.empty_like(x) for x in xs]
            all_reduce([x.contiguous() for x in xs], out=outs)
            return tuple(outs)

        @staticmethod
        def backward(ctx, *grads):
            vt = _vt()
            gs = [g.contiguous() for g in grads]
            outs = [vt.empty_like(g) for g in gs]
            all_reduce(gs, out=outs)
            return tuple(outs)

    return AllReduce


def _make_all_gather():
    class AllGather(_function()):
        @staticmethod
        def forward(ctx, *xs):
            vt = _vt()
            n = len(xs)
            ctx.shape = xs[0].shape
            outs = [vt.empty((n * xs[0].shape[0],) + tuple(xs[0].shape[1:]), dtype=x.dtype, device=x.device) for x in xs]
            all_gather([x.contiguous() for x in xs], outs)
            return tuple(outs)

        @staticmethod
        def backward(ctx, *grads):
            vt = _vt()
            outs = [vt.empty(ctx.shape, dtype=g.dtype, device=g.device) for g in grads]
            reduce_scatter([g.contiguous() for g in grads], outs)
            return tuple(outs)

    return AllGather


def _make_reduce_scatter():
    class ReduceScatter(_function()):
        @staticmethod
        def forward(ctx, *xs):
            vt = _vt()
            n = len(xs)
            ctx.shape = xs[0].shape
            if xs[0].shape[0] % n:
                raise ValueError(f"reduce_scatter_autograd: dim 0 ({xs[0].shape[0]}) must divide by {n} devices")
            outs = [vt.empty((xs[0].shape[0] // n,) + tuple(xs[0].shape[1:]), dtype=x.dtype, device=x.device) for x in xs]
            reduce_scatter([x.contiguous() for x in xs], outs)
            return tuple(outs)

        @staticmethod
        def backward(ctx, *grads):
            vt = _vt()
            outs = [vt.empty(ctx.shape, dtype=g.dtype, device=g.device) for g in grads]
            all_gather([g.contiguous() for g in grads], outs)
            return tuple(outs)

    return ReduceScatter


_cache = {}


def _get(name, make):
    if name not in _cache:
        _cache[name] = make()
    return _cache[name]


def all_reduce_autograd(xs):
    return list(_get("ar", _make_all_reduce).apply(*xs))


def all_gather_autograd(xs):
    return list(_get("ag", _make_all_gather).apply(*xs))


def reduce_scatter_autograd(xs):
    return list(_get("rs", _make_reduce_scatter).apply(*xs))
