"""Conv2d's padding modes (reflect, replicate, circular, zeros; int, tuple, 'same' and 'valid' paddings, with
stride, dilation, groups, no bias and unbatched input), the Lazy convolutions with a padding mode, and F.pad's
non-constant modes over 1-D, 2-D and 3-D spatial dims: values and float64 gradients against torch, repr and
state_dict interchange, and torch's errors."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

MODES = ["zeros", "reflect", "replicate", "circular"]


def _np(t):
    return t.detach().numpy()


def _copy_params(tm, vm):
    vm.load_state_dict({k: vt.from_numpy(_np(v).copy()) for k, v in tm.state_dict().items()})


def _run_both(tm, vm, shape, seed=0):
    """Forward both modules on the same float64 input, backward the same upstream gradient, compare the
    output and the gradients of the input and of every parameter."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    xv = vt.from_numpy(x.copy()).requires_grad_()
    ot, ov = tm(xt), vm(xv)
    assert tuple(ov.shape) == tuple(ot.shape)
    np.testing.assert_allclose(_np(ov), _np(ot), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(tuple(ot.shape))
    ot.backward(torch.from_numpy(g.copy()))
    ov.backward(vt.from_numpy(g.copy()))
    np.testing.assert_allclose(_np(xv.grad), _np(xt.grad), rtol=1e-10, atol=1e-12)
    tp, vp = dict(tm.named_parameters()), dict(vm.named_parameters())
    assert sorted(tp) == sorted(vp)
    for k in tp:
        np.testing.assert_allclose(_np(vp[k].grad), _np(tp[k].grad), rtol=1e-10, atol=1e-12, err_msg=k)


CONV2D_CASES = [
    (dict(kernel_size=3, padding=1), (2, 4, 7, 6)),
    (dict(kernel_size=(3, 2), padding=(2, 1)), (1, 4, 5, 7)),
    (dict(kernel_size=3, padding=2, stride=2), (2, 4, 9, 8)),
    (dict(kernel_size=(3, 4), padding="same", dilation=(1, 2)), (1, 4, 7, 9)),
    (dict(kernel_size=4, padding="same"), (2, 4, 6, 5)),  # an odd total: the extra element goes at the end
    (dict(kernel_size=3, padding="valid"), (1, 4, 6, 6)),
    (dict(kernel_size=3, padding=1, groups=2, bias=False), (2, 4, 5, 5)),
    (dict(kernel_size=(1, 3), padding=(0, 2), dilation=2), (4, 5, 7)),  # unbatched
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kw,shape", CONV2D_CASES)
def test_conv2d_padding_modes(mode, kw, shape):
    tm = torch.nn.Conv2d(4, 6, padding_mode=mode, **kw).double()
    vm = vt.nn.Conv2d(4, 6, padding_mode=mode, **kw).to(vt.float64)
    _copy_params(tm, vm)
    assert repr(vm) == repr(tm)
    assert vm.padding_mode == mode
    _run_both(tm, vm, shape)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("n,shape", [(1, (2, 3, 7)), (2, (2, 3, 6, 5)), (3, (1, 3, 4, 5, 3))])
def test_lazy_conv_padding_modes(mode, n, shape):
    tm = getattr(torch.nn, f"LazyConv{n}d")(4, 3, padding=1, padding_mode=mode).double()
    vm = getattr(vt.nn, f"LazyConv{n}d")(4, 3, padding=1, padding_mode=mode).to(vt.float64)
    x = np.random.default_rng(1).standard_normal(shape)
    tm(torch.from_numpy(x))
    vm(vt.from_numpy(x))
    assert type(vm).__name__ == f"Conv{n}d" and vm.in_channels == 3 and vm.padding_mode == mode
    _copy_params(tm, vm)
    _run_both(tm, vm, shape)


def test_conv2d_state_dict_and_default_mode():
    vm = vt.nn.Conv2d(3, 5, 3, padding=1, padding_mode="reflect")
    tm = torch.nn.Conv2d(3, 5, 3, padding=1, padding_mode="reflect")
    assert list(vm.state_dict()) == list(tm.state_dict()) == ["weight", "bias"]
    tm.load_state_dict({k: torch.from_numpy(_np(v).copy()) for k, v in vm.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((1, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(_np(vm(vt.from_numpy(x))), _np(tm(torch.from_numpy(x))), rtol=1e-5, atol=1e-5)
    assert vt.nn.Conv2d(2, 2, 3).padding_mode == "zeros"
    assert repr(vt.nn.Conv2d(2, 2, 3)) == repr(torch.nn.Conv2d(2, 2, 3))


@pytest.mark.parametrize("make,exc,match", [
    (lambda m: m.Conv2d(2, 3, 3, padding_mode="foo"), ValueError, "padding_mode"),
    (lambda m: m.Conv2d(2, 3, 3, padding_mode="reflection"), ValueError, "padding_mode"),
    (lambda m: m.ConvTranspose2d(2, 3, 3, padding_mode="reflect"), ValueError, "zeros"),
    (lambda m: m.ConvTranspose1d(2, 3, 3, padding_mode="circular"), ValueError, "zeros"),
    (lambda m: m.Conv2d(2, 3, 3, padding="bad", padding_mode="reflect"), ValueError, "padding string"),
    (lambda m: m.Conv2d(2, 3, 3, padding="same", stride=2, padding_mode="reflect"), ValueError, "strided"),
    (lambda m: m.Conv2d(3, 3, 3, groups=2), ValueError, "divisible"),
    (lambda m: m.Conv2d(2, 3, 3, groups=0), ValueError, "positive"),
    (lambda m: m.LazyConv2d(3, 3, padding_mode="foo"), ValueError, "padding_mode"),
])
def test_conv_padding_mode_errors(make, exc, match):
    with pytest.raises(exc):
        make(torch.nn)
    with pytest.raises(exc, match=match):
        make(vt.nn)


def test_conv_transpose_string_padding_refused():
    # torch builds the layer (padding becomes ('s', 'a', 'm', 'e')) and fails later; vibetensor says so at once
    with pytest.raises(ValueError, match="string"):
        vt.nn.ConvTranspose2d(2, 3, 3, padding="same")


@pytest.mark.parametrize("mode,padding,shape", [
    ("reflect", 5, (1, 2, 4, 4)),  # a reflection at least as wide as the input
    ("circular", 5, (1, 2, 4, 4)),  # wrapping around more than once
])
def test_conv2d_padding_too_large(mode, padding, shape):
    x = np.zeros(shape)
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(2, 2, 3, padding=padding, padding_mode=mode).double()(torch.from_numpy(x))
    with pytest.raises(RuntimeError):
        vt.nn.Conv2d(2, 2, 3, padding=padding, padding_mode=mode).to(vt.float64)(vt.from_numpy(x))


PADS = [
    ((2, 3, 7), (2, 3)),
    ((3, 6), (1, 0)),  # unbatched 1-D
    ((2, 3, 5, 6), (1, 2, 3, 0)),
    ((3, 5, 4), (2, 1, 0, 3)),  # unbatched 2-D
    ((1, 2, 3, 4, 5), (1, 2, 0, 2, 1, 1)),
    ((2, 3, 4, 3), (2, 2, 1, 1, 0, 1)),  # unbatched 3-D
    ((2, 3, 7), (-1, 2)),  # a negative pad crops
]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pad", PADS)
def test_pad_modes_values_and_grads(mode, shape, pad):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    xv = vt.from_numpy(x.copy()).requires_grad_()
    try:
        ot = torch.nn.functional.pad(xt, pad, mode=mode)
    except (RuntimeError, NotImplementedError) as e:
        with pytest.raises(type(e)):
            vt.nn.functional.pad(xv, pad, mode=mode)
        return
    ov = vt.nn.functional.pad(xv, pad, mode=mode)
    np.testing.assert_array_equal(_np(ov), _np(ot))
    g = rng.standard_normal(tuple(ot.shape))
    ot.backward(torch.from_numpy(g.copy()))
    ov.backward(vt.from_numpy(g.copy()))
    np.testing.assert_allclose(_np(xv.grad), _np(xt.grad), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode,shape,pad,exc", [
    ("reflect", (1, 2, 3), (3, 0), RuntimeError),  # pad >= size
    ("circular", (1, 2, 3), (4, 0), RuntimeError),
    ("reflect", (4,), (1, 1), NotImplementedError),  # 1-D input has no batch/channel dim
    ("replicate", (1, 2, 3, 4, 5, 6), (1, 1), NotImplementedError),
    ("bogus", (1, 2, 3), (1, 1), NotImplementedError),
])
def test_pad_mode_errors(mode, shape, pad, exc):
    with pytest.raises(exc):
        torch.nn.functional.pad(torch.zeros(shape), pad, mode=mode)
    with pytest.raises(exc):
        vt.nn.functional.pad(vt.zeros(*shape), pad, mode=mode)


@pytest.mark.parametrize("n,kw", [(1, dict(padding=2)), (2, dict(padding=(1, 2))), (2, dict(padding="same",
                                  kernel_size=(4, 3), dilation=(2, 1))), (3, dict(padding="valid")),
                                  (3, dict(padding=(0, 1, 2)))])
def test_reversed_padding_attribute(n, kw):
    kw = {"kernel_size": 3, **kw}
    assert (list(getattr(vt.nn, f"Conv{n}d")(2, 2, **kw)._reversed_padding_repeated_twice)
            == list(getattr(torch.nn, f"Conv{n}d")(2, 2, **kw)._reversed_padding_repeated_twice))


@pytest.mark.parametrize("mode", MODES)
def test_subclass_calling_conv_forward(mode):
    """Weight-standardised convolutions (a common model-code pattern) call torch's _conv_forward(input, weight,
    bias) with their own weight."""
    def make(nn):
        class StdConv2d(nn.Conv2d):
            def forward(self, x):
                w = self.weight
                w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.var(dim=(1, 2, 3), keepdim=True) + 1e-5).sqrt()
                return self._conv_forward(x, w, self.bias)
        return StdConv2d(3, 4, 3, padding=1, padding_mode=mode)
    tm, vm = make(torch.nn).double(), make(vt.nn).to(vt.float64)
    _copy_params(tm, vm)
    _run_both(tm, vm, (2, 3, 5, 6))


EDGE_SHAPES = [(2, 0, 4), (0, 3, 4), (3, 0), (2, 3, 4), (1, 2, 3, 4), (2, 3, 4, 0), (1, 2, 2, 3, 4), (4,),
               (2, 3, 0, 4), (2, 5, 6)]
EDGE_PADS = [(1, 1), (-2, -2), (-4, 0), (0, 0, 1, 1), (4, 0, 0, 0), (0, 0, 0, 3), (-2, 3), (3, -2),
             (0, 0, 0, 0, 2, 0), (1, -1, -1, 2), (0, 0), (0, 0, 0, 0), (-5, 1), (1, 2, 3, 4, 5, 6, 7, 8),
             (-1,) * 8, (2, -1, 1, 1, -1, 2), (5, 5), (-1, 5, 2, -3)]


def _wraps_past_the_crop(shape, pad):
    """A circular pad wider than the rows a negative pad leaves: torch copies between overlapping slices of its
    result (an error for some shapes, whatever the copy left for others); vibetensor refuses them all."""
    for i in range(min(len(pad) // 2, len(shape))):
        n, left, right = shape[len(shape) - 1 - i], pad[2 * i], pad[2 * i + 1]
        kept = n - max(-left, 0) - max(-right, 0)
        if left > kept or right > kept:
            return True
    return False


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_edges_match_torch(mode):
    """Empty dims, crops that empty a dim, pads as wide as the input, negative pads on one side (reflect and
    replicate count the other side's rows from the uncropped input): torch's values or torch's error and
    message."""
    rng = np.random.default_rng(5)
    for shape in EDGE_SHAPES:
        for pad in EDGE_PADS:
            x = rng.standard_normal(shape)
            try:
                want = torch.nn.functional.pad(torch.from_numpy(x), pad, mode=mode)
            except (RuntimeError, NotImplementedError) as e:
                if mode == "circular" and _wraps_past_the_crop(shape, pad):
                    continue
                with pytest.raises(type(e)) as got:
                    vt.nn.functional.pad(vt.from_numpy(x), pad, mode=mode)
                assert str(got.value).split("\n")[0] == str(e).split("\n")[0], (shape, pad)
                continue
            if mode == "circular" and _wraps_past_the_crop(shape, pad):
                continue
            got = vt.nn.functional.pad(vt.from_numpy(x), pad, mode=mode)
            assert tuple(got.shape) == tuple(want.shape), (shape, pad)
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"{shape} {pad}")


@pytest.mark.parametrize("pad,kw", [((1.5, 1), {}), (None, {}), ((True, 1), {}), ((1, 1), {"value": "a"})])
def test_pad_argument_types_as_torch(pad, kw):
    with pytest.raises(TypeError) as want:
        torch.nn.functional.pad(torch.ones(1, 2, 3), pad, **kw)
    with pytest.raises(TypeError) as got:
        vt.nn.functional.pad(vt.ones(1, 2, 3), pad, **kw)
    assert str(got.value) == str(want.value)


def test_pad_takes_integers_of_other_types():
    got = vt.nn.functional.pad(vt.ones(1, 2, 3), (np.int64(1), 2))
    assert tuple(got.shape) == (1, 2, 6) and got.sum().item() == 6.0
