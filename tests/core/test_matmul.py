"""mm / bmm / matmul / linear on the CPU against torch: shapes of every matmul case, broadcast batches,
non-contiguous operands, empty and odd sizes, dtypes."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor._C import core as C

from helpers import kernel_variant_fixture


def pair(shape, dtype, rng):
    a = (rng.standard_normal(shape) * 3).astype(np.float64)
    if dtype in ("int32", "int64", "int16", "int8", "uint8"):
        a = np.round(a).astype(np.int64) % 5
    tt = torch.from_numpy(np.array(a)).to(getattr(torch, dtype))
    vv = vt.from_numpy(np.array(a)).to(getattr(vt, dtype))
    return vv, tt


def close(v, t, dtype):
    tol = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 1e-4, "float64": 1e-10}.get(dtype, 0)
    vn = v.to(vt.float64).numpy() if dtype in ("float16", "bfloat16") else v.numpy()
    tn = t.to(torch.float64).numpy() if dtype in ("float16", "bfloat16") else t.numpy()
    assert vn.shape == tn.shape, (vn.shape, tn.shape)
    np.testing.assert_allclose(vn, tn, rtol=tol, atol=tol * max(1.0, float(np.abs(tn).max(initial=0))))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32"])
@pytest.mark.parametrize("sa, sb", [
    ((5,), (5,)), ((3, 5), (5,)), ((5,), (5, 4)), ((3, 5), (5, 4)), ((2, 3, 5), (5, 4)), ((3, 5), (2, 5, 4)),
    ((2, 1, 3, 5), (4, 5, 7)), ((7,), (3, 7, 2)), ((2, 3, 5), (5,)), ((0, 5), (5, 4)), ((3, 0), (0, 4)),
    ((65, 257), (257, 33)),
])
def test_matmul_matches_torch(sa, sb, dtype, rng):
    a, ta = pair(sa, dtype, rng)
    b, tb = pair(sb, dtype, rng)
    close(vt.matmul(a, b), torch.matmul(ta, tb), dtype)
    close(a @ b, ta @ tb, dtype)


def test_mm_bmm_noncontiguous(rng):
    a, ta = pair((6, 9), "float32", rng)
    b, tb = pair((4, 9), "float32", rng)
    close(vt.mm(a, b.t()), torch.mm(ta, tb.t()), "float32")
    c, tc = pair((3, 9, 6), "float32", rng)
    d, td = pair((3, 4, 9), "float32", rng)
    close(vt.bmm(c.transpose(1, 2), d.transpose(1, 2)), torch.bmm(tc.transpose(1, 2), td.transpose(1, 2)), "float32")
    close(c.transpose(1, 2)[:, ::2] @ d.transpose(1, 2), tc.transpose(1, 2)[:, ::2] @ td.transpose(1, 2), "float32")


def test_linear(rng):
    x, tx = pair((8, 16), "float32", rng)
    w, tw = pair((4, 16), "float32", rng)
    b, tb = pair((4,), "float32", rng)
    close(vt.nn.functional.linear(x, w, b), torch.nn.functional.linear(tx, tw, tb), "float32")
    close(vt.nn.functional.linear(x, w), torch.nn.functional.linear(tx, tw), "float32")


def test_large_parallel(rng):
    a, ta = pair((300, 200), "float32", rng)
    b, tb = pair((200, 150), "float32", rng)
    close(a @ b, ta @ tb, "float32")


@pytest.mark.parametrize("fn, args, exc, msg", [
    ("mm", ((2, 3), (4, 5)), RuntimeError, "cannot be multiplied"),
    ("matmul", ((2, 3), (4, 5)), RuntimeError, "cannot be multiplied"),
    ("matmul", ((3,), (4,)), RuntimeError, "same number of elements"),
    ("bmm", ((2, 3, 4), (3, 4, 5)), RuntimeError, "cannot be multiplied"),
    ("mm", ((2, 3, 4), (4, 5)), RuntimeError, "2D tensor"),
])
def test_shape_errors(fn, args, exc, msg):
    a, b = (vt.ones(*s) for s in args)
    with pytest.raises(exc, match=msg):
        getattr(vt, fn)(a, b)


def test_dtype_mismatch_and_bool():
    with pytest.raises(RuntimeError, match="same dtype"):
        vt.mm(vt.ones(2, 2), vt.ones(2, 2, dtype=vt.float64))
    with pytest.raises(NotImplementedError, match="bool"):
        vt.mm(vt.ones(2, 2, dtype=vt.bool), vt.ones(2, 2, dtype=vt.bool))


# ---- the packed CPU GEMM (core/src/ops/cpu_gemm.cpp): every micro-kernel family this CPU runs, vs float64 ----

gemm_kernel = kernel_variant_fixture(C.cpu_gemm_kernel, C.set_cpu_gemm_kernel,
                                     ("generic", "avx2", "avx512", "avx512bf16"))


def ref_close(v, a, b, dtype, k):
    """v vs the float64 product of the float64 values of a and b, within a bound that grows with sqrt(k)."""
    ref = np.matmul(a.to(vt.float64).numpy(), b.to(vt.float64).numpy())
    eps = {"float16": 1e-3, "bfloat16": 8e-3, "float32": 1.2e-7, "float64": 2.3e-16}[dtype]
    scale = np.matmul(np.abs(a.to(vt.float64).numpy()), np.abs(b.to(vt.float64).numpy()))
    err = np.abs(v.to(vt.float64).numpy() - ref)
    assert v.shape == tuple(ref.shape) and v.dtype == getattr(vt, dtype)
    # Accumulation error, plus one rounding of the result for 16-bit types (down to float16's subnormal step).
    bound = 4 * eps * np.sqrt(max(k, 1)) * scale
    if dtype in ("float16", "bfloat16"):
        bound += eps * scale + 2.0 ** -24
    bad = err > bound
    assert not bad.any(), f"{bad.sum()} wrong, first at {np.argwhere(bad)[0]}: err {err[bad][0]} > {bound[bad][0]}"


def rand(shape, dtype, rng):
    return vt.from_numpy(rng.standard_normal(shape)).to(getattr(vt, dtype))


EDGE_DIMS = [1, 5, 6, 7, 12, 13, 16, 17, 33, 65]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_gemm_edge_shapes(gemm_kernel, dtype, rng):
    # Every M, N remainder against MR (4, 6, 12) and NR (4, 8, 16, 32); K across the tile loop.
    for m in EDGE_DIMS:
        for n in EDGE_DIMS:
            k = int(rng.choice([1, 3, 16, 31]))
            a, b = rand((m, k), dtype, rng), rand((k, n), dtype, rng)
            ref_close(vt.mm(a, b), a, b, dtype, k)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("m, k, n", [
    (257, 300, 65),      # parallel tiles with edges in M and N
    (11, 1025, 37),      # odd K: bfloat16 pairs (Note [Bfloat16 pairs]) end in a half pair after a KC block
    (6, 8195, 35),       # odd K past the superblock's K range
    (13, 1100, 70),      # K crosses the KC block four times with a remainder
    (5, 8500, 40),       # K crosses the superblock's K range twice
    (7, 70, 4200),       # N crosses the NC block
    (8300, 130, 9),      # M crosses the packed-A superblock
    (1030, 8200, 40),    # few rows, long K: short K ranges that hold every row (Note [Superblock shape])
    (2050, 2100, 70),    # rows and K both split, with remainders in each
    (0, 5, 7), (5, 0, 7), (5, 7, 0), (0, 0, 0),
])
def test_gemm_blocking(gemm_kernel, dtype, m, k, n, rng):
    a, b = rand((m, k), dtype, rng), rand((k, n), dtype, rng)
    c = vt.mm(a, b)
    assert c.shape == (m, n)
    ref_close(c, a, b, dtype, k)
    # The same products with both operands stored transposed (k contiguous in B, not in A).
    at, bt = rand((k, m), dtype, rng).t(), rand((n, k), dtype, rng).t()
    ref_close(vt.mm(at, bt), at, bt, dtype, k)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_gemm_strided_operands(gemm_kernel, dtype, rng):
    # Transposed (weight.t()), sliced with steps, and a column-sliced view: read through strides, not copied.
    base_a, base_b = rand((90, 80), dtype, rng), rand((70, 60), dtype, rng)
    cases = [
        (base_a[:37, :29], base_b[:29, :41]),
        (base_a[:29, :37].t(), base_b[:41, :29].t()),
        (base_a[::2, 1::3], base_b[3:30, ::2]),
        (base_a[1::2, ::2].t(), base_b[::2, 5:50].t()),
        (base_a[:40, 7:8], base_b[2:3, :50]),   # K = 1
        (base_a[:20, :1].expand(20, 30), base_b[:30, 3:4].expand(30, 25)),  # stride-0 k and n
        (base_a[5:6, :30].expand(19, 30), base_b[:30, :33]),               # stride-0 rows
    ]
    for a, b in cases:
        ref_close(vt.mm(a, b), a, b, dtype, a.shape[1])
        ref_close(a @ b, a, b, dtype, a.shape[1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemm_k_contiguous_packing_remainders(gemm_kernel, dtype, rng):
    # Both operands with k contiguous (x @ weight.t()) go through the transposing packs: row counts around the
    # kernels' MR (6, 12) and NR (16, 32) and the 8-lane transposes, K around the 8- and 16-k blocks and the KC
    # block, each from a wider buffer so a lane's row runs on past K.
    for m in (1, 11, 12, 13, 16, 17, 25):
        for n in (15, 16, 17, 31, 33, 48):
            for k in (1, 15, 16, 17, 255, 257):
                a = rand((m, k + 3), dtype, rng)[:, 1:k + 1]
                b = rand((n, k + 5), dtype, rng)[:, :k].t()
                ref_close(a @ b, a, b, dtype, k)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gemm_batched_and_broadcast(gemm_kernel, dtype, rng):
    x, w = rand((4, 9, 33), dtype, rng), rand((20, 33), dtype, rng)
    # A weight broadcast over a batch (one stacked product), over a sliced batch that cannot stack, and batch
    # broadcasting on the left operand; bmm on transposed batches.
    pairs = [(x, w.t()), (x[:, ::2], w.t()), (w[:7], x.transpose(1, 2)), (x[:1].expand(3, 9, 33), w.t())]
    for a, b in pairs:
        out = a @ b
        ref = np.matmul(a.to(vt.float64).numpy(), b.to(vt.float64).numpy())
        assert out.shape == ref.shape
        for i in range(ref.shape[0]):
            bi = b if b.dim() == 2 else b[i]
            ai = a if a.dim() == 2 else a[i]
            ref_close(out[i], ai, bi, dtype, ai.shape[-1])
    c, d = rand((10, 21, 17), dtype, rng), rand((10, 19, 21), dtype, rng)
    out = vt.bmm(c.transpose(1, 2), d.transpose(1, 2))
    for i in range(10):
        ref_close(out[i], c[i].t(), d[i].t(), dtype, 21)
    # Few large matrices: one after another, each spread over the threads.
    e, f = rand((3, 129, 140), dtype, rng), rand((3, 140, 131), dtype, rng)
    out = vt.bmm(e, f)
    for i in range(3):
        ref_close(out[i], e[i], f[i], dtype, 140)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "int64"])
def test_matmul_batch_dims_that_do_not_fold(gemm_kernel, dtype, rng):
    # Heads viewed out of a fused qkv ([B, T, 3, H, E] permuted to [3, B, H, T, E]): the batch dims (B, H) step by
    # no single stride, so the product reads each batch entry at its own offset instead of copying the operand.
    B, T, H, E = 3, 13, 5, 7
    qkv = rand((B, T, 3 * H * E), dtype, rng) if dtype != "int64" else pair((B, T, 3 * H * E), dtype, rng)[0]
    q, k, v = qkv.reshape(B, T, 3, H, E).permute(2, 0, 3, 1, 4).unbind(0)
    cases = [(q, k.transpose(-2, -1)), (q, v.transpose(-2, -1)[..., ::2]), (q[:, 1:4], k[:, 1:4].transpose(-2, -1)),
             (q.transpose(0, 1), k.transpose(0, 1).transpose(-2, -1)), (q[:, :1].expand(B, 2, T, E), v[:, :2].mT)]
    for a, b in cases:
        out = a @ b
        ref = np.matmul(a.to(vt.float64).numpy(), b.to(vt.float64).numpy())
        assert out.shape == ref.shape and out.dtype == a.dtype
        if dtype == "int64":
            np.testing.assert_array_equal(out.numpy(), ref.astype(np.int64))
            continue
        for i in np.ndindex(*ref.shape[:-2]):
            ref_close(out[i], a[i], b[i], dtype, E)


def test_attention_products_of_permuted_heads_grads_match_torch(rng):
    B, T, H, E = 2, 9, 3, 4
    x = rng.standard_normal((B, T, 3 * H * E))
    vx, tx = vt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    outs = []
    for m, xx in ((vt, vx), (torch, tx)):
        q, k, v = xx.reshape(B, T, 3, H, E).permute(2, 0, 3, 1, 4).unbind(0)
        out = m.softmax(q @ k.transpose(-2, -1), -1) @ v
        (out * m.arange(out.numel(), dtype=m.float64).reshape(out.shape).cos()).sum().backward()
        outs.append(out)
    np.testing.assert_allclose(outs[0].detach().numpy(), outs[1].detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gemm_bfloat16_subnormal_inputs(gemm_kernel):
    # Note [Bfloat16 pairs]: the pair kernel treats subnormal inputs as zero (as torch's oneDNN kernels, which use
    # the same instruction, do from 64 x 64 on such a CPU); the other families multiply them exactly in float.
    a = vt.full((64, 64), 1e-39, dtype=vt.bfloat16)
    b = vt.full((64, 64), 1e30, dtype=vt.bfloat16)
    out = (a @ b).to(vt.float64).numpy()
    exact = 64 * a[0, 0].item() * b[0, 0].item()
    if gemm_kernel == "avx512bf16":
        assert (out == 0).all()
    else:
        np.testing.assert_allclose(out, exact, rtol=8e-3)


def test_gemm_matches_torch_mlp_shapes(rng):
    # The training-step GEMMs (benchmarks/cpu_gemm.py) against torch: forward x @ W.t(), dX = dY @ W, dW = dY.t() @ X.
    x, w, dy = rand((64, 300), "float32", rng), rand((520, 300), "float32", rng), rand((64, 520), "float32", rng)
    tx, tw, tdy = (torch.from_numpy(t.numpy()) for t in (x, w, dy))
    close(x @ w.t(), tx @ tw.t(), "float32")
    close(dy @ w, tdy @ tw, "float32")
    close(dy.t() @ x, tdy.t() @ tx, "float32")


def test_gemm_kernel_selection_errors():
    with pytest.raises(RuntimeError, match="unknown kernel family 'sse9'"):
        C.set_cpu_gemm_kernel("sse9")
    assert C.cpu_gemm_kernel() in ("generic", "avx2", "avx512", "avx512bf16")


@pytest.mark.parametrize("x_shape", [(6, 16), (2, 5, 16), (16,)])
def test_linear_grads_match_torch_and_weight_grad_is_dense(x_shape, rng):
    # mm computes a column-major operand's gradient transposed (as torch) and a batched input folds into one mm:
    # values and layouts as torch's.
    x, w = rng.standard_normal(x_shape), rng.standard_normal((9, 16))
    vx, vw = vt.tensor(x, requires_grad=True), vt.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    vy, ty = vt.nn.functional.linear(vx, vw), torch.nn.functional.linear(tx, tw)
    g = rng.standard_normal(tuple(ty.shape))
    vy.backward(vt.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(vy.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vw.grad.numpy(), tw.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert vw.grad.is_contiguous()


def test_mm_grad_of_transposed_operands(rng):
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((4, 7))
    va, vb = vt.tensor(a, requires_grad=True), vt.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (va.t() @ vb.t()).sum().backward()
    (ta.t() @ tb.t()).sum().backward()
    np.testing.assert_allclose(va.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(vb.grad.numpy(), tb.grad.numpy(), rtol=1e-12)
    assert va.grad.is_contiguous() and vb.grad.is_contiguous()


# F.linear with a bias is one op, vt::_linear_bias (the CUDA backend adds the bias in cuBLASLt's epilogue, the
# CPU GEMM to each tile of C after its last K block), so values, gradients and layouts are torch's to float64
# rounding. The larger shapes give edge tiles, several K blocks and K ranges, and tiles split over threads.
@pytest.mark.parametrize("x_shape, w_shape, b_shape", [
    ((6, 16), (9, 16), (9,)), ((2, 5, 16), (9, 16), (9,)), ((3, 1, 4, 16), (9, 16), (9,)), ((0, 16), (9, 16), (9,)),
    ((5, 0), (9, 0), (9,)), ((6, 16), (9, 16), (1,)), ((4, 16), (0, 16), (0,)), ((37, 600), (70, 600), (70,)),
    ((13, 4500), (35, 4500), (35,)), ((3, 100, 40), (257, 40), (257,)),
])
@pytest.mark.parametrize("layout", ["dense", "strided"])
def test_linear_bias_values_grads_and_nodes_match_torch(x_shape, w_shape, b_shape, layout, rng):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(b_shape)
    sides = []
    for m, tensor in ((vt, vt.tensor), (torch, torch.tensor)):
        vx, vw, vb = (tensor(a, requires_grad=True) for a in (x, w, b))
        ix, iw = vx, vw
        if layout == "strided" and x_shape[-1]:  # a column-major input and a transposed-view weight
            ix = vx.transpose(-2, -1).contiguous().transpose(-2, -1) if len(x_shape) >= 2 else vx
            iw = vw.t().contiguous().t()
        y = m.nn.functional.linear(ix, iw, vb)
        g = tensor(np.cos(np.arange(y.numel(), dtype=np.float64)).reshape(tuple(y.shape)))
        y.backward(g)
        sides.append((y, vx.grad, vw.grad, vb.grad))
    for v, t in zip(*sides):
        np.testing.assert_allclose(v.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-12)
    if len(x_shape) == 2 and x_shape[0]:
        assert sides[0][0].grad_fn.name() == "AddmmBackward0"


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_linear_bias_low_precision_matches_torch(dtype, rng):
    x, tx = pair((3, 7, 33), dtype, rng)
    w, tw = pair((5, 33), dtype, rng)
    b, tb = pair((5,), dtype, rng)
    close(vt.nn.functional.linear(x, w, b), torch.nn.functional.linear(tx, tw, tb), dtype)
    if dtype == "bfloat16":
        # The bias joins the float accumulator and the sum is rounded once, as torch's CPU kernel rounds it:
        # with a bias large against the product, bit for bit.
        b, tb = b * 64, tb * 64
        out, ref = vt.nn.functional.linear(x, w, b), torch.nn.functional.linear(tx, tw, tb)
        np.testing.assert_array_equal(out.to(vt.float32).numpy(), ref.float().numpy())


def test_linear_bias_double_backward_matches_torch(rng):
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((3, 6)), rng.standard_normal(3)
    outs = []
    for m, tensor in ((vt, vt.tensor), (torch, torch.tensor)):
        vx, vw, vb = (tensor(a, requires_grad=True) for a in (x, w, b))
        y = m.nn.functional.linear(vx, vw, vb)
        gx, gw = m.autograd.grad((y * y).sum(), (vx, vw), create_graph=True)
        ((gx * gx).sum() + (gw ** 3).sum()).backward()
        outs.append((vx.grad, vw.grad, vb.grad))
    for v, t in zip(*outs):
        np.testing.assert_allclose(v.numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_linear_bias_errors_name_the_problem():
    x, w = vt.ones(3, 4), vt.ones(5, 4)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(3x4 and 6x5\)"):
        vt.nn.functional.linear(x, vt.ones(5, 6), vt.ones(5))
    with pytest.raises(RuntimeError, match="the bias has 6 elements but the weight"):
        vt.nn.functional.linear(x, w, vt.ones(6))
    with pytest.raises(RuntimeError, match="same dtype"):
        vt.nn.functional.linear(x, w, vt.ones(5, dtype=vt.float64))
    with pytest.raises(RuntimeError, match="same dtype"):
        vt.nn.functional.linear(x.to(vt.float16), w, vt.ones(5))


@pytest.mark.parametrize("policy", ["1", "0"])
def test_gemm_operand_swap_policies(policy):
    """Note [Swapped operands]: products at least four times as tall as wide (up to 128 columns) run as C^T =
    B^T A^T with every tile stored transposed. The shape rule decides per product, so each way is forced in its
    own process (VT_CPU_GEMM_SWAP is read once) over the blocking, edge, stride, batch and bias tests above: 1
    swaps every product, 0 none."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, VT_CPU_GEMM_SWAP=policy)
    tests = "blocking or edge_shapes or strided_operands or batched_and_broadcast or do_not_fold or linear_bias"
    r = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-x", "-p", "no:cacheprovider", "-k", tests],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "failed" not in r.stdout
