"""float16 and bfloat16 conversions on the GPU, bit for bit (Note [Conversion instructions] in vt/core/half.h):
the device converts with cvt instructions, the host with bit arithmetic, and both must round to nearest even.

Every 16-bit pattern widened to float32; float32 narrowed to 16 bits over random bit patterns (every exponent,
subnormals, NaNs), the ties halfway between neighbouring 16-bit values and the floats next to them, the overflow
boundary (65504 / 65520 for float16) and the signed zeros and infinities; through the cast kernel (dense and
strided) and through an elementwise op that computes in float32 and rounds once. Oracles: NumPy's float16
conversions, and for bfloat16 the exact float32 widening (bits << 16) and torch's CPU rounding. A NaN must stay a
NaN; its payload is not compared (the instructions and the host code may pick different ones).
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV

pytestmark = CUDA_MARKS


def _dev(a):
    return vt.from_numpy(np.ascontiguousarray(a)).to(DEV)


def _bits16(t):
    return t.contiguous().cpu().view(vt.int16).numpy().view(np.uint16)


def _assert_same16(got_bits, want_bits, want_nan, dtype, what):
    nan = np.isnan(_widen_bits(got_bits, dtype))
    np.testing.assert_array_equal(nan, want_nan, err_msg=f"{what}: NaN where the oracle has none, or none where it has")
    bad = np.flatnonzero((got_bits != want_bits) & ~want_nan)
    assert bad.size == 0, (f"{what}: {bad.size} results differ, first at {bad[:4]}: "
                           f"got {got_bits[bad[:4]]}, want {want_bits[bad[:4]]}")


def _widen_bits(bits, dtype):
    if dtype == "bfloat16":
        return (bits.astype(np.uint32) << 16).view(np.float32)
    return bits.view(np.float16).astype(np.float32)


def _all_patterns():
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def _bf16_oracle(f32):
    """float32 -> bfloat16 bits by torch's CPU rounding (to nearest even)."""
    return torch.from_numpy(np.ascontiguousarray(f32)).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)


def _narrowing_inputs(dtype):
    """float32 values that exercise every rounding case of a conversion to `dtype`."""
    rng = np.random.default_rng(20261206)
    random_bits = rng.integers(0, 1 << 32, size=1 << 20, dtype=np.uint64).astype(np.uint32).view(np.float32)
    pats = _all_patterns()
    exact = _widen_bits(pats, dtype)
    finite = np.sort(np.unique(exact[np.isfinite(exact) & (exact >= 0)]))
    mids = ((finite[:-1].astype(np.float64) + finite[1:]) / 2).astype(np.float32)  # exact: one more bit
    around = np.concatenate([mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(0))])
    edges = np.array([0.0, np.inf, np.nan, 65504.0, 65519.996, 65520.0, 65536.0, 3.4e38,
                      2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -14, 2.0 ** -133, 2.0 ** -134,
                      1.1754942e-38, 1e-45], dtype=np.float32)
    pos = np.concatenate([random_bits, exact, around, edges])
    return np.concatenate([pos, -pos])


def _narrow_oracle(f32, dtype):
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return f32.astype(np.float16).view(np.uint16)
    return _bf16_oracle(f32)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_every_16bit_pattern_widens_exactly(dtype):
    pats = _all_patterns()
    x = _dev(pats.view(np.int16)).view(getattr(vt, dtype))
    want = _widen_bits(pats, dtype)
    for what, t in (("dense", x), ("strided", x[::3])):
        w = want if what == "dense" else want[::3]
        got = t.to(vt.float32).cpu().numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(w), err_msg=f"{dtype} {what}: NaN mismatch")
        ok = ~np.isnan(w)
        assert np.array_equal(got[ok].view(np.uint32), w[ok].view(np.uint32)), f"{dtype} -> float32 {what}"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_float32_narrows_to_nearest_even(dtype):
    f32 = _narrowing_inputs(dtype)
    want = _narrow_oracle(f32, dtype)
    want_nan = np.isnan(f32)
    x = _dev(f32)
    _assert_same16(_bits16(x.to(getattr(vt, dtype))), want, want_nan, dtype, f"{dtype} cast, dense")
    _assert_same16(_bits16(x[1::2].to(getattr(vt, dtype))), want[1::2], want_nan[1::2], dtype,
                   f"{dtype} cast, strided")
    # a 16-bit copy_ into a preallocated strided destination takes the cast kernel's other layout
    dst = vt.empty((f32.size, 2), dtype=getattr(vt, dtype), device=DEV)
    dst[:, 1].copy_(x)
    _assert_same16(_bits16(dst[:, 1]), want, want_nan, dtype, f"{dtype} copy_ into a strided view")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_elementwise_ops_round_once_like_the_cast(dtype):
    """a + b in 16 bits is the float32 sum of the widened operands, rounded once: the same rounding as the cast."""
    rng = np.random.default_rng(7)
    pats = rng.integers(0, 1 << 16, size=1 << 18, dtype=np.uint32).astype(np.uint16)
    pats2 = rng.permutation(pats)
    a32, b32 = _widen_bits(pats, dtype), _widen_bits(pats2, dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        s32 = a32 + b32
    want, want_nan = _narrow_oracle(s32, dtype), np.isnan(s32)
    a, b = (_dev(p.view(np.int16)).view(getattr(vt, dtype)) for p in (pats, pats2))
    _assert_same16(_bits16(a + b), want, want_nan, dtype, f"{dtype} a + b, dense")
    _assert_same16(_bits16(a[::2] + b[::2]), want[::2], want_nan[::2], dtype, f"{dtype} a + b, strided")
