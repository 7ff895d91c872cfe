"""Differential tests against torch of _more_functions.py (tile, randperm, tril/triu_indices, diag, diag_embed,
nan_to_num, searchsorted/bucketize, meshgrid, std_mean/var_mean, aminmax, logaddexp(2), hypot, unique, bincount,
histc, cdist, kron, finfo/iinfo) and linalg.py (vector_norm, matrix_norm, norm): values on random inputs
(non-contiguous views, broadcasting, empty inputs, each option), float64 gradients, and the error cases."""
import math
import warnings

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch import _more_functions as M
from vibetensor.torch import linalg as L

import os
import sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from ag_helpers import check_grads, leaves  # noqa: E402

RNG = np.random.default_rng(0)


def pair(a):
    a = np.asarray(a)
    return vt.from_numpy(a.copy()), torch.from_numpy(a.copy())


def rnd(*shape, dtype="float32"):
    return pair(RNG.standard_normal(shape).astype(dtype))


def same(v, t, **tol):
    if isinstance(t, torch.Tensor):
        assert tuple(v.shape) == tuple(t.shape), (v.shape, t.shape)
        assert str(v.dtype).rsplit(".")[-1] == str(t.dtype).rsplit(".")[-1], (v.dtype, t.dtype)
        np.testing.assert_allclose(v.numpy() if v.dtype != vt.bfloat16 else v.float().numpy(),
                                   t.numpy(), **(tol or dict(rtol=1e-5, atol=1e-6)))
    else:
        assert len(v) == len(t)
        for a, b in zip(v, t):
            same(a, b, **tol)


def fn(name):
    return getattr(M, name, None) or getattr(L, name)


# ---- tile ----
@pytest.mark.parametrize("shape,dims", [((3,), (2,)), ((2, 3), (2,)), ((2, 3), (2, 1, 3)), ((2, 3), ()),
                                        ((0, 3), (2, 2)), ((), (3,)), ((2, 3), (0, 2))])
def test_tile(shape, dims):
    v, t = rnd(*shape)
    same(M.tile(v, dims), torch.tile(t, dims))
    same(v.tile(*dims) if dims else v.tile(dims), t.tile(*dims) if dims else t.tile(dims))


def test_tile_noncontig_grad():
    check_grads(lambda m, a: m.tile(a, (2, 1, 3)) if m is torch else M.tile(a, (2, 1, 3)),
                leaves([(3, 4)], noncontig=True))


# ---- randperm ----
@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_randperm(n):
    p = M.randperm(n)
    assert p.dtype == vt.int64 and tuple(p.shape) == (n,)
    assert sorted(p.tolist()) == list(range(n))
    assert M.randperm(n, dtype=vt.int32).dtype == vt.int32
    assert M.randperm(n, dtype=vt.float32).dtype == vt.float32


def test_randperm_shuffles_and_errors():
    assert M.randperm(50).tolist() != list(range(50))
    with pytest.raises(RuntimeError):
        M.randperm(-1)


# ---- tril / triu indices ----
@pytest.mark.parametrize("row,col,off", [(3, 3, 0), (4, 3, 1), (3, 5, -1), (3, 5, -4), (3, 5, 7), (0, 3, 0),
                                         (1, 1, 0)])
def test_tri_indices(row, col, off):
    same(M.tril_indices(row, col, off), torch.tril_indices(row, col, off))
    same(M.triu_indices(row, col, off), torch.triu_indices(row, col, off))
    same(M.tril_indices(row, col, off, dtype=vt.int32), torch.tril_indices(row, col, off, dtype=torch.int32))


def test_tri_indices_errors():
    with pytest.raises(RuntimeError):
        M.tril_indices(-1, 3)
    with pytest.raises(RuntimeError):
        M.triu_indices(3, 3, dtype=vt.float32)


# ---- diag / diag_embed ----
@pytest.mark.parametrize("shape", [(4,), (0,), (3, 5), (5, 3), (0, 3)])
@pytest.mark.parametrize("k", [0, 1, -2, 6])
def test_diag(shape, k):
    v, t = rnd(*shape)
    same(M.diag(v, k), torch.diag(t, k))
    same(v.diag(k), t.diag(k))


def test_diag_noncontig_and_int():
    v, t = rnd(5, 4)
    same(M.diag(v.t(), 1), torch.diag(t.t(), 1))
    vi, ti = pair(np.arange(4))
    same(M.diag(vi, -1), torch.diag(ti, -1))


def test_diag_errors():
    with pytest.raises(RuntimeError):
        M.diag(vt.zeros(2, 2, 2))


@pytest.mark.parametrize("shape,off,d1,d2", [((3,), 0, -2, -1), ((2, 3), 1, 0, 2), ((2, 3), -1, 2, 0),
                                             ((2, 3, 4), 2, 1, 3), ((2, 0), 1, -2, -1)])
def test_diag_embed(shape, off, d1, d2):
    v, t = rnd(*shape)
    same(M.diag_embed(v, off, d1, d2), torch.diag_embed(t, off, d1, d2))


def test_diag_embed_scalar_errors():
    with pytest.raises(IndexError):
        torch.diag_embed(torch.tensor(2.0))
    with pytest.raises(IndexError):
        M.diag_embed(vt.tensor(2.0))


def test_diag_grads():
    check_grads(lambda m, a: torch.diag(a, 1) if m is torch else M.diag(a, 1), leaves([(4,)]))
    check_grads(lambda m, a: torch.diag(a, -1) if m is torch else M.diag(a, -1), leaves([(4, 3)], noncontig=True))
    check_grads(lambda m, a: torch.diag_embed(a, 1, 0, 2) if m is torch else M.diag_embed(a, 1, 0, 2),
                leaves([(2, 3)]))
    with pytest.raises(RuntimeError):
        M.diag_embed(vt.zeros(3), 0, 1, -1)


# ---- nan_to_num ----
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_nan_to_num(dtype):
    a = np.array([[np.nan, np.inf, -np.inf, 1.5], [0.0, -2.0, np.nan, np.inf]], dtype=dtype)
    v, t = pair(a)
    same(M.nan_to_num(v), torch.nan_to_num(t))
    same(M.nan_to_num(v, 1.0, 2.0, -3.0), torch.nan_to_num(t, 1.0, 2.0, -3.0))
    same(M.nan_to_num(v.t(), posinf=9.0), torch.nan_to_num(t.t(), posinf=9.0))
    same(v.nan_to_num(neginf=0.5), t.nan_to_num(neginf=0.5))


def test_nan_to_num_int_bf16_and_grad():
    vi, ti = pair(np.array([1, -2, 3]))
    same(M.nan_to_num(vi), torch.nan_to_num(ti))
    v = vt.tensor([float("inf"), float("-inf"), float("nan")], dtype=vt.bfloat16)
    t = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=torch.bfloat16)
    np.testing.assert_array_equal(M.nan_to_num(v).float().numpy(), torch.nan_to_num(t).float().numpy())
    (v1, t1), = leaves([(3, 4)])
    check_grads(lambda m, a: torch.nan_to_num(a.log()) if m is torch else M.nan_to_num(a.log()), [(v1, t1)])


# ---- searchsorted / bucketize ----
@pytest.mark.parametrize("right", [False, True])
@pytest.mark.parametrize("out_int32", [False, True])
def test_searchsorted_1d(right, out_int32):
    b = np.sort(RNG.integers(0, 10, 8)).astype("float32")  # ties on purpose
    vals = RNG.integers(-1, 12, (3, 5)).astype("float32")
    vb, tb = pair(b)
    vv, tv = pair(vals)
    same(M.searchsorted(vb, vv, right=right, out_int32=out_int32),
         torch.searchsorted(tb, tv, right=right, out_int32=out_int32))
    same(M.searchsorted(vb, vv.t(), side="right" if right else "left"),
         torch.searchsorted(tb, tv.t(), side="right" if right else "left"))
    same(M.bucketize(vv, vb, right=right, out_int32=out_int32),
         torch.bucketize(tv, tb, right=right, out_int32=out_int32))
    same(M.searchsorted(vb, 3.0, right=right), torch.searchsorted(tb, 3.0, right=right))
    same(M.bucketize(3.0, vb, right=right), torch.bucketize(3.0, tb, right=right))


def test_searchsorted_nd_sorter_empty():
    s = np.sort(RNG.standard_normal((2, 3, 6)), -1)
    x = RNG.standard_normal((2, 3, 4))
    (vs, ts), (vx, tx) = pair(s), pair(x)
    same(M.searchsorted(vs, vx), torch.searchsorted(ts, tx))
    u = RNG.standard_normal(7)
    order = np.argsort(u)
    (vu, tu), (vo, to) = pair(u), pair(order)
    vq, tq = pair(RNG.standard_normal(5))
    same(M.searchsorted(vu, vq, sorter=vo), torch.searchsorted(tu, tq, sorter=to))
    ve, te = pair(np.zeros(0))
    same(M.searchsorted(vs[0, 0], ve), torch.searchsorted(ts[0, 0], te))
    same(M.searchsorted(ve, vq), torch.searchsorted(te, tq))
    vi, ti = pair(np.array([1, 3, 5]))
    same(M.searchsorted(vi, vt.tensor([0, 3, 6])), torch.searchsorted(ti, torch.tensor([0, 3, 6])))


@pytest.mark.parametrize("n", [1, 5, 64, 200, 1000])
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_long_sequences_and_ties_match_torch(n, right):
    """Short sequences take one broadcast compare, long ones the binary search: the same answers as torch's
    either way, on ties, values outside the range, a non-contiguous batch, int32 output."""
    s = np.sort(np.round(RNG.standard_normal((3, n)) * 4) / 4, -1)  # many ties
    x = np.concatenate([s[:, ::7], RNG.standard_normal((3, 9)) * 5, s[:, :1] - 1, s[:, -1:] + 1], -1)
    (vs, ts), (vx, tx) = pair(s), pair(x)
    same(M.searchsorted(vs, vx, right=right), torch.searchsorted(ts, tx, right=right))
    same(M.searchsorted(vs[1], vx, right=right, out_int32=True),
         torch.searchsorted(ts[1], tx, right=right, out_int32=True))
    (vsT, tsT), (vxT, txT) = pair(s.T.copy()), pair(x.T.copy())
    same(M.searchsorted(vsT.t(), vxT.t(), right=right), torch.searchsorted(tsT.t(), txT.t(), right=right))
    same(M.bucketize(vx, vs[0], right=right), torch.bucketize(tx, ts[0], right=right))


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_nan_values_and_boundaries_match_torch(right):
    """NaN values go after every boundary; NaN boundaries (where torch.sort puts them, last) land where torch's
    binary search lands, which depends on how many there are."""
    vals = np.array([math.nan, 2.0, 5.0, 3.0, 1.0, 0.0, -1.0])
    for seq in ([1.0, 3.0, math.nan], [1.0, 3.0, math.nan, math.nan], [math.nan], [2.0, 2.0, math.nan],
                [0.5, 1.0, 2.0, 3.0, 4.0, math.nan, math.nan, math.nan]):
        (vs, ts), (vv, tv) = pair(np.array(seq)), pair(vals)
        same(M.searchsorted(vs, vv, right=right), torch.searchsorted(ts, tv, right=right))
    batch = np.sort(RNG.standard_normal((3, 5)), -1)
    batch[1, 3:] = math.nan
    (vb, tb), (vq, tq) = pair(batch), pair(RNG.standard_normal((3, 4)) * 3)
    same(M.searchsorted(vb, vq, right=right), torch.searchsorted(tb, tq, right=right))


def test_searchsorted_errors():
    b = vt.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError):
        M.searchsorted(b, vt.tensor([1.0]), right=True, side="left")
    with pytest.raises(RuntimeError):
        M.searchsorted(b, vt.tensor([1.0]), side="middle")
    with pytest.raises(RuntimeError):
        M.searchsorted(vt.zeros(2, 3), vt.zeros(3, 3))
    with pytest.raises(RuntimeError):
        M.bucketize(vt.tensor([1.0]), vt.zeros(2, 2))
    with pytest.raises(RuntimeError):
        M.searchsorted(b, vt.tensor([1.0]), sorter=vt.tensor([0]))


# ---- meshgrid ----
@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid(indexing):
    a, b, c = pair(np.arange(2.0)), pair(np.arange(3.0) + 5), pair(np.array(7.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when indexing is given
        out = M.meshgrid(a[0], b[0], c[0], indexing=indexing)
        same(out, torch.meshgrid(a[1], b[1], c[1], indexing=indexing))
        same(M.meshgrid([a[0], b[0]], indexing=indexing), torch.meshgrid([a[1], b[1]], indexing=indexing))
        same(M.meshgrid(b[0], indexing=indexing), torch.meshgrid(b[1], indexing=indexing))
    e = pair(np.zeros(0))
    same(M.meshgrid(a[0], e[0], indexing=indexing), torch.meshgrid(a[1], e[1], indexing=indexing))


def test_meshgrid_default_warns_and_errors():
    with pytest.warns(UserWarning, match="indexing"):
        out = M.meshgrid(vt.arange(2), vt.arange(3))
    assert tuple(out[0].shape) == (2, 3)
    with pytest.raises(RuntimeError):
        M.meshgrid(vt.arange(2), indexing="yx")
    with pytest.raises(RuntimeError):
        M.meshgrid(vt.zeros(2, 2), indexing="ij")
    with pytest.raises(RuntimeError):
        M.meshgrid(vt.arange(2), vt.zeros(2), indexing="ij")


def test_meshgrid_grad():
    check_grads(lambda m, a, b: (torch.meshgrid(a, b, indexing="xy") if m is torch else
                                 M.meshgrid(a, b, indexing="xy"))[0] * 2, leaves([(3,), (4,)]))


# ---- var_mean / std_mean ----
@pytest.mark.parametrize("kw", [{}, dict(dim=1), dict(dim=(0, 2), keepdim=True), dict(dim=1, unbiased=False),
                                dict(dim=-1, correction=0), dict(dim=None, correction=2), dict(unbiased=False)])
def test_var_std_mean(kw):
    v, t = rnd(3, 4, 5)
    for name in ("var_mean", "std_mean"):
        rv, rt = getattr(M, name)(v, **kw), getattr(torch, name)(t, **kw)
        assert isinstance(rv, tuple)
        same(rv, rt)
        same(getattr(M, name)(v.transpose(0, 2), **kw), getattr(torch, name)(t.transpose(0, 2), **kw))


def test_var_mean_positional_unbiased_and_grad():
    v, t = rnd(4, 3)
    same(M.var_mean(v, False), torch.var_mean(t, False))
    same(M.std_mean(v, 0, True, True), torch.std_mean(t, 0, True, True))
    check_grads(lambda m, a: sum(r.sum() for r in (torch.std_mean(a, 1) if m is torch else M.std_mean(a, 1))),
                leaves([(3, 4)]))
    check_grads(lambda m, a: sum(r.sum() for r in (torch.var_mean(a, 0, correction=0) if m is torch
                                                    else M.var_mean(a, 0, correction=0))), leaves([(3, 4)]))


# ---- aminmax ----
@pytest.mark.parametrize("kw", [{}, dict(dim=1), dict(dim=0, keepdim=True), dict(keepdim=True), dict(dim=-1)])
def test_aminmax(kw):
    v, t = rnd(3, 5)
    rv, rt = M.aminmax(v, **kw), torch.aminmax(t, **kw)
    same(rv, rt)
    assert type(rv).__name__ and rv.min is rv[0] and rv.max is rv[1]
    same(v.t().aminmax(**kw), t.t().aminmax(**kw))
    vi, ti = pair(RNG.integers(-5, 5, (4, 3)))
    same(M.aminmax(vi, **kw), torch.aminmax(ti, **kw))


def test_aminmax_empty():
    v, t = pair(np.zeros((0, 3), "float32"))
    same(M.aminmax(v, dim=1), torch.aminmax(t, dim=1))
    with pytest.raises(RuntimeError):
        M.aminmax(v)
    with pytest.raises(IndexError):
        M.aminmax(v, dim=0)
    with pytest.raises(IndexError):
        torch.aminmax(t, dim=0)


# ---- logaddexp / logaddexp2 / hypot ----
@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2", "hypot"])
def test_binary_values(name):
    (va, ta), (vb, tb) = rnd(3, 4), rnd(4)
    same(getattr(M, name)(va, vb), getattr(torch, name)(ta, tb))          # broadcasting
    same(getattr(M, name)(va.t(), vb[:3]), getattr(torch, name)(ta.t(), tb[:3]))  # non-contiguous
    same(getattr(va, name)(vb), getattr(ta, name)(tb))
    (vd, td) = rnd(3, 1, dtype="float64")
    same(getattr(M, name)(vd, va.double()), getattr(torch, name)(td, ta.double()))
    ve, te = rnd(0, 4)
    same(getattr(M, name)(ve, vb), getattr(torch, name)(te, tb))
    big = np.array([1e30, -1e30, 1e-30, 0.0, np.inf, -np.inf, np.nan, 3.0], "float32")
    other = np.array([1e30, 1e30, 1e-30, 0.0, np.inf, -np.inf, 1.0, -np.inf], "float32")
    (vx, tx), (vy, ty) = pair(big), pair(other)
    same(getattr(M, name)(vx, vy), getattr(torch, name)(tx, ty))


def test_logaddexp_int_promotes_and_hypot_int_errors():
    vi, ti = pair(np.array([1, 2, 3]))
    for name in ("logaddexp", "logaddexp2"):
        with pytest.raises(NotImplementedError):
            getattr(torch, name)(ti, ti)
        with pytest.raises(NotImplementedError):
            getattr(M, name)(vi, vi)
    same(M.logaddexp(vi, vi.float()), torch.logaddexp(ti, ti.float()))
    with pytest.raises(NotImplementedError):
        torch.hypot(ti, ti)
    with pytest.raises(NotImplementedError):
        M.hypot(vi, vi)


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2", "hypot"])
def test_binary_grads(name):
    check_grads(lambda m, a, b: getattr(torch if m is torch else M, name)(a, b), leaves([(3, 4), (4,)]))
    check_grads(lambda m, a, b: getattr(torch if m is torch else M, name)(a, b),
                leaves([(3, 4), (3, 4)], noncontig=True, seed=3))


# ---- unique ----
@pytest.mark.parametrize("inv", [False, True])
@pytest.mark.parametrize("cnt", [False, True])
@pytest.mark.parametrize("shape", [(10,), (3, 4), (0,), ()])
def test_unique(inv, cnt, shape):
    v, t = pair(RNG.integers(0, 5, shape))
    same(M.unique(v, return_inverse=inv, return_counts=cnt), torch.unique(t, return_inverse=inv, return_counts=cnt))
    same(v.unique(True, inv, cnt), t.unique(True, inv, cnt))
    vf, tf = pair(RNG.integers(0, 4, shape).astype("float32"))
    same(M.unique(vf, sorted=True, return_inverse=inv, return_counts=cnt),
         torch.unique(tf, sorted=True, return_inverse=inv, return_counts=cnt))


def test_unique_unsorted_noncontig_and_dim():
    v, t = pair(RNG.integers(0, 6, (5, 4)))
    rv, rt = M.unique(v.t(), sorted=False, return_counts=True), torch.unique(t.t(), sorted=False,
                                                                            return_counts=True)
    assert dict(zip(rv[0].tolist(), rv[1].tolist())) == dict(zip(rt[0].tolist(), rt[1].tolist()))
    with pytest.raises(NotImplementedError):
        M.unique(v, dim=0)


# ---- bincount ----
def test_bincount():
    v, t = pair(RNG.integers(0, 6, 20))
    same(M.bincount(v), torch.bincount(t))
    same(v.bincount(minlength=10), t.bincount(minlength=10))
    same(M.bincount(v, minlength=2), torch.bincount(t, minlength=2))
    for wd in ("float32", "float64", "int64"):
        vw, tw = pair(RNG.standard_normal(20).astype(wd) if wd != "int64" else RNG.integers(0, 3, 20))
        same(M.bincount(v, vw), torch.bincount(t, tw))
    ve, te = pair(np.zeros(0, "int64"))
    same(M.bincount(ve), torch.bincount(te))
    same(M.bincount(ve, minlength=3), torch.bincount(te, minlength=3))
    vi, ti = pair(np.array([3, 1, 1], "int32"))
    same(M.bincount(vi[::2]), torch.bincount(ti[::2]))


def test_bincount_errors():
    for bad in (vt.tensor([-1, 2]), vt.zeros(2, 2, dtype=vt.int64), vt.tensor([1.0, 2.0])):
        with pytest.raises(RuntimeError):
            M.bincount(bad)
    with pytest.raises(RuntimeError):
        M.bincount(vt.tensor([1, 2]), minlength=-1)
    with pytest.raises(RuntimeError):
        M.bincount(vt.tensor([1, 2]), vt.tensor([1.0]))


# ---- histc ----
@pytest.mark.parametrize("kw", [{}, dict(bins=7), dict(bins=4, min=-1, max=1), dict(bins=3, min=0.5, max=0.5),
                                dict(bins=5, min=-10, max=10)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_histc(kw, dtype):
    v, t = rnd(6, 7, dtype=dtype)
    same(M.histc(v, **kw), torch.histc(t, **kw))
    same(v.t().histc(**kw), t.t().histc(**kw))


def test_histc_edges_empty_errors():
    v, t = pair(np.array([0.0, 1.0, 2.0, 3.0, 4.0, -1.0, 5.0], "float32"))
    same(M.histc(v, 4, 0, 4), torch.histc(t, 4, 0, 4))
    vc, tc = pair(np.full(3, 2.0, "float32"))
    same(M.histc(vc, 4), torch.histc(tc, 4))
    ve, te = pair(np.zeros(0, "float32"))
    same(M.histc(ve, 3), torch.histc(te, 3))
    with pytest.raises(RuntimeError):
        M.histc(v, 0)
    with pytest.raises(RuntimeError):
        M.histc(v, 3, 2, 1)
    with pytest.raises(RuntimeError):
        M.histc(vt.tensor([1, 2]), 3)


# ---- cdist ----
@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 3.0, 0.5, math.inf])
@pytest.mark.parametrize("s1,s2", [((4, 3), (5, 3)), ((2, 4, 3), (2, 5, 3)), ((2, 1, 4, 3), (3, 5, 3)),
                                   ((0, 3), (5, 3)), ((4, 0), (2, 0))])
def test_cdist(p, s1, s2):
    (v1, t1), (v2, t2) = rnd(*s1), rnd(*s2)
    same(M.cdist(v1, v2, p), torch.cdist(t1, t2, p), rtol=1e-4, atol=1e-5)


def test_cdist_noncontig_grad_errors():
    (v1, t1), (v2, t2) = rnd(3, 4), rnd(3, 5)
    same(M.cdist(v1.t(), v2.t()), torch.cdist(t1.t(), t2.t()), rtol=1e-4, atol=1e-5)
    for p in (2.0, 1.0, 3.0, math.inf):
        check_grads(lambda m, a, b: torch.cdist(a, b, p) if m is torch else M.cdist(a, b, p),
                    leaves([(2, 3, 4), (2, 5, 4)]))
    with pytest.raises(RuntimeError):
        M.cdist(vt.zeros(3), vt.zeros(2, 3))
    with pytest.raises(RuntimeError):
        M.cdist(vt.zeros(2, 3), vt.zeros(2, 4))
    with pytest.raises(RuntimeError):
        M.cdist(vt.zeros(2, 3), vt.zeros(2, 3), -1.0)
    with pytest.raises(RuntimeError):
        M.cdist(vt.zeros(2, 3, dtype=vt.int64), vt.zeros(2, 3, dtype=vt.int64))


# ---- kron ----
@pytest.mark.parametrize("s1,s2", [((2, 3), (4, 5)), ((3,), (2, 2)), ((2, 1, 3), (3,)), ((), (3,)), ((), ()),
                                   ((0, 2), (3, 3))])
def test_kron(s1, s2):
    (va, ta), (vb, tb) = rnd(*s1), rnd(*s2)
    same(M.kron(va, vb), torch.kron(ta, tb))
    same(va.kron(vb), ta.kron(tb))


def test_kron_noncontig_int_grad():
    (va, ta), (vb, tb) = rnd(3, 2), rnd(2, 4)
    # torch 2.13's kron refuses transposed / strided inputs (a view() inside it raises), so its side gets
    # contiguous copies
    same(M.kron(va.t(), vb[:, ::2]), torch.kron(ta.t().contiguous(), tb[:, ::2].contiguous()))
    (vi, ti) = pair(RNG.integers(0, 4, (2, 2)))
    same(M.kron(vi, vi), torch.kron(ti, ti))
    check_grads(lambda m, a, b: torch.kron(a.contiguous(), b.contiguous()) if m is torch else M.kron(a, b),
                leaves([(2, 3), (3, 2)], noncontig=True))


# ---- finfo / iinfo ----
@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_finfo(name):
    fv, ft = M.finfo(getattr(vt, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
        assert getattr(fv, attr) == getattr(ft, attr), attr


def test_finfo_default_and_errors():
    assert M.finfo().dtype == torch.finfo().dtype == "float32"
    with pytest.raises(TypeError):
        M.finfo(vt.int32)
    with pytest.raises(TypeError):
        M.iinfo(vt.float32)


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo(name):
    iv, it = M.iinfo(getattr(vt, name)), torch.iinfo(getattr(torch, name))
    for attr in ("bits", "max", "min", "dtype"):
        assert getattr(iv, attr) == getattr(it, attr), attr


# ---- linalg ----
@pytest.mark.parametrize("ord", [2, 1, 3.5, 0, math.inf, -math.inf, -1])
@pytest.mark.parametrize("kw", [{}, dict(dim=1), dict(dim=(0, 2), keepdim=True), dict(keepdim=True), dict(dim=-1)])
def test_vector_norm(ord, kw):
    v, t = rnd(3, 4, 5)
    same(L.vector_norm(v, ord, **kw), torch.linalg.vector_norm(t, ord, **kw), rtol=1e-4, atol=1e-5)
    same(L.vector_norm(v.transpose(0, 2), ord, **kw), torch.linalg.vector_norm(t.transpose(0, 2), ord, **kw),
         rtol=1e-4, atol=1e-5)


def test_vector_norm_dtype_empty_scalar_errors():
    v, t = rnd(4)
    same(L.vector_norm(v, dtype=vt.float64), torch.linalg.vector_norm(t, dtype=torch.float64))
    ve, te = rnd(0, 3)
    same(L.vector_norm(ve), torch.linalg.vector_norm(te))
    same(L.vector_norm(ve, 1, dim=0), torch.linalg.vector_norm(te, 1, dim=0))
    with pytest.raises(RuntimeError):
        L.vector_norm(ve, math.inf)
    vs, ts = pair(np.array(-3.0))
    same(L.vector_norm(vs), torch.linalg.vector_norm(ts))
    with pytest.raises(RuntimeError):
        L.vector_norm(vt.tensor([1, 2]))


@pytest.mark.parametrize("ord", ["fro", 1, -1, math.inf, -math.inf])
@pytest.mark.parametrize("kw", [{}, dict(keepdim=True), dict(dim=(0, 2)), dict(dim=(2, 0), keepdim=True)])
def test_matrix_norm(ord, kw):
    v, t = rnd(3, 4, 5)
    same(L.matrix_norm(v, ord, **kw), torch.linalg.matrix_norm(t, ord, **kw), rtol=1e-4, atol=1e-5)
    same(L.matrix_norm(v.transpose(1, 2), ord, **kw), torch.linalg.matrix_norm(t.transpose(1, 2), ord, **kw),
         rtol=1e-4, atol=1e-5)


def test_matrix_norm_errors():
    with pytest.raises(NotImplementedError):
        L.matrix_norm(vt.zeros(2, 2), 2)
    with pytest.raises(NotImplementedError):
        L.matrix_norm(vt.zeros(2, 2), "nuc")
    with pytest.raises(RuntimeError):
        L.matrix_norm(vt.zeros(2), "fro")
    with pytest.raises(RuntimeError):
        L.matrix_norm(vt.zeros(2, 2), 3)
    with pytest.raises(RuntimeError):
        L.matrix_norm(vt.zeros(2, 2), dim=(0, 0))


@pytest.mark.parametrize("args,kw", [((), {}), (("fro",), {}), ((math.inf,), {}), ((1,), {}),
                                     ((None, 1), {}), ((None, (0, 1)), dict(keepdim=True)), ((2, 0), {}), ((-math.inf,), {}),
                                     ((None, None), dict(keepdim=True))])
def test_linalg_norm(args, kw):
    v, t = rnd(4, 5)
    same(L.norm(v, *args, **kw), torch.linalg.norm(t, *args, **kw), rtol=1e-4, atol=1e-5)


def test_linalg_norm_3d_and_grads():
    v, t = rnd(2, 3, 4)
    same(L.norm(v), torch.linalg.norm(t))
    with pytest.raises(RuntimeError):
        L.norm(v, 2)
    with pytest.raises(RuntimeError):
        torch.linalg.norm(t, 2)
    v2, t2 = rnd(4, 5)
    with pytest.raises(RuntimeError):
        torch.linalg.norm(t2, 3)
    with pytest.raises(RuntimeError):
        L.norm(v2, 3)
    check_grads(lambda m, a: torch.linalg.vector_norm(a, 3, 1) if m is torch else L.vector_norm(a, 3, 1),
                leaves([(3, 4)]))
    for ord in ("fro", 1, math.inf):
        check_grads(lambda m, a: torch.linalg.matrix_norm(a, ord) if m is torch else L.matrix_norm(a, ord),
                    leaves([(2, 3, 4)], noncontig=True))


def test_exports():
    for name in ("tile", "randperm", "tril_indices", "triu_indices", "diag", "diag_embed", "nan_to_num", "bucketize",
                 "searchsorted", "meshgrid", "std_mean", "var_mean", "aminmax", "logaddexp", "logaddexp2", "hypot",
                 "unique", "bincount", "histc", "cdist", "kron", "finfo", "iinfo"):
        assert getattr(vt, name) is getattr(M, name), name
    assert vt.linalg.vector_norm is L.vector_norm and vt.linalg.matrix_norm is L.matrix_norm


def test_searchsorted_nan_and_cdist_mode():
    vb, tb = pair(np.array([1.0, 2.0, 3.0], "float32"))
    vv, tv = pair(np.array([np.nan, np.inf, -np.inf, 2.0], "float32"))
    for right in (False, True):
        same(M.searchsorted(vb, vv, right=right), torch.searchsorted(tb, tv, right=right))
    with pytest.raises(ValueError):
        torch.cdist(torch.zeros(2, 3), torch.zeros(2, 3), compute_mode="x")
    with pytest.raises(ValueError):
        M.cdist(vt.zeros(2, 3), vt.zeros(2, 3), compute_mode="x")
    (v1, t1), (v2, t2) = rnd(4, 3), rnd(5, 3)
    for mode in ("use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist"):
        same(M.cdist(v1, v2, compute_mode=mode), torch.cdist(t1, t2, compute_mode=mode), rtol=1e-4, atol=1e-5)


def test_out_arguments():
    (va, ta), (vb, tb) = rnd(3, 4), rnd(4)
    for name in ("logaddexp", "logaddexp2", "hypot"):
        vo, to = vt.empty(3, 4), torch.empty(3, 4)
        r = getattr(M, name)(va, vb, out=vo)
        getattr(torch, name)(ta, tb, out=to)
        assert r is vo
        same(vo, to)
    vo, to = vt.empty(0, dtype=vt.int64), torch.empty(0, dtype=torch.int64)
    sb, stb = pair(np.sort(RNG.standard_normal(5)).astype("float32"))
    M.searchsorted(sb, va, out=vo)
    torch.searchsorted(stb, ta, out=to)
    same(vo, to)
    vo, to = vt.empty(3, 4, dtype=vt.int32), torch.empty(3, 4, dtype=torch.int32)
    M.bucketize(va, sb, out_int32=True, out=vo)
    torch.bucketize(ta, stb, out_int32=True, out=to)
    same(vo, to)
    vo, to = vt.empty(4, 4), torch.empty(4, 4)
    M.diag(vb, out=vo)
    torch.diag(tb, out=to)
    same(vo, to)
    mn, mx = vt.empty(3), vt.empty(3)
    r = M.aminmax(va, dim=1, out=(mn, mx))
    rt = torch.aminmax(ta, dim=1)
    assert r[0] is mn and r[1] is mx
    same((mn, mx), rt)
    vo = vt.empty(12, 4)
    M.kron(va, vb.reshape(4, 1), out=vo)
    same(vo, torch.kron(ta, tb.reshape(4, 1)))
    vo = vt.empty(5)
    M.histc(va, 5, out=vo)
    same(vo, torch.histc(ta, 5))
    vo = vt.empty(3, 4)
    M.nan_to_num(va, out=vo)
    same(vo, ta)


@pytest.mark.skipif(not vt.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    """Each function on the device gives the CPU's answer (they are compositions of device ops)."""
    x = vt.from_numpy(RNG.standard_normal((4, 5)).astype("float32"))
    y = vt.from_numpy(RNG.standard_normal((5,)).astype("float32"))
    ints = vt.from_numpy(RNG.integers(0, 6, 17))
    b = vt.from_numpy(np.sort(RNG.standard_normal(6)).astype("float32"))
    bad = vt.tensor([float("nan"), float("inf"), -float("inf"), 1.0])
    cases = [
        lambda d: M.tile(x.to(d), (2, 1, 2)), lambda d: M.diag(y.to(d), 1), lambda d: M.diag(x.to(d).t(), -1),
        lambda d: M.diag_embed(x.to(d), 1, 0, 2), lambda d: M.nan_to_num(bad.to(d)),
        lambda d: M.searchsorted(b.to(d), x.to(d), right=True), lambda d: M.bucketize(x.to(d), b.to(d)),
        lambda d: M.meshgrid(y.to(d), b.to(d), indexing="xy")[1], lambda d: M.std_mean(x.to(d), 1)[0],
        lambda d: M.aminmax(x.to(d), dim=0).max, lambda d: M.logaddexp(x.to(d), y.to(d)),
        lambda d: M.logaddexp2(x.to(d), y.to(d)), lambda d: M.hypot(x.to(d), y.to(d)),
        lambda d: M.unique(ints.to(d), return_inverse=True, return_counts=True)[1],
        lambda d: M.unique(ints.to(d), return_counts=True)[1], lambda d: M.unique(ints.to(d)),
        lambda d: M.bincount(ints.to(d), minlength=9), lambda d: M.histc(x.to(d), 7),
        lambda d: M.cdist(x.to(d), x.to(d)[:3] + 1, 3.0), lambda d: M.kron(x.to(d), y.to(d)[:2]),
        lambda d: M.tril_indices(4, 5, 1, device=d), lambda d: L.matrix_norm(x.to(d), math.inf),
        lambda d: L.vector_norm(x.to(d), 0.5, 1),
    ]
    for i, case in enumerate(cases):
        c, g = case("cpu"), case("cuda")
        assert g.device.type == "cuda", i
        np.testing.assert_allclose(g.cpu().numpy(), c.numpy(), rtol=1e-5, atol=1e-5, err_msg=str(i))
    p = M.randperm(1000, device="cuda")
    assert p.device.type == "cuda" and sorted(p.cpu().tolist()) == list(range(1000))
    w = vt.from_numpy(RNG.standard_normal((3, 4))).to("cuda").requires_grad_()
    M.kron(M.diag(w[0]), w).sum().backward()
    assert w.grad is not None and w.grad.device.type == "cuda"


def test_default_dtype_is_float32_and_only_float32():
    assert vt.get_default_dtype() == vt.float32 == vt.ones(2).dtype == vt.tensor(1.5).dtype
    vt.set_default_dtype(vt.float32)
    with pytest.raises(NotImplementedError, match="only float32"):
        vt.set_default_dtype(vt.float64)
    assert vt.get_default_dtype() == vt.float32
