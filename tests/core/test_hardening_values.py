"""Regression tests of issue 12 ("hardening the core"), the silent-wrong-answer classes: in-place ops whose
source overlaps the destination, values that do not fit the dtype, out-of-range class indices, bool bytes that
are not 0/1, and where() with a 0-dim condition. Each case runs on vibetensor and torch: equal results, or both
raise the same kind of exception."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import assert_raises_like, assert_same, run_torch


def differential(fn):
    expected, exc = run_torch(lambda m: fn(m))
    if exc is not None:
        return assert_raises_like(exc, lambda: fn(vt))
    assert_same(fn(vt), expected)


# ---- item 3: overlap between what an in-place op reads and writes ----

def _setitem_t(m, x):
    x[:] = x.t()
    return x


OVERLAPS = {
    "add_ t": lambda m, x: x.add_(x.t()),
    "sub_ t": lambda m, x: x.sub_(x.t()),
    "mul_ t": lambda m, x: x.mul_(x.t()),
    "div_ t": lambda m, x: x.div_(x.t() + 1),
    "copy_ t": lambda m, x: x.copy_(x.t()),
    "setitem t": _setitem_t,
    "add_ shifted": lambda m, x: x.view(-1)[1:].add_(x.view(-1)[:-1]),
    "add_ row": lambda m, x: x.add_(x[0]),
    "add_ element": lambda m, x: x.add_(x[1, 1]),
    "copy_ row into column": lambda m, x: x[:, 0].copy_(x[0]),
    "maximum_ t": lambda m, x: x.copy_(m.maximum(x, x.t())),   # out of place: fine
    "add_ self": lambda m, x: x.add_(x),                       # full overlap: fine
    "add_ same view": lambda m, x: x.view(-1)[:3].add_(x[0]),  # the same elements: fine
    "add_ interleaved": lambda m, x: x[:, ::2].add_(x[:, 1::2][:, :1].expand(3, 2)),  # not decidable: let through
    "where_ t": lambda m, x: x.masked_fill_(x > 3, x[1, 1]),   # masked_fill_'s value is read first
    "index_put_ row": lambda m, x: x.__setitem__(m.tensor([0, 1]), x[1]),
    "pow_ t": lambda m, x: x.pow_(x.t()),
    "atan2_ t": lambda m, x: x.atan2_(x.t()),
    "clamp t": lambda m, x: x.clamp_(min=x.t()) if m is torch else x.clamp_(min=x.t()),
}


@pytest.mark.parametrize("case", sorted(OVERLAPS))
def test_overlapping_in_place_ops_match_torch(case):
    differential(lambda m: OVERLAPS[case](m, m.arange(9.0).reshape(3, 3)))


EXPANDED = {
    "add_": lambda m, x: x.add_(1), "exp_": lambda m, x: x.exp_(), "copy_": lambda m, x: x.copy_(m.ones(3, 3)),
    "clamp_": lambda m, x: x.clamp_(0, 1), "uniform_": lambda m, x: x.uniform_(), "fill_": lambda m, x: x.fill_(2),
    "zero_": lambda m, x: x.zero_(), "masked_fill_": lambda m, x: x.masked_fill_(m.ones(3, 3, dtype=m.bool), 1.0),
    "neg_": lambda m, x: x.neg_(),
}


@pytest.mark.parametrize("case", sorted(EXPANDED))
def test_writing_an_expanded_tensor_matches_torch(case):
    def run(m):
        x = m.zeros(3).expand(3, 3)
        EXPANDED[case](m, x)
        return x if case not in ("uniform_",) else x.shape

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        differential(run)


def test_fused_optimizer_refuses_a_grad_that_overlaps_its_param():
    p = vt.arange(4.0)
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        vt.ops.vt._fused_sgd_([p[1:]], [p[:-1]], [vt.zeros(3)], lr=0.1)


# ---- item 6: values that do not fit the dtype ----

def _setitem(dtype, value, index=0):
    def run(m):
        x = m.zeros(3, dtype=getattr(m, dtype))
        x[index] = value
        return x
    return run


FITS = {
    "tensor 2**63": lambda m: m.tensor([2**63]),
    "tensor -2**63-1": lambda m: m.tensor([-2**63 - 1]),
    "tensor 2**64": lambda m: m.tensor([2**64]),
    "tensor uint8 [-1, 300]": lambda m: m.tensor([-1, 300], dtype=m.uint8),
    "tensor uint8 [-1]": lambda m: m.tensor([-1], dtype=m.uint8),
    "tensor int8 200": lambda m: m.tensor([200], dtype=m.int8),
    "tensor int8 1000.5": lambda m: m.tensor([1000.5], dtype=m.int8),
    "tensor int64 nan": lambda m: m.tensor([float("nan")], dtype=m.int64),
    "tensor int64 1e30": lambda m: m.tensor([1e30], dtype=m.int64),
    "tensor float16 1e5": lambda m: m.tensor([1e5], dtype=m.float16),
    "tensor bool 2": lambda m: m.tensor([2], dtype=m.bool),
    "tensor int16 mixed": lambda m: m.tensor([[1, 2], [40000, 3]], dtype=m.int16),
    "tensor np int64 to uint8": lambda m: m.tensor(np.array([300]), dtype=m.uint8),   # arrays wrap, as torch
    "setitem int8 1000": _setitem("int8", 1000),
    "setitem int8 -129": _setitem("int8", -129),
    "setitem int64 nan": _setitem("int64", float("nan")),
    "setitem int32 inf": _setitem("int32", float("inf")),
    "setitem int64 2**63": _setitem("int64", 2**63),
    "setitem uint8 -1": _setitem("uint8", -1),
    "setitem int8 adv": _setitem("int8", 1000, index=[0, 1]),
    "full int8 1000": lambda m: m.full((2,), 1000, dtype=m.int8),
    "fill_ int8 1000": lambda m: m.zeros(2, dtype=m.int8).fill_(1000),
}


@pytest.mark.parametrize("case", sorted(FITS))
def test_values_that_do_not_fit_match_torch(case):
    differential(FITS[case])


def test_numpy_uint64_beyond_int64_is_refused():
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        vt.tensor([np.uint64(2**64 - 1)])
    with pytest.raises((TypeError, ValueError)):
        vt.tensor(np.array([2**64 - 1], dtype=np.uint64))
    assert vt.tensor(np.array([5], dtype=np.uint64)).tolist() == [5]


RANDINT = [("int8", 0, 1000), ("int8", -200, 10), ("int8", -128, 128), ("uint8", 0, 256), ("uint8", 0, 257),
           ("uint8", -1, 3), ("bool", 0, 2), ("bool", 0, 3), ("float16", 0, 100000), ("float16", 0, 2049),
           ("int16", 0, 40000), ("int32", 0, 2**31), ("int32", 0, 2**31 + 1), ("float32", 0, 2**25),
           ("int64", -2**63, 2**63 - 1)]


@pytest.mark.parametrize("dtype, low, high", RANDINT)
def test_randint_range_checks_match_torch(dtype, low, high):
    import warnings

    def run(m):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = m.randint(low, high, (2000,), dtype=getattr(m, dtype))
        v = x.double() if dtype != "bool" else x.long()
        return bool((v >= low).all()) and bool((v <= high - 1).all()) and bool(v.isfinite().all())

    differential(run)


# ---- item 7: out-of-range class indices ----

CLASS_INDICES = {
    "cross_entropy -2": lambda m: m.nn.functional.cross_entropy(m.ones(2, 3), m.tensor([0, -2])),
    "cross_entropy 3": lambda m: m.nn.functional.cross_entropy(m.ones(2, 3), m.tensor([0, 3])),
    "cross_entropy ignore -100": lambda m: m.nn.functional.cross_entropy(m.ones(2, 3), m.tensor([0, -100])),
    "cross_entropy ignore -2": lambda m: m.nn.functional.cross_entropy(m.ones(2, 3), m.tensor([1, -2]),
                                                                       ignore_index=-2),
    "cross_entropy 2-d -1": lambda m: m.nn.functional.cross_entropy(m.ones(2, 3, 4), m.zeros(2, 4).long() - 1),
    "embedding -1": lambda m: m.nn.functional.embedding(m.tensor([-1]), m.ones(4, 2)),
    "embedding 4": lambda m: m.nn.functional.embedding(m.tensor([4]), m.ones(4, 2)),
    "embedding ok": lambda m: m.nn.functional.embedding(m.tensor([[3, 0]]), m.arange(8.0).reshape(4, 2)),
}


@pytest.mark.parametrize("case", sorted(CLASS_INDICES))
def test_out_of_range_class_indices_match_torch(case):
    differential(CLASS_INDICES[case])


@pytest.mark.cuda
@pytest.mark.parametrize("case", ["cross_entropy -2", "embedding -1", "cross_entropy 3", "embedding 4"])
def test_out_of_range_class_indices_raise_on_cuda(case):
    fn = CLASS_INDICES[case]

    class OnCuda:  # the same call with every factory placing its tensor on the GPU
        def __getattr__(self, name):
            if name in ("ones", "tensor", "zeros", "arange"):
                return lambda *a, **k: getattr(vt, name)(*a, **k).cuda()
            return getattr(vt, name)

    with pytest.raises(IndexError):
        r = fn(OnCuda())
        vt.cuda.synchronize()
        r.cpu()


# ---- item 11: bool bytes that are not 0/1 ----

def test_numpy_bool_views_of_other_bytes_are_normalised():
    raw = np.array([2, 0, 255, 1], dtype=np.uint8)
    b = raw.view(np.bool_)
    for make in (vt.from_numpy, vt.tensor, lambda a: vt.from_dlpack(a)):
        t = make(b)
        assert t.sum().item() == 3
        assert t.long().tolist() == [1, 0, 1, 1]
        assert t.to(vt.uint8).tolist() == [1, 0, 1, 1]
        assert (t == vt.tensor([True, False, True, True])).all().item()
    strided = np.array([2, 7, 0, 7, 255, 7], dtype=np.uint8)
    t = vt.from_numpy(strided.view(np.bool_)[::2])
    assert t.long().tolist() == [1, 0, 1]
    assert strided[1::2].tolist() == [7, 7, 7]  # bytes between the view's elements are left alone
    ro = np.array([3, 0], dtype=np.uint8).view(np.bool_)
    ro.flags.writeable = False
    assert vt.from_numpy(ro).long().tolist() == [1, 0]


# ---- item 12: where / nonzero(as_tuple=True) on a 0-dim condition ----

@pytest.mark.parametrize("value", [True, False, 3, 0])
def test_where_and_nonzero_as_tuple_of_a_0_dim_condition(value):
    differential(lambda m: m.where(m.tensor(value)))
    differential(lambda m: m.tensor(value).nonzero(as_tuple=True))
    differential(lambda m: m.nonzero(m.tensor([[value, 1]]), as_tuple=True))
