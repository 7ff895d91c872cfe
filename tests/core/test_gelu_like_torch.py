"""The CPU's float32 gelu and gelu_backward against torch bit for bit (Note [gelu rounds as torch's oneDNN] in
core/src/ops/cpu_gelu_kernels.cpp): both tails, tiny, huge and subnormal inputs, NaN and infinities, a sweep of
bit patterns over the whole float range, odd sizes (vector tails), strided and broadcast layouts (which vt
computes as torch computes the same values laid out contiguously), one-element tensors (ATen's libm formula in
torch), and each model forced on its own against a float64 reference."""
import math

import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor._C import core as C

MODELS = ["minimax", "abramowitz_stegun", "libm"]


def _torch_uses_onednn():
    # torch's contiguous float32 gelu runs oneDNN; vt follows it wherever its default model is a oneDNN one
    return torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled and C.cpu_gelu_model() != "libm"


needs_onednn = pytest.mark.skipif(not _torch_uses_onednn(), reason="torch's gelu is not oneDNN's here")


def _bits_equal(got, want):
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    assert got.shape == want.shape
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    if not same.all():
        i = np.flatnonzero(~same.ravel())[:5]
        raise AssertionError(f"{(~same).sum()} of {same.size} differ, e.g. at {i}: "
                             f"{got.ravel()[i]} vs torch {want.ravel()[i]}")


def _inputs(n, seed):
    r = np.random.default_rng(seed)
    parts = [
        r.standard_normal(n) * 3,
        r.uniform(-12, -5, n // 4),                         # negative tail: 1 + erf cancels, exp underflows
        r.uniform(3, 12, n // 8),
        np.exp(r.uniform(-100, 88, n // 4)) * r.choice([-1, 1], n // 4),  # tiny to huge magnitudes
        [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1e-38, 3.4e38, -3.4e38, 5.54, -5.54,
         9.0, -9.0, 13.1, -13.1, 87.5, -87.5, 126.0, -126.0],
    ]
    x = np.concatenate([np.asarray(p, np.float64) for p in parts]).astype(np.float32)
    return x[r.permutation(x.size)]


def _fwd(x):
    return vt.nn.functional.gelu(vt.from_numpy(x)).numpy(), torch.nn.functional.gelu(torch.from_numpy(x)).numpy()


def _bwd(g, x):
    got = vt.ops.vt.gelu_backward(vt.from_numpy(g), vt.from_numpy(x)).numpy()
    return got, torch.ops.aten.gelu_backward(torch.from_numpy(g), torch.from_numpy(x)).numpy()


@needs_onednn
@pytest.mark.parametrize("n", [2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 1027, 100_003])
def test_forward_and_backward_bitwise(n):
    x = _inputs(n, seed=n)[:n] if n < 64 else _inputs(n, seed=n)
    _bits_equal(*_fwd(x))
    g = np.random.default_rng(n + 1).standard_normal(x.size).astype(np.float32)
    if x.size > 3:
        g[:3] = [np.inf, np.nan, 0.0]
    _bits_equal(*_bwd(g, x))


@needs_onednn
def test_bit_pattern_sweep():
    # every 4099th float32 bit pattern: all exponents, both signs, subnormals, NaN payloads
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    _bits_equal(*_fwd(x))
    g = np.random.default_rng(5).standard_normal(x.size).astype(np.float32)
    _bits_equal(*_bwd(g, x))
    # dense near 0, where the polynomial indices and exp's underflow change
    x = np.linspace(-14, 14, 1_000_003, dtype=np.float32)
    _bits_equal(*_fwd(x))
    _bits_equal(*_bwd(np.ones_like(x), x))


@needs_onednn
@pytest.mark.parametrize("layout", ["transpose", "step", "expand", "offset"])
def test_strided_layouts_round_as_contiguous(layout):
    # torch's strided path is ATen's (another A&S, Sleef exp, libm at row ends) and differs from its contiguous
    # one; vt computes every layout the contiguous way, so compare with torch on a contiguous copy
    x = _inputs(800, seed=11)[:37 * 19].reshape(37, 19)
    g = np.random.default_rng(12).standard_normal((37, 19)).astype(np.float32)
    views = {
        "transpose": lambda m, a: a.t(),
        "step": lambda m, a: a[:, ::3],
        "expand": lambda m, a: a[:1].expand(5, 19),
        "offset": lambda m, a: a[1:, 2:-1],
    }[layout]
    vx, tx = views(vt, vt.from_numpy(x)), views(torch, torch.from_numpy(x))
    vg, tg = views(vt, vt.from_numpy(g)), views(torch, torch.from_numpy(g))
    assert not tx.is_contiguous()
    _bits_equal(vt.nn.functional.gelu(vx).numpy(), torch.nn.functional.gelu(tx.contiguous()).numpy())
    _bits_equal(vt.ops.vt.gelu_backward(vg, vx).numpy(),
                torch.ops.aten.gelu_backward(tg.contiguous(), tx.contiguous()).numpy())


@needs_onednn
def test_backward_broadcast_grad():
    x = _inputs(64, seed=3)[:4 * 9].reshape(4, 9)
    g = np.float32([[2.5]])
    got = vt.ops.vt.gelu_backward(vt.from_numpy(g), vt.from_numpy(x)).numpy()
    _bits_equal(got, torch.ops.aten.gelu_backward(torch.from_numpy(g).expand(4, 9).contiguous(),
                                                  torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)], ids=str)
def test_one_element_is_atens_formula(shape):
    # torch skips oneDNN for one element: ATen's scalar x * 0.5 * (1 + erff(x / sqrt2)) and its gradient, libm
    for v in [0.3, -0.7, -3.2, -6.5, 2.2, 1e-20, -12.0, np.inf, -np.inf, np.nan]:
        x = np.full(shape, v, np.float32)
        g = np.full(shape, 1.5, np.float32)
        _bits_equal(*_fwd(x))
        _bits_equal(*_bwd(g, x))


def test_empty():
    x = np.zeros((0, 3), np.float32)
    assert vt.nn.functional.gelu(vt.from_numpy(x)).shape == (0, 3)
    assert vt.ops.vt.gelu_backward(vt.from_numpy(x), vt.from_numpy(x)).shape == (0, 3)


@pytest.fixture(params=MODELS)
def model(request):
    old = C.cpu_gelu_model()
    try:
        C.set_cpu_gelu_model(request.param)
    except NotImplementedError:
        pytest.skip(f"this CPU cannot run {request.param}")
    yield request.param
    C.set_cpu_gelu_model(old)


def test_each_model_is_close_to_float64(model):
    # the oneDNN models are approximations; this bounds how far (and would catch a misread table or sequence).
    # Both compute erf near +-1 in float, so where 1 + erf cancels (x near -5) their absolute error is a few
    # ulp of 1 times |x| / 2: ~1e-6 for the minimax tables, ~2e-7 for A&S.
    atol = {"minimax": 1.2e-6, "abramowitz_stegun": 3e-7, "libm": 3e-7}[model]
    x = np.concatenate([np.linspace(-9, 9, 300_001), np.linspace(-1e-3, 1e-3, 1001)]).astype(np.float32)
    x64 = x.astype(np.float64)
    phi = 0.5 * np.vectorize(math.erfc)(-x64 / math.sqrt(2.0))
    got = vt.nn.functional.gelu(vt.from_numpy(x)).numpy().astype(np.float64)
    np.testing.assert_allclose(got, x64 * phi, rtol=2e-6, atol=atol)
    dgot = vt.ops.vt.gelu_backward(vt.from_numpy(np.ones_like(x)), vt.from_numpy(x)).numpy().astype(np.float64)
    np.testing.assert_allclose(dgot, phi + x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi),
                               rtol=2e-6, atol=3e-7)
    # special values: NaN stays NaN, +inf -> +inf except the minimax model (NaN, as oneDNN's AVX-512 code gives)
    y = vt.nn.functional.gelu(vt.from_numpy(np.float32([np.nan, np.inf, -np.inf, 0.0, -0.0]))).numpy()
    assert np.isnan(y[0]) and y[3] == 0.0 and y[4] == 0.0
    assert np.isnan(y[1]) if model == "minimax" else y[1] == np.inf


def test_unknown_model_is_refused():
    with pytest.raises(RuntimeError, match="unknown model"):
        C.set_cpu_gelu_model("sleef")
    assert C.cpu_gelu_model() in MODELS


def test_model_does_not_touch_float64_or_tanh(model):
    # the models are float32 exact gelu only: float64 and approximate='tanh' keep their libm formulas
    x = np.linspace(-6, 6, 1001)
    ref = x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    np.testing.assert_allclose(vt.nn.functional.gelu(vt.from_numpy(x)).numpy(), ref, rtol=1e-14, atol=1e-15)
    xf = x.astype(np.float32)
    got = vt.nn.functional.gelu(vt.from_numpy(xf), approximate="tanh").numpy()
    # (torch's vectorised tanh rounds to -1 below x ~ -5.5, so its gelu is -0 there where libm's is -1.5e-7)
    np.testing.assert_allclose(got, torch.nn.functional.gelu(torch.from_numpy(xf), approximate="tanh").numpy(),
                               rtol=1e-6, atol=2e-7)


@needs_onednn
@pytest.mark.parametrize("layout", ["dense", "strided"])
def test_bfloat16_rounds_as_torch(layout):
    """Note [bfloat16 gelu as torch's oneDNN]: under oneDNN's AVX-512 model torch's bfloat16 gelu and its gradient
    are the float32 kernels rounded once; so are vibetensor's, bit for bit over activations' range (the far
    negative tail, where torch flushes subnormal results to zero, is left out)."""
    if C.cpu_gelu_model() != "minimax":
        pytest.skip("torch's bfloat16 gelu is oneDNN's only with its AVX-512 kernels")
    r = np.random.default_rng(11)
    x, g = (r.standard_normal(1 << 16) * 3).astype(np.float32), r.standard_normal(1 << 16).astype(np.float32)
    xt, gt = torch.from_numpy(x).bfloat16(), torch.from_numpy(g).bfloat16()
    xv, gv = vt.from_numpy(x).to(vt.bfloat16), vt.from_numpy(g).to(vt.bfloat16)
    if layout == "strided":  # computed as torch computes the same values laid out densely (its strided path is ATen's)
        xt, gt, xv, gv = xt[::2].contiguous(), gt[::2].contiguous(), xv[::2], gv[::2]
    got = [vt.nn.functional.gelu(xv), vt.ops.vt.gelu_backward(gv, xv)]
    want = [torch.nn.functional.gelu(xt), torch.ops.aten.gelu_backward(gt, xt)]
    for a, b in zip(got, want):
        _bits_equal(a.float().numpy(), b.float().numpy())
    _bits_equal(got[0].float().numpy(), vt.nn.functional.gelu(xv.float()).to(vt.bfloat16).float().numpy())
