"""MultiheadAttention, Transformer encoder/decoder layers and stacks, RNN/LSTM/GRU and their cells against torch:
the torch module's state_dict loaded into the vt one (and back), then outputs and float64 gradients of the inputs
and of every parameter compared for each option, plus parameter names, init and the argument errors."""
import warnings

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

TOL = dict(rtol=1e-9, atol=1e-10)


def to_vt(t):
    return vt.from_numpy(t.detach().numpy().copy())


def to_np(x):
    return x.detach().numpy()


def pair(vmod, tmod):
    """Float64 copies of both with torch's weights, checking the state_dict keys and the way back."""
    tmod = tmod.double()
    vmod = vmod.double()
    assert list(vmod.state_dict()) == list(tmod.state_dict())
    assert [n for n, _ in vmod.named_parameters()] == [n for n, _ in tmod.named_parameters()]
    with torch.no_grad():  # torch's zero-initialised biases would hide bias gradients and bias bugs
        for p in tmod.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    vmod.load_state_dict({k: to_vt(v) for k, v in tmod.state_dict().items()})
    back = {k: torch.from_numpy(to_np(v).copy()) for k, v in vmod.state_dict().items()}
    for k, v in tmod.state_dict().items():
        assert torch.equal(back[k], v), k
    return vmod, tmod


def flat(out):
    if out is None:
        return []
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flat(o)]
    return [out]


def leaf(rng, shape):
    a = rng.standard_normal(shape)
    return vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_()


def compare(vmod, tmod, vin, tin, vkw=None, tkw=None):
    """Calls both modules, compares every output, backpropagates the same random upstream gradients and compares
    the gradients of the inputs that require them and of every parameter."""
    out_v, out_t = vmod(*vin, **(vkw or {})), tmod(*tin, **(tkw or {}))
    fv, ft = flat(out_v), flat(out_t)
    assert len(fv) == len(ft) and (out_v is None) == (out_t is None)
    rng = np.random.default_rng(7)
    lv = lt = 0
    for a, b in zip(fv, ft):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(to_np(a), to_np(b), **TOL)
        g = rng.standard_normal(tuple(b.shape))
        lv = lv + (a * vt.from_numpy(g.copy())).sum()
        lt = lt + (b * torch.from_numpy(g.copy())).sum()
    lt.backward()
    lv.backward()
    for i, (a, b) in enumerate(zip(vin, tin)):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            np.testing.assert_allclose(to_np(a.grad), to_np(b.grad), **TOL, err_msg=f"input {i}")
    vp = dict(vmod.named_parameters())
    for name, p in tmod.named_parameters():
        if p.grad is None:
            assert vp[name].grad is None or not to_np(vp[name].grad).any(), name
        else:
            np.testing.assert_allclose(to_np(vp[name].grad), to_np(p.grad), **TOL, err_msg=name)
    return out_v, out_t


def mask_pair(a):
    return vt.from_numpy(a.copy()), torch.from_numpy(a.copy())


# ---------------- MultiheadAttention ----------------

def test_mha_names_init_repr():
    v, t = vt.nn.MultiheadAttention(8, 2), torch.nn.MultiheadAttention(8, 2)
    assert list(v.state_dict()) == list(t.state_dict())
    assert [tuple(p.shape) for p in v.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert repr(v) == repr(t)
    assert not to_np(v.in_proj_bias).any() and not to_np(v.out_proj.bias).any()
    bound = np.sqrt(6.0 / (8 + 24))
    w = to_np(v.in_proj_weight)
    assert np.abs(w).max() <= bound and w.std() > bound / 4
    v2, t2 = vt.nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False), torch.nn.MultiheadAttention(
        8, 2, kdim=3, vdim=5, bias=False)
    assert list(v2.state_dict()) == list(t2.state_dict())
    assert v2.in_proj_weight is None and v2.in_proj_bias is None and tuple(v2.k_proj_weight.shape) == (8, 3)
    v3, t3 = vt.nn.MultiheadAttention(8, 2, add_bias_kv=True), torch.nn.MultiheadAttention(8, 2, add_bias_kv=True)
    assert list(v3.state_dict()) == list(t3.state_dict())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("masks", ["none", "attn_bool", "attn_float", "kpm", "both", "attn3d", "kpm_float"])
def test_mha_matches_torch(batch_first, need_weights, average, masks):
    rng = np.random.default_rng(0)
    E, H, L, S, N = 8, 2, 3, 5, 2
    vm, tm = pair(vt.nn.MultiheadAttention(E, H, batch_first=batch_first),
                  torch.nn.MultiheadAttention(E, H, batch_first=batch_first))
    lay = (lambda n, s: (n, s, E)) if batch_first else (lambda n, s: (s, n, E))
    (vq, tq), (vk, tk), (vv, tv) = leaf(rng, lay(N, L)), leaf(rng, lay(N, S)), leaf(rng, lay(N, S))
    kw_v, kw_t = dict(need_weights=need_weights, average_attn_weights=average), {}
    kw_t.update(kw_v)
    am = rng.random((L, S)) < 0.3
    am[:, 0] = False  # every query keeps a key
    kpm = np.zeros((N, S), bool)
    kpm[0, -2:] = True
    if masks in ("attn_bool", "both"):
        kw_v["attn_mask"], kw_t["attn_mask"] = mask_pair(am)
    if masks == "attn_float":
        kw_v["attn_mask"], kw_t["attn_mask"] = mask_pair(rng.standard_normal((L, S)))
    if masks == "attn3d":
        kw_v["attn_mask"], kw_t["attn_mask"] = mask_pair(rng.standard_normal((N * H, L, S)))
    if masks in ("kpm", "both"):
        kw_v["key_padding_mask"], kw_t["key_padding_mask"] = mask_pair(kpm)
    if masks == "kpm_float":
        kw_v["key_padding_mask"], kw_t["key_padding_mask"] = mask_pair(rng.standard_normal((N, S)))
    out_v, out_t = compare(vm, tm, (vq, vk, vv), (tq, tk, tv), kw_v, kw_t)
    assert (out_v[1] is None) == (not need_weights)


@pytest.mark.parametrize("opts", [dict(kdim=3, vdim=6), dict(bias=False), dict(add_bias_kv=True),
                                  dict(add_zero_attn=True), dict(add_bias_kv=True, add_zero_attn=True, kdim=4)])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_options(opts, need_weights):
    rng = np.random.default_rng(1)
    E, H, L, S, N = 6, 3, 4, 3, 2
    vm, tm = pair(vt.nn.MultiheadAttention(E, H, **opts), torch.nn.MultiheadAttention(E, H, **opts))
    (vq, tq) = leaf(rng, (L, N, E))
    (vk, tk) = leaf(rng, (S, N, opts.get("kdim", E)))
    (vv, tv) = leaf(rng, (S, N, opts.get("vdim", E)))
    kpm = np.zeros((N, S), bool)
    kpm[1, 0] = True
    am = rng.standard_normal((L, S))
    (vkp, tkp), (vam, tam) = mask_pair(kpm), mask_pair(am)
    compare(vm, tm, (vq, vk, vv), (tq, tk, tv),
            dict(key_padding_mask=vkp, attn_mask=vam, need_weights=need_weights),
            dict(key_padding_mask=tkp, attn_mask=tam, need_weights=need_weights))


def test_mha_unbatched_causal_and_dropout():
    rng = np.random.default_rng(2)
    E, H, L = 4, 2, 5
    vm, tm = pair(vt.nn.MultiheadAttention(E, H, dropout=0.5), torch.nn.MultiheadAttention(E, H, dropout=0.5))
    vm.eval(), tm.eval()  # dropout off
    (vx, tx) = leaf(rng, (L, E))
    causal = np.triu(np.ones((L, L), bool), 1)
    (vc, tc) = mask_pair(causal)
    kpm = np.zeros(L, bool)
    kpm[-1] = True
    (vk, tk) = mask_pair(kpm)
    for nw in (True, False):
        compare(vm, tm, (vx, vx, vx), (tx, tx, tx), dict(attn_mask=vc, is_causal=True, need_weights=nw),
                dict(attn_mask=tc, is_causal=True, need_weights=nw))
        compare(vm, tm, (vx, vx, vx), (tx, tx, tx), dict(key_padding_mask=vk, need_weights=nw),
                dict(key_padding_mask=tk, need_weights=nw))
    vm.train()
    x = vt.ones(L, 1, E, dtype=vt.float64)
    a, b = vm(x, x, x)[0], vm(x, x, x)[0]
    assert not np.allclose(to_np(a), to_np(b))  # dropout active in training


def test_mha_errors():
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        vt.nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="greater than 0"):
        vt.nn.MultiheadAttention(0, 2)
    m = vt.nn.MultiheadAttention(8, 2)
    with pytest.raises(AssertionError, match="expecting embedding dimension of 8, but got 6"):
        x = vt.randn(3, 2, 6)
        m(x, x, x)
    with pytest.raises(AssertionError, match="unbatched 2D or batched 3D"):
        x = vt.randn(1, 3, 2, 8)
        m(x, x, x)
    with pytest.raises(AssertionError, match="expected `key` and `value` to be 3-D"):
        m(vt.randn(3, 2, 8), vt.randn(3, 8), vt.randn(3, 8))
    x = vt.randn(3, 2, 8)
    with pytest.raises(RuntimeError, match="shape of the 2D attn_mask"):
        m(x, x, x, attn_mask=vt.zeros(2, 2))
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        m(x, x, x, is_causal=True)


# ---------------- Transformer layers ----------------

@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "callable"])
def test_encoder_layer(norm_first, batch_first, activation):
    rng = np.random.default_rng(3)
    act = {"relu": ("relu", "relu"), "gelu": ("gelu", "gelu"),
           "callable": (vt.nn.functional.silu, torch.nn.functional.silu)}[activation]
    kw = dict(dim_feedforward=12, dropout=0.0, batch_first=batch_first, norm_first=norm_first)
    vm, tm = pair(vt.nn.TransformerEncoderLayer(8, 2, activation=act[0], **kw),
                  torch.nn.TransformerEncoderLayer(8, 2, activation=act[1], **kw))
    shape = (2, 5, 8) if batch_first else (5, 2, 8)  # batch 2, length 5
    (vx, tx) = leaf(rng, shape)
    kpm = np.zeros((2, 5), bool)
    kpm[1, 3:] = True
    (vk, tk) = mask_pair(kpm)
    compare(vm, tm, (vx,), (tx,), dict(src_key_padding_mask=vk), dict(src_key_padding_mask=tk))
    (vc, tc) = mask_pair(np.triu(np.full((5, 5), -np.inf), 1))
    vm.zero_grad(), tm.zero_grad()
    (vx, tx) = leaf(rng, shape)
    compare(vm, tm, (vx,), (tx,), dict(src_mask=vc, is_causal=True), dict(src_mask=tc, is_causal=True))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_decoder_layer(norm_first, bias):
    rng = np.random.default_rng(4)
    kw = dict(dim_feedforward=10, dropout=0.0, norm_first=norm_first, bias=bias, batch_first=True)
    vm, tm = pair(vt.nn.TransformerDecoderLayer(6, 3, **kw), torch.nn.TransformerDecoderLayer(6, 3, **kw))
    (vx, tx), (vmem, tmem) = leaf(rng, (2, 4, 6)), leaf(rng, (2, 3, 6))
    causal = np.triu(np.ones((4, 4), bool), 1)
    mkpm = np.array([[False, False, True], [False, False, False]])
    (vc, tc), (vk, tk) = mask_pair(causal), mask_pair(mkpm)
    compare(vm, tm, (vx, vmem), (tx, tmem), dict(tgt_mask=vc, memory_key_padding_mask=vk, tgt_is_causal=True),
            dict(tgt_mask=tc, memory_key_padding_mask=tk, tgt_is_causal=True))


def test_encoder_decoder_stacks():
    rng = np.random.default_rng(5)
    kw = dict(dim_feedforward=8, dropout=0.0)
    ve = vt.nn.TransformerEncoder(vt.nn.TransformerEncoderLayer(4, 2, **kw), 2, norm=vt.nn.LayerNorm(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        te = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(4, 2, **kw), 2, norm=torch.nn.LayerNorm(4))
    assert ve.layers[0].linear1.weight.data_ptr() != ve.layers[1].linear1.weight.data_ptr()
    vm, tm = pair(ve, te)
    (vx, tx) = leaf(rng, (3, 2, 4))
    compare(vm, tm, (vx,), (tx,))
    vd, td = pair(vt.nn.TransformerDecoder(vt.nn.TransformerDecoderLayer(4, 2, **kw), 2),
                  torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(4, 2, **kw), 2))
    (vx, tx), (vmem, tmem) = leaf(rng, (3, 2, 4)), leaf(rng, (5, 2, 4))
    compare(vd, td, (vx, vmem), (tx, tmem))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_model(batch_first, norm_first):
    rng = np.random.default_rng(13)
    kw = dict(d_model=4, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=6, dropout=0.0,
              batch_first=batch_first, norm_first=norm_first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vm, tm = pair(vt.nn.Transformer(**kw), torch.nn.Transformer(**kw))
    (vs, ts) = leaf(rng, (2, 5, 4) if batch_first else (5, 2, 4))
    (vg, tg) = leaf(rng, (2, 3, 4) if batch_first else (3, 2, 4))
    vmask, tmask = vt.nn.Transformer.generate_square_subsequent_mask(3), \
        torch.nn.Transformer.generate_square_subsequent_mask(3)
    np.testing.assert_array_equal(to_np(vmask), tmask.numpy())
    assert vmask.dtype == vt.float32
    kpm = np.zeros((2, 5), bool)
    kpm[0, 4] = True
    (vk, tk) = mask_pair(kpm)
    compare(vm, tm, (vs, vg), (ts, tg),
            dict(tgt_mask=vmask.double(), src_key_padding_mask=vk, memory_key_padding_mask=vk, tgt_is_causal=True),
            dict(tgt_mask=tmask.double(), src_key_padding_mask=tk, memory_key_padding_mask=tk, tgt_is_causal=True))
    with pytest.raises(RuntimeError, match="feature number of src and tgt must be equal to d_model"):
        vm(vt.randn(2, 2, 3, dtype=vt.float64), vt.randn(2, 2, 3, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        vm(vt.randn(5, 5, 4, dtype=vt.float64), vt.randn(3, 3, 4, dtype=vt.float64))


def test_encoder_layer_unbatched():
    rng = np.random.default_rng(14)
    vm, tm = pair(vt.nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0), torch.nn.TransformerEncoderLayer(4, 2, 8,
                                                                                                          dropout=0.0))
    (vx, tx) = leaf(rng, (3, 4))
    compare(vm, tm, (vx,), (tx,))


def test_transformer_errors():
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        vt.nn.TransformerEncoderLayer(4, 2, activation="tanh")
    with pytest.raises(AssertionError, match="divisible by num_heads"):
        vt.nn.TransformerEncoderLayer(6, 4)


# ---------------- RNN / LSTM / GRU ----------------

RNN_KINDS = ["LSTM", "GRU", "RNN", "RNN_relu"]


def make_rnn(m, kind, *args, **kw):
    if kind == "RNN_relu":
        return m.nn.RNN(*args, nonlinearity="relu", **kw)
    return getattr(m.nn, kind)(*args, **kw)


def init_state(rng, kind, shape):
    h = leaf(rng, shape)
    if kind != "LSTM":
        return h
    c = leaf(rng, shape)
    return (h[0], c[0]), (h[1], c[1])


@pytest.mark.parametrize("kind", RNN_KINDS)
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, False), (1, True), (3, True)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("given_state", [False, True])
def test_rnn_matches_torch(kind, num_layers, bidirectional, batch_first, given_state):
    rng = np.random.default_rng(6)
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    vm, tm = pair(make_rnn(vt, kind, 3, 5, **kw), make_rnn(torch, kind, 3, 5, **kw))
    L, N = 4, 2
    (vx, tx) = leaf(rng, (N, L, 3) if batch_first else (L, N, 3))
    vin, tin = [vx], [tx]
    if given_state:
        vs, ts = init_state(rng, kind, (num_layers * (2 if bidirectional else 1), N, 5))
        vin.append(vs), tin.append(ts)
    compare(vm, tm, vin, tin)
    if given_state and kind == "LSTM":  # the states' own gradients
        for a, b in zip(vin[1], tin[1]):
            np.testing.assert_allclose(to_np(a.grad), to_np(b.grad), **TOL)


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("given_state", [False, True])
@pytest.mark.parametrize("batched", [False, True])
def test_lstm_proj_size(num_layers, bidirectional, given_state, batched):
    rng = np.random.default_rng(11)
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, proj_size=3)
    vm, tm = pair(vt.nn.LSTM(2, 5, **kw), torch.nn.LSTM(2, 5, **kw))
    assert repr(vm) == repr(tm)
    (vx, tx) = leaf(rng, (4, 2, 2) if batched else (4, 2))
    vin, tin = [vx], [tx]
    if given_state:
        d = num_layers * (2 if bidirectional else 1)
        (vh, th), (vc, tc) = leaf(rng, (d, 2, 3) if batched else (d, 3)), leaf(rng, (d, 2, 5) if batched else (d, 5))
        vin.append((vh, vc)), tin.append((th, tc))
    compare(vm, tm, vin, tin)
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(1, 2, 3\), got \[1, 2, 5\]"):
        vt.nn.LSTM(2, 5, proj_size=3)(vt.randn(4, 2, 2), (vt.zeros(1, 2, 5), vt.zeros(1, 2, 5)))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_rnn_empty_batch(kind):
    rng = np.random.default_rng(12)
    vm, tm = pair(make_rnn(vt, kind, 3, 4, num_layers=2), make_rnn(torch, kind, 3, 4, num_layers=2))
    (vx, tx) = leaf(rng, (5, 0, 3))
    compare(vm, tm, (vx,), (tx,))


@pytest.mark.parametrize("kind", RNN_KINDS)
def test_rnn_unbatched_no_bias_and_repr(kind):
    rng = np.random.default_rng(8)
    vm, tm = pair(make_rnn(vt, kind, 2, 3, bias=False, num_layers=2, bidirectional=True),
                  make_rnn(torch, kind, 2, 3, bias=False, num_layers=2, bidirectional=True))
    assert repr(vm) == repr(tm)
    (vx, tx) = leaf(rng, (5, 2))
    vs, ts = init_state(rng, kind, (4, 3))
    compare(vm, tm, (vx, vs), (tx, ts))
    (vx, tx) = leaf(rng, (1, 2))  # one step, no state given
    vm.zero_grad(), tm.zero_grad()
    compare(vm, tm, (vx,), (tx,))


def test_rnn_init_and_dropout():
    m = vt.nn.LSTM(4, 16, num_layers=2)
    for p in m.parameters():
        a = to_np(p)
        assert np.abs(a).max() <= 0.25 and a.std() > 0.25 / 4
    assert repr(vt.nn.GRU(3, 4, num_layers=2, dropout=0.5, batch_first=True)) == repr(
        torch.nn.GRU(3, 4, num_layers=2, dropout=0.5, batch_first=True))
    m = vt.nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = vt.randn(6, 2, 3)
    assert not np.allclose(to_np(m(x)[0]), to_np(m(x)[0]))
    m.eval()
    np.testing.assert_array_equal(to_np(m(x)[0]), to_np(m(x)[0]))
    with pytest.warns(UserWarning, match="dropout"):
        vt.nn.LSTM(2, 3, dropout=0.2)


def test_rnn_errors():
    m = vt.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="LSTM: Expected input to be 2D or 3D, got 4D"):
        m(vt.randn(1, 2, 3, 3))
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 5"):
        m(vt.randn(2, 2, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got \[1, 2, 4\]"):
        m(vt.randn(2, 2, 3), (vt.zeros(1, 2, 4), vt.zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match="hx and cx should also be 3-D"):
        m(vt.randn(2, 2, 3), (vt.zeros(2, 4), vt.zeros(2, 4)))
    g = vt.nn.GRU(3, 4)
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 4\), got \[1, 3, 4\]"):
        g(vt.randn(2, 2, 3), vt.zeros(1, 3, 4))
    with pytest.raises(RuntimeError, match="hx should also be 2-D"):
        g(vt.randn(2, 3), vt.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="dropout should be a number"):
        vt.nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        vt.nn.GRU(3, 0)
    with pytest.raises(ValueError, match="num_layers must be greater than zero"):
        vt.nn.GRU(3, 2, num_layers=0)
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        vt.nn.RNN(3, 2, nonlinearity="gelu")
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0"):
        vt.nn.GRU(3, 2)(vt.randn(0, 2, 3))
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        vt.nn.LSTM(3, 2, proj_size=2)
    with pytest.raises(ValueError, match="proj_size should be a positive integer"):
        vt.nn.LSTM(3, 2, proj_size=-1)


@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell"])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("given_state", [True, False])
def test_cells(kind, batched, given_state):
    rng = np.random.default_rng(9)
    vm, tm = pair(getattr(vt.nn, kind)(3, 4), getattr(torch.nn, kind)(3, 4))
    assert repr(vm) == repr(tm)
    (vx, tx) = leaf(rng, (2, 3) if batched else (3,))
    vin, tin = [vx], [tx]
    if given_state:
        vs, ts = init_state(rng, "LSTM" if kind == "LSTMCell" else kind, (2, 4) if batched else (4,))
        vin.append(vs), tin.append(ts)
    compare(vm, tm, vin, tin)


def test_cell_nonlinearity_and_errors():
    vm, tm = pair(vt.nn.RNNCell(3, 2, nonlinearity="relu", bias=False),
                  torch.nn.RNNCell(3, 2, nonlinearity="relu", bias=False))
    assert repr(vm) == repr(tm)
    rng = np.random.default_rng(10)
    (vx, tx) = leaf(rng, (4, 3))
    compare(vm, tm, (vx,), (tx,))
    with pytest.raises(ValueError, match="Expected input to be 1D or 2D"):
        vt.nn.GRUCell(3, 2)(vt.randn(1, 2, 3))
