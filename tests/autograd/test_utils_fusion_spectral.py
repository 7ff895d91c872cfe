"""nn.utils against torch: fuse_conv_bn_eval / fuse_conv_bn_weights (conv 1-3d, transposed, grouped, with and
without bias or affine) and fuse_linear_bn_eval / fuse_linear_bn_weights compute what module + bn computed in eval
and equal torch's fused values; skip_init; convert_conv{2,3}d_weight_memory_format (strides and values as torch's,
same Parameter object); the deprecated clip_grad_norm; the hook-based spectral_norm / remove_spectral_norm (state
keys, power iteration in train, none in eval, outputs and gradients equal torch's from the same u, v)."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.nn.utils import clip_grad
from vibetensor.torch.nn.utils import fusion as fu
from vibetensor.torch.nn.utils.spectral_norm import remove_spectral_norm, spectral_norm


def to_vt(a):
    return vt.from_numpy(np.array(a, copy=True))


def copy_module(tm, vm):
    """vt module vm takes torch module tm's parameters and buffers (float64)."""
    sd = {k: to_vt(v.detach().numpy()) for k, v in tm.state_dict().items()}
    vm.load_state_dict(sd)


def np64(t):
    return t.detach().numpy()


def make_bn(kind, c, affine, rng):
    tbn = getattr(torch.nn, kind)(c, affine=affine).double()
    with torch.no_grad():
        tbn.running_mean.copy_(torch.tensor(rng.standard_normal(c)))
        tbn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2.0, c)))
        if affine:
            tbn.weight.copy_(torch.tensor(rng.standard_normal(c)))
            tbn.bias.copy_(torch.tensor(rng.standard_normal(c)))
    vbn = getattr(vt.nn, kind)(c, affine=affine, dtype=vt.float64)
    copy_module(tbn, vbn)
    return tbn.eval(), vbn.eval()


CONV_CASES = [("Conv1d", "BatchNorm1d", {}, (2, 3, 9)), ("Conv2d", "BatchNorm2d", {"bias": False}, (2, 3, 6, 5)),
              ("Conv2d", "BatchNorm2d", {"groups": 3, "padding": 1}, (1, 3, 5, 5)),
              ("Conv3d", "BatchNorm3d", {}, (1, 3, 4, 5, 4)),
              ("ConvTranspose1d", "BatchNorm1d", {}, (2, 3, 7)),
              ("ConvTranspose2d", "BatchNorm2d", {"bias": False, "stride": 2}, (1, 3, 4, 4)),
              ("ConvTranspose3d", "BatchNorm3d", {}, (1, 3, 3, 4, 3))]


@pytest.mark.parametrize("conv,bn,kw,xshape", CONV_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_fuse_conv_bn_eval_matches_conv_then_bn(conv, bn, kw, xshape, affine, rng):
    tconv = getattr(torch.nn, conv)(3, 6, 3, **kw).double().eval()
    vconv = getattr(vt.nn, conv)(3, 6, 3, dtype=vt.float64, **kw).eval()
    copy_module(tconv, vconv)
    tbn, vbn = make_bn(bn, 6, affine, rng)
    transpose = conv.startswith("ConvTranspose")
    tf = torch.nn.utils.fuse_conv_bn_eval(tconv, tbn, transpose)
    vf = fu.fuse_conv_bn_eval(vconv, vbn, transpose)
    assert type(vf) is type(vconv) and vf is not vconv and vf.weight is not vconv.weight
    assert isinstance(vf.weight, vt.nn.Parameter) and isinstance(vf.bias, vt.nn.Parameter)
    np.testing.assert_allclose(np64(vf.weight), np64(tf.weight), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np64(vf.bias), np64(tf.bias), rtol=1e-12, atol=1e-12)
    x = rng.standard_normal(xshape)
    ref = vbn(vconv(to_vt(x)))
    np.testing.assert_allclose(np64(vf(to_vt(x))), np64(ref), rtol=1e-10, atol=1e-10)
    if "bias" in kw:  # the original conv is untouched (no bias stays no bias)
        assert vconv.bias is None


@pytest.mark.parametrize("out,bnc", [(5, 5), (4, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_fuse_linear_bn_eval(out, bnc, bias, rng):
    tl = torch.nn.Linear(3, out, bias=bias).double().eval()
    vl = vt.nn.Linear(3, out, bias=bias, dtype=vt.float64).eval()
    copy_module(tl, vl)
    tbn, vbn = make_bn("BatchNorm1d", bnc, True, rng)
    tf, vf = torch.nn.utils.fuse_linear_bn_eval(tl, tbn), fu.fuse_linear_bn_eval(vl, vbn)
    np.testing.assert_allclose(np64(vf.weight), np64(tf.weight), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np64(vf.bias), np64(tf.bias), rtol=1e-12, atol=1e-12)
    x = rng.standard_normal((7, 3))
    np.testing.assert_allclose(np64(vf(to_vt(x))), np64(tf(torch.tensor(x))), rtol=1e-10, atol=1e-10)
    if bnc == out:
        np.testing.assert_allclose(np64(vf(to_vt(x))), np64(vbn(vl(to_vt(x)))), rtol=1e-10, atol=1e-10)


def test_fuse_errors_match_torch():
    tl, vl = torch.nn.Linear(3, 4), vt.nn.Linear(3, 4)
    tbn, vbn = torch.nn.BatchNorm1d(4), vt.nn.BatchNorm1d(4)
    for t_call, v_call in [(lambda: torch.nn.utils.fuse_linear_bn_eval(tl, tbn),
                            lambda: fu.fuse_linear_bn_eval(vl, vbn)),
                           (lambda: torch.nn.utils.fuse_conv_bn_eval(torch.nn.Conv2d(2, 4, 1), tbn.eval()),
                            lambda: fu.fuse_conv_bn_eval(vt.nn.Conv2d(2, 4, 1), vbn.eval()))]:
        with pytest.raises(AssertionError, match="Fusion only for eval!"):
            t_call()
        with pytest.raises(AssertionError, match="Fusion only for eval!"):
            v_call()
        tbn.train(), vbn.train()
    tbn3, vbn3 = torch.nn.BatchNorm1d(3).eval(), vt.nn.BatchNorm1d(3).eval()
    with pytest.raises(AssertionError, match="linear.out_features=4 and bn.num_features=3"):
        torch.nn.utils.fuse_linear_bn_eval(tl.eval(), tbn3)
    with pytest.raises(AssertionError, match="linear.out_features=4 and bn.num_features=3"):
        fu.fuse_linear_bn_eval(vl.eval(), vbn3)
    vnone = vt.nn.BatchNorm1d(4, track_running_stats=False).eval()
    with pytest.raises(AssertionError, match="running_mean and bn.running_var must not be None"):
        fu.fuse_linear_bn_eval(vl, vnone)


def test_fuse_grouped_transposed_conv_is_refused_as_torch():
    # torch scales dim 1 of the (in, out / groups, ...) weight by the bn's out channels: a shape error for groups > 1
    tconv, vconv = torch.nn.ConvTranspose2d(3, 6, 3, groups=3).eval(), vt.nn.ConvTranspose2d(3, 6, 3, groups=3).eval()
    with pytest.raises(RuntimeError, match="must match the size"):
        torch.nn.utils.fuse_conv_bn_eval(tconv, torch.nn.BatchNorm2d(6).eval(), True)
    with pytest.raises(RuntimeError, match="must match the size"):
        fu.fuse_conv_bn_eval(vconv, vt.nn.BatchNorm2d(6).eval(), True)


def test_fuse_weights_keep_dtype_and_requires_grad(rng):
    w = vt.nn.Parameter(to_vt(rng.standard_normal((4, 2, 3))).float(), requires_grad=False)
    rm, rv = to_vt(rng.standard_normal(4)), to_vt(rng.uniform(1, 2, 4))
    fw, fb = fu.fuse_conv_bn_weights(w, None, rm, rv, 1e-5, None, None)
    tw, tb = torch.nn.utils.fuse_conv_bn_weights(torch.tensor(w.numpy()).requires_grad_(False), None,
                                                 torch.tensor(rm.numpy()), torch.tensor(rv.numpy()), 1e-5, None, None)
    assert fw.dtype == vt.float32 and fb.dtype == vt.float32 and not fw.requires_grad
    assert fb.requires_grad == tb.requires_grad
    np.testing.assert_allclose(fw.numpy(), tw.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(fb.numpy(), tb.detach().numpy(), rtol=1e-6)
    lw, lb = fu.fuse_linear_bn_weights(to_vt(rng.standard_normal((4, 3))), None, rm, rv, 1e-3, vt.ones(4).double(),
                                       vt.zeros(4).double())
    assert isinstance(lw, vt.nn.Parameter) and tuple(lb.shape) == (4,)


def test_skip_init():
    m = fu.skip_init(vt.nn.Linear, 5, 3, bias=False)
    assert isinstance(m, vt.nn.Linear) and tuple(m.weight.shape) == (3, 5) and m.bias is None
    m = fu.skip_init(vt.nn.Conv2d, in_channels=2, out_channels=4, kernel_size=3, device="cpu", dtype=vt.float64)
    assert m.weight.dtype == vt.float64 and m.weight.requires_grad

    class NoDevice(vt.nn.Module):
        def __init__(self, n):
            super().__init__()

    with pytest.raises(RuntimeError, match="Module must support a 'device' arg to skip initialization"):
        fu.skip_init(NoDevice, 3)
    with pytest.raises(RuntimeError, match="Expected a Module; got"):
        fu.skip_init(int, 3)
    with pytest.raises(RuntimeError, match="Expected a Module; got"):
        torch.nn.utils.skip_init(int, 3)


@pytest.mark.parametrize("fn,mods,fmt", [
    ("convert_conv2d_weight_memory_format", ["Conv2d", "ConvTranspose2d", "Conv3d"], "channels_last"),
    ("convert_conv3d_weight_memory_format", ["Conv3d", "ConvTranspose3d", "Conv2d"], "channels_last_3d"),
    ("convert_conv2d_weight_memory_format", ["Conv2d", "ConvTranspose2d", "Conv1d"], "contiguous_format"),
])
def test_convert_weight_memory_format(fn, mods, fmt):
    def build(nn, **kw):
        return nn.Sequential(getattr(nn, mods[0])(4, 6, 3, **kw), nn.Sequential(getattr(nn, mods[1])(6, 2, 3, **kw)),
                             getattr(nn, mods[2])(2, 2, 1, **kw))
    tm, vm = build(torch.nn).double(), build(vt.nn, dtype=vt.float64)
    copy_module(tm, vm)
    if fmt == "contiguous_format":  # from channels_last back to contiguous
        getattr(torch.nn.utils, fn)(tm, torch.channels_last)
        getattr(fu, fn)(vm, vt.channels_last)
    before = [p for p in vm.parameters()]
    assert getattr(fu, fn)(vm, getattr(vt, fmt)) is vm
    getattr(torch.nn.utils, fn)(tm, getattr(torch, fmt))
    assert all(a is b for a, b in zip(before, vm.parameters()))
    for (k, tp), (_, vp) in zip(tm.named_parameters(), vm.named_parameters()):
        assert tuple(vp.stride()) == tuple(tp.stride()), k
        np.testing.assert_array_equal(np64(vp), np64(tp))
        assert vp.requires_grad


def test_clip_grad_norm_deprecated_alias(rng):
    g = rng.standard_normal((3, 4))
    tp, vp = torch.tensor(g * 0, requires_grad=True), vt.nn.Parameter(to_vt(g * 0))
    tp.grad, vp.grad = torch.tensor(g), to_vt(g)
    with pytest.warns(FutureWarning) as trec:
        tn = torch.nn.utils.clip_grad_norm(tp, 0.5, norm_type=3.0)
    with pytest.warns(FutureWarning) as vrec:
        vn = clip_grad.clip_grad_norm(vp, 0.5, norm_type=3.0)
    assert str(vrec[0].message) == str(trec[0].message) and vrec[0].filename == __file__
    np.testing.assert_allclose(float(vn), float(tn), rtol=1e-12)
    np.testing.assert_allclose(vp.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


# ---- spectral_norm ---------------------------------------------------------------------------------------

SN_CASES = [("Linear", (5, 4), {}, (3, 5)), ("Conv2d", (3, 4, 3), {"n_power_iterations": 3}, (2, 3, 5, 5)),
            ("ConvTranspose2d", (3, 4, 3), {}, (2, 3, 4, 4)), ("Conv1d", (2, 6, 2), {"dim": 1, "eps": 1e-4}, (2, 2, 5))]


def sn_pair(name, args, kw, rng):
    tm = getattr(torch.nn, name)(*args).double()
    vm = getattr(vt.nn, name)(*args, dtype=vt.float64)
    copy_module(tm, vm)
    torch.nn.utils.spectral_norm(tm, **kw)
    spectral_norm(vm, **kw)
    copy_module(tm, vm)  # the random u, v start equal
    return tm, vm


@pytest.mark.parametrize("name,args,kw,xshape", SN_CASES)
def test_spectral_norm_train_and_eval_match_torch(name, args, kw, xshape, rng):
    tm, vm = sn_pair(name, args, kw, rng)
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert "weight" not in dict(vm.named_parameters()) and "weight_orig" in dict(vm.named_parameters())
    assert sorted(dict(vm.named_buffers())) == ["weight_u", "weight_v"]
    for step in range(3):
        x = rng.standard_normal(xshape)
        tx, vx = torch.tensor(x), to_vt(x)
        ty, vy = tm(tx), vm(vx)
        np.testing.assert_allclose(np64(vy), np64(ty), rtol=1e-10, atol=1e-10)
        (ty ** 2).sum().backward()
        (vy ** 2).sum().backward()
        np.testing.assert_allclose(vm.weight_orig.grad.numpy(), tm.weight_orig.grad.numpy(), rtol=1e-9, atol=1e-9)
        for b in ("weight_u", "weight_v"):
            np.testing.assert_allclose(np64(getattr(vm, b)), np64(getattr(tm, b)), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np64(vm.weight), np64(tm.weight), rtol=1e-10, atol=1e-12)
    tm.eval(), vm.eval()
    u_before = vm.weight_u.numpy().copy()
    x = rng.standard_normal(xshape)
    np.testing.assert_allclose(np64(vm(to_vt(x))), np64(tm(torch.tensor(x))), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(vm.weight_u.numpy(), u_before)  # no power iteration in eval


def test_spectral_norm_converges_to_the_largest_singular_value(rng):
    m = vt.nn.Linear(6, 8, dtype=vt.float64)
    spectral_norm(m, n_power_iterations=50)
    m(vt.zeros(1, 6, dtype=vt.float64))
    s = np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)
    assert s[0] == pytest.approx(1.0, rel=1e-6)
    u, v = m.weight_u.numpy(), m.weight_v.numpy()
    assert np.linalg.norm(u) == pytest.approx(1.0) and np.linalg.norm(v) == pytest.approx(1.0)


def test_remove_spectral_norm_matches_torch(rng):
    tm, vm = sn_pair("Linear", (4, 3), {}, rng)
    x = rng.standard_normal((2, 4))
    tm(torch.tensor(x)), vm(to_vt(x))
    remove_spectral_norm(vm)
    torch.nn.utils.remove_spectral_norm(tm)
    assert list(vm.state_dict()) == list(tm.state_dict()) == ["bias", "weight"]
    assert isinstance(vm.weight, vt.nn.Parameter) and not vm._forward_pre_hooks
    np.testing.assert_allclose(np64(vm.weight), np64(tm.weight), rtol=1e-12)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in"):
        torch.nn.utils.remove_spectral_norm(tm)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in"):
        remove_spectral_norm(vm)


def test_spectral_norm_state_dict_loads_from_torch(rng):
    tm, _ = sn_pair("Conv2d", (2, 3, 3), {}, rng)
    tm(torch.randn(1, 2, 5, 5, dtype=torch.float64))
    vm = spectral_norm(vt.nn.Conv2d(2, 3, 3, dtype=vt.float64))
    copy_module(tm, vm)
    tm.eval(), vm.eval()
    x = rng.standard_normal((1, 2, 5, 5))
    np.testing.assert_allclose(np64(vm(to_vt(x))), np64(tm(torch.tensor(x))), rtol=1e-10, atol=1e-10)


def test_spectral_norm_errors_match_torch():
    for lib, nn_ in ((torch.nn.utils.spectral_norm, torch.nn), (spectral_norm, vt.nn)):
        m = lib(nn_.Linear(2, 3))
        with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks on the same parameter weight"):
            lib(m)
        with pytest.raises(ValueError, match="Expected n_power_iterations to be positive, but got "
                                             "n_power_iterations=0"):
            lib(nn_.Linear(2, 3), n_power_iterations=0)
        with pytest.raises(ValueError, match="`SpectralNorm` cannot be applied as parameter `bias` is None"):
            lib(nn_.Linear(2, 3, bias=False), name="bias")
        with pytest.raises(KeyError):
            lib(nn_.Linear(2, 3), name="nope")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectral_norm(vt.nn.Linear(2, 3), name="bias")  # a 1-D parameter is a (n, 1) matrix, as torch's


def test_public_names():
    u = vt.nn.utils
    for name in ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights",
                 "skip_init", "convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]:
        assert getattr(u, name) is getattr(fu, name)
    assert u.spectral_norm is spectral_norm and u.remove_spectral_norm is remove_spectral_norm
    assert u.clip_grad_norm is clip_grad.clip_grad_norm
    assert u.init.skip_init is fu.skip_init and u.memory_format.convert_conv2d_weight_memory_format is \
        fu.convert_conv2d_weight_memory_format and u.fusion is fu
