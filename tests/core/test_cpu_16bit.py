"""float16 and bfloat16 on the CPU compute in float32 and round once (Note [16-bit rows in float], the array
kernels of cpu_vec_map.h): every 16-bit result here must equal, bit for bit, the float32 kernel's result on the
widened inputs rounded to the 16-bit dtype - softmax and log_softmax rows and their backward, layer and rms norm
forward and backward (affine gradients included), tanh gelu with its gradient, silu, exp - on dense and strided
operands, in every instruction set this CPU runs; and it must stay within 16-bit rounding of torch. Exact gelu in
16 bits is GeluF's formula over the erf lane, as torch computes its 16-bit gelu (float32 follows oneDNN's
rounding instead, cpu_gelu.h): within 16-bit rounding of torch, specials included.
Their sums and 2-norms accumulate in float64 through float32 buffers: against NumPy's in float64."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor._C import core as C

from helpers import kernel_variant_fixture

isa = kernel_variant_fixture(C.cpu_math_isa, C.set_cpu_math_isa, ("generic", "avx2", "avx512"))
op = C.op
DTYPES = ["bfloat16", "float16"]
TOL = {"bfloat16": dict(rtol=2e-2, atol=2e-2), "float16": dict(rtol=2e-3, atol=2e-3)}


def _arrays(shape, seed, n=3):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) * 2).astype(np.float32) for _ in range(n)]


def _vt(a, dtype):
    return vt.from_numpy(a.copy()).to(getattr(vt, dtype))


def _widened(t):
    return t.to(vt.float32)


def _same_bits(got, want_f32, dtype):
    want = want_f32.to(getattr(vt, dtype))
    assert tuple(got.shape) == tuple(want.shape) and got.dtype == want.dtype
    g, w = got.contiguous().view(vt.int16).numpy(), want.contiguous().view(vt.int16).numpy()
    np.testing.assert_array_equal(g, w)


def _near_torch(got, fn, arrays, dtype):
    ts = [torch.from_numpy(a.copy()).to(getattr(torch, dtype)) for a in arrays]
    want = fn(torch, *ts)
    np.testing.assert_allclose(got.to(vt.float64).numpy(), want.double().numpy(), **TOL[dtype])


ELEMENTWISE = {
    "gelu": lambda m, x: m.nn.functional.gelu(x),
    "gelu_tanh": lambda m, x: m.nn.functional.gelu(x, approximate="tanh"),
    "silu": lambda m, x: m.nn.functional.silu(x),
    "exp": lambda m, x: m.exp(x),
    "softmax": lambda m, x: m.softmax(x, -1),
    "log_softmax": lambda m, x: m.log_softmax(x, -1),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["dense", "strided"])
def test_forward_is_float32_rounded(name, dtype, layout, isa):
    fn = ELEMENTWISE[name]
    (a,) = _arrays((37, 300), 1, 1)
    x = _vt(a, dtype)
    if layout == "strided":
        x = x[:, ::2]
        a = a[:, ::2]
    got = fn(vt, x)
    if name != "gelu":
        _same_bits(got, fn(vt, _widened(x)), dtype)
    if layout == "dense" or name == "gelu":
        _near_torch(got, fn, [a], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True])
def test_softmax_backward_is_float32_rounded(dtype, log, isa):
    a, g = _arrays((19, 515), 2, 2)
    x, gv = _vt(a, dtype), _vt(g, dtype)
    y = op("vt::_softmax")(x, -1, log)
    got = op("vt::_softmax_backward")(gv, y, -1, log)
    _same_bits(got, op("vt::_softmax_backward")(_widened(gv), _widened(y), -1, log), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_norms_are_float32_rounded(dtype, rms, affine, isa):
    a, g, w = _arrays((23, 257), 3, 3)
    x, gv = _vt(a, dtype), _vt(g, dtype)
    wv = _vt(w[0], dtype) if affine else None
    bv = _vt(w[1], dtype) if affine and not rms else None
    wide = lambda t: None if t is None else _widened(t)  # noqa: E731
    if rms:
        y, rstd = op("vt::native_rms_norm")(x, [257], wv, 1e-5)
        y32, rstd32 = op("vt::native_rms_norm")(_widened(x), [257], wide(wv), 1e-5)
        grads = op("vt::native_rms_norm_backward")(gv, x, [257], rstd, wv, 3)
        grads32 = op("vt::native_rms_norm_backward")(_widened(gv), _widened(x), [257], rstd32, wide(wv), 3)
    else:
        y, mean, rstd = op("vt::native_layer_norm")(x, [257], wv, bv, 1e-5)
        y32, mean32, rstd32 = op("vt::native_layer_norm")(_widened(x), [257], wide(wv), wide(bv), 1e-5)
        np.testing.assert_array_equal(mean.numpy(), mean32.numpy())
        grads = op("vt::native_layer_norm_backward")(gv, x, [257], mean, rstd, wv, 7)
        grads32 = op("vt::native_layer_norm_backward")(_widened(gv), _widened(x), [257], mean32, rstd32, wide(wv), 7)
    np.testing.assert_array_equal(rstd.numpy(), rstd32.numpy())
    _same_bits(y, y32, dtype)
    _same_bits(grads[0], grads32[0], dtype)
    if affine:  # the affine gradients sum over rows in float32 partials: the same sums, rounded once
        _same_bits(grads[1], grads32[1], dtype)
        if not rms:
            _same_bits(grads[2], grads32[2], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_silu_backward_are_float32_rounded(dtype, approximate, isa):
    a, g = _arrays((11, 333), 4, 2)
    x, gv = _vt(a, dtype), _vt(g, dtype)
    got = op("vt::gelu_backward")(gv, x, approximate=approximate)
    if approximate == "tanh":
        _same_bits(got, op("vt::gelu_backward")(_widened(gv), _widened(x), approximate=approximate), dtype)
    else:
        _near_torch(got, lambda m, g_, x_: torch.ops.aten.gelu_backward(g_, x_), [g, a], dtype)
    got = op("vt::silu_backward")(gv, x)
    _same_bits(got, op("vt::silu_backward")(_widened(gv), _widened(x)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3001), (1, 70000), (2, 3, 1029)])
def test_sums_in_float64(dtype, shape, isa):
    (a,) = _arrays(shape, 5, 1)
    x = _vt(a, dtype)
    exact = x.to(vt.float64).numpy()
    for dims in (None, -1, 0):
        got = x.sum() if dims is None else x.sum(dims)
        want = exact.sum() if dims is None else exact.sum(dims)
        assert got.dtype == x.dtype
        np.testing.assert_allclose(got.to(vt.float64).numpy(), want, rtol=TOL[dtype]["rtol"] / 2, atol=1e-3)
        got32 = x.sum(dtype=vt.float32) if dims is None else x.sum(dims, dtype=vt.float32)
        np.testing.assert_allclose(got32.numpy(), want, rtol=1e-6, atol=1e-4)
    norm = x.norm()  # the whole-tensor 2-norm (gradient clipping's), squares summed in float64
    assert norm.dtype == x.dtype
    np.testing.assert_allclose(norm.to(vt.float64).item(), np.sqrt((exact * exact).sum()), rtol=TOL[dtype]["rtol"] / 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_gelu_specials(dtype, isa):
    vals = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 10.0, -10.0, float("inf"), float("-inf"), float("nan")]
    got = vt.nn.functional.gelu(vt.tensor(vals).to(getattr(vt, dtype))).float().numpy()
    # the float64 gelu of the 16-bit inputs (torch's own 16-bit kernels disagree at +inf: bfloat16 NaN, float16 inf;
    # vibetensor's bfloat16 gives NaN there too where it runs torch's oneDNN arithmetic, Note [bfloat16 gelu as
    # torch's oneDNN])
    want = torch.nn.functional.gelu(torch.tensor(vals).to(getattr(torch, dtype)).double()).float().numpy()
    if dtype == "bfloat16" and C.cpu_gelu_model() == "minimax":
        want[vals.index(float("inf"))] = float("nan")
    np.testing.assert_allclose(got, want, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_abs_clears_the_sign_bit(dtype):
    """abs of a 16-bit float clears its sign bit, as torch's CPU kernel: every bit pattern (NaN payloads, -0,
    infinities, subnormals), dense and strided."""
    bits = np.arange(1 << 16, dtype=np.uint16).view(np.int16)
    t = torch.from_numpy(bits.copy()).view(getattr(torch, dtype))
    v = vt.from_numpy(bits.copy()).view(getattr(vt, dtype))
    want = (bits.view(np.uint16) & 0x7FFF).view(np.int16)
    np.testing.assert_array_equal(v.abs().view(vt.int16).numpy(), want)
    np.testing.assert_array_equal(v[::3].abs().contiguous().view(vt.int16).numpy(), want[::3])
    w = v.clone()
    w.abs_()
    np.testing.assert_array_equal(w.view(vt.int16).numpy(), want)
    number = ~torch.isnan(t)  # torch agrees off NaN (how it treats NaN payloads is its kernel's business)
    np.testing.assert_array_equal(t.abs()[number].view(torch.int16).numpy(), want[number.numpy()])
