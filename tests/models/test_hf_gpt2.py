"""The transformers-style GPT-2 of tests/models/hf_gpt2.py with the generation utilities of hf_generation.py,
loaded once with torch and once with vibetensor swapped in for torch, with the same weights: structure,
state_dict keys and the library's init (Conv1D against a transposed linear, NewGELU against the tanh GELU),
forward outputs (logits, loss, presents, every attention map and hidden state) with a padding mask and a head
mask, the input's and every parameter's gradient, AdamW steps under a linear warmup schedule with gradient
clipping, the KV cache against the full forward, each logits processor's output, the generated ids (greedy and
sampled from numpy's uniform draws, with and without the cache, left-padded batches, eos padding) and beam
search; the SDPA and upcast attention variants against torch and the eager path, gradient checkpointing
(reentrant or not), bfloat16 and float16 inference with padding, and a bfloat16-autocast training step. On the
CPU and, where both see a GPU, on the GPU (marker cuda)."""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import close, DEVICES, load_torch_weights
from swap_import import pair

thf, vhf = pair("hf_gpt2.py")
tgen, vgen = pair("hf_generation.py")


def lm_class(model_module, generation_module):
    """GPT2LMHeadModel with the generation mixin, as the library composes them."""
    return type("GPT2LMHeadModel", (generation_module.GenerationMixin, model_module.GPT2LMHeadModel), {})


TLM, VLM = lm_class(thf, tgen), lm_class(vhf, vgen)

CFG = dict(vocab_size=50, n_positions=32, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0, embd_pdrop=0.0,
           attn_pdrop=0.0, eos_token_id=None, bos_token_id=None)


def build(seed=0, device="cpu", init_std=None, **over):
    """init_std redraws the weights wider than the library's 0.02, so that generation does not just repeat one
    token through the tied embedding."""
    cfg = dict(CFG, **over)
    torch.manual_seed(seed)
    tm = TLM(thf.GPT2Config(**cfg))
    if init_std is not None:
        with torch.no_grad():
            for name, p in tm.named_parameters():
                p.normal_(1.0 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") else 0.0, init_std)
    vm = VLM(vhf.GPT2Config(**cfg))
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def tokens(seed, b=3, t=10, counting=False):
    r = np.random.default_rng(seed)
    x = r.integers(0, CFG["vocab_size"], size=(b, t))
    if counting:
        x = (x[:, :1] + 3 * np.arange(t)) % CFG["vocab_size"]
    return x


def left_padded_mask():
    return np.array([[1] * 8, [0, 0, 0] + [1] * 5, [0] + [1] * 7])


def test_structure_init_conv1d_and_gelu_match_torch():
    tm, vm = build()
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert "transformer.h.0.attn.bias" not in vm.state_dict()  # the causal mask buffer is not persistent
    assert vm.transformer.h[0].attn.bias.dtype == vt.bool and tuple(vm.transformer.h[0].attn.bias.shape) == (
        1, 1, 32, 32)
    assert vm.lm_head.weight is vm.transformer.wte.weight
    assert vm.dtype == vt.float32 and tuple(vm.transformer.h[1].attn.c_attn.weight.shape) == (32, 96)
    # the init vibetensor drew itself (before the copy): normal(0, 0.02), residual projections 0.02 / sqrt(2 * 2)
    torch.manual_seed(0)
    fresh = VLM(vhf.GPT2Config(**dict(CFG, n_embd=64)))
    for name, p in fresh.named_parameters():
        w = p.detach().numpy()
        if name.endswith("c_proj.weight"):
            assert abs(w.std() - 0.01) < 0.001 and abs(w.mean()) < 0.001, name
        elif name.endswith(("c_attn.weight", "c_fc.weight", "wte.weight", "wpe.weight")):
            assert abs(w.std() - 0.02) < 0.002 and abs(w.mean()) < 0.002, name
        elif name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            assert (w == 1.0).all(), name
        else:
            assert name.endswith("bias") and (w == 0.0).all(), name
    # Conv1D is a linear layer with its weight stored [in, out]
    x = np.random.default_rng(1).standard_normal((2, 5, 32)).astype(np.float32)
    conv = vm.transformer.h[0].mlp.c_fc
    out = conv(vt.from_numpy(x))
    assert tuple(out.shape) == (2, 5, 128)
    close(out, tm.transformer.h[0].mlp.c_fc(torch.from_numpy(x)))
    close(out, vt.nn.functional.linear(vt.from_numpy(x), conv.weight.t(), conv.bias), rtol=1e-5, atol=1e-6)
    close(vhf.NewGELUActivation()(vt.from_numpy(x * 4)),
          torch.nn.functional.gelu(torch.from_numpy(x * 4), approximate="tanh"), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        VLM(vhf.GPT2Config(**dict(CFG, n_head=5)))


ATTENTIONS = [dict(attn_implementation="sdpa"), dict(reorder_and_upcast_attn=True),
              dict(attn_implementation="sdpa", scale_attn_by_inverse_layer_idx=True, scale_attn_weights=False)]


def eager_twin(attention):
    """The same model computed by the plain eager attention."""
    return {k: v for k, v in attention.items() if k not in ("attn_implementation", "reorder_and_upcast_attn")}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_attention_variants_match_torch_and_the_eager_path(attention, device):
    """F.scaled_dot_product_attention with the model's 4D mask (or is_causal), and the float32 baddbmm scores."""
    tm, vm = build(device=device, init_std=0.2, **attention)
    _, em = build(device=device, init_std=0.2, **eager_twin(attention))
    x, mask = tokens(12, t=8), left_padded_mask()
    for m in (None, mask):  # no mask: SDPA's is_causal; a padding mask: one additive 4D mask
        args = {lib: (lib.from_numpy(x).to(device), None if m is None else lib.from_numpy(m).to(device))
                for lib in (torch, vt)}
        tl, tlogits = tm(args[torch][0], attention_mask=args[torch][1], labels=args[torch][0], use_cache=False)
        vl, vlogits = vm(args[vt][0], attention_mask=args[vt][1], labels=args[vt][0], use_cache=False)
        close(vlogits, tlogits)
        close(vl, tl)
        real = np.ones(x.shape, bool) if m is None else m == 1
        with vt.no_grad():
            elogits = em(args[vt][0], attention_mask=args[vt][1], use_cache=False)[0]
        # the padding queries differ: SDPA's path unmasks their rows, the eager one leaves them at finfo.min
        np.testing.assert_allclose(vlogits.detach().cpu().numpy()[real], elogits.cpu().numpy()[real], rtol=1e-4,
                                   atol=1e-5)
        tl.backward()
        vl.backward()
        tgrads = dict(tm.named_parameters())
        for name, p in vm.named_parameters():
            close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
            p.grad = None
            tgrads[name].grad = None
    prompts, pmask = x[:, 3:6], mask[:, 3:6]  # rows with 2, 0 and 3 real tokens... and one with all three
    pmask[1, 2] = 1
    outs = [model.generate(lib.from_numpy(prompts).to(device), 6, attention_mask=lib.from_numpy(pmask).to(device),
                           use_cache=c).tolist() for lib, model in ((torch, tm), (vt, vm)) for c in (True, False)]
    assert outs[0] == outs[1] == outs[2] == outs[3]
    assert outs[0] == em.generate(vt.from_numpy(prompts).to(device), 6,
                                  attention_mask=vt.from_numpy(pmask).to(device)).tolist()


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_gradient_checkpointing_matches_torch_and_the_plain_backward(use_reentrant):
    tm, vm = build(init_std=0.2)
    _, plain = build(init_std=0.2)
    for model in (tm, vm):
        model.gradient_checkpointing_enable({"use_reentrant": use_reentrant})
    assert vm.transformer.gradient_checkpointing and not plain.transformer.gradient_checkpointing
    x, mask = tokens(13, t=8), left_padded_mask()
    labels = np.where(mask == 1, x, -100)
    losses = {}
    for lib, model in ((torch, tm), (vt, vm), ("plain", plain)):
        L = torch if lib is torch else vt
        out = model(L.from_numpy(x), attention_mask=L.from_numpy(mask), labels=L.from_numpy(labels))
        # use_cache is off while checkpointing (the rerun forward would grow the cache): no presents
        assert len(out) == (3 if lib == "plain" else 2)
        out[0].backward()
        losses[lib] = out[0]
    close(losses[vt], losses[torch])
    close(losses[vt], losses["plain"], rtol=1e-6, atol=1e-7)
    tgrads, pgrads = dict(tm.named_parameters()), dict(plain.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
        close(p.grad, pgrads[name].grad, rtol=1e-5, atol=1e-7)
    vm.eval()  # not in eval mode: the cache comes back
    with vt.no_grad():
        assert len(vm(vt.from_numpy(x))) == 2 and len(vm(vt.from_numpy(x))[1]) == 2


def run_forward(lib, model, embeds, mask, labels, head_mask):
    return model(inputs_embeds=embeds, attention_mask=mask, labels=labels, head_mask=head_mask,
                 output_attentions=True, output_hidden_states=True, use_cache=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("inverse_layer_scaling", [False, True])
def test_forward_and_gradients_match_torch(inverse_layer_scaling, device):
    tm, vm = build(device=device, init_std=0.2, scale_attn_by_inverse_layer_idx=inverse_layer_scaling)
    x, mask = tokens(1, t=8), left_padded_mask()
    labels = np.where(mask == 1, x, -100)  # no loss on the padding
    head_mask = np.ones((2, 4), dtype=np.float32)
    head_mask[1, 2] = 0.0  # silence one head of the second layer
    embeds = tm.transformer.wte.weight.detach().cpu().numpy()[x]
    outs = {}
    for lib, model in ((torch, tm), (vt, vm)):
        e = lib.from_numpy(embeds).to(device).requires_grad_()
        res = run_forward(lib, model, e, lib.from_numpy(mask).to(device), lib.from_numpy(labels).to(device),
                          lib.from_numpy(head_mask).to(device))
        res[0].backward()
        outs[lib] = (e, res)
    (te, tres), (ve, vres) = outs[torch], outs[vt]
    loss, logits, presents, hidden, attentions = vres
    assert len(vres) == 5 and len(presents) == 2 and len(hidden) == 3 and len(attentions) == 2
    close(loss, tres[0])
    close(logits, tres[1])
    for (vk, vv), (tk, tv) in zip(presents, tres[2]):
        assert tuple(vk.shape) == (3, 4, 8, 8)
        close(vk, tk)
        close(vv, tv)
    for v, t in zip(hidden, tres[3]):
        close(v, t)
    for v, t in zip(attentions, tres[4]):
        close(v, t, atol=1e-6)
    a = attentions[1].detach().cpu().numpy()
    assert (a[:, 2] == 0).all() and np.abs(a[:, 1].sum(-1) - 1).max() < 1e-5  # the head mask; rows sum to 1
    assert (attentions[0].detach().cpu().numpy()[1, :, 3:, :3] == 0).all()  # no real token attends to the padding
    close(ve.grad, te.grad, rtol=1e-3, atol=1e-6)
    assert np.abs(ve.grad.cpu().numpy()).max() > 0
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_adamw_linear_warmup_and_clipping_match_torch(device):
    tm, vm = build(device=device)
    steps = 8

    def optimizer(lib, model):
        no_decay = ["bias", "ln_1.weight", "ln_2.weight", "ln_f.weight"]
        groups = [
            {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
             "weight_decay": 0.01},
            {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
             "weight_decay": 0.0},
        ]
        opt = lib.optim.AdamW(groups, lr=1e-2, eps=1e-8)
        mod = thf if lib is torch else vhf
        return opt, mod.get_linear_schedule_with_warmup(opt, num_warmup_steps=2, num_training_steps=steps)

    topt, tsched = optimizer(torch, tm)
    vopt, vsched = optimizer(vt, vm)
    assert vsched.get_last_lr() == [0.0, 0.0]
    losses = []
    for step in range(steps):
        x = tokens(30 + step, counting=True)
        tl = tm(torch.from_numpy(x).to(device), labels=torch.from_numpy(x).to(device), use_cache=False)[0]
        vl = vm(vt.from_numpy(x).to(device), labels=vt.from_numpy(x).to(device), use_cache=False)[0]
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=2e-4)
        losses.append(vl.item())
        tl.backward()
        vl.backward()
        tn = torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        vn = vt.nn.utils.clip_grad_norm_(vm.parameters(), 1.0)
        np.testing.assert_allclose(vn.item(), tn.item(), rtol=2e-4)
        topt.step()
        vopt.step()
        tsched.step()
        vsched.step()
        topt.zero_grad()
        vopt.zero_grad()
        assert vsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    assert vsched.get_last_lr() == [0.0, 0.0]  # decayed to zero at the last step
    assert losses[-1] < losses[0] - 0.3, losses  # it learns the counting
    tp = dict(tm.named_parameters())
    # AdamW divides each gradient by its running RMS, so a near-zero gradient's rounding can move an element by up
    # to ~lr (see test_gpt.py); a wrong update would move them all
    for name, p in vm.named_parameters():
        v, t = p.detach().cpu().numpy(), tp[name].detach().cpu().numpy()
        loose = int((np.abs(v - t) > 2e-5 + 1e-3 * np.abs(t)).sum())
        assert loose <= max(1, v.size // 1000), f"{name}: {loose} of {v.size} elements differ from torch"


@pytest.mark.parametrize("device", DEVICES)
def test_kv_cache_matches_full_forward_and_torch(device):
    tm, vm = build(seed=2, device=device, init_std=0.2)
    x, mask = tokens(3, t=8), left_padded_mask()
    for lib, model in ((vt, vm), (torch, tm)):
        ids, m = lib.from_numpy(x).to(device), lib.from_numpy(mask).to(device)
        with lib.no_grad():
            full = model.prepare_inputs_for_generation(ids, attention_mask=m, use_cache=True)
            want = model(**full)[0]
            step = model.prepare_inputs_for_generation(ids[:, :5], attention_mask=m[:, :5], use_cache=True)
            logits, past = model(**step)
            parts = [logits]
            for i in range(5, 8):  # then one token at a time, as generate feeds them
                step = model.prepare_inputs_for_generation(ids[:, :i + 1], past_key_values=past,
                                                           attention_mask=m[:, :i + 1], use_cache=True)
                assert tuple(step["input_ids"].shape) == (3, 1) and step["position_ids"].tolist() == [[i], [i - 3],
                                                                                                     [i - 1]]
                logits, past = model(**step)
                parts.append(logits)
        assert tuple(past[1][0].shape) == (3, 4, 8, 8)
        # a padding query sees only masked keys, the causally masked future among them (equally at finfo.min), so
        # its logits are meaningless and differ with the chunking: compare the real positions
        real = mask == 1
        np.testing.assert_allclose(lib.cat(parts, dim=1).cpu().numpy()[real], want.cpu().numpy()[real], rtol=1e-4,
                                   atol=1e-5)
        if lib is vt:
            vwant, vpast = want, past
        else:
            close(vwant, want)
            for (vk, vv), (tk, tv) in zip(vpast, past):
                close(vk, tk)
                close(vv, tv)
    order = [2, 0, 1]
    reordered = vhf.GPT2LMHeadModel._reorder_cache(vpast, vt.tensor(order).to(device))
    close(reordered[1][1], vpast[1][1][order])


def processor_inputs(lib):
    r = np.random.default_rng(7)
    scores = r.standard_normal((3, CFG["vocab_size"])).astype(np.float32) * 3
    scores[1, :5] = -scores[1, :5] ** 2  # some clearly negative scores among the repeated tokens
    ids = r.integers(0, CFG["vocab_size"], size=(3, 6))
    ids[1, :5] = np.arange(5)
    ids[2, 3:] = ids[2, 2]  # a token repeated: scatter_ writes the same penalized value thrice
    return lib.from_numpy(ids), lib.from_numpy(scores)


@pytest.mark.parametrize("processor", [
    ("RepetitionPenaltyLogitsProcessor", dict(penalty=1.7)),
    ("TemperatureLogitsWarper", dict(temperature=0.7)),
    ("TopKLogitsWarper", dict(top_k=5)),
    ("TopKLogitsWarper", dict(top_k=80)),  # more than the vocabulary: keeps everything
    ("TopPLogitsWarper", dict(top_p=0.8)),
    ("TopPLogitsWarper", dict(top_p=0.3, min_tokens_to_keep=3)),
])
def test_each_logits_processor_matches_torch(processor):
    name, kwargs = processor
    (tids, tscores), (vids, vscores) = processor_inputs(torch), processor_inputs(vt)
    tout = getattr(tgen, name)(**kwargs)(tids, tscores.clone())
    vout = getattr(vgen, name)(**kwargs)(vids, vscores.clone())
    t, v = tout.numpy(), vout.numpy()
    np.testing.assert_array_equal(np.isinf(v), np.isinf(t))
    close(vout, tout, rtol=1e-6, atol=1e-6)
    kept = (~np.isinf(v)).sum(-1)
    if name == "TopKLogitsWarper":
        assert (kept == min(kwargs["top_k"], CFG["vocab_size"])).all()
    elif name == "TopPLogitsWarper":
        assert (kept >= kwargs.get("min_tokens_to_keep", 1)).all() and (kept < CFG["vocab_size"]).all()
        p = np.exp(tscores.numpy() - tscores.numpy().max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        for row in range(3):  # the kept set is the most likely tokens, and reaches top_p
            top = np.sort(p[row])[::-1]
            assert sorted(np.argsort(-p[row])[:kept[row]].tolist()) == np.flatnonzero(~np.isinf(v[row])).tolist()
            assert top[:kept[row]].sum() >= kwargs["top_p"] or kept[row] == kwargs.get("min_tokens_to_keep", 1)
    else:
        assert not np.isinf(v).any() and not np.allclose(v, vscores.numpy())
    if name == "RepetitionPenaltyLogitsProcessor":
        s = vscores.numpy()
        np.testing.assert_allclose(v[1, :5], s[1, :5] * 1.7, rtol=1e-6)  # negative: multiplied
        np.testing.assert_allclose(v[2, ids := vids.numpy()[2, 2]], s[2, ids] / 1.7 if s[2, ids] > 0
                                   else s[2, ids] * 1.7, rtol=1e-6)
        mutated = vscores.clone()
        vgen.RepetitionPenaltyLogitsProcessor(1.7)(vids, mutated)
        close(mutated, tout, rtol=1e-6, atol=1e-6)  # in place, as the library's scatter_ does
    chain = [("RepetitionPenaltyLogitsProcessor", dict(penalty=1.3)),
             ("TemperatureLogitsWarper", dict(temperature=0.5)), ("TopKLogitsWarper", dict(top_k=10)),
             ("TopPLogitsWarper", dict(top_p=0.9))]
    tchain = tgen.LogitsProcessorList([getattr(tgen, n)(**k) for n, k in chain])(tids, tscores.clone())
    vchain = vgen.LogitsProcessorList([getattr(vgen, n)(**k) for n, k in chain])(vids, vscores.clone())
    np.testing.assert_array_equal(np.isinf(vchain.numpy()), np.isinf(tchain.numpy()))
    close(vchain, tchain, rtol=1e-6, atol=1e-6)


def test_processor_argument_errors_match_torch():
    for lib in (tgen, vgen):
        with pytest.raises(ValueError, match="strictly positive float"):
            lib.TemperatureLogitsWarper(0.0)
        with pytest.raises(ValueError, match="strictly positive integer"):
            lib.TopKLogitsWarper(0)
        with pytest.raises(ValueError, match="top_p"):
            lib.TopPLogitsWarper(1.5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_matches_torch(use_cache, device):
    tm, vm = build(seed=3, device=device, init_std=0.3)
    start = tokens(4, b=2, t=3)
    tout = tm.generate(torch.from_numpy(start).to(device), 12, use_cache=use_cache)
    vout = vm.generate(vt.from_numpy(start).to(device), 12, use_cache=use_cache)
    assert vout.tolist() == tout.tolist()
    assert len(set(vout[0, 3:].tolist())) > 2  # not a degenerate repeat of one token
    penalized = vm.generate(vt.from_numpy(start).to(device), 12, use_cache=use_cache, repetition_penalty=2.0)
    assert penalized.tolist() == tm.generate(torch.from_numpy(start).to(device), 12, use_cache=use_cache,
                                             repetition_penalty=2.0).tolist()
    assert penalized.tolist() != vout.tolist()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_cache", [True, False])
def test_sampled_generation_matches_torch(use_cache, device):
    tm, vm = build(seed=5, device=device, init_std=0.3)
    start = tokens(6, b=3, t=2)
    kwargs = dict(do_sample=True, temperature=1.5, top_k=12, top_p=0.95, repetition_penalty=1.2,
                  use_cache=use_cache)

    def sample(lib, model, seed):
        rng = np.random.default_rng(seed)
        return model.generate(lib.from_numpy(start).to(device), 10, uniform=rng.random, **kwargs).tolist()

    vout = sample(vt, vm, 0)
    assert vout == sample(torch, tm, 0)
    assert sample(vt, vm, 1) == sample(torch, tm, 1)
    assert len({tuple(sample(vt, vm, s)[0]) for s in range(4)}) > 1  # the draws drive the choice
    with pytest.raises(ValueError, match="uniform"):
        vm.generate(vt.from_numpy(start), 3, do_sample=True)


def test_sampling_by_inverse_cdf_picks_the_drawn_interval():
    probs = np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.0, 0.5]], dtype=np.float32)
    for draws, want in (([0.05, 0.2], [0, 1]), ([0.31, 0.5], [2, 3]), ([0.999999, 0.0], [3, 1])):
        assert vgen.sample_inverse_cdf(vt.from_numpy(probs), draws).tolist() == want
        assert tgen.sample_inverse_cdf(torch.from_numpy(probs), draws).tolist() == want
    # the frequencies follow the probabilities
    many = np.random.default_rng(0).random(4000)
    picks = vgen.sample_inverse_cdf(vt.from_numpy(np.repeat(probs[:1], 4000, 0)), many).numpy()
    np.testing.assert_allclose(np.bincount(picks, minlength=4) / 4000, probs[0], atol=0.03)


@pytest.mark.parametrize("device", DEVICES)
def test_left_padded_batch_generation_matches_torch_and_the_unpadded_rows(device):
    tm, vm = build(seed=7, device=device, init_std=0.3)
    pad = 0
    mask = np.array([[1] * 5, [0, 0, 0, 1, 1], [0, 1, 1, 1, 1]])
    prompts = np.where(mask == 1, tokens(8, t=5), pad)
    outs = {}
    for lib, model in ((torch, tm), (vt, vm)):
        p, m = lib.from_numpy(prompts).to(device), lib.from_numpy(mask).to(device)
        outs[lib] = [model.generate(p, 8, attention_mask=m, use_cache=c).tolist() for c in (True, False)]
        outs[lib].append(model.generate(p, 8, attention_mask=m, do_sample=True, top_k=8,
                                        uniform=np.random.default_rng(3).random).tolist())
    assert outs[vt] == outs[torch]
    assert outs[vt][0] == outs[vt][1]
    for row in range(3):
        real = vt.from_numpy(prompts[row:row + 1, int((mask[row] == 0).sum()):]).to(device)
        assert vm.generate(real, 8).tolist()[0][-8:] == outs[vt][0][row][-8:], row
    # eos: a row that emits it is padded from then on, and generation stops once every row has
    eos = outs[vt][0][0][7]
    vout = vm.generate(vt.from_numpy(prompts).to(device), 8, attention_mask=vt.from_numpy(mask).to(device),
                       eos_token_id=eos, pad_token_id=49)
    tout = tm.generate(torch.from_numpy(prompts).to(device), 8, attention_mask=torch.from_numpy(mask).to(device),
                       eos_token_id=eos, pad_token_id=49)
    assert vout.tolist() == tout.tolist()
    assert vout.tolist()[0][7] == eos and set(vout.tolist()[0][8:]) <= {49}


def test_dropout_training_mode_is_seeded_and_eval_matches_torch():
    tm, vm = build(seed=9, init_std=0.2, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1)
    x = tokens(10)
    vm.train()
    vt.manual_seed(4)
    a = vm(vt.from_numpy(x), use_cache=False)[0]
    vt.manual_seed(4)
    b = vm(vt.from_numpy(x), use_cache=False)[0]
    close(a, b, rtol=0, atol=0)
    vm.eval()
    tm.eval()
    with vt.no_grad(), torch.no_grad():
        ev = vm(vt.from_numpy(x), use_cache=False)[0]
        close(ev, tm(torch.from_numpy(x), use_cache=False)[0])
    assert not np.allclose(a.detach().numpy(), ev.numpy(), atol=1e-3)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("attention", [{}] + ATTENTIONS)
def test_half_precision_inference_with_padding_matches_torch(attention, dtype):
    """The additive mask is finfo(dtype).min: padded keys must still get no weight and no NaN (in float16 the
    causal and padding minima add up to -inf)."""
    tm, vm = build(seed=3, init_std=0.3, **attention)
    ref, _ = build(seed=3, init_std=0.3, **eager_twin(attention))  # the upcast path refuses float64 scores
    tm.to(getattr(torch, dtype))
    vm.to(getattr(vt, dtype))
    ref.double()
    x, mask = tokens(11, t=8), left_padded_mask()
    with torch.no_grad(), vt.no_grad():
        tl = tm(torch.from_numpy(x), attention_mask=torch.from_numpy(mask), use_cache=False)[0]
        vl = vm(vt.from_numpy(x), attention_mask=vt.from_numpy(mask), use_cache=False)[0]
        rl = ref(torch.from_numpy(x), attention_mask=torch.from_numpy(mask), use_cache=False)[0].numpy()
    assert vl.dtype == getattr(vt, dtype) and not np.isnan(vl.float().numpy()).any()
    real = mask == 1
    verr = np.abs(vl.float().numpy() - rl)[real].mean()
    terr = np.abs(tl.float().numpy() - rl)[real].mean()
    assert 0 < verr <= 1.25 * terr, (verr, terr)  # as close to the float64 model as torch's half-precision run
    start = np.array([[1, 2, 3]])
    assert vm.generate(vt.from_numpy(start), 8).tolist() == tm.generate(torch.from_numpy(start), 8).tolist()
    if attention.get("reorder_and_upcast_attn"):  # the scores and their softmax in float32, then back
        with vt.no_grad():
            logits, attentions = vm(vt.from_numpy(x), use_cache=False, output_attentions=True)
        assert attentions[0].dtype == getattr(vt, dtype)


@pytest.mark.parametrize("attention", [{}] + ATTENTIONS[:2])
def test_bfloat16_autocast_training_step_is_as_close_to_float64_as_torch(attention):
    """Under CPU autocast the Conv1D addmm and the attention matmuls run in bfloat16 (the upcast path turns autocast
    off for its scores), the loss in float32; the gradients land on the float32 parameters."""
    tm, vm = build(init_std=0.2, **attention)
    ref, _ = build(init_std=0.2, **eager_twin(attention))
    ref.double()
    x, mask = tokens(14, t=8), left_padded_mask()
    labels = np.where(mask == 1, x, -100)
    losses, grads = {}, {}
    for lib, model in ((torch, tm), (vt, vm)):
        with lib.autocast("cpu", dtype=lib.bfloat16):
            loss, logits = model(lib.from_numpy(x), attention_mask=lib.from_numpy(mask),
                                 labels=lib.from_numpy(labels), use_cache=False)
        assert logits.dtype == lib.bfloat16 and loss.dtype == lib.float32
        loss.backward()
        losses[lib] = loss.item()
        grads[lib] = {n: p.grad.numpy() for n, p in model.named_parameters()}
    rloss = ref(torch.from_numpy(x), attention_mask=torch.from_numpy(mask), labels=torch.from_numpy(labels),
                use_cache=False)[0]
    rloss.backward()
    assert abs(losses[vt] - rloss.item()) <= 1.5 * abs(losses[torch] - rloss.item()) + 1e-3, (losses, rloss)
    verr = terr = 0.0
    for name, p in ref.named_parameters():
        verr += np.abs(grads[vt][name] - p.grad.numpy()).sum()
        terr += np.abs(grads[torch][name] - p.grad.numpy()).sum()
    assert 0 < verr <= 1.3 * terr, (verr, terr)  # as close to the float64 gradients as torch's bfloat16 run


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_search_matches_torch(use_cache, device):
    tm, vm = build(seed=3, device=device, init_std=0.3)
    start = tokens(4, b=2, t=3)

    def search(lib, model, **kwargs):
        ids, scores = model.beam_search(lib.from_numpy(start).to(device), max_new_tokens=8, use_cache=use_cache,
                                        **kwargs)
        return ids.tolist(), scores.numpy()

    vids, vscores = search(vt, vm, num_beams=3)
    tids, tscores = search(torch, tm, num_beams=3)
    assert vids == tids
    np.testing.assert_allclose(vscores, tscores, rtol=1e-5)
    # the score is the beam's summed log probability over its length (length_penalty 1)
    with vt.no_grad():
        logp = vt.nn.functional.log_softmax(vm(vt.from_numpy(np.array(vids)).to(device), use_cache=False)[0], -1)
    logp = logp.cpu().numpy()
    summed = [sum(logp[b, i - 1, vids[b][i]] for i in range(3, 11)) for b in range(2)]
    np.testing.assert_allclose(vscores, np.array(summed) / 11, rtol=1e-4)
    greedy = vm.generate(vt.from_numpy(start).to(device), 8, use_cache=use_cache).tolist()
    assert search(vt, vm, num_beams=1)[0] == greedy
    assert vids != greedy  # three beams found another continuation
    # greedy's first token as eos: a hypothesis that ends at once competes with the longer beams
    eos = greedy[0][3]
    kwargs = dict(num_beams=4, eos_token_id=eos, length_penalty=1.0, pad_token_id=49)
    vids, vscores = search(vt, vm, **kwargs)
    tids, tscores = search(torch, tm, **kwargs)
    assert vids == tids
    np.testing.assert_allclose(vscores, tscores, rtol=1e-5)
    assert vids[0][3] == eos and set(vids[0][4:]) == {49}  # the finished hypothesis won, then padding
