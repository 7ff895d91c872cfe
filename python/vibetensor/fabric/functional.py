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


def _make_exchange(name, forward_collective, backward_collective, out_rows):
    """A Function whose forward is one resizing collective (output rows = out_rows(input rows, n)) and whose
    backward is its dual, producing gradients of the input's shape."""

    def rows_of(xs):
        n = len(xs)
        rows = out_rows(xs[0].shape[0], n)
        if rows is None:
            raise ValueError(f"{name}: dim 0 ({xs[0].shape[0]}) must divide by {n} devices")
        return rows

    class Exchange(_function()):
        @staticmethod
        def forward(ctx, *xs):
            vt = _vt()
            ctx.shape = xs[0].shape
            shape = (rows_of(xs),) + tuple(xs[0].shape[1:])
            outs = [vt.empty(shape, dtype=x.dtype, device=x.device) for x in xs]
            forward_collective([x.contiguous() for x in xs], outs)
            return tuple(outs)

        @staticmethod
        def backward(ctx, *grads):
            vt = _vt()
            outs = [vt.empty(ctx.shape, dtype=g.dtype, device=g.device) for g in grads]
            backward_collective([g.contiguous() for g in grads], outs)
            return tuple(outs)

    Exchange.__name__ = name
    return Exchange


def _make_all_gather():
    return _make_exchange("AllGather", all_gather, reduce_scatter, lambda rows, n: rows * n)


def _make_reduce_scatter():
    return _make_exchange("ReduceScatter", reduce_scatter, all_gather, lambda rows, n: rows // n if rows % n == 0 else None)


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
