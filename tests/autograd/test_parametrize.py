"""nn.utils.parametrize, nn.utils.parametrizations (weight_norm, spectral_norm) and the legacy weight_norm vs torch:
module layout, state_dict keys, forward values, float64 gradients of the originals, removal and error cases."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor.torch.nn.utils import parametrize as vP
from vibetensor.torch.nn.utils import parametrizations as vPs
from vibetensor.torch.nn.utils.weight_norm import weight_norm as v_wn, remove_weight_norm as v_rwn

TOL = dict(rtol=1e-10, atol=1e-12)


def npv(x):
    return x.detach().numpy()


def pair_linear(i=3, o=4, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((o, i))
    b = rng.standard_normal(o)
    tm = torch.nn.Linear(i, o, bias=bias).double()
    vm = vt.nn.Linear(i, o, bias=bias).to(vt.float64)
    with torch.no_grad():
        tm.weight.copy_(torch.from_numpy(w))
        if bias:
            tm.bias.copy_(torch.from_numpy(b))
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    return vm, tm


def make_sym(m):
    class Sym(m.nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

        def right_inverse(self, a):
            return a.triu()
    return Sym()


def make_scale(m, k):
    class Scale(m.nn.Module):
        def forward(self, x):
            return x * k

        def right_inverse(self, a):
            return a / k
    return Scale()


def make_split(m):
    class Split(m.nn.Module):  # two originals: weight = a + b
        def forward(self, a, b):
            return a + b

        def right_inverse(self, w):
            return w * 0.25, w * 0.75
    return Split()


def run_grads(vm, tm, x_shape, seed=3):
    x = np.random.default_rng(seed).standard_normal(x_shape)
    yt = tm(torch.from_numpy(x))
    yv = vm(vt.from_numpy(x.copy()))
    np.testing.assert_allclose(npv(yv), npv(yt), **TOL)
    g = np.random.default_rng(seed + 1).standard_normal(tuple(yt.shape))
    yt.backward(torch.from_numpy(g))
    yv.backward(vt.from_numpy(g.copy()))
    tp, vp = dict(tm.named_parameters()), dict(vm.named_parameters())
    assert list(vp) == list(tp)
    for k in tp:
        np.testing.assert_allclose(npv(vp[k].grad), npv(tp[k].grad), **TOL, err_msg=k)


def test_register_layout_values_grads():
    vm, tm = pair_linear(4, 4)
    vP.register_parametrization(vm, "weight", make_sym(vt))
    torch.nn.utils.parametrize.register_parametrization(tm, "weight", make_sym(torch))
    assert type(vm).__name__ == type(tm).__name__ == "ParametrizedLinear"
    assert isinstance(vm, vt.nn.Linear)
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert vP.is_parametrized(vm) and vP.is_parametrized(vm, "weight") and not vP.is_parametrized(vm, "bias")
    np.testing.assert_allclose(npv(vm.parametrizations.weight.original), npv(tm.parametrizations.weight.original))
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)
    run_grads(vm, tm, (5, 4))


def test_chain_and_setter():
    vm, tm = pair_linear(4, 4, seed=1)
    for m, mod, P in ((vm, vt, vP), (tm, torch, torch.nn.utils.parametrize)):
        P.register_parametrization(m, "weight", make_sym(mod))
        P.register_parametrization(m, "weight", make_scale(mod, 3.0))
    assert len(vm.parametrizations.weight) == 2
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)
    a = np.random.default_rng(7).standard_normal((4, 4))
    a = a + a.T
    vm.weight = vt.from_numpy(a.copy())
    tm.weight = torch.from_numpy(a.copy())
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)
    np.testing.assert_allclose(npv(vm.parametrizations.weight.original), npv(tm.parametrizations.weight.original),
                               **TOL)
    run_grads(vm, tm, (2, 4))


def test_sequence_originals_and_remove():
    vm, tm = pair_linear(3, 5, seed=2)
    vP.register_parametrization(vm, "weight", make_split(vt))
    torch.nn.utils.parametrize.register_parametrization(tm, "weight", make_split(torch))
    assert list(vm.state_dict()) == list(tm.state_dict())
    run_grads(vm, tm, (2, 3))
    with pytest.raises(ValueError):
        vP.remove_parametrizations(vm, "weight", leave_parametrized=False)
    vP.remove_parametrizations(vm, "weight")
    torch.nn.utils.parametrize.remove_parametrizations(tm, "weight")
    assert type(vm) is vt.nn.Linear and not hasattr(vm, "parametrizations")
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert isinstance(vm.weight, vt.nn.Parameter)
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)


@pytest.mark.parametrize("leave", [True, False])
def test_remove_keeps_original_object(leave):
    vm, tm = pair_linear(4, 4, seed=3)
    vP.register_parametrization(vm, "weight", make_scale(vt, 2.0))
    torch.nn.utils.parametrize.register_parametrization(tm, "weight", make_scale(torch, 2.0))
    orig = vm.parametrizations.weight.original
    vP.remove_parametrizations(vm, "weight", leave_parametrized=leave)
    torch.nn.utils.parametrize.remove_parametrizations(tm, "weight", leave_parametrized=leave)
    assert vm.weight is orig
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)


def test_cached():
    calls = []

    class Count(vt.nn.Module):
        def forward(self, x):
            calls.append(1)
            return x * 2
    vm, _ = pair_linear()
    vP.register_parametrization(vm, "weight", Count())
    calls.clear()
    with vP.cached():
        a = vm.weight
        b = vm.weight
    assert a is b and len(calls) == 1
    vm.weight
    assert len(calls) == 2


def test_buffer_parametrized():
    vm = vt.nn.BatchNorm1d(3).to(vt.float64)
    tm = torch.nn.BatchNorm1d(3).double()
    vP.register_parametrization(vm, "running_var", make_scale(vt, 2.0))
    torch.nn.utils.parametrize.register_parametrization(tm, "running_var", make_scale(torch, 2.0))
    assert list(vm.state_dict()) == list(tm.state_dict())
    np.testing.assert_allclose(npv(vm.running_var), npv(tm.running_var))


def test_errors():
    vm, _ = pair_linear()
    with pytest.raises(ValueError):
        vP.register_parametrization(vm, "nope", make_scale(vt, 2.0))

    class Bad(vt.nn.Module):
        def forward(self, x):
            return x[0]
    with pytest.raises(ValueError):
        vP.register_parametrization(vm, "weight", Bad())
    vP.register_parametrization(vm, "weight", Bad(), unsafe=True)
    assert tuple(vm.weight.shape) == (3,)
    with pytest.raises(ValueError):
        vP.remove_parametrizations(vm, "bias")


@pytest.mark.parametrize("dim", [0, 1, None, -1])
def test_weight_norm_parametrization(dim):
    vm, tm = pair_linear(3, 5, seed=4)
    vPs.weight_norm(vm, dim=dim)
    torch.nn.utils.parametrizations.weight_norm(tm, dim=dim)
    assert list(vm.state_dict()) == list(tm.state_dict())
    for k in ("original0", "original1"):
        a, b = getattr(vm.parametrizations.weight, k), getattr(tm.parametrizations.weight, k)
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(npv(a), npv(b), **TOL)
    with torch.no_grad():
        tm.parametrizations.weight.original0.mul_(1.5)
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    run_grads(vm, tm, (2, 3))


def test_weight_norm_conv():
    tm = torch.nn.Conv2d(2, 3, 3).double()
    vm = vt.nn.Conv2d(2, 3, 3).to(vt.float64)
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    vPs.weight_norm(vm)
    torch.nn.utils.parametrizations.weight_norm(tm)
    run_grads(vm, tm, (1, 2, 5, 6))


@pytest.mark.parametrize("dim", [0, 1, None])
def test_legacy_weight_norm(dim):
    vm, tm = pair_linear(3, 4, seed=5)
    v_wn(vm, dim=dim)
    torch.nn.utils.weight_norm(tm, dim=dim)
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert tuple(vm.weight_g.shape) == tuple(tm.weight_g.shape)
    with torch.no_grad():
        tm.weight_g.mul_(0.7)
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    run_grads(vm, tm, (2, 3))
    with pytest.raises(RuntimeError):
        v_wn(vm, dim=dim)
    v_rwn(vm)
    torch.nn.utils.remove_weight_norm(tm)
    assert list(vm.state_dict()) == list(tm.state_dict())
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)
    with pytest.raises(ValueError):
        v_rwn(vm)


@pytest.mark.parametrize("shape,cls", [((5, 3), "Linear"), ((4, 2, 3, 3), "Conv2d")])
def test_spectral_norm(shape, cls):
    if cls == "Linear":
        tm, vm = torch.nn.Linear(3, 5).double(), vt.nn.Linear(3, 5).to(vt.float64)
        xs = (2, 3)
    else:
        tm, vm = torch.nn.Conv2d(2, 4, 3).double(), vt.nn.Conv2d(2, 4, 3).to(vt.float64)
        xs = (1, 2, 5, 5)
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    torch.nn.utils.parametrizations.spectral_norm(tm, n_power_iterations=2)
    vPs.spectral_norm(vm, n_power_iterations=2)
    assert list(vm.state_dict()) == list(tm.state_dict())
    # vt's random u/v start differs: take torch's, then both iterate identically
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    run_grads(vm, tm, xs)
    for k in ("_u", "_v"):
        np.testing.assert_allclose(npv(getattr(vm.parametrizations.weight[0], k)),
                                   npv(getattr(tm.parametrizations.weight[0], k)), **TOL)
    tm.eval()
    vm.eval()
    u0 = npv(vm.parametrizations.weight[0]._u).copy()
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)
    np.testing.assert_allclose(npv(vm.parametrizations.weight[0]._u), u0)
    sigma = np.linalg.svd(npv(vm.parametrizations.weight.original).reshape(shape[0], -1), compute_uv=False)[0]
    w = npv(vm.weight).reshape(shape[0], -1)
    assert abs(np.linalg.svd(w, compute_uv=False)[0] - 1.0) < 0.2  # roughly unit spectral norm
    assert sigma > 0


def test_spectral_norm_errors():
    with pytest.raises(ValueError):
        vPs.spectral_norm(vt.nn.Linear(3, 4), n_power_iterations=0)
    with pytest.raises(IndexError):
        vPs.spectral_norm(vt.nn.Linear(3, 4), dim=2)


def test_spectral_norm_conv_transpose_uses_dim1():
    tm = torch.nn.ConvTranspose2d(2, 4, 3).double()
    vm = vt.nn.ConvTranspose2d(2, 4, 3).to(vt.float64)
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    torch.nn.utils.parametrizations.spectral_norm(tm)
    vPs.spectral_norm(vm)
    assert tuple(vm.parametrizations.weight[0]._u.shape) == tuple(tm.parametrizations.weight[0]._u.shape) == (4,)
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    run_grads(vm, tm, (1, 2, 4, 4))


def test_parametrized_module_trains_and_moves():
    vm, tm = pair_linear(4, 4, seed=6)
    vm = vm.to(vt.float32)
    vP.register_parametrization(vm, "weight", make_sym(vt))
    vm = vm.to(vt.float64)  # the originals move; the property still finds them
    torch.nn.utils.parametrize.register_parametrization(tm, "weight", make_sym(torch))
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    vopt = vt.optim.SGD(vm.parameters(), lr=0.1)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    x = np.random.default_rng(8).standard_normal((3, 4))
    for _ in range(3):
        for m, mod, opt in ((vm, vt, vopt), (tm, torch, topt)):
            opt.zero_grad()
            (m(mod.from_numpy(x.copy())) ** 2).sum().backward()
            opt.step()
    assert vm.weight.dtype == vt.float64
    np.testing.assert_allclose(npv(vm.weight), npv(tm.weight), **TOL)
    np.testing.assert_allclose(npv(vm.weight), npv(vm.weight).T)
