"""The normalizing flows of tests/models/flows.py (Glow with plain and LU-decomposed 1x1 convolutions, RealNVP
with checkerboard and channel masks, MAF), loaded once with torch and once with vibetensor swapped in for torch,
with the same weights: every layer inverts and its log-determinant is the log|det| of its numerical Jacobian;
ActNorm's data-dependent initialisation; the latents, log-determinants, bits per dim, input and parameter
gradients, reverse passes and Adam steps side by side with torch; MADE's autoregressive masks and seeded MAF
sampling. On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tf, vf = pair("flows.py")


def perturb(tm, seed):
    """Nudge every torch parameter so that the zero-initialised couplings are not the identity (and their inner
    layers get gradients); the twin gets the result through load_torch_weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in tm.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def twins(factory, seed=0, device="cpu", nudge=True):
    torch.manual_seed(seed)
    tm = factory(tf)
    vm = factory(vf)
    if nudge:
        perturb(tm, seed + 100)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


MODELS = {
    "glow-lu": (lambda m: m.Glow(in_channels=3, levels=2, depth=2, lu=True), (2, 3, 8, 8)),
    "glow-plain": (lambda m: m.Glow(in_channels=3, levels=2, depth=2, lu=False), (2, 3, 8, 8)),
    "realnvp": (lambda m: m.RealNVP(in_channels=2, size=4), (3, 2, 4, 4)),
    "maf": (lambda m: m.MAF(5, num_blocks=3), (6, 5)),
}


def pixels(shape, seed):
    r = np.random.default_rng(seed)
    if len(shape) == 2:  # MAF: continuous data, no dequantisation
        return r.standard_normal(shape).astype(np.float32), None
    x = r.integers(0, 256, shape).astype(np.float32)
    return x, r.random(shape).astype(np.float32)


def nll(mod, model, x, noise):
    """Bits per dim of dequantised images, or the mean negative log-likelihood of vectors."""
    if noise is None:
        return -model.log_prob(x).mean()
    return mod.bits_per_dim(model.log_prob(mod.dequantize(x, noise)), x)


# ---- single layers: inverse and log-determinant against the numerical Jacobian ---------------------------------

LAYERS = {
    "actnorm": (lambda m: m.ActNorm(2), (1, 2, 2, 2)),
    "invconv": (lambda m: m.InvConv2d(4), (1, 4, 2, 1)),
    "invconv-lu": (lambda m: m.InvConv2dLU(4), (1, 4, 2, 1)),
    "invconv-lu-unpack": (lambda m: m.InvConv2dLU(4, unpack=True), (1, 4, 2, 1)),
    "affine-coupling": (lambda m: m.AffineCoupling(4, hidden=6), (1, 4, 2, 1)),
    "checkerboard": (lambda m: m.MaskedCoupling(1, m.checkerboard_mask(2, 3, 0), hidden=6), (1, 1, 2, 3)),
    "channel-mask": (lambda m: m.MaskedCoupling(4, m.channel_mask(4, 1), hidden=6), (1, 4, 1, 2)),
    "flow-step": (lambda m: m.FlowStep(4, lu=True, hidden=6), (1, 4, 2, 1)),
    "maf-block": (lambda m: m.MAFBlock(5, hidden=8), (1, 5)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_inverts_and_logdet_is_log_abs_det_jacobian(name):
    factory, shape = LAYERS[name]
    tl, vl = twins(factory, seed=1)
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    if name in ("actnorm", "flow-step"):  # initialise ActNorm on a batch of its own, then use it as a plain layer
        init = np.random.default_rng(3).standard_normal((4,) + shape[1:]).astype(np.float32)
        tl(torch.from_numpy(init))
        vl(vt.from_numpy(init))
    (tx,), (vx,) = both("cpu", x)
    ty, tld = tl(tx)
    vy, vld = vl(vx)
    close(vy, ty)
    close(vld, tld, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(vl.reverse(vy).detach().numpy(), x, rtol=1e-4, atol=1e-5)
    jac = vt.autograd.functional.jacobian(lambda inp: vl(inp)[0], vx)
    d = x.size
    assert tuple(jac.shape) == shape + shape
    sign, logabs = vt.linalg.slogdet(jac.reshape(d, d))
    assert sign.item() != 0
    np.testing.assert_allclose(logabs.item(), vld.reshape(-1)[0].item(), rtol=1e-4, atol=1e-4)
    tjac = torch.autograd.functional.jacobian(lambda inp: tl(inp)[0], tx)
    close(jac, tjac, rtol=1e-4, atol=1e-5)
    if name == "maf-block":  # autoregressive: du_i/dx_j = 0 for j > i, so the log-det is the diagonal's
        j = jac.reshape(d, d).numpy()
        np.testing.assert_array_equal(np.triu(j, 1), 0)
        np.testing.assert_allclose(np.log(np.abs(np.diag(j))).sum(), vld.item(), rtol=1e-5, atol=1e-5)


def test_squeeze_is_a_permutation_and_unsqueeze_inverts_it():
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float32).reshape(2, 3, 4, 6)
    (tx,), (vx,) = both("cpu", x)
    vs, ts = vf.squeeze2d(vx), tf.squeeze2d(tx)
    assert tuple(vs.shape) == (2, 12, 2, 3)
    np.testing.assert_array_equal(vs.numpy(), ts.numpy())
    np.testing.assert_array_equal(np.sort(vs.numpy().ravel()), x.ravel())
    # channel 4c + 2i + j holds the (i, j) corner of each 2x2 patch of channel c
    np.testing.assert_array_equal(vs.numpy()[:, 4 * 1 + 2 * 1 + 0], x[:, 1, 1::2, 0::2])
    np.testing.assert_array_equal(vf.unsqueeze2d(vs).numpy(), x)


def test_masks_match_torch():
    np.testing.assert_array_equal(vf.checkerboard_mask(3, 4, 1).numpy(), tf.checkerboard_mask(3, 4, 1).numpy())
    np.testing.assert_array_equal(vf.channel_mask(6, 1).numpy(), tf.channel_mask(6, 1).numpy())
    assert vf.checkerboard_mask(2, 2, 0).numpy().ravel().tolist() == [1, 0, 0, 1]


# ---- ActNorm's data-dependent initialisation -------------------------------------------------------------------

def test_actnorm_initialises_on_the_first_training_batch_only():
    tl, vl = twins(lambda m: m.ActNorm(3), nudge=False)
    assert "initialized" in vl.state_dict() and vl.initialized.item() == 0
    r = np.random.default_rng(4)
    x1 = (3 * r.standard_normal((4, 3, 5, 5)) + 2).astype(np.float32)
    x2 = r.standard_normal((4, 3, 5, 5)).astype(np.float32)
    vl.eval()
    vl(vt.from_numpy(x1))  # no initialisation in eval mode
    assert vl.initialized.item() == 0 and float(vl.logs.abs().sum()) == 0
    vl.train()
    for x in (x1, x2):
        (tx,), (vx,) = both("cpu", x)
        ty, tld = tl(tx)
        vy, vld = vl(vx)
        close(vy, ty, rtol=1e-4, atol=1e-5)
        close(vld, tld)
    assert vl.initialized.item() == 1 and vl.initialized.dtype == vt.uint8
    close(vl.loc, tl.loc)
    close(vl.logs, tl.logs)
    y1 = vl(vt.from_numpy(x1))[0].numpy()  # the first batch comes out standardised per channel
    np.testing.assert_allclose(y1.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y1.std(axis=(0, 2, 3), ddof=1), 1, rtol=1e-4)
    assert vl.loc.requires_grad and vl.loc.grad is None  # the initialisation ran under no_grad
    vl2 = vf.ActNorm(3)
    vl2.load_state_dict(vl.state_dict())
    assert vl2.initialized.item() == 1
    np.testing.assert_allclose(vl2(vt.from_numpy(x2))[0].numpy(), vl(vt.from_numpy(x2))[0].numpy())


def test_lu_invconv_weight_and_logdet():
    tl, vl = twins(lambda m: m.InvConv2dLU(6), seed=5)
    close(vl.weight(), tl.weight())
    w = vl.weight().detach()
    np.testing.assert_allclose(vt.linalg.slogdet(w)[1].item(), vl.log_s.sum().item(), rtol=1e-5, atol=1e-5)
    # at construction the weight is the QR rotation the LU came from: orthogonal, |det| 1
    vt.manual_seed(7)
    fresh = vf.InvConv2dLU(6)
    w0 = fresh.weight().detach().numpy()
    np.testing.assert_allclose(w0 @ w0.T, np.eye(6), atol=1e-5)
    assert sorted(fresh.state_dict()) == sorted(tf.InvConv2dLU(6).state_dict())
    vt.manual_seed(7)
    unpacked = vf.InvConv2dLU(6, unpack=True)  # lu_unpack(lu_factor(w)) gives the same factors as linalg.lu(w)
    for name, b in fresh.state_dict().items():
        np.testing.assert_allclose(unpacked.state_dict()[name].numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


# ---- whole models side by side with torch ---------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(MODELS))
def test_forward_and_gradients_match_torch(kind, device):
    factory, shape = MODELS[kind]
    tm, vm = twins(factory, seed=11, device=device)
    x, noise = pixels(shape, 12)
    arrs = (x,) if noise is None else (x, noise)
    (tx, *tn), (vx, *vn) = both(device, *arrs)
    tx.requires_grad_()
    vx.requires_grad_()
    tz, tld = tm(tf.dequantize(tx, tn[0]) if tn else tx)
    vz, vld = vm(vf.dequantize(vx, vn[0]) if vn else vx)
    for a, b in zip(vz if isinstance(vz, list) else [vz], tz if isinstance(tz, list) else [tz]):
        close(a, b, rtol=1e-4, atol=1e-4)
    close(vld, tld, rtol=1e-4, atol=1e-3)
    tl = nll(tf, tm, tx, tn[0] if tn else None)
    vl = nll(vf, vm, vx, vn[0] if vn else None)
    close(vl, tl, rtol=1e-5)
    if noise is not None:
        assert 0 < vl.item() < 20  # bits per dim of 8-bit data
    tl.backward()
    vl.backward()
    close(vx.grad, tx.grad, rtol=1e-3, atol=1e-6 * max(1.0, tx.grad.abs().max().item()))
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        assert p.grad is not None, name
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))
    assert any(p.grad.abs().sum().item() > 0 for n, p in vm.named_parameters() if "net.0" in n)


@pytest.mark.parametrize("kind", list(MODELS))
def test_reverse_reconstructs_and_matches_torch(kind):
    factory, shape = MODELS[kind]
    tm, vm = twins(factory, seed=13)
    x, noise = pixels(shape, 14)
    if noise is not None:
        x = x / 256 - 0.5
    (tx,), (vx,) = both("cpu", x)
    with torch.no_grad(), vt.no_grad():
        tz, _ = tm(tx)
        vz, _ = vm(vx)
        tr, vr = tm.reverse(tz), vm.reverse(vz)
    close(vr, tr, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(vr.numpy(), x, rtol=1e-3, atol=1e-4)
    assert not vr.requires_grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", list(MODELS))
def test_adam_steps_match_torch(kind, device):
    factory, shape = MODELS[kind]
    tm, vm = twins(factory, seed=21, device=device)
    topt = torch.optim.Adam(tm.parameters(), lr=2e-3)
    vopt = vt.optim.Adam(vm.parameters(), lr=2e-3)
    x, _ = pixels(shape, 22)

    def losses_at(step):
        noise = pixels(shape, 30 + step)[1]
        if noise is None:
            (tx,), (vx,) = both(device, x)
            return nll(tf, tm, tx, None), nll(vf, vm, vx, None)
        (tx, tn), (vx, vn) = both(device, x, noise)
        return nll(tf, tm, tx, tn), nll(vf, vm, vx, vn)
    train_side_by_side(tm, vm, topt, vopt, losses_at, steps=4)
    tb, vb = dict(tm.named_buffers()), dict(vm.named_buffers())
    for name, b in vb.items():
        close(b, tb[name])


# ---- MADE / MAF ------------------------------------------------------------------------------------------------

def test_made_masks_are_autoregressive():
    _, vm = twins(lambda m: m.MADE(4, hidden=7), seed=31)
    assert sorted(n for n in vm.state_dict() if n.endswith("mask")) == ["net.0.mask", "net.2.mask", "net.4.mask"]
    assert not any(n.endswith("mask") for n, _ in vm.named_parameters())
    x = vt.from_numpy(np.random.default_rng(32).standard_normal((1, 4)).astype(np.float32))
    jac = vt.autograd.functional.jacobian(lambda inp: vt.cat(vm(inp), -1), x).reshape(8, 4).numpy()
    for out in (jac[:4], jac[4:]):  # mu and alpha: output i sees inputs j < i only
        np.testing.assert_array_equal(np.triu(out), 0)
        assert np.abs(np.tril(out, -1)).sum() > 0
    # the masked weight carries no gradient where the mask is zero
    vm(x)[0].sum().backward()
    layer = vm.net[0]
    assert (layer.weight.grad.numpy()[layer.mask.numpy() == 0] == 0).all()


def test_maf_seeded_sampling():
    tm, vm = twins(lambda m: m.MAF(5, num_blocks=2), seed=41)
    a = vm.sample(4, generator=vt.Generator().manual_seed(3))
    b = vm.sample(4, generator=vt.Generator().manual_seed(3))
    assert tuple(a.shape) == (4, 5) and a.tolist() == b.tolist() and not a.requires_grad
    u, _ = vm(a)  # the density pass maps samples back to the base noise
    np.testing.assert_allclose(u.detach().numpy(), vt.randn(4, 5, generator=vt.Generator().manual_seed(3)).numpy(),
                               rtol=1e-4, atol=1e-4)
    close(vm.log_prob(a), tm.log_prob(torch.from_numpy(a.numpy())), rtol=1e-4, atol=1e-4)


def test_maf_reverse_with_grad_is_caught_like_torch():
    """The sequential inverse writes x[:, i] in place after MADE saved x for backward: torch refuses the
    backward (sampling belongs under no_grad), and so must vibetensor rather than return wrong gradients."""
    tm, vm = twins(lambda m: m.MAF(5, num_blocks=1), seed=51)
    u = np.random.default_rng(52).standard_normal((3, 5)).astype(np.float32)
    (tu,), (vu,) = both("cpu", u)
    tx, vx = tm.reverse(tu), vm.reverse(vu)
    close(vx, tx, rtol=1e-4, atol=1e-5)
    assert vx.requires_grad
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tx.sum().backward()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        vx.sum().backward()


def test_glow_temperature_sampling_inverts_to_its_latents():
    tm, vm = twins(MODELS["glow-lu"][0], seed=61)
    x, noise = pixels((2, 3, 8, 8), 62)
    vm(vf.dequantize(vt.from_numpy(x), vt.from_numpy(noise)))  # ActNorm initialises on data first
    a = vm.sample(3, (3, 8, 8), temperature=0.5, generator=vt.Generator().manual_seed(4))
    b = vm.sample(3, (3, 8, 8), temperature=0.5, generator=vt.Generator().manual_seed(4))
    assert tuple(a.shape) == (3, 3, 8, 8) and a.tolist() == b.tolist() and not a.requires_grad
    g = vt.Generator().manual_seed(4)
    z0 = vt.randn(3, 6, 4, 4, generator=g) * 0.5
    z1 = vt.randn(3, 24, 2, 2, generator=g) * 0.5
    zs, _ = vm(a)
    close(zs[0], z0, rtol=1e-3, atol=1e-4)
    close(zs[1], z1, rtol=1e-3, atol=1e-4)
    # torch's twin, initialised on the same data, maps the same latents to the same images
    tm(tf.dequantize(torch.from_numpy(x), torch.from_numpy(noise)))
    close(a, tm.reverse([torch.from_numpy(z0.numpy()), torch.from_numpy(z1.numpy())]), rtol=1e-3, atol=1e-4)
