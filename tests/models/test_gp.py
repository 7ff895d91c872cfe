"""The Gaussian-process regression of tests/models/gp.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same hyperparameters: the RBF (ARD) and Matern-5/2 kernels against their formulas and torch, the
exact marginal likelihood and its gradients to every raw hyperparameter (float64), Adam fitting the hyperparameters,
the posterior mean and variance (through the deprecated triangular_solve and through linalg.solve_triangular, which
agree) against torch and numpy, interpolation at the training points with little noise, and the deep-kernel
variant's likelihood gradients. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tgp, vgp = pair("gp.py")


def build(seed=0, device="cpu", **cfg):
    torch.manual_seed(seed)
    tm, vm = tgp.ExactGP(2, **cfg).double(), vgp.ExactGP(2, **cfg).double()
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def data(seed, n=12, m=5):
    r = np.random.default_rng(seed)
    x = r.uniform(-2, 2, (n, 2))
    y = np.sin(2 * x[:, 0]) * np.cos(x[:, 1]) + 0.05 * r.standard_normal(n)
    return x, y, r.uniform(-2, 2, (m, 2))


@pytest.mark.parametrize("matern", [False, True])
def test_kernels_match_torch_and_the_formula(matern):
    tm, vm = build(seed=1, matern=matern)
    with torch.no_grad():
        tm.kernel.raw_lengthscale.copy_(torch.tensor([0.3, -0.4], dtype=torch.float64))
    load_torch_weights(vm, tm)
    x, _, xt = data(1)
    (tx, txt), (vx, vxt) = both("cpu", x, xt)
    kv, kt = vm.kernel(vx, vxt), tm.kernel(tx, txt)
    close(kv, kt, rtol=1e-12, atol=1e-14)
    ls = np.log1p(np.exp([0.3, -0.4]))
    d = np.sqrt((((x[:, None] - xt[None]) / ls) ** 2).sum(-1))
    sf = np.log1p(np.exp(0.0))
    s = np.sqrt(5) * d
    expect = sf * (1 + s + s ** 2 / 3) * np.exp(-s) if matern else sf * np.exp(-d ** 2 / 2)
    np.testing.assert_allclose(kv.detach().numpy(), expect, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cfg", [dict(), dict(matern=True), dict(feature_dims=2)], ids=["rbf", "matern", "deep"])
def test_marginal_likelihood_and_gradients_match_torch(cfg, device):
    tm, vm = build(seed=2, device=device, **cfg)
    assert list(vm.state_dict()) == list(tm.state_dict())
    x, y, _ = data(2)
    (tx, ty), (vx, vy) = both(device, x, y)
    tl, vl = tm.marginal_nll(tx, ty), vm.marginal_nll(vx, vy)
    close(vl, tl, rtol=1e-11, atol=1e-13)
    tl.backward()
    vl.backward()
    tg = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tg[name].grad, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("device", DEVICES)
def test_hyperparameter_fitting_with_adam_matches_torch(device):
    tm, vm = build(seed=3, device=device)
    x, y, _ = data(3, n=16)
    (tx, ty), (vx, vy) = both(device, x, y)
    topt = torch.optim.Adam(tm.parameters(), lr=0.05)
    vopt = vt.optim.Adam(vm.parameters(), lr=0.05)
    train_side_by_side(tm, vm, topt, vopt, lambda step: (tm.marginal_nll(tx, ty), vm.marginal_nll(vx, vy)), 8,
                       loss_rtol=1e-9)


@pytest.mark.parametrize("legacy", [True, False])
def test_posterior_matches_torch_and_numpy(legacy):
    tm, vm = build(seed=4)
    x, y, xt = data(4)
    (tx, ty, txt), (vx, vy, vxt) = both("cpu", x, y, xt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # triangular_solve's deprecation, on both sides
        (tmean, tvar), (vmean, vvar) = tm.predict(tx, ty, txt, legacy), vm.predict(vx, vy, vxt, legacy)
        other = vm.predict(vx, vy, vxt, not legacy)
    close(vmean, tmean, rtol=1e-10, atol=1e-12)
    close(vvar, tvar, rtol=1e-8, atol=1e-12)
    close(other[0], vmean, rtol=1e-12, atol=1e-13)
    close(other[1], vvar, rtol=1e-9, atol=1e-12)
    assert vmean.requires_grad is False  # predict runs under no_grad
    # numpy's dense solve of the same posterior
    with vt.no_grad():
        K = vm.kernel(vx, vx).numpy() + (vm.noise.item() + 1e-6) * np.eye(len(x))
        Ks = vm.kernel(vx, vxt).numpy()
        sf = vm.kernel.outputscale.item()
    c = vm.mean_constant.item()
    np.testing.assert_allclose(vmean.numpy(), c + Ks.T @ np.linalg.solve(K, y - c), rtol=1e-8)
    np.testing.assert_allclose(vvar.numpy(), sf - np.einsum("ij,ij->j", Ks, np.linalg.solve(K, Ks)), rtol=1e-6,
                               atol=1e-10)


def test_posterior_interpolates_the_data_with_little_noise():
    _, vm = build(seed=5)
    with vt.no_grad():
        vm.raw_noise.fill_(-12.0)
    x, y, _ = data(5)
    _, (vx, vy) = both("cpu", x, y)
    mean, var = vm.predict(vx, vy, vx, legacy=False)
    np.testing.assert_allclose(mean.numpy(), y, atol=2e-3)
    assert var.numpy().max() < 1e-3
