"""vt.nn.attention.flex_attention and vt.nn.attention.bias against torch: flex_attention's output and lse
against torch's own flex_attention (its CPU eager path, forward only: torch has no CPU backward for it), and
float64 gradients (q, k, v, the lse and a tensor captured by score_mod) against a torch reference that calls
score_mod / mask_mod per scalar index under vmap, as torch does (checked against torch's flex_attention output in
the same test); create_block_mask's block tables, create_mask, and_masks / or_masks; CausalBias through
F.scaled_dot_product_attention; the errors torch raises."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.attention.bias as tbias
import torch.nn.attention.flex_attention as tfa
from torch._dynamo._trace_wrapped_higher_order_op import TransformGetItemToIndex

import vibetensor.torch as vt
import vibetensor.torch.nn.functional as vF
from vibetensor.torch.nn.attention import bias as vbias
from vibetensor.torch.nn.attention import flex_attention as vfa

from ag_helpers import leaves, to_np

TOL = dict(rtol=1e-9, atol=1e-11)
pytestmark = pytest.mark.filterwarnings("ignore")


def _torch_flex(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            return tfa.flex_attention(*args, **kw)


def _vmap_mod(fn, prefix):
    """fn applied per scalar (b, h, q_idx, kv_idx), vectorised over the grid (prefix: the score's in_dim)."""
    for i in (3, 2, 1, 0):
        dims = [None] * 4
        dims[i] = 0
        fn = torch.func.vmap(fn, in_dims=prefix + tuple(dims))
    return fn


def _torch_ref(q, k, v, score_mod, mask_mod, scale=None, gqa=False):
    """The dense reference: per-index score_mod / mask_mod (vmap), a masked softmax (0 / -inf for empty rows)."""
    B, H, L, E = q.shape
    S = k.shape[2]
    if gqa:
        k, v = (t.repeat_interleave(H // k.shape[1], 1) for t in (k, v))
    scale = E ** -0.5 if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    idx = [torch.arange(n) for n in (B, H, L, S)]
    with TransformGetItemToIndex():
        if score_mod is not None:
            s = _vmap_mod(score_mod, (0,))(s, *idx)
        if mask_mod is not None:
            s = torch.where(_vmap_mod(mask_mod, ())(*idx), s, float("-inf"))
    m = s.detach().amax(-1, keepdim=True)
    m = torch.where(m.isinf(), 0.0, m)
    e = (s - m).exp()
    d = e.sum(-1, keepdim=True)
    safe = torch.where(d == 0, 1.0, d)
    return (e / safe) @ v, torch.where(d == 0, float("-inf"), safe.log() + m).squeeze(-1)


def _caps(m, pairs, names):
    return {n: p[0 if m is vt else 1] for n, p in zip(names, pairs)}


# Families of score_mod / mask_mod, each written once against module m (torch or vt) and captured tensors c.
def _relpos(m, c):
    return lambda score, b, h, q_idx, kv_idx: score + (q_idx - kv_idx) * 0.1, None


def _alibi(m, c):
    slopes = m.tensor([2.0 ** -(i + 1) for i in range(8)], dtype=m.float64)
    return lambda score, b, h, q_idx, kv_idx: score + slopes[h] * (kv_idx - q_idx), None


def _softcap(m, c):
    return lambda score, b, h, q_idx, kv_idx: 0.7 * m.tanh(score / 0.7), None


def _bias_hqk(m, c):
    return lambda score, b, h, q_idx, kv_idx: score + c["bias"][h, q_idx, kv_idx], None


def _bias_b(m, c):
    return lambda score, b, h, q_idx, kv_idx: score * c["bscale"][b] + c["qbias"][q_idx], None


def _causal(m, c):
    return None, lambda b, h, q_idx, kv_idx: q_idx >= kv_idx


def _causal_score(m, c):
    return lambda score, b, h, q_idx, kv_idx: m.where(q_idx >= kv_idx, score, -float("inf")), None


def _sliding(m, c):
    fa = vfa if m is vt else tfa
    causal = lambda b, h, q_idx, kv_idx: q_idx >= kv_idx  # noqa: E731
    window = lambda b, h, q_idx, kv_idx: q_idx - kv_idx <= 2  # noqa: E731
    return None, fa.and_masks(causal, window)


def _prefix_lm(m, c):
    fa = vfa if m is vt else tfa
    return None, fa.or_masks(lambda b, h, q_idx, kv_idx: kv_idx < 2, lambda b, h, q_idx, kv_idx: q_idx >= kv_idx)


def _document(m, c):
    doc = m.tensor([0, 0, 1, 1, 1, 2, 2])
    return None, lambda b, h, q_idx, kv_idx: doc[q_idx] == doc[kv_idx]


def _empty_rows(m, c):
    return None, lambda b, h, q_idx, kv_idx: q_idx > 2


def _bh_mask(m, c):
    return None, lambda b, h, q_idx, kv_idx: (q_idx + kv_idx + b + 2 * h) % 3 != 0


def _softcap_causal(m, c):
    return _softcap(m, c)[0], _causal(m, c)[1]


def _bias_window(m, c):
    return _bias_hqk(m, c)[0], _sliding(m, c)[1]


def _bh_table_where(m, c):
    def score_mod(score, b, h, q_idx, kv_idx):
        s = m.where(score > 0, score, score * 0.1) - (q_idx - kv_idx).abs().double() ** 2 * 0.05
        return s + c["bias"][b, h, 0] * m.exp(-(kv_idx.double() / 4))
    return score_mod, lambda b, h, q_idx, kv_idx: q_idx // 2 >= kv_idx // 3


FAMILIES = [_bh_table_where, _relpos, _alibi, _softcap, _bias_hqk, _bias_b, _causal, _causal_score, _sliding, _prefix_lm, _document,
            _empty_rows, _bh_mask, _softcap_causal, _bias_window]


def _run(family, B=2, Hq=3, Hkv=3, L=5, S=7, E=4, Ev=3, mask_bh=(None, None), scale=None, seed=0):
    names = ["q", "k", "v", "bias", "bscale", "qbias"]
    shapes = [(B, Hq, L, E), (B, Hkv, S, E), (B, Hkv, S, Ev), (Hq, L, S), (B,), (L,)]
    pairs = leaves(shapes, seed=seed)
    gqa = Hq != Hkv
    outs = {}
    for m, fa in ((torch, tfa), (vt, vfa)):
        c = _caps(m, pairs, names)
        score_mod, mask_mod = family(m, c)
        bm = None if mask_mod is None else fa.create_block_mask(mask_mod, *mask_bh, L, S, device="cpu")
        outs[m] = (score_mod, mask_mod, bm, c)
    ts, tm, tbm, tc = outs[torch]
    vs, vm, vbm, vc = outs[vt]
    o_flex, lse_flex = _torch_flex(tc["q"].detach(), tc["k"].detach(), tc["v"].detach(), score_mod=ts,
                                   block_mask=tbm, scale=scale, enable_gqa=gqa, return_lse=True)
    o_ref, lse_ref = _torch_ref(tc["q"], tc["k"], tc["v"], ts, tm, scale, gqa)
    np.testing.assert_allclose(to_np(o_ref), to_np(o_flex), **TOL)  # the gradient reference is torch's function
    np.testing.assert_allclose(to_np(lse_ref), to_np(lse_flex), **TOL)
    o, lse = vfa.flex_attention(vc["q"], vc["k"], vc["v"], score_mod=vs, block_mask=vbm, scale=scale,
                                enable_gqa=gqa, return_lse=True)
    assert o.dtype == vt.float64 and lse.dtype == vt.float64
    np.testing.assert_allclose(to_np(o), to_np(o_flex), **TOL)
    np.testing.assert_allclose(to_np(lse), to_np(lse_flex), **TOL)
    rng = np.random.default_rng(seed + 1)
    g, g2 = rng.standard_normal(tuple(o_ref.shape)), rng.standard_normal(tuple(lse_ref.shape))
    finite = np.isfinite(to_np(lse_ref))
    ((o_ref * torch.from_numpy(g)).sum() + (torch.where(torch.from_numpy(finite), lse_ref, 0.0)
                                             * torch.from_numpy(g2)).sum()).backward()
    ((o * vt.from_numpy(g)).sum() + (vt.where(vt.from_numpy(finite), lse, 0.0) * vt.from_numpy(g2)).sum()).backward()
    for n, (v, t) in zip(names, pairs):
        if t.grad is None:
            assert v.grad is None, n
            continue
        np.testing.assert_allclose(to_np(v.grad), to_np(t.grad), **TOL, err_msg=n)
    return o, lse, pairs


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__[1:])
def test_families(family):
    o, lse, pairs = _run(family)
    if family in (_bias_hqk, _bias_window):
        assert pairs[3][0].grad is not None  # the captured bias got its gradient through score_mod
    if family is _empty_rows:
        assert np.all(to_np(o)[:, :, :3] == 0) and np.all(np.isneginf(to_np(lse)[:, :, :3]))


@pytest.mark.parametrize("family", [_alibi, _bias_hqk, _causal, _bh_mask, _bias_window], ids=lambda f: f.__name__)
def test_gqa(family):
    _run(family, Hq=6, Hkv=2, L=9, S=4, seed=3)


@pytest.mark.parametrize("mask_bh", [(None, None), (2, None), (None, 3), (2, 3), (1, 1)])
def test_block_mask_batch_head(mask_bh):
    _run(_bh_mask, mask_bh=mask_bh, seed=5)  # torch evaluates mask_mod at the query's b, h whatever B, H


@pytest.mark.parametrize("L,S", [(1, 1), (8, 3), (3, 8), (13, 11)])
def test_lengths_and_scale(L, S):
    _run(_softcap_causal, L=L, S=S, E=5, Ev=2, scale=0.37, seed=L + S)


def test_no_mods_and_empty_query():
    _run(lambda m, c: (None, None), B=1, Hq=1, Hkv=1, seed=7)
    q, k, v = (np.random.default_rng(0).standard_normal(s) for s in [(2, 4, 0, 8), (2, 4, 7, 8), (2, 4, 7, 3)])
    o = vfa.flex_attention(*(vt.from_numpy(a) for a in (q, k, v)))
    assert tuple(o.shape) == tuple(_torch_flex(*(torch.from_numpy(a) for a in (q, k, v))).shape) == (2, 4, 0, 3)


@pytest.mark.parametrize("dt", ["float32", "bfloat16"])
def test_low_precision(dt):
    a = [np.random.default_rng(i).standard_normal(s).astype(np.float32)
         for i, s in enumerate([(2, 2, 5, 8), (2, 2, 6, 8), (2, 2, 6, 4)])]
    tq, tk, tv = (torch.from_numpy(x).to(getattr(torch, dt)) for x in a)
    vq, vk, vv = (vt.from_numpy(x).to(getattr(vt, dt)) for x in a)
    to, tl = _torch_flex(tq, tk, tv, score_mod=lambda s, b, h, q, kv: s + (q - kv), return_lse=True)
    vo, vl = vfa.flex_attention(vq, vk, vv, score_mod=lambda s, b, h, q, kv: s + (q - kv), return_lse=True)
    assert vo.dtype == getattr(vt, dt) and vl.dtype == vt.float32 and tl.dtype == torch.float32
    tol = dict(rtol=1e-5, atol=1e-5) if dt == "float32" else dict(rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(to_np(vo.float()), to_np(to.float()), **tol)
    np.testing.assert_allclose(to_np(vl), to_np(tl), **tol)


def test_return_aux():
    a = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate([(1, 2, 4, 3), (1, 2, 5, 3), (1, 2, 5, 3)])]
    causal = lambda b, h, q, kv: q >= kv  # noqa: E731
    bm = vfa.create_block_mask(causal, None, None, 4, 5, device="cpu")
    o, aux = vfa.flex_attention(*(vt.from_numpy(x) for x in a), block_mask=bm,
                                return_aux=vfa.AuxRequest(lse=True, max_scores=True))
    to, tl = _torch_flex(*(torch.from_numpy(x) for x in a), block_mask=tfa.create_block_mask(causal, None, None, 4, 5,
                         device="cpu"), return_lse=True)
    np.testing.assert_allclose(to_np(o), to_np(to), **TOL)
    np.testing.assert_allclose(to_np(aux.lse), to_np(tl), **TOL)
    s = (a[0] @ np.swapaxes(a[1], -1, -2)) / np.sqrt(3)
    s = np.where(np.tril(np.ones((4, 5), bool)), s, -np.inf)
    np.testing.assert_allclose(to_np(aux.max_scores), s.max(-1), **TOL)
    with pytest.raises(ValueError):
        vfa.flex_attention(*(vt.from_numpy(x) for x in a), return_lse=True, return_aux=vfa.AuxRequest(lse=True))


def _mask_mods():
    doc_t, doc_v = torch.tensor([0] * 40 + [1] * 90 + [2] * 170), vt.tensor([0] * 40 + [1] * 90 + [2] * 170)
    return [
        (lambda b, h, q, kv: q >= kv,) * 2,
        (lambda b, h, q, kv: (q - kv).abs() <= 70 if isinstance(q, torch.Tensor) else (q - kv).abs() <= 70,) * 2,
        (lambda b, h, q, kv: doc_t[q] == doc_t[kv % 300], lambda b, h, q, kv: doc_v[q] == doc_v[kv % 300]),
        (lambda b, h, q, kv: (b + h + q // 100) % 2 == 0,) * 2,
        (tfa.noop_mask, vfa.noop_mask),
    ]


@pytest.mark.parametrize("i", range(5))
@pytest.mark.parametrize("bs", [128, (64, 128), (16, 32), 7])
@pytest.mark.parametrize("bh", [(None, None), (2, 3)])
def test_create_block_mask_tables(i, bs, bh):
    tm, vm = _mask_mods()[i]
    t = tfa.create_block_mask(tm, *bh, 300, 260, device="cpu", BLOCK_SIZE=bs)
    v = vfa.create_block_mask(vm, *bh, 300, 260, device="cpu", BLOCK_SIZE=bs)
    assert v.shape == t.shape and v.BLOCK_SIZE == t.BLOCK_SIZE and v.seq_lengths == t.seq_lengths
    assert v.mask_mod is vm and v.numel() == t.numel()
    for name in ("kv_num_blocks", "full_kv_num_blocks", "q_num_blocks", "full_q_num_blocks"):
        np.testing.assert_array_equal(to_np(getattr(v, name)), to_np(getattr(t, name)), err_msg=name)
    for name in ("kv_indices", "full_kv_indices", "q_indices", "full_q_indices"):  # the listed entries agree
        num = to_np(getattr(v, name.replace("indices", "num_blocks")))
        vi, ti = to_np(getattr(v, name)), to_np(getattr(t, name))
        for idx in np.ndindex(*num.shape):
            np.testing.assert_array_equal(vi[idx][:num[idx]], ti[idx][:num[idx]], err_msg=name)
    np.testing.assert_array_equal(to_np(v.to_dense()), to_np(t.to_dense()))
    assert v.to_dense().dtype == vt.int32
    assert abs(v.sparsity() - t.sparsity()) < 1e-9
    np.testing.assert_array_equal(to_np(vfa.create_mask(vm, *bh, 300, 260, device="cpu")),
                                  to_np(tfa.create_mask(tm, *bh, 300, 260, device="cpu")))
    r = repr(v)
    assert r.startswith("BlockMask(shape=") and f"{v.sparsity():.2f}%" in r
    dense = to_np(v.to_dense())
    pic = v.to_string(grid_size=-1, limit=1).splitlines()
    assert len(pic) == 1 + dense.shape[2] + (2 if dense.shape[0] * dense.shape[1] > 1 else 0)
    assert pic[1:1 + dense.shape[2]] == ["".join("██" if x else "  " for x in row) for row in dense[0, 0]]
    moved = v.to("cpu")
    assert moved.device == v.device and moved.shape == v.shape and moved.mask_mod is vm
    np.testing.assert_array_equal(to_np(moved.kv_indices), to_np(v.kv_indices))


def test_create_mask_score_mod_and_combinators():
    tm = tfa.create_mask(lambda s, b, h, q, kv: torch.where(q >= kv, s, -float("inf")), 2, 1, 4, 6, device="cpu")
    vm = vfa.create_mask(lambda s, b, h, q, kv: vt.where(q >= kv, s, -float("inf")), 2, 1, 4, 6, device="cpu")
    assert vm.dtype == vt.bool and tuple(vm.shape) == (2, 1, 4, 6)
    np.testing.assert_array_equal(to_np(vm), to_np(tm))
    for comb in ("and_masks", "or_masks"):
        for mods in [(), (lambda b, h, q, kv: q > 1,), (lambda b, h, q, kv: q > 1, lambda b, h, q, kv: kv % 2 == 0)]:
            t = tfa.create_mask(getattr(tfa, comb)(*mods), 1, 2, 4, 5, device="cpu")
            v = vfa.create_mask(getattr(vfa, comb)(*mods), 1, 2, 4, 5, device="cpu")
            np.testing.assert_array_equal(to_np(v), to_np(t), err_msg=comb)
        with pytest.raises(RuntimeError):
            getattr(tfa, comb)(lambda *a: True, 3)
        with pytest.raises(RuntimeError):
            getattr(vfa, comb)(lambda *a: True, 3)
    for fa in (tfa, vfa):
        with pytest.raises(AssertionError):
            fa.create_block_mask(lambda s, b, h, q, kv: s, None, None, 4, 4, device="cpu")


def _err_cases():
    g = np.random.default_rng(0).standard_normal
    q, k, v = g((2, 4, 5, 8)), g((2, 4, 7, 8)), g((2, 4, 7, 3))
    causal = lambda b, h, qi, kv: qi >= kv  # noqa: E731
    return [
        ((q, k[:, :2], v[:, :2]), {}, None),
        ((q, k[:, :3], v[:, :3]), dict(enable_gqa=True), None),
        ((q, k[..., :4], v), {}, None),
        ((q[0], k[0], v[0]), {}, None),
        ((q, k[:1], v[:1]), {}, None),
        ((q, k[:1], v[:1]), {}, (None, None, 5, 7)),
        ((q, k, v[:, :, :6]), {}, None),
        ((q, k, v), {}, (None, None, 6, 7)),
        ((q, k, v), {}, (None, None, 5, 9)),
        ((q, k, v), {}, (None, None, 3, 7)),
        ((q, k, v), {}, (None, None, 5, 3)),
    ], causal


@pytest.mark.parametrize("i", range(11))
def test_errors_match_torch(i):
    cases, causal = _err_cases()
    arrays, kw, bm = cases[i]
    tkw, vkw = dict(kw), dict(kw)
    if bm is not None:
        tkw["block_mask"] = tfa.create_block_mask(causal, *bm, device="cpu")
        vkw["block_mask"] = vfa.create_block_mask(causal, *bm, device="cpu")
    with pytest.raises(Exception) as te:
        _torch_flex(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays), **tkw)
    with pytest.raises(type(te.value)):
        vfa.flex_attention(*(vt.from_numpy(np.ascontiguousarray(a)) for a in arrays), **vkw)


def test_kv_batch_broadcast_with_block_mask():
    g = np.random.default_rng(2).standard_normal
    a = [g((2, 2, 5, 4)), g((1, 2, 6, 4)), g((1, 2, 6, 3))]
    mm = lambda b, h, q, kv: (q + b) >= kv  # noqa: E731
    to = _torch_flex(*(torch.from_numpy(x) for x in a), block_mask=tfa.create_block_mask(mm, 2, None, 5, 6, "cpu"))
    vo = vfa.flex_attention(*(vt.from_numpy(x) for x in a), block_mask=vfa.create_block_mask(mm, 2, None, 5, 6, "cpu"))
    np.testing.assert_allclose(to_np(vo), to_np(to), **TOL)


# vt.nn.attention.bias
@pytest.mark.parametrize("variant", ["upper_left", "lower_right"])
@pytest.mark.parametrize("L,S", [(4, 4), (3, 7), (7, 3), (1, 5)])
@pytest.mark.parametrize("gqa", [False, True])
def test_causal_bias_sdpa(variant, L, S, gqa):
    Hkv = 1 if gqa else 3
    pairs = leaves([(2, 3, L, 5), (2, Hkv, S, 5), (2, Hkv, S, 4)], seed=L * 10 + S)
    outs = []
    for m, mod, F in ((torch, tbias, torch.nn.functional), (vt, vbias, vF)):
        q, k, v = (p[0 if m is vt else 1] for p in pairs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mask = getattr(mod, "causal_" + variant)(L, S)
        assert mask.seq_len_q == L and mask.seq_len_kv == S and mask.variant.name == variant.upper()
        np.testing.assert_array_equal(to_np(mask._materialize()), np.tril(np.ones((L, S), bool),
                                      0 if variant == "upper_left" or L == S else S - L))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3, enable_gqa=gqa)
        outs.append(out)
    o_t, o_v = outs[0], outs[1]
    np.testing.assert_allclose(to_np(o_v), to_np(o_t), **TOL)
    g = np.random.default_rng(1).standard_normal(tuple(o_t.shape))
    o_t.backward(torch.from_numpy(g))
    o_v.backward(vt.from_numpy(g))
    for i, (v, t) in enumerate(pairs):
        np.testing.assert_allclose(to_np(v.grad), to_np(t.grad), **TOL, err_msg=str(i))


def test_causal_bias_api_and_errors():
    assert [(e.name, e.value) for e in vbias.CausalVariant] == [(e.name, e.value) for e in tbias.CausalVariant]
    assert repr(vbias.causal_upper_left(2, 3)) == repr(tbias.causal_upper_left(2, 3)).replace("torch.", "vt.")
    with pytest.warns(UserWarning, match="NaNs"):
        vbias.causal_lower_right(4, 2)
    for mod in (tbias, vbias):
        with pytest.raises(AssertionError):
            mod.causal_upper_left(3)
        with pytest.raises(AssertionError):
            mod.causal_lower_right(3, 4, 5)
    with pytest.raises(AssertionError, match="CausalVariant"):  # (torch's Tensor.__new__ raises TypeError first)
        vbias.CausalBias("upper_left", 3, 4)
    q = vt.randn(1, 2, 3, 4)
    with pytest.raises(ValueError):
        vF.scaled_dot_product_attention(q, q, q, attn_mask=vbias.causal_upper_left(3, 3), is_causal=True)
    tq = torch.randn(1, 2, 3, 4)
    with pytest.raises(ValueError):
        torch.nn.functional.scaled_dot_product_attention(tq, tq, tq, attn_mask=tbias.causal_upper_left(3, 3),
                                                         is_causal=True)


@pytest.mark.parametrize("with_full", [False, True])
def test_from_kv_blocks(with_full):
    rng = np.random.default_rng(4)
    num = rng.integers(0, 3, (2, 1, 3)).astype(np.int32)
    idx = np.stack([rng.permutation(3) for _ in range(6)]).reshape(2, 1, 3, 3).astype(np.int32)
    fnum, fidx = (3 - num).astype(np.int32), np.ascontiguousarray(idx[..., ::-1])
    extra = (lambda m: dict(full_kv_num_blocks=m.from_numpy(fnum.copy()), full_kv_indices=m.from_numpy(fidx.copy()))
             if with_full else {})
    mm = lambda b, h, q, kv: (q // 3 + b) % 2 == kv % 2  # noqa: E731
    t = tfa.BlockMask.from_kv_blocks(torch.from_numpy(num.copy()), torch.from_numpy(idx.copy()), BLOCK_SIZE=(4, 3),
                                     mask_mod=mm, seq_lengths=(11, 8), **extra(torch))
    v = vfa.BlockMask.from_kv_blocks(vt.from_numpy(num.copy()), vt.from_numpy(idx.copy()), BLOCK_SIZE=(4, 3),
                                     mask_mod=mm, seq_lengths=(11, 8), **extra(vt))
    assert v.shape == t.shape == (2, 1, 11, 8) and v.BLOCK_SIZE == t.BLOCK_SIZE
    np.testing.assert_array_equal(to_np(v.to_dense()), to_np(t.to_dense()))
    np.testing.assert_array_equal(to_np(v.q_num_blocks), to_np(t.q_num_blocks))
    assert (v.full_kv_num_blocks is None) == (t.full_kv_num_blocks is None) == (not with_full)
    assert abs(v.sparsity() - t.sparsity()) < 1e-9
    a = [rng.standard_normal(s) for s in [(2, 2, 11, 4), (2, 2, 8, 4), (2, 2, 8, 3)]]
    to = _torch_flex(*(torch.from_numpy(x) for x in a), block_mask=t)
    vo = vfa.flex_attention(*(vt.from_numpy(x) for x in a), block_mask=v)  # the mask is mask_mod's, as torch's
    np.testing.assert_allclose(to_np(vo), to_np(to), **TOL)
    d = vfa.BlockMask.from_kv_blocks(vt.from_numpy(num.copy()), vt.from_numpy(idx.copy()))
    assert d.shape == (2, 1, 384, 384) and d.mask_mod is vfa.noop_mask and d.BLOCK_SIZE == (128, 128)
    with pytest.raises(AssertionError):
        vfa.BlockMask.from_kv_blocks(vt.from_numpy(num.copy()), vt.from_numpy(idx.copy()),
                                     full_kv_num_blocks=vt.from_numpy(fnum.copy()))
    with pytest.raises(RuntimeError):
        vfa.BlockMask.from_kv_blocks(vt.from_numpy(num[0, 0, 0:1].copy()), vt.from_numpy(idx[0, 0, 0].copy()))


@pytest.mark.parametrize("variant", ["upper_left", "lower_right"])
@pytest.mark.parametrize("L,S", [(3, 7), (7, 3), (5, 5)])
def test_causal_bias_sdpa_float32_inference(variant, L, S):
    """float32 without gradients: sdpa's tiled CPU kernel serves the upper-left (is_causal) case."""
    a = [np.random.default_rng(0).standard_normal(s).astype(np.float32)
         for s in [(2, 3, L, 8), (2, 3, S, 8), (2, 3, S, 8)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.nn.functional.scaled_dot_product_attention(
            torch.from_numpy(a[0]), *(torch.from_numpy(x) for x in a[1:3]),
            attn_mask=getattr(tbias, "causal_" + variant)(L, S))
        v = vF.scaled_dot_product_attention(vt.from_numpy(a[0]), *(vt.from_numpy(x) for x in a[1:3]),
                                            attn_mask=getattr(vbias, "causal_" + variant)(L, S))
    np.testing.assert_allclose(to_np(v), to_np(t), rtol=1e-5, atol=1e-5)
