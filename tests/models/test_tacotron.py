"""The small Tacotron 2 of tests/models/tacotron.py, loaded once with torch and once with vibetensor swapped in for
torch, with the same weights: the xavier gains and embedding init, the encoder over packed sequences (and torch's
error for unsorted lengths), teacher-forced decoding (mels before and after the postnet, stop gates, alignments
that are distributions over the unpadded text whose running sum the decoder keeps in place), the loss and every
gradient in float32 and float64, Adam steps, greedy inference that stops on the gate, the prenet's always-on
dropout, and a state_dict round trip. On the CPU and, where both see a GPU, on the GPU (marker cuda).

One difference is left as a strict xfail: parse_output zeroes the padded frames of the decoder's mel output through
`.data.masked_fill_` after the postnet's first conv saved that tensor; torch's conv backward then reads the zeroed
values, vibetensor's reads the values from before (see test_postnet_conv_sees_the_data_write_as_torch)."""
import io
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

ttac, vtac = pair("tacotron.py")

# the weight whose gradient reads the decoder output that parse_output rewrites through .data (module docstring)
DATA_WRITTEN = "postnet.convolutions.0.0.conv.weight"


def build(seed=0, device="cpu", **over):
    torch.manual_seed(seed)
    tm = ttac.Tacotron2(ttac.TacotronConfig(**over))
    vm = vtac.Tacotron2(vtac.TacotronConfig(**over))
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, device="cpu", out_lengths=(9, 6, 8), dtype=np.float32):
    """Text sorted by decreasing length (as the collate does for pack_padded_sequence), mels, gate targets."""
    r = np.random.default_rng(seed)
    tl = np.array([7, 5, 3])
    text = r.integers(1, 12, (3, 7))
    text[np.arange(7)[None] >= tl[:, None]] = 0
    ol = np.array(out_lengths)
    mels = r.standard_normal((3, 6, 9)).astype(dtype)
    mels[:, :, :][np.broadcast_to((np.arange(9)[None] >= ol[:, None])[:, None], mels.shape)] = 0.0
    gate = (np.arange(9)[None] >= ol[:, None] - 1).astype(dtype)
    return both(device, text, tl, mels, ol, gate)


def test_initialisation_and_gains():
    for args in (("linear",), ("conv1d",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu", 0.2), ("selu",)):
        assert vt.nn.init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args), rel=1e-12)
    tm, vm = build()
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    _, fresh = build(seed=1)
    emb = fresh.embedding.weight.detach().numpy()
    bound = math.sqrt(3.0) * math.sqrt(2.0 / (12 + 16))
    assert np.abs(emb).max() <= bound and np.abs(emb).max() > 0.9 * bound
    # xavier_uniform_ with tanh's gain 5/3: bound gain * sqrt(6 / (fan_in + fan_out))
    q = fresh.decoder.attention_layer.query_layer.linear_layer.weight.detach().numpy()
    qb = 5 / 3 * math.sqrt(6 / (16 + 8))
    assert np.abs(q).max() <= qb and np.abs(q).max() > 0.8 * qb


def test_mask_and_packed_encoder_match_torch():
    tm, vm = build()
    (tt, tl, *_), (vtext, vl, *_) = batch(0)
    assert vtac.get_mask_from_lengths(vl).tolist() == ttac.get_mask_from_lengths(tl).tolist()
    tm.eval()
    vm.eval()
    with torch.no_grad(), vt.no_grad():
        tout = tm.encoder(tm.embedding(tt).transpose(1, 2), tl)
        vout = vm.encoder(vm.embedding(vtext).transpose(1, 2), vl)
    close(vout, tout)
    assert tuple(vout.shape) == (3, 7, 16) and not vout.numpy()[2, 3:].any()  # pad_packed_sequence's zeros
    # the backward direction starts at each sequence's own end: a longer length moves the earlier frames
    with vt.no_grad():
        longer = vm.encoder(vm.embedding(vtext).transpose(1, 2), vt.tensor([7, 5, 4]))
    close(longer[:2], vout[:2], rtol=1e-6, atol=1e-7)
    assert np.abs(longer[2, :3, 8:].numpy() - vout[2, :3, 8:].numpy()).min() > 0
    errors = []
    for lib, model, text in ((torch, tm, tt), (vt, vm, vtext)):
        with pytest.raises(RuntimeError) as e:
            model.encoder(model.embedding(text).transpose(1, 2), lib.tensor([5, 7, 3]))
        errors.append(str(e.value))
    assert "sorted in decreasing order" in errors[1] and errors[1].split("\n")[0] == errors[0].split("\n")[0]


def grads_match(tm, vm, rtol=1e-3, atol=1e-5, skip=()):
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        if name in skip:
            continue
        assert p.grad is not None, name
        close(p.grad, tgrads[name].grad, rtol=rtol, atol=atol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("padded", [True, False])
def test_teacher_forced_outputs_loss_and_gradients_match_torch(padded, device):
    tm, vm = build(seed=2, device=device)
    (tt, tl, tmel, tol, tg), (vtext, vl, vmel, vol, vg) = batch(2, device, (9, 6, 8) if padded else (9, 9, 9))
    tout, vout = tm(tt, tl, tmel, tol), vm(vtext, vl, vmel, vol)
    for v, t in zip(vout, tout):
        close(v, t)
    if padded:
        assert not vout[0].cpu().numpy()[1, :, 6:].any() and (vout[2].cpu().numpy()[1, 6:] == 1e3).all()
    tloss, vloss = ttac.tacotron2_loss(tout, (tmel, tg)), vtac.tacotron2_loss(vout, (vmel, vg))
    close(vloss, tloss)
    tloss.backward()
    vloss.backward()
    grads_match(tm, vm, skip=(DATA_WRITTEN,) if padded else ())
    assert np.abs(vm.decoder.attention_layer.location_layer.location_conv.conv.weight.grad.cpu().numpy()).max() > 0


def test_alignments_are_distributions_over_the_text():
    tm, vm = build(seed=3)
    (tt, tl, tmel, tol, _), (vtext, vl, vmel, vol, _) = batch(3)
    with vt.no_grad():
        align = vm(vtext, vl, vmel, vol)[3].numpy()
    assert align.shape == (3, 9, 7)
    np.testing.assert_allclose(align.sum(-1), 1.0, rtol=1e-5)
    assert not align[1, :, 5:].any() and not align[2, :, 3:].any() and (align[2, :, :3] > 0).all()
    # the decoder kept the running sum of the alignments in place, as torch's
    np.testing.assert_allclose(vm.decoder.attention_weights_cum.numpy(), align.sum(1), rtol=1e-5, atol=1e-6)
    tm(tt, tl, tmel, tol)
    close(vm.decoder.attention_weights_cum, tm.decoder.attention_weights_cum)


def test_float64_model_matches_torch_tightly():
    tm, vm = build(seed=4)
    tm.double()
    vm.double()
    (tt, tl, tmel, tol, tg), (vtext, vl, vmel, vol, vg) = batch(4, dtype=np.float64)
    tout, vout = tm(tt, tl, tmel, tol), vm(vtext, vl, vmel, vol)
    assert vout[0].dtype == vt.float64
    for v, t in zip(vout, tout):
        close(v, t, rtol=1e-10, atol=1e-12)
    tloss, vloss = ttac.tacotron2_loss(tout, (tmel, tg)), vtac.tacotron2_loss(vout, (vmel, vg))
    tloss.backward()
    vloss.backward()
    grads_match(tm, vm, rtol=1e-8, atol=1e-11, skip=(DATA_WRITTEN,))


@pytest.mark.xfail(strict=True, reason="vibetensor's .data shares the storage's version counter and its conv saves "
                   "its own copy of the input: a write through .data after the forward is not seen by the conv's "
                   "backward, where torch's reads the rewritten tensor")
def test_postnet_conv_sees_the_data_write_as_torch():
    tm, vm = build(seed=2)
    (tt, tl, tmel, tol, tg), (vtext, vl, vmel, vol, vg) = batch(2)
    ttac.tacotron2_loss(tm(tt, tl, tmel, tol), (tmel, tg)).backward()
    vtac.tacotron2_loss(vm(vtext, vl, vmel, vol), (vmel, vg)).backward()
    close(dict(vm.named_parameters())[DATA_WRITTEN].grad, dict(tm.named_parameters())[DATA_WRITTEN].grad,
          rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_match_torch(device):
    """Unpadded mels (where parse_output's .data writes change nothing), five Adam steps on one batch."""
    tm, vm = build(seed=5, device=device)
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2, weight_decay=1e-6)
    vopt = vt.optim.Adam(vm.parameters(), lr=1e-2, weight_decay=1e-6)
    (tt, tl, tmel, tol, tg), (vtext, vl, vmel, vol, vg) = batch(5, device, (9, 9, 9))
    # the biases of the convs that BatchNorm follows get gradients that are zero but for rounding, which Adam's
    # normalisation turns into full steps either way: frozen
    for model in (tm, vm):
        for name, p in model.named_parameters():
            if name.endswith("0.conv.bias") and "convolutions" in name:
                p.requires_grad_(False)

    def losses_at(step):
        return (ttac.tacotron2_loss(tm(tt, tl, tmel, tol), (tmel, tg)),
                vtac.tacotron2_loss(vm(vtext, vl, vmel, vol), (vmel, vg)))

    train_side_by_side(tm, vm, topt, vopt, losses_at, 5, clip=1.0)
    close(vm.postnet.convolutions[0][1].running_mean, tm.postnet.convolutions[0][1].running_mean)


@pytest.mark.parametrize("gate_bias", [0.0, 8.0])
def test_inference_matches_torch_and_stops_on_the_gate(gate_bias):
    tm, vm = build(seed=6)
    for m in (tm, vm):
        m.decoder.gate_layer.linear_layer.bias.data.fill_(gate_bias - 3.0)  # -3: never stops; 5: at once
    tm.eval()
    vm.eval()
    (tt, *_), (vtext, *_) = batch(6)
    with torch.no_grad(), vt.no_grad():
        tout, vout = tm.inference(tt[:1]), vm.inference(vtext[:1])
    for v, t in zip(vout, tout):
        close(v, t)
    steps = vout[0].shape[2]
    assert steps == tout[0].shape[2] == (1 if gate_bias else 20)
    assert vout[3].shape == (1, steps, 7)


def test_prenet_dropout_stays_on_at_inference():
    vt.manual_seed(7)
    pre = vtac.Prenet(6, [8], 0.5)  # one layer: a kept unit is exactly twice the undropped one
    pre.eval()
    x = vt.from_numpy(np.abs(np.random.default_rng(7).standard_normal((400, 6))).astype(np.float32))
    with vt.no_grad():
        a = pre(x).numpy()
        b = pre(x).numpy()
        pre.p = 0.0
        full = pre(x).numpy()
    alive = full > 0
    assert 0.4 < (a[alive] == 0).mean() < 0.6 and not np.array_equal(a, b)
    np.testing.assert_allclose(a[a > 0], 2 * full[a > 0], rtol=1e-6)


def test_state_dict_round_trip_through_save_and_load():
    tm, vm = build(seed=8)
    (tt, tl, tmel, tol, tg), (vtext, vl, vmel, vol, vg) = batch(8)
    vm(vtext, vl, vmel, vol)  # moves the BatchNorm statistics
    buf = io.BytesIO()
    vt.save(vm.state_dict(), buf)
    buf.seek(0)
    _, fresh = build(seed=9)
    fresh.load_state_dict(vt.load(buf))
    vm.eval()
    fresh.eval()
    with vt.no_grad():
        for a, b in zip(fresh(vtext, vl, vmel, vol), vm(vtext, vl, vmel, vol)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in fresh.state_dict().items()})
    tm.eval()
    with torch.no_grad(), vt.no_grad():
        close(fresh(vtext, vl, vmel, vol)[1], tm(tt, tl, tmel, tol)[1])
