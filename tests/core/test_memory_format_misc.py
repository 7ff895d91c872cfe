"""Memory formats (contiguous/channels_last/channels_last_3d/preserve_format through contiguous, is_contiguous,
clone, to and empty_like), Tensor.detach_ and masked_scatter / masked_scatter_ against torch: the same strides
(size-0 and size-1 dims, slices, permutations, expands), values, aliasing, gradients and errors."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch import _memory_format as MF
from vibetensor.torch import _tensor_misc  # noqa: F401  (attaches detach_ / masked_scatter)

import sys, os  # noqa: E401
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "autograd"))
from ag_helpers import check_grads, leaves  # noqa: E402

FMT = {"contiguous_format": (MF.contiguous_format, torch.contiguous_format),
       "channels_last": (MF.channels_last, torch.channels_last),
       "channels_last_3d": (MF.channels_last_3d, torch.channels_last_3d),
       "preserve_format": (MF.preserve_format, torch.preserve_format)}

# (shape of the base buffer, a view made the same way on both sides)
VIEWS = [
    ((2, 3, 4, 5), lambda t: t), ((2, 1, 4, 5), lambda t: t), ((1, 3, 1, 1), lambda t: t),
    ((2, 0, 3, 3), lambda t: t), ((2, 3, 1, 5), lambda t: t), ((2, 4, 5, 3), lambda t: t.permute(0, 3, 1, 2)),
    ((2, 3, 4, 5), lambda t: t[:, :, ::2]), ((2, 4, 5, 3), lambda t: t.permute(0, 3, 1, 2)[:, :, 1:3]),
    ((3, 4, 5, 2), lambda t: t.permute(3, 1, 0, 2)), ((2, 3, 1, 1), lambda t: t.expand(2, 3, 4, 5)),
    ((2, 3, 4, 5, 6), lambda t: t), ((2, 4, 5, 6, 3), lambda t: t.permute(0, 4, 1, 2, 3)),
    ((3, 4), lambda t: t.t()), ((5,), lambda t: t[::2]),
]


def pair(shape, view, rng, dtype="float64"):
    if 0 in shape:  # torch.from_numpy gives an empty array's strides as all 0; factories give torch's usual ones
        return view(vt.zeros(*shape, dtype=getattr(vt, dtype))), view(torch.zeros(*shape, dtype=getattr(torch, dtype)))
    a = rng.standard_normal(shape).astype(dtype)
    return view(vt.from_numpy(a.copy())), view(torch.from_numpy(a.copy()))


def outcome(fn):
    try:
        return fn()
    except Exception as e:  # noqa: BLE001
        return e


def same(v_out, t_out, v_in=None, t_in=None):
    if isinstance(t_out, Exception):
        assert isinstance(v_out, type(t_out)) and not isinstance(v_out, vt.Tensor), (v_out, t_out)
        assert str(v_out).split(".")[0] in str(t_out), (v_out, t_out)
        return
    assert not isinstance(v_out, Exception), v_out
    assert tuple(v_out.shape) == tuple(t_out.shape)
    assert tuple(v_out.stride()) == tuple(t_out.stride()), (v_out.stride(), t_out.stride())
    np.testing.assert_array_equal(v_out.numpy(), t_out.numpy())
    if v_in is not None:
        assert (v_out is v_in) == (t_out is t_in)


@pytest.mark.parametrize("fmt", list(FMT))
@pytest.mark.parametrize("shape,view", VIEWS)
def test_contiguous_clone_to_strides_match_torch(shape, view, fmt, rng):
    v, t = pair(shape, view, rng)
    vf, tf = FMT[fmt]
    same(outcome(lambda: v.contiguous(memory_format=vf)), outcome(lambda: t.contiguous(memory_format=tf)), v, t)
    assert outcome(lambda: v.is_contiguous(memory_format=vf)) == t.is_contiguous(memory_format=tf)
    same(outcome(lambda: v.clone(memory_format=vf)), outcome(lambda: t.clone(memory_format=tf)), v, t)
    same(outcome(lambda: v.to(memory_format=vf)), outcome(lambda: t.to(memory_format=tf)), v, t)
    same(outcome(lambda: v.to(vt.float32, memory_format=vf)), outcome(lambda: t.to(torch.float32,
                                                                                   memory_format=tf)))
    ve, te = outcome(lambda: MF.empty_like(v, memory_format=vf)), outcome(lambda: torch.empty_like(t, memory_format=tf))
    if isinstance(te, Exception):
        same(ve, te)
    else:
        assert tuple(ve.stride()) == tuple(te.stride()) and tuple(ve.shape) == tuple(te.shape)
        assert ve.dtype == v.dtype


@pytest.mark.parametrize("fmt", list(FMT))
@pytest.mark.parametrize("shape,view", [VIEWS[0], VIEWS[5], VIEWS[6], VIEWS[10], VIEWS[12]])
@pytest.mark.parametrize("name,args", [("zeros_like", ()), ("ones_like", ()), ("full_like", (2.5,)),
                                       ("rand_like", ()), ("randn_like", ())])
def test_like_factories_take_memory_format_like_torch(name, args, shape, view, fmt, rng):
    v, t = pair(shape, view, rng)
    vf, tf = FMT[fmt]
    te = outcome(lambda: getattr(torch, name)(t, *args, memory_format=tf))
    ve = outcome(lambda: getattr(MF, name)(v, *args, memory_format=vf))
    if isinstance(te, Exception):
        same(ve, te)
        return
    assert tuple(ve.stride()) == tuple(te.stride()) and tuple(ve.shape) == tuple(te.shape)
    a = ve.numpy()
    if name in ("zeros_like", "ones_like", "full_like"):
        np.testing.assert_array_equal(a, te.numpy())
    elif name == "rand_like":
        assert ((a >= 0) & (a < 1)).all()
    r = getattr(MF, name)(v, *args, dtype=vt.float32, requires_grad=True, memory_format=vf)
    assert r.dtype == vt.float32 and r.requires_grad and r.is_leaf


def test_like_factories_draw_the_right_distributions():
    x = vt.zeros(64, 8, 16, 16)
    u = MF.rand_like(x, memory_format=MF.channels_last).numpy()
    n = MF.randn_like(x, memory_format=MF.channels_last).numpy()
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02


def test_format_objects_and_errors():
    assert repr(MF.channels_last) == "vt.channels_last" and MF.channels_last is not MF.channels_last_3d
    import pickle
    assert pickle.loads(pickle.dumps(MF.channels_last)) is MF.channels_last
    x = vt.zeros(3, 4)
    with pytest.raises(RuntimeError, match="required rank 4 tensor to use channels_last format"):
        x.contiguous(memory_format=MF.channels_last)
    with pytest.raises(RuntimeError, match="required rank 5 tensor to use channels_last_3d format"):
        vt.zeros(2, 3, 4, 5).clone(memory_format=MF.channels_last_3d)
    with pytest.raises(RuntimeError, match="preserve memory format is unsupported by the contiguous operator"):
        vt.zeros(2, 3).t().contiguous(memory_format=MF.preserve_format)
    with pytest.raises(TypeError, match="memory_format"):
        x.contiguous(memory_format="channels_last")
    assert not x.is_contiguous(memory_format=MF.channels_last)
    e = MF.empty_like(vt.zeros(2, 3, 4, 5), dtype=vt.float64, memory_format=MF.channels_last, requires_grad=True)
    assert e.dtype == vt.float64 and e.requires_grad and e.stride() == (60, 1, 15, 3)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 1, 5), (1, 3, 1, 1)])  # size-1 dims: the as_strided path
@pytest.mark.parametrize("fmt", ["channels_last", "preserve_format", "contiguous_format"])
def test_layout_changes_are_differentiable(fmt, shape):
    (pv, pt), = leaves([shape])
    vf, tf = FMT[fmt]

    def fn(m, x):
        f = vf if m is vt else tf
        y = x * 2 if fmt == "preserve_format" else (x * 2).contiguous(memory_format=f)
        y = (y.clone(memory_format=f) * x).to(memory_format=f)
        strides.append(tuple(y.stride()))  # torch runs first: the two must agree
        return y
    strides = []
    check_grads(fn, [(pv, pt)])
    assert strides[0] == strides[1]


def test_channels_last_survives_elementwise_ops_like_torch(rng):
    v, t = pair((2, 3, 4, 5), lambda x: x, rng)
    v, t = v.contiguous(memory_format=MF.channels_last), t.contiguous(memory_format=torch.channels_last)
    for fn in (lambda x: x + 1, lambda x: x * x, lambda x: x.relu()):
        assert fn(v).is_contiguous(memory_format=MF.channels_last) == fn(t).is_contiguous(
            memory_format=torch.channels_last)


# ---- detach_ -------------------------------------------------------------------------------------------------

def test_detach_inplace_on_leaves_and_plain_tensors():
    x = vt.ones(3, requires_grad=True)
    x.grad = vt.ones(3)
    assert x.detach_() is x and not x.requires_grad and x.grad_fn is None and x.grad is not None
    y = vt.ones(3)
    assert y.detach_() is y and not y.requires_grad
    t = torch.ones(3, requires_grad=True)
    assert not t.detach_().requires_grad


def test_detach_inplace_errors():
    x = vt.ones(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        x[:2].detach_()
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        vt.ones(4)[:2].detach_()
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        torch.ones(4)[:2].detach_()
    with pytest.raises(NotImplementedError, match="use t = t.detach"):
        (x * 2).detach_()


# ---- masked_scatter ------------------------------------------------------------------------------------------

MS = [((3,), (3,), 3), ((4, 5), (4, 5), 25), ((2, 1), (3,), 6), ((4, 5), (5,), 20), ((2, 3, 4), (3, 1), 30),
      ((0,), (0,), 0), ((4,), (4,), 9)]


@pytest.mark.parametrize("shape,mshape,n", MS)
def test_masked_scatter_matches_torch_with_grads(shape, mshape, n, rng):
    mask = rng.random(mshape) > 0.4
    (xv, xt), (sv, st) = leaves([shape, (n,)], seed=int(rng.integers(1 << 30)))
    mv, mt = vt.from_numpy(mask.copy()), torch.from_numpy(mask.copy())
    check_grads(lambda m, x, s: x.masked_scatter(mv if m is vt else mt, s), [(xv, xt), (sv, st)])
    # a source shaped differently from self is read in row-major order
    src = rng.standard_normal((n, 2))
    np.testing.assert_array_equal(
        _tensor_misc.masked_scatter(xv.detach(), mv, vt.from_numpy(src.copy())).numpy(),
        torch.masked_scatter(xt.detach(), mt, torch.from_numpy(src.copy())).numpy())


def test_masked_scatter_inplace_matches_torch(rng):
    a = rng.standard_normal((3, 4))
    mask = rng.random((4,)) > 0.5
    src = rng.standard_normal(12)
    v = vt.from_numpy(a.copy())
    t = torch.from_numpy(a.copy())
    r = v.masked_scatter_(vt.from_numpy(mask.copy()), vt.from_numpy(src.copy()))
    t.masked_scatter_(torch.from_numpy(mask.copy()), torch.from_numpy(src.copy()))
    assert r is v
    np.testing.assert_array_equal(v.numpy(), t.numpy())


@pytest.mark.parametrize("case", ["int_mask", "short_source", "dtypes", "inplace_broadcast"])
def test_masked_scatter_errors_match_torch(case):
    def run(m):
        x = m.ones(3)
        if case == "int_mask":
            return x.masked_scatter(m.tensor([1, 0, 1]), m.zeros(3))
        if case == "short_source":
            return x.masked_scatter(m.tensor([True, False, True]), m.zeros(1))
        if case == "dtypes":
            return x.masked_scatter(m.tensor([True, False, True]), m.zeros(3, dtype=m.float64))
        return x.masked_scatter_(m.ones(2, 3, dtype=m.bool), m.zeros(6))
    with pytest.raises(RuntimeError) as te:
        run(torch)
    with pytest.raises(RuntimeError) as ve:
        run(vt)
    if case != "inplace_broadcast":
        assert str(ve.value).replace(" ", "") == str(te.value).replace(" ", "")


def test_public_names_are_wired():
    assert vt.channels_last is MF.channels_last and vt.contiguous_format is MF.contiguous_format
    assert vt.preserve_format is MF.preserve_format and vt.channels_last_3d is MF.channels_last_3d
    assert isinstance(vt.channels_last, vt.memory_format)
    x = vt.zeros(2, 3, 4, 5)
    assert vt.empty_like(x, memory_format=vt.channels_last).stride() == (60, 1, 15, 3)
    assert vt.empty_like(x).stride() == (60, 20, 5, 1)
    for name in ("zeros_like", "ones_like", "full_like", "rand_like", "randn_like"):
        assert getattr(vt, name) is getattr(MF, name)
    np.testing.assert_array_equal(vt.masked_scatter(vt.zeros(3), vt.tensor([True, False, True]),
                                                    vt.tensor([1.0, 2.0])).numpy(), [1.0, 0.0, 2.0])


def test_legacy_contiguous_format_is_contiguous_format_as_torch():
    """torch's library code (F.gumbel_softmax) passes torch.legacy_contiguous_format: the same object as
    contiguous_format, with the same strides from a transposed, a sliced and a channels_last input."""
    assert torch.legacy_contiguous_format is torch.contiguous_format
    assert vt.legacy_contiguous_format is vt.contiguous_format and repr(vt.legacy_contiguous_format) == repr(
        vt.contiguous_format)
    r = np.random.default_rng(3)
    a = r.standard_normal((3, 4, 5, 2)).astype(np.float32)
    views = [lambda t, lib: t.transpose(0, 2), lambda t, lib: t[:, 1::2],
             lambda t, lib: t.contiguous(memory_format=lib.channels_last)]
    for view in views:
        tv, vv = view(torch.from_numpy(a), torch), view(vt.from_numpy(a), vt)
        for tf, vf in (("zeros_like", "zeros_like"), ("empty_like", "empty_like")):
            to = getattr(torch, tf)(tv, memory_format=torch.legacy_contiguous_format)
            vo = getattr(vt, vf)(vv, memory_format=vt.legacy_contiguous_format)
            assert vo.stride() == to.stride() and tuple(vo.shape) == tuple(to.shape)
        tc = tv.clone(memory_format=torch.legacy_contiguous_format)
        vc = vv.clone(memory_format=vt.legacy_contiguous_format)
        assert vc.stride() == tc.stride()
        np.testing.assert_array_equal(vc.numpy(), tc.numpy())
