"""The training recipes of tests/models/training_recipes.py, loaded once with torch and once with vibetensor swapped
in for torch, run side by side from the same weights on the same numpy data: CLIP contrastive steps (the clamped
temperature's gradient at and beyond its bound, the in-place clamp), GAN steps (two optimizers, detached fakes,
BatchNorm statistics), REINFORCE updates (the same episodes, the loss against a numpy recomputation), gradient
accumulation with value and norm clipping, checkpointed blocks and a foreach EMA, and a save / resume that must
reproduce the uninterrupted run exactly. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

T, V = pair("training_recipes.py")


def build(name, device, seed=0, **cfg):
    torch.manual_seed(seed)
    tm, vm = getattr(T, name)(**cfg), getattr(V, name)(**cfg)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def check_grads(vm, tm, rtol=1e-3, atol=1e-5):
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        if g is None:
            assert p.grad is None, name
        else:
            assert p.grad is not None, f"{name}: torch's gradient is {g}, vibetensor's None"
            close(p.grad, g, rtol=rtol, atol=atol * max(1.0, g.abs().max().item()))


def check_state(vm, tm, rtol=1e-3, atol=1e-4):
    tstate = tm.state_dict()
    assert list(vm.state_dict()) == list(tstate)
    for name, v in vm.state_dict().items():
        if v.dtype.is_floating_point:
            close(v, tstate[name], rtol=rtol, atol=atol)
        else:
            assert v.tolist() == tstate[name].tolist(), name


# ---------------------------------------------------------------- CLIP
PATTERNS = np.random.default_rng(100).standard_normal((4, 3, 8, 8)).astype(np.float32)


def clip_batch(seed):
    """Four image-caption pairs, one per class: the image is its class's pattern plus noise, the caption starts
    with its class's token; captions have random lengths, the rest is padding (id 0)."""
    r = np.random.default_rng(seed)
    classes = r.permutation(4)
    images = PATTERNS[classes] + 0.3 * r.standard_normal((4, 3, 8, 8)).astype(np.float32)
    tokens = np.zeros((4, 6), dtype=np.int64)
    for i, c in enumerate(classes):
        length = int(r.integers(1, 7))
        tokens[i, :length] = r.integers(5, 32, length)
        tokens[i, 0] = 1 + c
    return images, tokens


@pytest.mark.parametrize("device", DEVICES)
def test_clip_forward_and_gradients_match_torch(device):
    tm, vm = build("CLIP", device)
    images, tokens = clip_batch(0)
    tokens[3] = 0  # a caption of padding only: masked mean over nothing, features exactly zero
    (ti, tt), (vi, vtt) = both(device, images, tokens)
    ti.requires_grad_()
    vi.requires_grad_()
    tlogits, vlogits = tm(ti, tt), vm(vi, vtt)
    for v, t in zip(vlogits, tlogits):
        close(v, t, rtol=1e-4, atol=1e-4)
    close(vlogits[1], vlogits[0].t(), rtol=0, atol=0)
    assert not vm.text(vtt)[3].abs().sum().item() and not vlogits[0][:, 3].abs().sum().item()
    tloss, vloss = T.clip_loss(*tlogits), V.clip_loss(*vlogits)
    np.testing.assert_allclose(vloss.item(), tloss.item(), rtol=1e-5)
    tloss.backward()
    vloss.backward()
    close(vi.grad, ti.grad, rtol=1e-3, atol=1e-6)
    check_grads(vm, tm)
    assert vm.logit_scale.grad.abs().item() > 0  # below the bound, the temperature learns
    assert not vm.text.embed.weight.grad[0].abs().sum().item()  # padding_idx gets no gradient
    # more padding changes nothing: the pooling counts real tokens only
    with vt.no_grad():
        padded = vt.cat([vtt, vt.zeros(4, 3, dtype=vt.int64, device=device)], dim=1)
        close(vm.text(padded), vm.text(vtt), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_clip_training_with_the_clamped_temperature_matches_torch(device):
    bound = math.log(100)
    # started past its bound: the forward's clamp blocks the gradient, the step's clamp_ brings it back
    tm, vm = build("CLIP", device, seed=1, init_logit_scale=bound + 0.5)
    topt = torch.optim.AdamW(T.clip_param_groups(tm, 0.1), lr=1e-2)
    vopt = vt.optim.AdamW(V.clip_param_groups(vm, 0.1), lr=1e-2)
    assert [len(g["params"]) for g in vopt.param_groups] == [len(g["params"]) for g in topt.param_groups] == [6, 7]
    assert vopt.param_groups[1]["params"][0] is vm.logit_scale  # a module's own parameters come first
    losses = []
    for step in range(6):
        (ti, tt), (vi, vtt) = both(device, *clip_batch(10 + step))
        tl, vl = T.clip_train_step(tm, topt, ti, tt), V.clip_train_step(vm, vopt, vi, vtt)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=2e-4)
        losses.append(vl.item())
        # a temperature near 100 magnifies the weights' rounding differences: each library's gradients are within
        # 5e-6 of float64 ones at its own weights, but the two trajectories part by ~1e-4 of the largest gradient
        check_grads(vm, tm, atol=2e-4)
        if step == 0:
            assert vm.logit_scale.grad.item() == 0.0 == tm.logit_scale.grad.item()
            assert vm.logit_scale.item() == tm.logit_scale.item() == np.float32(bound)
        if step == 1:  # at the bound itself the clamp passes the gradient, as torch's
            assert vm.logit_scale.grad.abs().item() > 0
        assert 0 <= vm.logit_scale.item() <= np.float32(bound)
    assert losses[-1] < losses[0], losses
    check_state(vm, tm)


# ---------------------------------------------------------------- GAN
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_gan_training_matches_torch(spectral_norm, device):
    tg, vg = build("Generator", device)
    td, vd = build("Discriminator", device, seed=1, spectral_norm=spectral_norm)
    if spectral_norm:  # the power iteration's vectors came over with the weights
        assert "net.0.parametrizations.weight.0._u" in dict(vd.named_buffers())
    tog, tod = T.gan_optimizers(tg, td)
    vog, vod = V.gan_optimizers(vg, vd)
    assert vog.param_groups[0]["betas"] == vod.param_groups[0]["betas"] == (0.5, 0.999)
    tcrit, vcrit = torch.nn.BCEWithLogitsLoss(), vt.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(2)
    centers = np.array([[0.5, 0.5], [-0.5, 0.2]], dtype=np.float32)
    d_losses = []
    for step in range(6):
        real = centers[rng.integers(0, 2, 16)] + 0.05 * rng.standard_normal((16, 2)).astype(np.float32)
        noise = rng.standard_normal((16, 4)).astype(np.float32)  # the same latents for both libraries
        (tr, tz), (vr, vz) = both(device, real, noise)
        tl = T.gan_train_step(tg, td, tog, tod, tr, tz, tcrit)
        vl = V.gan_train_step(vg, vd, vog, vod, vr, vz, vcrit)
        np.testing.assert_allclose(vl, tl, rtol=2e-4)
        d_losses.append(vl[0])
        # what is left: the generator step's gradients, in both networks
        check_grads(vg, tg)
        check_grads(vd, td)
    assert d_losses[-1] < d_losses[0], d_losses
    check_state(vg, tg)  # BatchNorm's running statistics included
    check_state(vd, td)
    assert vg.net[1].num_batches_tracked.item() == 6
    vg.eval()
    tg.eval()
    with torch.no_grad(), vt.no_grad():
        close(vg(vz), tg(tz), rtol=1e-3, atol=1e-5)
    # the discriminator's step never reaches the generator: the detached fakes carry no graph back
    vg.zero_grad(set_to_none=True)
    vd(vg(vz).detach()).sum().backward()
    assert all(p.grad is None for p in vg.parameters())


@pytest.mark.parametrize("device", DEVICES)
def test_wgan_gp_critic_steps_match_torch(device):
    tg, vg = build("Generator", device, seed=2)
    tc, vc = build("Discriminator", device, seed=3)
    topt = torch.optim.Adam(tc.parameters(), lr=1e-3, betas=(0.0, 0.9))
    vopt = vt.optim.Adam(vc.parameters(), lr=1e-3, betas=(0.0, 0.9))
    rng = np.random.default_rng(4)
    for step in range(4):
        real = rng.standard_normal((8, 2)).astype(np.float32) * 0.3 + 0.4
        noise = rng.standard_normal((8, 4)).astype(np.float32)
        alpha = rng.uniform(size=(8, 1)).astype(np.float32)
        (tr, tz, ta), (vr, vz, va) = both(device, real, noise, alpha)
        if step == 0:  # the penalty alone, and its double-backward gradients
            tp = T.gradient_penalty(tc, tr, tg(tz), ta)
            vp = V.gradient_penalty(vc, vr, vg(vz), va)
            np.testing.assert_allclose(vp.item(), tp.item(), rtol=1e-5)
            assert vp.item() > 0.1  # far from unit gradients: the penalty pulls
            tp.backward()
            vp.backward()
            # the hidden biases reach the input gradient through LeakyReLU's masks alone: zero gradients, not None,
            # as torch's (Note [Masks keep the input in the graph]); the last bias none on either side; the
            # weights' nonzero
            tgrads = dict(tc.named_parameters())
            for name, p in vc.named_parameters():
                if tgrads[name].grad is None:
                    assert p.grad is None, name
                    continue
                close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
                if p.ndim > 1:
                    assert p.grad.abs().sum().item() > 0
        tl = T.wgan_gp_critic_step(tg, tc, topt, tr, tz, ta)
        vl = V.wgan_gp_critic_step(vg, vc, vopt, vr, vz, va)
        np.testing.assert_allclose(vl, tl, rtol=2e-4)
        check_grads(vc, tc)
        assert all(p.grad is None for p in vg.parameters())  # the critic's step leaves the generator alone
    check_state(vc, tc)
    check_state(vg, tg)


@pytest.mark.parametrize("device", DEVICES)
def test_lazy_r1_regularisation_matches_torch(device):
    tg, vg = build("Generator", device, seed=2)
    tc, vc = build("Discriminator", device, seed=3)
    topt = torch.optim.Adam(tc.parameters(), lr=1e-3, betas=(0.0, 0.99))
    vopt = vt.optim.Adam(vc.parameters(), lr=1e-3, betas=(0.0, 0.99))
    rng = np.random.default_rng(5)
    for step in range(4):
        real = rng.standard_normal((8, 2)).astype(np.float32) * 0.3 + 0.4
        noise = rng.standard_normal((8, 4)).astype(np.float32)
        alpha = rng.uniform(size=(8, 1)).astype(np.float32)
        (tr, tz, ta), (vr, vz, va) = both(device, real, noise, alpha)
        if step % 2 == 0:
            tl = T.wgan_gp_critic_step(tg, tc, topt, tr, tz, ta)
            vl = V.wgan_gp_critic_step(vg, vc, vopt, vr, vz, va)
        else:  # the penalty alone
            tl, vl = T.lazy_r1_step(tc, topt, tr), V.lazy_r1_step(vc, vopt, vr)
        np.testing.assert_allclose(vl, tl, rtol=2e-4)
        check_grads(vc, tc)
    check_state(vc, tc)


# ---------------------------------------------------------------- REINFORCE
def numpy_reinforce_loss(policy, episodes, gamma=0.9, entropy_coef=0.01):
    """The update's loss from the policy's weights, in float64 numpy."""
    w1, b1, w2, b2 = (p.detach().cpu().numpy().astype(np.float64) for p in policy.parameters())
    obs = np.stack([o for ep in episodes for o in ep[0]]).astype(np.float64)
    actions = np.array([a for ep in episodes for a in ep[1]])
    returns = []
    for ep in episodes:
        g, rets = 0.0, []
        for r in reversed(ep[2]):
            g = r + gamma * g
            rets.append(g)
        returns += rets[::-1]
    returns = np.array(returns)
    returns = (returns - returns.mean()) / (returns.std(ddof=1) + 1e-8)
    logits = np.tanh(obs @ w1.T + b1) @ w2.T + b2
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    entropy = -(np.exp(logp) * logp).sum(1)
    return -(logp[np.arange(len(actions)), actions] * returns).mean() - entropy_coef * entropy.mean()


@pytest.mark.parametrize("device", DEVICES)
def test_reinforce_matches_torch(device):
    tp, vp = build("Policy", device)
    topt, vopt = torch.optim.Adam(tp.parameters(), lr=0.05), vt.optim.Adam(vp.parameters(), lr=0.05)
    trng, vrng = np.random.default_rng(1), np.random.default_rng(1)
    mean_returns = []
    for update in range(6):
        tep = [T.run_episode(tp, T.Corridor(), trng) for _ in range(4)]
        vep = [V.run_episode(vp, V.Corridor(), vrng) for _ in range(4)]
        # the same probabilities drew the same actions from the same numpy stream
        assert [e[1] for e in vep] == [e[1] for e in tep] and [e[2] for e in vep] == [e[2] for e in tep]
        expected = numpy_reinforce_loss(vp, vep)
        # NumPy float64 rewards: the update's returns tensor, and so its loss, is float64 in both
        for mod, eps in ((T, tep), (V, vep)):
            assert str(mod.torch.tensor(mod.discounted_returns(eps[0][2], 0.9)).dtype).endswith("float64")
        tl, vl = T.reinforce_update(tp, topt, tep), V.reinforce_update(vp, vopt, vep)
        np.testing.assert_allclose(vl, expected, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(vl, tl, rtol=1e-4, atol=1e-6)
        check_grads(vp, tp)
        mean_returns.append(np.mean([sum(e[2]) for e in vep]))
    assert mean_returns[-1] > mean_returns[0], mean_returns
    check_state(vp, tp)


@pytest.mark.parametrize("device", DEVICES)
def test_ppo_matches_torch(device):
    ta, va = build("ActorCritic", device, seed=9)
    topt, vopt = torch.optim.Adam(ta.parameters(), lr=0.03), vt.optim.Adam(va.parameters(), lr=0.03)
    rngs = {lib: (np.random.default_rng(10), np.random.default_rng(11)) for lib in ("t", "v")}
    clipped = []
    for _ in range(3):
        tb, tlast = T.collect(ta, T.Corridor(), rngs["t"][0], 24)
        vb, vlast = V.collect(va, V.Corridor(), rngs["v"][0], 24)
        np.testing.assert_array_equal(vb["actions"], tb["actions"])  # the same actions, so the same transitions
        for k in ("values", "log_probs"):
            np.testing.assert_allclose(vb[k], tb[k], rtol=1e-4, atol=1e-6)
        tadv, tret = T.gae(tb["rewards"], tb["values"], tb["dones"], tlast)
        vadv, vret = V.gae(vb["rewards"], vb["values"], vb["dones"], vlast)
        tl, tc = T.ppo_update(ta, topt, tb, tadv, tret, rngs["t"][1])
        vl, vc = V.ppo_update(va, vopt, vb, vadv, vret, rngs["v"][1])
        np.testing.assert_allclose(vl, tl, rtol=1e-3, atol=1e-5)
        assert vc == tc
        clipped += vc
        check_grads(va, ta)
    assert max(clipped) > 0  # the ratio left the trust region somewhere: the clipped branch was taken
    check_state(va, ta)


@pytest.mark.parametrize("device", DEVICES)
def test_sac_updates_match_torch(device):
    (tpi, vpi), (tq1, vq1), (tq2, vq2) = (build(n, device, seed=s) for n, s in
                                          (("SquashedGaussianActor", 12), ("QNetwork", 13), ("QNetwork", 14)))
    tsac, vsac = T.SAC(tpi, tq1, tq2), V.SAC(vpi, vq1, vq2)
    rng = np.random.default_rng(15)
    for _ in range(4):
        arrays = (rng.standard_normal((8, 3)), rng.uniform(-1, 1, (8, 2)), rng.standard_normal(8),
                  rng.standard_normal((8, 3)), (rng.uniform(size=8) < 0.2), rng.standard_normal((8, 2)),
                  rng.standard_normal((8, 2)))
        tb, vb = both(device, *(a.astype(np.float32) for a in arrays))
        tl, vl = tsac.update(*tb), vsac.update(*vb)
        np.testing.assert_allclose(vl, tl, rtol=1e-3, atol=1e-5)
        for vnet, tnet in ((vpi, tpi), (vq1, tq1), (vq2, tq2)):
            check_grads(vnet, tnet)  # the Q networks' are the critic step's: the frozen ones took no more
        close(vsac.log_alpha, tsac.log_alpha, rtol=1e-5, atol=1e-7)
    assert vsac.log_alpha.item() != pytest.approx(math.log(0.2))
    for vnet, tnet in ((vpi, tpi), (vq1, tq1), (vq2, tq2), (vsac.q1_targ, tsac.q1_targ), (vsac.q2_targ, tsac.q2_targ)):
        check_state(vnet, tnet)
    assert all(p.grad is None and not p.requires_grad for p in vsac.q1_targ.parameters())
    assert all(p.requires_grad for p in vsac.q_params)
    # the targets trail the networks: Polyak averaging moved them part of the way
    assert not np.allclose(vsac.q1_targ.net[0].weight.detach().cpu().numpy(), vq1.net[0].weight.detach().cpu().numpy())


# ---------------------------------------------------------------- accumulation, clipping, checkpointing, EMA
W_TRUE = np.random.default_rng(200).standard_normal((6, 3)).astype(np.float32)


def regression_batch(step, n=8):
    x = np.random.default_rng(50 + step).standard_normal((n, 6)).astype(np.float32)
    return x, np.tanh(x @ W_TRUE)


@pytest.mark.parametrize("device", DEVICES)
def test_accumulated_checkpointed_gradients_are_the_full_batchs(device):
    x, y = regression_batch(0)
    tm, vm = build("Regressor", device)
    grads = {}
    for mod, lib, model in ((T, torch, tm), (V, vt, vm)):
        (xs, ys), = [both(device, x, y)[lib is vt]]
        # lr 0 and bounds nothing reaches: the step leaves the accumulated gradients as they are
        loss, norm = mod.accumulation_step(model, lib.optim.SGD(model.parameters(), lr=0.0), xs, ys,
                                           micro_batches=4, max_norm=1e9, clip_value=1e9)
        accumulated = [p.grad.clone() for p in model.parameters()]
        model.grad_checkpointing = False
        model.zero_grad(set_to_none=True)
        full = lib.nn.functional.mse_loss(model(xs), ys)
        full.backward()
        model.grad_checkpointing = True
        np.testing.assert_allclose(loss.item(), full.item(), rtol=1e-5)
        np.testing.assert_allclose(norm.item(), math.sqrt(sum((g * g).sum().item() for g in accumulated)), rtol=1e-5)
        for a, p in zip(accumulated, model.parameters()):
            close(a, p.grad, rtol=1e-4, atol=1e-6)
        grads[lib] = accumulated
    for v, t in zip(grads[vt], grads[torch]):
        close(v, t, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_checkpointing_replays_dropout(device):
    """The recomputed block draws the same dropout mask as the first forward: checkpointed gradients are the
    plain ones (each library against itself: the two streams differ)."""
    x, y = regression_batch(1)
    tm, vm = build("Regressor", device, dropout=0.3)
    for lib, model in ((torch, tm), (vt, vm)):
        (xs, ys), = [both(device, x, y)[lib is vt]]
        grads = []
        for ckpt in (True, False):
            model.grad_checkpointing = ckpt
            model.zero_grad(set_to_none=True)
            lib.manual_seed(5)
            lib.nn.functional.mse_loss(model(xs), ys).backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        for a, b in zip(*grads):
            close(a, b, rtol=1e-6, atol=1e-7)
        model.zero_grad(set_to_none=True)
        lib.manual_seed(6)  # another mask: other gradients, so the mask mattered
        lib.nn.functional.mse_loss(model(xs), ys).backward()
        assert any(not np.allclose(a.cpu().numpy(), p.grad.cpu().numpy()) for a, p in zip(grads[0], model.parameters()))


@pytest.mark.parametrize("device", DEVICES)
def test_clipped_accumulated_training_with_ema_matches_torch(device):
    tm, vm = build("Regressor", device, seed=3)
    (topt, tsched), (vopt, vsched) = T.make_trainer(tm), V.make_trainer(vm)
    tema, vema = T.ModelEMA(tm, decay=0.8), V.ModelEMA(vm, decay=0.8)
    shadow = {k: v.cpu().numpy().astype(np.float64) for k, v in vema.shadow.items()}
    losses, norms = [], []
    for step in range(6):
        (tx, ty), (vx, vy) = both(device, *regression_batch(step))
        tl, tn = T.accumulation_step(tm, topt, tx, ty, micro_batches=4, max_norm=0.5, clip_value=0.05)
        vl, vn = V.accumulation_step(vm, vopt, vx, vy, micro_batches=4, max_norm=0.5, clip_value=0.05)
        np.testing.assert_allclose([vl.item(), vn.item()], [tl.item(), tn.item()], rtol=2e-4)
        losses.append(vl.item())
        norms.append(vn.item())
        check_grads(vm, tm)
        grads = [p.grad for p in vm.parameters()]
        assert max(g.abs().max().item() for g in grads) <= 0.05 * (1 + 1e-6)
        assert math.sqrt(sum((g * g).sum().item() for g in grads)) <= 0.5 * (1 + 1e-5)
        tsched.step()
        vsched.step()
        assert vsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        tema.update(tm)
        vema.update(vm)
        for k, v in vm.state_dict().items():
            shadow[k] = 0.8 * shadow[k] + 0.2 * v.cpu().numpy()
    assert max(norms) > 0.5  # the norm clip bit (after the value clip)
    assert losses[-1] < losses[0], losses
    check_state(vm, tm)
    for k, v in vema.shadow.items():
        close(v, tema.shadow[k], rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(v.cpu().numpy(), shadow[k], rtol=1e-5, atol=1e-6)
        assert not np.allclose(v.cpu().numpy(), vm.state_dict()[k].cpu().numpy())


# ---------------------------------------------------------------- save / resume
def fresh(mod, device, dropout, schedule, weights=None):
    model = mod.Regressor(dropout=dropout)
    if weights is not None:
        model.load_state_dict(weights)
    model = model.to(device)
    optimizer, scheduler = mod.make_trainer(model, schedule=schedule)
    return model, mod.ModelEMA(model, decay=0.8), optimizer, scheduler


def train(mod, lib, parts, device, steps):
    model, ema, optimizer, scheduler = parts
    losses = []
    for step in steps:
        x, y = (lib.from_numpy(a).to(device) for a in regression_batch(step))
        loss, _ = mod.accumulation_step(model, optimizer, x, y, micro_batches=2, max_norm=0.5, clip_value=0.05)
        scheduler.step()
        ema.update(model)
        losses.append(loss.item())
    return losses


def numpy_state(parts):
    model, ema, _, _ = parts
    return ({k: v.cpu().numpy().copy() for k, v in model.state_dict().items()},
            {k: v.cpu().numpy().copy() for k, v in ema.state_dict().items()})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dropout, schedule", [(0.0, "warmup_cosine"), (0.2, "warmup_cosine"), (0.0, "multistep")])
def test_resume_from_a_checkpoint_reproduces_the_uninterrupted_run(dropout, schedule, device, tmp_path):
    torch.manual_seed(4)
    init = {k: v.numpy().copy() for k, v in T.Regressor(dropout=dropout).state_dict().items()}
    runs = {}
    for mod, lib in ((T, torch), (V, vt)):
        weights = {k: lib.from_numpy(v.copy()) for k, v in init.items()}
        lib.manual_seed(7)
        whole = fresh(mod, device, dropout, schedule, weights)
        uninterrupted = train(mod, lib, whole, device, range(6))

        lib.manual_seed(7)
        first = fresh(mod, device, dropout, schedule, weights)
        before = train(mod, lib, first, device, range(3))
        path = tmp_path / f"{lib.__name__}.pt"
        mod.save_checkpoint(path, *first, step=3)
        opt_state = {i: {k: (v.cpu().numpy().copy() if hasattr(v, "cpu") else v) for k, v in s.items()}
                     for i, s in enumerate(first[2].state.values())}
        lib.manual_seed(123)  # the stream moves on; the checkpoint must bring it back
        resumed = fresh(mod, device, dropout, schedule)  # the library's own initialisation: other weights
        assert not np.allclose(resumed[0].inp.weight.detach().cpu().numpy(), init["inp.weight"])
        assert mod.load_checkpoint(path, *resumed, map_location=device) == 3
        # Adam's moments and step count came back, on the parameters' device
        loaded = list(resumed[2].state.values())
        assert len(loaded) == len(opt_state) == len(list(resumed[0].parameters()))
        for i, s in enumerate(loaded):
            assert set(s) == {"step", "exp_avg", "exp_avg_sq"} and int(s["step"]) == 3
            for k in ("exp_avg", "exp_avg_sq"):
                assert s[k].device.type == device.split(":")[0]
                np.testing.assert_array_equal(s[k].cpu().numpy(), opt_state[i][k])
        assert resumed[3].last_epoch == 3 and resumed[3].get_last_lr() == first[3].get_last_lr()
        assert resumed[2].param_groups[0]["lr"] == first[2].param_groups[0]["lr"]
        after = train(mod, lib, resumed, device, range(3, 6))
        assert before + after == uninterrupted  # exactly: the same operations on the same state
        (w_whole, e_whole), (w_resumed, e_resumed) = numpy_state(whole), numpy_state(resumed)
        for k in w_whole:
            np.testing.assert_array_equal(w_resumed[k], w_whole[k])
        for k in e_whole:
            np.testing.assert_array_equal(e_resumed[k], e_whole[k])
        runs[lib] = uninterrupted, w_whole
    assert runs[vt][0][-1] < runs[vt][0][0]
    if dropout == 0.0:  # without random masks, vibetensor's run is torch's
        np.testing.assert_allclose(runs[vt][0], runs[torch][0], rtol=2e-4)
        for k, v in runs[vt][1].items():
            np.testing.assert_allclose(v, runs[torch][1][k], rtol=1e-3, atol=1e-4)


# ---------------------------------------------------------------- SWA, distillation with mixup
W_CLASSES = np.random.default_rng(300).standard_normal((6, 3)).astype(np.float32)


def classification_batches(device, lib, count=3, n=8, seed=60):
    out = []
    for i in range(count):
        x = np.random.default_rng(seed + i).standard_normal((n, 6)).astype(np.float32)
        y = (x @ W_CLASSES).argmax(1)
        out.append((lib.from_numpy(x).to(device), lib.from_numpy(y).to(device)))
    return out


@pytest.mark.parametrize("device", DEVICES)
def test_swa_training_matches_torch(device):
    tm, vm = build("Classifier", device, seed=5)
    tswa, thist = T.swa_train(tm, classification_batches(device, torch))
    vswa, vhist = V.swa_train(vm, classification_batches(device, vt))
    np.testing.assert_allclose([h[0] for h in vhist], [h[0] for h in thist], rtol=2e-4)
    assert [h[1] for h in vhist] == [h[1] for h in thist]  # the schedules agree to the bit
    assert vhist[-1][1] == pytest.approx(0.02) and vhist[0][1] < 0.1  # cosine first, then annealed to swa_lr
    assert vswa.n_averaged.item() == 3
    check_state(vswa, tswa)  # the averaged weights and the statistics update_bn recomputed
    check_state(vm, tm)
    # the average is not the last weights, and its statistics are over all the data, not the model's last batch
    assert not np.allclose(vswa.module.net[0].weight.detach().cpu().numpy(), vm.net[0].weight.detach().cpu().numpy())
    assert not np.allclose(vswa.module.net[1].running_mean.cpu().numpy(), vm.net[1].running_mean.cpu().numpy())
    x, _ = classification_batches(device, vt, count=1, seed=90)[0]
    tx, _ = classification_batches(device, torch, count=1, seed=90)[0]
    vswa.eval()
    tswa.eval()
    with torch.no_grad(), vt.no_grad():
        close(vswa(x), tswa(tx), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_distillation_on_mixup_batches_matches_torch(device):
    tteacher, vteacher = build("Classifier", device, seed=6, hidden=24)
    for _ in range(2):  # teacher statistics of its own, then frozen
        for (tx, _), (vx, _) in zip(classification_batches(device, torch), classification_batches(device, vt)):
            tteacher(tx)
            vteacher(vx)
    tteacher.eval().requires_grad_(False)
    vteacher.eval().requires_grad_(False)
    teacher_state = {k: v.cpu().numpy().copy() for k, v in vteacher.state_dict().items()}
    tm, vm = build("Classifier", device, seed=7)
    topt, vopt = torch.optim.Adam(tm.parameters(), lr=1e-2), vt.optim.Adam(vm.parameters(), lr=1e-2)
    (vx, _), = classification_batches(device, vt, count=1, seed=95)
    (tx, _), = classification_batches(device, torch, count=1, seed=95)

    def soft_loss(m, lib, student, teacher, x):
        """The soft term on a held-out batch; under no_grad, but it moves batch-norm statistics: run on both."""
        with lib.no_grad():
            return m.F.kl_div(m.F.log_softmax(student(x) / 2, dim=-1), m.F.log_softmax(teacher(x) / 2, dim=-1),
                              reduction="batchmean", log_target=True).item() * 4

    before = soft_loss(V, vt, vm, vteacher, vx), soft_loss(T, torch, tm, tteacher, tx)
    rng = np.random.default_rng(8)
    batches = zip(classification_batches(device, torch, count=8), classification_batches(device, vt, count=8))
    for (tbx, tby), (vbx, vby) in batches:
        lam, perm = float(rng.beta(0.4, 0.4)), rng.permutation(8)
        tl = T.distillation_step(tm, tteacher, topt, tbx, tby, lam, perm)
        vl = V.distillation_step(vm, vteacher, vopt, vbx, vby, lam, perm)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=2e-4)
        check_grads(vm, tm)
    after = soft_loss(V, vt, vm, vteacher, vx), soft_loss(T, torch, tm, tteacher, tx)
    np.testing.assert_allclose([before, after], [before[::-1], after[::-1]], rtol=2e-4)
    assert after[0] < before[0], (before, after)  # the student moved toward the teacher
    check_state(vm, tm)
    assert all(p.grad is None for p in vteacher.parameters())
    for k, v in vteacher.state_dict().items():  # eval mode: the running statistics did not move
        np.testing.assert_array_equal(v.cpu().numpy(), teacher_state[k])
    # the soft term is the KL at temperature 2, scaled by 4: against numpy (the student in eval mode)
    vm.eval()
    with vt.no_grad():
        s, t = vm(vx).double().cpu().numpy() / 2, vteacher(vx).double().cpu().numpy() / 2
    ls = s - np.log(np.exp(s).sum(1, keepdims=True))
    lt = t - np.log(np.exp(t).sum(1, keepdims=True))
    expected = (np.exp(lt) * (lt - ls)).sum() / len(s) * 4
    np.testing.assert_allclose(soft_loss(V, vt, vm, vteacher, vx), expected, rtol=1e-4)  # float32 KL: cancellation
