"""Autograd on the GPU against torch on the GPU: the same leaves (float32 and float64) on the device on both sides,
the same upstream gradient, outputs and input gradients compared, for the elementwise, reduction, view, matmul and
nn ops a training step runs (softmax, layer_norm, cross_entropy, embedding with duplicate rows, attention);
gradients that cross devices (a CPU leaf used on the GPU gets its gradient on the CPU); and a training parity run
(an MLP with AdamW and SGD on the device: same losses and weights as torch).

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_autograd.py -q -p no:cacheprovider
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, host, needs_two_devices

pytestmark = CUDA_MARKS

TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11)}


def _leaf(m, a, device):
    t = (torch.from_numpy(a.copy()) if m is torch else vt.from_numpy(a.copy())).to(device)
    return t.detach().requires_grad_()


def check(fn, shapes, dtype="float32", seed=0, positive=False, device=DEV):
    """fn(m, *leaves) on both sides on `device`; backward with one random upstream gradient; compare."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    if positive:
        arrays = [np.abs(a) + np.asarray(0.5, dtype) for a in arrays]
    tl = [_leaf(torch, a, device) for a in arrays]
    vl = [_leaf(vt, a, device) for a in arrays]
    out_t, out_v = fn(torch, *tl), fn(vt, *vl)
    assert str(out_v.device).startswith(str(out_t.device).split(":")[0]), f"{out_v.device} vs {out_t.device}"
    np.testing.assert_allclose(host(out_v), out_t.detach().cpu().numpy(), **TOL[dtype])
    g = rng.standard_normal(tuple(out_t.shape)).astype(dtype)
    out_t.backward(torch.from_numpy(g.copy()).to(device))
    out_v.backward(vt.from_numpy(g.copy()).to(device))
    for i, (v, t) in enumerate(zip(vl, tl)):
        if t.grad is None:
            assert v.grad is None, f"input {i}: vt has a gradient where torch has none"
            continue
        assert v.grad is not None, f"input {i}: no gradient"
        assert str(v.grad.device) == str(v.device), f"input {i}: gradient on {v.grad.device}, leaf on {v.device}"
        np.testing.assert_allclose(host(v.grad), t.grad.cpu().numpy(), **TOL[dtype], err_msg=f"input {i}")


def F(m):
    return m.nn.functional


CASES = {
    "add_broadcast": (lambda m, a, b: a + b * 2, [(5, 7), (7,)]),
    "sub_div": (lambda m, a, b: (a - b) / (b * b + 1), [(4, 1, 6), (3, 6)]),
    "pow_exp_log": (lambda m, a: (a.abs() + 1).log() * a.exp() + a ** 3, [(33, 17)]),
    "tanh_sigmoid": (lambda m, a: m.tanh(a) * m.sigmoid(a), [(1000,)]),
    "gelu_silu_relu": (lambda m, a: F(m).gelu(a) + F(m).silu(a) + a.relu(), [(129, 65)]),
    "sum_mean_dims": (lambda m, a: a.sum(0) + a.mean((0, 2)).reshape(3, 1), [(8, 3, 5)]),
    "views": (lambda m, a: a.transpose(0, 1)[1:, ::2].reshape(-1) * 3, [(6, 9)]),
    "index_rows": (lambda m, a: a[m.tensor([0, 2, 2, 5], device=a.device)], [(7, 4)]),
    "where_masked": (lambda m, a, b: m.where(a > 0, a, b).masked_fill(b > 1, 0.0), [(50, 9), (50, 9)]),
    "mm": (lambda m, a, b: a @ b, [(31, 17), (17, 23)]),
    "matmul_batched_broadcast": (lambda m, a, b: m.matmul(a, b), [(3, 1, 8, 5), (4, 5, 6)]),
    "linear": (lambda m, x, w, b: F(m).linear(x, w, b), [(2, 9, 16), (12, 16), (12,)]),
    "softmax": (lambda m, a: m.softmax(a, -1), [(64, 130)]),
    "log_softmax_dim0": (lambda m, a: m.log_softmax(a, 0), [(37, 11)]),
    "layer_norm_affine": (lambda m, x, w, b: F(m).layer_norm(x, (x.shape[-1],), w, b), [(4, 6, 96), (96,), (96,)]),
    "rms_norm": (lambda m, x, w: F(m).rms_norm(x, (x.shape[-1],), w), [(10, 48), (48,)]),
    # one affine gradient wanted, then the other: the slice sums' launch takes either alone
    "layer_norm_weight_only": (lambda m, x, w: F(m).layer_norm(x, (x.shape[-1],), w), [(70, 33), (33,)]),
    "layer_norm_bias_only": (lambda m, x, b: F(m).layer_norm(x, (x.shape[-1],), None, b), [(70, 33), (33,)]),
    # the same at a width of float4s (the float32 row-in-registers kernels)
    "layer_norm_weight_only_f4": (lambda m, x, w: F(m).layer_norm(x, (x.shape[-1],), w), [(70, 132), (132,)]),
    "layer_norm_bias_only_f4": (lambda m, x, b: F(m).layer_norm(x, (x.shape[-1],), None, b), [(70, 260), (260,)]),
    "layer_norm_plain_f4": (lambda m, x: F(m).layer_norm(x, (x.shape[-1],)), [(9, 256)]),
    "sdpa_causal": (lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v, is_causal=True),
                    [(2, 3, 16, 8), (2, 3, 16, 8), (2, 3, 16, 8)]),
    # q, k, v viewed out of one fused projection: batch dims that do not collapse (the pointer-array GEMM)
    "attention_heads_from_fused_qkv": (lambda m, x: (lambda q, k, v: m.matmul(m.matmul(q, k.transpose(-2, -1)), v))(
        *x.reshape(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4).unbind(0)), [(2, 5, 24)]),
    "split_chunk": (lambda m, x: x.split([2, 3, 1], 1)[1] * 2 + x.chunk(2, 1)[1], [(6, 6)]),
    "cast_roundtrip": (lambda m, a: (a.to(m.bfloat16).to(m.float64) * 2).to(a.dtype), [(10, 10)]),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grads_match_torch_on_device(name, dtype):
    fn, shapes = CASES[name]
    check(fn, shapes, dtype)


def test_noncontiguous_leaf_grads():
    check(lambda m, a, b: (a.t() @ b.t()).sum(-1, keepdim=True) * a.t()[:, :1], [(12, 7), (9, 12)])


@pytest.mark.parametrize("kw", [{}, {"ignore_index": 3}, {"label_smoothing": 0.1}, {"reduction": "sum"}])
def test_cross_entropy_grad(kw):
    target = np.random.default_rng(5).integers(0, 10, 64)
    check(lambda m, x: F(m).cross_entropy(x, m.from_numpy(target.copy()).to(x.device) if m is vt
                                          else torch.from_numpy(target.copy()).to(x.device), **kw), [(64, 10)])


def test_embedding_duplicate_rows_accumulate():
    idx = np.array([[1, 3, 1], [0, 3, 3]])

    def fn(m, w):
        i = (vt.from_numpy(idx.copy()) if m is vt else torch.from_numpy(idx.copy())).to(w.device)
        return F(m).embedding(i, w) * 2
    check(fn, [(5, 4)])


@needs_two_devices
def test_grad_crosses_devices():
    """A CPU leaf moved to the GPU: the gradient comes back to the CPU, as torch's CopyBackwards."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((6, 5)).astype(np.float32)
    grads = []
    for m in (torch, vt):
        ca = _leaf(m, a, "cpu")
        gb = _leaf(m, b, DEV)
        ((ca.to(DEV) * gb).sum() * 3).backward()
        assert str(ca.grad.device) == "cpu" and str(gb.grad.device).startswith("cuda")
        grads.append((host(ca.grad) if m is vt else ca.grad.numpy(),
                      host(gb.grad) if m is vt else gb.grad.cpu().numpy()))
    for x, y in zip(*grads):
        np.testing.assert_allclose(x, y, rtol=1e-6)


def test_second_order_on_device():
    rng = np.random.default_rng(4)
    a = rng.standard_normal(20).astype(np.float64)
    res = []
    for m in (torch, vt):
        x = _leaf(m, a, DEV)
        (g,) = (torch.autograd.grad if m is torch else vt.autograd.grad)((x.tanh() * x).sum(), [x], create_graph=True)
        (h,) = (torch.autograd.grad if m is torch else vt.autograd.grad)(g.sum(), [x])
        res.append(host(h) if m is vt else h.cpu().numpy())
    np.testing.assert_allclose(res[1], res[0], rtol=1e-10)


def _mlp(m):
    nn = m.nn
    return nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 4))


@pytest.mark.parametrize("opt", ["adamw", "sgd_momentum"])
def test_training_parity_on_device(opt):
    torch.manual_seed(0)
    tmodel, vmodel = _mlp(torch), _mlp(vt)
    vmodel.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tmodel.state_dict().items()})
    tmodel.to(DEV)
    vmodel.to(DEV)
    make = {"adamw": lambda m, p: m.optim.AdamW(p, lr=1e-2, weight_decay=0.01),
            "sgd_momentum": lambda m, p: m.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3)}[opt]
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((128, 16)).astype(np.float32), rng.standard_normal((128, 4)).astype(np.float32)
    losses = []
    for m, model in ((torch, tmodel), (vt, vmodel)):
        o = make(m, model.parameters())
        xd, yd = m.from_numpy(x.copy()).to(DEV), m.from_numpy(y.copy()).to(DEV)
        ls = []
        for _ in range(8):
            loss = ((model(xd) - yd) ** 2).mean()
            o.zero_grad()
            loss.backward()
            o.step()
            ls.append(float(loss.detach().cpu()) if m is torch else float(loss.detach()))
        losses.append(ls)
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-4)
    assert losses[1][-1] < losses[1][0]
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(host(vmodel.state_dict()[k]), v.detach().cpu().numpy(), rtol=1e-3, atol=1e-5,
                                   err_msg=k)


def _two_stream_grads(m, a, b):
    """Forward split over a side stream and the caller's stream; backward from the caller's stream."""
    x, w = _leaf(m, a, DEV), _leaf(m, b, DEV)
    main = m.cuda.current_stream()
    side = m.cuda.Stream()
    side.wait_stream(main)
    with m.cuda.stream(side):
        y = (x @ w).tanh()
        for _ in range(4):  # enough queued work that a missing wait would read unfinished gradients
            y = (y @ w) * 0.5 + y
    main.wait_stream(side)
    loss = (y * y).sum() + (x * 3).sum()
    loss.backward()
    # Read on the caller's stream only: backward must have ordered it after both streams' gradient work.
    return [g.cpu().numpy() if m is torch else host(g) for g in (x.grad, w.grad)]


@pytest.mark.skipif(DEV == "cpu", reason="streams need a GPU")
def test_backward_runs_on_forward_streams_and_orders_them():
    rng = np.random.default_rng(8)
    a = (rng.standard_normal((512, 512)) * 0.05).astype(np.float32)
    b = (rng.standard_normal((512, 512)) * 0.05).astype(np.float32)
    for _ in range(3):  # a race would show as a mismatch in some repetition
        got, want = _two_stream_grads(vt, a, b), _two_stream_grads(torch, a, b)
        for g, t, name in zip(got, want, ["x", "w"]):
            np.testing.assert_allclose(g, t, rtol=2e-3, atol=2e-4, err_msg=f"grad {name}")


@pytest.mark.skipif(DEV == "cpu", reason="streams need a GPU")
def test_node_records_its_forward_stream():
    """A node made under a side stream runs its backward there: its gradient is produced on the side stream,
    and the caller's stream still sees it complete after backward returns."""
    x = vt.ones(1 << 20, device=DEV).requires_grad_()
    side = vt.cuda.Stream()
    side.wait_stream(vt.cuda.current_stream())
    with vt.cuda.stream(side):
        y = (x * 2).exp()
    vt.cuda.current_stream().wait_stream(side)
    y.sum().backward()
    assert np.allclose(host(x.grad)[:5], 2 * np.exp(2.0), rtol=1e-5)


def test_tf32_switch():
    """vt.backends.cuda.matmul.allow_tf32 / set_float32_matmul_precision as torch's; on a GPU, TF32 really changes
    a float32 product (less exact than full float32, close to torch's own TF32 result)."""
    assert vt.backends.cuda.matmul.allow_tf32 is False and vt.get_float32_matmul_precision() == "highest"
    with pytest.raises(RuntimeError, match="precision"):
        vt.set_float32_matmul_precision("low")
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((256, 512)).astype(np.float32), rng.standard_normal((512, 128)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    va, vb = vt.from_numpy(a).to(DEV), vt.from_numpy(b).to(DEV)
    full = np.asarray(host(va @ vb))
    try:
        vt.set_float32_matmul_precision("high")
        assert vt.backends.cuda.matmul.allow_tf32
        tf32 = np.asarray(host(va @ vb))
    finally:
        vt.backends.cuda.matmul.allow_tf32 = False
    assert vt.get_float32_matmul_precision() == "highest"
    err_full, err_tf32 = np.abs(full - exact).max(), np.abs(tf32 - exact).max()
    if DEV == "cpu":  # the CPU GEMM has no TF32: the switch changes nothing there
        np.testing.assert_array_equal(tf32, full)
        return
    assert err_tf32 > 10 * err_full, (err_tf32, err_full)
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        t = (torch.from_numpy(a).cuda() @ torch.from_numpy(b).cuda()).cpu().numpy()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    np.testing.assert_allclose(tf32, t, rtol=0, atol=5 * np.abs(t - exact).max())
