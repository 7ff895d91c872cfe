"""The BERT-style encoder of tests/models/bert.py, loaded once with torch and once with vibetensor swapped in for
torch, with the same weights: structure and state_dict keys; in eval (dropout off) the MLM and classification
losses, logits, pooled output and every gradient with additive-float, bool and nn.MultiheadAttention padding
masks, and outputs that ignore what the padding holds; in train mode dropout that is active and reproducible
under a seed; several optimizer steps against torch; the seeded MLM corruption. On the CPU and, where both see a
GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from helpers import as_installed_torch_prints
from side_by_side import close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tb, vb = pair("bert.py")

VOCAB, MASK_ID = 60, 3
HEADS = {"mlm": "BertForMaskedLM", "cls": "BertForSequenceClassification"}


def build(head, attention="manual", seed=0, device="cpu", dropout=0.1):
    cfg = dict(attention=attention, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    tm = getattr(tb, HEADS[head])(tb.BertConfig(**cfg))
    vm = getattr(vb, HEADS[head])(vb.BertConfig(**cfg))
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def data(seed, head, b=4, t=11, device="cpu"):
    """Padded token ids (lengths from t down to 3), sentence-pair token types, and labels for `head`; as
    (torch, vt) pairs of (ids, lengths, types, labels)."""
    r = np.random.default_rng(seed)
    lengths = np.array([t, 3] + list(r.integers(3, t + 1, size=b - 2)))
    ids = r.integers(4, VOCAB, size=(b, t))
    ids[:, 0] = 1  # [CLS]
    ids[np.arange(t)[None, :] >= lengths[:, None]] = 0  # [PAD]
    types = (np.arange(t)[None, :] >= lengths[:, None] // 2).astype(np.int64)
    if head == "mlm":
        labels = np.where(r.random((b, t)) < 0.3, ids, -100)
        labels[np.arange(t)[None, :] >= lengths[:, None]] = -100
        labels[0, 1] = ids[0, 1]  # at least one target
    else:
        labels = r.integers(0, 3, size=b)
    arrays = (ids, lengths, types, labels)
    return (tuple(torch.from_numpy(a).to(device) for a in arrays), tuple(vt.from_numpy(a).to(device) for a in arrays))


def run(lib, mod, model, batch, mask_kind):
    ids, lengths, types, labels = batch
    mask = mod.padding_mask(lengths, ids.shape[1])
    return model(ids, attention_mask=mask, token_type_ids=types, labels=labels, mask_kind=mask_kind)


def test_structure_and_masks_match_torch():
    for head, attention in [("mlm", "manual"), ("cls", "mha")]:
        tm, vm = build(head, attention)
        assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
        assert list(vm.state_dict()) == list(tm.state_dict())
        assert [n for n, _ in vm.named_modules()] == [n for n, _ in tm.named_modules()]
        assert as_installed_torch_prints(repr(vm)) == repr(tm)  # Note [Module printing across torch versions]
    assert vm.bert.embeddings.word_embeddings.weight[0].abs().sum().item() == 0  # padding_idx row zeroed
    _, vm = build("mlm")
    assert vm.decoder.weight is vm.bert.embeddings.word_embeddings.weight
    lengths = np.array([3, 0, 5])
    tmask, vmask = tb.padding_mask(torch.from_numpy(lengths), 5), vb.padding_mask(vt.from_numpy(lengths), 5)
    assert vmask.dtype == vt.bool and vmask.tolist() == tmask.tolist()
    for dtype in ("float32", "float64"):
        text = tb.extended_attention_mask(tmask, getattr(torch, dtype))
        vext = vb.extended_attention_mask(vmask, getattr(vt, dtype))
        assert vext.dtype == getattr(vt, dtype) and tuple(vext.shape) == (3, 1, 1, 5)
        assert vext.tolist() == text.tolist()
    with pytest.raises(ValueError, match="multiple of the number of attention heads"):
        vb.BertSelfAttention(vb.BertConfig(num_attention_heads=5))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("head,attention,mask_kind", [("mlm", "manual", "additive"), ("mlm", "manual", "bool"),
                                                      ("cls", "manual", "bool"), ("cls", "mha", None),
                                                      ("mlm", "mha", None)])
def test_eval_forward_and_gradients_match_torch(head, attention, mask_kind, device):
    tm, vm = build(head, attention, device=device)
    tm.eval()
    vm.eval()
    tbatch, vbatch = data(1, head, device=device)
    tl, tlogits = run(torch, tb, tm, tbatch, mask_kind)
    vl, vlogits = run(vt, vb, vm, vbatch, mask_kind)
    close(vlogits, tlogits)
    close(vl, tl)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        if tgrads[name].grad is None:  # the pooler under the MLM head
            assert p.grad is None and name.startswith("bert.pooler"), name
        else:
            close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
    # the word embedding's padding row gets no gradient through the embedding (only through the tied decoder)
    if head == "cls":
        assert not vm.bert.embeddings.word_embeddings.weight.grad[0].abs().sum().item()


@pytest.mark.parametrize("attention,mask_kind", [("manual", "additive"), ("manual", "bool"), ("mha", None)])
def test_padding_does_not_leak_into_real_tokens(attention, mask_kind):
    _, vm = build("mlm", attention)
    vm.eval()
    _, (ids, lengths, types, _) = data(2, "mlm")
    pad = (vt.arange(ids.shape[1])[None, :] >= lengths[:, None])
    other = vt.where(pad, vt.full_like(ids, 17), ids)  # other junk where the padding is
    with vt.no_grad():
        mask = vb.padding_mask(lengths, ids.shape[1])
        a = vm.bert(ids, mask, types, mask_kind)
        b = vm.bert(other, mask, types, mask_kind)
        c = vm.bert(ids, None, types, mask_kind)  # no mask: the junk is seen
    real = (~pad).numpy()
    np.testing.assert_allclose(a[0].numpy()[real], b[0].numpy()[real], rtol=1e-5, atol=1e-6)
    close(a[1], b[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[0].numpy()[real], c[0].numpy()[real], atol=1e-4)


@pytest.mark.parametrize("attention", ["manual", "mha"])
def test_train_mode_dropout_is_active_and_seeded(attention):
    _, vm = build("cls", attention, dropout=0.3)
    _, vbatch = data(3, "cls")
    losses = []
    for seed in (5, 5, 6):
        vt.manual_seed(seed)
        losses.append(run(vt, vb, vm, vbatch, "additive")[0].item())
    vm.eval()
    ev = run(vt, vb, vm, vbatch, "additive")[0].item()
    assert losses[0] == losses[1] and losses[0] != losses[2] and ev not in losses
    assert vm.eval() is vm and not vm.training and not vm.bert.encoder[0].attention.dropout.training


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("head,attention,opt", [("mlm", "manual", "AdamW"), ("cls", "mha", "SGD")])
def test_optimizer_steps_match_torch(head, attention, opt, device):
    tm, vm = build(head, attention, seed=1, device=device, dropout=0.0)  # train mode, dropout off: deterministic
    kw = dict(lr=2e-3, weight_decay=0.01) if opt == "AdamW" else dict(lr=0.1, momentum=0.9, nesterov=True)
    topt, vopt = getattr(torch.optim, opt)(tm.parameters(), **kw), getattr(vt.optim, opt)(vm.parameters(), **kw)
    mask_kind = "additive" if attention == "manual" else None
    def losses_at(step):
        tbatch, vbatch = data(7, head, device=device)  # one batch again and again: the loss must fall
        return run(torch, tb, tm, tbatch, mask_kind)[0], run(vt, vb, vm, vbatch, mask_kind)[0]
    train_side_by_side(tm, vm, topt, vopt, losses_at, steps=4)


def test_mlm_corruption_is_seeded():
    r = np.random.default_rng(0)
    ids = vt.from_numpy(r.integers(4, VOCAB, size=(8, 40)))
    mask = vb.padding_mask(vt.from_numpy(r.integers(10, 41, size=8)), 40)
    inputs, labels = vb.mask_tokens(ids, mask, VOCAB, MASK_ID, vt.Generator().manual_seed(3))
    again = vb.mask_tokens(ids, mask, VOCAB, MASK_ID, vt.Generator().manual_seed(3))
    assert inputs.tolist() == again[0].tolist() and labels.tolist() == again[1].tolist()
    picked = (labels != -100).numpy()
    assert not (picked & ~mask.numpy()).any()  # never a padding position
    assert 0.05 < picked.sum() / mask.numpy().sum() < 0.3
    np.testing.assert_array_equal(labels.numpy()[picked], ids.numpy()[picked])
    changed = inputs.numpy() != ids.numpy()
    assert not (changed & ~picked).any() and (inputs.numpy()[picked] == MASK_ID).mean() > 0.5


@pytest.mark.parametrize("device", DEVICES)
def test_sentence_encoder_on_torchs_transformer_encoder(device):
    torch.manual_seed(0)
    tm = tb.SentenceEncoder(tb.BertConfig(hidden_dropout_prob=0.0)).to(device)
    vm = vb.SentenceEncoder(vb.BertConfig(hidden_dropout_prob=0.0))
    vm.load_state_dict({k: vt.from_numpy(v.detach().cpu().numpy().copy()) for k, v in tm.state_dict().items()})
    vm.to(device)
    (tids, tlen, ttypes, _), (vids, vlen, vtypes, _) = data(4, "cls", device=device)
    tmask, vmask = tb.padding_mask(tlen, tids.shape[1]).long(), vb.padding_mask(vlen, vids.shape[1]).long()
    tm.eval()
    vm.eval()
    with torch.no_grad(), vt.no_grad():  # the fast path: the padded positions come back zero
        (th, tpool), (vh, vpool) = tm(tids, tmask, ttypes), vm(vids, vmask, vtypes)
    # torch's fused encoder path on CUDA is itself 2.4e-4 from its CPU result (and from its own unfused path) on an
    # H100; vt computes the unfused arithmetic on every device
    fast = dict(rtol=1e-3, atol=5e-4) if device == "cuda" else {}
    close(vh, th, **fast)
    close(vpool, tpool, **fast)
    assert not vh.cpu().numpy()[vmask.cpu().numpy() == 0].any()
    tm.train()
    vm.train()
    (th, tpool), (vh, vpool) = tm(tids, tmask, ttypes), vm(vids, vmask, vtypes)
    close(vpool, tpool)
    (tpool ** 2).sum().backward()
    (vpool ** 2).sum().backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-6)
