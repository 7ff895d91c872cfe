"""The fused nn primitives and their backward ops against torch's (aten) equivalents on the same inputs:
vt::_softmax (any dim, 0-dim, empty, rows of -inf, 16-bit), vt::_attention_softmax (scale + causal mask),
vt::_softmax_backward, native_layer_norm(_backward) with and without affine parameters, native_rms_norm(_backward)
(against the composed formula), gelu_backward/silu_backward/tanh_backward/sigmoid_backward; gradients through them (plain backward takes the
fused kernels, create_graph the differentiable composite: both checked, and gradgradcheck for second order);
bad input. Every test runs on the CPU and, where vibetensor sees a GPU, on CUDA (the `cuda` marker)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor._C import core as _core

DEV = "cpu"


@pytest.fixture(autouse=True, params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    """The device every pair() of the test lands on."""
    global DEV
    DEV = request.param
    yield DEV
    DEV = "cpu"

aten = torch.ops.aten
op = _core.op
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6),
       "bfloat16": dict(rtol=2e-2, atol=2e-2), "float16": dict(rtol=2e-3, atol=2e-3)}


def pair(a, dtype="float32", grad=False):
    t = torch.from_numpy(np.asarray(a, dtype=np.float64)).to(getattr(torch, dtype)).to(DEV)
    v = vt.from_numpy(np.asarray(a, dtype=np.float64)).to(getattr(vt, dtype)).to(DEV)
    if grad:
        t.requires_grad_()
        v.requires_grad_()
    return v, t


def host(x):
    return x.detach().cpu().to(vt.float64).numpy() if isinstance(x, vt.Tensor) else \
        x.detach().cpu().double().numpy()


def close(v, t, dtype="float32", msg=""):
    assert tuple(v.shape) == tuple(t.shape), f"{msg} shape {tuple(v.shape)} vs {tuple(t.shape)}"
    np.testing.assert_allclose(host(v), host(t), **TOL[dtype], err_msg=msg)


@pytest.mark.parametrize("shape,dim", [((5, 37), -1), ((5, 37), 0), ((3, 4, 6), 1), ((2, 1300), 1), ((7,), 0),
                                       ((), 0), ((0, 5), 1), ((4, 0), 1)])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_forward_backward(shape, dim, log, rng):
    a = rng.standard_normal(shape) * 4
    v, t = pair(a)
    y_v = op("vt::_softmax")(v, dim, log)
    y_t = (aten._log_softmax if log else aten._softmax)(t, dim, False)
    if log:  # x - max - log(sum): a few ulp of log(sum) (up to ~20 here) survive where the result is near 0
        np.testing.assert_allclose(host(y_v), host(y_t), rtol=2e-5, atol=1e-5, err_msg="forward")
    else:
        close(y_v, y_t, msg="forward")
    g = rng.standard_normal(shape)
    gv, gt = pair(g)
    back_t = (aten._log_softmax_backward_data if log else aten._softmax_backward_data)(gt, y_t, dim, torch.float32)
    # float32 row sums of up to 1300 terms in another order than torch's: relative error ~1e-4 after the
    # subtraction g - exp(y) * sum(g)
    np.testing.assert_allclose(host(op("vt::_softmax_backward")(gv, y_v, dim, log)), host(back_t), rtol=2e-4,
                               atol=2e-5, err_msg="backward")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_softmax_dtypes(dtype, rng):
    a = rng.standard_normal((6, 33))
    v, t = pair(a, dtype)
    close(vt.softmax(v, -1), torch.softmax(t, -1), dtype)
    close(vt.log_softmax(v, 0), torch.log_softmax(t, 0), dtype)


def test_softmax_rows_of_minus_inf_and_dominant_entries():
    a = np.array([[-np.inf] * 4, [0, -np.inf, 1, -np.inf], [1e4, 0, 0, 0]])
    v, t = pair(a)
    close(vt.softmax(v, -1), torch.softmax(t, -1))
    close(vt.log_softmax(v, -1), torch.log_softmax(t, -1))


@pytest.mark.parametrize("L,S", [(5, 5), (3, 7), (33, 33), (2, 1100)])
@pytest.mark.parametrize("causal", [True, False])
def test_attention_softmax_matches_masked_softmax(L, S, causal, rng):
    a = rng.standard_normal((2, 3, L, S))
    scale = 0.37
    v, t = pair(a, grad=True)
    y_v = op("vt::_attention_softmax")(v, scale, causal)
    s_t = t * scale
    if causal:
        s_t = s_t.masked_fill(torch.ones(L, S, dtype=torch.bool, device=DEV).triu(1), float("-inf"))
    y_t = torch.softmax(s_t, -1)
    close(y_v, y_t)
    g = rng.standard_normal(a.shape)
    y_v.backward(pair(g)[0])
    y_t.backward(pair(g)[1])
    close(v.grad, t.grad, msg="grad")


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape,norm", [((4, 6, 32), (32,)), ((3, 5, 4), (5, 4)), ((2, 1500), (1500,)), ((0, 8), (8,)),
                                        ((13, 256), (256,)), ((3, 132), (132,)), ((9, 768), (768,)),
                                        ((5, 1024), (1024,)), ((6, 1028), (1028,)), ((7, 516), (516,)),
                                        ((20000, 64), (64,))])
@pytest.mark.parametrize("offset", [0, 1])
def test_native_layer_norm_and_backward(affine, shape, norm, offset, rng):
    """Widths that are multiples of 4 up to 1024 take CUDA's float32 row-in-registers kernels (2, 4 or 8 float4s a
    lane: 256, 516, 768, 1024; the affine sums in the same pass up to 512, over more rows than a GPU holds warps at
    20000), others and a base 4 bytes off 16-byte alignment (offset 1) the general ones."""
    if offset and shape[0] == 0:
        pytest.skip("no rows")
    x_v, x_t = pair(rng.standard_normal(shape) * 3 + 1)
    if offset:  # the same values at one float past an aligned allocation
        x_v = vt.cat([vt.zeros(1).to(DEV), x_v.reshape(-1)])[1:].view(shape)
    w_v, w_t = pair(rng.standard_normal(norm)) if affine else (None, None)
    b_v, b_t = pair(rng.standard_normal(norm)) if affine else (None, None)
    out_v = op("vt::native_layer_norm")(x_v, list(norm), w_v, b_v, 1e-5)
    out_t = aten.native_layer_norm(x_t, list(norm), w_t, b_t, 1e-5)
    for i, name in enumerate(["y", "mean", "rstd"]):
        close(out_v[i], out_t[i], msg=name)
    g_v, g_t = pair(rng.standard_normal(shape))
    back_v = op("vt::native_layer_norm_backward")(g_v, x_v, list(norm), out_v[1], out_v[2], w_v, 7 if affine else 1)
    back_t = aten.native_layer_norm_backward(g_t, x_t, list(norm), out_t[1], out_t[2], w_t, b_t,
                                             [True, affine, affine])
    def near(v, t, msg):
        # row sums of up to 1500 float32 terms in another order than torch's, then a subtraction; the affine
        # gradients sum over up to 20000 rows, so their error scales with the largest of them
        ref = host(t)
        scale = max(1.0, float(np.abs(ref).max())) if msg != "grad input" else 1.0
        np.testing.assert_allclose(host(v), ref, rtol=2e-4, atol=2e-5 * scale, err_msg=msg)
    for i, name in enumerate(["input", "weight", "bias"][:3 if affine else 1]):
        near(back_v[i], back_t[i], f"grad {name}")
    if not affine:
        assert back_v[1] is None and back_v[2] is None
    else:  # the affine gradients alone (output_mask 6: the input's not wanted)
        only = op("vt::native_layer_norm_backward")(g_v, x_v, list(norm), out_v[1], out_v[2], w_v, 6)
        assert only[0] is None
        for i in (1, 2):
            near(only[i], back_t[i], "affine alone")


def rms_ref(x, norm, w, eps):
    dims = tuple(range(x.dim() - len(norm), x.dim()))
    y = x * torch.rsqrt((x * x).mean(dims, keepdim=True) + eps)
    return y * w if w is not None else y


@pytest.mark.parametrize("affine", [True, False])
def test_native_rms_norm_and_backward(affine, rng):
    shape, norm = (3, 7, 40), (40,)
    x_v, x_t = pair(rng.standard_normal(shape), grad=True)
    w_v, w_t = pair(rng.standard_normal(norm), grad=True) if affine else (None, None)
    y_v, rstd = op("vt::native_rms_norm")(x_v, list(norm), w_v, 1e-6)
    y_t = rms_ref(x_t, norm, w_t, 1e-6)
    close(y_v, y_t)
    assert tuple(rstd.shape) == (3, 7, 1)
    g = rng.standard_normal(shape)
    y_v.backward(pair(g)[0])
    y_t.backward(pair(g)[1])
    close(x_v.grad, x_t.grad, msg="grad input")
    if affine:
        close(w_v.grad, w_t.grad, msg="grad weight")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_gelu_silu_backward_kernels(approximate, dtype, rng):
    x = rng.standard_normal((17, 33)) * 3
    g = rng.standard_normal((17, 33))
    (xv, xt), (gv, gt) = pair(x, dtype), pair(g, dtype)
    # 1 + tanh(u) cancels for large negative x: a few float32 ulps of 1.0, not of the (tiny) result
    tol = dict(rtol=2e-5, atol=1e-5) if dtype == "float32" else TOL[dtype]
    np.testing.assert_allclose(host(op("vt::gelu_backward")(gv, xv, approximate=approximate)),
                               host(aten.gelu_backward(gt, xt, approximate=approximate)), **tol)
    close(op("vt::silu_backward")(gv, xv), aten.silu_backward(gt, xt), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
def test_tanh_sigmoid_backward_kernels(dtype, rng):
    """torch's tanh_backward / sigmoid_backward on the same (gradient, output) pairs: bit for bit in float32 and
    float64 (the same operations in the same order, no contraction), on dense, transposed, strided and
    broadcast operands; 16-bit ones compute in float32 and round once, as torch's."""
    g, x = rng.standard_normal((17, 33)) * 2, rng.standard_normal((17, 33)) * 2
    (gv, gt) = pair(g, dtype)
    for name, fn in (("tanh", np.tanh), ("sigmoid", lambda a: 1 / (1 + np.exp(-a)))):
        yv, yt = pair(fn(x), dtype)
        kern, ref = op(f"vt::{name}_backward"), getattr(aten, f"{name}_backward")
        for a, b in (((gv, yv), (gt, yt)), ((gv.t(), yv.t()), (gt.t(), yt.t())),
                     ((gv[:, ::3], yv[:, ::3]), (gt[:, ::3], yt[:, ::3])), ((gv, yv[0]), (gt, yt[0].expand(17, 33)))):
            got, want = host(kern(*a)), host(ref(*b))
            if dtype in ("float32", "float64"):
                np.testing.assert_array_equal(got, want, err_msg=name)
            else:
                close(kern(*a), ref(*b), dtype, msg=name)
    if dtype == "float64" and DEV == "cpu":  # their own derivatives (second order through tanh and sigmoid)
        for name in ("tanh", "sigmoid"):
            ins = [vt.from_numpy(rng.standard_normal((3, 4)) * 0.5).requires_grad_() for _ in range(2)]
            assert vt.autograd.gradcheck(op(f"vt::{name}_backward"), ins)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
@pytest.mark.parametrize("out_dtype", ["bfloat16", "bool", "int16", "uint8", "float32"])
def test_tanh_sigmoid_backward_derivatives_like_torch(name, out_dtype):
    """Fuzz finds (seed 97): the derivative of tanh_backward for its gradient input is the kernel itself, which
    promotes a 16-bit, bool or integer output with the gradient's dtype and rounds once, as torch's."""
    if DEV != "cpu":
        pytest.skip("dtype promotion of the formula, once, on the CPU")
    g = np.array([[0.7, -1.5, 3.0], [65000.0, -0.25, 2.0]])
    y = {"bool": np.array([[1, 0, 1], [0, 1, 1]]), "int16": np.array([[300, -2, 0], [1, 7, -9]]),
         "uint8": np.array([[255, 2, 0], [1, 7, 9]])}.get(out_dtype, np.array([[0.9, -0.5, 1.0], [0.1, -1.0, 0.3]]))
    gv, gt = pair(g, "float16", grad=True)
    yv = vt.from_numpy(y.copy()).to(getattr(vt, out_dtype))
    yt = torch.from_numpy(y.copy()).to(getattr(torch, out_dtype))
    outv, outt = op(f"vt::{name}_backward")(gv, yv), getattr(aten, f"{name}_backward")(gt, yt)
    close(outv, outt, "float16", msg="forward")
    (dv,) = vt.autograd.grad(outv.sum(), [gv])
    (dt,) = torch.autograd.grad(outt.sum(), [gt])
    close(dv, dt, "float16", msg="d/dgrad")


MODULE_CASES = {
    "tanh": lambda m, x, w, b: m.tanh(x) * w,
    "sigmoid": lambda m, x, w, b: m.sigmoid(x) + b,
    "softmax": lambda m, x, w, b: m.softmax(x, -1) * w,
    "log_softmax_dim1": lambda m, x, w, b: m.log_softmax(x, 1) * w,
    "layer_norm": lambda m, x, w, b: m.nn.functional.layer_norm(x, (x.shape[-1],), w, b),
    "rms_norm": lambda m, x, w, b: m.nn.functional.rms_norm(x, (x.shape[-1],), w, 1e-6),
    "gelu": lambda m, x, w, b: m.nn.functional.gelu(x) * w,
    "gelu_tanh": lambda m, x, w, b: m.nn.functional.gelu(x, approximate="tanh") * w,
    "silu": lambda m, x, w, b: m.nn.functional.silu(x) + b,
    "sdpa_causal": lambda m, x, w, b: m.nn.functional.scaled_dot_product_attention(
        x.reshape(2, 4, 3), (x * w).reshape(2, 4, 3), x.reshape(2, 4, 3), is_causal=True).reshape(4, 6),
}


@pytest.mark.parametrize("name", list(MODULE_CASES))
@pytest.mark.parametrize("create_graph", [False, True])
def test_gradients_plain_and_create_graph(name, create_graph, rng):
    """Plain backward runs the fused kernels, create_graph the composite: both must give torch's gradients."""
    fn = MODULE_CASES[name]
    arrays = [rng.standard_normal((4, 6)), rng.standard_normal(6), rng.standard_normal(6)]
    vs = [pair(a, "float64", grad=True)[0] for a in arrays]
    ts = [pair(a, "float64", grad=True)[1] for a in arrays]
    g = rng.standard_normal((4, 6))
    out_v, out_t = fn(vt, *vs), fn(torch, *ts)
    close(out_v, out_t, "float64")
    gv = vt.autograd.grad(out_v, vs, pair(g, "float64")[0], create_graph=create_graph, allow_unused=True)
    gt = torch.autograd.grad(out_t, ts, pair(g, "float64")[1], create_graph=create_graph, allow_unused=True)
    for i, (a, b) in enumerate(zip(gv, gt)):
        if b is None:
            assert a is None, f"grad {i}: vt has one, torch none"
        else:
            close(a, b, "float64", msg=f"grad {i}")
    if create_graph:  # second order: d/dx of sum(grad_x^2)
        (hv,) = vt.autograd.grad((gv[0] * gv[0]).sum(), [vs[0]])
        (ht,) = torch.autograd.grad((gt[0] * gt[0]).sum(), [ts[0]])
        close(hv, ht, "float64", msg="second order")


@pytest.mark.parametrize("name", ["softmax", "layer_norm", "rms_norm", "gelu", "sdpa_causal", "tanh", "sigmoid"])
def test_gradgradcheck(name, rng):
    if DEV != "cpu":
        pytest.skip("finite differences once, on the CPU")
    fn = MODULE_CASES[name]
    vs = [vt.from_numpy(rng.standard_normal(s)).requires_grad_() for s in [(4, 6), (6,), (6,)]]
    assert vt.autograd.gradcheck(lambda *a: fn(vt, *a), vs)
    assert vt.autograd.gradgradcheck(lambda *a: fn(vt, *a), vs)


def test_bad_input_errors():
    x = vt.ones(3, 4).to(DEV)
    with pytest.raises(RuntimeError, match=r"expected input with shape \[\*, 5\]"):
        op("vt::native_layer_norm")(x, [5], None, None, 1e-5)
    with pytest.raises(RuntimeError, match=r"weight of shape \[3\] does not match normalized_shape \[4\]"):
        op("vt::native_layer_norm")(x, [4], vt.ones(3).to(DEV), None, 1e-5)
    with pytest.raises(RuntimeError, match="does not match output"):
        op("vt::_softmax_backward")(vt.ones(3).to(DEV), x, -1, False)
    with pytest.raises(RuntimeError, match="at least 2-D"):
        op("vt::_attention_softmax")(vt.ones(3).to(DEV), 1.0, True)
    with pytest.raises(NotImplementedError, match="softmax"):
        op("vt::_softmax")(vt.ones(3, dtype=vt.int64).to(DEV), 0, False)
    with pytest.raises(RuntimeError, match="approximate"):
        op("vt::gelu_backward")(x, x, approximate="fast")


JOIN_CASES = {
    "unbind_some_unused": lambda m, x: x.unbind(1)[0] * 3 + x.unbind(1)[2],
    "split_sizes": lambda m, x: sum((p * (i + 1)).sum(1) for i, p in enumerate(x.split([1, 3, 2], 1))),
    "iterate_rows": lambda m, x: sum(r * i for i, r in enumerate(x)),
    "heads_matmul": lambda m, x: (lambda q, k: m.matmul(q, k.transpose(-2, -1)))(
        *x.reshape(2, 2, 2, 3).permute(1, 0, 2, 3).unbind(0)),
    "matmul_fold_3d_2d": lambda m, x: m.matmul(x.reshape(2, 2, 6), x.t()),
}


@pytest.mark.parametrize("name", list(JOIN_CASES))
def test_unbind_split_and_batched_matmul_grads(name, rng):
    """One node per unbind/split (the pieces' gradients joined by cat) and the N-d batched product (_bmm_nd)."""
    a = rng.standard_normal((4, 6))
    (v, t) = pair(a, "float64", grad=True)
    out_v, out_t = JOIN_CASES[name](vt, v), JOIN_CASES[name](torch, t)
    close(out_v, out_t, "float64")
    g = rng.standard_normal(tuple(out_t.shape))
    out_v.backward(pair(g, "float64")[0])
    out_t.backward(pair(g, "float64")[1])
    close(v.grad, t.grad, "float64", msg="grad")
