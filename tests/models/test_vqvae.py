"""The VQ-VAE of tests/models/vqvae.py, loaded once with torch and once with vibetensor swapped in for torch, with the
same weights: the nearest-code search (cdist and the expanded squared distance, ties, odd shapes, a non-contiguous
input), the forward pass, codes, perplexity and every gradient (float32, float64) with the straight-through
estimator checked directly, the EMA codebook's buffer updates (index_add_ and scatter_add_, Laplace smoothing,
dead-code restarts, frozen in eval mode), Adam training steps, a state_dict round trip through save/load, bfloat16
autocast, residual VQ, and finite scalar quantisation (int32 mixed-radix codes). On the CPU and, where both see a
GPU, on the GPU (marker cuda)."""
import io

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tvq, vvq = pair("vqvae.py")


def build(seed=0, device="cpu", dtype=None, **cfg):
    torch.manual_seed(seed)
    tm = tvq.VQVAE(**cfg)
    vm = vvq.VQVAE(**cfg)
    load_torch_weights(vm, tm)
    if dtype == "float64":
        tm.double()
        vm.double()
    return tm.to(device), vm.to(device)


def images(seed, b=3, size=8, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((b, 3, size, size)).astype(dtype)


def test_structure_and_buffers_match_torch():
    for cfg in (dict(), dict(ema=True)):
        tm, vm = build(**cfg)
        assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
        assert list(vm.state_dict()) == list(tm.state_dict())
        assert [n for n, _ in vm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert {"vq.embedding", "vq.cluster_size", "vq.embed_avg"} <= set(vm.state_dict())
    assert "vq.embedding" not in dict(vm.named_parameters())
    _, fresh = build(seed=3)  # vibetensor's own init: the codebook uniform in +-1/K
    w = fresh.vq.embedding.weight.detach().numpy()
    assert np.abs(w).max() <= 1 / 12 and w.std() > 0.01


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,k,d", [(1, 1, 1), (7, 5, 3), (33, 12, 4), (20, 3, 9)])
def test_nearest_codes_match_torch(n, k, d, dtype):
    r = np.random.default_rng(n * k + d)
    flat, codebook = r.standard_normal((n, d)).astype(dtype), r.standard_normal((k, d)).astype(dtype)
    (tf, tc), (vf, vc) = both("cpu", flat, codebook)
    for method in ("expanded", "cdist"):
        vi, ti = vvq.nearest_codes(vf, vc, method), tvq.nearest_codes(tf, tc, method)
        assert vi.dtype == vt.int64
        np.testing.assert_array_equal(vi.numpy(), ti.numpy())
    np.testing.assert_array_equal(np.argmin(((flat[:, None] - codebook[None]) ** 2).sum(-1), 1), vi.numpy())
    # a transposed (non-contiguous) view of the same latents finds the same codes
    vt_view = vt.from_numpy(flat.T.copy()).t()
    assert vt_view.is_contiguous() == torch.from_numpy(flat.T.copy()).t().is_contiguous() == (min(n, d) == 1)
    np.testing.assert_array_equal(vvq.nearest_codes(vt_view, vc, "cdist").numpy(), ti.numpy())


def test_argmin_ties_and_cdist_gradients_match_torch():
    """Duplicate codes tie: argmin takes the first, as torch's. cdist's gradient (it is differentiable, the
    codebook loss of some implementations goes through it) matches, including at a zero distance."""
    codebook = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    flat = np.array([[0.0, 1.0], [0.9, 0.1], [0.5, 0.5], [2.0, 2.0]])
    (tf, tc), (vf, vc) = both("cpu", flat, codebook)
    np.testing.assert_array_equal(vvq.nearest_codes(vf, vc).numpy(), tvq.nearest_codes(tf, tc).numpy())
    np.testing.assert_array_equal(vvq.nearest_codes(vf, vc).numpy(), [0, 1, 0, 0])
    for a in (tf, tc, vf, vc):
        a.requires_grad_()
    w = np.linspace(-1, 1, 16).reshape(4, 4)
    tg = torch.autograd.grad((torch.cdist(tf, tc) * torch.from_numpy(w)).sum(), [tf, tc])
    vg = vt.autograd.grad((vt.cdist(vf, vc) * vt.from_numpy(w)).sum(), [vf, vc])
    for a, b in zip(vg, tg):
        close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["expanded", "cdist"])
def test_forward_codes_and_gradients_match_torch(method, dtype, device):
    tm, vm = build(seed=1, device=device, dtype=dtype, method=method)
    npd = np.float32 if dtype == "float32" else np.float64
    (tx,), (vx,) = both(device, images(1, dtype=npd))
    # the codebook drawn from the latents (a k-means style start), so that several codes are used
    with torch.no_grad():
        flat = tm.encoder(tx).permute(0, 2, 3, 1).reshape(-1, 4)
        noise = torch.randn(12, 4, dtype=flat.dtype, device=flat.device)
        tm.vq.embedding.weight.copy_(flat[torch.randperm(12)] + 0.01 * noise)
    vm.vq.embedding.weight.data.copy_(vt.from_numpy(tm.vq.embedding.weight.detach().cpu().numpy()).to(device))
    trec, tl, tp, ti = tm(tx)
    vrec, vl, vp, vi = vm(vx)
    np.testing.assert_array_equal(vi.cpu().numpy(), ti.cpu().numpy())
    assert tuple(vi.shape) == (3, 2, 2) and len(np.unique(vi.cpu().numpy())) > 2
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    for v, t in ((vrec, trec), (vl, tl), (vp, tp)):
        assert str(v.dtype) == str(t.dtype).replace("torch.", "vibetensor.torch.") or v.dtype == getattr(
            vt, str(t.dtype).split(".")[-1])
        close(v, t, **tol)
    assert 1.0 < vp.item() <= 12
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tgrads[name].grad, rtol=1e-3 if dtype == "float32" else 1e-8, atol=1e-6)
    # only the codes picked get a codebook gradient
    used = np.zeros(12, bool)
    used[np.unique(vi.cpu().numpy())] = True
    g = np.abs(vm.vq.embedding.weight.grad.cpu().numpy()).sum(1)
    assert (g[~used] == 0).all() and (g[used] > 0).all()


def test_straight_through_passes_the_decoder_gradient_to_the_encoder():
    """z + (z_q - z).detach() has z_q's value and z's gradient: the gradient reaching the encoder output is the
    gradient at the decoder input plus the commitment term's."""
    tm, vm = build(seed=2)
    (tx,), (vx,) = both("cpu", images(2))
    for lib, m, x in ((torch, tm, tx), (vt, vm, vx)):
        z = m.encoder(x)
        z.retain_grad()
        z_q, vq_loss, _, _ = m.vq(z)
        z_q.retain_grad()
        rec = lib.nn.functional.mse_loss(m.decoder(z_q), x)
        (rec + vq_loss).backward()
        zp = z.detach().permute(0, 2, 3, 1)
        codes = m.vq.embedding.weight.detach()[m.vq(z.detach())[3]]
        commit = (2 * 0.25 / zp.numel()) * (zp - codes)
        close(z.grad, z_q.grad + commit.permute(0, 3, 1, 2), rtol=1e-5, atol=1e-7)
        if lib is torch:
            tz, tzq = z, z_q
    close(z.grad, tz.grad)
    close(z_q, tzq)


def ema_step(m, x, restart_from=None):
    _, loss, perplexity, idx = m(x, restart_from=restart_from)
    return loss, perplexity, idx


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("accumulate", ["index_add", "scatter"])
def test_ema_codebook_updates_match_torch(accumulate, device):
    cfg = dict(ema=True, accumulate=accumulate, decay=0.8, restart=0.3)
    tm, vm = build(seed=4, device=device, **cfg)
    picks = np.random.default_rng(0).permutation(12)
    for step in range(4):
        (tx, tp), (vx, vp) = both(device, images(10 + step), picks)
        tout = ema_step(tm, tx, tp if step >= 2 else None)
        vout = ema_step(vm, vx, vp if step >= 2 else None)
        for v, t in zip(vout, tout):
            close(v, t, rtol=1e-5, atol=1e-6)
        tb = dict(tm.named_buffers())
        for name, b in vm.named_buffers():
            close(b, tb[name], rtol=1e-5, atol=1e-6)
        assert vm.vq.embedding.requires_grad is False and vm.vq.cluster_size.grad_fn is None
    # the restarts ran: codes that were dead now sit on latents (their count reset to 1)
    sizes = vm.vq.cluster_size.cpu().numpy()
    assert (sizes == 1.0).any() and (sizes < 1.0).sum() < 12
    # eval mode: the buffers stay as they are
    before = {n: b.cpu().numpy().copy() for n, b in vm.named_buffers()}
    vm.eval()
    tm.eval()
    with vt.no_grad():
        vout = ema_step(vm, vx)
    with torch.no_grad():
        tout = ema_step(tm, tx)
    close(vout[0], tout[0])
    for n, b in vm.named_buffers():
        np.testing.assert_array_equal(b.cpu().numpy(), before[n])


def test_index_add_and_scatter_add_ema_agree():
    _, a = build(seed=5, ema=True, accumulate="index_add")
    _, b = build(seed=5, ema=True, accumulate="scatter")
    for step in range(3):
        (_,), (vx,) = both("cpu", images(20 + step))
        ema_step(a, vx)
        ema_step(b, vx)
    for (n, x), (_, y) in zip(a.named_buffers(), b.named_buffers()):
        close(x, y, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ema", [False, True])
def test_adam_training_matches_torch(ema, device):
    tm, vm = build(seed=6, device=device, ema=ema)
    topt = torch.optim.Adam(tm.parameters(), lr=3e-3)
    vopt = vt.optim.Adam(vm.parameters(), lr=3e-3)
    x = images(30, b=4)

    def losses_at(step):
        (tx,), (vx,) = both(device, x)
        return tm(tx)[1], vm(vx)[1]

    train_side_by_side(tm, vm, topt, vopt, losses_at, 6)
    tb = dict(tm.named_buffers())
    for name, b in vm.named_buffers():
        close(b, tb[name], rtol=1e-3, atol=1e-4)


def test_state_dict_round_trip_through_save_and_load():
    tm, vm = build(seed=7, ema=True)
    (tx,), (vx,) = both("cpu", images(7))
    ema_step(vm, vx)
    buf = io.BytesIO()
    vt.save(vm.state_dict(), buf)
    buf.seek(0)
    _, other = build(seed=8, ema=True)
    other.load_state_dict(vt.load(buf))
    for (n, a), (_, b) in zip(vm.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=n)
    vm.eval()
    other.eval()
    with vt.no_grad():
        close(other(vx)[0], vm(vx)[0], rtol=0, atol=0)
    # torch reads the same state (the keys and values carry over)
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in other.state_dict().items()})
    tm.eval()
    with torch.no_grad():
        close(vm(vx)[0], tm(tx)[0])


def test_bfloat16_autocast_casts_as_torch():
    tm, vm = build(seed=9)
    (tx,), (vx,) = both("cpu", images(9))
    seen = {}
    for lib, m, x in ((torch, tm, tx), (vt, vm, vx)):
        names = []
        hooks = [mod.register_forward_hook(lambda mod, a, out, name=name: names.append(
            (name, str(out[0].dtype if isinstance(out, tuple) else out.dtype).split(".")[-1])))
            for name, mod in m.named_modules() if name]
        with lib.autocast("cpu", dtype=lib.bfloat16):
            rec, loss, perplexity, idx = m(x)
        for h in hooks:
            h.remove()
        loss.backward()
        seen[lib] = (names, rec, loss, perplexity, idx)
    assert seen[vt][0] == seen[torch][0] and ("encoder.conv1", "bfloat16") in seen[vt][0]
    for i in (1, 2, 3):
        assert str(seen[vt][i].dtype).split(".")[-1] == str(seen[torch][i].dtype).split(".")[-1]
    np.testing.assert_allclose(seen[vt][2].item(), seen[torch][2].item(), rtol=2e-2)
    agree = (seen[vt][4].numpy() == seen[torch][4].numpy()).mean()
    assert agree > 0.8, agree  # bfloat16 rounding may flip a near-tie between codes


def test_residual_vq_matches_torch():
    torch.manual_seed(12)
    tr = tvq.ResidualVQ(3, 6, 4)
    with torch.no_grad():
        for layer in tr.layers:
            layer.embedding.weight.normal_(0.0, 0.5)
    vr = vvq.ResidualVQ(3, 6, 4)
    load_torch_weights(vr, tr)
    z = np.random.default_rng(12).standard_normal((2, 4, 3, 3)).astype(np.float32)
    (tz,), (vz,) = both("cpu", z)
    tz.requires_grad_()
    vz.requires_grad_()
    tout, vout = tr(tz), vr(vz)
    for v, t in zip(vout, tout):
        close(v, t)
    assert tuple(vout[2].shape) == (2, 3, 3, 3) and vout[2].dtype == vt.int64
    # each stage shrinks what is left: the sum of the codes is closer to z than the first stage alone
    first = vr.layers[0](vz)[0]
    assert (vout[0] - vz).pow(2).sum().item() < (first - vz).pow(2).sum().item()
    (tout[0].pow(2).sum() + tout[1]).backward()
    (vout[0].pow(2).sum() + vout[1]).backward()
    close(vz.grad, tz.grad)
    tp = dict(tr.named_parameters())
    for name, p in vr.named_parameters():
        close(p.grad, tp[name].grad)


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [7, 6, 4], [2, 3]])
def test_finite_scalar_quantisation_matches_torch(levels):
    tf, vf = tvq.FSQ(levels), vvq.FSQ(levels)
    assert vf.codebook_size == tf.codebook_size == int(np.prod(levels)) and vf.basis.dtype == vt.int32
    np.testing.assert_array_equal(vf.basis.numpy(), tf.basis.numpy())
    assert "basis" not in vf.state_dict()
    x = np.random.default_rng(len(levels)).standard_normal((3, 5, len(levels))).astype(np.float32) * 2
    (tx,), (vx,) = both("cpu", x)
    tx.requires_grad_()
    vx.requires_grad_()
    (tq, ti), (vq, vi) = tf(tx), vf(vx)
    assert vq.dtype == vt.float32 and vi.dtype == vt.int32
    close(vq, tq, rtol=0, atol=0)
    np.testing.assert_array_equal(vi.numpy(), ti.numpy())
    assert vi.numpy().min() >= 0 and vi.numpy().max() < vf.codebook_size
    close(vf.indices_to_codes(vi), vq)  # the indices decode to the same codes
    w = np.linspace(-1, 1, vq.numel()).reshape(tuple(vq.shape)).astype(np.float32)
    (tq * torch.from_numpy(w)).sum().backward()
    (vq * vt.from_numpy(w)).sum().backward()
    close(vx.grad, tx.grad, rtol=1e-5, atol=1e-7)  # the straight-through gradient of the tanh bound
