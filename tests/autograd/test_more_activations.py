"""The remaining activations, padding modules and small nn modules (functional_act_more.py, misc_layers.py,
utils/rnn.py) against torch: forward values and float64 gradients, the modules' repr and state_dict, inplace=True
returning its input, rrelu's and gumbel_softmax's randomness checked statistically, and the error cases."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
import vibetensor.torch.nn.functional_act_more as FM
import vibetensor.torch.nn.misc_layers as ML
from vibetensor.torch.nn.utils import rnn as vrnn

from ag_helpers import check_grads, leaves, to_np


def fn_(m):
    return torch.nn.functional if m is torch else FM


def nn_(m):
    return torch.nn if m is torch else ML


def _err(fn_t, fn_v, exc=RuntimeError):
    """Both raise exc, with the same message."""
    with pytest.raises(exc) as et:
        fn_t()
    with pytest.raises(exc) as ev:
        fn_v()
    assert str(ev.value) == str(et.value)


# ---- elementwise activations: forward and float64 gradients ----
# alphas exact in float32: torch computes the celu gradient with a float32 alpha (0.3 is off by ~1e-8 relative).
ELEMENTWISE = [
    ("softsign", {}), ("tanhshrink", {}), ("selu", {}), ("celu", {}), ("celu", {"alpha": 0.25}),
    ("celu", {"alpha": -2.0}), ("hardshrink", {}), ("hardshrink", {"lambd": 1.2}), ("hardshrink", {"lambd": -1.0}),
    ("softshrink", {}), ("softshrink", {"lambd": 0.0}), ("softshrink", {"lambd": 1.3}),
    ("threshold", {"threshold": 0.2, "value": -3.0}), ("threshold", {"threshold": -0.5, "value": 7}),
    ("rrelu", {}), ("rrelu", {"lower": 0.05, "upper": 0.6}),
]


@pytest.mark.parametrize("name,kw", ELEMENTWISE)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4, 5), ()])
def test_elementwise_vs_torch(name, kw, shape):
    (p,) = leaves([shape], seed=len(shape))
    check_grads(lambda m, x: getattr(fn_(m), name)(x * 2.0, **kw), [p])


@pytest.mark.parametrize("name,kw", ELEMENTWISE)
def test_elementwise_empty(name, kw):
    v = getattr(FM, name)(vt.zeros(0, 3, dtype=vt.float64), **kw)
    assert tuple(v.shape) == (0, 3)


def test_celu_large_input_gradient_finite():
    # exp of a large positive x must not leak an inf/nan into the gradient through the unused branch.
    check_grads(lambda m, x: fn_(m).celu(x * 800.0, 0.5), leaves([(4, 3)]))


@pytest.mark.parametrize("shape,dim", [((4,), 0), ((3, 6), 1), ((3, 6), -1), ((4, 3, 5), 0), ((2, 3, 8), -1),
                                       ((2, 4, 3, 2), 1), ((0, 4), 1)])
def test_glu(shape, dim):
    (p,) = leaves([shape])
    check_grads(lambda m, x: fn_(m).glu(x, dim), [p])


@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 6), 1), ((3, 6), 0), ((2, 3, 4), -1), ((2, 3, 4), 1)])
def test_softmin(shape, dim):
    (p,) = leaves([shape], seed=3)
    check_grads(lambda m, x: fn_(m).softmin(x, dim), [p])
    check_grads(lambda m, x: nn_(m).Softmin(dim)(x), [p])


def test_softmin_dtype_and_legacy_dim():
    a = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    o = FM.softmin(vt.from_numpy(a), 1, dtype=vt.float64)
    r = torch.nn.functional.softmin(torch.from_numpy(a), 1, dtype=torch.float64)
    assert o.dtype == vt.float64
    np.testing.assert_allclose(to_np(o), r.numpy(), rtol=1e-12)
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]:
        a = np.random.default_rng(1).standard_normal(shape)
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
            o = FM.softmin(vt.from_numpy(a))
        with pytest.warns(UserWarning):
            r = torch.nn.functional.softmin(torch.from_numpy(a))
        np.testing.assert_allclose(to_np(o), r.numpy(), rtol=1e-12)
        with pytest.warns(UserWarning):
            o = ML.LogSoftmax()(vt.from_numpy(a))
        with pytest.warns(UserWarning):
            r = torch.nn.LogSoftmax()(torch.from_numpy(a))
        np.testing.assert_allclose(to_np(o), r.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_softmax_module(dim):
    check_grads(lambda m, x: nn_(m).LogSoftmax(dim)(x), leaves([(3, 4, 5)]))


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5), (2, 1, 1, 1)])
def test_softmax2d(shape):
    check_grads(lambda m, x: nn_(m).Softmax2d()(x), leaves([shape]))


@pytest.mark.parametrize("shape,size,kw", [((2, 5, 7), 3, {}), ((2, 5, 7), 2, {"alpha": 0.5, "beta": 0.6, "k": 2.0}),
                                           ((2, 6, 3, 4), 5, {"alpha": 1.0}), ((1, 4, 2, 3, 2), 4, {"beta": 1.3}),
                                           ((2, 3, 4), 1, {}), ((2, 3, 4), 8, {"alpha": 2.0})])
def test_local_response_norm(shape, size, kw):
    (p,) = leaves([shape], seed=size)
    check_grads(lambda m, x: fn_(m).local_response_norm(x, size, **kw), [p])
    check_grads(lambda m, x: nn_(m).LocalResponseNorm(size, **kw)(x), [p])


@pytest.mark.parametrize("fn", [lambda m, x: fn_(m).glu(x, 1), lambda m, x: fn_(m).channel_shuffle(x, 2),
                                lambda m, x: fn_(m).local_response_norm(x, 3), lambda m, x: fn_(m).softmin(x, 2),
                                lambda m, x: fn_(m).celu(x.transpose(0, 1) * 1.0, inplace=True),
                                lambda m, x: fn_(m).softshrink(x),
                                lambda m, x: nn_(m).ReflectionPad1d(2)(x), lambda m, x: nn_(m).CircularPad1d(1)(x)])
def test_noncontiguous_inputs(fn):
    (p,) = leaves([(2, 4, 6)], noncontig=True)  # the transpose of a contiguous [2, 6, 4] buffer
    check_grads(fn, [p])


def test_local_response_norm_empty():
    o = FM.local_response_norm(vt.zeros(2, 3, 0), 2)
    assert tuple(o.shape) == (2, 3, 0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(5,), (2, 3), (), (0,)])
def test_bilinear(bias, lead):
    shapes = [lead + (3,), lead + (4,), (6, 3, 4)] + ([(6,)] if bias else [])
    check_grads(lambda m, *t: fn_(m).bilinear(*t), leaves(shapes, seed=2))


@pytest.mark.parametrize("shape,groups", [((2, 6, 3), 3), ((2, 6, 3, 4), 2), ((1, 8, 2, 2, 2), 4), ((3, 4, 5), 1),
                                          ((2, 4, 5), 4), ((0, 6, 2), 3)])
def test_channel_shuffle(shape, groups):
    (p,) = leaves([shape])
    check_grads(lambda m, x: fn_(m).channel_shuffle(x, groups), [p])
    check_grads(lambda m, x: nn_(m).ChannelShuffle(groups)(x), [p])


def test_rrelu_eval_uses_mean_slope():
    x, t = leaves([(4, 5)])[0]
    check_grads(lambda m, x: fn_(m).rrelu(x, 0.1, 0.5, training=False), [(x, t)])
    mod = ML.RReLU(0.1, 0.5).eval()
    tmod = torch.nn.RReLU(0.1, 0.5).eval()
    np.testing.assert_allclose(to_np(mod(x)), to_np(tmod(t)), rtol=1e-12)


@pytest.mark.parametrize("lower,upper", [(1 / 8, 1 / 3), (0.2, 0.9), (0.3, 0.3)])
def test_rrelu_training_random_slopes(lower, upper):
    vt.manual_seed(0)
    a = np.random.default_rng(0).standard_normal((200, 100))
    x = vt.from_numpy(a).requires_grad_()
    out = FM.rrelu(x, lower, upper, training=True)
    o = to_np(out)
    neg, pos = a < 0, a >= 0
    np.testing.assert_array_equal(o[pos], a[pos])
    slope = o[neg] / a[neg]
    assert slope.min() >= lower - 1e-12 and slope.max() <= upper + 1e-12
    # Uniform in [lower, upper]: the mean and the spread of ~10000 draws.
    assert abs(slope.mean() - (lower + upper) / 2) < 0.01
    assert abs(slope.std() - (upper - lower) / np.sqrt(12)) < 0.01
    if upper > lower:
        assert len(np.unique(slope)) > 1000
    out.backward(vt.ones_like(out))
    g = to_np(x.grad)
    np.testing.assert_allclose(g[neg], slope, rtol=1e-10)
    np.testing.assert_array_equal(g[pos], 1.0)
    # The module draws in training mode and is deterministic in eval.
    mod = ML.RReLU(lower, upper)
    o1, o2 = to_np(mod(x)), to_np(mod(x))
    assert upper == lower or not np.array_equal(o1, o2)
    mod.eval()
    np.testing.assert_allclose(to_np(mod(x))[neg], a[neg] * (lower + upper) / 2, rtol=1e-12)


# ---- inplace ----
INPLACE = [
    (lambda F, x: F.celu(x, 0.75, inplace=True), lambda F, x: F.celu(x, 0.75)),
    (lambda F, x: F.celu_(x, 0.75), lambda F, x: F.celu(x, 0.75)),
    (lambda F, x: F.selu(x, inplace=True), lambda F, x: F.selu(x)),
    (lambda F, x: F.selu_(x), lambda F, x: F.selu(x)),
    (lambda F, x: F.threshold(x, 0.1, 2.0, inplace=True), lambda F, x: F.threshold(x, 0.1, 2.0)),
    (lambda F, x: F.threshold_(x, 0.1, 2.0), lambda F, x: F.threshold(x, 0.1, 2.0)),
    (lambda F, x: F.rrelu(x, 0.1, 0.4, False, inplace=True), lambda F, x: F.rrelu(x, 0.1, 0.4, False)),
    (lambda F, x: F.rrelu_(x, 0.1, 0.4, False), lambda F, x: F.rrelu(x, 0.1, 0.4, False)),
]


@pytest.mark.parametrize("inplace_fn,ref_fn", INPLACE)
def test_inplace_returns_input(inplace_fn, ref_fn):
    a = np.random.default_rng(0).standard_normal((3, 4))
    x = vt.from_numpy(a.copy())
    out = inplace_fn(FM, x)
    assert out is x
    np.testing.assert_allclose(to_np(x), ref_fn(torch.nn.functional, torch.from_numpy(a)).numpy(), rtol=1e-12)
    # On a non-leaf under autograd the gradient is the out-of-place one.
    check_grads(lambda m, x: inplace_fn(fn_(m), x * 1.0), leaves([(3, 4)]))


@pytest.mark.parametrize("mod", [lambda nn: nn.CELU(0.5, True), lambda nn: nn.SELU(True),
                                 lambda nn: nn.Threshold(0.0, -1.0, True), lambda nn: nn.RReLU(inplace=True).eval()])
def test_inplace_modules(mod):
    x = vt.randn(3, 4, dtype=vt.float64)
    a = to_np(x).copy()
    assert mod(ML)(x) is x
    np.testing.assert_allclose(to_np(x), mod(torch.nn)(torch.from_numpy(a)).numpy(), rtol=1e-12)


def test_rrelu_training_inplace():
    x = vt.randn(50, 40, dtype=vt.float64)
    a = to_np(x).copy()
    assert FM.rrelu(x, training=True, inplace=True) is x
    neg = a < 0
    slope = to_np(x)[neg] / a[neg]
    assert slope.min() >= 1 / 8 - 1e-12 and slope.max() <= 1 / 3 + 1e-12


def test_inplace_on_leaf_requiring_grad_raises():
    x = vt.randn(3, dtype=vt.float64).requires_grad_()
    with pytest.raises(RuntimeError):
        FM.celu(x, inplace=True)


# ---- gumbel_softmax ----
def test_gumbel_softmax_soft_and_hard_straight_through():
    logits_np = np.random.default_rng(0).standard_normal((6, 5))
    for tau, dim in [(1.0, -1), (0.5, 0), (2.0, 1)]:
        lv = vt.from_numpy(logits_np.copy()).requires_grad_()
        vt.manual_seed(7)
        soft = FM.gumbel_softmax(lv, tau=tau, dim=dim)
        s = to_np(soft)
        np.testing.assert_allclose(s.sum(axis=dim), 1.0, rtol=1e-12)
        assert (s > 0).all()
        g = np.random.default_rng(1).standard_normal(s.shape)
        soft.backward(vt.from_numpy(g))
        g_soft = to_np(lv.grad).copy()
        lv2 = vt.from_numpy(logits_np.copy()).requires_grad_()
        vt.manual_seed(7)  # the same noise: the hard sample is the one-hot of the soft one's argmax
        hard = FM.gumbel_softmax(lv2, tau=tau, hard=True, dim=dim)
        h = to_np(hard)
        assert set(np.unique(h)) <= {0.0, 1.0}
        np.testing.assert_array_equal(h.sum(axis=dim), 1.0)
        np.testing.assert_array_equal(np.argmax(h, axis=dim), np.argmax(s, axis=dim))
        hard.backward(vt.from_numpy(g))
        np.testing.assert_allclose(to_np(lv2.grad), g_soft, rtol=1e-10, atol=1e-12)
        # The soft sample's gradient is softmax's Jacobian at s, over tau.
        gs = np.moveaxis(g, dim, -1)
        ss = np.moveaxis(s, dim, -1)
        ref = ss * (gs - (gs * ss).sum(-1, keepdims=True)) / tau
        np.testing.assert_allclose(g_soft, np.moveaxis(ref, -1, dim), rtol=1e-8, atol=1e-12)


def test_gumbel_softmax_argmax_distribution():
    # Gumbel-max: argmax(logits + g) is distributed as softmax(logits), whatever tau.
    logits = np.array([1.0, 0.0, -1.0, 0.5, 2.0])
    p = np.exp(logits) / np.exp(logits).sum()
    n = 40000
    vt.manual_seed(3)
    for tau in (1.0, 0.3):
        h = to_np(FM.gumbel_softmax(vt.from_numpy(np.tile(logits, (n, 1))), tau=tau, hard=True))
        freq = h.mean(0)
        assert np.abs(freq - p).max() < 0.015, (freq, p)
    # A small tau makes the soft sample nearly one-hot; a large one nearly uniform.
    s = to_np(FM.gumbel_softmax(vt.from_numpy(np.tile(logits, (2000, 1))), tau=0.01))
    assert np.median(s.max(1)) > 0.99
    s = to_np(FM.gumbel_softmax(vt.from_numpy(np.tile(logits, (2000, 1))), tau=1000.0))
    assert np.abs(s - 0.2).max() < 0.05


# ---- padding modules ----
PADS = [
    ("ZeroPad1d", (2,), (3, 5)), ("ZeroPad1d", ((1, 3),), (2, 3, 4)), ("ZeroPad2d", (1,), (2, 3, 4)),
    ("ZeroPad2d", ((1, 0, 2, -1),), (2, 2, 3, 4)), ("ZeroPad3d", (1,), (1, 2, 2, 3, 2)),
    ("ConstantPad1d", (2, 3.5), (3, 5)), ("ConstantPad2d", ((0, 1, 2, 3), -1.0), (2, 3, 4)),
    ("ConstantPad3d", (1, 2.0), (2, 2, 3, 2)), ("ConstantPad2d", (1, 0.5), (2, 3, 3, 4, 2)),
    ("ReflectionPad1d", (2,), (2, 3, 5)), ("ReflectionPad1d", ((3, 1),), (3, 5)),
    ("ReflectionPad2d", (1,), (2, 3, 4)), ("ReflectionPad2d", ((2, 0, 1, 2),), (1, 2, 3, 4)),
    ("ReflectionPad3d", (1,), (1, 2, 2, 3, 4)), ("ReflectionPad3d", ((1, 0, 0, 1, 1, 1),), (2, 3, 3, 2)),
    ("ReplicationPad1d", (3,), (2, 3, 2)), ("ReplicationPad2d", ((2, 0, 1, 3),), (2, 3, 4)),
    ("ReplicationPad3d", (1,), (1, 2, 2, 3, 2)),
    ("CircularPad1d", (2,), (2, 3, 5)), ("CircularPad1d", ((1, 3),), (3, 4)),
    ("CircularPad2d", (1,), (1, 2, 3, 4)), ("CircularPad2d", ((2, 1, 0, 2),), (2, 3, 4)),
    ("CircularPad3d", (1,), (1, 2, 2, 3, 2)),
]


@pytest.mark.parametrize("name,args,shape", PADS)
def test_padding_modules(name, args, shape):
    (p,) = leaves([shape])
    check_grads(lambda m, x: getattr(nn_(m), name)(*args)(x), [p])
    assert repr(getattr(ML, name)(*args)) == repr(getattr(torch.nn, name)(*args))
    assert getattr(ML, name)(*args).padding == getattr(torch.nn, name)(*args).padding


def test_padding_errors():
    _err(lambda: torch.nn.CircularPad2d(1)(torch.zeros(3, 3)), lambda: ML.CircularPad2d(1)(vt.zeros(3, 3)),
         ValueError)
    _err(lambda: torch.nn.CircularPad1d(1)(torch.zeros(1, 2, 3, 3)),
         lambda: ML.CircularPad1d(1)(vt.zeros(1, 2, 3, 3)), ValueError)
    with pytest.raises(RuntimeError, match="Padding size should be less than"):
        ML.ReflectionPad1d(3)(vt.zeros(2, 3))
    with pytest.raises(RuntimeError):
        torch.nn.ReflectionPad1d(3)(torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="wrapping around more than once"):
        ML.CircularPad1d(4)(vt.zeros(2, 3))
    with pytest.raises(NotImplementedError, match="Padding size 4 is not supported for 2D"):
        ML.ReflectionPad2d(1)(vt.zeros(3, 3))
    with pytest.raises(NotImplementedError):
        torch.nn.ReflectionPad2d(1)(torch.zeros(3, 3))


# ---- modules: repr, state_dict ----
MODULES = [
    lambda nn: nn.GLU(), lambda nn: nn.GLU(1), lambda nn: nn.Softsign(), lambda nn: nn.Tanhshrink(),
    lambda nn: nn.Softmin(1), lambda nn: nn.Softmin(), lambda nn: nn.LogSoftmax(), lambda nn: nn.LogSoftmax(-1),
    lambda nn: nn.Softmax2d(), lambda nn: nn.CELU(), lambda nn: nn.CELU(2.0, True), lambda nn: nn.SELU(),
    lambda nn: nn.SELU(inplace=True), lambda nn: nn.Threshold(0.1, 20), lambda nn: nn.Threshold(0.1, 2.0, True),
    lambda nn: nn.Hardshrink(), lambda nn: nn.Hardshrink(1.5), lambda nn: nn.Softshrink(), lambda nn: nn.Softshrink(2),
    lambda nn: nn.RReLU(), lambda nn: nn.RReLU(0.1, 0.3, True), lambda nn: nn.LocalResponseNorm(2),
    lambda nn: nn.LocalResponseNorm(3, 0.1, 0.5, 2.0), lambda nn: nn.Bilinear(2, 3, 4),
    lambda nn: nn.Bilinear(2, 3, 4, bias=False), lambda nn: nn.ChannelShuffle(2), lambda nn: nn.Fold(3, 2),
    lambda nn: nn.Fold((4, 5), (2, 3), 1, (1, 0), 2), lambda nn: nn.Unfold(2), lambda nn: nn.Unfold((2, 3), 2, 1, 1),
]


@pytest.mark.parametrize("make", MODULES)
def test_module_repr_and_state_dict(make):
    mv, mt = make(ML), make(torch.nn)
    assert repr(mv) == repr(mt)
    sv, st = mv.state_dict(), mt.state_dict()
    assert list(sv.keys()) == list(st.keys())
    for k in st:
        assert tuple(sv[k].shape) == tuple(st[k].shape)


def test_bilinear_module_init_and_torch_weights():
    m = ML.Bilinear(16, 5, 7)
    w, b = to_np(m.weight), to_np(m.bias)
    assert w.shape == (7, 16, 5) and b.shape == (7,)
    bound = 1 / np.sqrt(16)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.8 * bound and abs(w.std() - bound / np.sqrt(3)) < 0.03
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert ML.Bilinear(2, 3, 4, dtype=vt.float64).weight.dtype == vt.float64
    # torch's weights loaded: the same outputs and parameter gradients.
    tm = torch.nn.Bilinear(3, 4, 2).double()
    vm = ML.Bilinear(3, 4, 2, dtype=vt.float64)
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    (x1, t1), (x2, t2) = leaves([(5, 3), (5, 4)])
    ov, ot = vm(x1, x2), tm(t1, t2)
    np.testing.assert_allclose(to_np(ov), ot.detach().numpy(), rtol=1e-12)
    ov.sum().backward()
    ot.sum().backward()
    for pv, pt in [(vm.weight, tm.weight), (vm.bias, tm.bias), (x1, t1), (x2, t2)]:
        np.testing.assert_allclose(to_np(pv.grad), pt.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("args,shape", [((3, 2), (2, 4, 4)), (((4, 5), (2, 3), 1, (1, 0), 2), (1, 6, 6)),
                                        (((5, 5), 2, 2, 1, 1), (12, 25))])
def test_fold_module(args, shape):
    check_grads(lambda m, x: nn_(m).Fold(*args)(x), leaves([shape]))


@pytest.mark.parametrize("args,shape", [((2,), (2, 3, 4, 4)), (((2, 3), 2, 1, 1), (1, 2, 5, 6)),
                                        ((3, 1, 1, 2), (2, 5, 5))])
def test_unfold_module(args, shape):
    check_grads(lambda m, x: nn_(m).Unfold(*args)(x), leaves([shape]))


@pytest.mark.parametrize("name", ["GLU", "Softsign", "Tanhshrink", "CELU", "SELU", "Hardshrink", "Softshrink"])
def test_simple_modules_forward(name):
    check_grads(lambda m, x: getattr(nn_(m), name)()(x), leaves([(3, 4)]))


def test_threshold_module_forward():
    check_grads(lambda m, x: nn_(m).Threshold(0.3, -2.0)(x), leaves([(3, 4)]))


# ---- error cases ----
def test_errors_match_torch():
    tF, x, t = torch.nn.functional, vt.zeros(2, 3), torch.zeros(2, 3)
    _err(lambda: tF.glu(t, 1), lambda: FM.glu(x, 1))
    _err(lambda: tF.glu(torch.tensor(1.0)), lambda: FM.glu(vt.tensor(1.0)))
    _err(lambda: tF.softshrink(t, -1.0), lambda: FM.softshrink(x, -1.0))
    _err(lambda: tF.softshrink(t, -0.25), lambda: FM.softshrink(x, -0.25))
    _err(lambda: tF.celu(t, 0.0), lambda: FM.celu(x, 0.0))
    _err(lambda: tF.rrelu(t, 0.5, 0.1, training=True), lambda: FM.rrelu(x, 0.5, 0.1, training=True))
    _err(lambda: tF.rrelu(t, 0.5, 0.1), lambda: FM.rrelu(x, 0.5, 0.1))
    _err(lambda: tF.local_response_norm(torch.zeros(3, 4), 2), lambda: FM.local_response_norm(vt.zeros(3, 4), 2),
         ValueError)
    _err(lambda: torch.nn.Softmax2d()(torch.zeros(3, 3)), lambda: ML.Softmax2d()(vt.zeros(3, 3)), ValueError)
    for shape, g in [((2, 6, 3), 4), ((2, 6, 3), 0), ((2, 6, 3), -2), ((2,), 2), ((2, 6), 3)]:
        _err(lambda: tF.channel_shuffle(torch.zeros(shape), g), lambda: FM.channel_shuffle(vt.zeros(shape), g))
    for s1, s2, sw, sb in [((2, 3), (3, 4), (5, 3, 4), None), ((2, 3), (2, 4), (5, 3, 3), None),
                           ((2, 3), (2, 4), (5, 2, 4), None), ((2, 3), (2, 4), (5, 3, 4), (4,)),
                           ((2, 3), (2, 2, 4), (5, 3, 4), None), ((4, 2, 3), (4, 3, 4), (5, 3, 4), None)]:
        ta = [torch.zeros(s) for s in (s1, s2, sw)] + ([torch.zeros(sb)] if sb else [None])
        va = [vt.zeros(s) for s in (s1, s2, sw)] + ([vt.zeros(sb)] if sb else [None])
        _err(lambda: tF.bilinear(*ta), lambda: FM.bilinear(*va))


def test_glu_dim_out_of_range_and_size_checks():
    _err(lambda: torch.nn.functional.glu(torch.zeros(2, 4), 3), lambda: FM.glu(vt.zeros(2, 4), 3), IndexError)
    _err(lambda: torch.nn.functional.glu(torch.zeros(2, 4), -3), lambda: FM.glu(vt.zeros(2, 4), -3), IndexError)
    with pytest.raises(RuntimeError, match="size should be greater than zero"):
        FM.local_response_norm(vt.ones(2, 3, 4), 0)
    with pytest.raises(RuntimeError):
        torch.nn.functional.local_response_norm(torch.ones(2, 3, 4), 0)


@pytest.mark.parametrize("name,args", [("glu", ()), ("softmin", (0,)), ("celu", ()), ("selu", ()), ("hardshrink", ()),
                                       ("softshrink", ()), ("rrelu", ()), ("rrelu", (0.1, 0.3, True))])
def test_integer_inputs_refused_like_torch(name, args):
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        getattr(torch.nn.functional, name)(torch.arange(-3, 3), *args)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        getattr(FM, name)(vt.arange(-3, 3), *args)


@pytest.mark.parametrize("name,args", [("softsign", ()), ("tanhshrink", ()), ("threshold", (0, 7))])
def test_integer_inputs_accepted_like_torch(name, args):
    r = getattr(torch.nn.functional, name)(torch.arange(-3, 3), *args)
    o = getattr(FM, name)(vt.arange(-3, 3), *args)
    assert str(o.dtype).split(".")[-1] == str(r.dtype).split(".")[-1]
    np.testing.assert_allclose(to_np(o), r.numpy(), rtol=1e-6)


# ---- pad_sequence ----
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("value", [0.0, -1.5])
def test_pad_sequence(batch_first, side, value):
    pairs = leaves([(3, 4), (5, 4), (1, 4), (0, 4)])
    check_grads(lambda m, *s: (vrnn if m is vt else torch.nn.utils.rnn).pad_sequence(
        list(s), batch_first=batch_first, padding_value=value, padding_side=side), pairs)
    pairs = leaves([(3,), (6,)])
    check_grads(lambda m, *s: (vrnn if m is vt else torch.nn.utils.rnn).pad_sequence(
        s, batch_first, value, side), pairs)


def test_pad_sequence_tensor_dtype_and_errors():
    a = np.random.default_rng(0).standard_normal((3, 4))
    o = vrnn.pad_sequence(vt.from_numpy(a))
    np.testing.assert_array_equal(to_np(o), torch.nn.utils.rnn.pad_sequence(torch.from_numpy(a)).numpy())
    o = vrnn.pad_sequence([vt.ones(2), vt.ones(3, dtype=vt.float64)])
    assert o.dtype == vt.float32
    _err(lambda: torch.nn.utils.rnn.pad_sequence([torch.ones(2)], padding_side="middle"),
         lambda: vrnn.pad_sequence([vt.ones(2)], padding_side="middle"))
    _err(lambda: torch.nn.utils.rnn.pad_sequence([]), lambda: vrnn.pad_sequence([]))
    with pytest.raises(RuntimeError, match="trailing shape"):
        vrnn.pad_sequence([vt.ones(2, 3), vt.ones(3, 4)])


# ---- the public names ----
def test_exports():
    F, nn = vt.nn.functional, vt.nn
    for name in ["glu", "softsign", "tanhshrink", "softmin", "gumbel_softmax", "celu", "celu_", "selu", "selu_",
                 "threshold", "threshold_", "hardshrink", "softshrink", "rrelu", "rrelu_", "local_response_norm",
                 "bilinear", "channel_shuffle", "native_channel_shuffle"]:
        assert getattr(F, name) is getattr(FM, name), name
    for name in ["celu", "celu_", "selu", "selu_", "threshold", "threshold_", "hardshrink", "rrelu", "rrelu_",
                 "bilinear", "channel_shuffle", "native_channel_shuffle"]:
        assert hasattr(torch, name)
        assert getattr(vt, name) is getattr(FM, name), name
    for name in ["GLU", "Softsign", "Tanhshrink", "Softmin", "LogSoftmax", "Softmax2d", "CELU", "SELU", "Threshold",
                 "Hardshrink", "Softshrink", "RReLU", "LocalResponseNorm", "Bilinear", "ChannelShuffle", "Fold",
                 "Unfold"] + [f"{k}Pad{d}d" for k in ("Zero", "Constant", "Reflection", "Replication", "Circular")
                              for d in (1, 2, 3)]:
        assert getattr(nn, name) is getattr(ML, name), name
    assert nn.utils.rnn.pad_sequence is vrnn.pad_sequence
