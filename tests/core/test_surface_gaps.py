"""frexp, put_/put, index_reduce_/index_reduce, the in-place view ops (unsqueeze_, squeeze_, t_, transpose_,
swapdims_, swapaxes_, as_strided_) and register_post_accumulate_grad_hook (python/vibetensor/torch/
_surface_more.py) against torch on random inputs: every supported dtype, contiguous and strided operands, empty
and 0-dim shapes, specials and subnormals, gradients, and torch's errors (kind and, where stable, message)."""
import gc
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import (ALL_DTYPES, FLOAT_DTYPES, NUMERIC_DTYPES, _noncontig_plan, assert_same, check_op, pair,
                     pair_from_numpy, to_numpy)

LAYOUTS = [False, "transpose", "slice", "offset"]
SHAPES = [(), (0,), (7,), (0, 3), (4, 5), (2, 3, 4)]


def _same_error(fn, *args):
    """fn(m, *sides) raises on both; the same exception class and message."""
    with pytest.raises(Exception) as te:
        fn(torch, *[a.t for a in args])
    with pytest.raises(Exception) as ve:
        fn(vt, *[a.v for a in args])
    assert type(ve.value).__name__ == type(te.value).__name__ and str(ve.value) == str(te.value)


def _grads_match(fn, *arrays, rtol=1e-10):
    """The gradients of sum(fn(m, *inputs) * weights) for each float64 input, vt against torch."""
    ins = [pair_from_numpy(a) for a in arrays]
    for x in ins:
        x.v.requires_grad_(True), x.t.requires_grad_(True)
    out_v, out_t = fn(vt, *[x.v for x in ins]), fn(torch, *[x.t for x in ins])
    w = pair_from_numpy(np.random.default_rng(7).standard_normal(tuple(out_t.shape)))
    (out_v * w.v).sum().backward()
    (out_t * w.t).sum().backward()
    for x in ins:
        assert (x.v.grad is None) == (x.t.grad is None)
        if x.t.grad is not None:
            np.testing.assert_allclose(to_numpy(x.v.grad), to_numpy(x.t.grad), rtol=rtol, atol=1e-12)


# ---- frexp ----
def _frexp_values(dtype, shape, rng):
    """Values spread over the dtype's whole exponent range, with zeros, infinities, NaN and subnormals."""
    lo, hi = {"float16": (-24, 15), "bfloat16": (-133, 127), "float32": (-149, 127), "float64": (-1074, 1023)}[dtype]
    n = int(np.prod(shape)) if shape else 1
    mant = rng.uniform(-1, 1, n)
    vals = mant * np.exp2(rng.integers(lo, hi, n).astype(np.float64))
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, 2.0 ** lo, -(2.0 ** lo) * 3, 2.0 ** (hi - 1) * 1.5]
    k = min(n, len(specials))
    vals[:k] = specials[:k]
    return vals.reshape(shape)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape,layout", [(s, False) for s in SHAPES] + [(s, k) for s in [(64,), (4, 5), (2, 3, 4)]
                                                                        for k in LAYOUTS[1:]])
def test_frexp_matches_torch(dtype, shape, layout, rng):
    base_shape, view = _noncontig_plan(shape, layout)
    base = pair_from_numpy(_frexp_values(dtype, base_shape, rng), dtype)
    x = type(base)(view(base.v), view(base.t))
    assert x.v.is_contiguous() == x.t.is_contiguous() and x.t.is_contiguous() == (not layout or layout == "offset")
    for fn in (lambda m, a: m.frexp(a), lambda m, a: a.frexp()):
        got, want = check_op(fn, x, rtol=0, atol=0)
        assert got.mantissa.dtype == x.v.dtype and got.exponent.dtype == vt.int32
        assert_same(got.exponent, want.exponent, rtol=0, atol=0)
        np.testing.assert_array_equal(np.signbit(to_numpy(got.mantissa)), np.signbit(to_numpy(want.mantissa)))


def test_frexp_subnormals_out_and_errors():
    for dtype, vals in (("float16", [6e-8, 1e-5, -3e-6, 6.1e-5, 65504.0]), ("bfloat16", [1e-39, -5e-40, 9.2e-41]),
                        ("float32", [1e-45, -1e-40, 1.17e-38, 3.4e38]), ("float64", [5e-324, -1e-310, 1.7e308])):
        check_op(lambda m, a: m.frexp(a), pair_from_numpy(np.array(vals), dtype), rtol=0, atol=0)
    x = pair_from_numpy(np.array([3.0, -0.25, 1e-3], np.float32))
    out = (vt.empty(0), vt.empty(0, dtype=vt.int32))
    r = vt.frexp(x.v, out=out)
    assert r.mantissa is out[0] and r.exponent is out[1]
    assert_same(r, torch.frexp(x.t))
    with pytest.raises(RuntimeError):
        vt.frexp(x.v, out=(vt.empty(0), vt.empty(0)))
    for dtype in ("int32", "int64", "bool", "uint8"):
        _same_error(lambda m, a: m.frexp(a), pair((3,), dtype, seed=0))


def test_frexp_gradient():
    a = np.array([0.3, -5.0, 1e-3, 1024.0, -0.75, 3e-310])
    _grads_match(lambda m, x: m.frexp(x).mantissa, a)
    x = vt.tensor([3.0, 0.1], requires_grad=True)
    m, e = vt.frexp(x)
    assert m.requires_grad and not e.requires_grad
    xh = vt.tensor([3.0, 0.1], dtype=vt.float16, requires_grad=True)
    vt.frexp(xh).mantissa.sum().backward()
    th = torch.tensor([3.0, 0.1], dtype=torch.float16, requires_grad=True)
    torch.frexp(th).mantissa.sum().backward()
    assert_same(xh.grad, th.grad, rtol=0, atol=0)


# ---- put ----
def _put_case(shape, n, accumulate, rng):
    numel = int(np.prod(shape)) if shape else 1
    if accumulate:
        idx = rng.integers(-numel, numel, n)
    else:  # distinct positions (a repeated one has no defined winner), half of them negative
        idx = rng.permutation(numel)[:n]
        idx = np.where(rng.random(len(idx)) < 0.5, idx - numel, idx)
    return pair_from_numpy(idx.astype(np.int64))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("accumulate", [False, True])
def test_put_matches_torch(dtype, layout, accumulate, rng):
    for shape in [(), (7,), (4, 5), (2, 3, 4)]:
        if layout and not shape:
            continue
        numel = int(np.prod(shape)) if shape else 1
        n = int(rng.integers(1, numel + 1)) if not accumulate else 2 * numel
        idx = _put_case(shape, n, accumulate, rng)
        idx = type(idx)(idx.v.reshape(-1, 1), idx.t.reshape(-1, 1)) if n % 2 == 0 else idx  # any index shape
        src = pair((idx.t.numel(),), dtype, rng=rng)
        kw = dict(rtol=1e-2, atol=1e-2) if dtype in ("float16", "bfloat16") else {}
        check_op(lambda m, s, i, v: m.put(s, i, v, accumulate=accumulate),
                 pair(shape, dtype, noncontig=layout, rng=rng), idx, src, **kw)
        base = pair(shape, dtype, noncontig=layout, rng=rng)
        views = (base.v, base.t)
        got, want = check_op(lambda m, s, i, v: s.put_(i, v, accumulate), base, idx, src, **kw)
        assert got is views[0] and want is views[1]


def test_put_writes_through_views_and_errors():
    base = pair((4, 6), "float32", seed=1)
    x = type(base)(base.v[:, ::2], base.t[:, ::2])  # strided: put_ writes where the elements lie
    ptr = x.v.data_ptr()
    idx, src = pair_from_numpy(np.array([0, 5, -1, 7])), pair_from_numpy(np.arange(4, dtype=np.float32))
    x.v.put_(idx.v, src.v), x.t.put_(idx.t, src.t)
    assert x.v.data_ptr() == ptr
    assert_same(base.v, base.t)
    for shape, i, s in (((2, 3), [6], [1.0]), ((2, 3), [-7], [1.0]), ((2, 3), [1, 2], [1.0]), ((0,), [0], [1.0]),
                        ((2, 3), [1, 9, -8], [1.0, 2.0, 3.0])):
        _same_error(lambda m, a, b, c: a.put_(b, c), pair(shape, seed=0),
                    pair_from_numpy(np.array(i, np.int64)), pair_from_numpy(np.array(s, np.float32)))
    _same_error(lambda m, a, b, c: a.put_(b, c), pair((2, 3), seed=0), pair_from_numpy(np.array([1], np.int32)),
                pair_from_numpy(np.array([1.0], np.float32)))
    _same_error(lambda m, a, b, c: a.put_(b, c), pair((2, 3), seed=0), pair_from_numpy(np.array([1])),
                pair_from_numpy(np.array([1.0])))
    empty = check_op(lambda m, a, b, c: m.put(a, b, c), pair((0, 2), seed=0), pair_from_numpy(np.zeros(0, np.int64)),
                     pair_from_numpy(np.zeros(0, np.float32)))
    assert tuple(empty[0].shape) == (0, 2)
    leaf = vt.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        leaf.put_(vt.tensor([0]), vt.tensor([1.0]))


@pytest.mark.parametrize("accumulate", [False, True])
def test_put_gradient(accumulate):
    rng = np.random.default_rng(3)
    idx = np.array([1, -1, 4, 1 if accumulate else 0])
    _grads_match(lambda m, a, s: m.put(a, m.tensor(idx), s, accumulate=accumulate),
                 rng.standard_normal((2, 3)), rng.standard_normal(4))
    _grads_match(lambda m, a, s: (a * 1).t().put_(m.tensor(idx), s, accumulate),
                 rng.standard_normal((2, 3)), rng.standard_normal(4))


# ---- index_reduce ----
REDUCES = ["prod", "mean", "amax", "amin"]


def _index_reduce_case(shape, dim, rng, index_dtype, dtype, layout):
    dim %= len(shape)
    n = int(rng.integers(0, 2 * shape[dim] + 1))
    src_shape = shape[:dim] + (n,) + shape[dim + 1:]
    idx = pair_from_numpy(rng.integers(0, shape[dim], n), index_dtype)
    low, high = (-3, 4) if dtype not in ("uint8", "bool") else (0, 4)
    kw = dict(low=low, high=high) if dtype not in FLOAT_DTYPES else dict(low=-2, high=2)
    return (pair(shape, dtype, noncontig=layout, rng=rng, **kw), idx,
            pair(src_shape, dtype, noncontig=layout if n else False, rng=rng, **kw))


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_matches_torch(dtype, reduce, include_self, rng):
    for shape, dim, layout in (((5,), 0, False), ((4, 3), 0, "transpose"), ((4, 3), -1, "slice"),
                               ((3, 4, 2), 1, "offset"), ((3, 0), 0, False)):
        for index_dtype in ("int64", "int32"):
            x, idx, src = _index_reduce_case(shape, dim, rng, index_dtype, dtype, layout)
            kw = dict(rtol=1e-5, atol=1e-6)
            if dtype in ("float16", "bfloat16"):  # torch multiplies in 16 bits: a float64 reference is accepted too
                kw = dict(rtol=2e-2, atol=2e-2, upcast_ref=True)
            check_op(lambda m, a, i, s: m.index_reduce(a, dim, i, s, reduce, include_self=include_self),
                     x, idx, src, **kw)
            check_op(lambda m, a, i, s: a.index_reduce(dim, i, s, reduce, include_self=include_self),
                     x, idx, src, **kw)
            got, want = check_op(lambda m, a, i, s: a.index_reduce_(dim, i, s, reduce, include_self=include_self),
                                 x, idx, src, **kw)
            assert got is x.v


def test_index_reduce_special_cases_and_errors():
    neg = (pair_from_numpy(np.array([[-1, 2], [3, 4]])), pair_from_numpy(np.array([0, 0])),
           pair_from_numpy(np.array([[-4, 5], [-6, 7]])))
    check_op(lambda m, a, i, s: a.index_reduce(0, i, s, "mean"), *neg)  # integer means floor, as torch's
    check_op(lambda m, a, i, s: a.index_reduce(0, i, s, "prod"), pair((), seed=0),
             pair_from_numpy(np.array([0])), pair((), seed=1))
    x, src = pair((3, 4), seed=0), pair((2, 4), seed=1)
    for args in ((0, [0, 0], "sum"), (0, [0.0, 1.0], "prod"), (0, [0, 3], "prod"), (0, [0, -1], "prod"),
                 (0, [0], "prod"), (1, [0, 1], "prod"), (2, [0, 1], "prod"), (0, [[0, 1]], "prod")):
        dim, i, reduce = args
        _same_error(lambda m, a, b, s: a.index_reduce(dim, b, s, reduce), x, pair_from_numpy(np.array(i)), src)
    _same_error(lambda m, a, b, s: a.index_reduce(0, b, s, "amax"), x, pair_from_numpy(np.array([0, 1])),
                pair((2, 4), "float64", seed=1))
    _same_error(lambda m, a, b, s: a.index_reduce(0, b, s, "amax"), x, pair_from_numpy(np.array([0, 1])),
                pair((2, 5), seed=1))
    _same_error(lambda m, a, b, s: a.index_reduce(0, b, s, "prod"), pair((3,), "bool", seed=0),
                pair_from_numpy(np.array([0, 1])), pair((2,), "bool", seed=1))


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce_gradient(reduce, include_self):
    rng = np.random.default_rng(5)
    idx = np.array([0, 2, 0, 0, 3])
    a, s = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    if reduce == "prod":  # zeros: one in self, a single and a double zero in source at one target
        a[1, 0] = a[0, 1] = 0.0
        s[0, 0] = s[1, 2] = s[2, 1] = s[3, 1] = 0.0
    else:  # ties for amax/amin: equal values share the gradient
        s[2] = s[0]
        a[0] = s[0]
    _grads_match(lambda m, x, y: m.index_reduce(x, 0, m.tensor(idx), y, reduce, include_self=include_self), a, s)
    _grads_match(lambda m, x, y: (x * 1).index_reduce_(0, m.tensor(idx), y, reduce, include_self=include_self),
                 a, s)
    _grads_match(lambda m, x, y: x.index_reduce(1, m.tensor([1, 1]), y[:, :2], reduce, include_self=include_self),
                 a, s[:4])


# ---- in-place view ops ----
VIEW_OPS = [
    ("unsqueeze_", (0,)), ("unsqueeze_", (-1,)), ("unsqueeze_", (2,)), ("squeeze_", ()), ("squeeze_", (1,)),
    ("squeeze_", (0,)), ("squeeze_", ((0, 1),)), ("squeeze_", ((),)), ("t_", ()), ("transpose_", (0, -1)),
    ("swapdims_", (1, 0)), ("swapaxes_", (0, 1)), ("as_strided_", ((3, 2), (1, 3))),
    ("as_strided_", ((2, 2), (2, 1), 1)), ("as_strided_", ((0, 4), (4, 1))),
]


def _layout(x):
    return tuple(x.shape), tuple(x.stride()), x.storage_offset()


@pytest.mark.parametrize("op,args", VIEW_OPS, ids=lambda v: str(v))
@pytest.mark.parametrize("shape,layout", [((2, 1, 3), False), ((1, 3), "transpose"), ((2, 3), "offset"),
                                          ((3,), "slice"), ((1, 1), False), ((), False)])
def test_inplace_view_ops_match_torch(op, args, shape, layout):
    p = pair(shape, "float32", noncontig=layout, seed=2)
    views = [x.as_strided(tuple(x.shape), x.stride(), x.storage_offset()) for x in p]  # made before the op
    try:
        want = getattr(p.t, op)(*args)
    except Exception as e:  # noqa: BLE001
        with pytest.raises(type(e)) as ve:
            getattr(p.v, op)(*args)
        assert str(ve.value) == str(e)
        return
    ptr, version = p.v.data_ptr(), p.v._version
    got = getattr(p.v, op)(*args)
    assert got is p.v and want is p.t
    assert _layout(p.v) == _layout(p.t) and p.v._version == version + 1
    if op != "as_strided_" or len(args) < 3:
        assert p.v.data_ptr() == ptr
    assert_same(p.v, p.t)
    if p.v.numel():  # still one storage with the views made before
        p.v.reshape(-1)[0:1].fill_(5.0) if p.v.is_contiguous() else p.v.fill_(5.0)
        p.t.reshape(-1)[0:1].fill_(5.0) if p.t.is_contiguous() else p.t.fill_(5.0)
        assert_same(views[0], views[1])


def test_inplace_view_errors():
    for op, args in (("t_", ()), ("unsqueeze_", (4,)), ("squeeze_", (3,)), ("squeeze_", ((0, 5),)),
                     ("transpose_", (0, 3)), ("as_strided_", ((3, 3), (1, 1), -1))):
        _same_error(lambda m, a: getattr(a, op)(*args), pair((2, 3, 1), seed=0))
    for make in (lambda m: m.zeros(2, 3, requires_grad=True), lambda m: m.zeros(2, 3, requires_grad=True)[0]):
        for op, args in (("unsqueeze_", (0,)), ("t_", ()), ("squeeze_", ()), ("as_strided_", ((3,), (1,)))):
            with pytest.raises(RuntimeError) as te:
                getattr(make(torch), op)(*args)
            with pytest.raises(RuntimeError) as ve:
                getattr(make(vt), op)(*args)
            assert str(ve.value) == str(te.value)
    leaf = vt.zeros(2, 3, requires_grad=True)
    with vt.no_grad():
        leaf.unsqueeze_(0)
    assert tuple(leaf.shape) == (1, 2, 3) and leaf.is_leaf and leaf.grad_fn is None


def test_inplace_view_autograd_rebases_history():
    a = np.random.default_rng(4).standard_normal((2, 3))

    def chain(m, x):
        y = x * 2
        y.unsqueeze_(0).squeeze_().t_()
        y.as_strided_((2, 3), (1, 2)).transpose_(0, 1)
        y.swapdims_(0, 1).swapaxes_(1, 0).unsqueeze_(1)
        v = (x * 3)[1]  # a view of a non-leaf: its base takes the gradient
        v.unsqueeze_(0)
        return y.reshape(-1)[:6] * v.reshape(-1).sum()

    _grads_match(chain, a)
    x = vt.randn(2, 3, requires_grad=True)
    y = x * 2
    y.unsqueeze_(0)
    assert y.grad_fn.name().startswith("UnsqueezeBackward") and not y.is_leaf
    y.retain_grad()
    y.t_() if y.dim() == 2 else y.squeeze_(0)
    y.sum().backward()
    assert tuple(y.grad.shape) == (2, 3)
    for m in (torch, vt):  # a saved output with the old geometry: refused, as torch
        z = m.ones(2, 3, requires_grad=True).exp()
        z.unsqueeze_(0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


# ---- post-accumulate-grad hooks ----
def test_post_accumulate_grad_hook():
    seen = {}
    for m in (torch, vt):
        x = m.ones(3, requires_grad=True)
        calls = []
        h = x.register_post_accumulate_grad_hook(lambda t: calls.append((t is x, to_numpy(t.grad).tolist())))
        (x * 2).sum().backward()
        (x * 3).sum().backward()
        h.remove()
        (x * 3).sum().backward()
        y = m.ones(2, requires_grad=True)
        y.register_post_accumulate_grad_hook(lambda t: calls.append("grad"))
        m.autograd.grad((y * 2).sum(), y)  # no accumulation, no call
        z = m.ones(2, requires_grad=True)
        z.register_post_accumulate_grad_hook(lambda t: setattr(t, "grad", None))
        (z * 2).sum().backward()
        calls.append(z.grad is None)
        seen[m] = calls
    assert seen[vt] == seen[torch] == [(True, [2.0] * 3), (True, [5.0] * 3), True]


def test_post_accumulate_grad_hook_errors_and_lifetime():
    for m in (torch, vt):
        for bad, hook in ((lambda: (m.ones(2, requires_grad=True) * 2), lambda t: None),
                          (lambda: m.ones(2), lambda t: None)):
            with pytest.raises(RuntimeError) as e:
                bad().register_post_accumulate_grad_hook(hook)
            assert "hook" in str(e.value)
    msgs = []
    for m in (torch, vt):
        for ret in (lambda t: 5, lambda t: t * 7, lambda t: (_ for _ in ()).throw(ValueError("boom"))):
            x = m.ones(2, requires_grad=True)
            x.register_post_accumulate_grad_hook(ret)
            with pytest.raises(Exception) as e:
                (x * 2).sum().backward()
            msgs.append((type(e.value).__name__, str(e.value)))
    assert msgs[:3] == msgs[3:]
    freed = []

    class Sentinel:
        def __del__(self):
            freed.append(True)

    x = vt.ones(2, requires_grad=True)
    x.sentinel = Sentinel()
    x.register_post_accumulate_grad_hook(lambda t: None)
    del x
    gc.collect()
    assert freed == [True]  # the hook's reference to its tensor does not keep it alive


@pytest.mark.cuda
def test_surface_gaps_on_cuda():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((4, 5)).astype(np.float32) * 100
    x, xc = vt.from_numpy(a), vt.from_numpy(a).cuda()
    for got, want in zip(vt.frexp(xc), vt.frexp(x)):
        assert_same(got.cpu(), torch.from_numpy(to_numpy(want)))
    idx, src = vt.tensor([0, -1, 7]), vt.tensor([1.0, 2.0, 3.0])
    assert_same(xc.clone().put_(idx.cuda(), src.cuda(), True).cpu(),
                torch.from_numpy(to_numpy(x.clone().put_(idx, src, True))))
    i2, s2 = vt.tensor([0, 0, 3]), vt.from_numpy(rng.standard_normal((3, 5)).astype(np.float32))
    for reduce in REDUCES:
        assert_same(xc.index_reduce(0, i2.cuda(), s2.cuda(), reduce).cpu(),
                    torch.from_numpy(to_numpy(x.index_reduce(0, i2, s2, reduce))), rtol=1e-5, atol=1e-5)
    y = xc.clone()
    y.unsqueeze_(0).transpose_(0, 2)
    assert y.is_cuda and tuple(y.shape) == (5, 4, 1)
