"""The decoding and distillation code of tests/models/llm_decoding.py, loaded once with torch and once with
vibetensor swapped in for torch, driving tests/models/lora_llm.py's decoder with the same weights: the logits
processors (top-k, top-p, min-p, repetition / frequency / presence penalties) give torch's filtered logits
exactly, and Meta's and gpt-fast's samplers torch's distributions; seeded multinomial sampling repeats, stays
inside the filtered support and follows the distribution; inverse-CDF sampling, the exponential race, greedy and
sampled generation through both KV caches, beam search (tokens, scores, beam bookkeeping) and speculative
decoding's accept / resample give torch's tokens; the distillation losses (F.kl_div both ways, label smoothing
written out and through cross_entropy) and their gradients match torch, and a student distilled from a frozen
teacher trains as torch's does."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tl, vl = pair("lora_llm.py")
td, vd = pair("llm_decoding.py")

PROCESSING = [dict(top_k=5), dict(top_p=0.7), dict(min_p=0.2), dict(top_k=12, top_p=0.5, min_p=0.05),
              dict(top_p=1e-6), dict(top_k=1), dict(top_p=0.9, temperature=0.5, repetition_penalty=1.5)]


def build(seed=0, device="cpu", dtype="float32", **over):
    torch.manual_seed(seed)
    tm = tl.DecoderLM(tl.Config(**over))
    vm = vl.DecoderLM(vl.Config(**over))
    load_torch_weights(vm, tm)
    return tm.to(device, getattr(torch, dtype)).eval(), vm.to(device, getattr(vt, dtype)).eval()


def logits_and_ids(seed, b=4, v=30, t=6, device="cpu"):
    r = np.random.default_rng(seed)
    return both(device, (r.standard_normal((b, v)) * 2).astype(np.float32), r.integers(0, v, (b, t)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", PROCESSING)
def test_logits_processors_match_torch_exactly(kw, device):
    (tlg, tids), (vlg, vids) = logits_and_ids(1, device=device)
    out_v = vd.process_logits(vlg, vids, **kw)
    out_t = td.process_logits(tlg, tids, **kw)
    np.testing.assert_array_equal(out_v.cpu().numpy(), out_t.cpu().numpy())
    kept = np.isfinite(out_v.cpu().numpy()).sum(-1)
    assert (kept >= 1).all() and (kept < 30).all()
    if kw.get("top_k"):
        assert (kept <= kw["top_k"]).all()
    # the processors return new tensors: the caller's logits are untouched
    np.testing.assert_array_equal(vlg.cpu().numpy(), tlg.cpu().numpy())


def test_penalties_match_torch_and_their_definitions():
    (tlg, tids), (vlg, vids) = logits_and_ids(2)
    ids = vids.numpy()
    rep = vd.apply_repetition_penalty(vlg, vids, 1.3).numpy()
    close(vt.from_numpy(rep), td.apply_repetition_penalty(tlg, tids, 1.3), rtol=0, atol=0)
    raw = vlg.numpy()
    for row in range(4):
        seen = np.unique(ids[row])
        expect = raw[row].copy()
        expect[seen] = np.where(raw[row, seen] < 0, raw[row, seen] * 1.3, raw[row, seen] / 1.3)
        np.testing.assert_allclose(rep[row], expect, rtol=1e-6)
    fp = vd.apply_frequency_presence_penalty(vlg, vids, 0.5, 0.25)
    close(fp, td.apply_frequency_presence_penalty(tlg, tids, 0.5, 0.25), rtol=0, atol=0)
    counts = np.stack([np.bincount(row, minlength=30) for row in ids])
    np.testing.assert_allclose(fp.numpy(), raw - 0.5 * counts - 0.25 * (counts > 0), rtol=1e-6)


def test_seeded_multinomial_repeats_and_stays_in_the_support():
    (_, _), (vlg, vids) = logits_and_ids(3)
    probs = vt.softmax(vd.process_logits(vlg, vids, top_k=6, top_p=0.8), dim=-1)
    draws = [vt.multinomial(probs, 200, replacement=True, generator=vt.Generator().manual_seed(7)) for _ in range(2)]
    np.testing.assert_array_equal(draws[0].numpy(), draws[1].numpy())
    assert draws[0].dtype == vt.int64 and tuple(draws[0].shape) == (4, 200)
    p = probs.numpy()
    for row in range(4):
        assert (p[row, draws[0][row].numpy()] > 0).all()
    # the empirical frequencies follow the filtered distribution
    many = vt.multinomial(probs, 4000, replacement=True, generator=vt.Generator().manual_seed(8)).numpy()
    freq = np.stack([np.bincount(row, minlength=30) / 4000 for row in many])
    assert np.abs(freq - p).max() < 0.04
    other = vt.multinomial(probs, 200, replacement=True, generator=vt.Generator().manual_seed(9)).numpy()
    assert (other != draws[0].numpy()).any()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_meta_and_gptfast_samplers_match_torch(dtype):
    (tlg, _), (vlg, _) = logits_and_ids(12, b=5)
    tlg, vlg = tlg.to(getattr(torch, dtype)), vlg.to(getattr(vt, dtype))
    exact = dict(rtol=1e-6, atol=0) if dtype == "float32" else dict(rtol=1e-2, atol=1e-3)
    for p in (0.3, 0.75, 0.99):
        (vs, vi), (ts, ti) = vd.top_p_probs_meta(vt.softmax(vlg, -1), p), td.top_p_probs_meta(torch.softmax(tlg, -1), p)
        close(vs.float(), ts.float(), **exact)
        assert vi.tolist() == ti.tolist() and vs.dtype == getattr(vt, dtype)
        kept = (vs.float().numpy() > 0).sum(-1)
        assert (kept >= 1).all() and np.allclose(vs.float().numpy().sum(-1), 1, atol=1e-2)
        tok = vd.sample_top_p_meta(vt.softmax(vlg.float(), -1), p, generator=vt.Generator().manual_seed(4))
        assert tuple(tok.shape) == (5, 1)
        assert (vs.float().numpy()[np.arange(5), np.argsort(vi.numpy(), -1)[np.arange(5), tok.numpy()[:, 0]]] > 0).all()
    q = np.random.default_rng(13).exponential(size=(5, 30)).astype(np.float32)
    (tq,), (vq,) = both("cpu", q)
    for k in (None, 1, 7, 100):
        vprobs, tprobs = vd.logits_to_probs_gptfast(vlg, 0.7, k), td.logits_to_probs_gptfast(tlg, 0.7, k)
        close(vprobs.float(), tprobs.float(), **exact)
        vtok = vd.sample_exponential_race(vprobs.float(), vq)
        assert vtok.dtype == vt.int32 and vtok.tolist() == td.sample_exponential_race(tprobs.float(), tq).tolist()
        assert (vprobs.float().numpy()[np.arange(5), vtok.numpy()[:, 0]] > 0).all()
    runs = [vd.sample_exponential_race(vd.logits_to_probs_gptfast(vlg.float(), 1.0, 5)) for _ in range(200)]
    assert len({tuple(r.flatten().tolist()) for r in runs}) > 1  # vibetensor's own exponential_ draws vary


def test_inverse_cdf_sampling_matches_torch():
    (tlg, _), (vlg, _) = logits_and_ids(4, b=64)
    u = np.random.default_rng(5).uniform(size=64).astype(np.float32)
    u[:3] = [0.0, 0.9999999, 0.5]
    (tu,), (vu,) = both("cpu", u)
    tp = torch.softmax(td.top_k_top_p_filtering(tlg, top_p=0.8), -1)
    vp = vt.softmax(vd.top_k_top_p_filtering(vlg, top_p=0.8), -1)
    vtok = vd.sample_inverse_cdf(vp, vu)
    assert vtok.tolist() == td.sample_inverse_cdf(tp, tu).tolist()
    assert (vp.numpy()[np.arange(64), vtok.numpy()] > 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cache_kind", ["dynamic", "static"])
@pytest.mark.parametrize("sample", [False, True])
def test_generation_matches_torch(sample, cache_kind, device):
    tm, vm = build(device=device)
    prompt = np.random.default_rng(6).integers(0, 40, (2, 5))
    u = np.random.default_rng(7).uniform(size=(7, 2)).astype(np.float32)
    (tp, tu), (vp, vu) = both(device, prompt, u)
    kw = dict(do_sample=True, temperature=0.8, top_k=12, top_p=0.9, repetition_penalty=1.2) if sample else {}
    out = []
    for lib, mod, dec, m, p, uu in ((torch, tl, td, tm, tp, tu), (vt, vl, vd, vm, vp, vu)):
        cache = mod.DynamicCache() if cache_kind == "dynamic" else mod.StaticCache(2, 2, 2, 16, 8, lib.float32, device)
        out.append(dec.generate(m, p, 7, cache, uniforms=uu if sample else None, **kw))
    assert out[1].tolist() == out[0].tolist()
    assert out[1].shape[1] == 12 and out[1][:, :5].tolist() == prompt.tolist()
    if not sample:  # greedy: each new token is the argmax of the full forward over what came before
        with vt.no_grad():
            full = vm(out[1][:, :-1])
        assert out[1][:, 5:].tolist() == full[:, 4:].argmax(-1).tolist()


def test_multinomial_generation_is_seeded():
    _, vm = build()
    prompt = vt.from_numpy(np.random.default_rng(8).integers(0, 40, (3, 4)))
    runs = [vd.generate(vm, prompt, 6, vl.DynamicCache(), do_sample=True, top_k=8,
                        generator=vt.Generator().manual_seed(s)).tolist() for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cache_kind", ["dynamic", "static"])
def test_beam_search_matches_torch(cache_kind, device):
    tm, vm = build(device=device)
    prompt = np.random.default_rng(9).integers(0, 40, (1, 4))
    (tp,), (vp,) = both(device, prompt)
    res = []
    for lib, mod, dec, m, p in ((torch, tl, td, tm, tp), (vt, vl, vd, vm, vp)):
        cache = mod.DynamicCache() if cache_kind == "dynamic" else mod.StaticCache(2, 3, 2, 16, 8, lib.float32, device)
        res.append(dec.beam_search(m, p, 3, 6, cache, length_penalty=0.8))
    (tseq, tscore, thist), (vseq, vscore, vhist) = res
    assert vseq.tolist() == tseq.tolist()
    close(vscore, tscore, rtol=1e-5)
    for (tb, tt), (vb, vtok) in zip(thist, vhist):
        assert vb.dtype == vt.int64 and vb.tolist() == tb.tolist() and vtok.tolist() == tt.tolist()
    assert any(len(set(b.tolist())) < 3 for b, _ in vhist)  # some step drops a beam and duplicates another
    # the score is the best sequence's summed log-probability under a full forward, length-penalised
    with vt.no_grad():
        lp = vt.log_softmax(vm(vseq[None, :-1]).float(), dim=-1)[0]
    picked = lp[3:].gather(-1, vseq[4:, None]).sum().item()
    np.testing.assert_allclose(vscore.item(), picked / 10 ** 0.8, rtol=1e-5)


def test_speculative_accept_on_constructed_cases():
    v = 5
    q = np.full((2, 3, v), 0.2, dtype=np.float32)
    p = np.full((2, 4, v), 0.2, dtype=np.float32)
    tokens = np.array([[1, 2, 3], [0, 0, 0]])
    p[1, 1] = [0.0, 0.5, 0.5, 0.0, 0.0]  # the second draft token of row 1 has no target mass: rejected
    u = np.array([[0.99, 0.99, 0.99], [0.1, 0.1, 0.1]], dtype=np.float32)
    ur = np.array([0.3, 0.3], dtype=np.float32)
    (ttok, tq, tp, tu, tur), (vtok, vq, vp, vu, vur) = both("cpu", tokens, q, p, u, ur)
    n, nxt = vd.speculative_accept(vtok, vq, vp, vu, vur)
    tn, tnxt = td.speculative_accept(ttok, tq, tp, tu, tur)
    assert n.tolist() == tn.tolist() == [3, 1]  # p == q accepts everything; row 1 stops at the zero
    assert nxt.tolist() == tnxt.tolist()
    assert nxt.tolist()[0] == 1  # all accepted: the bonus token from p[:, 3] (uniform), u = 0.3 -> index 1
    assert nxt.tolist()[1] in (1, 2)  # the residual max(p - q, 0) has mass only on tokens 1 and 2


@pytest.mark.parametrize("device", DEVICES)
def test_speculative_round_matches_torch(device):
    ttarget, vtarget = build(seed=0, device=device)
    tdraft, vdraft = build(seed=1, device=device, n_layers=1)
    r = np.random.default_rng(10)
    arrs = (r.integers(0, 40, (6, 5)), r.uniform(size=(6, 4)).astype(np.float32),
            r.uniform(size=(6, 4)).astype(np.float32), r.uniform(size=6).astype(np.float32))
    targs, vargs = both(device, *arrs)
    vres = vd.speculative_step(vtarget, vdraft, vargs[0], 4, *vargs[1:])
    tres = td.speculative_step(ttarget, tdraft, targs[0], 4, *targs[1:])
    for a, b in zip(vres, tres):
        assert a.tolist() == b.tolist()
    assert 0 < vres[1].sum().item() < 24  # some accepted, some rejected


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("log_target", [False, True])
def test_distillation_losses_and_gradients_match_torch(log_target, dtype):
    r = np.random.default_rng(11)
    f = getattr(np, dtype)
    s, t = r.standard_normal((2, 5, 12)).astype(f), (r.standard_normal((2, 5, 12)) * 2).astype(f)
    y = r.integers(0, 12, (2, 5))
    y[0, 1] = y[1, 4] = -100
    (ts, tt, ty), (vs, vt_, vy) = both("cpu", s, t, y)
    ts.requires_grad_()
    vs.requires_grad_()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    for written_out in (False, True):
        tloss = td.distillation_loss(ts, tt, ty, log_target=log_target, written_out=written_out)
        vloss = vd.distillation_loss(vs, vt_, vy, log_target=log_target, written_out=written_out)
        close(vloss, tloss, **tol)
        (tg,) = torch.autograd.grad(tloss, ts)
        (vg,) = vt.autograd.grad(vloss, vs)
        close(vg, tg, **tol)
        assert not vg.numpy()[0, 1].any()  # an ignored token gets no gradient from either term
    # the two label-smoothing spellings agree, and so do the two KL spellings
    flat_s, flat_y = vs.reshape(-1, 12), vy.reshape(-1)
    close(vd.label_smoothed_nll(flat_s, flat_y, 0.1),
          vt.nn.functional.cross_entropy(flat_s, flat_y, label_smoothing=0.1), **tol)
    close(vd.kd_loss(vs, vt_, 3.0, log_target=True), vd.kd_loss(vs, vt_, 3.0, log_target=False), **tol)
    # KL of a distribution with itself is zero; against another it is positive
    assert abs(vd.kd_loss(vt_, vt_).item()) < 1e-5 and vd.kd_loss(vs, vt_).item() > 0.1


@pytest.mark.parametrize("device", DEVICES)
def test_student_distilled_from_a_frozen_teacher_matches_torch(device):
    tteacher, vteacher = build(seed=0, device=device, dtype="float64")
    tstudent, vstudent = build(seed=1, device=device, dtype="float64", n_layers=1, hidden=32)
    for m in (tteacher, vteacher):
        m.requires_grad_(False)
    assert not any(p.requires_grad for p in vteacher.parameters())
    tstudent.train()
    vstudent.train()
    topt = torch.optim.AdamW(tstudent.parameters(), lr=3e-3, weight_decay=0.01)
    vopt = vt.optim.AdamW(vstudent.parameters(), lr=3e-3, weight_decay=0.01)
    r = np.random.default_rng(12)
    data = []
    for _ in range(2):
        x = r.integers(0, 40, (3, 8))
        y = np.roll(x, -1, 1)
        y[:, -1] = -100
        data.append(both(device, x, y))

    def losses_at(step):
        (tx, ty), (vx, vy) = data[step % 2]
        with torch.no_grad():
            tt = tteacher(tx)
        with vt.no_grad():
            vt_ = vteacher(vx)
        assert vt_.grad_fn is None
        tloss = td.distillation_loss(tstudent(tx), tt, ty, alpha=0.7, temperature=2.0, log_target=step % 2 == 1)
        vloss = vd.distillation_loss(vstudent(vx), vt_, vy, alpha=0.7, temperature=2.0, log_target=step % 2 == 1)
        return tloss, vloss
    train_side_by_side(tstudent, vstudent, topt, vopt, losses_at, steps=6, loss_rtol=1e-8)
    assert all(p.grad is None for p in vteacher.parameters())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cache_kind", ["dynamic", "static"])
def test_bfloat16_model_generation_matches_torch(cache_kind, device):
    """The whole model cast to bfloat16 (weights, caches, activations; RMSNorm and softmax upcast inside)."""
    tm, vm = build(device=device, window=4)
    tm, vm = tm.to(torch.bfloat16), vm.to(vt.bfloat16)
    assert vm.layers[0].self_attn.slopes.dtype == vt.bfloat16
    prompt = np.random.default_rng(14).integers(0, 40, (3, 7))
    (tp,), (vp,) = both(device, prompt)
    with torch.no_grad():
        tlogits = tm(tp)
    with vt.no_grad():
        vlogits = vm(vp)
    assert vlogits.dtype == vt.bfloat16
    close(vlogits.float(), tlogits.float(), rtol=2e-2, atol=2e-2)
    out = []
    for lib, mod, dec, m, p in ((torch, tl, td, tm, tp), (vt, vl, vd, vm, vp)):
        cache = mod.DynamicCache() if cache_kind == "dynamic" else mod.StaticCache(2, 3, 2, 20, 8, lib.bfloat16, device)
        out.append(dec.generate(m, p, 8, cache))
    if device == "cpu":  # both CPUs accumulate bfloat16 products in float32: the same tokens
        assert out[1].tolist() == out[0].tolist()
    assert tuple(out[1].shape) == (3, 15)
