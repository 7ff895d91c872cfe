"""The small wav2vec 2.0 of tests/models/wav2vec2.py, loaded once with torch and once with vibetensor swapped in for
torch, with the same weights and the same random draws (span masks, negatives, Gumbel noise): the feature
encoder's lengths and frame mask, the weight-normed positional conv (both weight_norm APIs: state_dict names,
the reconstructed weight, removal), the pre-training losses (contrastive with identical negatives masked to -inf,
diversity, perplexity) and every gradient in float32 and float64, the quantizer in training and eval, vibetensor's
own F.gumbel_softmax (one-hots, straight-through gradients, the argmax distribution), CTC fine-tuning with a
frozen feature encoder (losses, gradients, AdamW steps, bfloat16 autocast) and a save/load round trip. On the CPU
and, where both see a GPU, on the GPU (marker cuda)."""
import io

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tw2v, vw2v = pair("wav2vec2.py")

SAMPLES = 400
T = 19  # frames from 400 samples: (400 - 10) // 5 + 1 = 79, then 39, then 19


def build(cls="Wav2Vec2ForPreTraining", seed=0, device="cpu", **over):
    torch.manual_seed(seed)
    tm = getattr(tw2v, cls)(tw2v.Wav2Vec2Config(**over))
    vm = getattr(vw2v, cls)(vw2v.Wav2Vec2Config(**over))
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def pretrain_batch(seed, device="cpu", num_negatives=4, dtype=np.float32):
    """Waveforms (the second padded after 300 samples), their sample mask, span masks, negatives and noise."""
    r = np.random.default_rng(seed)
    wav = r.standard_normal((2, SAMPLES)).astype(dtype)
    am = np.ones((2, SAMPLES), dtype=np.int64)
    am[1, 300:] = 0
    wav[1, 300:] = 0.0
    mask = tw2v.compute_mask_indices((2, T), 0.3, 3, r)
    neg = tw2v.sample_negative_indices((2, T), num_negatives, r, mask)
    gumbels = -np.log(-np.log(r.uniform(size=(2 * T * 2, 5)))).astype(np.float32)
    return both(device, wav, am, mask, neg, gumbels)


def test_structure_and_weight_norm_names():
    for wn, names in (("parametrizations", ("parametrizations.weight.original0", "parametrizations.weight.original1")),
                      ("legacy", ("weight_g", "weight_v"))):
        tm, vm = build(weight_norm=wn)
        assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
        assert list(vm.state_dict()) == list(tm.state_dict())
        for n in names:
            assert "wav2vec2.encoder.pos_conv_embed.conv." + n in vm.state_dict()
        conv, tconv = vm.wav2vec2.encoder.pos_conv_embed.conv, tm.wav2vec2.encoder.pos_conv_embed.conv
        # the legacy hook recomputes the weight attribute before each forward (load_state_dict leaves it stale)
        x = np.random.default_rng(0).standard_normal((1, 5, 16)).astype(np.float32)
        with torch.no_grad(), vt.no_grad():
            close(vm.wav2vec2.encoder.pos_conv_embed(vt.from_numpy(x)),
                  tm.wav2vec2.encoder.pos_conv_embed(torch.from_numpy(x)))
        close(conv.weight, tconv.weight, rtol=1e-6, atol=1e-7)
        g = conv.parametrizations.weight.original0 if wn == "parametrizations" else conv.weight_g
        assert tuple(g.shape) == (1, 1, 8)  # dim=2: one norm per kernel tap, over the output and input channels
        v = (conv.parametrizations.weight.original1 if wn == "parametrizations" else conv.weight_v).detach().numpy()
        expect = g.detach().numpy() * v / np.sqrt((v ** 2).sum(axis=(0, 1), keepdims=True))
        np.testing.assert_allclose(conv.weight.detach().numpy(), expect, rtol=1e-5, atol=1e-7)
    _, fresh = build(seed=1)  # vibetensor's own initialisation
    q = fresh.quantizer
    assert 0.8 < q.weight_proj.weight.detach().numpy().std() < 1.2 and not q.weight_proj.bias.detach().numpy().any()
    cv, ms = q.codevectors.detach().numpy(), fresh.wav2vec2.masked_spec_embed.detach().numpy()
    assert cv.min() >= 0 and cv.max() < 1 and ms.min() >= 0 and ms.max() < 1 and tuple(cv.shape) == (1, 10, 4)
    pos = fresh.wav2vec2.encoder.pos_conv_embed.conv.weight.detach().numpy()  # std 2 / sqrt(8 * 4) = 0.35
    assert 0.25 < pos.std() < 0.45 and fresh.wav2vec2.encoder.pos_conv_embed.conv.groups == 4


def test_feature_lengths_and_frame_mask():
    tm, vm = build()
    (tl,), (vl,) = both("cpu", np.array([400, 300, 10, 37, 399]))
    vout = vm.wav2vec2._get_feat_extract_output_lengths(vl)
    assert vout.tolist() == tm.wav2vec2._get_feat_extract_output_lengths(tl).tolist() == [19, 14, 0, 1, 19]
    (twav, tam, *_), (vwav, vam, *_) = pretrain_batch(0)
    tm.eval()
    vm.eval()
    with torch.no_grad(), vt.no_grad():
        tfeat, vfeat = tm.wav2vec2.feature_extractor(twav), vm.wav2vec2.feature_extractor(vwav)
    close(vfeat, tfeat)
    assert tuple(vfeat.shape) == (2, 16, T)
    vmask = vm.wav2vec2._get_feature_vector_attention_mask(T, vam)
    assert vmask.dtype == vt.bool and vmask.tolist() == tm.wav2vec2._get_feature_vector_attention_mask(T, tam).tolist()
    assert vmask.tolist() == (np.arange(T)[None] < np.array([[19], [14]])).tolist()


def test_feature_encoder_marks_its_input_and_refuses_one_that_needs_grad():
    """In training it sets requires_grad on input_values[:, None]: allowed on a plain input (a leaf view), an
    error when the waveform itself requires grad (then the view is not a leaf), as torch."""
    tm, vm = build()
    (twav, *_), (vwav, *_) = pretrain_batch(1)
    for lib, model, wav in ((torch, tm, twav), (vt, vm, vwav)):
        out = model.wav2vec2.feature_extractor(wav)
        assert out.requires_grad and not wav.requires_grad
        with pytest.raises(RuntimeError, match="leaf variables"):
            model.wav2vec2.feature_extractor(wav.clone().requires_grad_())
        model.eval()
        out = model.wav2vec2.feature_extractor(wav.clone().requires_grad_())
        assert out.requires_grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("wn", ["parametrizations", "legacy"])
def test_pretraining_losses_and_gradients_match_torch(wn, device):
    tm, vm = build(device=device, weight_norm=wn)
    (twav, tam, tmask, tneg, tg), (vwav, vam, vmask, vneg, vg) = pretrain_batch(2, device=device)
    tout = tm(twav, tmask, tneg, tam, gumbels=tg)
    vout = vm(vwav, vmask, vneg, vam, gumbels=vg)
    for v, t in zip(vout, tout):
        close(v, t)
    assert vout[4].tolist() == tout[4].tolist() and vout[4].any()  # some negatives equal their positive
    tout[0].backward()
    vout[0].backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-5)
    assert np.abs(vm.wav2vec2.masked_spec_embed.grad.cpu().numpy()).max() > 1e-4  # the mask embedding is used
    assert np.abs(vm.quantizer.weight_proj.weight.grad.cpu().numpy()).max() > 1e-4  # straight through the one-hots


def test_float64_pretraining_matches_torch_tightly():
    tm, vm = build(seed=3)
    tm.double()
    vm.double()
    (twav, tam, tmask, tneg, tg), (vwav, vam, vmask, vneg, vg) = pretrain_batch(3, dtype=np.float64)
    tout = tm(twav, tmask, tneg, tam, gumbels=tg.double())
    vout = vm(vwav, vmask, vneg, vam, gumbels=vg.double())
    assert str(vout[0].dtype).split(".")[-1] == str(tout[0].dtype).split(".")[-1] == "float32"  # (.float())
    assert vout[3].dtype == vt.float32 and vm.project_q(vt.zeros(8, dtype=vt.float64)).dtype == vt.float64
    for v, t in zip(vout[:4], tout[:4]):  # the losses and perplexity come out of float32 casts
        close(v, t, rtol=1e-6, atol=1e-6)
    tout[0].backward()
    vout[0].backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-4, atol=1e-6)
    # the encoder has no float32 casts: its outputs and the gradients of a float64 objective agree to rounding
    tm.zero_grad()
    vm.zero_grad()
    th, tfeat, _ = tm.wav2vec2(twav, tam, tmask)
    vh, vfeat, _ = vm.wav2vec2(vwav, vam, vmask)
    assert vh.dtype == vt.float64
    close(vh, th, rtol=1e-10, atol=1e-12)
    close(vfeat, tfeat, rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(3).standard_normal(tuple(th.shape))
    (th * torch.from_numpy(w)).sum().backward()
    (vh * vt.from_numpy(w)).sum().backward()
    for name, p in vm.wav2vec2.named_parameters():
        close(p.grad, tgrads["wav2vec2." + name].grad, rtol=1e-8, atol=1e-11)


def test_quantizer_train_and_eval_match_torch():
    tm, vm = build(seed=4)
    tq, vq = tm.quantizer, vm.quantizer
    r = np.random.default_rng(4)
    feats = r.standard_normal((2, 6, 16)).astype(np.float32)
    mask = r.random((2, 6)) < 0.5
    gumbels = -np.log(-np.log(r.uniform(size=(24, 5)))).astype(np.float32)
    (tf, tmask, tg), (vf, vmask, vg) = both("cpu", feats, mask, gumbels)
    for m in (None, "mask"):
        tcv, tppl = tq(tf, None if m is None else tmask, tg)
        vcv, vppl = vq(vf, None if m is None else vmask, vg)
        close(vcv, tcv)
        close(vppl, tppl)
    # each group picks one codevector: the output is a sum of codebook rows
    cb = vq.codevectors.detach().numpy().reshape(2, 5, 4)
    out = vcv.detach().numpy().reshape(12, 2, 4)
    assert all(any(np.allclose(out[i, g], cb[g, k], atol=1e-6) for k in range(5)) for i in range(12) for g in range(2))
    tq.eval()
    vq.eval()
    tcv, tppl = tq(tf, tmask)
    vcv, vppl = vq(vf, vmask)
    close(vcv, tcv)
    close(vppl, tppl)
    assert 1.0 <= vppl.item() <= 10.0


def test_gumbel_softmax_hard_is_straight_through_with_the_softmax_distribution():
    """vibetensor's own F.gumbel_softmax (its noise is not torch's): one-hot rows in the logits' dtype, the argmax
    of the soft sample drawn from the same seed, the soft sample's gradient, and argmax frequencies that follow
    softmax(logits) whatever tau (the Gumbel-max trick), as torch's."""
    F = vt.nn.functional
    base = np.array([1.0, 2.0, 0.5, -1.0])
    lg = vt.from_numpy(np.tile(base, (4000, 1)).astype(np.float32)).requires_grad_()
    w = vt.from_numpy(np.random.default_rng(5).standard_normal((4000, 4)).astype(np.float32))
    vt.manual_seed(0)
    hard = F.gumbel_softmax(lg, tau=0.5, hard=True)
    vt.manual_seed(0)
    soft = F.gumbel_softmax(lg, tau=0.5, hard=False)
    h = hard.detach().numpy()
    assert hard.dtype == vt.float32 and set(np.unique(h)) == {0.0, 1.0} and (h.sum(-1) == 1).all()
    assert (h.argmax(-1) == soft.detach().numpy().argmax(-1)).all()
    gh, = vt.autograd.grad((hard * w).sum(), lg)
    gs, = vt.autograd.grad((soft * w).sum(), lg)
    np.testing.assert_allclose(gh.numpy(), gs.numpy(), rtol=1e-6, atol=1e-7)
    expect = torch.softmax(torch.from_numpy(base), 0).numpy()
    np.testing.assert_allclose(h.mean(0), expect, atol=0.025)
    torch.manual_seed(0)
    th = torch.nn.functional.gumbel_softmax(torch.from_numpy(np.tile(base, (4000, 1))), tau=0.5, hard=True)
    np.testing.assert_allclose(th.numpy().mean(0), expect, atol=0.025)  # torch's too (the comparison can fail)
    x = vt.from_numpy(np.random.default_rng(6).standard_normal((3, 5, 2)))
    y = F.gumbel_softmax(x, hard=True, dim=1)
    assert y.dtype == vt.float64 and (y.numpy().sum(1) == 1).all()


def ctc_batch(seed, device="cpu"):
    r = np.random.default_rng(seed)
    wav = r.standard_normal((2, SAMPLES)).astype(np.float32)
    am = np.ones((2, SAMPLES), dtype=np.int64)
    am[1, 300:] = 0
    wav[1, 300:] = 0.0
    labels = np.array([[2, 3, 3, 4, 6], [5, 2, 0, -100, -100]])  # 1 is the blank; 0 is an ordinary label here
    return both(device, wav, am, labels)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ctc_finetuning_loss_and_gradients_with_frozen_encoder(reduction, device):
    tm, vm = build("Wav2Vec2ForCTC", seed=5, device=device)
    tm.freeze_feature_encoder()
    vm.freeze_feature_encoder()
    (twav, tam, tlab), (vwav, vam, vlab) = ctc_batch(5, device)
    tlogits, tl = tm(twav, tam, tlab, reduction=reduction)
    vlogits, vl = vm(vwav, vam, vlab, reduction=reduction)
    close(vlogits, tlogits)
    close(vl, tl)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        if name.startswith("wav2vec2.feature_extractor."):
            assert p.grad is None and tgrads[name].grad is None and not p.requires_grad
        elif name == "wav2vec2.masked_spec_embed":  # no span masks in fine-tuning
            assert p.grad is None and tgrads[name].grad is None
        else:
            close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-5)
    # what lies past a waveform's end reaches its frames only through the first layer's GroupNorm (statistics
    # over all samples, padding included, as in wav2vec 2.0 base): the other utterance does not move
    twav[1, 300:] = 5.0
    vwav[1, 300:] = 5.0
    with torch.no_grad(), vt.no_grad():
        tmoved, vmoved = tm(twav, tam)[0], vm(vwav, vam)[0]
    close(vmoved, tmoved)
    close(vmoved[0], vlogits[0], rtol=1e-5, atol=1e-6)
    assert np.abs(vmoved[1].cpu().numpy() - vlogits[1].detach().cpu().numpy()).max() > 1e-2


@pytest.mark.parametrize("device", DEVICES)
def test_ctc_finetuning_adamw_steps_match_torch(device):
    tm, vm = build("Wav2Vec2ForCTC", seed=6, device=device)
    tm.freeze_feature_encoder()
    vm.freeze_feature_encoder()
    topt = torch.optim.AdamW([p for p in tm.parameters() if p.requires_grad], lr=3e-3)
    vopt = vt.optim.AdamW([p for p in vm.parameters() if p.requires_grad], lr=3e-3)
    data = ctc_batch(7, device)
    (twav, tam, tlab), (vwav, vam, vlab) = data
    # the key projections' biases get gradients that are zero but for rounding (softmax ignores a shift along
    # the keys), which AdamW turns into full steps either way: frozen
    for model in (tm, vm):
        for name, p in model.named_parameters():
            if name.endswith("k_proj.bias"):
                p.requires_grad_(False)
    train_side_by_side(tm, vm, topt, vopt, lambda step: (tm(twav, tam, tlab)[1], vm(vwav, vam, vlab)[1]), 5,
                       clip=1.0)


def test_ctc_under_bfloat16_autocast_casts_as_torch():
    tm, vm = build("Wav2Vec2ForCTC", seed=8)
    (twav, tam, tlab), (vwav, vam, vlab) = ctc_batch(8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tlogits, tl = tm(twav, tam, tlab)
    with vt.autocast("cpu", dtype=vt.bfloat16):
        vlogits, vl = vm(vwav, vam, vlab)
    assert str(vlogits.dtype).split(".")[-1] == str(tlogits.dtype).split(".")[-1] == "bfloat16"
    assert vl.dtype == vt.float32 and tl.dtype == torch.float32
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=3e-2)
    close(vlogits.float(), tlogits.float(), rtol=0, atol=0.1 * np.abs(tlogits.float().detach().numpy()).max())


@pytest.mark.parametrize("wn", ["parametrizations", "legacy"])
def test_state_dict_round_trip_and_weight_norm_removal(wn):
    tm, vm = build(seed=9, weight_norm=wn)
    (twav, tam, tmask, tneg, tg), (vwav, vam, vmask, vneg, vg) = pretrain_batch(9)
    buf = io.BytesIO()
    vt.save(vm.state_dict(), buf)
    buf.seek(0)
    _, fresh = build(seed=10, weight_norm=wn)
    fresh.load_state_dict(vt.load(buf))
    with vt.no_grad():
        np.testing.assert_array_equal(fresh(vwav, vmask, vneg, vam, gumbels=vg)[0].numpy(),
                                      vm(vwav, vmask, vneg, vam, gumbels=vg)[0].numpy())
    # removing the weight norm bakes the current weight into a plain parameter: same outputs, as torch's
    results = []
    for lib, model in ((torch, tm), (vt, fresh)):
        conv = model.wav2vec2.encoder.pos_conv_embed.conv
        before = conv.weight.detach().clone()
        if wn == "legacy":
            lib.nn.utils.remove_weight_norm(conv)
        else:
            lib.nn.utils.parametrize.remove_parametrizations(conv, "weight")
        assert isinstance(conv.weight, lib.nn.Parameter) and "weight" in dict(conv.named_parameters())
        np.testing.assert_array_equal(conv.weight.detach().numpy(), before.numpy())
        results.append(sorted(model.state_dict()))
    assert results[1] == results[0]
    with torch.no_grad(), vt.no_grad():
        close(fresh(vwav, vmask, vneg, vam, gumbels=vg)[0], tm(twav, tmask, tneg, tam, gumbels=tg)[0])
