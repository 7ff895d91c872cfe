"""The CPU kernels' vectorised forms against torch and float64: small Python-number powers computed as torch's
CPU kernel computes them (Note [Small powers]), clamp as selects (ClampSelectOp) with every NaN, infinity and
integer-bound case, the floating sums of the reductions (Note [Vector sums]) along inner, outer and all dims of
contiguous, strided and odd-sized inputs, mean on the CPU, and parameterised activations whose functor copies
let the loops vectorise (Note [Functor copies])."""
import contextlib

import numpy as np
import pytest
import torch

import vibetensor.torch as vt

NAN, INF = float("nan"), float("inf")


def _pair(shape, seed, dtype="float32", scale=3.0):
    x = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    return vt.from_numpy(x.copy()), torch.from_numpy(x.copy())


@contextlib.contextmanager
def _isa(name):
    """Runs the block with cpu_math's instruction-set family `name`, skipping the test where the CPU lacks it."""
    from vibetensor._C import core as C
    before = C.cpu_math_isa()
    try:
        C.set_cpu_math_isa(name)
    except NotImplementedError:
        pytest.skip(f"this CPU lacks {name}")
    try:
        yield
    finally:
        C.set_cpu_math_isa(before)


def _bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("e", [2, 3, -1, -2, 0.5, -0.5, 2.0, 1.5, 4])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_small_powers_as_torch(e, dtype):
    v, t = _pair((33, 17), 1, dtype)
    if e in (0.5, -0.5, 1.5):
        v, t = v.abs(), t.abs()
    specials = torch.tensor([0.0, -0.0, INF, -INF, NAN, 1e-30, -3.0], dtype=getattr(torch, dtype))
    for vv, tt in ((v, t), (v.t(), t.t()), (v[:, ::3], t[:, ::3]), (vt.from_numpy(specials.numpy()), specials)):
        got, want = (vv ** e).numpy(), (tt ** e).numpy()
        if e in (2, 3, -1, -2, -0.5, 2.0):  # torch's formulas exactly (NaNs included)
            _bits(got, want)
        elif e == 0.5:  # sqrt, correctly rounded (torch's vector sqrt is within an ulp of it)
            with np.errstate(invalid="ignore"):
                ref = np.sqrt(vv.numpy().astype(np.float64)).astype(dtype)
            _bits(got, ref)
            np.testing.assert_allclose(got, want, rtol=3e-7 if dtype == "float32" else 3e-16)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-13)
    x = v.clone()
    x.pow_(e)
    np.testing.assert_array_equal(x.numpy(), (v ** e).numpy())


def test_small_powers_16bit_and_tensor_exponent():
    v, t = _pair((40,), 2, scale=2.0)
    for dt in ("float16", "bfloat16"):
        got = (v.to(getattr(vt, dt)) ** 2).float().numpy()
        want = (t.to(getattr(torch, dt)) ** 2).float().numpy()
        np.testing.assert_array_equal(got, want)
        x = v.abs().to(getattr(vt, dt))[::2]  # each exponent's formula in float32, rounded once (strided too)
        for e in (2, 3, -1, -2, 0.5, -0.5):
            _bits((x ** e).view(vt.int16).numpy(), (x.float() ** e).to(getattr(vt, dt)).view(vt.int16).numpy())
    # a 0-dim tensor exponent takes the general path, and agrees
    np.testing.assert_allclose((v ** vt.tensor(2.0)).numpy(), (t ** 2).numpy(), rtol=1e-6)


@pytest.mark.parametrize("lo,hi", [(-1.0, 1.0), (-1.0, None), (None, 0.5), (NAN, 1.0), (-1.0, NAN), (NAN, None),
                                   (None, NAN), (2.0, -2.0), (-INF, INF), (0.0, 0.0)])
def test_clamp_bounds_as_torch(lo, hi):
    """A NaN bound makes every element NaN (torch 2.13's result; torch 2.11's CPU kernel on an AVX-512 Xeon
    returned the input unchanged, so those cases compare with the all-NaN answer instead of the installed torch)."""
    v, t = _pair((7, 31), 3)
    specials = torch.tensor([NAN, INF, -INF, 0.0, -0.0, 5.0, -5.0])
    nan_bound = any(b is not None and b != b for b in (lo, hi))
    for vv, tt in ((v, t), (v.t(), t.t()), (vt.from_numpy(specials.numpy()), specials)):
        want = np.full(tuple(tt.shape), np.nan, np.float32) if nan_bound else tt.clamp(lo, hi).numpy()
        _bits(vv.clamp(lo, hi).numpy(), want)
        w = vv.clone()
        w.clamp_(lo, hi)
        _bits(w.numpy(), want)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
def test_clamp_integers(dtype):
    x = np.random.default_rng(4).integers(-100 if dtype != "uint8" else 0, 100, 50).astype(dtype)
    for lo, hi in ((-10, 10), (5, None), (None, 3), (20, 10)):
        if dtype == "uint8" and lo is not None and lo < 0:
            lo = 0
        _bits(vt.from_numpy(x).clamp(lo, hi).numpy(), torch.from_numpy(x).clamp(lo, hi).numpy())


@pytest.mark.parametrize("shape", [(1,), (15,), (64,), (1000,), (3, 129), (257, 33), (64, 1024)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sums_vs_float64(shape, dtype):
    v, _ = _pair(shape, 5, dtype)
    ref = v.numpy().astype(np.float64)
    tol = dict(rtol=1e-6, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(v.sum().item(), ref.sum(), **tol)
    for d in range(len(shape)):
        np.testing.assert_allclose(v.sum(d).numpy(), ref.sum(d), **tol)
        np.testing.assert_allclose(v.mean(d, keepdim=True).numpy(), ref.mean(d, keepdims=True), **tol)
    if len(shape) == 2:  # strided views: transposed and sliced
        np.testing.assert_allclose(v.t().sum(1).numpy(), ref.T.sum(1), **tol)
        np.testing.assert_allclose(v[:, 1::2].sum(1).numpy(), ref[:, 1::2].sum(1), **tol)
        np.testing.assert_allclose(v[::2].sum(0).numpy(), ref[::2].sum(0), **tol)


@pytest.mark.parametrize("shape,dims", [((130, 2000), (0,)), ((7, 33, 300), (0, 1)), ((6, 5, 1100), (0,)),
                                        ((3, 4, 5), (0,)), ((2, 70000), (0,)), ((8320, 192), (0,)),
                                        ((1030, 3, 7), (0,)), ((77, 109, 13), (0, 1))])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leading_dim_sums(shape, dims, dtype):
    """Note [Leading-dim sums]: outputs split across threads, rows eight at a time (odd row counts too); narrow
    rows split into row blocks whose partials add in block order, the same for any thread count."""
    v, t = _pair(shape, 8, dtype)
    ref = v.numpy().astype(np.float64).sum(dims)
    tol = dict(rtol=1e-6, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-10)
    got = v.sum(dims)
    np.testing.assert_allclose(got.numpy(), ref, **tol)
    np.testing.assert_allclose(v.sum(dims, keepdim=True).numpy(), ref.reshape((1,) * len(dims) + ref.shape), **tol)
    np.testing.assert_allclose(v.mean(dims).numpy(), t.mean(dims).numpy(), rtol=2e-6, atol=1e-6)
    _bits(got.numpy(), v.sum(dims).numpy())  # a fixed order: the same sum every call
    threads = vt.get_num_threads()
    try:
        vt.set_num_threads(1)
        _bits(got.numpy(), v.sum(dims).numpy())  # and the same on one thread
    finally:
        vt.set_num_threads(threads)


@pytest.mark.parametrize("shape,dims", [((1031, 257), (0,)), ((9, 4100), (0,)), ((3, 700, 33), (0, 1)),
                                        ((2051, 40000), (0,)), ((12, 5), (0,))])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_leading_dim_sums_16bit(shape, dims, dtype):
    """Note [16-bit leading sums]: float16/bfloat16 sums over the leading dims (trees of eight rows in float32,
    float16 converted by F16C, row blocks or, past 32768 columns, the column split) against the float64 sum of
    the same 16-bit values: within one rounding of the result's dtype, and the same bits on one thread."""
    x = np.random.default_rng(9).standard_normal(shape).astype(np.float32) * np.float32(3.0)
    if shape[0] == 12:
        x[:, 1] = [65000.0, -65000.0] * 6  # cancellation: the 16-bit result is 0 only if nothing rounds early
    v = vt.from_numpy(x).to(getattr(vt, dtype))
    ref = v.to(vt.float64).numpy().sum(dims)
    got = v.sum(dims)
    eps = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}[dtype]
    np.testing.assert_allclose(got.to(vt.float64).numpy(), ref, rtol=eps, atol=eps)
    threads = vt.get_num_threads()
    try:
        vt.set_num_threads(1)
        _bits(got.to(vt.float32).numpy(), v.sum(dims).to(vt.float32).numpy())
    finally:
        vt.set_num_threads(threads)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_bfloat16_row_sums_in_float_fours(isa):
    """Note [bfloat16 sums in float fours]: bfloat16 row sums (four values added in float32 before the double
    lanes) on every instruction set, rows shorter than a block of 16 H, exactly one and past it with tails,
    within one bfloat16 rounding of the float64 sum of the same values; float16 with F16C (Note [F16C
    conversions]) on the same rows."""
    with _isa(isa):
        for n in (1, 31, 63, 64, 127, 128, 129, 1000, 4099):
            x = np.random.default_rng(n).standard_normal((5, n)).astype(np.float32) * np.float32(10.0)
            for dtype in ("bfloat16", "float16"):
                v = vt.from_numpy(x).to(getattr(vt, dtype))
                ref = v.to(vt.float64).numpy().sum(-1)
                eps = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}[dtype]
                np.testing.assert_allclose(v.sum(-1).to(vt.float64).numpy(), ref, rtol=eps, atol=eps)
                np.testing.assert_allclose(float(v.sum()), ref.sum(), rtol=eps, atol=eps)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_float16_conversion_covers_every_bit_pattern(isa):
    """Note [F16C conversions]: the vector float16 -> float32 conversion (here through amax over the leading dim
    against -inf) gives every one of the 65,536 values numpy gives, subnormals, infinities and NaNs included, on
    every instruction set (F16C on avx2 and avx512, half.h's bit conversion on generic)."""
    with _isa(isa):
        bits = np.arange(1 << 16, dtype=np.uint16)
        halves = bits.view(np.float16)
        x = np.stack([halves, np.full_like(halves, -np.inf)])
        got = vt.from_numpy(x).amax(0).to(vt.float32).numpy()
    want = halves.astype(np.float32)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got[~np.isnan(got)]), np.signbit(want[~np.isnan(want)]))


@pytest.mark.parametrize("shape,dims", [((130, 2000), (0,)), ((7, 33, 300), (0, 1)), ((9, 4100), (0,)),
                                        ((3, 4, 5), (0,)), ((1030, 3, 7), (0,)), ((17, 1), (0,))])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_leading_dim_extremes_16bit(shape, dims, dtype):
    """Note [16-bit leading rows]: amax/amin of float16/bfloat16 over the leading dims through float32 blocks
    (8 rows x 2048 columns: 4100 columns cross two block edges, 9 and 1030 rows leave partial blocks) give torch's
    values exactly, NaN winning, signed zeros and infinities kept."""
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32) * 100
    flat = x.reshape(-1)
    flat[1::97], flat[5::131], flat[7::173] = np.inf, -np.inf, -0.0
    if flat.size > 50:
        flat[41] = np.nan
    v, t = vt.from_numpy(x).to(getattr(vt, dtype)), torch.from_numpy(x).to(getattr(torch, dtype))

    def same(a, b):  # values and the sign of zeros; any NaN matches any NaN
        a, b = a.to(vt.float32).numpy(), b.float().numpy()
        assert a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        assert np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))
    for name in ("amax", "amin"):
        same(getattr(v, name)(dims), getattr(t, name)(dims))
        same(getattr(v, name)(dims, keepdim=True), getattr(t, name)(dims, keepdim=True))


@pytest.mark.parametrize("shape,dim", [((130, 2100), 0), ((7, 33, 300), 1), ((9, 5, 4100), 0), ((3, 4, 5), 1)])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_arg_extremes_across_rows_16bit(shape, dim, dtype):
    """Note [Arg-extremes across rows] for float16/bfloat16: max/min/argmax/argmin over a dim that is not the
    innermost give torch's values and indices: ties to the first index (values rounded to a few levels), the first
    NaN winning, infinities and signed zeros."""
    x = np.round(np.random.default_rng(4).standard_normal(shape).astype(np.float32) * 4) / 4
    flat = x.reshape(-1)
    flat[1::97], flat[5::131], flat[7::173] = np.inf, -np.inf, -0.0
    flat[41::1009] = np.nan
    v, t = vt.from_numpy(x).to(getattr(vt, dtype)), torch.from_numpy(x).to(getattr(torch, dtype))
    for name in ("max", "min"):
        (gv, gi), (wv, wi) = getattr(v, name)(dim), getattr(t, name)(dim)
        a, b = gv.to(vt.float32).numpy(), wv.float().numpy()
        assert np.array_equal(a, b, equal_nan=True)
        assert np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))
        np.testing.assert_array_equal(gi.numpy(), wi.numpy())
    np.testing.assert_array_equal(v.argmax(dim).numpy(), t.argmax(dim).numpy())
    np.testing.assert_array_equal(v.argmin(dim).numpy(), t.argmin(dim).numpy())


def test_sum_specials_and_determinism():
    x = vt.tensor([[1.0, NAN, 2.0] + [0.0] * 30, [INF, 1.0] + [0.0] * 31, [INF, -INF] + [0.0] * 31,
                   [1e30, -1e30] + [0.0] * 31, [1.0] * 33])
    s = x.sum(1).tolist()
    assert np.isnan(s[0]) and s[1] == INF and np.isnan(s[2]) and s[3] == 0.0 and s[4] == 33.0
    col = x.t().contiguous().sum(0).tolist()
    assert np.isnan(col[0]) and col[1] == INF and np.isnan(col[2]) and col[3] == 0.0 and col[4] == 33.0
    big, _ = _pair((1 << 20,), 6)
    assert big.sum().item() == big.sum().item()  # a fixed order: the same sum every call


def test_mean_as_torch_dtypes():
    v, t = _pair((9, 70), 7)
    assert v.mean(1).dtype == vt.float32
    np.testing.assert_allclose(v.mean(1).numpy(), t.mean(1).numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(v.mean(1).numpy(), v.numpy().astype(np.float64).mean(1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(v.mean().item(), t.mean().item(), rtol=2e-6, atol=1e-6)
    for dt in ("float16", "bfloat16"):
        got = v.to(getattr(vt, dt)).mean(1).float().numpy()
        want = t.to(getattr(torch, dt)).mean(1).float().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)
    assert v.to(vt.float16).mean(1).dtype == vt.float16


@pytest.mark.parametrize("name,args", [("leaky_relu", (0.2,)), ("elu", (0.7,)), ("hardtanh", (-0.5, 0.5)),
                                       ("softplus", (2.0, 5.0)), ("celu", (1.3,)), ("threshold", (0.1, -2.0))])
def test_parameterised_activations(name, args):
    v, t = _pair((5, 67), 8)
    got = getattr(vt.nn.functional, name)(v.t(), *args).numpy()
    want = getattr(torch.nn.functional, name)(t.t(), *args).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(2,), (1000,), (300, 77), (3, 65537)])
def test_whole_two_norm_fast_path(shape):
    v, t = _pair(shape, 9)
    ref = np.sqrt((v.numpy().astype(np.float64) ** 2).sum())
    for args, kw in (((), {}), ((2,), {}), ((2, None, True), {}), ((2, tuple(range(len(shape)))), {})):
        got, want = v.norm(*args, **kw), t.norm(*args, **kw)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == vt.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-6)
        np.testing.assert_allclose(float(got.sum()), ref, rtol=1e-7)
    np.testing.assert_allclose(vt.linalg.vector_norm(v).item(), ref, rtol=1e-7)
    np.testing.assert_allclose(v.t().norm().item() if v.dim() == 2 else v.norm().item(), ref, rtol=1e-6)


def test_whole_two_norm_specials_and_autograd():
    assert np.isnan(vt.tensor([NAN, 1.0]).norm().item()) and vt.tensor([INF, 1.0]).norm().item() == INF
    assert vt.tensor([1e30, 1e30]).norm().item() == pytest.approx(1.4142135e30, rel=1e-6)  # no float overflow
    assert vt.tensor([3.0, 4.0]).norm().item() == 5.0
    x = vt.tensor([3.0, -4.0], requires_grad=True)
    n = x.norm()
    n.backward()  # under autograd the differentiable composite runs
    np.testing.assert_allclose(x.grad.numpy(), [0.6, -0.8], rtol=1e-6)
    with vt.no_grad():
        assert x.norm().item() == 5.0


def test_two_norm_keeps_unreduced_unit_dims():
    v, t = _pair((3, 1, 5), 10)
    for dim in ((0, 2), (0, 1, 2), (2,)):
        for keep in (False, True):
            got, want = v.norm(2, dim, keep), t.norm(2, dim, keep)
            assert tuple(got.shape) == tuple(want.shape)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_casts_to_and_from_16_bit_as_torch(dtype):
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**32, 50_000, dtype=np.uint64).astype(np.uint32)  # every kind of float32
    x = np.concatenate([bits.view(np.float32), np.array([0.0, -0.0, INF, -INF, NAN, 65504.0, 65520.0, 1e-8,
                                                         1.00390625, 1.01171875, 3.4e38], np.float32)])
    v, t = vt.from_numpy(x), torch.from_numpy(x)
    for vv, tt in ((v, t), (v[::3], t[::3])):  # dense, and strided
        got, want = vv.to(getattr(vt, dtype)), tt.to(getattr(torch, dtype))
        nan = np.isnan(tt.numpy())  # NaN payloads are not compared (vt writes the canonical quiet NaN)
        np.testing.assert_array_equal(np.isnan(got.float().numpy()), nan)
        _bits(got.view(vt.int16).numpy()[~nan], want.view(torch.int16).numpy()[~nan])
        back, tback = got.float(), want.float()
        np.testing.assert_array_equal(np.isnan(back.numpy()), np.isnan(tback.numpy()))
        ok = ~np.isnan(tback.numpy())
        _bits(back.numpy()[ok], tback.numpy()[ok])


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_float16_conversions_every_half_and_random_floats(isa):
    """The float16 conversions against NumPy's: every one of the 65536 halves to float32 (half.h's branch-free
    loop, NaN payloads included), and float32 -> float16 over 4M random bit patterns plus every rounding
    boundary class (subnormal halves, overflow past 65504, ties), NaNs as any NaN: the dense cast takes F16C on
    the avx2 and avx512 families (Note [F16C conversions]), half.h's bit conversion on generic."""
    with _isa(isa):
        _check_float16_conversions()


def _check_float16_conversions():
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    got = vt.from_numpy(halves.copy()).to(vt.float32).numpy()
    np.testing.assert_array_equal(got.view(np.uint32), halves.astype(np.float32).view(np.uint32))
    bits = np.random.default_rng(9).integers(0, 1 << 32, 1 << 22, dtype=np.uint64).astype(np.uint32)
    edges = np.array([65504.0, 65519.99, 65520.0, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -14,
                      2.0 ** -14 - 2.0 ** -25, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1e-8], dtype=np.float32)
    floats = np.concatenate([bits.view(np.float32), edges, -edges])
    got = vt.from_numpy(floats.copy()).to(vt.float16).numpy()
    with np.errstate(over="ignore", invalid="ignore"):
        want = floats.astype(np.float16)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint16), want[~nan].view(np.uint16))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int16", "int64"])
def test_where_and_masked_fill_pass_bits(dtype):
    """where/masked_fill as bit masks on the CPU (unary_functors.h select): each element is one branch's bits,
    NaN payloads and -0.0 included, on a random condition, dense and strided."""
    rng = np.random.default_rng(11)
    n = 1000
    bits = rng.integers(0, 1 << 16, n, dtype=np.uint64)
    cond = rng.random(n) < 0.5
    if dtype in ("float16", "bfloat16", "int16"):
        a = vt.from_numpy(bits.astype(np.uint16).view(np.int16).copy()).view(getattr(vt, dtype))
    else:
        raw = rng.integers(0, 1 << 62, n, dtype=np.uint64) | (bits << 48)  # NaN payloads among them
        a = vt.from_numpy(raw.view(np.int64).copy()).view(vt.float64 if dtype == "float64" else vt.int64)
        if dtype == "float32":
            a = vt.from_numpy(raw.astype(np.uint32).view(np.int32).copy()).view(vt.float32)
    b = vt.zeros(n, dtype=a.dtype) - 0.0 if a.dtype.is_floating_point else vt.zeros(n, dtype=a.dtype)
    c = vt.from_numpy(cond.copy())
    iview = {2: vt.int16, 4: vt.int32, 8: vt.int64}[a.element_size()]
    for cc, aa, bb in ((c, a, b), (c[::2], a[::2], b[::2])):
        want = np.where(cc.numpy(), aa.view(iview).numpy(), bb.view(iview).numpy())
        np.testing.assert_array_equal(vt.where(cc, aa, bb).view(iview).numpy(), want)
        np.testing.assert_array_equal(bb.clone().masked_fill(cc, 7).view(iview).numpy(),
                                      np.where(cc.numpy(), vt.tensor(7, dtype=a.dtype).view(iview).item(),
                                               bb.view(iview).numpy()))


@pytest.mark.parametrize("shape", [(7, 33), (4, 1000), (1, 5), (0, 5), (9, 1), (2, 3, 70)])
def test_cumsum_rows_interleaved(shape):
    """Note [Interleaved scans]: dense float32 rows four at a time give the strided lane's bits exactly (the same
    float64 chain per row), and stay within float32 rounding of NumPy's float64 cumsum."""
    v, _ = _pair(shape, 12)
    got = v.cumsum(-1)
    strided = v.transpose(0, -1).contiguous().transpose(0, -1)  # the same values, not dense along the rows
    _bits(got.numpy(), strided.cumsum(-1).numpy())
    np.testing.assert_allclose(got.numpy(), np.cumsum(v.numpy().astype(np.float64), -1), rtol=1e-6, atol=1e-5)
