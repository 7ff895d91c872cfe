"""F.interpolate's bicubic (both align_corners, size and scale_factor, up and down, border rows), area (1-D,
2-D and 3-D, uneven windows) and nearest-exact modes, nn.Upsample with them, and adaptive_avg_pool2d with output
sizes that do not divide the input: values (float32 and float64) and float64 gradients against torch, and
torch's errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import vibetensor.torch as vt

VF = vt.nn.functional


def _np(t):
    return t.detach().numpy()


def _compare(fn_t, fn_v, shape, dtype="float64", seed=0, grads=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    xt = torch.from_numpy(x.copy()).requires_grad_(grads)
    xv = vt.from_numpy(x.copy()).requires_grad_(grads)
    ot, ov = fn_t(xt), fn_v(xv)
    assert tuple(ov.shape) == tuple(ot.shape)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(ov), _np(ot), **tol)
    if grads:
        g = rng.standard_normal(tuple(ot.shape)).astype(dtype)
        ot.backward(torch.from_numpy(g.copy()))
        ov.backward(vt.from_numpy(g.copy()))
        np.testing.assert_allclose(_np(xv.grad), _np(xt.grad), **tol)


BICUBIC = [
    ((2, 3, 5, 7), dict(size=(9, 4))),
    ((1, 2, 6, 3), dict(size=11)),
    ((2, 1, 5, 7), dict(scale_factor=1.7)),
    ((1, 2, 8, 9), dict(scale_factor=(0.5, 2.3))),  # down in one dim, up in the other
    ((1, 1, 2, 4), dict(size=(1, 1))),
    ((1, 1, 1, 3), dict(size=(4, 6))),  # a single input row: every tap clamps to it
    ((1, 2, 4, 5), dict(scale_factor=2, recompute_scale_factor=True)),
    ((1, 2, 7, 5), dict(scale_factor=0.6, recompute_scale_factor=False)),
    ((1, 3, 4, 3), dict(size=(5, 2))),  # downsampling a 3-wide row to 2
]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("shape,kw", BICUBIC)
def test_bicubic(shape, kw, align_corners):
    for dtype, grads in (("float32", False), ("float64", True)):
        _compare(lambda x: TF.interpolate(x, mode="bicubic", align_corners=align_corners, **kw),
                 lambda x: VF.interpolate(x, mode="bicubic", align_corners=align_corners, **kw),
                 shape, dtype, grads=grads)


AREA = [
    ((2, 3, 7), dict(size=3)),
    ((2, 3, 7), dict(scale_factor=1.7)),
    ((1, 2, 5), dict(size=5)),
    ((2, 3, 5, 7), dict(size=(3, 2))),
    ((2, 3, 5, 7), dict(scale_factor=0.4)),
    ((1, 2, 6, 4), dict(size=(4, 8))),
    ((1, 2, 5, 6, 7), dict(size=(2, 3, 4))),
    ((1, 1, 5, 6, 7), dict(scale_factor=(0.5, 1.5, 0.7))),
]


@pytest.mark.parametrize("shape,kw", AREA)
def test_area(shape, kw):
    for dtype, grads in (("float32", False), ("float64", True)):
        _compare(lambda x: TF.interpolate(x, mode="area", **kw), lambda x: VF.interpolate(x, mode="area", **kw),
                 shape, dtype, grads=grads)


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 7), dict(size=10)),
    ((2, 3, 7), dict(scale_factor=0.6)),
    ((1, 2, 5, 7), dict(size=(3, 11))),
    ((1, 2, 3, 4, 5), dict(scale_factor=(1.5, 0.7, 2))),
])
def test_nearest_exact(shape, kw):
    _compare(lambda x: TF.interpolate(x, mode="nearest-exact", **kw),
             lambda x: VF.interpolate(x, mode="nearest-exact", **kw), shape)


@pytest.mark.parametrize("mode,align_corners,shape", [
    ("bicubic", None, (1, 2, 4, 5)), ("bicubic", True, (1, 2, 4, 5)), ("bicubic", False, (1, 2, 4, 5)),
    ("area", None, (1, 2, 6, 4)), ("nearest-exact", None, (1, 2, 5)), ("area", None, (1, 2, 3, 4, 5)),
])
def test_upsample_modes(mode, align_corners, shape):
    for kw in (dict(scale_factor=2), dict(scale_factor=0.5), dict(size=tuple(range(3, 3 + len(shape) - 2)))):
        tm = torch.nn.Upsample(mode=mode, align_corners=align_corners, **kw)
        vm = vt.nn.Upsample(mode=mode, align_corners=align_corners, **kw)
        assert repr(vm) == repr(tm)
        _compare(tm, vm, shape)


@pytest.mark.parametrize("shape,out", [
    ((2, 3, 7, 5), (3, 2)),
    ((3, 7, 5), (4, 4)),  # unbatched
    ((1, 2, 5, 6), (5, 4)),
    ((1, 2, 5, 6), (None, 4)),
    ((1, 2, 6, 6), 4),
    ((1, 2, 6, 6), (3, 2)),  # the even case keeps its avg_pool2d path
])
def test_adaptive_avg_pool2d_uneven(shape, out):
    _compare(lambda x: TF.adaptive_avg_pool2d(x, out), lambda x: VF.adaptive_avg_pool2d(x, out), shape)


def test_adaptive_avg_pool2d_zero_output():
    x = np.ones((1, 2, 5, 6))
    assert tuple(VF.adaptive_avg_pool2d(vt.from_numpy(x), (0, 2)).shape) == tuple(
        TF.adaptive_avg_pool2d(torch.from_numpy(x), (0, 2)).shape) == (1, 2, 0, 2)


@pytest.mark.parametrize("shape,kw,exc", [
    ((1, 2, 5), dict(size=7, mode="bicubic"), NotImplementedError),
    ((1, 1, 3, 4, 5), dict(size=7, mode="bicubic"), NotImplementedError),
    ((1, 2, 5, 6), dict(size=7, mode="nearest", antialias=True), ValueError),
    ((1, 2, 5), dict(size=7, mode="linear", antialias=True), ValueError),
    ((1, 2, 5, 6), dict(scale_factor=1.5, mode="area", align_corners=True), ValueError),
    ((1, 2, 5, 6), dict(scale_factor=1.5, mode="nearest-exact", align_corners=False), ValueError),
    ((1, 2, 5, 6), dict(size=(0, 3), mode="bicubic"), RuntimeError),
    ((1, 2, 5, 6), dict(size=(3, 3), scale_factor=2, mode="bicubic"), ValueError),
    ((1, 2, 5, 6), dict(size=(3, 3, 3), mode="area"), ValueError),
    ((1, 2, 5, 6), dict(size=3, mode="cubic"), NotImplementedError),
])
def test_interpolate_errors(shape, kw, exc):
    with pytest.raises(exc):
        TF.interpolate(torch.zeros(shape), **kw)
    with pytest.raises(exc):
        VF.interpolate(vt.zeros(*shape), **kw)


def test_repeated_calls_reuse_checked_plans():
    """Note [Checked interpolate calls]: a repeated call reuses its checked plans, an error is raised every time,
    and a size given as a list, a tuple or tensors' values picks the same plans."""
    x = np.random.default_rng(3).standard_normal((1, 2, 5, 6))
    xv, xt = vt.from_numpy(x), torch.from_numpy(x)
    for size in ([7, 4], (7, 4), [vt.tensor(7), vt.tensor(4)], [7, 4]):
        got = VF.interpolate(xv, size=size, mode="bilinear")
        np.testing.assert_allclose(_np(got), _np(TF.interpolate(xt, size=(7, 4), mode="bilinear")), rtol=1e-12)
    got = VF.interpolate(xv.float(), size=(7, 4), mode="bilinear")  # another dtype: its own plans
    assert got.dtype == vt.float32
    for _ in range(2):
        with pytest.raises(ValueError, match="align_corners"):
            VF.interpolate(xv, size=(7, 4), mode="nearest", align_corners=True)
