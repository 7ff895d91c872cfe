"""The T5-style encoder-decoder of tests/models/t5.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same weights: the relative position buckets (bidirectional and causal), forward logits and
loss over padded inputs with every gradient, dropout only in train mode, AdamW steps and Adafactor steps on a
label-smoothed loss side by side, gradient checkpointing (gradients, replayed dropout masks), cached decoding
against the full decoder, greedy and beam-search generation with and without banned repeated ngrams (identical
token ids, scores against torch and against a teacher-forced rescoring), and bfloat16 / float16 inference (the
float16 clamping); attention by hand and through F.scaled_dot_product_attention. On the CPU and, where both see
a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tt5, vt5 = pair("t5.py")

# initializer_factor 2 makes the generation varied (some rows end in eos, beams part from greedy) at vocab 12
GEN = dict(vocab_size=12, initializer_factor=2.0)


def build(seed=0, device="cpu", **cfg):
    torch.manual_seed(seed)
    tm = tt5.T5ForConditionalGeneration(tt5.T5Config(**cfg))
    vm = vt5.T5ForConditionalGeneration(vt5.T5Config(**cfg))
    load_torch_weights(vm, tm)
    return tm.to(device).eval(), vm.to(device).eval()


def batch(seed, vocab=40, b=4, s=7, t=6):
    """Source ids with right padding (mask 0, id 0) and labels with -100 past each target's end."""
    r = np.random.default_rng(seed)
    x = r.integers(2, vocab, size=(b, s))
    mask = np.ones_like(x)
    for i, n in enumerate(r.integers(2, s + 1, size=b)):
        mask[i, n:] = 0
    x[mask == 0] = 0
    y = r.integers(2, vocab, size=(b, t))
    for i, n in enumerate(r.integers(1, t + 1, size=b)):
        y[i, n - 1] = 1  # eos ends the target
        y[i, n:] = -100
    return x, mask, y


def test_relative_position_buckets_match_torch():
    rel = np.arange(-150, 151)[None, :] - np.arange(0, 5)[:, None]
    (trel,), (vrel,) = both("cpu", rel)
    for bidirectional in (True, False):
        for num_buckets, max_distance in ((32, 128), (8, 20)):
            kw = dict(bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance)
            vb, tb = vt5.relative_position_bucket(vrel, **kw), tt5.relative_position_bucket(trel, **kw)
            assert vb.dtype == vt.long
            assert vb.tolist() == tb.tolist(), kw
            got = vb.numpy()
            assert got.min() == 0 and got.max() == num_buckets - 1  # far distances share the last bucket
            if not bidirectional:
                assert (got[rel > 0] == 0).all()  # keys after the query say nothing in the decoder
    tm, vm = build()
    bias = vm.decoder.block[0].layer[0].SelfAttention.compute_bias(3, 5, past_length=2)
    assert tuple(bias.shape) == (1, 4, 3, 5)
    close(bias, tm.decoder.block[0].layer[0].SelfAttention.compute_bias(3, 5, past_length=2), rtol=0, atol=0)
    assert not hasattr(vm.encoder.block[1].layer[0].SelfAttention, "relative_attention_bias")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_forward_and_gradients_match_torch(attn_implementation, device):
    tm, vm = build(device=device, attn_implementation=attn_implementation)
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert vm.lm_head.weight is vm.shared.weight and vm.decoder.embed_tokens is vm.shared
    (tx, tmask, ty), (vx, vmask, vy) = both(device, *batch(1))
    assert vm._shift_right(vy).tolist() == tm._shift_right(ty).tolist()
    assert (vm._shift_right(vy).cpu().numpy() >= 0).all() and (vm._shift_right(vy)[:, 0] == 0).all()
    tl, tlogits, _, tenc = tm(tx, tmask, labels=ty)
    vl, vlogits, _, venc = vm(vx, vmask, labels=vy)
    close(venc, tenc)
    close(vlogits, tlogits)
    close(vl, tl)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
    # the padded source positions reach nothing: changing their ids leaves the logits alone
    x2 = vx.clone()
    x2.masked_fill_(vmask == 0, 5)
    with vt.no_grad():
        close(vm(x2, vmask, labels=vy)[1], vlogits, rtol=1e-5, atol=1e-6)


def test_dropout_only_in_train_mode():
    tm, vm = build()
    (tx, tmask, ty), (vx, vmask, vy) = both("cpu", *batch(2))
    vm.train()
    with vt.no_grad():
        a, b = vm(vx, vmask, labels=vy)[1], vm(vx, vmask, labels=vy)[1]
    assert not np.allclose(a.numpy(), b.numpy())
    vm.eval()
    with vt.no_grad(), torch.no_grad():
        a, b, t = vm(vx, vmask, labels=vy)[1], vm(vx, vmask, labels=vy)[1], tm(tx, tmask, labels=ty)[1]
    assert a.tolist() == b.tolist()
    close(a, t)


@pytest.mark.parametrize("device", DEVICES)
def test_adamw_steps_match_torch(device):
    tm, vm = build(seed=1, device=device)
    topt = torch.optim.AdamW(tm.parameters(), lr=3e-3, weight_decay=0.01)
    vopt = vt.optim.AdamW(vm.parameters(), lr=3e-3, weight_decay=0.01)
    batches = [both(device, *batch(10 + i % 2)) for i in range(2)]

    def losses_at(step):
        (tx, tmask, ty), (vx, vmask, vy) = batches[step % 2]
        return tm(tx, tmask, labels=ty)[0], vm(vx, vmask, labels=vy)[0]

    losses = train_side_by_side(tm, vm, topt, vopt, losses_at, steps=6)
    assert losses[-1] < losses[0] - 0.2, losses


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_cached_decoding_matches_the_full_decoder(attn_implementation, device):
    _, vm = build(seed=3, device=device, attn_implementation=attn_implementation)
    (_, _, _), (vx, vmask, vy) = both(device, *batch(3))
    dec = vm._shift_right(vy)
    with vt.no_grad():
        _, full, _, enc = vm(vx, vmask, decoder_input_ids=dec)
        _, first, past, _ = vm(attention_mask=vmask, decoder_input_ids=dec[:, :2], encoder_outputs=enc,
                               use_cache=True)
        parts = [first]
        for i in range(2, dec.shape[1]):
            _, logits, past, _ = vm(attention_mask=vmask, decoder_input_ids=dec[:, i:i + 1], encoder_outputs=enc,
                                    past_key_values=past, use_cache=True)
            parts.append(logits)
    assert len(past) == 2 and len(past[0]) == 4
    assert tuple(past[0][0].shape) == (4, 4, 6, 8) and tuple(past[0][2].shape) == (4, 4, 7, 8)
    close(vt.cat(parts, dim=1), full, rtol=1e-4, atol=1e-5)


def rescore(vm, x, mask, sequences):
    """Teacher-forced log-probabilities of the generated tokens, summed up to (and with) eos; and the lengths."""
    with vt.no_grad():
        logits = vm(x, mask, decoder_input_ids=sequences[:, :-1])[1]
    logp = vt.log_softmax(logits.float(), dim=-1).gather(-1, sequences[:, 1:, None]).squeeze(-1).cpu().numpy()
    seqs = sequences.cpu().numpy()[:, 1:]
    total, lengths = [], []
    for row, lp in zip(seqs, logp):
        eos = np.flatnonzero(row == 1)
        n = eos[0] + 1 if eos.size else len(row)
        total.append(lp[:n].sum())
        lengths.append(n)
        assert (row[n:] == 0).all()  # pad after eos
    return np.array(total), np.array(lengths)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_cache, attn_implementation", [(True, "eager"), (False, "eager"), (True, "sdpa")])
def test_greedy_generation_matches_torch(use_cache, attn_implementation, device):
    tm, vm = build(seed=0, device=device, attn_implementation=attn_implementation, **GEN)
    (tx, tmask, _), (vx, vmask, _) = both(device, *batch(3, vocab=12))
    tseq, tscores = tm.generate(tx, tmask, max_new_tokens=10, use_cache=use_cache)
    vseq, vscores = vm.generate(vx, vmask, max_new_tokens=10, use_cache=use_cache)
    assert vseq.tolist() == tseq.tolist()
    close(vscores, tscores, rtol=1e-4, atol=1e-4)
    total, lengths = rescore(vm, vx, vmask, vseq)
    np.testing.assert_allclose(vscores.cpu().numpy(), total, rtol=1e-4, atol=1e-4)
    assert lengths.min() < 10 and lengths.max() == 10  # some rows stopped at eos, some ran on
    assert len({tuple(r) for r in vseq.tolist()}) == 4


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("length_penalty", [1.0, 0.0])
def test_beam_search_matches_torch(length_penalty, device):
    tm, vm = build(seed=0, device=device, **GEN)
    (tx, tmask, _), (vx, vmask, _) = both(device, *batch(3, vocab=12))
    kw = dict(max_new_tokens=10, num_beams=3, length_penalty=length_penalty)
    tseq, tscores = tm.generate(tx, tmask, **kw)
    vseq, vscores = vm.generate(vx, vmask, **kw)
    assert vseq.tolist() == tseq.tolist()
    close(vscores, tscores, rtol=1e-4, atol=1e-4)
    total, lengths = rescore(vm, vx, vmask, vseq)
    np.testing.assert_allclose(vscores.cpu().numpy(), total / lengths.astype(np.float64) ** length_penalty,
                               rtol=1e-4, atol=1e-4)
    greedy_seq, greedy_scores = vm.generate(vx, vmask, max_new_tokens=10)
    assert vseq.tolist() != greedy_seq.tolist()  # the beams found something greedy did not
    if length_penalty == 0.0:  # unnormalized: the beam's sequence scores at least as well where it differs
        assert (vscores.cpu().numpy() >= greedy_scores.cpu().numpy() - 1e-5).all()
    assert vm.generate(vx, vmask, use_cache=False, **kw)[0].tolist() == vseq.tolist()


def test_bfloat16_inference_matches_torch():
    tm, vm = build(seed=0, **GEN)
    tm.to(torch.bfloat16)
    vm.to(vt.bfloat16)
    (tx, tmask, ty), (vx, vmask, vy) = both("cpu", *batch(3, vocab=12))
    with torch.no_grad(), vt.no_grad():
        tenc = tm.encoder(tx, tmask)[0]
        venc = vm.encoder(vx, vmask)[0]
        tlogits, vlogits = tm(tx, tmask, labels=ty)[1], vm(vx, vmask, labels=vy)[1]
    assert venc.dtype == vt.bfloat16 and vlogits.dtype == vt.bfloat16  # the norm cast back to the weight's dtype
    close(venc.float(), tenc.float(), rtol=2e-2, atol=2e-2)
    close(vlogits.float(), tlogits.float(), rtol=2e-2, atol=5e-2)
    for beams in (1, 3):
        tseq, _ = tm.generate(tx, tmask, max_new_tokens=8, num_beams=beams)
        vseq, _ = vm.generate(vx, vmask, max_new_tokens=8, num_beams=beams)
        assert vseq.tolist() == tseq.tolist(), beams


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_checkpointing_matches_torch(device):
    tm, vm = build(seed=4, device=device, dropout_rate=0.0)
    for m in (tm, vm):
        m.train()
        m.encoder.gradient_checkpointing = m.decoder.gradient_checkpointing = True
    (tx, tmask, ty), (vx, vmask, vy) = both(device, *batch(4))
    tl, vl = tm(tx, tmask, labels=ty)[0], vm(vx, vmask, labels=vy)[0]
    close(vl, tl)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)


def test_gradient_checkpointing_replays_the_dropout_masks():
    """With dropout on, the recomputed blocks must draw the masks of the first pass (checkpoint's saved RNG
    state), or the gradients would belong to another network than the loss."""
    _, vm = build(seed=4, dropout_rate=0.3)
    vm.train()
    (_, _, _), (vx, vmask, vy) = both("cpu", *batch(4))
    grads = []
    for checkpointing in (False, True):
        vm.encoder.gradient_checkpointing = vm.decoder.gradient_checkpointing = checkpointing
        vm.zero_grad()
        vt.manual_seed(7)
        loss = vm(vx, vmask, labels=vy)[0]
        loss.backward()
        grads.append((loss.item(), {n: p.grad.numpy().copy() for n, p in vm.named_parameters()}))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    for name, g in grads[0][1].items():
        np.testing.assert_allclose(grads[1][1][name], g, rtol=1e-4, atol=1e-6, err_msg=name)
    vt.manual_seed(8)
    assert vm(vx, vmask, labels=vy)[0].item() != pytest.approx(grads[0][0], rel=1e-6)  # the dropout is live


@pytest.mark.parametrize("device", DEVICES)
def test_adafactor_with_label_smoothing_matches_torch(device):
    """T5's own optimizer, on the loss with label smoothing."""
    tm, vm = build(seed=5, device=device, label_smoothing=0.1)
    topt = torch.optim.Adafactor(tm.parameters(), lr=1e-2)
    vopt = vt.optim.Adafactor(vm.parameters(), lr=1e-2)
    (tx, tmask, ty), (vx, vmask, vy) = both(device, *batch(12))

    def losses_at(step):
        return tm(tx, tmask, labels=ty)[0], vm(vx, vmask, labels=vy)[0]

    train_side_by_side(tm, vm, topt, vopt, losses_at, steps=5)


def test_float16_residuals_are_clamped_like_torch():
    big = np.array([[1.0, -60000.0, 3.0], [np.inf, 2.0, -np.inf]], dtype=np.float16)
    (tb,), (vb,) = both("cpu", big)
    clamped = vt5.clamp_inf(vb)
    assert clamped.tolist() == tt5.clamp_inf(tb).tolist()
    assert np.isfinite(clamped.numpy()).all() and clamped[0].tolist() == vb[0].tolist()
    assert vt5.clamp_inf(vb[:1]).tolist() == tt5.clamp_inf(tb[:1]).tolist() == vb[:1].tolist()  # no inf: as is
    assert vt5.clamp_inf(vb.float()).tolist() == vb.float().tolist()  # only float16 is clamped
    tm, vm = build(seed=0, **GEN)
    tm.half()
    vm.half()
    (tx, tmask, ty), (vx, vmask, vy) = both("cpu", *batch(3, vocab=12))
    with torch.no_grad(), vt.no_grad():
        tlogits, vlogits = tm(tx, tmask, labels=ty)[1], vm(vx, vmask, labels=vy)[1]
    assert vlogits.dtype == vt.float16
    close(vlogits.float(), tlogits.float(), rtol=1e-2, atol=1e-1)
    tseq, _ = tm.generate(tx, tmask, max_new_tokens=8, num_beams=3)
    vseq, _ = vm.generate(vx, vmask, max_new_tokens=8, num_beams=3)
    assert vseq.tolist() == tseq.tolist()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("num_beams", [1, 3])
def test_no_repeat_ngram_generation_matches_torch(num_beams, device):
    tm, vm = build(seed=0, device=device, **GEN)
    (tx, tmask, _), (vx, vmask, _) = both(device, *batch(3, vocab=12))
    kw = dict(max_new_tokens=10, num_beams=num_beams, no_repeat_ngram_size=2)
    tseq, tscores = tm.generate(tx, tmask, **kw)
    vseq, vscores = vm.generate(vx, vmask, **kw)
    assert vseq.tolist() == tseq.tolist()
    close(vscores, tscores, rtol=1e-4, atol=1e-4)
    for row in vseq.tolist():
        body = row[1:row.index(1) + 1] if 1 in row else row[1:]
        bigrams = list(zip(body[:-1], body[1:]))
        assert len(bigrams) == len(set(bigrams)), row
    assert vseq.tolist() != vm.generate(vx, vmask, max_new_tokens=10, num_beams=num_beams)[0].tolist()


def test_sdpa_attention_is_the_eager_attention():
    """vibetensor alone: the two implementations of one set of weights agree, gradients of the bias included."""
    _, eager = build(seed=6)
    _, sdpa = build(seed=6, attn_implementation="sdpa")
    (_, _, _), (vx, vmask, vy) = both("cpu", *batch(6))
    losses = []
    for m in (eager, sdpa):
        loss = m(vx, vmask, labels=vy)[0]
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    grads = dict(eager.named_parameters())
    for name, p in sdpa.named_parameters():
        close(p.grad, grads[name].grad, rtol=1e-3, atol=1e-6)
    bias = sdpa.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight
    assert np.abs(bias.grad.numpy()).max() > 0


def test_bfloat16_autocast_training_step_matches_torch():
    """Under CPU autocast the projections run in bfloat16 while the norms' .to(float32) and the softmax's .float()
    stay in float32: the losses agree closely and every gradient to bfloat16 rounding."""
    tm, vm = build(seed=1)
    (tx, tmask, ty), (vx, vmask, vy) = both("cpu", *batch(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tl, tlogits, _, tenc = tm(tx, tmask, labels=ty)
    with vt.autocast("cpu", dtype=vt.bfloat16):
        vl, vlogits, _, venc = vm(vx, vmask, labels=vy)
    assert vlogits.dtype == vt.bfloat16 and venc.dtype == vt.float32  # the final norm's float32 multiply
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-3)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad.dtype == vt.float32
        t = tgrads[name].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), t, rtol=0, atol=2e-2 * np.abs(t).max(), err_msg=name)
