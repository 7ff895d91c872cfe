"""Differential tests against torch of _shape_stat_functions.py (tensor_split, the stacks, count_nonzero, diff,
isin, as_tensor, the predicates, clip, empty_strided, scalar_tensor, rot90, argwhere, take_along_dim, block_diag,
cartesian_prod, combinations, kthvalue, median/nanmedian, mode, quantile/nanquantile, nansum/nanmean,
cummax/cummin, logcumsumexp): values on random inputs (non-contiguous views, empty inputs, NaNs, every option),
float64 gradients, out=, and the error cases (the same exception type as torch)."""
import math
import os
import sys

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch import _shape_stat_functions as M

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from ag_helpers import check_grads, leaves  # noqa: E402

RNG = np.random.default_rng(0)


class _NS:
    """vt with this module's functions in front, so one lambda runs on torch and on vibetensor."""

    def __getattr__(self, name):
        return getattr(M, name) if hasattr(M, name) and not name.startswith("_") else getattr(vt, name)


V = _NS()


def pair(a):
    a = np.asarray(a)
    return vt.from_numpy(a.copy()), torch.from_numpy(a.copy())


def rnd(*shape, dtype="float32", nan=False, ints=False):
    a = RNG.integers(-3, 4, shape) if ints else RNG.standard_normal(shape).astype(dtype)
    if nan and a.size:
        a.reshape(-1)[RNG.choice(a.size, builtins_max(1, a.size // 4), replace=False)] = np.nan
    return pair(a)


def builtins_max(a, b):
    return a if a > b else b


def nc(x):
    """A non-contiguous view with x's values (transposed copy, transposed back)."""
    return x.transpose(0, 1).contiguous().transpose(0, 1) if x.dim() >= 2 else x


def same(rv, rt, name=""):
    if isinstance(rt, (tuple, list)):
        assert isinstance(rv, (tuple, list)) and len(rv) == len(rt), name
        for a, b in zip(rv, rt):
            same(a, b, name)
        return
    if isinstance(rt, torch.Tensor):
        assert str(rv.dtype).rsplit(".")[-1] == str(rt.dtype).rsplit(".")[-1], f"{name}: {rv.dtype} vs {rt.dtype}"
        assert tuple(rv.shape) == tuple(rt.shape), f"{name}: {tuple(rv.shape)} vs {tuple(rt.shape)}"
        np.testing.assert_allclose(rv.detach().numpy(), rt.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    else:
        assert rv == rt, name


def run(fn, *pairs):
    rt = fn(torch, *[p[1] for p in pairs])
    rv = fn(V, *[p[0] for p in pairs])
    same(rv, rt)
    return rv, rt


def raises_like(fn):
    with pytest.raises(Exception) as et:
        fn(torch)
    with pytest.raises(type(et.value)):
        fn(V)


# ---- splitting and stacking ----
@pytest.mark.parametrize("arg,dim", [(3, 1), (2, 0), (7, 1), (1, -1), ([1, 3], 1), ([-1, 2, 9], 1), ([3, 1], 0),
                                     ([], 0), ((0, 0, 5), 1)])
def test_tensor_split(arg, dim):
    x = rnd(4, 5)
    for xs in (x, (nc(x[0]), nc(x[1]))):
        run(lambda m, t: m.tensor_split(t, arg, dim), xs)
        run(lambda m, t: t.tensor_split(arg, dim), xs)
    run(lambda m, t: m.tensor_split(t, m.tensor(arg, dtype=m.int64) if isinstance(arg, list) and arg else
                                    m.tensor(arg) if isinstance(arg, int) else arg, dim), x)
    run(lambda m, t: m.tensor_split(t, 3, 0), rnd(0, 2))


def test_tensor_split_views_and_errors():
    v = vt.arange(6.0)
    p = M.tensor_split(v, 2)
    p[0].add_(10)  # views, as torch's
    assert v[0].item() == 10
    raises_like(lambda m: m.tensor_split(m.tensor(1.0), 2))
    raises_like(lambda m: m.tensor_split(m.ones(3), 0))
    raises_like(lambda m: m.tensor_split(m.ones(3), m.tensor([1.0])))
    raises_like(lambda m: m.tensor_split(m.ones(3), m.ones(1, 1, dtype=m.int64)))
    raises_like(lambda m: m.tensor_split(m.ones(3), 2, 1))


@pytest.mark.parametrize("shapes", [[()], [(3,), (2,)], [(3,), ()], [(2, 3), (2, 1)], [(2, 3, 4), (2, 1, 4)],
                                    [(0,), (3,)]])
@pytest.mark.parametrize("name", ["hstack", "vstack", "row_stack", "dstack", "column_stack"])
def test_stacks(name, shapes):
    ts = [rnd(*s) for s in shapes]
    try:
        rt = getattr(torch, name)([t[1] for t in ts])
    except RuntimeError:
        with pytest.raises(RuntimeError):
            getattr(M, name)([t[0] for t in ts])
        return
    same(getattr(M, name)([nc(t[0]) for t in ts]), rt, name)


def test_stacks_grads_out_and_errors():
    check_grads(lambda m, a, b: m.hstack([a, b]) if m is torch else M.hstack([a, b]), leaves([(2, 3), (2, 2)]))
    check_grads(lambda m, a, b: (m if m is torch else M).dstack([a, b]), leaves([(2, 3), (2, 3)], noncontig=True))
    check_grads(lambda m, a, b: (m if m is torch else M).column_stack([a, b]), leaves([(3,), (3, 2)]))
    for name in ("hstack", "vstack", "dstack", "column_stack", "row_stack"):
        raises_like(lambda m: getattr(m, name)([]))
        o = vt.empty(0)
        r = getattr(M, name)([vt.ones(2, 2)], out=o)
        assert r is o and tuple(o.shape) == tuple(getattr(torch, name)([torch.ones(2, 2)]).shape)
    raises_like(lambda m: m.vstack([m.ones(2, 3), m.ones(2, 2)]))


# ---- counting and differences ----
@pytest.mark.parametrize("dim", [None, 0, 1, -1, (0, 1), (1,)])
def test_count_nonzero(dim):
    a = rnd(4, 5, ints=True)
    run(lambda m, t: m.count_nonzero(t, dim), a)
    run(lambda m, t: t.count_nonzero(dim), (nc(a[0]), a[1]))
    run(lambda m, t: m.count_nonzero(t > 0, dim), rnd(0, 5))
    if dim is None:
        run(lambda m, t: m.count_nonzero(t), pair(np.array(0.0)))
        run(lambda m, t: m.count_nonzero(t), pair(np.array([True, False, True])))


@pytest.mark.parametrize("n", [0, 1, 2, 5])
@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("pre_app", [(False, False), (True, False), (False, True), (True, True)])
def test_diff(n, dim, pre_app):
    x = rnd(4, 5)
    p = rnd(4, 5)
    pv, pt = (p[0].narrow(dim, 0, 2), p[1].narrow(dim, 0, 2))
    run(lambda m, t: m.diff(t, n, dim, prepend=(pv if m is V else pt) if pre_app[0] else None,
                            append=(pv if m is V else pt) if pre_app[1] else None), (nc(x[0]), x[1]))
    run(lambda m, t: t.diff(n, dim, append=t.narrow(dim, 0, 1) if pre_app[1] else None), rnd(3, 2, ints=True))
    run(lambda m, t: m.diff(t, n, dim), pair(RNG.standard_normal((3, 4)) > 0))
    run(lambda m, t: m.diff(t, n, dim), rnd(0, 3))


def test_diff_grads_and_errors():
    check_grads(lambda m, x, p: (m if m is torch else M).diff(x, 2, 0, prepend=p), leaves([(4, 3), (1, 3)]))
    check_grads(lambda m, x: (m if m is torch else M).diff(x, 1, -1), leaves([(3, 5)], noncontig=True))
    raises_like(lambda m: m.diff(m.tensor(1.0)))
    raises_like(lambda m: m.diff(m.ones(3), -1))
    raises_like(lambda m: m.diff(m.ones(3, 2), prepend=m.ones(2)))
    raises_like(lambda m: m.diff(m.ones(3), append=2.0))
    o = vt.empty(0)
    assert M.diff(vt.tensor([1.0, 4.0, 9.0]), out=o) is o and o.tolist() == [3.0, 5.0]


@pytest.mark.parametrize("invert", [False, True])
def test_isin(invert):
    e, t = rnd(4, 5, ints=True), rnd(3, ints=True)
    run(lambda m, a, b: m.isin(a, b, invert=invert), (nc(e[0]), e[1]), t)
    run(lambda m, a, b: m.isin(a, b, assume_unique=True, invert=invert), rnd(6, ints=True), pair(np.array([0, 2])))
    run(lambda m, a: m.isin(a, 2, invert=invert), e)
    run(lambda m, b: m.isin(1, b, invert=invert), t)
    run(lambda m, a, b: m.isin(a, b, invert=invert), e, pair(np.zeros(0, dtype=np.int64)))
    run(lambda m, a, b: m.isin(a, b, invert=invert), rnd(0, 2, ints=True), t)
    # mixed dtypes promote; NaN is in nothing
    run(lambda m, a, b: m.isin(a, b, invert=invert), pair(np.array([1.0, np.nan, 2.5])), pair(np.array([1, np.nan])))
    o = vt.empty(0, dtype=vt.bool)
    assert M.isin(vt.tensor([1, 2]), vt.tensor([2]), out=o) is o and o.tolist() == [False, True]


# ---- construction and predicates ----
def test_as_tensor():
    v = vt.ones(3)
    assert M.as_tensor(v) is v and M.as_tensor(v, dtype=vt.float32, device="cpu") is v
    d = M.as_tensor(v, dtype=vt.float64)
    assert d.dtype == vt.float64 and d is not v
    a = np.arange(4.0)
    s = M.as_tensor(a)
    a[0] = 7.0  # shares the array's memory, as torch.as_tensor
    assert s[0].item() == 7.0 and torch.as_tensor(a)[0].item() == 7.0
    for data, kw in [([1, 2], {}), ([1.5, 2], {}), ([[1, 2]], dict(dtype=vt.float64)), (3, {}), (np.ones(2), dict(
            dtype=vt.float32)), ([True], {})]:
        tkw = {k: getattr(torch, str(w).rsplit(".")[-1]) for k, w in kw.items()}
        same(M.as_tensor(data, **kw), torch.as_tensor(data, **tkw))


def test_predicates_and_factories():
    for x in (vt.ones(2), vt.ones(2, dtype=vt.int64), vt.ones(2, dtype=vt.bool), vt.ones(2, dtype=vt.float64)):
        t = torch.from_numpy(x.numpy())
        assert M.is_floating_point(x) == torch.is_floating_point(t)
        assert M.is_complex(x) is False and x.is_complex() is False
    for val in (0.0, 1.5, 0, 3, True, False):
        assert M.is_nonzero(vt.tensor([val])) == torch.is_nonzero(torch.tensor([val]))
        assert vt.tensor(val).is_nonzero() == torch.tensor(val).is_nonzero()
    raises_like(lambda m: m.is_nonzero(m.ones(2)))
    raises_like(lambda m: m.is_nonzero(m.ones(0)))
    same(M.scalar_tensor(3), torch.scalar_tensor(3))
    same(M.scalar_tensor(2, dtype=vt.int64), torch.scalar_tensor(2, dtype=torch.int64))
    assert M.scalar_tensor(1.0, requires_grad=True).requires_grad
    for size, stride in [((2, 3), (1, 2)), ((2, 3), (3, 1)), ((0, 3), (3, 1)), ((), ()), ((4,), (2,))]:
        e, te = M.empty_strided(size, stride), torch.empty_strided(size, stride)
        assert tuple(e.shape) == tuple(te.shape) and tuple(e.stride()) == tuple(te.stride()) and e.dtype == vt.float32
    assert M.empty_strided((2,), (1,), dtype=vt.int64).dtype == vt.int64
    raises_like(lambda m: m.empty_strided((2, 3), (1,)))


def test_clip():
    x = rnd(4, 5)
    run(lambda m, t: m.clip(t, -0.5, 0.5), (nc(x[0]), x[1]))
    run(lambda m, t: m.clip(t, min=0.1), x)
    run(lambda m, t: t.clip(max=0.1), x)
    lo = rnd(5)
    run(lambda m, t, b: m.clip(t, b), x, lo)
    run(lambda m, t, b: m.clip(t, max=b), x, lo)
    c = x[0].clone()
    assert c.clip_(0, 0.2) is c and float(c.max()) <= np.float32(0.2)
    check_grads(lambda m, a, b: (m if m is torch else M).clip(a, b, None), leaves([(3, 4), (4,)]))
    raises_like(lambda m: m.clip(m.ones(2)))


# ---- rotation and indexing ----
@pytest.mark.parametrize("k", [-3, -1, 0, 1, 2, 3, 4, 6])
@pytest.mark.parametrize("dims", [(0, 1), (1, 0), (-1, 0), (0, 2)])
def test_rot90(k, dims):
    x = rnd(3, 4, 2)
    run(lambda m, t: m.rot90(t, k, dims), (nc(x[0]), x[1]))
    run(lambda m, t: t.rot90(k, dims), x)


def test_rot90_grads_and_errors():
    check_grads(lambda m, x: (m if m is torch else M).rot90(x, 1, [0, 1]) * 2, leaves([(3, 4)]))
    check_grads(lambda m, x: (m if m is torch else M).rot90(x, 3, [1, 0]), leaves([(3, 4)], noncontig=True))
    raises_like(lambda m: m.rot90(m.ones(3, 3), 1, [0]))
    raises_like(lambda m: m.rot90(m.ones(3), 1, [0, 1]))
    raises_like(lambda m: m.rot90(m.ones(3, 3), 1, [1, 1]))
    with pytest.raises(IndexError, match="Dimension out of range"):  # as torch 2.13 (2.11 raised RuntimeError)
        M.rot90(vt.ones(3, 3), 1, [0, 2])
    same(M.rot90(vt.ones(3, 3)), torch.rot90(torch.ones(3, 3)))


def test_argwhere():
    x = rnd(4, 5, ints=True)
    run(lambda m, t: m.argwhere(t), (nc(x[0]), x[1]))
    run(lambda m, t: t.argwhere(), x)
    run(lambda m, t: m.argwhere(t), pair(np.array(2.0)))
    run(lambda m, t: m.argwhere(t), pair(np.zeros((0, 3))))


@pytest.mark.parametrize("dim", [0, 1, -1, None])
def test_take_along_dim(dim):
    x = rnd(4, 5)
    if dim is None:
        idx = pair(np.array([[3, 0], [19, 7]]))
    else:
        idx = pair(RNG.integers(0, x[0].shape[dim], (4, 5) if dim == 0 else (4, 2)))
    run(lambda m, t, i: m.take_along_dim(t, i, dim), (nc(x[0]), x[1]), idx)
    run(lambda m, t, i: t.take_along_dim(i, dim), x, idx)
    if dim is not None:  # the other dims broadcast
        run(lambda m, t, i: m.take_along_dim(t, i, dim), rnd(1, 5) if dim == 0 else rnd(4, 1),
            pair(np.zeros((3, 1) if dim == 0 else (1, 3), dtype=np.int64)))


def test_take_along_dim_grads_and_errors():
    i = np.array([[0, 0, 2], [1, 1, 1]])
    check_grads(lambda m, x: (m if m is torch else M).take_along_dim(x, m.tensor(i), 1), leaves([(2, 4)]))
    check_grads(lambda m, x: (m if m is torch else M).take_along_dim(x, m.tensor(i)), leaves([(2, 4)]))
    raises_like(lambda m: m.take_along_dim(m.ones(2, 3), m.zeros(2, 3), 1))
    raises_like(lambda m: m.take_along_dim(m.ones(2, 3), m.zeros(2, dtype=m.int64), 1))
    o = vt.empty(0)
    assert M.take_along_dim(vt.arange(3.0), vt.tensor([2]), 0, out=o) is o and o.tolist() == [2.0]


def test_block_diag():
    a, b, c = rnd(2, 3), rnd(3), rnd()
    run(lambda m, x, y, z: m.block_diag(x, y, z), (nc(a[0]), a[1]), b, c)
    run(lambda m, x, y: m.block_diag(x, y), rnd(0, 2), rnd(2, 0))
    run(lambda m, x, y: m.block_diag(x, y), rnd(2, 2, ints=True), a)  # int64 and float32 promote
    run(lambda m, x: m.block_diag(x), rnd(1, 1, ints=True))
    same(M.block_diag(), torch.block_diag())
    check_grads(lambda m, x, y: (m if m is torch else M).block_diag(x, y), leaves([(2, 3), (2,)]))
    raises_like(lambda m: m.block_diag(m.ones(2, 2, 2)))


def test_cartesian_prod_and_combinations():
    a, b, c = rnd(3, ints=True), rnd(2, ints=True), rnd(0, ints=True)
    run(lambda m, x, y: m.cartesian_prod(x, y), a, b)
    run(lambda m, x: m.cartesian_prod(x), a)
    run(lambda m, x, y, z: m.cartesian_prod(x, y, z), a, b, c)
    check_grads(lambda m, x, y: (m if m is torch else M).cartesian_prod(x, y), leaves([(3,), (2,)]))
    raises_like(lambda m: m.cartesian_prod(m.ones(2, 2)))
    x = rnd(4)
    for r in range(0, 6):
        for rep in (False, True):
            run(lambda m, t: m.combinations(t, r, rep), x)
    run(lambda m, t: m.combinations(t), rnd(0))
    check_grads(lambda m, x: (m if m is torch else M).combinations(x, 2), leaves([(4,)]))
    raises_like(lambda m: m.combinations(m.ones(2, 2)))
    raises_like(lambda m: m.combinations(m.ones(3), -1))


# ---- order statistics ----
def valid_indices(x, dim, values, indices, keepdim):
    """indices point at elements equal to values (NaN at NaN): ties may pick any of them."""
    idx = indices if keepdim else indices.unsqueeze(dim)
    got = x.gather(dim, idx)
    val = values if keepdim else values.unsqueeze(dim)
    assert bool(((got == val) | (got.isnan() & val.isnan())).all())


@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
def test_kthvalue(dim, keepdim):
    x = rnd(4, 5, nan=True)
    for k in (1, 2, 4):
        rv, rt = (M.kthvalue(nc(x[0]), k, dim, keepdim), torch.kthvalue(x[1], k, dim, keepdim))
        same(rv.values, rt.values)
        valid_indices(x[0], dim, rv.values, rv.indices, keepdim)
        assert type(rv).__name__ == "kthvalue" and rv.indices.dtype == vt.int64
    ti = rnd(4, 5, ints=True)  # ties
    rv, rt = ti[0].kthvalue(3, dim, keepdim), ti[1].kthvalue(3, dim, keepdim)
    same(rv.values, rt.values)
    valid_indices(ti[0], dim, rv.values, rv.indices, keepdim)
    same(tuple(M.kthvalue(vt.tensor(2.5), 1)), tuple(torch.kthvalue(torch.tensor(2.5), 1)))


def test_kthvalue_grads_out_and_errors():
    check_grads(lambda m, x: (m if m is torch else M).kthvalue(x, 2, 1)[0], leaves([(3, 5)], noncontig=True))
    raises_like(lambda m: m.kthvalue(m.ones(3), 4))
    raises_like(lambda m: m.kthvalue(m.ones(3), 0))
    raises_like(lambda m: m.kthvalue(m.ones(3, 0), 1, 1))
    o = (vt.empty(0), vt.empty(0, dtype=vt.int64))
    r = M.kthvalue(vt.tensor([3.0, 1.0, 2.0]), 2, out=o)
    assert r.values is o[0] and o[0].item() == 2.0 and o[1].item() == 2


@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_median(name):
    for nan in (False, True):
        x = rnd(5, 6, nan=nan)
        xv = nc(x[0])
        same(getattr(M, name)(xv), getattr(torch, name)(x[1]), name)
        for dim in (0, 1, -1):
            for keepdim in (False, True):
                rv, rt = getattr(M, name)(xv, dim, keepdim), getattr(torch, name)(x[1], dim, keepdim)
                assert type(rv).__name__ == name
                same(rv.values, rt.values, name)
                valid_indices(xv, dim, rv.values, rv.indices, keepdim)
                rv2 = getattr(xv, name)(dim, keepdim)
                same(rv2.values, rt.values, name)
    allnan = pair(np.full((2, 3), np.nan))
    for dim in (None, 1):
        r = getattr(M, name)(allnan[0], *(() if dim is None else (dim,)))
        same(r if dim is None else r.values, getattr(torch, name)(allnan[1], *(() if dim is None else (dim,)))
             if dim is None else getattr(torch, name)(allnan[1], dim).values)
    ints = rnd(4, 6, ints=True)
    same(getattr(M, name)(ints[0]), getattr(torch, name)(ints[1]))
    same(getattr(M, name)(ints[0], 1).values, getattr(torch, name)(ints[1], 1).values)
    same(getattr(M, name)(vt.empty(0)), getattr(torch, name)(torch.empty(0)))
    same(tuple(getattr(M, name)(vt.tensor(1.5), 0)), tuple(getattr(torch, name)(torch.tensor(1.5), 0)))
    raises_like(lambda m: getattr(m, name)(m.ones(2, 0), 1))
    check_grads(lambda m, x: getattr(m if m is torch else M, name)(x, 1)[0], leaves([(3, 5)]))
    check_grads(lambda m, x: getattr(m if m is torch else M, name)(x), leaves([(3, 5)]))


@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_full_median_ties_share_the_gradient_as_torch(name):
    """median() / nanmedian() without dim: every element equal to the result (every NaN when it is NaN) gets an
    equal share of the gradient (torch's evenly_distribute_backward); second order through it too."""
    rows = [[1.0, 3.0, 3.0, 2.0, 2.0, 1.0], [2.0, 2.0, 2.0, 5.0, 0.0, 7.0], [1.0, math.nan, math.nan, 4.0, 4.0, 0.0],
            [math.nan] * 6]
    for row in rows:
        for shape in ((6,), (2, 3), (3, 2)):
            a = np.array(row).reshape(shape)
            (va, ta) = (vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_())
            vv, tv = getattr(M, name)(va.t() if len(shape) > 1 else va), getattr(torch, name)(
                ta.t() if len(shape) > 1 else ta)
            same(vv.detach(), tv.detach(), name)
            (vg,), (tg,) = vt.autograd.grad(vv * 3, va, create_graph=True), torch.autograd.grad(tv * 3, ta,
                                                                                                  create_graph=True)
            np.testing.assert_array_equal(vg.detach().numpy(), tg.detach().numpy())
    ints = vt.tensor([[3, 1], [2, 2]])
    assert M.median(ints).item() == torch.tensor([[3, 1], [2, 2]]).median().item() and M.median(ints).dtype == vt.int64
    o = (vt.empty(0), vt.empty(0, dtype=vt.int64))
    assert getattr(M, name)(vt.tensor([[3.0, 1.0, 2.0]]), 1, out=o).values is o[0] and o[0].tolist() == [2.0]


@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
def test_mode(dim, keepdim):
    x = rnd(6, 7, ints=True)
    rv, rt = M.mode(nc(x[0]), dim, keepdim), torch.mode(x[1], dim, keepdim)
    assert type(rv).__name__ == "mode"
    same(rv.values, rt.values)
    valid_indices(x[0], dim, rv.values, rv.indices, keepdim)
    f = pair(np.round(RNG.standard_normal((4, 6)), 0))
    rv, rt = f[0].mode(dim, keepdim), f[1].mode(dim, keepdim)
    same(rv.values, rt.values)
    valid_indices(f[0], dim, rv.values, rv.indices, keepdim)
    same(tuple(M.mode(vt.tensor(2.0))), tuple(torch.mode(torch.tensor(2.0))))
    # NaNs: the rows where torch's answer does not depend on its sort's handling of NaN
    n = math.nan
    for row in ([n, n, 1.0], [n, n, 1.0, 1.0, 1.0], [1.0, n, 2.0, 2.0], [1.0, n, 2.0], [3.0, 2.0, n], [n, n, 1.0, 1.0]):
        rv, rt = M.mode(vt.tensor(row)), torch.mode(torch.tensor(row))
        same(rv.values, rt.values, str(row))
        valid_indices(vt.tensor(row), 0, rv.values, rv.indices, False)
    rv = M.mode(vt.tensor([[n, 1.0, n], [n, n, n]]), 1)  # an all-NaN row
    assert rv.values.isnan().all().item() and rv.indices.tolist() == [2, 2]


def test_mode_grads_and_errors():
    # distinct values: the mode is the smallest one
    check_grads(lambda m, x: (m if m is torch else M).mode(x, 1)[0], leaves([(3, 4)]))
    raises_like(lambda m: m.mode(m.ones(2, 0), 1))
    o = (vt.empty(0), vt.empty(0, dtype=vt.int64))
    assert M.mode(vt.tensor([1.0, 2.0, 2.0]), out=o).values is o[0] and o[0].item() == 2.0


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile(name, interpolation):
    for nan in (False, True):
        x = rnd(5, 6, dtype="float64", nan=nan)
        xv = nc(x[0])
        for q in (0.0, 0.25, 0.5, 0.9, 1.0, pair(np.array([0.1, 0.5, 1.0])), pair(np.array(0.3))):
            qv, qt = (q, q) if isinstance(q, float) else q
            for dim in (None, 0, -1):
                for keepdim in (False, True):
                    rv = getattr(M, name)(xv, qv, dim, keepdim, interpolation=interpolation)
                    rt = getattr(torch, name)(x[1], qt, dim, keepdim, interpolation=interpolation)
                    same(rv, rt, f"{name} {q} {dim} {keepdim}")
        same(getattr(xv, name)(0.5, 1), getattr(x[1], name)(0.5, 1))
    f32 = rnd(7, dtype="float32")
    same(getattr(M, name)(f32[0], 0.3, interpolation=interpolation),
         getattr(torch, name)(f32[1], 0.3, interpolation=interpolation))
    same(getattr(M, name)(vt.tensor(2.0), 0.5, 0), getattr(torch, name)(torch.tensor(2.0), 0.5, 0))
    for dt in ("float32", "float64"):  # ranks that land on or next to an integer
        y = pair(np.arange(11.0, dtype=dt))
        for qq in (0.1, 0.3, 0.7, 0.9):
            same(getattr(M, name)(y[0], qq, interpolation=interpolation),
                 getattr(torch, name)(y[1], qq, interpolation=interpolation), f"{dt} {qq}")
    allnan = pair(np.full((2, 3), np.nan))
    same(getattr(M, name)(allnan[0], 0.5, 1), getattr(torch, name)(allnan[1], 0.5, 1))
    check_grads(lambda m, x: getattr(m if m is torch else M, name)(x, m.tensor([0.2, 0.75], dtype=m.float64), 1,
                                                                 interpolation=interpolation), leaves([(3, 5)]))


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile_errors_and_out(name):
    def q(m, *a, **k):
        return getattr(m, name)(*a, **k)
    raises_like(lambda m: q(m, m.ones(3, dtype=m.int64), 0.5))
    raises_like(lambda m: q(m, m.ones(3, dtype=m.float16), 0.5))
    raises_like(lambda m: q(m, m.ones(3), 1.5))
    raises_like(lambda m: q(m, m.ones(3), -0.1))
    raises_like(lambda m: q(m, m.ones(3), m.tensor([0.5, 2.0])))
    raises_like(lambda m: q(m, m.ones(3), m.tensor([0.5], dtype=m.float64)))
    raises_like(lambda m: q(m, m.ones(3), m.ones(2, 2) / 2))
    raises_like(lambda m: q(m, m.ones(0), 0.5))
    raises_like(lambda m: q(m, m.ones(3), 0.5, interpolation="cubic"))
    o = vt.empty(0)
    assert q(V, vt.tensor([1.0, 2.0, 4.0]), 0.5, out=o) is o and o.item() == 2.0


@pytest.mark.parametrize("name", ["nansum", "nanmean"])
def test_nan_reductions(name):
    x = rnd(4, 5, nan=True, dtype="float64")
    xv = nc(x[0])
    for dim in (None, 0, 1, (0, 1), (-1,)):
        for keepdim in (False, True):
            args = (dim, keepdim)
            same(getattr(M, name)(xv, *args), getattr(torch, name)(x[1], *args), name)
            same(getattr(xv, name)(*args), getattr(x[1], name)(*args), name)
    same(getattr(M, name)(xv, 1, dtype=vt.float32), getattr(torch, name)(x[1], 1, dtype=torch.float32))
    same(getattr(M, name)(vt.empty(0, 3), 0), getattr(torch, name)(torch.empty(0, 3), 0))
    same(getattr(M, name)(vt.full((2,), math.nan)), getattr(torch, name)(torch.full((2,), math.nan)))
    if name == "nansum":
        ints = rnd(3, 4, ints=True)
        same(M.nansum(ints[0], 1), torch.nansum(ints[1], 1))
    else:
        raises_like(lambda m: m.nanmean(m.ones(3, dtype=m.int64)))
    a = np.array([[1.0, np.nan, 2.0], [0.5, -1.0, np.nan]])
    leaf = (vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_())
    check_grads(lambda m, x: getattr(m if m is torch else M, name)(x, 1), [leaf])
    o = vt.empty(0)
    assert getattr(M, name)(vt.tensor([1.0, math.nan, 3.0]), out=o) is o and o.item() == (4.0 if name == "nansum"
                                                                                           else 2.0)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin(name):
    for x in (rnd(5, 9, nan=True), rnd(6, 7, ints=True), pair(RNG.standard_normal((3, 4)) > 0), rnd(0, 3),
              rnd(4, 1)):
        for dim in (0, 1, -1):
            rv, rt = getattr(M, name)(nc(x[0]), dim), getattr(torch, name)(x[1], dim)
            assert type(rv).__name__ == name
            same(rv.values, rt.values, name)
            if x[0].dtype != vt.bool:  # torch's bool indices are its own; these are checked for validity
                same(rv.indices, rt.indices, name)
            valid_indices(x[0], dim, rv.values, rv.indices, True)
            same(getattr(x[0], name)(dim).values, rt.values)
    same(tuple(getattr(M, name)(vt.tensor(1.5), 0)), tuple(getattr(torch, name)(torch.tensor(1.5), 0)))
    check_grads(lambda m, x: getattr(m if m is torch else M, name)(x, 1)[0], leaves([(3, 6)], noncontig=True))
    raises_like(lambda m: getattr(m, name)(m.ones(3), 1))
    o = (vt.empty(0), vt.empty(0, dtype=vt.int64))
    assert getattr(M, name)(vt.tensor([2.0, 1.0, 3.0]), 0, out=o).values is o[0]


def test_logcumsumexp():
    for x in (rnd(5, 9, dtype="float64"), rnd(4, 17), rnd(0, 3)):
        for dim in (0, 1, -1):
            run(lambda m, t: m.logcumsumexp(t, dim), (nc(x[0]), x[1]))
            run(lambda m, t: t.logcumsumexp(dim), x)
    # widely spread values, infinities and a row of -inf keep their exact answers
    special = pair(np.array([[-1000.0, 0.0, 1000.0, -np.inf], [-np.inf, -np.inf, -np.inf, -np.inf],
                             [np.inf, 1.0, -np.inf, 2.0], [np.nan, 1.0, 2.0, 3.0]]))
    run(lambda m, t: m.logcumsumexp(t, 1), special)
    run(lambda m, t: m.logcumsumexp(t, 0), pair(np.array(1.5)))
    check_grads(lambda m, x: (m if m is torch else M).logcumsumexp(x, 1), leaves([(3, 6)], noncontig=True))
    check_grads(lambda m, x: (m if m is torch else M).logcumsumexp(x, 0), leaves([(5, 2)]))
    raises_like(lambda m: m.logcumsumexp(m.ones(3, dtype=m.int64), 0))
    raises_like(lambda m: m.logcumsumexp(m.ones(3), 1))
    o = vt.empty(0)
    assert M.logcumsumexp(vt.zeros(2), 0, out=o) is o


def test_exported_names():
    for n in ("tensor_split", "hstack", "vstack", "dstack", "column_stack", "row_stack", "count_nonzero", "diff",
              "isin", "as_tensor", "is_floating_point", "is_complex", "clip", "empty_strided", "scalar_tensor",
              "is_nonzero", "rot90", "argwhere", "take_along_dim", "block_diag", "cartesian_prod", "combinations",
              "kthvalue", "median", "nanmedian", "mode", "quantile", "nanquantile", "nansum", "nanmean", "cummax",
              "cummin", "logcumsumexp"):
        assert getattr(vt, n) is getattr(M, n), n
