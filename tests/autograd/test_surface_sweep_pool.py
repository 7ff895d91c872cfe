"""The pools' *_with_indices names, F.max_unpool1d/2d/3d and nn.MaxUnpool*, adaptive_max_pool3d and
nn.AdaptiveMaxPool3d, the deprecated upsample aliases and UpsamplingNearest2d/UpsamplingBilinear2d, pdist, the
in-place elu_/hardtanh_/leaky_relu_, feature_alpha_dropout / nn.FeatureAlphaDropout and
nn.AdaptiveLogSoftmaxWithLoss against torch: values, indices, float64 gradients, reprs, state_dicts and errors."""
import warnings

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from ag_helpers import check_grads, leaves
from vibetensor.torch.nn import adaptive_softmax as AS
from vibetensor.torch.nn import functional_sweep as FS
from vibetensor.torch.nn import pool_indices as PI
from vibetensor.torch.nn import unpool as UP

TF = torch.nn.functional


def V(t):
    return vt.from_numpy(t.detach().numpy().copy())


def N(t):
    return t.detach().numpy()


def raises_like(vfn, tfn, exc, match):
    with pytest.raises(exc, match=match):
        tfn()
    with pytest.raises(exc, match=match):
        vfn()


# ---- *_with_indices ----
@pytest.mark.parametrize("name,shape,args", [
    ("max_pool1d_with_indices", (2, 3, 9), (3, 2, 1)),
    ("max_pool1d_with_indices", (3, 8), (2,)),
    ("max_pool2d_with_indices", (2, 3, 7, 6), (3, 2, 1, 1, True)),
    ("max_pool3d_with_indices", (1, 2, 5, 4, 6), ((2, 2, 3), None, (1, 0, 1))),
    ("adaptive_max_pool1d_with_indices", (2, 3, 9), (4,)),
    ("adaptive_max_pool2d_with_indices", (2, 3, 7, 5), ((3, None),)),
    ("adaptive_max_pool3d_with_indices", (2, 3, 5, 6, 7), ((2, None, 3),)),
    ("adaptive_max_pool3d_with_indices", (3, 4, 5, 3), (2,)),
])
def test_with_indices_match_torch(name, shape, args):
    x = torch.randn(*shape, dtype=torch.float64)
    to, ti = getattr(TF, name)(x, *args)
    vo, vi = getattr(PI, name)(V(x), *args)
    np.testing.assert_array_equal(N(vo), N(to))
    np.testing.assert_array_equal(N(vi), N(ti))
    assert vi.dtype == vt.int64
    (v, t), = leaves([shape])
    check_grads(lambda m, a: (getattr(PI, name) if m is vt else getattr(TF, name))(a, *args)[0], [(v, t)])


@pytest.mark.parametrize("os", [1, (2, None, 3), (5, 6, 7), (3, 4, 2), (None, 1, None)])
def test_adaptive_max_pool3d_and_module(os):
    x = torch.randn(2, 3, 5, 6, 7, dtype=torch.float64)
    np.testing.assert_array_equal(N(PI.adaptive_max_pool3d(V(x), os)), N(TF.adaptive_max_pool3d(x, os)))
    tm, vm = torch.nn.AdaptiveMaxPool3d(os, return_indices=True), PI.AdaptiveMaxPool3d(os, return_indices=True)
    assert repr(vm) == repr(tm)
    (vo, vi), (to, ti) = vm(V(x)), tm(x)
    np.testing.assert_array_equal(N(vo), N(to))
    np.testing.assert_array_equal(N(vi), N(ti))
    check_grads(lambda m, a: (PI.adaptive_max_pool3d if m is vt else TF.adaptive_max_pool3d)(a, os),
                leaves([(2, 3, 5, 6, 7)]))


def test_adaptive_max_pool3d_errors():
    for x, os, match in (((3, 4, 5), 2, r"Expected 4D or 5D tensor, but got: \[3, 4, 5\]"),
                         ((1, 2, 0, 4, 5), 2, "dimension 2 being empty"),
                         ((1, 2, 3, 4, 5), (2, 2), "output_size.size\\(\\) must be 3")):
        raises_like(lambda: PI.adaptive_max_pool3d(vt.randn(*x), os),
                    lambda: TF.adaptive_max_pool3d(torch.randn(*x), os), RuntimeError, match)


# ---- max_unpool ----
UNPOOL = [
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1), None),
    (1, (3, 8), dict(kernel_size=2), None),
    (1, (2, 3, 9), dict(kernel_size=3, stride=2), (2, 3, 10)),
    (2, (2, 3, 6, 8), dict(kernel_size=2), None),
    (2, (2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1), (8, 8)),
    (2, (2, 3, 7, 7), dict(kernel_size=3, stride=2, padding=1), None),
    (2, (3, 4, 5), dict(kernel_size=(2, 1), stride=(2, 1)), None),
    (3, (1, 2, 4, 6, 4), dict(kernel_size=2), (5, 7, 5)),
    (3, (2, 4, 5, 3), dict(kernel_size=(1, 2, 3), stride=(2, 1, 1), padding=(0, 1, 1)), None),
]


@pytest.mark.parametrize("n,shape,kw,output_size", UNPOOL)
def test_max_unpool_matches_torch(n, shape, kw, output_size):
    x = torch.randn(*shape, dtype=torch.float64)
    pool = getattr(TF, f"max_pool{n}d")
    out, idx = pool(x, return_indices=True, **kw)
    t = getattr(TF, f"max_unpool{n}d")(out, idx, output_size=output_size, **kw)
    v = getattr(UP, f"max_unpool{n}d")(V(out), V(idx), output_size=output_size, **kw)
    assert tuple(v.shape) == tuple(t.shape)
    np.testing.assert_array_equal(N(v), N(t))
    (vo, to), = leaves([tuple(out.shape)])
    check_grads(lambda m, a: (getattr(UP, f"max_unpool{n}d") if m is vt else getattr(TF, f"max_unpool{n}d"))(
        a, V(idx) if m is vt else idx, output_size=output_size, **kw), [(vo, to)])
    tm = getattr(torch.nn, f"MaxUnpool{n}d")(**kw)
    vm = getattr(UP, f"MaxUnpool{n}d")(**kw)
    assert repr(vm) == repr(tm) and list(vm.state_dict()) == []
    np.testing.assert_array_equal(N(vm(V(out), V(idx), output_size)), N(tm(out, idx, output_size)))


def test_max_unpool_errors():
    x = torch.randn(1, 2, 4, 4)
    o, i = TF.max_pool2d(x, 2, return_indices=True)
    vo, vi = V(o), V(i)
    cases = [
        (lambda m, a, b: m(a, b, 2, output_size=(6, 6)), ValueError,
         r'invalid output_size "\(6, 6\)" \(dim 0 must be between 2 and 6\)'),
        (lambda m, a, b: m(a, b, 2, output_size=[6, 5]), ValueError, r'invalid output_size "\[6, 5\]"'),
        (lambda m, a, b: m(a, b, 2, output_size=(5,)), ValueError,
         "output_size should be a sequence containing 2 or 4 elements, but it has a length of '1'"),
        (lambda m, a, b: m(a, b, 2, output_size=(3, 3)), RuntimeError,
         r"Found an invalid max index: \d+ \(output volumes are of size 3x3\)"),
        (lambda m, a, b: m(a, b.float(), 2), RuntimeError, "elements in indices should be type int64 but got: Float"),
        (lambda m, a, b: m(a, b[:, :1], 2), RuntimeError, "Expected shape of indices to be same as that of the input"),
        (lambda m, a, b: m(a, b + 100, 2), RuntimeError, r"Found an invalid max index: 1\d\d \(output volumes"),
        (lambda m, a, b: m(a, b - 100, 2), RuntimeError, r"Found an invalid max index: -\d\d \(output volumes"),
        (lambda m, a, b: m(a[0, 0], b[0, 0], 2), RuntimeError,
         "Input to max_unpooling2d should be a 3d or 4d Tensor, but got a tensor with 2 dimensions."),
        (lambda m, a, b: m(a.int(), b, 2), NotImplementedError, "\"max_unpool2d\" not implemented for 'Int'"),
    ]
    for f, exc, match in cases:
        raises_like(lambda: f(UP.max_unpool2d, vo, vi), lambda: f(TF.max_unpool2d, o, i), exc, match)
    # which bad index torch names depends on its threads (it scans planes in parallel); vibetensor names the last
    # one in memory order, which is torch's answer when one thread scans everything
    bad = vi.clone()
    bad[0, 1, 1, 0] = 77
    bad[0, 0, 0, 1] = -5
    with pytest.raises(RuntimeError, match=r"Found an invalid max index: 77 \(output volumes are of size 4x4\)"):
        UP.max_unpool2d(vo, bad, 2)
    raises_like(lambda: UP.max_unpool1d(vt.randn(2, 3), vt.full((2, 3), 9, dtype=vt.int64), 2),
                lambda: TF.max_unpool1d(torch.randn(2, 3), torch.full((2, 3), 9), 2), RuntimeError,
                r"Found an invalid max index: 9 \(output volumes are of size 6x1\)")
    raises_like(lambda: UP.max_unpool1d(vt.randn(2, 0), vt.zeros(2, 0, dtype=vt.int64), 2),
                lambda: TF.max_unpool1d(torch.randn(2, 0), torch.zeros(2, 0, dtype=torch.long), 2), RuntimeError,
                r"but got \[2, 0, 1\] with dimension 1 being empty")
    raises_like(lambda: UP.max_unpool3d(vt.randn(2, 1, 1), vt.zeros(2, 1, 1, dtype=vt.int64), 2),
                lambda: TF.max_unpool3d(torch.randn(2, 1, 1), torch.zeros(2, 1, 1, dtype=torch.long), 2),
                RuntimeError, "should be a 4d or 5d Tensor, but got a tensor with 3 dimensions")
    empty = UP.max_unpool2d(vt.randn(0, 3, 3, 3), vt.zeros(0, 3, 3, 3, dtype=vt.int64), 2)
    assert tuple(empty.shape) == tuple(TF.max_unpool2d(torch.randn(0, 3, 3, 3),
                                                       torch.zeros(0, 3, 3, 3, dtype=torch.long), 2).shape)


# ---- upsample aliases and modules ----
@pytest.mark.parametrize("name,kw", [
    ("upsample", dict(scale_factor=2)), ("upsample", dict(size=(5, 4), mode="bilinear", align_corners=False)),
    ("upsample", dict(size=7, mode="bilinear", align_corners=True)),
    ("upsample_nearest", dict(scale_factor=(2, 3))), ("upsample_nearest", dict(size=5)),
    ("upsample_bilinear", dict(size=(5, 6))), ("upsample_bilinear", dict(scale_factor=1.5)),
])
def test_upsample_aliases(name, kw):
    for mod in (FS, TF):
        with pytest.warns(UserWarning, match=f"`nn.functional.{name}` is deprecated. Use "
                                             "`nn.functional.interpolate` instead."):
            getattr(mod, name)(V(torch.ones(1, 1, 2, 2)) if mod is FS else torch.ones(1, 1, 2, 2), **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_grads(lambda m, a: getattr(FS if m is vt else TF, name)(a, **kw), leaves([(2, 3, 4, 3)]))


@pytest.mark.parametrize("cls,kw", [("UpsamplingNearest2d", dict(scale_factor=2)),
                                     ("UpsamplingNearest2d", dict(size=(5, 3))),
                                     ("UpsamplingBilinear2d", dict(size=5)),
                                     ("UpsamplingBilinear2d", dict(scale_factor=(2, 1.5)))])
def test_upsampling_modules(cls, kw):
    tm, vm = getattr(torch.nn, cls)(**kw), getattr(FS, cls)(**kw)
    assert repr(vm) == repr(tm) and vm.align_corners == tm.align_corners and vm.mode == tm.mode
    check_grads(lambda m, a: (vm if m is vt else tm)(a), leaves([(2, 3, 4, 3)]))


# ---- pdist ----
@pytest.mark.parametrize("p", [2, 1, 3, 0.5, float("inf"), 1.5])
@pytest.mark.parametrize("shape", [(5, 3), (2, 1), (4, 7)])
def test_pdist(p, shape):
    check_grads(lambda m, a: (FS.pdist if m is vt else TF.pdist)(a, p), leaves([shape]))


def test_pdist_zero_p_empty_and_errors():
    x = torch.tensor([[1., 2, 3], [1, 2, 3], [0, 1, 2]], dtype=torch.float64)
    np.testing.assert_array_equal(N(FS.pdist(V(x), 0)), N(TF.pdist(x, 0)))
    for p in (2, 1, float("inf")):  # identical rows (zero distances); for inf also ties for the max
        ties = torch.cat([x, torch.tensor([[5., 5, 5.5]], dtype=torch.float64)])
        check_grads(lambda m, a: (FS.pdist if m is vt else TF.pdist)(a, p), [(V(ties).requires_grad_(),
                                                                            ties.clone().requires_grad_())])
    for shape in ((1, 3), (0, 3)):
        assert tuple(FS.pdist(vt.randn(*shape)).shape) == tuple(TF.pdist(torch.randn(*shape)).shape) == (0,)
    raises_like(lambda: FS.pdist(vt.randn(3)), lambda: TF.pdist(torch.randn(3)), RuntimeError,
                "pdist only supports 2D tensors, got: 1D")
    raises_like(lambda: FS.pdist(vt.randn(4, 3), p=-1), lambda: TF.pdist(torch.randn(4, 3), p=-1), RuntimeError,
                "pdist only supports non-negative p values")
    raises_like(lambda: FS.pdist(vt.ones(4, 3, dtype=vt.int32)), lambda: TF.pdist(torch.ones(4, 3).int()),
                RuntimeError, "pdist only supports floating-point dtypes")


# ---- in-place activations ----
@pytest.mark.parametrize("name,args", [("elu_", ()), ("elu_", (0.5,)), ("hardtanh_", ()), ("hardtanh_", (-0.3, 2.0)),
                                       ("leaky_relu_", ()), ("leaky_relu_", (0.2,))])
def test_inplace_activations(name, args):
    x = torch.randn(3, 5, dtype=torch.float64)
    vx = V(x)
    vr, tr = getattr(FS, name)(vx, *args), getattr(TF, name)(x, *args)
    assert vr is vx and tr is x
    np.testing.assert_array_equal(N(vx), N(x))

    def fn(m, a):
        return getattr(FS if m is vt else TF, name)(a * 1.0, *args)
    check_grads(fn, leaves([(4, 3)]))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        getattr(TF, name)(torch.randn(2, requires_grad=True), *args)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(FS, name)(vt.randn(2, requires_grad=True), *args)


def test_hardtanh_inplace_integer():
    x = torch.arange(-3, 3)
    vx = vt.arange(-3, 3)
    np.testing.assert_array_equal(N(FS.hardtanh_(vx, -1, 1)), N(TF.hardtanh_(x, -1, 1)))
    np.testing.assert_array_equal(N(vx), N(x))


# ---- feature_alpha_dropout ----
@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (6, 5), (2, 3, 4)])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_feature_alpha_dropout_structure(shape, p):
    x = vt.randn(*shape, dtype=vt.float64)
    out = FS.feature_alpha_dropout(x, p, True)
    a = 1.0 / ((1.7580993408473766 ** 2 * p + 1.0) * (1.0 - p)) ** 0.5
    b = 1.7580993408473766 * a * p
    xo, oo = N(x).reshape(shape[0], shape[1], -1), N(out).reshape(shape[0], shape[1], -1)
    kept = np.isclose(oo, a * xo + b, rtol=1e-12).all(axis=2)
    dropped = np.isclose(oo, -1.7580993408473766 * a + b, rtol=1e-12).all(axis=2)
    assert (kept | dropped).all()  # one draw per feature map
    # the dropped value is torch's
    t = TF.feature_alpha_dropout(torch.randn(200, 3, 2, dtype=torch.float64), p, True)
    assert np.isclose(N(t).min(axis=2), -1.7580993408473766 * a + b).any()
    # gradient: a on kept maps, 0 on dropped ones
    xg = vt.randn(*shape, dtype=vt.float64, requires_grad=True)
    o = FS.feature_alpha_dropout(xg, p, True)
    o.sum().backward()
    g = N(xg.grad).reshape(shape[0], shape[1], -1)
    kept = ~np.isclose(N(o).reshape(g.shape), -1.7580993408473766 * a + b, rtol=1e-12).all(axis=2)
    np.testing.assert_allclose(g, np.where(kept[..., None], a, 0.0) * np.ones_like(g))


def test_feature_alpha_dropout_rate_and_edges():
    x = vt.randn(4000, 2, dtype=vt.float64)
    out = N(FS.feature_alpha_dropout(x, 0.3, True))
    a = 1.0 / ((1.7580993408473766 ** 2 * 0.3 + 1.0) * 0.7) ** 0.5
    assert abs(np.isclose(out, 1.7580993408473766 * a * (0.3 - 1)).mean() - 0.3) < 0.05
    y = vt.randn(3, 4)
    assert FS.feature_alpha_dropout(y, 0.5, False) is y and FS.feature_alpha_dropout(y, 0.0, True) is y
    np.testing.assert_array_equal(N(FS.feature_alpha_dropout(y, 1.0, True)), N(TF.feature_alpha_dropout(
        torch.from_numpy(N(y).copy()), 1.0, True)))
    z = vt.randn(3, 4)
    assert FS.feature_alpha_dropout(z, 0.5, True, inplace=True) is z
    raises_like(lambda: FS.feature_alpha_dropout(vt.randn(3), 0.5, True),
                lambda: TF.feature_alpha_dropout(torch.randn(3), 0.5, True), RuntimeError,
                "Feature dropout requires at least 2 dimensions in the input")
    raises_like(lambda: FS.feature_alpha_dropout(vt.randn(3, 4), 1.5, True),
                lambda: TF.feature_alpha_dropout(torch.randn(3, 4), 1.5, True), ValueError,
                "dropout probability has to be between 0 and 1, but got 1.5")
    raises_like(lambda: FS.FeatureAlphaDropout(-0.1), lambda: torch.nn.FeatureAlphaDropout(-0.1), ValueError,
                "dropout probability has to be between 0 and 1")
    tm, vm = torch.nn.FeatureAlphaDropout(0.2, inplace=True), FS.FeatureAlphaDropout(0.2, inplace=True)
    assert repr(vm) == repr(tm) and repr(FS.FeatureAlphaDropout()) == repr(torch.nn.FeatureAlphaDropout())
    w = vt.randn(2, 3)
    np.testing.assert_array_equal(N(vm.eval()(w)), N(w))


# ---- AdaptiveLogSoftmaxWithLoss ----
def _pair_asm(*args, **kw):
    tm = torch.nn.AdaptiveLogSoftmaxWithLoss(*args, **kw).double()
    vm = AS.AdaptiveLogSoftmaxWithLoss(*args, dtype=vt.float64, **kw)
    assert repr(vm) == repr(tm)
    assert [(k, tuple(v.shape)) for k, v in vm.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in tm.state_dict().items()]
    vm.load_state_dict({k: V(v) for k, v in tm.state_dict().items()})
    return vm, tm


@pytest.mark.parametrize("args,kw,target", [
    ((8, 10, [4, 8]), {}, [0, 5, 9, 3, 8, 1, 7]),
    ((16, 20, [2, 5, 11]), dict(div_value=2.0, head_bias=True), [19, 0, 4, 11, 2, 10, 15, 1]),
    ((6, 5, [1]), {}, [0, 0, 0]),  # no row reaches the tail
    ((6, 5, (3,)), {}, [4, 3, 4]),  # no row in the shortlist
])
def test_adaptive_log_softmax(args, kw, target):
    vm, tm = _pair_asm(*args, **kw)
    B = len(target)
    x = torch.randn(B, args[0], dtype=torch.float64)
    tt, vt_t = torch.tensor(target), vt.tensor(target)
    to, vo = tm(x, tt), vm(V(x), vt_t)
    assert type(vo).__name__ == "_ASMoutput" and vo._fields == ("output", "loss")
    np.testing.assert_allclose(N(vo.output), N(to.output), rtol=1e-10)
    np.testing.assert_allclose(N(vo.loss), N(to.loss), rtol=1e-10)
    np.testing.assert_allclose(N(vm.log_prob(V(x))), N(tm.log_prob(x)), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(N(vm.predict(V(x))), N(tm.predict(x)))
    # unbatched
    u = vm(V(x[0]), vt.tensor(target[0]))
    np.testing.assert_allclose(N(u.output), N(tm(x[0], torch.tensor(target[0])).output), rtol=1e-10)
    assert tuple(u.output.shape) == ()
    # torch 2.13's log_prob/predict raise IndexError on a 1-D input (they take dim 1 of the unsqueezed row's
    # result wrongly); vibetensor answers as for a batch of one
    np.testing.assert_allclose(N(vm.log_prob(V(x[0]))), N(tm.log_prob(x[:1])[0]), rtol=1e-10, atol=1e-12)
    assert int(vm.predict(V(x[0])).item()) == int(tm.predict(x[:1])[0].item())
    # gradients in the input and every weight
    xv, xt = V(x).requires_grad_(), x.clone().requires_grad_()
    vm(xv, vt_t).loss.backward()
    tm(xt, tt).loss.backward()
    np.testing.assert_allclose(N(xv.grad), N(xt.grad), rtol=1e-9, atol=1e-12)
    tp = dict(tm.named_parameters())
    for k, p in vm.named_parameters():
        if tp[k].grad is None:
            assert p.grad is None or not N(p.grad).any(), k
        else:
            np.testing.assert_allclose(N(p.grad), N(tp[k].grad), rtol=1e-9, atol=1e-12, err_msg=k)


def test_adaptive_log_softmax_errors():
    for bad in ([], [5, 3], [0, 4], [4, 10], [4, 4], [2.5]):
        raises_like(lambda: AS.AdaptiveLogSoftmaxWithLoss(8, 10, bad),
                    lambda: torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, bad), ValueError, "cutoffs should be")
    vm, tm = _pair_asm(8, 10, [4])
    for xs, t, match in (((3, 8), [0, 1], "same size in the batch dimension"),
                         ((3, 8), [0, 1, 10], r"Target values should be in \[0, 9\], but values in range \[0, 10\]"),
                         ((3, 8), [0, -1, 2], r"Target values should be in \[0, 9\]"),
                         ((2, 2, 8), [0, 1], "1D target tensor expects 2D input tensors"),
                         ((3, 8), 1, "0D target tensor expects 1D input tensors"),
                         ((3, 8), [[1]], "0D or 1D target tensor expected, multi-target not supported")):
        raises_like(lambda: vm(vt.randn(*xs, dtype=vt.float64), vt.tensor(t)),
                    lambda: tm(torch.randn(*xs, dtype=torch.float64), torch.tensor(t)), RuntimeError, match)
