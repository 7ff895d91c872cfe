"""The convolutional VAE of tests/models/vae.py, loaded once with torch and once with vibetensor swapped in for
torch, with the same weights: structure, the posterior and prior distributions (mean, stddev, log_prob, entropy,
the closed-form KL), the negative ELBO on fixed noise with its input and parameter gradients for both
likelihoods, rsample's reparameterisation gradients, Adam steps, reconstruction and seeded sampling. On the CPU
and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tvae, vvae = pair("vae.py")


def build(seed=0, device="cpu", **cfg):
    torch.manual_seed(seed)
    tm = tvae.VAE(**cfg)
    vm = vvae.VAE(**cfg)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def data(seed, b=3, s=2, binary=True):
    r = np.random.default_rng(seed)
    x = r.random((b, 1, 8, 8))
    x = (x > 0.5).astype(np.float32) if binary else x.astype(np.float32)
    eps = r.standard_normal((s, b, 4)).astype(np.float32)
    return x, eps


def test_structure_and_distributions_match_torch():
    tm, vm = build(likelihood="normal")
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict()) and "log_scale" in vm.state_dict()
    x, eps = data(1)
    (tx, te), (vx, ve) = both("cpu", x, eps)
    tq, vq = tm.posterior(tx), vm.posterior(vx)
    assert tuple(vq.batch_shape) == (3,) and tuple(vq.event_shape) == (4,)
    close(vq.mean, tq.mean)
    close(vq.stddev, tq.stddev)
    close(vq.log_prob(ve[0]), tq.log_prob(te[0]))
    close(vq.entropy(), tq.entropy())
    close(vvae.kl_divergence(vq, vm.prior(vq.mean)), tvae.kl_divergence(tq, tm.prior(tq.mean)))
    with pytest.raises(ValueError, match="likelihood"):
        vvae.VAE(likelihood="poisson")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("likelihood,prior_components", [("bernoulli", 0), ("normal", 0), ("bernoulli", 3)],
                         ids=["bernoulli", "normal", "mixture-prior"])
def test_elbo_and_gradients_match_torch(likelihood, prior_components, device):
    tm, vm = build(seed=1, device=device, likelihood=likelihood, prior_components=prior_components)
    x, eps = data(2, binary=likelihood == "bernoulli")
    (tx, te), (vx, ve) = both(device, x, eps)
    tx.requires_grad_()
    vx.requires_grad_()
    tl, ts = tm(tx, eps=te)
    vl, vs = vm(vx, eps=ve)
    close(vl, tl)
    close(vs["rec"], ts["rec"])
    close(vs["kl"], ts["kl"])
    if not prior_components:
        assert (vs["kl"].cpu().numpy() > 0).all()
    tl.backward()
    vl.backward()
    close(vx.grad, tx.grad, rtol=1e-3, atol=1e-6)
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))


@pytest.mark.parametrize("likelihood", ["bernoulli", "normal"])
def test_iwae_bound_matches_torch_and_bounds_the_elbo(likelihood):
    tm, vm = build(seed=5, likelihood=likelihood)
    x, eps = data(6, s=6, binary=likelihood == "bernoulli")
    (tx, te), (vx, ve) = both("cpu", x, eps)
    tb, vb = tm.iwae_bound(tx, te), vm.iwae_bound(vx, ve)
    close(vb, tb, rtol=1e-4, atol=1e-4)
    tb.sum().backward()
    vb.sum().backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))
    # with one draw the bound is that draw's ELBO (the KL estimated by log q - log p instead of in closed form)
    one = vm.iwae_bound(vx, ve[:1]).detach().numpy()
    q = vm.posterior(vx)
    z = q.mean + q.stddev * ve[0]
    mc_kl = (q.log_prob(z) - vm.prior(q.mean).log_prob(z)).detach().numpy()
    rec = vm(vx, eps=ve[:1])[1]["rec"].numpy()
    np.testing.assert_allclose(one, rec - mc_kl, rtol=1e-4, atol=1e-4)


def test_rsample_is_reparameterised():
    _, vm = build(seed=2)
    x, _ = data(3)
    vx = vt.from_numpy(x)
    mu, logvar = vm.encoder(vx)
    std = vt.exp(0.5 * logvar)
    q = vvae.Independent(vvae.Normal(mu, std), 1)
    z = q.rsample((5,))
    assert tuple(z.shape) == (5, 3, 4) and z.requires_grad
    noise = ((z - mu) / std).detach()  # the standard normal draws behind z
    w = vt.from_numpy(np.random.default_rng(4).standard_normal((5, 3, 4)).astype(np.float32))
    gmu, gstd = vt.autograd.grad((z * w).sum(), [mu, std])
    close(gmu, w.sum(0), rtol=1e-5, atol=1e-6)  # dz/dmu = 1
    close(gstd, (w * noise).sum(0), rtol=1e-4, atol=1e-5)  # dz/dstd = eps
    assert not q.sample((2,)).requires_grad


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_match_torch(device):
    tm, vm = build(seed=3, device=device)
    topt = torch.optim.Adam(tm.parameters(), lr=3e-3)
    vopt = vt.optim.Adam(vm.parameters(), lr=3e-3)
    x, _ = data(9, b=4)

    def losses_at(step):
        (tx, te), (vx, ve) = both(device, x, data(10 + step, b=4, s=1)[1])
        return tm(tx, eps=te)[0], vm(vx, eps=ve)[0]
    train_side_by_side(tm, vm, topt, vopt, losses_at, steps=5)


def test_mixture_prior_log_density_and_samples():
    tm, vm = build(seed=6, prior_components=3)
    assert "prior_means" in vm.state_dict() and isinstance(vm.prior(None), vvae.MixtureSameFamily)
    z = np.random.default_rng(7).standard_normal((5, 2, 4)).astype(np.float32)
    close(vm.prior(None).log_prob(vt.from_numpy(z)), tm.prior(None).log_prob(torch.from_numpy(z)))
    # the density is the weighted sum of the components' densities
    means, scales = vm.prior_means.detach().numpy(), np.exp(vm.prior_log_scales.detach().numpy())
    comp = np.exp(-0.5 * (((z[:, :, None] - means) / scales) ** 2).sum(-1)) / (
        (2 * np.pi) ** 2 * np.prod(scales, -1))
    np.testing.assert_allclose(vm.prior(None).log_prob(vt.from_numpy(z)).detach().numpy(),
                               np.log(comp.mean(-1)), rtol=1e-4, atol=1e-5)
    samples = vm.sample(6)
    assert tuple(samples.shape) == (6, 1, 8, 8)


def test_reconstruct_and_seeded_sampling():
    tm, vm = build(seed=4)
    x, _ = data(5)
    (tx,), (vx,) = both("cpu", x)
    close(vm.reconstruct(vx), tm.reconstruct(tx))
    r = vm.reconstruct(vx).numpy()
    assert ((r > 0) & (r < 1)).all()  # Bernoulli means
    a = vm.sample(3, generator=vt.Generator().manual_seed(1))
    b = vm.sample(3, generator=vt.Generator().manual_seed(1))
    assert tuple(a.shape) == (3, 1, 8, 8) and a.tolist() == b.tolist()
    assert a.tolist() != vm.sample(3, generator=vt.Generator().manual_seed(2)).tolist()
    # the unseeded training path draws with rsample and gives a finite loss with gradients
    loss, stats = vm(vx, n_samples=3)
    loss.backward()
    assert tuple(stats["z"].shape) == (3, 3, 4) and np.isfinite(loss.item())
    assert vm.encoder.mu.weight.grad is not None
