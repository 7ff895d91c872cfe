"""Normalisation, activation, channel-dropout and resampling layers against torch: F.batch_norm / instance_norm /
group_norm and their modules (forward, float64 gradients, running statistics after several training steps,
state_dict keys, train/eval), the activation modules (values, gradients, inplace, repr), PReLU, the channel
dropouts (structure and statistics, not values), F.interpolate / nn.Upsample and pixel_shuffle / unshuffle,
and the error cases of each."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from ag_helpers import check_grads, leaves
from helpers import TORCH_NORMS_TAKE_BIAS, as_installed_torch_prints


def to_vt(t):
    return vt.from_numpy(t.detach().numpy().copy())


def close(v, t, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)


def load(vmod, tmod):
    vmod.load_state_dict({k: to_vt(v) for k, v in tmod.state_dict().items()})


def skip_if_torch_refuses(kw):
    if "bias" in kw and not TORCH_NORMS_TAKE_BIAS:
        pytest.skip("the installed torch's norm layers take no bias= (Note [Module printing across torch versions])")


# ---- batch_norm ----
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 4, 5), (2, 2, 3, 2, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_grads(shape, affine):
    C = shape[1]
    pairs = leaves([shape, (C,), (C,)], seed=len(shape))
    rm_v, rv_v = vt.zeros(C, dtype=vt.float64), vt.ones(C, dtype=vt.float64)
    rm_t, rv_t = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)

    def fn(m, x, w, b):
        rm, rv = (rm_t, rv_t) if m is torch else (rm_v, rv_v)
        return m.nn.functional.batch_norm(x, rm, rv, w if affine else None, b if affine else None, True, 0.3, 1e-3)
    check_grads(fn, pairs)  # without affine, torch and vt both leave w and b without a gradient
    close(rm_v, rm_t, 1e-12, 1e-12)
    close(rv_v, rv_t, 1e-12, 1e-12)


def test_batch_norm_eval_grads_and_no_running_stats():
    C = 3
    rm, rv = np.random.default_rng(0).standard_normal(C), np.random.default_rng(1).random(C) + 0.5
    fn = lambda m, x, w, b: m.nn.functional.batch_norm(x, m.tensor(rm), m.tensor(rv), w, b, False)
    check_grads(fn, leaves([(4, C, 5), (C,), (C,)]))
    # training without running statistics: batch statistics only
    check_grads(lambda m, x: m.nn.functional.batch_norm(x, None, None, training=True), leaves([(6, C)]))


def test_batch_norm_errors():
    F = vt.nn.functional
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(vt.randn(1, 3), vt.zeros(3), vt.ones(3), training=True)
    with pytest.raises(RuntimeError, match="running_mean must be defined"):
        F.batch_norm(vt.randn(2, 3), None, None, training=False)
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements"):
        F.batch_norm(vt.randn(2, 3), vt.zeros(4), vt.ones(3))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        vt.nn.BatchNorm1d(3)(vt.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        vt.nn.BatchNorm2d(3)(vt.randn(2, 3, 4))


@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"bias": False}, {"track_running_stats": False},
                                {"momentum": None}, {"eps": 1e-3, "momentum": 0.5}])
@pytest.mark.parametrize("name,shape", [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (3, 4, 5)),
                                        ("BatchNorm2d", (2, 4, 3, 5)), ("BatchNorm3d", (2, 4, 2, 3, 2))])
def test_batchnorm_module_training_and_eval(kw, name, shape):
    skip_if_torch_refuses(kw)
    tm = getattr(torch.nn, name)(4, **kw).double()
    vm = getattr(vt.nn, name)(4, **kw).double()
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert as_installed_torch_prints(repr(vm)) == repr(tm)  # Note [Module printing across torch versions]
    if tm.weight is not None:  # non-default affine values, so the affine part is exercised
        with torch.no_grad():
            tm.weight.uniform_(0.5, 1.5)
            if tm.bias is not None:
                tm.bias.uniform_(-1, 1)
    load(vm, tm)
    rng = np.random.default_rng(7)
    for step in range(4):
        a = rng.standard_normal(shape) * (step + 1) + step
        close(vm(vt.from_numpy(a.copy())), tm(torch.from_numpy(a.copy())), 1e-10, 1e-10)
    for k, v in tm.state_dict().items():
        close(vm.state_dict()[k], v, 1e-12, 1e-12)
    if tm.num_batches_tracked is not None:
        assert int(vm.num_batches_tracked.item()) == 4 and vm.num_batches_tracked.dtype == vt.int64
    vm.eval(), tm.eval()
    a = rng.standard_normal(shape)
    x_v, x_t = vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_()
    out_v, out_t = vm(x_v), tm(x_t)
    close(out_v, out_t, 1e-10, 1e-10)
    out_v.sum().backward(), out_t.sum().backward()
    close(x_v.grad, x_t.grad, 1e-10, 1e-10)
    if tm.running_mean is not None:  # eval leaves the running statistics alone
        close(vm.running_mean, tm.running_mean, 1e-12, 1e-12)
        assert int(vm.num_batches_tracked.item()) == 4


@pytest.mark.parametrize("cls", ["BatchNorm2d", "GroupNorm", "InstanceNorm2d"])
def test_norm_modules_float32(cls):
    args = (2, 4) if cls == "GroupNorm" else (4,)
    kw = {"track_running_stats": True} if cls == "InstanceNorm2d" else {}
    tm, vm = getattr(torch.nn, cls)(*args, **kw), getattr(vt.nn, cls)(*args, **kw)
    rng = np.random.default_rng(11)
    for step in range(3):
        a = (rng.standard_normal((3, 4, 5, 6)) * 3 + 1).astype(np.float32)
        out_v = vm(vt.from_numpy(a.copy()))
        assert out_v.dtype == vt.float32
        close(out_v, tm(torch.from_numpy(a.copy())), 1e-4, 1e-5)
    for k, v in tm.state_dict().items():
        close(vm.state_dict()[k], v, 1e-5, 1e-6)


def test_batchnorm_state_dict_round_trip_and_reset():
    tm = torch.nn.BatchNorm2d(3)
    tm(torch.randn(4, 3, 2, 2))
    vm = vt.nn.BatchNorm2d(3)
    load(vm, tm)
    close(vm.running_var, tm.running_var)
    assert int(vm.num_batches_tracked.item()) == 1
    vm.reset_running_stats()
    close(vm.running_mean, torch.zeros(3))
    close(vm.running_var, torch.ones(3))
    assert int(vm.num_batches_tracked.item()) == 0


# ---- instance_norm ----
@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 3), (1, 2, 2, 3, 2)])
def test_instance_norm_grads_and_running_stats(shape):
    C = shape[1]
    rm_v, rv_v = vt.zeros(C, dtype=vt.float64), vt.ones(C, dtype=vt.float64)
    rm_t, rv_t = torch.zeros(C, dtype=torch.float64), torch.ones(C, dtype=torch.float64)

    def fn(m, x, w, b):
        rm, rv = (rm_t, rv_t) if m is torch else (rm_v, rv_v)
        return m.nn.functional.instance_norm(x, rm, rv, w, b, momentum=0.2, eps=1e-4)
    check_grads(fn, leaves([shape, (C,), (C,)]))
    close(rm_v, rm_t, 1e-12, 1e-12)
    close(rv_v, rv_t, 1e-12, 1e-12)


@pytest.mark.parametrize("kw", [{}, {"affine": True}, {"affine": True, "track_running_stats": True}])
def test_instance_norm_module(kw):
    tm, vm = torch.nn.InstanceNorm2d(3, **kw).double(), vt.nn.InstanceNorm2d(3, **kw).double()
    assert list(vm.state_dict()) == list(tm.state_dict()) and as_installed_torch_prints(repr(vm)) == repr(tm)
    rng = np.random.default_rng(3)
    for shape in [(2, 3, 4, 5), (3, 4, 5), (2, 3, 4, 5)]:  # batched and unbatched
        a = rng.standard_normal(shape)
        close(vm(vt.from_numpy(a.copy())), tm(torch.from_numpy(a.copy())), 1e-10, 1e-10)
    vm.eval(), tm.eval()
    a = rng.standard_normal((2, 3, 4, 5))
    close(vm(vt.from_numpy(a.copy())), tm(torch.from_numpy(a.copy())), 1e-10, 1e-10)
    with pytest.raises(ValueError, match=r"expected 3D or 4D input \(got 2D input\)"):
        vm(vt.randn(3, 4))


# ---- group_norm ----
@pytest.mark.parametrize("shape,groups", [((2, 6), 3), ((2, 6, 5), 2), ((3, 4, 3, 2), 4), ((1, 6, 2, 2, 3), 1)])
def test_group_norm_grads(shape, groups):
    C = shape[1]
    check_grads(lambda m, x, w, b: m.nn.functional.group_norm(x, groups, w, b, 1e-3), leaves([shape, (C,), (C,)]))
    check_grads(lambda m, x: m.nn.functional.group_norm(x, groups), leaves([shape]))


@pytest.mark.parametrize("kw", [{}, {"affine": False}, {"bias": False}, {"eps": 1e-2}])
def test_group_norm_module(kw):
    skip_if_torch_refuses(kw)
    tm, vm = torch.nn.GroupNorm(2, 4, **kw).double(), vt.nn.GroupNorm(2, 4, **kw).double()
    assert list(vm.state_dict()) == list(tm.state_dict()) and as_installed_torch_prints(repr(vm)) == repr(tm)
    if tm.weight is not None:
        with torch.no_grad():
            tm.weight.uniform_(0.5, 1.5)
    load(vm, tm)
    a = np.random.default_rng(0).standard_normal((3, 4, 5, 2))
    close(vm(vt.from_numpy(a.copy())), tm(torch.from_numpy(a.copy())), 1e-10, 1e-10)


def test_group_norm_errors():
    with pytest.raises(ValueError, match=r"num_channels \(4\) must be divisible by num_groups \(3\)"):
        vt.nn.GroupNorm(3, 4)
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        vt.nn.functional.group_norm(vt.randn(2, 3), 2)
    with pytest.raises(RuntimeError, match="Expected weight to be a vector"):
        vt.nn.functional.group_norm(vt.randn(2, 4), 2, vt.ones(3))


# ---- activations ----
ACTS = [
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.2}), ("ELU", {"alpha": 0.7}), ("Mish", {}),
    ("Softplus", {"beta": 2.0, "threshold": 3.0}), ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("ReLU6", {}),
    ("Sigmoid", {}), ("LogSigmoid", {}), ("Hardswish", {}), ("Hardsigmoid", {}), ("PReLU", {}),
    ("PReLU", {"num_parameters": 3, "init": 0.1}),
]


@pytest.mark.parametrize("name,kw", ACTS)
def test_activation_modules(name, kw):
    tm, vm = getattr(torch.nn, name)(**kw).double(), getattr(vt.nn, name)(**kw).double()
    assert repr(vm) == repr(tm)
    assert list(vm.state_dict()) == list(tm.state_dict())
    (x_v, x_t), = leaves([(4, 3, 5)], seed=2)
    with torch.no_grad():  # values spread past every kink (hardtanh's, relu6's at 6, hardswish's at +-3)
        x_t.mul_(4)
    x_v = to_vt(x_t).requires_grad_()
    out_v, out_t = vm(x_v), tm(x_t)
    close(out_v, out_t, 1e-10, 1e-12)
    g = np.random.default_rng(5).standard_normal(tuple(out_t.shape))
    out_v.backward(vt.from_numpy(g.copy())), out_t.backward(torch.from_numpy(g.copy()))
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32 even for float64; vt's slope is exact
    close(x_v.grad, x_t.grad, 1e-7 if name == "Hardsigmoid" else 1e-10, 1e-12)
    for (n, p_v), (_, p_t) in zip(vm.named_parameters(), tm.named_parameters()):
        close(p_v.grad, p_t.grad, 1e-10, 1e-12)


@pytest.mark.parametrize("name,kw", [("LeakyReLU", {"negative_slope": 0.3}), ("ELU", {}), ("Hardtanh", {}),
                                     ("ReLU6", {}), ("Mish", {}), ("Hardswish", {}), ("Hardsigmoid", {})])
def test_activation_inplace(name, kw):
    tm, vm = getattr(torch.nn, name)(inplace=True, **kw), getattr(vt.nn, name)(inplace=True, **kw)
    assert repr(vm) == repr(tm)
    a = np.random.default_rng(1).standard_normal((3, 7)).astype(np.float32) * 5
    x_v, x_t = vt.from_numpy(a.copy()), torch.from_numpy(a.copy())
    out_v = vm(x_v)
    tm(x_t)
    assert out_v is x_v
    close(x_v, x_t)


@pytest.mark.parametrize("fn", ["relu6", "hardswish", "hardsigmoid"])
def test_activation_functionals_grads(fn):
    (x_v, x_t), = leaves([(3, 11)], seed=4)
    with torch.no_grad():
        x_t.mul_(4)
    pair = [(to_vt(x_t).requires_grad_(), x_t)]
    if fn == "hardsigmoid":  # torch's backward slope is float32(1/6) even in float64 (see above)
        out_v = vt.nn.functional.hardsigmoid(pair[0][0])
        close(out_v, torch.nn.functional.hardsigmoid(x_t), 1e-12, 1e-12)
        out_v.sum().backward()
        a = x_t.detach().numpy()
        np.testing.assert_allclose(pair[0][0].grad.numpy(), np.where((a > -3) & (a < 3), 1 / 6, 0.0), rtol=1e-14)
        return
    check_grads(lambda m, x: getattr(m.nn.functional, fn)(x), pair)


def test_prelu_functional_and_errors():
    check_grads(lambda m, x, w: m.nn.functional.prelu(x, w), leaves([(2, 3, 4), (3,)]))
    check_grads(lambda m, x, w: m.nn.functional.prelu(x, w), leaves([(5,), (1,)]))
    check_grads(lambda m, x, w: m.nn.functional.prelu(x, w), leaves([(), (1,)]))
    with pytest.raises(RuntimeError, match="Found parameter numbers = 3 and channel size = 1"):
        vt.nn.functional.prelu(vt.randn(3), vt.ones(3))
    with pytest.raises(RuntimeError, match="Expected `weight` to be a scalar or 1D tensor"):
        vt.nn.functional.prelu(vt.randn(3, 2), vt.ones(1, 2))
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel size"):
        vt.nn.PReLU(3)(vt.randn(2, 4))
    assert tuple(vt.nn.PReLU(5).weight.shape) == (5,)
    with pytest.raises(AssertionError):
        vt.nn.Hardtanh(1.0, -1.0)


# ---- channel dropout (structure and statistics, not values) ----
@pytest.mark.parametrize("name,shape,lead", [("Dropout1d", (40, 50, 6), 2), ("Dropout1d", (300, 7), 1),
                                             ("Dropout2d", (40, 50, 3, 4), 2), ("Dropout2d", (40, 50, 6), 2),
                                             ("Dropout3d", (40, 50, 2, 2, 3), 2), ("Dropout3d", (300, 2, 3, 2), 1)])
@pytest.mark.parametrize("p", [0.2, 0.6])
@pytest.mark.filterwarnings("ignore:dropout2d")
def test_channel_dropout_structure_and_statistics(name, shape, lead, p):
    m = getattr(vt.nn, name)(p)
    a = np.random.default_rng(0).random(shape) + 1.0  # no zeros of its own
    x = vt.from_numpy(a.copy()).requires_grad_()
    out = m(x)
    o = out.detach().numpy()
    planes_o = o.reshape(int(np.prod(shape[:lead])), -1)
    planes_a = a.reshape(planes_o.shape)
    dropped = (planes_o == 0).all(1)
    kept = np.isclose(planes_o, planes_a / (1 - p), rtol=1e-12).all(1)
    assert (dropped | kept).all()  # each channel whole: zeroed or scaled by 1/(1-p)
    n = len(dropped)
    assert abs(dropped.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    out.sum().backward()  # the gradient is the mask, 0 or 1/(1-p) per channel
    gr = x.grad.numpy().reshape(planes_o.shape)
    np.testing.assert_allclose(gr, np.where(kept[:, None], 1 / (1 - p), 0.0) * np.ones_like(gr), rtol=1e-12)
    m.eval()
    assert m(x) is x


def test_channel_dropout_edges_and_errors():
    F = vt.nn.functional
    x = vt.randn(4, 3, 2, 2)
    assert F.dropout2d(x, 0.0) is x and F.dropout2d(x, 0.5, training=False) is x
    assert (F.dropout2d(x, 1.0).numpy() == 0).all()
    y = x.clone()
    assert F.dropout2d(y, 0.5, inplace=True) is y
    assert repr(vt.nn.Dropout2d()) == repr(torch.nn.Dropout2d()) and repr(vt.nn.Dropout1d(0.2, True)) == repr(
        torch.nn.Dropout1d(0.2, True))
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        vt.nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        F.dropout1d(vt.randn(2, 3), -0.1)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input"):
        F.dropout1d(vt.randn(2, 3, 4, 5))
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        F.dropout2d(vt.randn(2, 3, 4))


def test_alpha_dropout_structure_and_statistics():
    p, alpha = 0.3, 1.7580993408473766
    a_scale = 1 / np.sqrt((alpha ** 2 * p + 1) * (1 - p))
    m = vt.nn.AlphaDropout(p).double()
    assert repr(m) == repr(torch.nn.AlphaDropout(p))
    a = np.random.default_rng(0).standard_normal((200, 500))  # unit-normal input: SELU's fixed point
    x = vt.from_numpy(a.copy()).requires_grad_()
    out = m(x)
    o = out.detach().numpy()
    dropped_value = -alpha * a_scale * (1 - p)
    kept = np.isclose(o, a * a_scale + alpha * a_scale * p, rtol=1e-12, atol=1e-12)
    dropped = np.isclose(o, dropped_value, rtol=1e-12, atol=0)
    assert (kept | dropped).all() and abs(dropped.mean() - p) < 0.01
    assert abs(o.mean()) < 0.02 and abs(o.std() - 1) < 0.02  # mean and variance kept
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, a_scale, 0.0), rtol=1e-12)
    m.eval()
    assert m(x) is x
    assert vt.nn.functional.alpha_dropout(x, 0.5) is x  # training=False by default, as torch's
    assert (vt.nn.functional.alpha_dropout(vt.ones(3), 1.0, True).numpy() == 0).all()
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        vt.nn.functional.alpha_dropout(x, 1.2, True)


# ---- interpolate / Upsample ----
INTERP = [
    ((2, 3, 5), dict(scale_factor=2)), ((2, 3, 5), dict(size=8)), ((2, 3, 7), dict(scale_factor=0.6)),
    ((2, 3, 5), dict(size=3, mode="nearest-exact")), ((1, 2, 6), dict(scale_factor=1.7, mode="nearest-exact")),
    ((2, 3, 5), dict(scale_factor=1.5, mode="linear")), ((2, 3, 5), dict(size=9, mode="linear", align_corners=True)),
    ((2, 3, 9), dict(size=4, mode="linear")), ((1, 1, 4), dict(size=1, mode="linear", align_corners=True)),
    ((2, 3, 4, 5), dict(scale_factor=2)), ((2, 3, 4, 5), dict(size=(7, 3))),
    ((1, 2, 5, 7), dict(scale_factor=(1.3, 0.7))), ((1, 1, 10), dict(scale_factor=0.3)),
    ((1, 1, 7, 9), dict(scale_factor=(2.5, 1 / 3))), ((1, 1, 7, 9), dict(size=(21, 3))),
    ((2, 3, 4, 5), dict(scale_factor=3, mode="nearest-exact")),
    ((1, 2, 5, 7), dict(size=(3, 11), mode="nearest-exact")),
    ((2, 3, 4, 5), dict(scale_factor=2, mode="bilinear")),
    ((2, 3, 4, 5), dict(scale_factor=(1.3, 2.6), mode="bilinear")),
    ((2, 3, 4, 5), dict(scale_factor=(1.3, 2.6), mode="bilinear", recompute_scale_factor=True)),
    ((2, 3, 4, 5), dict(scale_factor=(1.3, 2.6), mode="bilinear", align_corners=True)),
    ((2, 3, 4, 5), dict(size=(7, 2), mode="bilinear", align_corners=False)),
    ((1, 2, 6, 9), dict(size=(4, 5), mode="bilinear", align_corners=True)),
    ((1, 2, 6, 9), dict(scale_factor=0.5, mode="bilinear")),
    ((1, 2, 3, 4, 2), dict(scale_factor=(2, 1.5, 3), mode="trilinear")), ((1, 2, 3, 4, 2), dict(size=(2, 5, 3))),
    ((0, 3, 4, 5), dict(scale_factor=2, mode="bilinear")),
]


@pytest.mark.parametrize("shape,kw", INTERP)
def test_interpolate_float32_values(shape, kw):
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out_v = vt.nn.functional.interpolate(vt.from_numpy(a.copy()), **kw)
    out_t = torch.nn.functional.interpolate(torch.from_numpy(a.copy()), **kw)
    assert tuple(out_v.shape) == tuple(out_t.shape)
    close(out_v, out_t, 1e-5, 1e-6)


@pytest.mark.parametrize("shape,kw", [c for c in INTERP if c[0][0] > 0])
def test_interpolate_float64_grads(shape, kw):
    check_grads(lambda m, x: m.nn.functional.interpolate(x, **kw), leaves([shape]))


def test_interpolate_errors():
    F, x = vt.nn.functional, vt.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating modes"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="Got 3D input, but bilinear mode needs 4D input"):
        F.interpolate(vt.randn(1, 2, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(NotImplementedError, match="Got 4D input, but linear mode needs 3D input"):
        F.interpolate(x, scale_factor=2, mode="linear")
    with pytest.raises(ValueError, match="Input and output must have the same number of spatial dimensions"):
        F.interpolate(x, size=(2, 3, 4))
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful with an explicit size"):
        F.interpolate(x, size=3, recompute_scale_factor=True)
    with pytest.raises(NotImplementedError):
        F.interpolate(x, scale_factor=2, mode="bogus")


@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(size=(3, 7), mode="bilinear"),
                                dict(scale_factor=(1.5, 2), mode="bilinear", align_corners=True)])
def test_upsample_module(kw):
    tm, vm = torch.nn.Upsample(**kw), vt.nn.Upsample(**kw)
    assert repr(vm) == repr(tm)
    a = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    close(vm(vt.from_numpy(a.copy())), tm(torch.from_numpy(a.copy())))


# ---- pixel_shuffle / pixel_unshuffle ----
@pytest.mark.parametrize("shape,r", [((2, 12, 3, 4), 2), ((8, 2, 3), 2), ((2, 1, 18, 2, 1), 3), ((1, 4, 2, 2), 1)])
def test_pixel_shuffle_grads_and_inverse(shape, r):
    check_grads(lambda m, x: m.nn.functional.pixel_shuffle(x, r), leaves([shape]))
    up = list(shape[:-3]) + [shape[-3] // (r * r), shape[-2] * r, shape[-1] * r]
    check_grads(lambda m, x: m.nn.functional.pixel_unshuffle(x, r), leaves([up]))
    x = vt.randn(*shape)
    assert np.array_equal(vt.nn.functional.pixel_unshuffle(vt.nn.functional.pixel_shuffle(x, r), r).numpy(),
                          x.numpy())


def test_pixel_shuffle_empty():
    # Forward only: torch's own backward refuses an empty input's gradient (PixelShuffleBackward0 returns the
    # wrong shape), and torch's pixel_unshuffle hands an empty input back unshaped ([2, 1, 0, 4] stays so);
    # vt gives the shape the non-empty rule gives.
    for shape in [(1, 4, 0, 2), (0, 4, 2, 2)]:
        out_t = torch.nn.functional.pixel_shuffle(torch.randn(shape), 2)
        assert tuple(vt.nn.functional.pixel_shuffle(vt.randn(*shape), 2).shape) == tuple(out_t.shape)
    assert tuple(vt.nn.functional.pixel_unshuffle(vt.randn(2, 1, 0, 4), 2).shape) == (2, 4, 0, 2)


def test_pixel_shuffle_modules_and_errors():
    assert vt.pixel_shuffle is vt.nn.functional.pixel_shuffle and vt.prelu is vt.nn.functional.prelu
    assert vt.pixel_unshuffle is vt.nn.functional.pixel_unshuffle
    assert repr(vt.nn.PixelShuffle(3)) == repr(torch.nn.PixelShuffle(3))
    assert repr(vt.nn.PixelUnshuffle(2)) == repr(torch.nn.PixelUnshuffle(2))
    a = np.random.default_rng(0).standard_normal((2, 8, 3, 3)).astype(np.float32)
    close(vt.nn.PixelShuffle(2)(vt.from_numpy(a.copy())), torch.nn.PixelShuffle(2)(torch.from_numpy(a.copy())))
    F = vt.nn.functional
    with pytest.raises(RuntimeError, match="at least 3 dimensions"):
        F.pixel_shuffle(vt.randn(4, 4), 2)
    with pytest.raises(RuntimeError, match=r"input.size\(-3\)=5 is not divisible by 4"):
        F.pixel_shuffle(vt.randn(5, 2, 2), 2)
    with pytest.raises(RuntimeError, match=r"input.size\(-2\)=3 is not divisible by 2"):
        F.pixel_unshuffle(vt.randn(1, 3, 4), 2)
    with pytest.raises(RuntimeError, match=r"input.size\(-1\)=5 is not divisible by 2"):
        F.pixel_unshuffle(vt.randn(1, 4, 5), 2)


def test_relu_silu_modules_take_inplace_and_return_their_input():
    import torch

    for name in ("ReLU", "SiLU"):
        for inplace in (False, True):
            m, t = getattr(vt.nn, name)(inplace=inplace), getattr(torch.nn, name)(inplace=inplace)
            assert repr(m) == repr(t)
            x = vt.from_numpy(np.linspace(-2, 2, 7).astype(np.float32))
            xt = torch.from_numpy(np.linspace(-2, 2, 7).astype(np.float32))
            y, yt = m(x), t(xt)
            assert (y is x) == inplace
            np.testing.assert_allclose(y.numpy(), yt.numpy(), rtol=1e-6)
    x = vt.randn(5)
    assert vt.nn.functional.silu(x, inplace=True) is x and vt.nn.functional.mish(x, inplace=True) is x
    assert repr(vt.nn.Tanh()) == "Tanh()" and vt.nn.Tanh()(vt.zeros(2)).tolist() == [0.0, 0.0]
