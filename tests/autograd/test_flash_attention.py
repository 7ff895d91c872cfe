"""vt::_flash_attention (out and the log-sum-exp), its backward op and autograd formula, and
F.scaled_dot_product_attention's use of it, against a float64 torch reference on the same inputs.

On CUDA, float16/bfloat16 with head dims up to 128 run the tiled kernels (core/src/ops/cuda/flash_attention.cu),
float32 with head dims up to 64 their float32 counterparts (flash_attention_f32.cu and _bwd.cu: tensor-core
products in three TF32 passes, held to the same float32 bound):
shapes cover one tile and many, lengths that are not multiples of the 64-row tiles, query and key lengths that
differ (causal masks top-left aligned), head dims that are padded (8 .. 128, odd ones read element by element),
non-contiguous heads (q viewed out of [B, T, H, E]) and offsets that break 16-byte alignment. A 16-bit result passes
when its error against float64 is within the dtype's tolerance or within twice torch's own error in that dtype.
Everything else (float64, wider float32 heads on CUDA) runs the composite or, on the CPU, its tiled float32 and
16-bit paths; create_graph goes through the differentiable composite on every device. Every test runs on the CPU
and, where vibetensor sees a GPU, on CUDA."""
import math
import zlib

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor._C import core as _core

DEV = "cpu"


@pytest.fixture(autouse=True, params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request, monkeypatch):
    monkeypatch.delenv("VT_FLASH_ATTENTION", raising=False)  # the default: Note [Flash kernels by default]
    global DEV
    DEV = request.param
    yield DEV
    DEV = "cpu"


flash = _core.op("vt::_flash_attention")
flash_bwd = _core.op("vt::_flash_attention_backward")
# Error bounds relative to the reference's largest magnitude (at least 1).
REL = {"float64": 1e-10, "float32": 2e-5, "bfloat16": 2.5e-2, "float16": 4e-3}
# (batch, heads, query length, key length, head dim)
SHAPES = [(1, 1, 1, 1, 64), (2, 3, 5, 7, 8), (1, 2, 64, 64, 64), (2, 2, 65, 130, 32), (1, 3, 130, 65, 64),
          (1, 1, 200, 200, 128), (2, 1, 17, 33, 40), (1, 2, 70, 70, 33), (1, 1, 9, 100, 96), (1, 1, 129, 3, 16)]


def rand(rng, shape, dtype, layout="dense"):
    """A torch tensor and the vt tensor with the same values (rounded to dtype) and the same layout:
    dense [B, H, T, E], "heads" viewed out of [B, T, H, E], or "offset" one element into a larger buffer."""
    B, H, T, E = shape
    if layout == "heads":
        base = rng.standard_normal((B, T, H, E))
        t = torch.from_numpy(base).to(getattr(torch, dtype)).to(DEV).transpose(1, 2)
        v = vt.from_numpy(base).to(getattr(vt, dtype)).to(DEV).transpose(1, 2)
        return v, t
    if layout == "offset":
        flat = rng.standard_normal(B * H * T * E + 1)
        t = torch.from_numpy(flat).to(getattr(torch, dtype)).to(DEV)[1:].view(B, H, T, E)
        v = vt.from_numpy(flat).to(getattr(vt, dtype)).to(DEV)[1:].view(B, H, T, E)
        return v, t
    a = rng.standard_normal(shape)
    return vt.from_numpy(a).to(getattr(vt, dtype)).to(DEV), torch.from_numpy(a).to(getattr(torch, dtype)).to(DEV)


def host(x):
    if isinstance(x, vt.Tensor):
        return x.detach().cpu().to(vt.float64).numpy()
    return x.detach().cpu().double().numpy()


def reference(q, k, v, scale, causal, g=None):
    """(out, lse, grads) in float64 by torch's math (no fused kernel), from torch tensors of any dtype."""
    q, k, v = (t.detach().double().requires_grad_() for t in (q, k, v))
    s = q @ k.transpose(-2, -1) * scale
    if causal:
        L, S = s.shape[-2:]
        s = s.masked_fill(torch.ones(L, S, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
    lse = torch.logsumexp(s, -1)
    out = torch.softmax(s, -1) @ v
    grads = torch.autograd.grad(out, (q, k, v), g.double()) if g is not None else None
    return out, lse, grads


def check(name, got, ref, dtype, theirs=None):
    ref = host(ref)
    err = float(np.max(np.abs(host(got) - ref), initial=0.0))
    bound = REL[dtype] * max(1.0, float(np.max(np.abs(ref), initial=0.0)))
    if theirs is not None:  # torch's own kernel in the same dtype sets a second, data-dependent bound
        bound = max(bound, 2.0 * float(np.max(np.abs(host(theirs) - ref), initial=0.0)))
    assert err <= bound, f"{name}: max error {err:.3g} > {bound:.3g}"


def dtypes():
    return ["float64", "float32", "bfloat16", "float16"]


@pytest.mark.parametrize("dtype", dtypes())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("causal", [False, True])
def test_forward_and_backward_against_float64(dtype, shape, causal):
    if DEV == "cpu" and dtype == "float16" and shape[2] * shape[3] > 4096:
        pytest.skip("the CPU's float16 products are slow and cover nothing the small shapes miss")
    rng = np.random.default_rng(zlib.crc32(repr((dtype, shape, causal)).encode()))  # the same in every process
    B, H, L, S, E = shape
    (qv, qt), (kv, kt), (vv, vt_) = (rand(rng, (B, H, n, E), dtype) for n in (L, S, S))
    gv, gt = rand(rng, (B, H, L, E), dtype)
    scale = 1 / math.sqrt(E)
    out, lse = flash(qv, kv, vv, scale, causal)
    ref_out, ref_lse, ref_grads = reference(qt, kt, vt_, scale, causal, gt)
    check("out", out, ref_out, dtype)
    assert lse.dtype == (vt.float64 if dtype == "float64" else vt.float32) and list(lse.shape) == [B, H, L]
    check("lse", lse, ref_lse, "float32" if dtype != "float64" else dtype)
    for name, got, ref in zip(("dq", "dk", "dv"), flash_bwd(gv, qv, kv, vv, out, lse, scale, causal), ref_grads):
        assert got.dtype == qv.dtype and list(got.shape) == list(ref.shape)
        check(name, got, ref, dtype)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("layout", ["heads", "offset"])
@pytest.mark.parametrize("causal", [False, True])
def test_op_reads_strided_operands(dtype, layout, causal):
    """The op (the CPU's tiled paths read float32 operands in place through their strides) on q, k, v, grad_out
    and out in the layouts model code produces."""
    rng = np.random.default_rng(zlib.crc32(repr((dtype, layout, causal)).encode()))
    (qv, qt), (kv, kt), (vv, vt_) = (rand(rng, (2, 3, n, 48), dtype, layout) for n in (130, 70, 70))
    gv, gt = rand(rng, (2, 3, 130, 48), dtype, layout)
    out, lse = flash(qv, kv, vv, 0.3, causal)
    ref_out, ref_lse, ref_grads = reference(qt, kt, vt_, 0.3, causal, gt)
    check("out", out, ref_out, dtype)
    check("lse", lse, ref_lse, "float32")
    out_view = out.transpose(1, 2).contiguous().transpose(1, 2) if layout == "heads" else out
    for name, got, ref in zip(("dq", "dk", "dv"), flash_bwd(gv, qv, kv, vv, out_view, lse, 0.3, causal), ref_grads):
        check(name, got, ref, dtype)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("layout", ["heads", "offset"])
@pytest.mark.parametrize("E", [64, 40])
def test_sdpa_strided_inputs_and_gradients(dtype, layout, E):
    """F.scaled_dot_product_attention with autograd, inputs in the layouts model code produces, against float64
    and against torch's own sdpa in the same dtype."""
    rng = np.random.default_rng(E)
    B, H, L = 2, 3, 97
    pairs = [rand(rng, (B, H, L, E), dtype, layout) for _ in range(3)]
    gv, gt = rand(rng, (B, H, L, E), dtype)
    qv, kv, vv = (p[0].detach().requires_grad_() for p in pairs)
    qt, kt, vt_ = (p[1].detach().requires_grad_() for p in pairs)
    out = vt.nn.functional.scaled_dot_product_attention(qv, kv, vv, is_causal=True)
    out.backward(gv)
    # torch gets fresh copies of the offset inputs: its memory-efficient CUDA kernel (torch 2.11) reads float32
    # operands 16 bytes at a time from a pointer one element into a buffer, a misaligned address that poisons the
    # process's CUDA context (compute-sanitizer names fmha_cutlassF_f32_aligned_64x64_rf_sm80 on an H100). A clone,
    # not .contiguous(): the offset view is already contiguous, so that would hand torch the same pointer.
    dense = (lambda x: x.clone()) if layout == "offset" else (lambda x: x)
    theirs = torch.nn.functional.scaled_dot_product_attention(dense(qt), dense(kt), dense(vt_), is_causal=True)
    theirs.backward(gt)
    ref_out, _, ref_grads = reference(qt, kt, vt_, 1 / math.sqrt(E), True, gt)
    fused = DEV == "cuda"
    assert (out.grad_fn.name() == "ScaledDotProductFlashAttentionBackward0") == fused
    check("out", out, ref_out, dtype, theirs)
    for name, got, ref, th in zip(("dq", "dk", "dv"), (qv.grad, kv.grad, vv.grad), ref_grads,
                                  (qt.grad, kt.grad, vt_.grad)):
        check(name, got, ref, dtype, th)


@pytest.mark.parametrize("causal", [False, True])
def test_float32_output_is_sequence_major(causal):
    """Note [Sequence-major output]: the float32 CUDA output is a [B, H, L, E] view of [B, L, H, E] storage, so
    the usual merge of heads is a view; the gradient that comes back through it (strided, not copied) and every
    other layout of dO give torch's float64 gradients."""
    rng = np.random.default_rng(11)
    B, H, L, E = 2, 3, 70, 32
    pairs = [rand(rng, (B, H, L, E), "float32", "heads") for _ in range(3)]
    qv, kv, vv = (p[0].detach().requires_grad_() for p in pairs)
    qt, kt, vt_ = (p[1].detach().requires_grad_() for p in pairs)
    out = vt.nn.functional.scaled_dot_product_attention(qv, kv, vv, is_causal=causal)
    merged = out.transpose(1, 2).reshape(B, L, H * E)
    if DEV == "cuda":
        assert out.transpose(1, 2).is_contiguous() and merged.data_ptr() == out.data_ptr()
    w = rng.standard_normal((B, L, H * E))
    (merged * vt.tensor(w, dtype=vt.float32, device=DEV)).sum().backward()
    ref_out, _, ref_grads = reference(qt, kt, vt_, 1 / math.sqrt(E), causal,
                                      torch.tensor(w, device=DEV).reshape(B, L, H, E).transpose(1, 2))
    check("out", out, ref_out, "float32")
    for name, got, ref in zip(("dq", "dk", "dv"), (qv.grad, kv.grad, vv.grad), ref_grads):
        check(name, got, ref, "float32")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("pattern", ["unbind", "split"])
def test_packed_qkv_gradients(dtype, pattern):
    """Note [Packed attention gradients]: q, k, v viewed out of one projection (unbind of a permuted
    [B, T, 3, H, E], or split along the features) get their CUDA gradients in one buffer of the projection's
    layout, which the unbind's / split's backward joins as a view (Note [Adjacent gradient pieces]): the
    projection's gradient is that buffer. Values against torch's float64 math either way."""
    rng = np.random.default_rng(5)
    B, T, H, E = 2, 67, 3, 32
    base = rng.standard_normal((B, T, 3 * H * E))
    w = rng.standard_normal((B, T, H * E))

    def pieces(m, qkv):
        if pattern == "unbind":
            return qkv.reshape(B, T, 3, H, E).permute(2, 0, 3, 1, 4).unbind(0)
        return [t.view(B, T, H, E).transpose(1, 2) for t in qkv.split(H * E, dim=2)]

    qkv = vt.from_numpy(base).to(getattr(vt, dtype)).to(DEV).requires_grad_()
    q, k, v = pieces(vt, qkv)
    ptrs = {}
    for name, t in (("q", q), ("k", k), ("v", v)):
        t.register_hook(lambda g, name=name: ptrs.__setitem__(name, g.data_ptr()))
    qkv.register_hook(lambda g: ptrs.__setitem__("qkv", g.data_ptr()))
    out = vt.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    (out.transpose(1, 2).reshape(B, T, H * E).float() * vt.tensor(w, dtype=vt.float32, device=DEV)).sum().backward()

    qt = torch.tensor(base, device=DEV).to(getattr(torch, dtype)).requires_grad_()
    tq, tk, tv = pieces(torch, qkv=qt)
    gt = torch.tensor(w, device=DEV).reshape(B, T, H, E).transpose(1, 2)
    _, _, ref_grads = reference(tq, tk, tv, 1 / math.sqrt(E), True, gt)
    ref = torch.cat([g.transpose(1, 2).reshape(B, T, H * E) for g in ref_grads], dim=2)
    check("dqkv", qkv.grad, ref, dtype)
    if DEV == "cuda":
        step = H * E * (4 if dtype == "float32" else 2)  # bytes from q's piece to k's in either layout
        assert ptrs["k"] - ptrs["q"] == step and ptrs["v"] - ptrs["k"] == step, ptrs
        assert ptrs["qkv"] == ptrs["q"], ptrs


@pytest.mark.parametrize("causal", [False, True])
def test_create_graph_second_order(causal):
    """Gradients of gradients: the formula's composite keeps their dependence on q, k and v."""
    rng = np.random.default_rng(7)
    shape = (1, 2, 6, 5)
    pairs = [rand(rng, shape, "float64") for _ in range(3)]
    qv, kv, vv = (p[0].detach().requires_grad_() for p in pairs)
    qt, kt, vt_ = (p[1].detach().requires_grad_() for p in pairs)
    wv, wt = rand(rng, shape, "float64")
    out_v = flash(qv, kv, vv, 0.4, causal)[0]
    grads_v = vt.autograd.grad(out_v, (qv, kv, vv), wv, create_graph=True)
    (sum((g * g).sum() for g in grads_v)).backward()
    out_t, _, _ = reference(qt, kt, vt_, 0.4, causal)
    out_t = torch.softmax((qt @ kt.transpose(-2, -1) * 0.4).masked_fill(
        torch.ones(6, 6, dtype=torch.bool, device=qt.device).triu(1) if causal else
        torch.zeros(6, 6, dtype=torch.bool, device=qt.device), float("-inf")), -1) @ vt_
    grads_t = torch.autograd.grad(out_t, (qt, kt, vt_), wt, create_graph=True)
    (sum((g * g).sum() for g in grads_t)).backward()
    for name, a, b in (("q", qv.grad, qt.grad), ("k", kv.grad, kt.grad), ("v", vv.grad, vt_.grad)):
        check(name, a, b, "float64")


def test_fused_path_only_where_it_applies(monkeypatch):
    """A mask, dropout, mismatched head dims, the math-only backend or VT_FLASH_ATTENTION=0 take the composed
    path."""
    rng = np.random.default_rng(3)
    (qv, _), (kv, _) = rand(rng, (1, 2, 8, 16), "bfloat16"), rand(rng, (1, 2, 8, 16), "bfloat16")
    vv = rand(rng, (1, 2, 8, 16), "bfloat16")[0]
    sdpa = vt.nn.functional.scaled_dot_product_attention
    for x in (qv, kv, vv):
        x.requires_grad_()
    expect = "ScaledDotProductFlashAttentionBackward0" if DEV == "cuda" else None
    assert (sdpa(qv, kv, vv).grad_fn.name() == expect) == (expect is not None)
    mask = vt.ones(8, 8, dtype=vt.bool, device=DEV)
    assert sdpa(qv, kv, vv, attn_mask=mask).grad_fn.name() != "ScaledDotProductFlashAttentionBackward0"
    with vt.nn.attention.sdpa_kernel(vt.nn.attention.SDPBackend.MATH):
        assert sdpa(qv, kv, vv).grad_fn.name() != "ScaledDotProductFlashAttentionBackward0"
    monkeypatch.setenv("VT_FLASH_ATTENTION", "0")
    assert sdpa(qv, kv, vv).grad_fn.name() != "ScaledDotProductFlashAttentionBackward0"
    three = sdpa(qv[0], kv[0], vv[0], is_causal=True)  # [H, T, E]: a batch of one
    assert list(three.shape) == [2, 8, 16]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_sdpa_inference_takes_the_op(dtype):
    """Without a gradient wanted, sdpa runs vt::_flash_attention (the CPU's tiled forward; on CUDA the kernels)
    and returns exactly its output; with one wanted on the CPU, the composed path."""
    rng = np.random.default_rng(11)
    q, k, v = (rand(rng, (2, 3, 150, 40), dtype)[0] for _ in range(3))
    with vt.no_grad():
        got = vt.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    want = flash(q, k, v, 1 / math.sqrt(40), True)[0]
    assert np.array_equal(host(got), host(want))
    if DEV == "cpu":  # training: the composed path below 256 x 256 scores per head, the tiled one from there
        q.requires_grad_()
        assert vt.nn.functional.scaled_dot_product_attention(q, k, v).grad_fn.name() != \
            "ScaledDotProductFlashAttentionBackward0"
        q2, k2 = (rand(rng, (1, 2, 256, 40), dtype)[0].requires_grad_() for _ in range(2))
        assert vt.nn.functional.scaled_dot_product_attention(q2, k2, k2).grad_fn.name() == \
            "ScaledDotProductFlashAttentionBackward0"


def test_bad_input():
    rng = np.random.default_rng(0)
    q = rand(rng, (1, 2, 4, 8), "float32")[0]
    with pytest.raises(RuntimeError, match="4-D"):
        flash(q[0], q, q, 1.0, False)
    with pytest.raises(RuntimeError, match="same dtype"):
        flash(q, q.to(vt.float64), q, 1.0, False)
    with pytest.raises(RuntimeError, match="batch and head dims"):
        flash(q, rand(rng, (1, 3, 4, 8), "float32")[0], q, 1.0, False)
    with pytest.raises(RuntimeError, match="head dims differ"):
        flash(q, q, rand(rng, (1, 2, 4, 6), "float32")[0], 1.0, False)
    with pytest.raises(RuntimeError, match="key length"):
        flash(q, q, rand(rng, (1, 2, 5, 8), "float32")[0], 1.0, False)
    with pytest.raises(NotImplementedError):
        flash(q.to(vt.int64), q.to(vt.int64), q.to(vt.int64), 1.0, False)
    out, lse = flash(q, q, q, 1.0, False)
    with pytest.raises(RuntimeError, match="does not match|must match"):
        flash_bwd(out[:, :, :2], q, q, q, out, lse, 1.0, False)
