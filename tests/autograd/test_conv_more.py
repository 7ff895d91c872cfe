"""conv1d, conv_transpose1d/2d, the 1-D poolings and adaptive_max_pool2d (functional and modules) against torch:
forward values and float64 gradients of input, weight and bias for each option, modules loaded from torch's
state_dict (including ConvTranspose's output_size=), reprs, initialisation bounds and the error cases."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.nn import conv_more_layers as L
from vibetensor.torch.nn import functional_conv_more as FM

from ag_helpers import check_grads, leaves, to_np

TF = torch.nn.functional


def F(m):
    return TF if m is torch else FM


def to_vt(t):
    return vt.from_numpy(t.detach().numpy().copy())


CONV1D = [
    ({}, (2, 3, 9), (4, 3, 3), True),
    ({"stride": 2, "padding": 1}, (2, 3, 10), (5, 3, 4), True),
    ({"dilation": 2, "padding": (2,), "stride": (3,)}, (1, 4, 13), (6, 4, 3), False),
    ({"groups": 2, "stride": 2}, (3, 4, 11), (6, 2, 3), True),
    ({"padding": "same", "dilation": 3}, (2, 3, 8), (4, 3, 4), True),  # uneven 'same' total
    ({"padding": "valid"}, (3, 7), (2, 3, 5), True),  # unbatched
    ({"groups": 3, "padding": 2}, (6, 5), (3, 2, 2), False),  # unbatched, grouped
]


@pytest.mark.parametrize("kw,xs,ws,bias", CONV1D)
def test_conv1d(kw, xs, ws, bias):
    shapes = [xs, ws] + ([(ws[0],)] if bias else [])
    check_grads(lambda m, x, w, *b: F(m).conv1d(x, w, *b, **kw), leaves(shapes))


CONVT = [  # (kw, input, weight [in, out/g, kh, kw])
    ({}, (2, 3, 4, 5), (3, 2, 3, 3)),
    ({"stride": 2, "padding": 1, "output_padding": 1}, (2, 3, 5, 4), (3, 4, 3, 3)),
    ({"stride": (2, 3), "padding": (0, 2), "output_padding": (1, 2)}, (1, 2, 3, 5), (2, 3, 4, 5)),
    ({"groups": 2, "stride": 2, "dilation": (2, 1)}, (2, 4, 5, 3), (4, 3, 3, 2)),
    ({"dilation": 3, "output_padding": 2, "padding": 1}, (1, 2, 4, 4), (2, 2, 2, 3)),  # output_padding >= stride
    ({"dilation": 2, "output_padding": 1}, (1, 2, 3, 3), (2, 1, 2, 2)),  # ... with no padding to take it from
    ({"stride": 3, "padding": 2, "output_padding": 2, "groups": 3}, (3, 5, 4), (3, 2, 2, 3)),  # unbatched
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kw,xs,ws", CONVT)
def test_conv_transpose2d(kw, xs, ws, bias):
    g = kw.get("groups", 1)
    shapes = [xs, ws] + ([(ws[1] * g,)] if bias else [])
    check_grads(lambda m, x, w, *b: F(m).conv_transpose2d(x, w, *b, **kw), leaves(shapes, seed=len(xs) + ws[0]))


@pytest.mark.parametrize("kw,xs,ws", [
    ({}, (2, 3, 6), (3, 2, 3)),
    ({"stride": 3, "padding": 1, "output_padding": 2}, (2, 2, 5), (2, 3, 4)),
    ({"groups": 2, "dilation": 2, "stride": 2, "output_padding": 1}, (1, 4, 7), (4, 2, 3)),
    ({"dilation": 3, "output_padding": 2}, (2, 5), (2, 3, 2)),  # unbatched, output_padding >= stride
])
def test_conv_transpose1d(kw, xs, ws):
    g = kw.get("groups", 1)
    check_grads(lambda m, x, w, b: F(m).conv_transpose1d(x, w, b, **kw), leaves([xs, ws, (ws[1] * g,)]))


POOL1D = [
    ("max_pool1d", dict(kernel_size=3), (2, 3, 10)),
    ("max_pool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 11)),
    ("max_pool1d", dict(kernel_size=2, stride=2, dilation=2, ceil_mode=True), (2, 9)),
    ("max_pool1d", dict(kernel_size=(4,), stride=(3,), padding=(2,), ceil_mode=True), (1, 2, 12)),
    ("avg_pool1d", dict(kernel_size=3), (2, 3, 10)),
    ("avg_pool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 11)),
    ("avg_pool1d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (3, 11)),
    ("avg_pool1d", dict(kernel_size=4, stride=3, padding=2, ceil_mode=True), (1, 2, 12)),
    ("avg_pool1d", dict(kernel_size=4, stride=3, padding=2, ceil_mode=True, count_include_pad=False), (2, 12)),
    ("adaptive_avg_pool1d", dict(output_size=4), (2, 3, 10)),  # uneven, overlapping windows
    ("adaptive_avg_pool1d", dict(output_size=7), (2, 5)),  # larger than the input
    ("adaptive_avg_pool1d", dict(output_size=(1,)), (2, 3, 9)),
    ("adaptive_max_pool1d", dict(output_size=4), (2, 3, 10)),
    ("adaptive_max_pool1d", dict(output_size=(6,)), (3, 5)),
    ("adaptive_max_pool2d", dict(output_size=(3, 4)), (2, 3, 7, 10)),
    ("adaptive_max_pool2d", dict(output_size=5), (3, 4, 6)),  # unbatched, larger than the input height
    ("adaptive_max_pool2d", dict(output_size=(None, 2)), (1, 2, 5, 5)),
]


@pytest.mark.parametrize("name,kw,xs", POOL1D)
def test_pools(name, kw, xs):
    check_grads(lambda m, x: getattr(F(m), name)(x, **kw), leaves([xs]))


@pytest.mark.parametrize("name,kw,xs", [
    ("max_pool1d", dict(kernel_size=3, stride=2, padding=1), (2, 3, 11)),
    ("max_pool1d", dict(kernel_size=2, dilation=2, ceil_mode=True), (3, 9)),
    ("adaptive_max_pool2d", dict(output_size=(3, 4)), (2, 3, 7, 10)),
    ("adaptive_max_pool2d", dict(output_size=(2, None)), (3, 5, 4)),
])
def test_return_indices(name, kw, xs):
    (v, t), = leaves([xs])
    ov, iv = getattr(FM, name)(v, return_indices=True, **kw)
    ot, it = getattr(TF, name)(t, return_indices=True, **kw)
    np.testing.assert_allclose(to_np(ov), to_np(ot))
    assert iv.dtype == vt.int64
    np.testing.assert_array_equal(iv.numpy(), it.numpy())


@pytest.mark.parametrize("ctor,xs,out_size", [
    (lambda m: m.Conv1d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 9), None),
    (lambda m: m.Conv1d(3, 5, 4, padding="same", dilation=2, bias=False), (3, 10), None),
    (lambda m: m.Conv1d(3, 4, 3, padding=2, padding_mode="reflect"), (2, 3, 7), None),
    (lambda m: m.Conv1d(3, 4, 4, padding="same", padding_mode="circular"), (2, 3, 7), None),
    (lambda m: m.Conv1d(3, 4, 3, padding=1, padding_mode="replicate", stride=2), (3, 8), None),
    (lambda m: m.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 5), None),
    (lambda m: m.ConvTranspose1d(3, 2, 4, stride=3, padding=1), (2, 3, 5), [14]),
    (lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 5, 3), None),
    (lambda m: m.ConvTranspose2d(3, 4, (2, 3), stride=(2, 3), dilation=2, bias=False), (3, 4, 5), None),
    (lambda m: m.ConvTranspose2d(3, 2, 3, stride=2, padding=1), (2, 3, 4, 5), [2, 2, 8, 10]),
    (lambda m: m.ConvTranspose2d(3, 2, 3, stride=3), (2, 3, 4, 5), (12, 17)),
])
def test_modules_from_torch_state_dict(ctor, xs, out_size):
    tm, vm = ctor(torch.nn), ctor(L)
    assert list(vm.state_dict()) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        assert tuple(vm.state_dict()[k].shape) == tuple(v.shape)
    tm.double()
    vm.double()
    vm.load_state_dict({k: to_vt(v) for k, v in tm.state_dict().items()})
    assert repr(vm) == repr(tm)
    (xv, xt), = leaves([xs])
    args = () if out_size is None else (out_size,)
    ot, ov = tm(xt, *args), vm(xv, *args)
    np.testing.assert_allclose(to_np(ov), to_np(ot), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(2).standard_normal(tuple(ot.shape))
    ot.backward(torch.from_numpy(g.copy()))
    ov.backward(vt.from_numpy(g.copy()))
    np.testing.assert_allclose(to_np(xv.grad), to_np(xt.grad), rtol=1e-10, atol=1e-12)
    for (n, pv), (_, pt) in zip(vm.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(to_np(pv.grad), to_np(pt.grad), rtol=1e-10, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("ctor", [
    lambda m: m.MaxPool1d(3), lambda m: m.MaxPool1d(3, 2, 1, 2, True, True), lambda m: m.AvgPool1d(3),
    lambda m: m.AvgPool1d(3, 2, 1, True, False), lambda m: m.AdaptiveAvgPool1d(3),
    lambda m: m.AdaptiveMaxPool1d(4), lambda m: m.AdaptiveMaxPool1d(3, True), lambda m: m.AdaptiveMaxPool2d((3, None)), lambda m: m.AdaptiveMaxPool2d(2, return_indices=True),
])
def test_pool_modules(ctor):
    tm, vm = ctor(torch.nn), ctor(L)
    assert repr(vm) == repr(tm)
    xs = (2, 3, 7, 8) if "2d" in type(tm).__name__ else (2, 3, 11)
    (xv, xt), = leaves([xs])
    ot, ov = tm(xt), vm(xv)
    if isinstance(ot, tuple):
        np.testing.assert_array_equal(ov[1].numpy(), ot[1].numpy())
        ot, ov = ot[0], ov[0]
    np.testing.assert_allclose(to_np(ov), to_np(ot))


@pytest.mark.parametrize("ctor,fan_in", [
    (lambda m: m.Conv1d(6, 3, 5, groups=3), 2 * 5),
    (lambda m: m.ConvTranspose1d(6, 8, 3, groups=2), 4 * 3),
    (lambda m: m.ConvTranspose2d(4, 6, (2, 3)), 6 * 2 * 3),
])
def test_default_init_bounds(ctor, fan_in):
    vt.manual_seed(0) if hasattr(vt, "manual_seed") else None
    m = ctor(L)
    bound = 1 / math.sqrt(fan_in)
    for p in (m.weight, m.bias):
        a = p.detach().numpy()
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.5 * bound  # uniform(-b, b), not a smaller one
    assert tuple(m.weight.shape) == tuple(ctor(torch.nn).weight.shape)


@pytest.mark.parametrize("name,xs,ws,kw", [
    ("conv1d", (2, 3, 9), (4, 3, 3), dict(stride=2)),
    ("conv_transpose2d", (2, 3, 4, 5), (3, 2, 3, 3), dict(stride=2, output_padding=1)),
    ("conv_transpose1d", (2, 3, 6), (3, 2, 3), dict(stride=2, padding=1)),
])
def test_noncontiguous_and_empty_batch(name, xs, ws, kw):
    check_grads(lambda m, x, w: getattr(F(m), name)(x, w, **kw), leaves([xs, ws], noncontig=True))
    x0, w = np.zeros((0,) + xs[1:]), np.ones(ws)
    ov = getattr(FM, name)(vt.from_numpy(x0), vt.from_numpy(w), **kw)
    assert tuple(ov.shape) == tuple(getattr(TF, name)(torch.from_numpy(x0), torch.from_numpy(w), **kw).shape)


def test_errors():
    x3, w3 = vt.zeros(2, 4, 9), vt.zeros(6, 2, 3)
    with pytest.raises(RuntimeError, match="3D"):
        FM.conv1d(vt.zeros(9), w3)
    with pytest.raises(RuntimeError, match="3D"):
        FM.conv1d(vt.zeros(2, 4, 9, 1), w3, groups=2)  # wrong input rank
    with pytest.raises(RuntimeError, match="weight"):
        FM.conv1d(x3, vt.zeros(6, 2, 3, 1))  # wrong weight rank
    with pytest.raises(RuntimeError, match="channels"):
        FM.conv1d(x3, w3, groups=3)  # 4 input channels, weight expects 6
    with pytest.raises(RuntimeError, match="divisible by 4"):
        FM.conv1d(x3, vt.zeros(6, 1, 3), groups=4)  # out channels not divisible by groups
    with pytest.raises(RuntimeError, match="non-positive groups"):
        FM.conv_transpose1d(x3, vt.zeros(4, 2, 3), groups=0)
    with pytest.raises(RuntimeError, match="strided"):
        FM.conv1d(x3, vt.zeros(6, 4, 3), stride=2, padding="same")
    x4, w4 = vt.zeros(1, 4, 5, 5), vt.zeros(4, 2, 3, 3)
    with pytest.raises(RuntimeError, match="4D"):
        FM.conv_transpose2d(vt.zeros(4, 5), w4)
    with pytest.raises(RuntimeError, match="4-D weight"):
        FM.conv_transpose2d(x4, vt.zeros(4, 2, 3))
    with pytest.raises(RuntimeError, match="divisible by groups"):
        FM.conv_transpose2d(x4, w4, groups=3)
    with pytest.raises(RuntimeError, match="channels"):
        FM.conv_transpose2d(vt.zeros(1, 3, 5, 5), w4)
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        FM.conv_transpose2d(x4, w4, stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        FM.conv_transpose1d(vt.zeros(1, 4, 5), vt.zeros(4, 2, 3), output_padding=1)
    with pytest.raises(RuntimeError, match="2D"):
        FM.max_pool1d(vt.zeros(5), 2)
    with pytest.raises(RuntimeError, match="2D"):
        FM.adaptive_avg_pool1d(vt.zeros(1, 2, 3, 4), 2)
    with pytest.raises(RuntimeError, match="half"):
        FM.avg_pool1d(vt.zeros(1, 2, 9), 2, padding=2)
    with pytest.raises(ValueError, match="divisible by groups"):
        L.Conv1d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="divisible by groups"):
        L.ConvTranspose2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="strided"):
        L.Conv1d(4, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="zeros"):
        L.ConvTranspose1d(4, 6, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding_mode"):
        L.Conv1d(4, 6, 3, padding_mode="bogus")
    with pytest.raises(ValueError, match="valid sizes range"):
        L.ConvTranspose2d(3, 2, 3, stride=2)(vt.zeros(1, 3, 4, 4), output_size=(11, 9))


def test_exports():
    assert vt.nn.functional.conv1d is FM.conv1d and vt.nn.functional.conv_transpose2d is FM.conv_transpose2d
    for name in ("conv_transpose1d", "max_pool1d", "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d",
                 "adaptive_max_pool2d"):
        assert getattr(vt.nn.functional, name) is getattr(FM, name)
    for name in ("Conv1d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d",
                 "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"):
        assert getattr(vt.nn, name) is getattr(L, name)
    for name in ("conv1d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "avg_pool1d",
                 "adaptive_avg_pool1d"):
        assert getattr(vt, name) is getattr(FM, name)


def test_conv2d_names_a_weight_that_groups_do_not_divide():
    import torch

    for m in (vt, torch):
        with pytest.raises(RuntimeError, match="expected weight to be divisible by 4 at dimension 0"):
            m.nn.functional.conv2d(m.zeros(1, 4, 5, 5), m.zeros(6, 1, 3, 3), groups=4)
