"""The ECAPA-TDNN speaker model of tests/models/ecapa.py, loaded once with torch and once with vibetensor swapped
in for torch, with the same weights: the length masks, attentive statistics pooling (no weight past a length),
the embeddings, the AAM-softmax loss and logits (margins applied to the target class only) and every gradient in
float32 and float64, the BatchNorm statistics, Nesterov SGD steps, and cosine scoring of trials in eval mode. On
the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tec, vec = pair("ecapa.py")

# the attention conv's bias gets a gradient that is zero but for rounding (softmax over time ignores a shift)
ROUNDING_ONLY = "asp.conv.bias"


def build(seed=0, device="cpu"):
    torch.manual_seed(seed)
    tm, vm = tec.SpeakerModel(), vec.SpeakerModel()
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, device="cpu", dtype=np.float32):
    r = np.random.default_rng(seed)
    x = r.standard_normal((4, 30, 10)).astype(dtype)
    x += np.arange(4)[:, None, None] * 0.5 * np.sin(np.arange(10))[None, None]  # a per-speaker spectral tilt
    lengths = np.array([1.0, 0.8, 0.5, 1.0], dtype=dtype)
    return both(device, x, lengths, np.array([0, 1, 2, 3]))


def grads_match(tm, vm, rtol=1e-3, scale=1e-5):
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        t = tp[name].grad
        atol = scale * float(np.abs(t.detach().cpu().numpy()).max()) + 1e-12
        if name.endswith(ROUNDING_ONLY):
            atol = max(atol, 1e-6)
        close(p.grad, t, rtol=rtol, atol=atol)


def test_length_mask_and_pooling_ignore_padding():
    (_, tl, _), (_, vl, _) = batch(0)
    np.testing.assert_array_equal(vec.length_to_mask(vl * 30, max_len=30).numpy(),
                                  tec.length_to_mask(tl * 30, max_len=30).numpy())
    tm, vm = build()
    tm.eval()
    vm.eval()
    r = np.random.default_rng(1)
    x = r.standard_normal((4, 24, 30)).astype(np.float32)
    (tx, tl), (vx, vl) = both("cpu", x, np.array([1.0, 0.8, 0.5, 1.0], dtype=np.float32))
    with torch.no_grad(), vt.no_grad():
        tout, vout = tm.embedding_model.asp(tx, tl), vm.embedding_model.asp(vx, vl)
        close(vout, tout, rtol=1e-4, atol=1e-5)
        x2 = vx.clone()
        x2[2, :, 15:] = 100.0  # past utterance 2's length (half of 30 frames)
        close(vm.embedding_model.asp(x2, vl), vout, rtol=1e-5, atol=1e-5)
        assert tuple(vout.shape) == (4, 48, 1)


@pytest.mark.parametrize("device", DEVICES)
def test_embeddings_loss_and_gradients_match_torch(device):
    tm, vm = build(device=device)
    (tx, tl, ty), (vx, vl, vy) = batch(2, device)
    (tloss, temb), (vloss, vemb) = tm(tx, tl, ty), vm(vx, vl, vy)
    close(vemb, temb)
    close(vloss, tloss)
    tloss.backward()
    vloss.backward()
    grads_match(tm, vm)
    for name, b in vm.named_buffers():
        close(b, dict(tm.named_buffers())[name], rtol=1e-4, atol=1e-6)
    # the margin lowers only the target logit: s * cos(theta + m) against s * cos(theta)
    with vt.no_grad():
        logits = vm.loss(vemb, vy)[1].cpu().numpy()
        cos = vt.nn.functional.linear(vt.nn.functional.normalize(vemb),
                                      vt.nn.functional.normalize(vm.loss.weight)).cpu().numpy()
    theta = np.arccos(np.clip(cos[np.arange(4), [0, 1, 2, 3]], -1, 1))
    expect = np.where(cos[np.arange(4), [0, 1, 2, 3]] > vm.loss.th, np.cos(theta + 0.2),
                      cos[np.arange(4), [0, 1, 2, 3]] - vm.loss.mm)
    np.testing.assert_allclose(logits[np.arange(4), [0, 1, 2, 3]], 30 * expect, rtol=1e-4, atol=1e-4)
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(logits[off], 30 * cos[off], rtol=1e-5, atol=1e-5)


def test_float64_matches_torch_tightly():
    tm, vm = build(seed=3)
    tm.double()
    vm.double()
    (tx, tl, ty), (vx, vl, vy) = batch(3, dtype=np.float64)
    (tloss, temb), (vloss, vemb) = tm(tx, tl, ty), vm(vx, vl, vy)
    assert vemb.dtype == vt.float64
    close(vemb, temb, rtol=1e-10, atol=1e-12)
    close(vloss, tloss, rtol=1e-10, atol=1e-12)
    tloss.backward()
    vloss.backward()
    grads_match(tm, vm, rtol=1e-7, scale=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_sgd_momentum_steps_and_trial_scores_match_torch(device):
    tm, vm = build(seed=4, device=device)
    for model in (tm, vm):  # see ROUNDING_ONLY: zero-but-rounding gradients, frozen for the weight comparison
        for name, p in model.named_parameters():
            if name.endswith(ROUNDING_ONLY):
                p.requires_grad_(False)
    topt = torch.optim.SGD([p for p in tm.parameters() if p.requires_grad], lr=0.01, momentum=0.9,
                           weight_decay=2e-5, nesterov=True)
    vopt = vt.optim.SGD([p for p in vm.parameters() if p.requires_grad], lr=0.01, momentum=0.9, weight_decay=2e-5,
                        nesterov=True)
    (tx, tl, ty), (vx, vl, vy) = batch(4, device)
    train_side_by_side(tm, vm, topt, vopt, lambda step: (tm(tx, tl, ty)[0], vm(vx, vl, vy)[0]), 6)
    tm.eval()
    vm.eval()
    with torch.no_grad(), vt.no_grad():
        temb, vemb = tm.embedding_model(tx, tl).squeeze(1), vm.embedding_model(vx, vl).squeeze(1)
        close(vemb, temb, rtol=1e-3, atol=1e-4)
        # trials: each utterance against every other, scored by cosine similarity
        vs = vec.cosine_score(vemb[:, None], vemb[None]).cpu().numpy()
        ts = tec.cosine_score(temb[:, None], temb[None]).cpu().numpy()
    np.testing.assert_allclose(vs, ts, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.diag(vs), 1.0, rtol=1e-5)
