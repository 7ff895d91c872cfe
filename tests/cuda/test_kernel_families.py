"""Every CUDA kernel family once, at a representative size, against torch on the CPU: the workload that
scripts/sanitize.sh runs under compute-sanitizer (memcheck, racecheck, synccheck, initcheck).

The op suites (test_cuda_*.py) sweep dtypes, layouts and sizes with thousands of launches, which the tools turn
into hours; here each family runs a few launches on the paths that differ in memory access: dense vectorised
(an odd element count, so the tail runs), misaligned (a view at offset 1), strided (a transpose), broadcast,
16-bit types, reductions inner / outer / split over the grid, atomics on 1-byte elements, shared-memory
sorts and norms, cuBLAS / cuBLASLt GEMMs with epilogues, the fused optimizers, autograd backward on the GPU,
and a deferred index error (Note [Deferred kernel errors]). The reference side is torch on the CPU, so the
tools see only vibetensor's kernels. Graph capture is not here: the tools' pass-through allocator refuses it.

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_kernel_families.py -q -p no:cacheprovider
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor._C import core as _core
from cuda_helpers import CUDA_MARKS, DEV
from helpers import assert_same

pytestmark = CUDA_MARKS
N = 4099  # odd: vector loops run their scalar tail
_index_put_ = _core.op("vt::index_put_")  # (self, indices, values, accumulate)


def arr(shape, dtype="float32", seed=0, low=-2.0, high=2.0):
    a = np.random.default_rng(seed).uniform(low, high, size=shape)
    return a.astype(np.int64) if dtype.startswith("int") or dtype == "uint8" else a.astype(np.float32)


def both(a, dtype="float32", view=None):
    """(vt tensor on the device, torch tensor on the CPU) of the same values and dtype, optionally viewed."""
    v = vt.from_numpy(a).to(DEV).to(getattr(vt, dtype))
    t = torch.from_numpy(a).to(getattr(torch, dtype))
    return (view(v), view(t)) if view else (v, t)


def same(v, t, **tol):
    assert_same(v.cpu() if isinstance(v, vt.Tensor) else v, t, **tol)


LOW = dict(rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "uint8"])
def test_elementwise_dense_misaligned_strided_broadcast(dtype):
    tol = LOW if dtype in ("float16", "bfloat16") else {}
    lo = 0 if dtype == "uint8" else -2
    x, xt = both(arr(N, dtype, 1, lo, 9), dtype)
    y, yt = both(arr(N, dtype, 2, lo, 9), dtype)
    same(x + y, xt + yt, **tol)  # dense, vectorised
    same(x[1:] * y[:-1], xt[1:] * yt[:-1], **tol)  # misaligned
    m, mt = both(arr((67, 61), dtype, 3, lo, 9), dtype, view=lambda z: z.t())
    same(m - m[0], mt - mt[0], **tol)  # strided and broadcast
    r, rt = both(arr((9, 1024), dtype, 4, lo, 9), dtype)
    same(r + x[:1024], rt + xt[:1024], **tol)  # rows with a broadcast row (Note [Row vectors])
    same(vt.where(x > y, x, y), torch.where(xt > yt, xt, yt))
    if dtype in ("float32", "float16", "bfloat16"):
        same(vt.nn.functional.gelu(m) + vt.exp(m * 0.5), torch.nn.functional.gelu(mt) + torch.exp(mt * 0.5), **tol)
    same(x.to(vt.float64), xt.to(torch.float64), **tol)  # cast


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_reductions_inner_outer_split(dtype):
    tol = LOW if dtype == "float16" else dict(rtol=1e-4, atol=1e-3)
    big, bigt = both(arr(1 << 20, "float32", 4), dtype)
    same(big.sum(), bigt.float().sum().to(bigt.dtype), rtol=1e-2, atol=2.0)  # split over the grid
    m, mt = both(arr((129, 257), "float32", 5), dtype)
    same(m.sum(-1), mt.sum(-1), **tol)  # inner
    same(m.sum(0), mt.sum(0), **tol)  # outer
    c, ct = both(arr((3001, 24), "float32", 7), dtype)
    same(c.sum(0), ct.float().sum(0).to(ct.dtype), rtol=1e-2, atol=0.5)  # outer, 16-byte columns, rows dealt to splits
    same(m.t().amax(1), mt.t().amax(1))
    same(m.argmax(1), mt.argmax(1))
    same(m.float().var(1), mt.float().var(1), rtol=1e-4, atol=1e-4)
    same(m.float().norm(), mt.float().norm(), rtol=1e-4)
    same(vt.logsumexp(m.float(), 1), torch.logsumexp(mt.float(), 1), rtol=1e-4, atol=1e-4)
    # mean, var/std (Welford states: struct partials) and the p-norms, one launch each: split inner and outer
    same(big.mean(), bigt.float().mean().to(bigt.dtype), rtol=1e-2, atol=1e-3)
    same(big.std(), bigt.float().std().to(bigt.dtype), rtol=1e-2)
    same(c.var(0), ct.float().var(0).to(ct.dtype), rtol=1e-2, atol=1e-3)
    same(c.norm(dim=0), ct.float().norm(dim=0).to(ct.dtype), rtol=1e-2)
    same(m.norm(p=3, dim=1), mt.float().norm(p=3, dim=1).to(mt.dtype), rtol=1e-2)


def test_indexing_and_atomics():
    w, wt = both(arr((50, 33), "float32", 6))
    i, it = both(np.array([3, 49, 0, 3, 17]), "int64")
    same(w[i], wt[it])  # advanced indexing
    acc, acct = both(np.zeros((50, 33), np.float32))
    _index_put_(acc, [i], w[:5], True)  # atomics with duplicate indices
    acct.index_put_((it,), wt[:5], accumulate=True)
    same(acc, acct, rtol=1e-5, atol=1e-5)
    b, bt = both(np.zeros(35), "uint8")  # 1-byte atomics: a CAS on the enclosing word
    j, jt = both(np.array([34, 0, 34, 7]), "int64")
    ones, onest = both(np.ones(4), "uint8")
    same(b.scatter_add(0, j, ones), bt.scatter_add(0, jt, onest))
    same(w.gather(0, i.reshape(5, 1).expand(5, 3)), wt.gather(0, it.reshape(5, 1).expand(5, 3)))
    same(w.scatter_reduce(0, i.reshape(5, 1).expand(5, 33), w[:5], "amax"),
         wt.scatter_reduce(0, it.reshape(5, 1).expand(5, 33), wt[:5], "amax"))
    same(vt.nonzero(w > 1.5), torch.nonzero(wt > 1.5))
    same(w.masked_fill(w < 0, 0.0), wt.masked_fill(wt < 0, 0.0))
    same(w.tril(3), wt.tril(3))  # the triangle kernel, out of place and in place through a view
    same(w.clone().t().triu_(-2), wt.clone().t().triu_(-2))
    same(vt.nn.functional.embedding(i, w), torch.nn.functional.embedding(it, wt))
    with pytest.raises(IndexError, match="index 50 is out of bounds"):  # the deferred report path runs too
        w[vt.tensor([50], device=DEV)]
        if DEV != "cpu":
            vt.cuda.synchronize()


def test_sort_topk_scan_and_random():
    x, xt = both(arr((9, 1000), "float32", 7))
    same(x.sort(1)[0], xt.sort(1)[0])
    same(x.topk(5, 1)[0], xt.topk(5, 1)[0])
    y, yt = both(arr((2, 40000), "float32", 17))  # a few long rows: the multi-block select, two k orderings
    for k in (40, 2000):
        same(y.topk(k, 1)[0], yt.topk(k, 1)[0])
    same(vt.cumsum(x, 1), torch.cumsum(xt, 1), rtol=1e-4, atol=1e-3)
    p = vt.rand(4, 20, device=DEV)
    draws = vt.multinomial(p, 6)
    assert draws.shape == (4, 6) and int(draws.max()) < 20
    r = vt.randn(N, device=DEV)
    assert abs(float(r.mean())) < 0.1 and vt.randint(0, 7, (N,), device=DEV).max().item() < 7


def test_nn_fused_forward_and_backward():
    F, Ft = vt.nn.functional, torch.nn.functional
    x, xt = both(arr((6, 4, 16, 32), "float32", 8))
    x.requires_grad_(), xt.requires_grad_()
    w, wt = both(arr(32, "float32", 9))
    y = F.layer_norm(F.softmax(x, -1) + F.log_softmax(x, -2), (32,), w, w) + F.rms_norm(x, (32,), w)
    yt = Ft.layer_norm(Ft.softmax(xt, -1) + Ft.log_softmax(xt, -2), (32,), wt, wt) + Ft.rms_norm(xt, (32,), wt)
    attn = F.scaled_dot_product_attention(x, x, x, is_causal=True)
    attnt = Ft.scaled_dot_product_attention(xt, xt, xt, is_causal=True)
    logits, target = x.reshape(-1, 32), vt.tensor(np.arange(384) % 32, device=DEV)
    loss = (y.sum() + attn.sum() + F.cross_entropy(logits, target) + F.silu(x).sum()) * 0.01
    losst = (yt.sum() + attnt.sum() + Ft.cross_entropy(xt.reshape(-1, 32), torch.arange(384) % 32)
             + Ft.silu(xt).sum()) * 0.01
    loss.backward(), losst.backward()
    same(loss, losst, rtol=1e-4, atol=1e-4)
    same(x.grad, xt.grad, rtol=1e-3, atol=1e-4)
    assert F.dropout(x, 0.5).shape == x.shape


@pytest.mark.parametrize("E", [64, 33, 128])
def test_flash_attention_forward_and_backward(E, monkeypatch):
    """The tiled attention kernels: partial tiles (70 queries, 45 keys), a padded head dim read element by element
    (33), the widest head (128, its own tile shape), causal, bfloat16."""
    monkeypatch.delenv("VT_FLASH_ATTENTION", raising=False)  # the default: Note [Flash kernels by default]
    F, Ft = vt.nn.functional, torch.nn.functional
    q, qt = both(arr((1, 2, 70, E), "float32", 10))
    k, kt = both(arr((1, 2, 45, E), "float32", 11))
    q, k = q.to(vt.bfloat16).requires_grad_(), k.to(vt.bfloat16).requires_grad_()
    qt, kt = qt.to(torch.bfloat16).double().requires_grad_(), kt.to(torch.bfloat16).double().requires_grad_()
    y = F.scaled_dot_product_attention(q, k, k, is_causal=True)
    yt = Ft.scaled_dot_product_attention(qt, kt, kt, is_causal=True)
    assert (y.grad_fn.name() == "ScaledDotProductFlashAttentionBackward0") == (DEV == "cuda")
    y.float().square().sum().backward(), yt.square().sum().backward()
    same(y.float(), yt.float(), rtol=3e-2, atol=3e-2)
    for got, ref in ((q.grad, qt.grad), (k.grad, kt.grad)):  # bfloat16 rounding, relative to the largest entry
        same(got.float(), ref.float(), rtol=0, atol=2e-2 * float(ref.abs().max()))


@pytest.mark.parametrize("E", [64, 33])
def test_flash_attention_float32(E, monkeypatch):
    """The float32 tiled kernels: partial tiles, heads viewed out of [B, T, H, E] (strided rows), a head dim read
    element by element (33), causal and not."""
    monkeypatch.delenv("VT_FLASH_ATTENTION", raising=False)
    F, Ft = vt.nn.functional, torch.nn.functional
    x, xt = both(arr((2, 70, 3, 3 * E), "float32", 12))
    q, k, v = (t.transpose(1, 2) for t in x.split(E, -1))
    qt, kt, vt_ = (t.double().transpose(1, 2) for t in xt.split(E, -1))
    for causal in (False, True):
        leaves = [t.detach().requires_grad_() for t in (q, k[:, :, :45], v[:, :, :45])]
        leaves_t = [t.detach().requires_grad_() for t in (qt, kt[:, :, :45], vt_[:, :, :45])]
        y = F.scaled_dot_product_attention(*leaves, is_causal=causal)
        yt = Ft.scaled_dot_product_attention(*leaves_t, is_causal=causal)
        assert (y.grad_fn.name() == "ScaledDotProductFlashAttentionBackward0") == (DEV == "cuda")
        y.square().sum().backward(), yt.square().sum().backward()
        same(y, yt.float(), rtol=1e-4, atol=1e-5)
        for got, ref in zip((t.grad for t in leaves), (t.grad for t in leaves_t)):
            same(got, ref.float(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_gemms_and_linear_epilogues(dtype):
    tol = LOW if dtype == "bfloat16" else dict(rtol=1e-4, atol=1e-3)
    a, at = both(arr((96, 72), "float32", 10), dtype)
    b, bt = both(arr((72, 40), "float32", 11), dtype)
    same(a @ b, at @ bt, **tol)
    same(a.t() @ a, at.t() @ at, **tol)
    c, ct = both(arr((3, 17, 72), "float32", 12), dtype)
    same(vt.bmm(c, b.expand(3, 72, 40)), torch.bmm(ct, bt.expand(3, 72, 40)), **tol)
    w, wt = both(arr((40, 72), "float32", 13), dtype)
    bias, biast = both(arr(40, "float32", 14), dtype)
    for t in (c, w, bias):
        t.requires_grad_()
    for t in (ct, wt, biast):
        t.requires_grad_()
    out = vt.nn.functional.linear(c, w, bias)  # cuBLASLt with the bias epilogue; BGRADB in backward
    outt = torch.nn.functional.linear(ct, wt, biast)
    out.float().sum().backward(), outt.float().sum().backward()
    same(out, outt, **tol)
    same(w.grad, wt.grad, **tol)
    same(bias.grad, biast.grad, **tol)


def test_fused_optimizers_and_clipping():
    results = []
    for m, dev in ((vt, DEV), (torch, "cpu")):
        m.manual_seed(0)
        ps = [m.nn.Parameter(m.from_numpy(arr(s, "float32", k)).to(dev)) for k, s in enumerate([(33, 7), (5,), (128,)])]
        opt = m.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)
        sgd = m.optim.SGD(ps, lr=1e-3, momentum=0.9)
        for step in range(3):
            loss = sum((p * p).sum() for p in ps)
            loss.backward()
            m.nn.utils.clip_grad_norm_(ps, 1.0)
            (opt if step % 2 == 0 else sgd).step()
            opt.zero_grad(), sgd.zero_grad()
        results.append([p.detach() for p in ps])
    for v, t in zip(*results):
        same(v, t, rtol=1e-4, atol=1e-5)


def test_conv_pool_and_unfold():
    F, Ft = vt.nn.functional, torch.nn.functional
    x, xt = both(arr((2, 3, 13, 11), "float32", 15))
    k, kt = both(arr((4, 3, 3, 3), "float32", 16))
    y, yt = F.conv2d(x, k, padding=1), Ft.conv2d(xt, kt, padding=1)
    same(y, yt, rtol=1e-4, atol=1e-4)
    same(F.max_pool2d(y, 2), Ft.max_pool2d(yt, 2), rtol=1e-4, atol=1e-4)
    same(F.avg_pool2d(y, 2), Ft.avg_pool2d(yt, 2), rtol=1e-4, atol=1e-4)
    same(F.fold(F.unfold(x, 3), (13, 11), 3), Ft.fold(Ft.unfold(xt, 3), (13, 11), 3), rtol=1e-5, atol=1e-5)
