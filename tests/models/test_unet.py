"""The diffusion UNet and DDPM of tests/models/unet.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same weights: structure and state_dict keys, the timestep embedding and the noise schedule
buffers, the UNet's output and every gradient (input included), DDPM training steps with Adam on fixed noise and
timesteps (losses, parameters and an EMA copy; with activation checkpointing and fused attention too), a sampling
step and a short chain on fixed noise, and the seeded draws of timesteps and noise. On the CPU and, where both
see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

tu, vu = pair("unet.py")

T = 50


def build(seed=0, device="cpu", **unet):
    torch.manual_seed(seed)
    tm = tu.GaussianDiffusion(tu.UNet(**unet), timesteps=T)
    vm = vu.GaussianDiffusion(vu.UNet(**unet), timesteps=T)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def arrays(seed, b=2, size=8):
    r = np.random.default_rng(seed)
    x0 = np.tanh(r.standard_normal((b, 3, size, size))).astype(np.float32)  # "images" in [-1, 1]
    noise = r.standard_normal((b, 3, size, size)).astype(np.float32)
    t = np.array([0, T - 1] + list(r.integers(0, T, size=b - 2)))
    return x0, noise, t


def test_structure_embedding_and_schedule_match_torch():
    tm, vm = build()
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())  # the schedule buffers are persistent
    assert [n for n, _ in vm.named_modules()] == [n for n, _ in tm.named_modules()]
    for name, buf in vm.named_buffers():
        assert buf.dtype == vt.float32, name
        close(buf, dict(tm.named_buffers())[name], rtol=1e-6, atol=0)
    steps = np.array([0, 1, 7, 49, 999])
    for dim in (16, 9):  # an odd width pads a zero column
        close(vu.timestep_embedding(vt.from_numpy(steps), dim), tu.timestep_embedding(torch.from_numpy(steps), dim),
              rtol=1e-5, atol=1e-5)
    emb = vu.timestep_embedding(vt.from_numpy(steps), 9)
    assert tuple(emb.shape) == (5, 9) and not emb[:, -1].abs().sum().item()
    # the cumulative product of the alphas falls from 1 - beta_0 towards 0
    ac = vm.alphas_cumprod.numpy()
    assert np.all(np.diff(ac) < 0) and abs(ac[0] - (1 - 1e-4)) < 1e-7


@pytest.mark.parametrize("device", DEVICES)
def test_unet_forward_and_gradients_match_torch(device):
    tm, vm = build(device=device)
    x0, noise, t = arrays(1, b=3)
    (tx, tt), (vx, vt_) = both(device, x0, t)
    tx.requires_grad_()
    vx.requires_grad_()
    tout, vout = tm.model(tx, tt), vm.model(vx, vt_)
    assert tuple(vout.shape) == tuple(tout.shape) == x0.shape
    close(vout, tout)
    w = np.random.default_rng(2).standard_normal(x0.shape).astype(np.float32)
    (tw,), (vw,) = both(device, w)
    (tout * tw).sum().backward()
    (vout * vw).sum().backward()
    close(vx.grad, tx.grad, rtol=1e-3, atol=1e-5)
    tgrads = dict(tm.model.named_parameters())
    for name, p in vm.model.named_parameters():
        # a weight gradient sums over batch and pixels: float32 cancellation leaves ~1e-5 of its largest entry
        g = tgrads[name].grad
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("unet", [{}, dict(use_checkpoint=True, use_sdpa=True)], ids=["plain", "checkpoint-sdpa"])
def test_ddpm_training_steps_match_torch(unet, device):
    tm, vm = build(seed=1, device=device, **unet)
    topt = torch.optim.Adam(tm.model.parameters(), lr=2e-3)
    vopt = vt.optim.Adam(vm.model.parameters(), lr=2e-3)
    tema, vema = tu.EMA(tm.model, decay=0.8), vu.EMA(vm.model, decay=0.8)
    assert vema.model is not vm.model and not any(p.requires_grad for p in vema.model.parameters())
    x0, _, _ = arrays(3, b=4)
    for step in range(4):
        _, noise, t = arrays(10 + step, b=4)
        (tx, tn, tt), (vx, vn, vtt) = both(device, x0, noise, t)
        close(vm.q_sample(vx, vtt, vn), tm.q_sample(tx, tt, tn), rtol=1e-5, atol=1e-6)
        tl, vl = tm.training_loss(tx, tt, tn), vm.training_loss(vx, vtt, vn)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=2e-4)
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        topt.step()
        vopt.step()
        tema.update(tm.model)
        vema.update(vm.model)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():  # see test_gpt.py on Adam and near-zero gradients
        close(p, tp[name], rtol=1e-3, atol=1e-4)
    tp = dict(tema.model.named_parameters())
    for name, p in vema.model.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
        assert not np.allclose(p.cpu().numpy(), dict(vm.model.named_parameters())[name].detach().cpu().numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_sampling_step_and_chain_match_torch(device):
    tm, vm = build(seed=2, device=device)
    x, noise, t = arrays(4, b=3)
    (tx, tn, tt), (vx, vn, vtt) = both(device, x, noise, t)
    tstep, vstep = tm.p_sample(tx, tt, tn), vm.p_sample(vx, vtt, vn)
    assert not vstep.requires_grad
    close(vstep, tstep, rtol=1e-4, atol=1e-5)
    # at t == 0 the step adds no noise: other noise, same result for that element
    (_, tn2, _), (_, vn2, _) = both(device, x, noise * 3, t)
    close(vm.p_sample(vx, vtt, vn2)[0], vstep[0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(vm.p_sample(vx, vtt, vn2)[1].cpu().numpy(), vstep[1].cpu().numpy())
    # a short chain t = 4 .. 0 on the same fixed noise
    r = np.random.default_rng(5)
    draws = r.standard_normal((6,) + x.shape).astype(np.float32)
    (tcur,), (vcur,) = both(device, draws[0])
    for i in reversed(range(5)):
        ts = np.full(3, i)
        (tt, tn), (vtt, vn) = both(device, ts, draws[i + 1])
        tcur, vcur = tm.p_sample(tcur, tt, tn), vm.p_sample(vcur, vtt, vn)
    close(vcur, tcur, rtol=1e-3, atol=1e-4)


def test_seeded_draws_are_reproducible():
    _, vm = build(seed=3)
    x0 = vt.from_numpy(arrays(6, b=4)[0])
    losses = [vm.training_loss(x0, generator=vt.Generator().manual_seed(s)).item() for s in (1, 1, 2)]
    assert losses[0] == losses[1] != losses[2]
    a = vm.sample((2, 3, 8, 8), generator=vt.Generator().manual_seed(9), steps=3)
    b = vm.sample((2, 3, 8, 8), generator=vt.Generator().manual_seed(9), steps=3)
    assert tuple(a.shape) == (2, 3, 8, 8) and a.tolist() == b.tolist()
    assert a.abs().max().item() <= 1.0
    # diffusion code's idiom: the global stream as a generator, from manual_seed
    c = vm.sample((2, 3, 8, 8), generator=vt.manual_seed(9), steps=3)
    d = vm.sample((2, 3, 8, 8), generator=vt.manual_seed(9), steps=3)
    assert c.tolist() == d.tolist() != vm.sample((2, 3, 8, 8), generator=vt.manual_seed(10), steps=3).tolist()


def test_checkpointing_and_fused_attention_change_nothing():
    _, plain = build(seed=7)
    _, other = build(seed=7, use_checkpoint=True, use_sdpa=True)
    x0, noise, t = arrays(8, b=3)
    x0, noise, t = vt.from_numpy(x0), vt.from_numpy(noise), vt.from_numpy(t)
    losses = [m.training_loss(x0, t, noise) for m in (plain, other)]
    np.testing.assert_allclose(losses[1].item(), losses[0].item(), rtol=1e-5)
    for loss in losses:
        loss.backward()
    grads = dict(plain.named_parameters())
    for name, p in other.named_parameters():
        close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-6)
