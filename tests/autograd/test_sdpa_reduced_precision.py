"""F.scaled_dot_product_attention on bfloat16 / float16 inputs outside the CUDA flash kernels (the CPU, or with a
mask) reduces in float32 as torch does: before, the composite rounded the scores and the softmax weights to 16
bits and was about three times further from the exact result than torch (a bfloat16 Llama's greedy tokens then
differed from torch's). Checked against float64 references and torch: output dtype, error no worse than torch's,
the float32-then-round result bit for bit, and gradients."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

MASKS = ["none", "causal", "bool", "float", "float32-mask"]


def inputs(seed, shape=(2, 4, 24, 16), kv_len=24):
    r = np.random.default_rng(seed)
    q = r.standard_normal(shape) * 2
    k = r.standard_normal(shape[:-2] + (kv_len, shape[-1])) * 2
    v = r.standard_normal(shape[:-2] + (kv_len, shape[-1]))
    bool_mask = r.random((shape[-2], kv_len)) < 0.7
    bool_mask[:, 0] = True  # every query sees a key
    return q, k, v, bool_mask, r.standard_normal((shape[-2], kv_len))


def call(lib, q, k, v, mask_kind, bool_mask, float_mask, dtype):
    kw = {}
    if mask_kind == "causal":
        kw["is_causal"] = True
    elif mask_kind == "bool":
        kw["attn_mask"] = lib.from_numpy(bool_mask)
    elif mask_kind == "float":
        kw["attn_mask"] = lib.from_numpy(float_mask).to(dtype)
    elif mask_kind == "float32-mask":
        kw["attn_mask"] = lib.from_numpy(float_mask).float()
    return lib.nn.functional.scaled_dot_product_attention(q, k, v, **kw)


def as_np(t):
    return t.detach().double().numpy() if isinstance(t, torch.Tensor) else t.detach().double().numpy()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("mask_kind", MASKS)
def test_reduces_in_float32_like_torch(dtype, mask_kind):
    q, k, v, bm, fm = inputs(0)
    # the exact answer from the 16-bit-rounded inputs
    rounded = [torch.from_numpy(a).to(getattr(torch, dtype)) for a in (q, k, v)]
    fm16 = torch.from_numpy(fm).to(getattr(torch, dtype)).double().numpy()
    ref = as_np(call(torch, *(t.double() for t in rounded), mask_kind, bm, fm16 if mask_kind == "float" else fm,
                     torch.float64))
    vq, vk, vv = (vt.from_numpy(t.float().numpy()).to(getattr(vt, dtype)).requires_grad_() for t in rounded)
    tq, tk, tv = (t.clone().requires_grad_() for t in rounded)
    vout = call(vt, vq, vk, vv, mask_kind, bm, fm, getattr(vt, dtype))
    tout = call(torch, tq, tk, tv, mask_kind, bm, fm, getattr(torch, dtype))
    assert vout.dtype == getattr(vt, dtype) and tout.dtype == getattr(torch, dtype)
    verr, terr = np.abs(as_np(vout) - ref).mean(), np.abs(as_np(tout) - ref).mean()
    assert verr <= 1.15 * terr, (verr, terr)
    # it is the float32 computation, rounded once at the end (inputs that want gradients, so that the float32
    # call takes the same path as the 16-bit one: without, the CPU runs its tiled inference forward)
    vq32, vk32, vv32 = (x.detach().float().requires_grad_() for x in (vq, vk, vv))
    f32 = call(vt, vq32, vk32, vv32, mask_kind, bm, fm if mask_kind != "float" else fm16, vt.float32)
    np.testing.assert_array_equal(as_np(vout), as_np(f32.to(getattr(vt, dtype))))
    # gradients, against float64 and torch
    g = np.random.default_rng(1).standard_normal(tuple(tout.shape))
    vout.backward(vt.from_numpy(g).to(getattr(vt, dtype)))
    tout.backward(torch.from_numpy(g).to(getattr(torch, dtype)))
    refs = [t.double().requires_grad_() for t in rounded]
    call(torch, *refs, mask_kind, bm, fm16 if mask_kind == "float" else fm, torch.float64).backward(
        torch.from_numpy(g).to(getattr(torch, dtype)).double())
    for vx, tx, rx in zip((vq, vk, vv), (tq, tk, tv), refs):
        assert vx.grad.dtype == getattr(vt, dtype)
        scale = np.abs(rx.grad.numpy()).mean()
        verr = np.abs(as_np(vx.grad) - rx.grad.numpy()).mean() / scale
        terr = np.abs(as_np(tx.grad) - rx.grad.numpy()).mean() / scale
        assert verr <= max(1.5 * terr, 4e-3), (verr, terr)


def test_three_dim_inputs_and_other_key_lengths():
    q, k, v, bm, fm = inputs(2, shape=(3, 10, 8), kv_len=7)
    ref = call(torch, *(torch.from_numpy(a).bfloat16().double() for a in (q, k, v)), "none", bm, fm, None)
    vout = call(vt, *(vt.from_numpy(a).bfloat16() for a in (q, k, v)), "none", bm, fm, None)
    tout = call(torch, *(torch.from_numpy(a).bfloat16() for a in (q, k, v)), "none", bm, fm, None)
    assert tuple(vout.shape) == (3, 10, 8)
    assert np.abs(as_np(vout) - as_np(ref)).mean() <= 1.15 * np.abs(as_np(tout) - as_np(ref)).mean()


def test_float32_and_float64_inputs_are_untouched():
    q, k, v, bm, fm = inputs(3)
    for dtype in ("float32", "float64"):
        vout = call(vt, *(vt.from_numpy(a).to(getattr(vt, dtype)) for a in (q, k, v)), "bool", bm, fm, None)
        tout = call(torch, *(torch.from_numpy(a).to(getattr(torch, dtype)) for a in (q, k, v)), "bool", bm, fm, None)
        assert vout.dtype == getattr(vt, dtype)
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(as_np(vout), as_np(tout), **tol)
