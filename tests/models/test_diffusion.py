"""The Gaussian diffusion of tests/models/diffusion.py loaded once with torch and once with vibetensor swapped in
for torch: the noise schedules each library computes (float64 math kept as float32 buffers), the timestep
embedding and Karras sigmas, the training loss and every gradient (input included) for the epsilon, x0 and v
objectives, AdamW training with gradient clipping and both EMA update styles (losses, norms, final weights and
EMA weights), and each sampler's whole trajectory (DDPM, DDIM with eta = 0 and > 0, Euler and Heun on Karras
sigmas) with classifier-free guidance, x0 clipping and dynamic thresholding, all from the same numpy draws; then
the learned variance (its variational bound term and gradient, the hybrid loss, DDPM with it), a super-resolution
model conditioned on an antialiased low-resolution image, and gradient checkpointing. On the CPU and, where both
see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

td, vd = pair("diffusion.py")
SHAPE = (2, 3, 8, 8)


def build(device="cpu", seed=0, model_kw=None, **cfg):
    """torch's diffusion and its vibetensor twin in float64 with torch's weights; each library's own schedule
    buffers are checked equal before the weights (and buffers) are copied over."""
    torch.manual_seed(seed)
    tm = td.GaussianDiffusion(td.Denoiser(**(model_kw or {})), **cfg)
    vm = vd.GaussianDiffusion(vd.Denoiser(**(model_kw or {})), **cfg)
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    tb = dict(tm.named_buffers())
    for name, b in vm.named_buffers():
        assert b.dtype == vt.float32 and tb[name].dtype == torch.float32, name
        close(b, tb[name], rtol=1e-6, atol=0)
    load_torch_weights(vm, tm)
    return tm.double().to(device), vm.double().to(device)


def batch(device, seed=0):
    r = np.random.default_rng(seed)
    return both(device, r.uniform(-1, 1, SHAPE), r.integers(0, 4, size=SHAPE[0]))


def max_abs(t):
    return float(np.abs(t.detach().cpu().numpy()).max())


@pytest.mark.parametrize("name", ["linear_beta_schedule", "cosine_beta_schedule"])
def test_beta_schedules_in_float64(name):
    tb, vb = getattr(td, name)(40), getattr(vd, name)(40)
    assert vb.dtype == vt.float64 and tuple(vb.shape) == (40,)
    close(vb, tb, rtol=1e-12, atol=0)
    assert 0 < vb.min().item() and vb.max().item() <= 0.999
    if name == "cosine_beta_schedule":
        assert vb[-1].item() == 0.999  # the clip is reached at the last step
    # alphas_cumprod with the 1.0 prepended by F.pad, as each library's module holds it
    tm, vm = build(beta_schedule=name.split("_")[0])
    assert vm.alphas_cumprod_prev[0].item() == 1.0 and vm.posterior_variance[0].item() == 0.0
    assert vm.betas.dtype == vt.float64  # .double() casts the float32 buffers
    close(vm.alphas_cumprod_prev[1:], vm.alphas_cumprod[:-1], rtol=0, atol=0)


def test_extract_embedding_and_karras_sigmas():
    a = np.linspace(0.1, 1.0, 10)
    t = np.array([0, 9, 4])
    (ta, tt), (va, vtt) = both("cpu", a, t)
    out = vd.extract(va, vtt, SHAPE[:1] + (3, 8, 8))
    assert tuple(out.shape) == (3, 1, 1, 1)
    np.testing.assert_array_equal(out.numpy().ravel(), a[t])
    # fractional timesteps, an odd width (zero column appended); vibetensor's float32 exp may round the other
    # way from torch's (each within 1 ulp), which t multiplies: timesteps stay in the schedule's range
    steps = np.array([0.0, 3.5, 19.0])
    for dim in (8, 7):
        (tt,), (vtt,) = both("cpu", steps)
        close(vd.timestep_embedding(vtt, dim), td.timestep_embedding(tt, dim), rtol=1e-6, atol=1e-6)
        assert vd.timestep_embedding(vtt, dim).dtype == vt.float32
    ts, vs = td.karras_sigmas(6, 0.02, 80.0), vd.karras_sigmas(6, 0.02, 80.0)
    close(vs, ts, rtol=1e-12, atol=0)
    assert vs[0].item() == pytest.approx(80.0) and vs[5].item() == pytest.approx(0.02) and vs[6].item() == 0.0


def test_label_dropout_and_dynamic_threshold():
    y = np.arange(64) % 4
    (ty,), (vy,) = both("cpu", y)
    vdrop = vd.drop_labels(vy, 0.5, 4, np.random.default_rng(5))
    np.testing.assert_array_equal(vdrop.numpy(), td.drop_labels(ty, 0.5, 4, np.random.default_rng(5)).numpy())
    assert 0 < (vdrop == 4).sum().item() < 64 and vdrop.dtype == vt.int64
    x0 = np.random.default_rng(6).standard_normal((3, 2, 4, 4)) * np.array([0.3, 2.0, 5.0])[:, None, None, None]
    (tx,), (vx,) = both("cpu", x0)
    out = vd.dynamic_threshold(vx, 0.9)
    close(out, td.dynamic_threshold(tx, 0.9), rtol=1e-12, atol=1e-12)
    s = np.maximum(np.quantile(np.abs(x0.reshape(3, -1)), 0.9, axis=1), 1.0)
    np.testing.assert_allclose(out.numpy(), np.clip(x0, -s[:, None, None, None], s[:, None, None, None])
                               / s[:, None, None, None], rtol=1e-12)
    np.testing.assert_array_equal(out[0].numpy(), x0[0])  # s = 1 where the quantile is below 1
    assert max_abs(out) <= 1.0 and max_abs(out[2]) == 1.0


def test_float32_denoiser_output():
    torch.manual_seed(1)
    tm, vm = td.Denoiser(), vd.Denoiser()
    load_torch_weights(vm, tm)
    r = np.random.default_rng(2)
    (tx, tt, ty), (vx, vtt, vy) = both("cpu", r.standard_normal(SHAPE).astype(np.float32),
                                       np.array([3, 19]), np.array([0, 4]))
    out = vm(vx, vtt, vy)
    assert out.dtype == vt.float32 and tuple(out.shape) == SHAPE
    close(out, tm(tx, tt, ty), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("objective,schedule", [("pred_noise", "linear"), ("pred_x0", "cosine"),
                                                ("pred_v", "cosine")])
def test_loss_and_every_gradient(device, objective, schedule):
    tm, vm = build(device, objective=objective, beta_schedule=schedule)
    (tx, ty), (vx, vy) = batch(device)
    tx.requires_grad_(True)
    vx.requires_grad_(True)
    tl, vl = tm(tx, ty, np.random.default_rng(1)), vm(vx, vy, np.random.default_rng(1))
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-10)
    tl.backward()
    vl.backward()
    close(vx.grad, tx.grad, rtol=1e-7, atol=1e-12)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tp[name].grad, rtol=1e-7, atol=1e-12)
    assert max_abs(vm.model.attn.qkv.weight.grad) > 0 and max_abs(vm.model.class_emb.weight.grad) > 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_lerp", [True, False], ids=["lerp", "mul_add"])
def test_training_with_clipping_and_ema(device, use_lerp):
    tm, vm = build(device, objective="pred_v")
    topt = torch.optim.AdamW(tm.parameters(), lr=3e-3, weight_decay=1e-2)
    vopt = vt.optim.AdamW(vm.parameters(), lr=3e-3, weight_decay=1e-2)
    tema, vema = td.EMA(tm, 0.9, use_lerp), vd.EMA(vm, 0.9, use_lerp)
    assert vema.shadow.model.inp.weight is not vm.model.inp.weight  # a deep copy, not shared
    start = {n: p.detach().cpu().numpy().copy() for n, p in vm.named_parameters()}
    trng, vrng = np.random.default_rng(7), np.random.default_rng(7)
    norms = []
    for step in range(3):
        (tx, ty), (vx, vy) = batch(device, seed=10 + step)
        tl, tn = td.train_step(tm, topt, tema, tx, ty, trng, max_norm=0.5)
        vl, vn = vd.train_step(vm, vopt, vema, vx, vy, vrng, max_norm=0.5)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-9, err_msg=f"loss at step {step}")
        np.testing.assert_allclose(vn.item(), tn.item(), rtol=1e-9, err_msg=f"grad norm at step {step}")
        norms.append(vn.item())
    assert max(norms) > 0.5  # the clipping acted
    tp, te = dict(tm.named_parameters()), dict(tema.shadow.named_parameters())
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-7, atol=1e-10)
    for name, e in vema.shadow.named_parameters():
        assert not e.requires_grad
        close(e, te[name], rtol=1e-7, atol=1e-10)
    te_b = dict(tema.shadow.named_buffers())
    for name, b in vema.shadow.named_buffers():
        close(b, te_b[name], rtol=0, atol=0)
    w, e = vm.model.inp.weight.detach().cpu().numpy(), vema.shadow.model.inp.weight.cpu().numpy()
    assert not np.allclose(w, start["model.inp.weight"]) and not np.allclose(e, w)
    assert not np.allclose(e, start["model.inp.weight"])  # the average moved, and lags the weights


SAMPLERS = [
    ("ddpm_sample", "pred_noise", {}),
    ("ddpm_sample", "pred_v", dict(clip_x0=True)),
    ("ddpm_sample", "pred_x0", dict(guidance_scale=2.0, dynamic_p=0.8)),
    ("ddim_sample", "pred_v", dict(eta=0.0)),
    ("ddim_sample", "pred_noise", dict(eta=0.7, clip_x0=True)),
    ("ddim_sample", "pred_v", dict(eta=1.0, guidance_scale=3.0, dynamic_p=0.9)),
    ("euler_sample", "pred_noise", {}),
    ("euler_sample", "pred_v", dict(guidance_scale=2.0, clip_x0=True)),
    ("euler_sample", "pred_x0", dict(heun=True, steps=5, dynamic_p=0.9)),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sampler,objective,kw", SAMPLERS,
                         ids=[f"{s}-{o}-{'-'.join(k) or 'plain'}" for s, o, k in SAMPLERS])
def test_sampler_trajectory(device, sampler, objective, kw):
    tm, vm = build(device, objective=objective)
    with torch.no_grad():  # larger weights: guidance, clipping and thresholding all have something to do
        for p in tm.parameters():
            p.mul_(2.0)
    load_torch_weights(vm, tm)
    (_, ty), (_, vy) = batch(device)
    ttraj = getattr(tm, sampler)(SHAPE, ty, np.random.default_rng(3), **kw)
    vtraj = getattr(vm, sampler)(SHAPE, vy, np.random.default_rng(3), **kw)
    assert tuple(vtraj.shape) == tuple(ttraj.shape) and vtraj.dtype == vt.float64
    assert not vtraj.requires_grad
    close(vtraj, ttraj, rtol=1e-8, atol=1e-10)
    if kw.get("clip_x0") and sampler == "ddim_sample" and kw.get("eta", 1) == 0:
        assert max_abs(vtraj[:, -1]) <= 1.0
    if "dynamic_p" in kw and sampler == "ddim_sample":
        assert max_abs(vtraj[:, -1]) <= 1.0  # the last DDIM step returns the thresholded x0


def test_guidance_batches_conditional_and_unconditional():
    tm, vm = build(objective="pred_noise")
    (_, ty), (_, vy) = batch("cpu")
    x = np.random.default_rng(4).standard_normal(SHAPE)
    t = np.array([5, 17])
    (tx, tt), (vx, vtt) = both("cpu", x, t)
    guided = vm.model_output(vx, vtt, vy, guidance_scale=3.0)
    close(guided, tm.model_output(tx, tt, ty, guidance_scale=3.0), rtol=1e-10, atol=1e-12)
    cond, uncond = vm.model(vx, vtt, vy), vm.model(vx, vtt, vt.full_like(vy, 4))
    close(guided, uncond + 3.0 * (cond - uncond), rtol=1e-10, atol=1e-12)
    assert not np.allclose(cond.detach().numpy(), uncond.detach().numpy())


def same_grads(tm, vm, tx=None, vx=None, rtol=1e-7):
    if vx is not None:
        close(vx.grad, tx.grad, rtol=rtol, atol=1e-12)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tp[name].grad, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_learned_variance_bound_and_hybrid_loss(device):
    tm, vm = build(device, objective="pred_noise", model_kw=dict(learn_sigma=True))
    r = np.random.default_rng(8)
    x0 = np.clip(r.uniform(-1.2, 1.2, (3, 3, 8, 8)), -1, 1)  # some pixels on the edge bins
    arrs = (x0, x0 + 0.3 * r.standard_normal(x0.shape), r.standard_normal(x0.shape), r.uniform(-1, 1, x0.shape),
            np.array([0, 7, 19]))
    (tx0, txt, tout, tvar, tt), (vx0, vxt, vout, vvar, vtt) = both(device, *arrs)
    tvar.requires_grad_(True)
    vvar.requires_grad_(True)
    tvb, vvb = tm.vb_term(tx0, txt, tt, tout, tvar), vm.vb_term(vx0, vxt, vtt, vout, vvar)
    close(vvb, tvb, rtol=1e-10, atol=1e-12)
    kl_only = vm.vb_term(vx0, vxt, vt.tensor([1, 7, 19], device=device), vout, vvar)
    assert vvb[0].item() != pytest.approx(kl_only[0].item())  # t = 0 takes the decoder's likelihood
    tvb.sum().backward()
    vvb.sum().backward()
    close(vvar.grad, tvar.grad, rtol=1e-8, atol=1e-12)
    # the hybrid loss: the noise MSE trains the mean, the bound trains the variance
    (tx, ty), (vx, vy) = batch(device)
    tx.requires_grad_(True)
    vx.requires_grad_(True)
    tl, vl = tm(tx, ty, np.random.default_rng(9)), vm(vx, vy, np.random.default_rng(9))
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-10)
    tl.backward()
    vl.backward()
    same_grads(tm, vm, tx, vx)


@pytest.mark.parametrize("device", DEVICES)
def test_learned_variance_ddpm_trajectory(device, guidance_scale=2.5):
    tm, vm = build(device, objective="pred_noise", model_kw=dict(learn_sigma=True))
    (_, ty), (_, vy) = batch(device)
    ttraj = tm.ddpm_sample(SHAPE, ty, np.random.default_rng(4), guidance_scale=guidance_scale, clip_x0=True)
    vtraj = vm.ddpm_sample(SHAPE, vy, np.random.default_rng(4), guidance_scale=guidance_scale, clip_x0=True)
    close(vtraj, ttraj, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_super_resolution_conditioning(device):
    tm, vm = build(device, objective="pred_v", lowres_size=4, model_kw=dict(cond_ch=3))
    (tx, ty), (vx, vy) = batch(device)
    tlow, vlow = td.make_lowres(tx, 4), vd.make_lowres(vx, 4)
    assert tuple(vlow.shape) == SHAPE
    close(vlow, tlow, rtol=1e-12, atol=1e-13)
    tl, vl = tm(tx, ty, np.random.default_rng(5)), vm(vx, vy, np.random.default_rng(5))
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-10)
    tl.backward()
    vl.backward()
    same_grads(tm, vm)
    kw = dict(steps=6, eta=0.3, guidance_scale=2.0)
    ttraj = tm.ddim_sample(SHAPE, ty, np.random.default_rng(6), cond=tlow, **kw)
    vtraj = vm.ddim_sample(SHAPE, vy, np.random.default_rng(6), cond=vlow, **kw)
    close(vtraj, ttraj, rtol=1e-8, atol=1e-10)
    other = vm.ddim_sample(SHAPE, vy, np.random.default_rng(6), cond=vlow * 0, **kw)
    assert not np.allclose(other.cpu().numpy(), vtraj.cpu().numpy())  # the samples depend on the condition


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_checkpointing(device):
    tm, vm = build(device, objective="pred_x0", model_kw=dict(use_checkpoint=True))
    _, plain = build(device, objective="pred_x0")
    assert vm.model.down.use_checkpoint and not plain.model.down.use_checkpoint
    (tx, ty), (vx, vy) = batch(device)
    tl, vl = tm(tx, ty, np.random.default_rng(2)), vm(vx, vy, np.random.default_rng(2))
    pl = plain(vx, vy, np.random.default_rng(2))
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-10)
    assert vl.item() == pl.item()
    tl.backward()
    vl.backward()
    pl.backward()
    same_grads(tm, vm)
    pp = dict(plain.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, pp[name].grad, rtol=1e-12, atol=1e-14)


def test_float32_sampling_and_bfloat16_autocast_training():
    """float32 as models are run: trajectories agree to float32 rounding magnified over the steps; under
    bfloat16 autocast the loss and gradients agree to bfloat16's precision, and stay float32."""
    torch.manual_seed(0)
    tm = td.GaussianDiffusion(td.Denoiser(), objective="pred_noise")
    vm = vd.GaussianDiffusion(vd.Denoiser(), objective="pred_noise")
    load_torch_weights(vm, tm)
    y = np.array([1, 2])
    for name, kw in (("ddim_sample", dict(eta=0.0)), ("euler_sample", dict(heun=True, guidance_scale=2.0))):
        ttraj = getattr(tm, name)(SHAPE, torch.from_numpy(y), np.random.default_rng(0), **kw)
        vtraj = getattr(vm, name)(SHAPE, vt.from_numpy(y), np.random.default_rng(0), **kw)
        assert vtraj.dtype == vt.float32
        scale = np.abs(ttraj.numpy()).max(axis=(2, 3, 4), keepdims=True)  # per sample and step
        np.testing.assert_allclose(vtraj.numpy() / scale, ttraj.numpy() / scale, rtol=0, atol=5e-5)
    x = np.random.default_rng(1).uniform(-1, 1, SHAPE).astype(np.float32)
    losses = []
    for lib, m in ((torch, tm), (vt, vm)):
        with lib.autocast("cpu", dtype=lib.bfloat16):
            loss = m(lib.from_numpy(x), lib.from_numpy(y), np.random.default_rng(2))
        assert loss.dtype == lib.float32
        loss.backward()
        losses.append(loss.item())
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-2)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad.dtype == vt.float32
        g, tg = p.grad.numpy().ravel(), tp[name].grad.numpy().ravel()
        if np.abs(tg).max() > 1e-3:  # the direction of each sizable gradient survives bfloat16
            assert g @ tg / (np.linalg.norm(g) * np.linalg.norm(tg)) > 0.99, name


@pytest.mark.parametrize("device", DEVICES)
def test_edm_training_with_averaged_model_and_stochastic_sampler(device):
    """Karras-preconditioned training with a LambdaLR warm-up and the EMA public code builds with
    torch.optim.swa_utils.AveragedModel(get_ema_multi_avg_fn), then the churned Heun sampler with guidance."""
    torch.manual_seed(3)
    tm, vm = td.EDMPrecond(td.Denoiser()).double(), vd.EDMPrecond(vd.Denoiser()).double()
    load_torch_weights(vm, tm)
    tm, vm = tm.to(device), vm.to(device)
    topt, vopt = torch.optim.AdamW(tm.parameters(), lr=5e-3), vt.optim.AdamW(vm.parameters(), lr=5e-3)
    warm = lambda step: min(1.0, (step + 1) / 3)  # noqa: E731
    tsched, vsched = torch.optim.lr_scheduler.LambdaLR(topt, warm), vt.optim.lr_scheduler.LambdaLR(vopt, warm)
    tema = torch.optim.swa_utils.AveragedModel(tm, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.8))
    vema = vt.optim.swa_utils.AveragedModel(vm, multi_avg_fn=vt.optim.swa_utils.get_ema_multi_avg_fn(0.8))
    trng, vrng = np.random.default_rng(11), np.random.default_rng(11)
    for step in range(3):
        (tx, ty), (vx, vy) = batch(device, seed=20 + step)
        tl, vl = tm.loss(tx, ty, trng), vm.loss(vx, vy, vrng)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-9, err_msg=f"loss at step {step}")
        for opt, loss in ((topt, tl), (vopt, vl)):
            opt.zero_grad()
            loss.backward()
        if step == 0:
            same_grads(tm, vm)
        for opt, sched, ema, m in ((topt, tsched, tema, tm), (vopt, vsched, vema, vm)):
            opt.step()
            sched.step()
            ema.update_parameters(m)
        assert vsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    assert vema.n_averaged.item() == tema.n_averaged.item() == 3
    for vmod, tmod in ((vm, tm), (vema.module, tema.module)):
        tp = dict(tmod.named_parameters())
        for name, p in vmod.named_parameters():
            close(p, tp[name], rtol=1e-7, atol=1e-10)
    assert not np.allclose(vema.module.model.inp.weight.detach().cpu().numpy(),
                           vm.model.inp.weight.detach().cpu().numpy())
    (_, ty), (_, vy) = batch(device)
    kw = dict(steps=5, churn=4.0, churn_range=(0.05, 50.0), guidance_scale=1.5)
    ttraj = tema.module.sample(SHAPE, ty, np.random.default_rng(12), **kw)
    vtraj = vema.module.sample(SHAPE, vy, np.random.default_rng(12), **kw)
    assert tuple(vtraj.shape) == (2, 6) + SHAPE[1:]
    close(vtraj, ttraj, rtol=1e-8, atol=1e-10)
    kw = dict(steps=4, sigma_max=20.0, schedule="exponential")  # sigmas from torch.logspace
    ttraj = tema.module.sample(SHAPE, ty, np.random.default_rng(13), **kw)
    vtraj = vema.module.sample(SHAPE, vy, np.random.default_rng(13), **kw)
    close(vtraj, ttraj, rtol=1e-8, atol=1e-10)


def test_channels_last_training_step():
    """The model and batch in channels_last, as diffusion training scripts convert them: the same loss and
    gradients as torch's (the attention block's reshape reads the channels-last activations)."""
    tm, vm = build(objective="pred_v")
    tm, vm = tm.to(memory_format=torch.channels_last), vm.to(memory_format=vt.channels_last)
    assert vm.model.inp.weight.is_contiguous(memory_format=vt.channels_last)
    (tx, ty), (vx, vy) = batch("cpu")
    tx, vx = tx.contiguous(memory_format=torch.channels_last), vx.contiguous(memory_format=vt.channels_last)
    tl, vl = tm(tx, ty, np.random.default_rng(14)), vm(vx, vy, np.random.default_rng(14))
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-10)
    tl.backward()
    vl.backward()
    same_grads(tm, vm)
    out = vm.model(vx, vt.tensor([3, 9]), vy)
    assert out.is_contiguous(memory_format=vt.channels_last) == tm.model(
        tx, torch.tensor([3, 9]), ty).is_contiguous(memory_format=torch.channels_last)
