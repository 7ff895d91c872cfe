"""F.multi_head_attention_forward against torch's: outputs, attention weights and float64 gradients for packed and
separate projection weights, bias_k/bias_v, add_zero_attn, bool/float 2-D/3-D attention masks, key padding masks,
need_weights on and off, per-head weights, unbatched inputs, static_k/static_v, is_causal, and torch's errors;
nn.MultiheadAttention runs through it."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import vibetensor.torch as vt
from vibetensor.torch.nn.functional_mha import multi_head_attention_forward as mha

E, H, L, S, N = 6, 2, 4, 5, 3


def _pair(a):
    return vt.from_numpy(a.copy()).requires_grad_(), torch.from_numpy(a.copy()).requires_grad_()


def _np(t):
    return t.detach().numpy()


def _case(seed, separate=False, bias=True, bias_kv=False, kdim=E, batched=True):
    rng = np.random.default_rng(seed)
    shp = (lambda n: (n, N, E)) if batched else (lambda n: (n, E))
    kshp = (S, N, kdim) if batched else (S, kdim)
    t = {"q": rng.standard_normal(shp(L)), "k": rng.standard_normal(kshp), "v": rng.standard_normal(kshp),
         "ow": rng.standard_normal((E, E)) * 0.4}
    if separate:
        t.update(qw=rng.standard_normal((E, E)) * 0.4, kw=rng.standard_normal((E, kdim)) * 0.4,
                 vw=rng.standard_normal((E, kdim)) * 0.4)
    else:
        t["iw"] = rng.standard_normal((3 * E, E)) * 0.4
    if bias:
        t.update(ib=rng.standard_normal(3 * E) * 0.1, ob=rng.standard_normal(E) * 0.1)
    if bias_kv:
        t.update(bk=rng.standard_normal((1, 1, E)), bv=rng.standard_normal((1, 1, E)))
    return {k: _pair(v) for k, v in t.items()}


def _call(side, T, kw, **extra):
    i = 0 if side == "vt" else 1
    g = lambda n: T[n][i] if n in T else None  # noqa: E731
    fn = mha if side == "vt" else TF.multi_head_attention_forward
    return fn(g("q"), g("k"), g("v"), E, H, g("iw"), g("ib"), g("bk"), g("bv"), kw.get("add_zero_attn", False), 0.0,
              g("ow"), g("ob"), use_separate_proj_weight="qw" in T, q_proj_weight=g("qw"), k_proj_weight=g("kw"),
              v_proj_weight=g("vw"), **{k: v for k, v in kw.items() if k != "add_zero_attn"}, **extra)


def _compare(T, kw_vt, kw_t=None):
    kw_t = kw_vt if kw_t is None else kw_t
    ov, wv = _call("vt", T, kw_vt)
    ot, wt = _call("torch", T, kw_t)
    np.testing.assert_allclose(_np(ov), _np(ot), rtol=1e-10, atol=1e-12)
    assert (wv is None) == (wt is None)
    if wt is not None:
        np.testing.assert_allclose(_np(wv), _np(wt), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(9).standard_normal(tuple(ot.shape))
    loss_t = (ot * torch.from_numpy(g)).sum() + (wt.sum() * 0.3 if wt is not None else 0)
    loss_v = (ov * vt.from_numpy(g)).sum() + (wv.sum() * 0.3 if wv is not None else 0)
    loss_t.backward()
    loss_v.backward()
    for name, (a, b) in T.items():
        if b.grad is None:
            assert a.grad is None or np.all(a.grad.numpy() == 0), name
        else:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def _masks(seed, batched=True):
    rng = np.random.default_rng(seed)
    am_bool = rng.random((L, S)) < 0.3
    am_bool[:, 0] = False  # every query keeps a key
    kpm = rng.random((N, S) if batched else (S,)) < 0.3
    kpm[..., 1] = False
    return am_bool, kpm


@pytest.mark.parametrize("separate", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("average", [False, True])
def test_plain(separate, bias, need_weights, average):
    T = _case(0, separate, bias, kdim=E if not separate else 4)
    _compare(T, dict(need_weights=need_weights, average_attn_weights=average))


@pytest.mark.parametrize("mask_kind", ["bool2", "float2", "float3", "kpm_bool", "kpm_float", "both"])
@pytest.mark.parametrize("extra", ["none", "bias_kv", "zero_attn", "bias_kv+zero_attn"])
@pytest.mark.parametrize("need_weights", [False, True])
def test_masks_bias_kv_zero_attn(mask_kind, extra, need_weights):
    T = _case(1, bias_kv="bias_kv" in extra)
    am_bool, kpm = _masks(2)
    am_float = np.where(am_bool, -1e4, np.random.default_rng(3).standard_normal((L, S)) * 0.1)
    am3 = np.random.default_rng(4).standard_normal((N * H, L, S))
    kw = dict(need_weights=need_weights, add_zero_attn="zero_attn" in extra)
    kv, kt = dict(kw), dict(kw)
    if mask_kind in ("bool2", "both"):
        kv["attn_mask"], kt["attn_mask"] = vt.from_numpy(am_bool), torch.from_numpy(am_bool)
    if mask_kind == "float2":
        kv["attn_mask"], kt["attn_mask"] = vt.from_numpy(am_float), torch.from_numpy(am_float)
    if mask_kind == "float3":
        kv["attn_mask"], kt["attn_mask"] = vt.from_numpy(am3), torch.from_numpy(am3)
    if mask_kind in ("kpm_bool", "both"):
        kv["key_padding_mask"], kt["key_padding_mask"] = vt.from_numpy(kpm), torch.from_numpy(kpm)
    if mask_kind == "kpm_float":
        f = np.where(kpm, -1e4, 0.0)
        kv["key_padding_mask"], kt["key_padding_mask"] = vt.from_numpy(f), torch.from_numpy(f)
    _compare(T, kv, kt)


@pytest.mark.parametrize("need_weights", [False, True])
def test_unbatched(need_weights):
    T = _case(5, batched=False, bias_kv=True)
    am_bool, kpm = _masks(6, batched=False)
    _compare(T, dict(need_weights=need_weights, key_padding_mask=vt.from_numpy(kpm), attn_mask=vt.from_numpy(am_bool)),
             dict(need_weights=need_weights, key_padding_mask=torch.from_numpy(kpm),
                  attn_mask=torch.from_numpy(am_bool)))


@pytest.mark.parametrize("zero_attn", [False, True])
def test_static_kv(zero_attn):
    T = _case(7)
    rng = np.random.default_rng(8)
    T["sk"] = _pair(rng.standard_normal((N * H, 7, E // H)))
    T["sv"] = _pair(rng.standard_normal((N * H, 7, E // H)))
    ov, wv = _call("vt", T, dict(add_zero_attn=zero_attn), static_k=T["sk"][0], static_v=T["sv"][0])
    ot, wt = _call("torch", T, dict(add_zero_attn=zero_attn), static_k=T["sk"][1], static_v=T["sv"][1])
    np.testing.assert_allclose(_np(ov), _np(ot), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(wv), _np(wt), rtol=1e-10, atol=1e-12)
    ot.sum().backward()
    ov.sum().backward()
    for name in ("sk", "sv", "q", "iw"):
        np.testing.assert_allclose(T[name][0].grad.numpy(), T[name][1].grad.numpy(), rtol=1e-9, atol=1e-11)


def test_is_causal():
    T = _case(9)
    m = np.triu(np.ones((L, S), bool), 1)
    _compare(T, dict(need_weights=False, attn_mask=vt.from_numpy(m), is_causal=True),
             dict(need_weights=False, attn_mask=torch.from_numpy(m), is_causal=True))


def test_module_runs_through_functional(monkeypatch):
    import vibetensor.torch.nn.attention_layers as A

    calls = []
    real = A.multi_head_attention_forward
    monkeypatch.setattr(A, "multi_head_attention_forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    m = vt.nn.MultiheadAttention(E, H, batch_first=True)
    x = vt.from_numpy(np.random.default_rng(0).standard_normal((N, L, E)).astype(np.float32))
    out, w = m(x, x, x)
    assert calls and tuple(out.shape) == (N, L, E) and tuple(w.shape) == (N, L, L)


@pytest.mark.parametrize("case", range(6))
def test_errors_match_torch(case):
    T = _case(10)
    kv, kt = {}, {}
    edim = 8 if case == 0 else E  # case 0: a wrong embed_dim_to_check
    if case == 1:
        kv["attn_mask"], kt["attn_mask"] = vt.zeros(L, S + 1, dtype=vt.float64), torch.zeros(L, S + 1,
                                                                                            dtype=torch.float64)
    if case == 2:
        kv["attn_mask"], kt["attn_mask"] = vt.zeros(2, L, S, dtype=vt.float64), torch.zeros(2, L, S,
                                                                                            dtype=torch.float64)
    if case == 3:
        kv["key_padding_mask"], kt["key_padding_mask"] = vt.zeros(N, S + 1, dtype=vt.bool), torch.zeros(
            N, S + 1, dtype=torch.bool)
    if case == 4:
        kv["is_causal"] = kt["is_causal"] = True
    errs = []
    for side, kw in (("torch", kt), ("vt", kv)):
        i = 0 if side == "vt" else 1
        fn = mha if side == "vt" else TF.multi_head_attention_forward
        qq = T["q"][i] if case != 5 else T["q"][i].unsqueeze(0)  # case 5: a 4-D query
        with pytest.raises(Exception) as e:
            fn(qq, T["k"][i], T["v"][i], edim, H, T["iw"][i], T["ib"][i], None, None, False, 0.0, T["ow"][i],
               T["ob"][i], **kw)
        errs.append(e)
    assert errs[1].type is errs[0].type, (errs[0].value, errs[1].value)
