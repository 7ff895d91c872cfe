"""The diffusion transformer of tests/models/dit.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same weights: patchify / unpatchify (against numpy and as inverses), adaLN-Zero making a
fresh model the zero map, the output and every gradient (input included) with the weights redrawn, Adam steps
on an MSE-on-the-noise loss, the learned-variance output, classifier-free guidance and bfloat16 autocast. On the
CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

td, vd = pair("dit.py")


def build(seed=0, device="cpu", redraw=True, **cfg):
    """redraw replaces the zero initialisation by small random weights, so that every path carries gradient."""
    torch.manual_seed(seed)
    tm = td.DiT(**cfg)
    if redraw:
        with torch.no_grad():
            for p in tm.parameters():
                p.normal_(0.0, 0.2)
    vm = vd.DiT(**cfg)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def inputs(seed, b=3, size=8):
    r = np.random.default_rng(seed)
    return (r.standard_normal((b, 3, size, size)).astype(np.float32), r.integers(0, 1000, size=b),
            r.integers(0, 5, size=b))


def test_patchify_and_unpatchify():
    _, vm = build(redraw=False)
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))
    tokens = vm.patchify(vt.from_numpy(x))
    assert tuple(tokens.shape) == (2, 16, 12)
    # token (i, j) is the patch at rows 2i.., columns 2j.., flattened as (C, p, p)
    ref = x.reshape(2, 3, 4, 2, 4, 2).transpose(0, 2, 4, 1, 3, 5).reshape(2, 16, 12)
    np.testing.assert_array_equal(tokens.numpy(), ref)
    # unpatchify reads each token as (p, p, C): reorder, and it inverts patchify
    last = tokens.view(2, 16, 3, 2, 2).permute(0, 1, 3, 4, 2).reshape(2, 16, 12)
    np.testing.assert_array_equal(vm.unpatchify(last).numpy(), x)
    np.testing.assert_array_equal(vm.unpatchify_fold(last).numpy(), x)


def test_adaln_zero_starts_as_the_zero_map():
    tm, vm = build(redraw=False)
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    x, t, y = inputs(1)
    (tx, tt, ty), (vx, vtt, vy) = both("cpu", x, t, y)
    out = vm(vx, vtt, vy)
    assert tuple(out.shape) == x.shape and not out.abs().sum().item()
    h = vm.x_embed(vm.patchify(vx)) + vm.pos_embed
    c = vm.t_embed(vd.timestep_embedding(vtt, 32)) + vm.y_embed(vy)
    close(vm.blocks[0](h, c), h, rtol=0, atol=0)  # every gate is zero: the block is the identity
    close(vm.blocks[0](h, c), tm.blocks[0](*(torch.from_numpy(a.detach().numpy()) for a in (h, c))))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("learn_sigma", [False, True])
def test_forward_and_gradients_match_torch(learn_sigma, device):
    tm, vm = build(seed=1, device=device, learn_sigma=learn_sigma)
    x, t, y = inputs(2)
    (tx, tt, ty), (vx, vtt, vy) = both(device, x, t, y)
    tx.requires_grad_()
    vx.requires_grad_()
    tout, vout = tm(tx, tt, ty), vm(vx, vtt, vy)
    assert tuple(vout.shape) == (3, 6 if learn_sigma else 3, 8, 8)
    close(vout, tout, rtol=1e-4, atol=1e-4)
    tokens = vm.final(vm.x_embed(vm.patchify(vx)) + vm.pos_embed, vm.t_embed(vd.timestep_embedding(vtt, 32))
                      + vm.y_embed(vy))
    close(vm.unpatchify_fold(tokens), vm.unpatchify(tokens), rtol=0, atol=0)
    assert vout.abs().mean().item() > 0.1
    w = np.random.default_rng(3).standard_normal(tuple(vout.shape)).astype(np.float32)
    (tw,), (vw,) = both(device, w)
    (tout * tw).sum().backward()
    (vout * vw).sum().backward()
    close(vx.grad, tx.grad, rtol=1e-3, atol=1e-4)
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_from_the_zero_init_match_torch(device):
    tm, vm = build(seed=2, device=device, redraw=False)
    topt = torch.optim.AdamW(tm.parameters(), lr=1e-3, weight_decay=0.0)
    vopt = vt.optim.AdamW(vm.parameters(), lr=1e-3, weight_decay=0.0)
    def losses_at(step):
        x, t, y = inputs(10 + step)
        noise = np.random.default_rng(20 + step).standard_normal(x.shape).astype(np.float32)
        (tx, tt, ty, tn), (vx, vtt, vy, vn) = both(device, x, t, y, noise)
        return (torch.nn.functional.mse_loss(tm(tx + tn, tt, ty), tn),
                vt.nn.functional.mse_loss(vm(vx + vn, vtt, vy), vn))
    train_side_by_side(tm, vm, topt, vopt, losses_at, steps=4)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_classifier_free_guidance_matches_torch(learn_sigma):
    tm, vm = build(seed=3, learn_sigma=learn_sigma)
    x, t, y = inputs(4)
    (tx, tt, ty), (vx, vtt, vy) = both("cpu", x, t, y)
    with torch.no_grad(), vt.no_grad():
        close(vm.forward_with_cfg(vx, vtt, vy, 4.0), tm.forward_with_cfg(tx, tt, ty, 4.0), rtol=1e-4, atol=1e-4)
        close(vm.forward_with_cfg(vx, vtt, vy, 1.0), vm(vx, vtt, vy), rtol=1e-5, atol=1e-5)  # scale 1: conditional


def test_bfloat16_autocast_inference_is_as_close_as_torchs():
    tm, vm = build(seed=4)
    x, t, y = inputs(5)
    (tx, tt, ty), (vx, vtt, vy) = both("cpu", x, t, y)
    with torch.no_grad(), vt.no_grad():
        ref = tm(tx, tt, ty).numpy()  # float32: far closer to the truth than either bfloat16 run
        with torch.autocast("cpu", dtype=torch.bfloat16):
            tout = tm(tx, tt, ty)
        with vt.autocast("cpu", dtype=vt.bfloat16):
            vout = vm(vx, vtt, vy)
    assert vout.dtype == vt.bfloat16 and tout.dtype == torch.bfloat16
    terr = np.abs(tout.float().numpy() - ref).mean()
    verr = np.abs(vout.float().numpy() - ref).mean()
    assert 0 < verr <= 1.5 * terr, (verr, terr)
