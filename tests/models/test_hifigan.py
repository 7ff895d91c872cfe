"""The small HiFi-GAN of tests/models/hifigan.py, loaded once with torch and once with vibetensor swapped in for
torch, with the same weights: state_dict names under weight_norm and spectral_norm, the init_weights scheme, the
generator's waveform, the discriminator and generator losses (LSGAN, feature matching, mel L1) and every
gradient, alternating AdamW steps of the discriminators and the generator with ExponentialLR (losses, learning
rates, weights and the spectral-norm power-iteration vectors), spectral norm in eval mode, remove_weight_norm,
and the generator in float64. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import warnings

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

with warnings.catch_warnings():  # torch's weight_norm is deprecated in favour of the parametrization
    warnings.simplefilter("ignore", FutureWarning)
    thg, vhg = pair("hifigan.py")

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def build(seed=0, device="cpu"):
    torch.manual_seed(seed)
    tm, vm = thg.HiFiGAN(), vhg.HiFiGAN()
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, device="cpu", dtype=np.float32):
    r = np.random.default_rng(seed)
    mel = r.standard_normal((2, 6, 10)).astype(dtype)
    y = (0.5 * np.sin(np.arange(80) / 3.0)[None, None] + 0.1 * r.standard_normal((2, 1, 80))).astype(dtype)
    return both(device, mel, y)


def grads_match(tm, vm, rtol=1e-3, atol=1e-6):
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        if tp[name].grad is None:
            assert p.grad is None, name
        else:
            close(p.grad, tp[name].grad, rtol=rtol, atol=atol)


def test_state_dict_names_and_initialisation():
    tm, vm = build()
    assert list(vm.state_dict()) == list(tm.state_dict())
    sd = vm.state_dict()
    assert {"msd.discriminators.0.convs.0.weight_orig", "msd.discriminators.0.convs.0.weight_u",
            "msd.discriminators.0.convs.0.weight_v", "msd.discriminators.1.convs.0.weight_g",
            "generator.ups.0.weight_g", "generator.ups.0.weight_v"} <= set(sd)
    assert tuple(sd["generator.ups.0.weight_g"].shape) == (16, 1, 1)  # dim 0 of ConvTranspose1d: in_channels
    vt.manual_seed(1)
    fresh = vhg.Generator()
    # ups.apply(init_weights) runs after weight_norm: its weight.data.normal_(0, 0.01) rewrites the derived
    # `weight` attribute, which the next forward recomputes from g and v (left at the default init), as in torch
    up = fresh.ups[0]
    v = up.weight_v.detach().numpy()
    assert 0.008 < up.weight.detach().numpy().std() < 0.012 and 0.04 < v.std() < 0.1
    np.testing.assert_allclose(up.weight_g.detach().numpy().ravel(), np.sqrt((v ** 2).sum(axis=(1, 2))), rtol=1e-5)
    with vt.no_grad():
        fresh(vt.zeros(1, 6, 4))
    np.testing.assert_allclose(up.weight.detach().numpy(), v, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_generator_and_losses_match_torch(device):
    tm, vm = build(device=device)
    (tmel, ty), (vmel, vy) = batch(0, device)
    tg, vg = tm.generator(tmel), vm.generator(vmel)
    assert tuple(vg.shape) == (2, 1, 80)
    close(vg, tg)
    td, vd = tm.d_loss(ty, tg), vm.d_loss(vy, vg)
    close(vd, td)
    td.backward()
    vd.backward()
    grads_match(tm, vm)
    assert all(p.grad is None for p in vm.generator.parameters())  # the fake was detached
    for name, b in vm.named_buffers():  # the power iteration ran in both, from the same u
        close(b, dict(tm.named_buffers())[name], rtol=1e-4, atol=1e-6)
    tm.zero_grad()
    vm.zero_grad()
    tgl = tm.g_loss(ty, tg, (tg - ty).abs().mean())
    vgl = vm.g_loss(vy, vg, (vg - vy).abs().mean())
    close(vgl, tgl)
    tgl.backward()
    vgl.backward()
    grads_match(tm, vm)
    assert np.abs(vm.generator.ups[0].weight_g.grad.cpu().numpy()).max() > 0


@pytest.mark.parametrize("device", DEVICES)
def test_alternating_adamw_steps_match_torch(device):
    tm, vm = build(seed=2, device=device)
    opts = []
    for lib, m in ((torch, tm), (vt, vm)):
        og = lib.optim.AdamW(m.generator.parameters(), 2e-3, betas=(0.8, 0.99))
        od = lib.optim.AdamW(list(m.msd.parameters()) + list(m.mpd.parameters()), 2e-3, betas=(0.8, 0.99))
        opts.append((og, od, lib.optim.lr_scheduler.ExponentialLR(og, gamma=0.9),
                     lib.optim.lr_scheduler.ExponentialLR(od, gamma=0.9)))
    (tmel, ty), (vmel, vy) = batch(2, device)
    g_losses = []
    for step in range(4):
        losses = []
        for (og, od, sg, sd), m, mel, y in zip(opts, (tm, vm), (tmel, vmel), (ty, vy)):
            y_hat = m.generator(mel)
            od.zero_grad()
            d = m.d_loss(y, y_hat)
            d.backward()
            od.step()
            og.zero_grad()
            g = m.g_loss(y, y_hat, (y_hat - y).abs().mean())
            g.backward()
            og.step()
            sg.step()
            sd.step()
            losses.append((d.item(), g.item()))
        np.testing.assert_allclose(losses[1], losses[0], rtol=2e-4)
        g_losses.append(losses[1][1])
    assert opts[1][2].get_last_lr() == pytest.approx(opts[0][2].get_last_lr(), rel=1e-12)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
    for name, b in vm.named_buffers():
        close(b, dict(tm.named_buffers())[name], rtol=1e-3, atol=1e-5)
    assert g_losses[-1] != g_losses[0]


def test_spectral_norm_in_eval_and_weight_norm_removal():
    tm, vm = build(seed=3)
    (tmel, ty), (vmel, vy) = batch(3)
    tm.eval()
    vm.eval()
    u = vm.msd.discriminators[0].convs[0].weight_u.clone()
    with torch.no_grad(), vt.no_grad():
        tout, vout = tm.msd(ty, ty * 0.5), vm.msd(vy, vy * 0.5)
        for a, b in zip(vout[0] + vout[1], tout[0] + tout[1]):
            close(a, b)
        np.testing.assert_array_equal(vm.msd.discriminators[0].convs[0].weight_u.numpy(), u.numpy())  # frozen
        vg = vm.generator(vmel)
        tm.generator.remove_weight_norm()
        vm.generator.remove_weight_norm()
        assert sorted(vm.generator.state_dict()) == sorted(tm.generator.state_dict())
        assert "conv_pre.weight" in dict(vm.generator.named_parameters())
        close(vm.generator(vmel), vg, rtol=1e-5, atol=1e-6)
        close(vm.generator(vmel), tm.generator(tmel))


def test_generator_in_float64_matches_torch_tightly():
    tm, vm = build(seed=4)
    tm.double()
    vm.double()
    (tmel, ty), (vmel, vy) = batch(4, dtype=np.float64)
    tg, vg = tm.generator(tmel), vm.generator(vmel)
    assert vg.dtype == vt.float64
    close(vg, tg, rtol=1e-10, atol=1e-13)
    tl = tm.g_loss(ty, tg, (tg - ty).abs().mean())
    vl = vm.g_loss(vy, vg, (vg - vy).abs().mean())
    close(vl, tl, rtol=1e-10, atol=1e-12)
    tl.backward()
    vl.backward()
    grads_match(tm, vm, rtol=1e-7, atol=1e-11)
