"""F.conv3d / max_pool3d / avg_pool3d / adaptive_avg_pool3d / lp_pool1d/2d/3d and their modules vs torch:
values, float64 gradients, every option, unbatched inputs, module state_dicts and reprs, error cases."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.nn import functional_conv3d as VF
from vibetensor.torch.nn import conv3d_layers as VL

from ag_helpers import check_grads, leaves


def fn_for(name, **kw):
    def fn(m, *ts):
        f = getattr(VF, name) if m is vt else getattr(torch.nn.functional, name)
        return f(*ts, **kw)
    return fn


@pytest.mark.parametrize("xs,ws,kw", [
    ((2, 3, 5, 6, 7), (4, 3, 2, 3, 2), {}),
    ((2, 3, 5, 6, 7), (4, 3, 3, 3, 3), dict(stride=2, padding=1)),
    ((1, 4, 6, 5, 6), (6, 2, 2, 2, 3), dict(stride=(2, 1, 3), padding=(1, 0, 2), dilation=(2, 1, 1), groups=2)),
    ((2, 2, 5, 5, 5), (3, 2, 2, 3, 2), dict(padding="same", dilation=(1, 2, 1))),
    ((2, 2, 5, 5, 5), (3, 2, 3, 3, 3), dict(padding="same")),
    ((2, 2, 5, 5, 5), (3, 2, 3, 2, 3), dict(padding="valid", dilation=2)),
    ((3, 5, 4, 6), (2, 3, 2, 2, 2), dict(padding=1)),  # unbatched
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv3d(xs, ws, kw, bias):
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    check_grads(fn_for("conv3d", **kw), leaves(shapes, seed=len(xs) + ws[0]))


def test_conv3d_float32_and_empty():
    check_grads(fn_for("conv3d", padding=1), leaves([(1, 2, 4, 4, 4), (3, 2, 3, 3, 3)], "float32"), "float32")
    x, w = vt.zeros(0, 2, 4, 4, 4), vt.zeros(3, 2, 2, 2, 2)
    assert tuple(VF.conv3d(x, w).shape) == (0, 3, 3, 3, 3)


def test_conv3d_errors():
    x = vt.randn(1, 4, 4, 4, 4)
    with pytest.raises(RuntimeError):
        VF.conv3d(x, vt.randn(2, 3, 2, 2, 2))  # channel mismatch
    with pytest.raises(RuntimeError):
        VF.conv3d(x, vt.randn(3, 2, 2, 2, 2), groups=2)  # out channels not divisible
    with pytest.raises(RuntimeError):
        VF.conv3d(x, vt.randn(2, 4, 2, 2))  # 4-D weight
    with pytest.raises(RuntimeError):
        VF.conv3d(vt.randn(4, 4, 4), vt.randn(2, 4, 2, 2, 2))
    with pytest.raises(RuntimeError):
        VF.conv3d(x, vt.randn(2, 4, 5, 2, 2))  # kernel larger than input
    with pytest.raises(RuntimeError):
        VF.conv3d(x, vt.randn(2, 4, 2, 2, 2), stride=2, padding="same")
    with pytest.raises(ValueError):
        VF.conv3d(x, vt.randn(2, 4, 2, 2, 2), padding="full")


POOL3 = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=(1, 1, 0), ceil_mode=True),
    dict(kernel_size=3, stride=2, ceil_mode=True),
]


@pytest.mark.parametrize("kw", POOL3 + [dict(kernel_size=2, dilation=(2, 1, 2)),
                                        dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)])
@pytest.mark.parametrize("xs", [(2, 3, 6, 7, 5), (2, 5, 6, 7)])
def test_max_pool3d(kw, xs):
    check_grads(fn_for("max_pool3d", **kw), leaves([xs], seed=2))
    xv, xt = leaves([xs], seed=3)[0]
    ov, iv = VF.max_pool3d(xv, return_indices=True, **kw)
    ot, it = torch.nn.functional.max_pool3d(xt, return_indices=True, **kw)
    np.testing.assert_array_equal(iv.numpy(), it.numpy())
    np.testing.assert_allclose(ov.detach().numpy(), ot.detach().numpy())


@pytest.mark.parametrize("kw", POOL3)
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("div", [None, 3])
def test_avg_pool3d(kw, cip, div):
    check_grads(fn_for("avg_pool3d", count_include_pad=cip, divisor_override=div, **kw),
                leaves([(2, 3, 6, 7, 5)], seed=4))


def test_pool3d_errors():
    x = vt.randn(1, 1, 4, 4, 4)
    with pytest.raises(RuntimeError):
        VF.max_pool3d(x, 2, padding=2)  # pad over half the kernel
    with pytest.raises(RuntimeError):
        VF.avg_pool3d(x, 2, divisor_override=0)
    with pytest.raises(RuntimeError):
        VF.max_pool3d(vt.randn(4, 4), 2)
    with pytest.raises(RuntimeError):
        VF.avg_pool3d(vt.randn(1, 1, 1, 4, 4), 2)  # output too small


@pytest.mark.parametrize("osz", [1, 2, (3, 2, 4), (None, 3, 1), (5, 7, 6)])
def test_adaptive_avg_pool3d(osz):
    check_grads(fn_for("adaptive_avg_pool3d", output_size=osz), leaves([(2, 3, 5, 7, 6)], seed=5))
    check_grads(fn_for("adaptive_avg_pool3d", output_size=osz), leaves([(3, 5, 7, 6)], seed=6))


@pytest.mark.parametrize("name,xs,kw", [
    ("lp_pool1d", (2, 3, 9), dict(norm_type=2, kernel_size=3)),
    ("lp_pool1d", (3, 8), dict(norm_type=3.0, kernel_size=2, stride=1, ceil_mode=True)),
    ("lp_pool2d", (2, 3, 6, 7), dict(norm_type=2, kernel_size=2)),
    ("lp_pool2d", (2, 3, 6, 7), dict(norm_type=1.5, kernel_size=(2, 3), stride=(1, 2), ceil_mode=True)),
    ("lp_pool3d", (1, 2, 4, 5, 6), dict(norm_type=2, kernel_size=2)),
])
def test_lp_pool(name, xs, kw):
    # positive inputs: a fractional power of a negative sum is nan on both sides
    check_grads(fn_for(name, **kw), leaves([xs], seed=7, positive=True))


def copy_state(vm, tm):
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})


@pytest.mark.parametrize("args,kw", [
    ((4, 6, 3), {}),
    ((4, 6, (2, 3, 1)), dict(stride=2, padding=1, groups=2, bias=False)),
    ((4, 6, 3), dict(padding="same", dilation=2)),
])
def test_conv3d_module(args, kw):
    tm = torch.nn.Conv3d(*args, **kw).double()
    vm = VL.Conv3d(*args, **kw).to(vt.float64)
    assert repr(vm) == repr(tm)
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert tuple(vm.weight.shape) == tuple(tm.weight.shape)
    copy_state(vm, tm)
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 6, 7))
    np.testing.assert_allclose(vm(vt.from_numpy(x.copy())).detach().numpy(),
                               tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    bound = 1 / np.sqrt(tm.weight[0].numel())
    fresh = VL.Conv3d(*args, **kw).weight.numpy()
    assert np.abs(fresh).max() <= bound and np.abs(fresh).max() > bound / 2


def test_conv3d_module_errors():
    with pytest.raises(ValueError):
        VL.Conv3d(3, 4, 2, groups=2)
    with pytest.raises(ValueError):
        VL.Conv3d(4, 4, 2, padding="same", stride=2)


@pytest.mark.parametrize("tcls,vcls,args,kw", [
    ("MaxPool3d", VL.MaxPool3d, (3,), dict(stride=2, padding=1, ceil_mode=True)),
    ("AvgPool3d", VL.AvgPool3d, ((2, 3, 2),), dict(stride=1, count_include_pad=False)),
    ("AdaptiveAvgPool3d", VL.AdaptiveAvgPool3d, ((2, None, 3),), {}),
    ("LPPool1d", VL.LPPool1d, (2, 3), {}),
    ("LPPool2d", VL.LPPool2d, (2, (2, 3)), dict(stride=1)),
    ("LPPool3d", VL.LPPool3d, (2, 2), {}),
])
def test_pool_modules(tcls, vcls, args, kw):
    tm, vm = getattr(torch.nn, tcls)(*args, **kw), vcls(*args, **kw)
    assert repr(vm) == repr(tm)
    shape = {"LPPool1d": (2, 3, 9), "LPPool2d": (2, 3, 6, 7)}.get(tcls, (2, 3, 6, 7, 5))
    x = np.abs(np.random.default_rng(1).standard_normal(shape)) + 0.1
    np.testing.assert_allclose(vm(vt.from_numpy(x.copy())).numpy(), tm(torch.from_numpy(x)).numpy(),
                               rtol=1e-10, atol=1e-12)
    if tcls == "MaxPool3d":
        vm.return_indices = tm.return_indices = True
        np.testing.assert_array_equal(vm(vt.from_numpy(x.copy()))[1].numpy(), tm(torch.from_numpy(x))[1].numpy())


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
@pytest.mark.parametrize("padding", [1, (1, 0, 2), "same"])
def test_conv3d_padding_modes(mode, padding):
    tm = torch.nn.Conv3d(2, 3, 3, padding=padding, padding_mode=mode).double()
    vm = VL.Conv3d(2, 3, 3, padding=padding, padding_mode=mode).to(vt.float64)
    assert repr(vm) == repr(tm)
    copy_state(vm, tm)
    x = np.random.default_rng(2).standard_normal((1, 2, 4, 5, 6))
    xv, xt = vt.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(x).requires_grad_()
    yv, yt = vm(xv), tm(xt)
    np.testing.assert_allclose(yv.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    yv.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xv.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(vm.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,args", [("max_pool3d", (2,)), ("avg_pool3d", (2,)), ("adaptive_avg_pool3d", (2,)),
                                       ("lp_pool3d", (2, 2))])
def test_pool3d_empty_batch_and_float32(name, args):
    tf, vf = getattr(torch.nn.functional, name), getattr(VF, name)
    assert tuple(vf(vt.zeros(0, 2, 4, 4, 4), *args).shape) == tuple(tf(torch.zeros(0, 2, 4, 4, 4), *args).shape)
    x = np.abs(np.random.default_rng(9).standard_normal((2, 3, 5, 4, 6))).astype("float32")
    np.testing.assert_allclose(vf(vt.from_numpy(x.copy()), *args).numpy(), tf(torch.from_numpy(x), *args).numpy(),
                               rtol=1e-5, atol=1e-6)
