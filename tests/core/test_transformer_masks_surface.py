"""Differential tests, vibetensor against torch, of how the attention modules read their masks and hints:
F._canonical_mask / F._none_or_dtype (bool -> additive, dtype errors naming the mask, the mismatched-mask
warning), MultiheadAttention.merge_masks, the causal-mask detection that nn.TransformerEncoder /
nn.TransformerDecoder hand to their layers as is_causal / tgt_is_causal, the _sa_block / _mha_block signatures
that subclasses override or call by keyword, and Transformer._reset_parameters."""
import inspect
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import vibetensor.torch as vt
from vibetensor.torch.nn import functional_mha as VF


def close(v, t, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(v.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=rtol, atol=atol)


def both(arr):
    return torch.from_numpy(arr.copy()), vt.from_numpy(arr.copy())


def load(vm, tm):
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})


PAD = np.array([[False, False, True], [False, True, True]])


def test_canonical_mask_matches_torch():
    tb, vb = both(PAD)
    tr = TF._canonical_mask(tb, "key_padding_mask", None, "", torch.float32)
    vr = VF._canonical_mask(vb, "key_padding_mask", None, "", vt.float32)
    assert vr.dtype == vt.float32
    close(vr, tr)
    tf, vf = both(np.where(PAD, -5.0, 0.0).astype(np.float32))
    assert VF._canonical_mask(vf, "m", None, "", vt.float32) is vf  # a float mask stays as it is
    assert VF._canonical_mask(None, "m", None, "", vt.float32) is None
    ti, vi = both(PAD.astype(np.int64))
    with pytest.raises(AssertionError, match="only bool and floating types of key_padding_mask are supported"):
        TF._canonical_mask(ti, "key_padding_mask", None, "", torch.float32)
    with pytest.raises(AssertionError, match="only bool and floating types of key_padding_mask are supported"):
        VF._canonical_mask(vi, "key_padding_mask", None, "", vt.float32)
    for lib, mask, other in ((TF, tb, torch.float32), (VF, vb, vt.float32)):
        with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask is deprecated"):
            lib._canonical_mask(mask, "key_padding_mask", other, "attn_mask", other)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lib._canonical_mask(mask, "key_padding_mask", other, "attn_mask", other, check_other=False)
    assert VF._none_or_dtype(None) is None and VF._none_or_dtype(vb) == vt.bool
    with pytest.raises(RuntimeError, match="must be None or torch.Tensor"):
        TF._none_or_dtype(3)
    with pytest.raises(RuntimeError, match="must be None or torch.Tensor"):
        VF._none_or_dtype(3)


def test_multihead_attention_mask_errors_and_warnings_match_torch():
    torch.manual_seed(0)
    tm, vm = torch.nn.MultiheadAttention(4, 2, batch_first=True), vt.nn.MultiheadAttention(4, 2, batch_first=True)
    load(vm, tm)
    tx, vx = both(np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32))
    for m, x, lib in ((tm, tx, torch), (vm, vx, vt)):
        kpm = lib.from_numpy(PAD.astype(np.int64))
        with pytest.raises(AssertionError, match="only bool and floating types of key_padding_mask"):
            m(x, x, x, key_padding_mask=kpm)
        with pytest.raises(AssertionError, match="only bool and floating types of attn_mask"):
            m(x, x, x, attn_mask=lib.from_numpy(np.zeros((3, 3), dtype=np.int64)))
    tkpm, vkpm = both(np.where(PAD, -1e9, 0.0).astype(np.float32))
    tam, vam = both(np.triu(np.ones((3, 3), dtype=bool), 1))
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask"):
        to = tm(tx, tx, tx, key_padding_mask=tkpm, attn_mask=tam)
    with pytest.warns(UserWarning, match="mismatched key_padding_mask and attn_mask"):
        vo = vm(vx, vx, vx, key_padding_mask=vkpm, attn_mask=vam)
    close(vo[0], to[0])
    close(vo[1], to[1])


@pytest.mark.parametrize("which", ["none", "kpm", "attn_2d", "attn_3d", "both_2d", "both_3d"])
def test_merge_masks_matches_torch(which):
    torch.manual_seed(0)
    tm, vm = torch.nn.MultiheadAttention(4, 2, batch_first=True), vt.nn.MultiheadAttention(4, 2, batch_first=True)
    r = np.random.default_rng(1)
    tq, vq = both(r.standard_normal((2, 3, 4)).astype(np.float32))
    kpm = np.where(PAD, -np.inf, 0.0).astype(np.float32) if "kpm" in which or "both" in which else None
    am = None
    if "2d" in which:
        am = r.standard_normal((3, 3)).astype(np.float32)
    elif "3d" in which:
        am = r.standard_normal((4, 3, 3)).astype(np.float32)
    tk, vk = both(kpm) if kpm is not None else (None, None)
    ta, va = both(am) if am is not None else (None, None)
    tmerged, ttype = tm.merge_masks(ta, tk, tq)
    vmerged, vtype = vm.merge_masks(va, vk, vq)
    assert vtype == ttype
    if tmerged is None:
        assert vmerged is None
    else:
        assert tuple(vmerged.shape) == tuple(tmerged.shape)
        close(vmerged, tmerged)


def recorder(lib, base):
    """A subclass of lib.nn.<base> that records the causal hint its stack hands it."""

    class Recording(getattr(lib.nn, base)):
        seen = []

        def forward(self, *args, **kwargs):
            Recording.seen.append(kwargs.get("tgt_is_causal", kwargs.get("is_causal")))
            return super().forward(*args, **kwargs)

    return Recording


def causal_hints(lib, batch_first, mask, hint, encoder):
    torch.manual_seed(0)
    layer_cls = recorder(lib, "TransformerEncoderLayer" if encoder else "TransformerDecoderLayer")
    layer_cls.seen = []
    layer = layer_cls(4, 2, 8, dropout=0.0, batch_first=batch_first)
    x = lib.zeros(2, 3, 4)
    if encoder:
        stack = lib.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        stack(x, mask=mask, is_causal=hint)
    else:
        stack = lib.nn.TransformerDecoder(layer, 2)
        stack(x, x, tgt_mask=mask, tgt_is_causal=hint)
    return layer_cls.seen


@pytest.mark.parametrize("encoder", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask_kind, hint", [("causal", None), ("causal_bool", None), ("random", None),
                                             ("none", None), ("random", True), ("causal", False),
                                             ("causal_2", None)])
def test_stacks_detect_causal_masks_as_torch(encoder, batch_first, mask_kind, hint):
    """batch_first (2, 3, 4) inputs have 3 positions, (seq, batch, E) ones 2: the 3x3 causal mask counts as causal
    only when its size is the sequence length ("causal_2", a 2x2 one, the other way round)."""
    if mask_kind == "none":
        arr = None
    elif mask_kind.startswith("causal"):
        n = 2 if mask_kind == "causal_2" else 3
        arr = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
        if mask_kind == "causal_bool":
            arr = np.isinf(arr)
    else:
        arr = np.random.default_rng(0).standard_normal((3, 3)).astype(np.float32)
    seq_len = 3 if batch_first else 2
    if arr is not None and arr.shape[0] != seq_len:
        pytest.skip("the mask does not fit the sequence")
    tmask, vmask = both(arr) if arr is not None else (None, None)
    tseen = causal_hints(torch, batch_first, tmask, hint, encoder)
    vseen = causal_hints(vt, batch_first, vmask, hint, encoder)
    assert vseen == tseen and len(tseen) == 2


@pytest.mark.parametrize("cls", ["TransformerEncoderLayer", "TransformerDecoderLayer"])
def test_block_methods_have_torch_signatures(cls):
    for name in ("_sa_block", "_mha_block", "_ff_block"):
        tfn = getattr(getattr(torch.nn, cls), name, None)
        if tfn is None:
            continue
        tsig, vsig = inspect.signature(tfn), inspect.signature(getattr(getattr(vt.nn, cls), name))
        assert list(vsig.parameters) == list(tsig.parameters), name
        assert [p.default for p in vsig.parameters.values()] == [p.default for p in tsig.parameters.values()], name


def test_block_called_by_keyword_matches_torch():
    """A subclass that calls the parent's _sa_block with torch's keyword names."""
    outs = []
    for lib in (torch, vt):
        class KeywordLayer(lib.nn.TransformerEncoderLayer):
            def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
                return super()._sa_block(x, attn_mask=attn_mask, key_padding_mask=key_padding_mask) * 0.5

        torch.manual_seed(0)
        layer = KeywordLayer(4, 2, 8, dropout=0.0, batch_first=True)
        outs.append(layer)
    load(outs[1], outs[0])
    tx, vx = both(np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32))
    tk, vk = both(PAD)
    close(outs[1](vx, src_key_padding_mask=vk), outs[0](tx, src_key_padding_mask=tk))


def test_transformer_reset_parameters_as_torch():
    for lib in (torch, vt):
        m = lib.nn.Transformer(8, 2, 1, 1, 16, dropout=0.0)
        w = m.encoder.layers[0].linear1.weight
        with lib.no_grad():
            w.fill_(3.0)
            m.encoder.layers[0].linear1.bias.fill_(3.0)
        m._reset_parameters()
        bound = (6.0 / (8 + 16)) ** 0.5  # xavier_uniform on rank > 1, biases untouched
        vals = np.asarray(w.detach().cpu().numpy())
        assert np.abs(vals).max() <= bound and vals.std() > 0.1 * bound
        assert (m.encoder.layers[0].linear1.bias.detach().cpu().numpy() == 3.0).all()


def test_square_subsequent_mask_matches_torch():
    for n in (1, 4):
        close(vt.nn.Transformer.generate_square_subsequent_mask(n),
              torch.nn.Transformer.generate_square_subsequent_mask(n))
    assert vt.nn.Transformer.generate_square_subsequent_mask(3, dtype=vt.float64).dtype == vt.float64


@pytest.mark.parametrize("stack", [False, True])
def test_encoder_masks_named_in_errors_and_warnings_as_torch(stack):
    """nn.TransformerEncoder(Layer) make their masks additive themselves: a mismatched pair warns in their
    argument names (mask or src_mask), an integer mask fails naming src_key_padding_mask; values agree."""
    outs = []
    for lib in (torch, vt):
        torch.manual_seed(0)
        layer = lib.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, batch_first=True)
        model = lib.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False) if stack else layer
        outs.append((lib, model))
    load(outs[1][1], outs[0][1])
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
    mask_name = "mask" if stack else "src_mask"
    results = []
    for lib, model in outs:
        kw = {mask_name: lib.from_numpy(np.random.default_rng(4).standard_normal((3, 3)).astype(np.float32))}
        with pytest.warns(UserWarning, match=f"mismatched src_key_padding_mask and {mask_name} is deprecated"):
            results.append(model(lib.from_numpy(x), src_key_padding_mask=lib.from_numpy(PAD), **kw))
        with pytest.raises(AssertionError, match="only bool and floating types of src_key_padding_mask"):
            model(lib.from_numpy(x), src_key_padding_mask=lib.from_numpy(PAD.astype(np.int64)))
    close(results[1], results[0])


@pytest.mark.parametrize("lib", [torch, vt], ids=["torch", "vibetensor"])
def test_training_dropout_weights_are_the_ones_applied(lib):
    """In training with dropout, need_weights returns the attention weights after dropout (zeros where dropped,
    the rest scaled by 1 / (1 - p)): the output is exactly those weights applied to the projected values."""
    lib.manual_seed(0)
    p = 0.5
    m = lib.nn.MultiheadAttention(8, 2, dropout=p, batch_first=True)
    x = lib.from_numpy(np.random.default_rng(5).standard_normal((2, 4, 8)).astype(np.float32))
    out, w = m(x, x, x, average_attn_weights=False)
    wn = w.detach().numpy()
    assert (wn == 0).sum() > 0 and (wn.sum(-1) != 1).any()
    e, h = 8, 2
    wv, bv = (t.detach().numpy() for t in (m.in_proj_weight[2 * e:], m.in_proj_bias[2 * e:]))
    v = (x.detach().numpy() @ wv.T + bv).reshape(2, 4, h, e // h).transpose(0, 2, 1, 3)
    attn = (wn @ v).transpose(0, 2, 1, 3).reshape(2, 4, e)
    want = attn @ m.out_proj.weight.detach().numpy().T + m.out_proj.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-5, atol=1e-5)
    # without dropout (eval), the weights are a distribution again
    m.eval()
    np.testing.assert_allclose(m(x, x, x)[1].detach().numpy().sum(-1), np.ones((2, 4)), rtol=1e-5)


def test_transformer_module_helpers_match_torch():
    """torch.nn.modules.transformer's helpers that public code imports to build its own stacks."""
    import torch.nn.modules.transformer as tt
    from vibetensor.torch.nn import attention_layers as vtt

    torch.manual_seed(0)
    tlayer = torch.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)
    vlayer = vt.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)
    load(vlayer, tlayer)
    tclones, vclones = tt._get_clones(tlayer, 3), vtt._get_clones(vlayer, 3)
    assert type(vclones).__name__ == type(tclones).__name__ == "ModuleList" and len(vclones) == 3
    assert list(vclones.state_dict()) == list(tclones.state_dict())
    with vt.no_grad():
        vclones[0].linear1.weight.fill_(0.0)  # the copies are independent of each other and of the original
    assert vclones[1].linear1.weight.abs().sum().item() > 0 and vlayer.linear1.weight.abs().sum().item() > 0
    close(vclones[2].linear1.weight, tclones[2].linear1.weight)
    assert vtt._get_activation_fn("relu") is vt.nn.functional.relu
    assert vtt._get_activation_fn("gelu") is vt.nn.functional.gelu
    for fn in (tt._get_activation_fn, vtt._get_activation_fn):
        with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
            fn("tanh")
    close(vtt._generate_square_subsequent_mask(4), tt._generate_square_subsequent_mask(4))
    x = np.zeros((2, 5, 4), np.float32)
    assert vtt._get_seq_len(vt.from_numpy(x), True) == tt._get_seq_len(torch.from_numpy(x), True) == 5
    assert vtt._get_seq_len(vt.from_numpy(x), False) == tt._get_seq_len(torch.from_numpy(x), False) == 2
    assert vtt._get_seq_len(vt.from_numpy(x[0]), False) == tt._get_seq_len(torch.from_numpy(x[0]), False) == 5
    cm = np.triu(np.full((5, 5), -np.inf, np.float32), 1)
    for hint in (None, True, False):
        assert vtt._detect_is_causal_mask(vt.from_numpy(cm), hint, 5) == tt._detect_is_causal_mask(
            torch.from_numpy(cm), hint, 5)
    assert vtt._detect_is_causal_mask(vt.from_numpy(cm)) is tt._detect_is_causal_mask(torch.from_numpy(cm)) is True
    assert vtt._detect_is_causal_mask(None) is tt._detect_is_causal_mask(None) is False
