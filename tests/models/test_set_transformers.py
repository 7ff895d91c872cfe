"""torch's own attention modules side by side with vibetensor's: nn.MultiheadAttention in its configurations
(batch_first or not, kdim / vdim, add_bias_kv, add_zero_attn, bool and float key padding masks, 2-D and 3-D
attention masks, returned weights averaged or per head, is_causal, dropout in eval) and the models of
tests/models/set_transformers.py (Set Transformer, Perceiver, DETR-style decoder, nn.Transformer seq2seq), loaded
once with torch and once with vibetensor, with the same weights: state_dict keys and shapes, outputs, attention
weights, input and every parameter gradient, eval-mode inference under no_grad (where torch takes its fused fast
path), and AdamW with a warmup schedule on toy set and sequence tasks. On the CPU and, where both see a GPU, on
the GPU (marker cuda)."""
import zlib

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

tst, vst = pair("set_transformers.py")


def build(cls_name, device, seed=0, **cfg):
    torch.manual_seed(seed)
    tm = getattr(tst, cls_name)(**cfg)
    vm = getattr(vst, cls_name)(**cfg)
    assert {k: tuple(v.shape) for k, v in vm.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    assert list(vm.state_dict()) == list(tm.state_dict())
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def check_grads(tm, vm, rtol=1e-3, atol=1e-5):
    tp = dict(tm.named_parameters())
    vp = dict(vm.named_parameters())
    assert list(vp) == list(tp)
    for name, p in vp.items():
        if tp[name].grad is None:
            assert p.grad is None, name
        else:
            assert p.grad is not None, name
            close(p.grad, tp[name].grad, rtol=rtol, atol=atol)


def grad_inputs(*pairs):
    for t, v in pairs:
        t.requires_grad_()
        v.requires_grad_()


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


MHA_CASES = {
    "plain": dict(),
    "seq_first": dict(batch_first=False),
    "kdim_vdim": dict(kdim=5, vdim=7),
    "bias_kv": dict(add_bias_kv=True),
    "zero_attn": dict(add_zero_attn=True),
    "bias_kv_zero_attn_kdim": dict(add_bias_kv=True, add_zero_attn=True, kdim=6, vdim=6, batch_first=False),
    "no_bias": dict(bias=False),
}


def mha_inputs(rng, cfg, device, B=3, L=4, S=5, E=8):
    bf = cfg.get("batch_first", True)
    q = rand(rng, B, L, E) if bf else rand(rng, L, B, E)
    k = rand(rng, B, S, cfg.get("kdim", E)) if bf else rand(rng, S, B, cfg.get("kdim", E))
    v = rand(rng, B, S, cfg.get("vdim", E)) if bf else rand(rng, S, B, cfg.get("vdim", E))
    return both(device, q, k, v)


def masks(kind, rng, B=3, L=4, S=5, H=2):
    """(key_padding_mask, attn_mask) numpy arrays for the case `kind`."""
    pad = np.zeros((B, S), dtype=bool)
    pad[0, 3:], pad[2, 4:] = True, True
    if kind == "none":
        return None, None
    if kind == "kpm_bool":
        return pad, None
    if kind == "kpm_float":
        return np.where(pad, -np.inf, 0.0).astype(np.float32), None
    if kind == "attn_2d_bool":
        return None, np.triu(np.ones((L, S), dtype=bool), 2)
    if kind == "attn_3d_float":
        return pad, (rng.standard_normal((B * H, L, S)) * 2).astype(np.float32)
    if kind == "both_float":
        return np.where(pad, -1e4, 0.0).astype(np.float32), rand(rng, L, S)
    raise ValueError(kind)


def as_pair(device, arr):
    if arr is None:
        return None, None
    (t,), (v,) = both(device, arr)
    return t, v


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mask_kind", ["none", "kpm_bool", "kpm_float", "attn_2d_bool", "attn_3d_float",
                                       "both_float"])
@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multihead_attention_matches_torch(case, mask_kind, device):
    cfg = {"batch_first": True, **MHA_CASES[case]}
    torch.manual_seed(1)
    tm = tst.nn.MultiheadAttention(8, 2, **cfg)
    vm = vst.nn.MultiheadAttention(8, 2, **cfg)
    assert {k: tuple(v.shape) for k, v in vm.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    load_torch_weights(vm, tm)
    tm, vm = tm.to(device), vm.to(device)
    rng = np.random.default_rng(zlib.crc32(f"{case}-{mask_kind}".encode()))  # str hash() varies per process
    (tq, tk, tv), (vq, vk, vv) = mha_inputs(rng, cfg, device)
    grad_inputs((tq, vq), (tk, vk), (tv, vv))
    kpm, am = masks(mask_kind, rng)
    tkpm, vkpm = as_pair(device, kpm)
    tam, vam = as_pair(device, am)
    total_t, total_v = 0, 0
    for avg in (True, False):
        to, tw = tm(tq, tk, tv, key_padding_mask=tkpm, attn_mask=tam, average_attn_weights=avg)
        vo, vw = vm(vq, vk, vv, key_padding_mask=vkpm, attn_mask=vam, average_attn_weights=avg)
        close(vo, to)
        assert tuple(vw.shape) == tuple(tw.shape)
        close(vw, tw)
        total_t, total_v = total_t + (to * to).sum() + tw.sum(), total_v + (vo * vo).sum() + vw.sum()
    to, tw = tm(tq, tk, tv, key_padding_mask=tkpm, attn_mask=tam, need_weights=False)
    vo, vw = vm(vq, vk, vv, key_padding_mask=vkpm, attn_mask=vam, need_weights=False)
    assert tw is None and vw is None
    close(vo, to)
    (total_t + to.sum()).backward()
    (total_v + vo.sum()).backward()
    for t, v in ((tq, vq), (tk, vk), (tv, vv)):
        close(v.grad, t.grad, rtol=1e-3)
    check_grads(tm, vm)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["plain", "seq_first", "kdim_vdim", "bias_kv"])
def test_multihead_attention_eval_inference_matches_torch(case, device):
    """Eval + no_grad: torch runs its fused native attention where it can (self-attention, batch_first); dropout is
    off in eval, so both agree, weights included."""
    cfg = {"batch_first": True, "dropout": 0.5, **MHA_CASES[case]}
    torch.manual_seed(2)
    tm = tst.nn.MultiheadAttention(8, 2, **cfg).to(device).eval()
    vm = vst.nn.MultiheadAttention(8, 2, **cfg)
    load_torch_weights(vm, tm)
    vm = vm.to(device).eval()
    rng = np.random.default_rng(3)
    (tq, tk, tv), (vq, vk, vv) = mha_inputs(rng, cfg, device, S=4)
    kpm, _ = masks("kpm_bool", rng, S=4)
    tkpm, vkpm = as_pair(device, kpm)
    am3 = rng.random((6, 4, 4)) < 0.3
    am3[:, :, 0] = False  # every query keeps a key
    bool_masks = [None, np.triu(np.ones((4, 4), dtype=bool), 1), am3]
    self_attn = "kdim" not in cfg
    args_t = (tq, tq, tq) if self_attn else (tq, tk, tv)
    args_v = (vq, vq, vq) if self_attn else (vq, vk, vv)
    with torch.no_grad(), vt.no_grad():
        for need in (True, False):
            for am in bool_masks:  # bool masks only: torch's fast path refuses float ones
                tam, vam = as_pair(device, am)
                to, tw = tm(*args_t, key_padding_mask=tkpm, attn_mask=tam, need_weights=need)
                vo, vw = vm(*args_v, key_padding_mask=vkpm, attn_mask=vam, need_weights=need)
                close(vo, to)
                if need:
                    close(vw, tw)
                else:
                    assert tw is None and vw is None
            to2, _ = tm(*args_t, need_weights=need)
            close(vm(*args_v, need_weights=need)[0], to2)
    # the same modules in train mode drop attention weights: the output changes (dropout is really applied)
    vm.train()
    vo_train = vm(*args_v, need_weights=False)[0]
    assert not np.allclose(vo_train.detach().cpu().numpy(), vm.eval()(*args_v, need_weights=False)[0].cpu().numpy())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_padding", [False, True])
def test_is_causal_with_causal_mask_matches_torch(with_padding, device):
    torch.manual_seed(4)
    tm = tst.nn.MultiheadAttention(8, 2, batch_first=True)
    vm = vst.nn.MultiheadAttention(8, 2, batch_first=True)
    load_torch_weights(vm, tm)
    tm, vm = tm.to(device), vm.to(device)
    rng = np.random.default_rng(5)
    (tx,), (vx,) = both(device, rand(rng, 3, 6, 8))
    grad_inputs((tx, vx))
    tmask = tst.nn.Transformer.generate_square_subsequent_mask(6, device=device)
    vmask = vst.nn.Transformer.generate_square_subsequent_mask(6, device=device)
    close(vmask, tmask)
    kpm = np.zeros((3, 6), dtype=bool)
    kpm[1, 4:] = True
    tkpm, vkpm = as_pair(device, kpm) if with_padding else (None, None)
    to = tm(tx, tx, tx, attn_mask=tmask, key_padding_mask=tkpm, is_causal=True, need_weights=False)[0]
    vo = vm(vx, vx, vx, attn_mask=vmask, key_padding_mask=vkpm, is_causal=True, need_weights=False)[0]
    close(vo, to)
    # the output at position i must not depend on later positions
    vx2 = vx.detach().clone()
    vx2[:, 4:] = 0.0
    close(vm(vx2, vx2, vx2, attn_mask=vmask, key_padding_mask=vkpm, is_causal=True, need_weights=False)[0][:, :4],
          vo[:, :4], rtol=1e-5, atol=1e-6)
    to.square().sum().backward()
    vo.square().sum().backward()
    close(vx.grad, tx.grad, rtol=1e-3)
    check_grads(tm, vm)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        vm(vx, vx, vx, is_causal=True)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        tm(tx, tx, tx, is_causal=True)


def set_batch(seed, B=4, N=6, dim_in=3, lengths=(6, 3, 5, 2)):
    r = np.random.default_rng(seed)
    x = r.standard_normal((B, N, dim_in)).astype(np.float32)
    mask = np.arange(N)[None, :] >= np.array(lengths)[:, None]
    x[mask] = 0.0
    target = np.array([x[i, :n, 0].max() if n else 0.0 for i, n in enumerate(lengths)], dtype=np.float32)
    return x, mask, target


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("lengths", [(6, 3, 5, 2), (6, 0, 5, 2)], ids=["sets", "with_empty_set"])
def test_set_transformer_matches_torch(lengths, device):
    """An empty set (every element padding) attends to nothing: zeros from the attention and finite gradients,
    as torch's (tests/autograd/test_sdpa_masked_rows.py)."""
    tm, vm = build("SetTransformer", device)
    assert "enc.0.mab0.attn.k_proj_weight" in vm.state_dict() and "enc.0.inducing" in vm.state_dict()
    assert "enc.0.mab0.attn.in_proj_weight" not in vm.state_dict()
    x, mask, target = set_batch(0, lengths=lengths)
    (tx, tmask), (vx, vmask) = both(device, x, mask)
    grad_inputs((tx, vx))
    to, vo = tm(tx, tmask), vm(vx, vmask)
    assert tuple(vo.shape) == (4, 1)
    close(vo, to)
    # padded elements do not matter: other values there give the same output
    x2 = x.copy()
    x2[mask] = 7.0
    (vx2,) = both(device, x2)[1]
    close(vm(vx2, vmask), vo, rtol=1e-4, atol=1e-5)
    (to.square().sum()).backward()
    (vo.square().sum()).backward()
    close(vx.grad, tx.grad, rtol=1e-3)
    check_grads(tm, vm)
    assert all(np.isfinite(p.grad.cpu().numpy()).all() for p in vm.parameters())


@pytest.mark.parametrize("device", DEVICES)
def test_perceiver_matches_torch(device):
    tm, vm = build("Perceiver", device, dropout=0.2)
    sd = vm.state_dict()
    assert tuple(sd["blocks.0.attn.bias_k"].shape) == (1, 1, 16) and "cross.v_proj_weight" in sd
    r = np.random.default_rng(1)
    x = r.standard_normal((7, 3, 5)).astype(np.float32)
    pad = np.zeros((3, 7), dtype=np.float32)
    pad[1, 4:], pad[2, :] = -np.inf, -np.inf  # the last input is all padding: only the zero attention remains
    (tx, tpad), (vx, vpad) = both(device, x, pad)
    grad_inputs((tx, vx))
    tm.eval()
    vm.eval()
    (tl, tw), (vl, vw) = tm(tx, tpad, return_weights=True), vm(vx, vpad, return_weights=True)
    assert tuple(vw.shape) == tuple(tw.shape) == (3, 6, 8)  # 7 inputs + the zero key
    close(vl, tl)
    close(vw, tw)
    assert np.isfinite(vl.detach().cpu().numpy()).all()
    # the all-padding input: every latent puts its whole weight on the zero key
    np.testing.assert_allclose(vw[2, :, -1].detach().cpu().numpy(), np.ones(6, np.float32), rtol=1e-6)
    (tl.square().sum() + tw.sum()).backward()
    (vl.square().sum() + vw.sum()).backward()
    close(vx.grad, tx.grad, rtol=1e-3)
    check_grads(tm, vm)
    with torch.no_grad(), vt.no_grad():
        close(vm(vx, vpad), tm(tx, tpad))


def detr_batch(seed, B=2, h=3, w=4, c=12):
    r = np.random.default_rng(seed)
    feats = r.standard_normal((B, h * w, c)).astype(np.float32)
    mask = np.zeros((B, h, w), dtype=bool)
    mask[1, :, 3:] = True  # the second image is narrower: its last column is padding
    return feats, mask.reshape(B, h * w)


@pytest.mark.parametrize("device", DEVICES)
def test_detr_decoder_matches_torch(device):
    tm, vm = build("DETRHead", device)
    assert "decoder.layers.1.multihead_attn.in_proj_weight" in vm.state_dict()
    assert "decoder.norm.weight" in vm.state_dict() and "query_embed.weight" in vm.state_dict()
    feats, mask = detr_batch(0)
    (tf, tmask), (vf, vmask) = both(device, feats, mask)
    grad_inputs((tf, vf))
    tm.eval()
    vm.eval()  # dropout 0.1 is off in eval
    (tc, tb), (vc, vb) = tm(tf, tmask), vm(vf, vmask)
    assert tuple(vc.shape) == (2, 5, 5) and tuple(vb.shape) == (2, 5, 4)
    close(vc, tc)
    close(vb, tb)
    assert all(layer.query_pos is None for layer in vm.decoder.layers)
    (tc.square().sum() + tb.sum()).backward()
    (vc.square().sum() + vb.sum()).backward()
    close(vf.grad, tf.grad, rtol=1e-3)
    check_grads(tm, vm)
    # the query embeddings are what tells the queries apart: every query predicts something else
    assert not np.allclose(vc[0, 0].detach().cpu().numpy(), vc[0, 1].detach().cpu().numpy())
    with torch.no_grad(), vt.no_grad():
        close(vm(vf, vmask)[0], tm(tf, tmask)[0])


def seq_batch(seed, B=3, S=6, T=5, vocab=11):
    r = np.random.default_rng(seed)
    src = r.integers(1, vocab, size=(B, S)).astype(np.int64)
    tgt = r.integers(1, vocab, size=(B, T)).astype(np.int64)
    src[1, 4:], src[2, 5:], tgt[0, 3:] = 0, 0, 0
    return src, tgt


SEQ_CASES = {
    "post_norm_relu": dict(),
    "pre_norm_gelu_seq_first": dict(norm_first=True, activation="gelu", batch_first=False),
    "callable_activation_custom_norms": dict(activation="squared_relu", custom=True),
    "pre_norm_custom_seq_first": dict(norm_first=True, custom=True, batch_first=False),
}


def build_seq(case, device, **extra):
    cfg = dict(SEQ_CASES[case], **extra)
    torch.manual_seed(0)
    tcfg, vcfg = dict(cfg), dict(cfg)
    if cfg.get("activation") == "squared_relu":
        tcfg["activation"], vcfg["activation"] = tst.squared_relu, vst.squared_relu
    tm, vm = tst.Seq2SeqTransformer(**tcfg), vst.Seq2SeqTransformer(**vcfg)
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert {k: tuple(v.shape) for k, v in vm.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(SEQ_CASES))
def test_seq2seq_transformer_matches_torch(case, device):
    tm, vm = build_seq(case, device)
    src, tgt = seq_batch(0)
    (ts, tt), (vs, vv) = both(device, src, tgt)
    tm.eval()
    vm.eval()
    to, vo = tm(ts, tt), vm(vs, vv)
    assert tuple(vo.shape) == (3, 5, 11)
    close(vo, to)
    (to.square().sum()).backward()
    (vo.square().sum()).backward()
    check_grads(tm, vm)
    with torch.no_grad(), vt.no_grad():  # torch's fused encoder / nested-tensor inference path
        tn, vn = tm(ts, tt), vm(vs, vv)
        close(vn, tn)
        close(vn, vo.detach())
        tmem = tm.transformer.encoder(tm.embed(tm.src_embed, ts), src_key_padding_mask=ts == 0)
        vmem = vm.transformer.encoder(vm.embed(vm.src_embed, vs), src_key_padding_mask=vs == 0)
        close(vmem, tmem)


def adamw_with_warmup(lib, mod, model, lr=3e-3, warmup=3, total=8):
    opt = lib.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    return opt, mod.warmup_schedule(opt, warmup, total)


def train_with_adamw(tm, vm, topt, vopt, scheds, losses_at, steps, lr, clip=None, one_key=()):
    """train_side_by_side's loop (each loss, each clipped norm, each learning rate as torch's), then the final
    weights. The key third of every in_proj_bias has a true gradient of zero (softmax ignores a constant added
    to a query's scores), so both libraries' gradients there are rounding noise that AdamW's normalisation turns
    into steps of up to lr (tests/models/test_vision_models.py): those elements must only stay within that
    bound of torch's; every other element must match. one_key names the in_proj weight and bias of attentions
    over a single key: its softmax is 1 whatever the scores, so their whole query and key thirds get a true
    gradient of zero, and vt's gradient there must be that zero but for rounding. torch's CPU gradient there is
    exactly zero on the dev machine and rounding noise on the H100 host (vt's weights were the same on both; noise
    of 1e-9 added to torch's gradient there gives the H100 host's mismatch), so they too keep to the AdamW bound."""
    lrs, losses = [], []
    vparams = dict(vm.named_parameters())
    for step in range(steps):
        tl, vl = losses_at(step)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=2e-4)
        losses.append(vl.item())
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        for name in one_key:
            g = vparams[name].grad.detach().cpu().numpy()
            e = g.shape[0] // 3
            assert np.abs(g[:2 * e]).max() <= 1e-6 * np.abs(g[2 * e:]).max(), name
        if clip is not None:
            np.testing.assert_allclose(vt.nn.utils.clip_grad_norm_(vm.parameters(), clip).item(),
                                       torch.nn.utils.clip_grad_norm_(tm.parameters(), clip).item(), rtol=2e-4)
        topt.step()
        vopt.step()
        for sched in scheds:
            sched.step()
        assert scheds[1].get_last_lr() == pytest.approx(scheds[0].get_last_lr(), rel=1e-12)
        lrs.append(scheds[1].get_last_lr()[0])
    assert losses[-1] < losses[0], losses
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        v, t = p.detach().cpu().numpy(), tp[name].detach().cpu().numpy()
        if name.endswith("in_proj_bias") or name in one_key:
            e = v.shape[0] // 3
            lo = 0 if name in one_key else e
            assert np.abs(v[lo:2 * e] - t[lo:2 * e]).max() <= 2 * lr * steps, name
            v, t = np.concatenate([v[:lo], v[2 * e:]]), np.concatenate([t[:lo], t[2 * e:]])
        np.testing.assert_allclose(v, t, rtol=1e-3, atol=1e-4, err_msg=name)
    return lrs


@pytest.mark.parametrize("device", DEVICES)
def test_set_transformer_trains_on_max_of_set_like_torch(device):
    tm, vm = build("SetTransformer", device, seed=3)
    topt, tsched = adamw_with_warmup(torch, tst, tm)
    vopt, vsched = adamw_with_warmup(vt, vst, vm)
    batches = [set_batch(10 + i, B=8, N=7, lengths=(7, 3, 5, 0, 6, 4, 7, 1)) for i in range(8)]  # one empty set

    def losses_at(step):
        x, mask, target = batches[step]
        (tx, tmask, tt), (vx, vmask, vv) = both(device, x, mask, target)
        return tst.max_of_set_loss(tm, tx, tmask, tt), vst.max_of_set_loss(vm, vx, vmask, vv)

    # the decoder's SAB attends over the PMA's single seed: one key
    lrs = train_with_adamw(tm, vm, topt, vopt, (tsched, vsched), losses_at, steps=8, lr=3e-3, clip=1.0,
                           one_key=("dec.0.mab.attn.in_proj_weight", "dec.0.mab.attn.in_proj_bias"))
    assert lrs[0] < lrs[1] == pytest.approx(3e-3) and lrs[-1] < lrs[2]  # warmup to the base rate, then decay
    tstate = topt.state_dict()["state"]
    for name, buf in vopt.state_dict()["state"].items():  # AdamW's first moments follow torch's
        assert int(buf["step"]) == int(tstate[name]["step"]) == 8
        if buf["exp_avg"].dim() == 2:  # weights: no near-zero gradients
            close(buf["exp_avg"], tstate[name]["exp_avg"], rtol=1e-3, atol=1e-6)
    tm.eval()
    vm.eval()
    x, mask, _ = set_batch(99)
    (tx, tmask), (vx, vmask) = both(device, x, mask)
    with torch.no_grad(), vt.no_grad():
        close(vm(vx, vmask), tm(tx, tmask))


def sort_batch(seed, B=6, n=5, vocab=11):
    """Sort the digits 1..vocab-2 (BOS = vocab-1, PAD = 0); sources are shorter than n on some rows."""
    r = np.random.default_rng(seed)
    src = np.zeros((B, n), np.int64)
    tgt = np.zeros((B, n + 1), np.int64)
    for i in range(B):
        k = n - (i % 3 == 2)
        digits = r.integers(1, vocab - 1, size=k)
        src[i, :k] = digits
        tgt[i, 0], tgt[i, 1:k + 1] = vocab - 1, np.sort(digits)
    return src, tgt


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["post_norm_relu", "pre_norm_gelu_seq_first", "callable_activation_custom_norms"])
def test_seq2seq_transformer_trains_on_sorting_like_torch(case, device):
    tm, vm = build_seq(case, device, dropout=0.0)
    topt, tsched = adamw_with_warmup(torch, tst, tm, lr=5e-3)
    vopt, vsched = adamw_with_warmup(vt, vst, vm, lr=5e-3)
    batches = [sort_batch(i) for i in range(6)]

    def loss(lib, model, src, tgt):
        logits = model(src, tgt[:, :-1])
        return lib.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1),
                                               ignore_index=0, label_smoothing=0.1)

    def losses_at(step):
        (ts, tt), (vs, vv) = both(device, *batches[step])
        return loss(torch, tm, ts, tt), loss(vt, vm, vs, vv)

    train_with_adamw(tm, vm, topt, vopt, (tsched, vsched), losses_at, steps=6, lr=5e-3)
    tm.eval()
    vm.eval()
    (ts, tt), (vs, vv) = both(device, *sort_batch(50))
    with torch.no_grad(), vt.no_grad():
        close(vm(vs, vv), tm(ts, tt), rtol=1e-3, atol=1e-4)
