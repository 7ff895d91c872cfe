"""The attentional seq2seq model of tests/models/seq2seq.py, loaded once with torch and once with vibetensor
swapped in for torch, with the same weights: the packed bidirectional LSTM encoder (outputs, zeros past each
length, the joined final state, in the batch's own order), teacher-forced logits and the masked loss with every
gradient for both attentions, Adam steps, greedy decoding token for token with the attention weights (none on
padding), batched beam search, and seeded scheduled sampling. On the CPU and, where both see a GPU, on the GPU
(marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

ts2s, vs2s = pair("seq2seq.py")


def build(seed=0, device="cpu", **cfg):
    torch.manual_seed(seed)
    tm = ts2s.Seq2Seq(**cfg)
    vm = vs2s.Seq2Seq(**cfg)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, src_lengths=(4, 7, 2, 5), tgt_lengths=(3, 5, 6, 2)):
    """Unsorted lengths; the target reverses the source (mod the target vocab), framed by BOS ... EOS, then PAD."""
    r = np.random.default_rng(seed)
    s, t = max(src_lengths), max(tgt_lengths) + 2
    src = np.zeros((len(src_lengths), s), dtype=np.int64)
    tgt = np.zeros((len(src_lengths), t), dtype=np.int64)
    for i, (ls, lt) in enumerate(zip(src_lengths, tgt_lengths)):
        src[i, :ls] = r.integers(3, 20, size=ls)
        body = src[i, :ls][::-1][:lt] % 15 + 3
        tgt[i, 0], tgt[i, 1:len(body) + 1], tgt[i, len(body) + 1] = 1, body, 2
    return src, np.array(src_lengths), tgt


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_packed_encoder_matches_torch(num_layers, device):
    tm, vm = build(device=device, num_layers=num_layers)
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    src, lengths, _ = batch(0)
    (ts, tl), (vs, vl) = both(device, src, lengths)
    tout, th, tlen = tm.encoder(ts, tl)
    vout, vh, vlen = vm.encoder(vs, vl)
    assert tuple(vout.shape) == (4, 7, 24) and vlen.tolist() == tlen.tolist() == lengths.tolist()
    close(vout, tout)
    close(vh, th)
    out = vout.cpu().numpy()
    for i, n in enumerate(lengths):
        assert not out[i, n:].any() and np.abs(out[i, n - 1]).sum() > 0
    # a row's encoding does not depend on the other rows or on its padding
    alone, h_alone, _ = vm.encoder(vs[1:2, :lengths[1]], vl[1:2])
    close(alone[0], vout[1, :lengths[1]], rtol=1e-5, atol=1e-6)
    close(h_alone[0], vh[1], rtol=1e-5, atol=1e-6)
    # the packed batch itself: sorted by length, longest first, with the permutation to undo it
    emb = vm.encoder.embed(vs)
    vp = vs2s.pack_padded_sequence(emb, vl.cpu(), batch_first=True, enforce_sorted=False)
    tp = ts2s.pack_padded_sequence(tm.encoder.embed(ts), tl.cpu(), batch_first=True, enforce_sorted=False)
    assert vp.batch_sizes.tolist() == tp.batch_sizes.tolist() == [4, 4, 3, 3, 2, 1, 1]
    assert vp.sorted_indices.tolist() == tp.sorted_indices.tolist() == [1, 3, 0, 2]
    assert vp.unsorted_indices.tolist() == tp.unsorted_indices.tolist()
    close(vp.data, tp.data)
    with pytest.raises(RuntimeError, match="greater than 0"):  # a length of zero cannot be packed
        vs2s.pack_padded_sequence(emb, vt.tensor([4, 0, 2, 5]), batch_first=True, enforce_sorted=False)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_teacher_forced_loss_and_gradients_match_torch(attention, device):
    tm, vm = build(seed=1, device=device, attention=attention)
    src, lengths, tgt = batch(1)
    (ts, tl, tt), (vs, vl, vtg) = both(device, src, lengths, tgt)
    tlogits, vlogits = tm(ts, tl, tt), vm(vs, vl, vtg)
    assert tuple(vlogits.shape) == (4, tgt.shape[1] - 1, 18)
    close(vlogits, tlogits)
    tloss, vloss = tm.loss(ts, tl, tt), vm.loss(vs, vl, vtg)
    close(vloss, tloss)
    tloss.backward()
    vloss.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
    assert not vm.decoder.embed.weight.grad[0].abs().sum().item()  # padding_idx gets no gradient
    with pytest.raises(ValueError, match="attention"):
        vs2s.Seq2Seq(attention="dot")


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_and_greedy_decoding_match_torch(device):
    tm, vm = build(seed=2, device=device, attention="luong")
    topt = torch.optim.Adam(tm.parameters(), lr=1e-2)
    vopt = vt.optim.Adam(vm.parameters(), lr=1e-2)
    src, lengths, tgt = batch(2)
    (ts, tl, tt), (vs, vl, vtg) = both(device, src, lengths, tgt)
    losses = []
    for _ in range(5):
        tloss, vloss = tm.loss(ts, tl, tt), vm.loss(vs, vl, vtg)
        np.testing.assert_allclose(vloss.item(), tloss.item(), rtol=2e-4)
        losses.append(vloss.item())
        topt.zero_grad()
        vopt.zero_grad()
        tloss.backward()
        vloss.backward()
        nn_t = torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        nn_v = vt.nn.utils.clip_grad_norm_(vm.parameters(), 1.0)
        np.testing.assert_allclose(nn_v.item(), nn_t.item(), rtol=2e-4)
        topt.step()
        vopt.step()
    assert losses[-1] < losses[0], losses
    tm.eval()
    vm.eval()
    tout, tattn = tm.greedy_decode(ts, tl, max_len=8)
    vout, vattn = vm.greedy_decode(vs, vl, max_len=8)
    assert vout.tolist() == tout.tolist()
    close(vattn, tattn, rtol=1e-3, atol=1e-5)
    attn = vattn.cpu().numpy()
    for i, n in enumerate(lengths):
        assert not attn[i, :, n:].any()  # no attention on the padded source positions
    np.testing.assert_allclose(attn.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_beam_search_matches_torch(device):
    tm, vm = build(seed=5, device=device)
    with torch.no_grad():
        for p in tm.parameters():
            p.mul_(4.0)  # sharper distributions: EOS comes early in some beams
    vm.load_state_dict({k: vt.from_numpy(v.detach().cpu().numpy().copy()) for k, v in tm.state_dict().items()})
    vm.to(device)
    src, lengths, _ = batch(5)
    (ts, tl), (vs, vl) = both(device, src, lengths)
    tout, tscore = tm.beam_search(ts, tl, beam=3, max_len=8)
    vout, vscore = vm.beam_search(vs, vl, beam=3, max_len=8)
    assert vout.tolist() == tout.tolist()
    close(vscore, tscore, rtol=1e-4, atol=1e-4)
    # beam 1 is greedy decoding
    one, _ = vm.beam_search(vs, vl, beam=1, max_len=8)
    greedy, _ = vm.greedy_decode(vs, vl, max_len=8)
    assert one[:, :greedy.shape[1]].tolist() == greedy.tolist()
    # the score is the sum of the chosen tokens' log-probabilities under teacher forcing
    best = vout.cpu().numpy()
    tgt = np.concatenate([np.full((4, 1), 1), best], axis=1)
    logp = vt.nn.functional.log_softmax(vm(vs, vl, vt.from_numpy(tgt).to(device)), -1).detach().cpu().numpy()
    ref = [sum(logp[i, j, best[i, j]] for j in range(best.shape[1]) if j == 0 or best[i, j - 1] not in (0, 2))
           for i in range(4)]
    np.testing.assert_allclose(vscore.cpu().numpy(), ref, rtol=1e-4, atol=1e-4)
    assert any(2 in row for row in vout.tolist())


def test_scheduled_sampling_is_seeded():
    _, vm = build(seed=3)
    src, lengths, tgt = (vt.from_numpy(a) for a in batch(3))
    a = vm(src, lengths, tgt, teacher_forcing=0.5, generator=vt.Generator().manual_seed(4))
    b = vm(src, lengths, tgt, teacher_forcing=0.5, generator=vt.Generator().manual_seed(4))
    assert a.tolist() == b.tolist()
    full = vm(src, lengths, tgt)
    own = vm(src, lengths, tgt, teacher_forcing=0.0)
    close(a[:, 0], full[:, 0], rtol=1e-6, atol=1e-7)  # the first step always starts from BOS
    assert not np.allclose(own.detach().numpy(), full.detach().numpy())
