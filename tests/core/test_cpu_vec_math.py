"""The CPU's vectorised float32 math (vt/core/cpu_vec_math.h) - exp, log, tanh, sin and their kin, activation
gradients, softmax and norm rows - in every instruction set this CPU runs (generic, avx2, avx512): ulp error
against a float64 reference over the whole float range (torch's own error beside it), the special values, every
layout and 16-bit dtype through the elementwise loop, in-place calls, and softmax/log_softmax rows of every
length around the vector width with the NaN, -inf and +inf rows whose answers torch defines."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from vibetensor._C import core as C

from helpers import kernel_variant_fixture

INF = float("inf")


isa = kernel_variant_fixture(C.cpu_math_isa, C.set_cpu_math_isa, ("generic", "avx2", "avx512"))


def test_isa_names_and_errors():
    assert C.cpu_math_isa() in ("generic", "avx2", "avx512")
    with pytest.raises(RuntimeError, match="unknown instruction set 'sse9'"):
        C.set_cpu_math_isa("sse9")


def _ordered(a):
    """float32 bit patterns as integers that are ordered like the floats (ulp distance = difference)."""
    i = np.asarray(a, np.float32).view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def _ulps(got, want):
    return np.abs(_ordered(got) - _ordered(want))


def _sample():
    rng = np.random.default_rng(7)
    return np.concatenate([rng.uniform(-110, 95, 200_000), rng.uniform(-1, 1, 50_000),
                           rng.standard_normal(50_000) * 1e-4, rng.uniform(-20, 20, 50_000)]).astype(np.float32)


FUNCS = {  # name: (vt function, torch function, float64 reference, max ulp)
    "exp": (vt.exp, torch.exp, np.exp, 1),
    "tanh": (vt.tanh, torch.tanh, np.tanh, 1),
    "sigmoid": (vt.sigmoid, torch.sigmoid, lambda x: 1 / (1 + np.exp(-x)), 2),
    "silu": (vt.nn.functional.silu, torch.nn.functional.silu, lambda x: x / (1 + np.exp(-x)), 2),
    "erf": (vt.erf, torch.erf, lambda x: torch.erf(torch.from_numpy(x)).numpy(), 1),  # libm's erf in float64
}


def _logs_sample():
    rng = np.random.default_rng(9)
    pos = np.concatenate([np.exp(rng.uniform(-103, 88, 100_000)), rng.uniform(0, 2, 50_000)]).astype(np.float32)
    l1p = np.concatenate([rng.uniform(-1, 3, 100_000), np.exp(rng.uniform(-80, 80, 50_000)),
                          -np.exp(rng.uniform(-80, 0, 20_000)) * 0.999]).astype(np.float32)
    return pos, l1p


LOGS = {  # name: (vt function, torch function, float64 reference, input set, max ulp)
    "log": (vt.log, torch.log, np.log, 0, 1),
    "log1p": (vt.log1p, torch.log1p, np.log1p, 1, 2),
    "expm1": (vt.expm1, torch.expm1, np.expm1, 2, 2),
    "logsigmoid": (vt.nn.functional.logsigmoid, torch.nn.functional.logsigmoid, lambda x: -np.logaddexp(0, -x), 2, 3),
    "mish": (vt.nn.functional.mish, torch.nn.functional.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), 3, 4),
}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_log_family_ulp_error(isa, name):
    f, tf, ref, which, bound = LOGS[name]
    x = [*_logs_sample(), _sample(), _sample()[_sample() > -20]][which]  # mish: away from its underflow tail
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64)).astype(np.float32)
    got = f(vt.from_numpy(x)).numpy()
    assert _ulps(got, want).max() <= bound, (name, isa, x[_ulps(got, want).argmax()])
    np.testing.assert_allclose(got, tf(torch.from_numpy(x)).numpy(), rtol=bound * 1.2e-7 + 1e-7, atol=1e-37)


def test_log_family_special_values(isa):
    nan = float("nan")
    x = vt.tensor([0.0, -0.0, -1.0, INF, -INF, nan, 1.0, 1e-45, -1e-30, 1e-30])
    t = torch.tensor(x.tolist())
    for f, tf in ((vt.log, torch.log), (vt.log1p, torch.log1p), (vt.expm1, torch.expm1),
                  (vt.nn.functional.logsigmoid, torch.nn.functional.logsigmoid),
                  (vt.nn.functional.mish, torch.nn.functional.mish)):
        np.testing.assert_allclose(f(x).numpy(), tf(t).numpy(), rtol=4e-7, atol=2e-45)  # torch flushes 1e-45
    assert np.signbit(vt.log1p(vt.tensor([-0.0])).numpy()[0]) and np.signbit(vt.expm1(vt.tensor([-0.0])).numpy()[0])


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_ulp_error_vs_float64(isa, name):
    f, tf, ref, bound = FUNCS[name]
    x = _sample()
    if name in ("sigmoid", "silu"):
        x = x[x > -88]  # below, 1 + exp(-x) overflows in float: torch's formula and vt's give 0 alike
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64)).astype(np.float32)
    got = f(vt.from_numpy(x)).numpy()
    theirs = tf(torch.from_numpy(x)).numpy()
    assert _ulps(got, want).max() <= bound, (name, isa, x[_ulps(got, want).argmax()])
    assert _ulps(theirs, want).max() <= bound  # the bound is torch's own accuracy, not a looser one


def test_special_values(isa):
    x = vt.tensor([0.0, -0.0, -INF, INF, float("nan"), 88.72, 88.73, -103.0, -104.5, 1e-30, -1e-30])
    e = vt.exp(x).tolist()
    assert e[0] == 1.0 and e[1] == 1.0 and e[2] == 0.0 and e[3] == INF and np.isnan(e[4])
    assert np.isfinite(e[5]) and e[6] == INF  # ln(FLT_MAX) = 88.7228
    assert e[7] == np.float32(np.exp(-103.0)) and e[7] > 0  # a subnormal result, rounded once
    assert e[8] == 0.0 and e[9] == 1.0 and e[10] == 1.0
    r = vt.erf(vt.tensor([0.0, -0.0, INF, -INF, float("nan"), 3.92, 1e-38, -1e-45])).tolist()
    assert r[:4] == [0.0, 0.0, 1.0, -1.0] and np.signbit(r[1]) and np.isnan(r[4]) and r[5] == 1.0
    assert r[6] == np.float32(np.float64(np.float32(1e-38)) * 2 / np.sqrt(np.pi)) and r[7] < 0  # erf(x) = 2x/sqrt(pi)
    t = vt.tanh(x).numpy()
    assert np.signbit(t[1]) and t[1] == 0 and t[2] == -1 and t[3] == 1 and np.isnan(t[4]) and t[5] == 1
    assert t[9] == np.float32(1e-30) and t[10] == np.float32(-1e-30)
    s = vt.sigmoid(x).tolist()
    assert s[2] == 0.0 and s[3] == 1.0 and np.isnan(s[4]) and s[0] == 0.5
    u = vt.nn.functional.silu(x).tolist()
    assert u[3] == INF and np.isnan(u[4]) and u[0] == 0.0


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_layouts_and_dtypes_vs_torch(isa, name, dtype):
    f, tf, _, _ = FUNCS[name]
    base = torch.randn(7, 45, generator=torch.Generator().manual_seed(3)) * 6
    views = [lambda t: t, lambda t: t.t(), lambda t: t[:, 1::3], lambda t: t[2:, :17], lambda t: t[0:1].expand(5, 45)]
    for view in views:
        tt = view(base.to(getattr(torch, dtype)))
        got = f(view(vt.from_numpy(base.numpy()).to(getattr(vt, dtype))))
        want = tf(tt)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == getattr(vt, dtype)
        if dtype == "float32":
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=5e-7, atol=1e-38)
        else:  # 16-bit: computed in float and rounded once, so at most one 16-bit ulp apart where torch differs
            np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 33, 1000])
def test_in_place_and_odd_sizes(isa, n):
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 4
    for method, tf in (("exp_", torch.exp), ("tanh_", torch.tanh), ("sigmoid_", torch.sigmoid)):
        a = vt.from_numpy(x.copy())
        getattr(a, method)()
        np.testing.assert_allclose(a.numpy(), tf(torch.from_numpy(x)).numpy(), rtol=5e-7)
    m = vt.from_numpy(np.tile(x, (3, 1)).T.copy()) if n else vt.empty(0, 3)
    col = m[:, 1]  # a strided view written in place
    col.exp_()
    np.testing.assert_allclose(m.numpy()[:, 1], np.exp(x), rtol=2e-7)
    np.testing.assert_array_equal(m.numpy()[:, 0], x)


@pytest.mark.parametrize("n", [1, 2, 7, 15, 16, 17, 31, 32, 33, 100, 128, 1000])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_rows(isa, n, log):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((5, n)) * 5).astype(np.float32)
    f, tf = (vt.log_softmax, torch.log_softmax) if log else (vt.softmax, torch.softmax)
    got = f(vt.from_numpy(x), -1).numpy()
    want = tf(torch.from_numpy(x), -1).numpy()
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7 if not log else 2e-6)
    x64 = x.astype(np.float64)
    ref = x64 - x64.max(-1, keepdims=True)
    ref = ref - np.log(np.exp(ref).sum(-1, keepdims=True)) if log else np.exp(ref) / np.exp(ref).sum(-1, keepdims=True)
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-7 if not log else 2e-6)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_special_rows(isa, log):
    nan = float("nan")
    rows = [[1.0, nan] + [0.0] * 20,  # a NaN makes the whole row NaN
            [-INF] * 22,  # nothing to attend to: NaN, as torch's
            [INF, 1.0] + [0.0] * 20,  # exp(inf - inf): NaN
            [-INF, 3.0] + [-INF] * 20,  # one finite entry: probability 1 there
            [0.0] * 22]
    x = np.array(rows, np.float32)
    f, tf = (vt.log_softmax, torch.log_softmax) if log else (vt.softmax, torch.softmax)
    np.testing.assert_array_equal(f(vt.from_numpy(x), -1).numpy(), tf(torch.from_numpy(x), -1).numpy())


@pytest.mark.parametrize("causal", [False, True])
def test_attention_softmax_through_sdpa(isa, causal):
    g = torch.Generator().manual_seed(11)
    q, k, v = (torch.randn(2, 3, 37, 16, generator=g) for _ in range(3))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    got = vt.nn.functional.scaled_dot_product_attention(*(vt.from_numpy(t.numpy()) for t in (q, k, v)),
                                                        is_causal=causal)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def _grad(lib, fn, x, g):
    x = x.clone().requires_grad_(True)
    (gx,) = lib.autograd.grad(fn(x), x, g)
    return gx


GRADS = {  # vt function, torch function
    "gelu_tanh": (lambda x: vt.nn.functional.gelu(x, approximate="tanh"),
                  lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    "silu": (vt.nn.functional.silu, torch.nn.functional.silu),
    "softmax": (lambda x: vt.softmax(x, -1), lambda x: torch.softmax(x, -1)),
    "log_softmax": (lambda x: vt.log_softmax(x, -1), lambda x: torch.log_softmax(x, -1)),
}


@pytest.mark.parametrize("name", sorted(GRADS))
@pytest.mark.parametrize("cols", [1, 15, 33, 130])
def test_gradients_vs_torch(isa, name, cols):
    f, tf = GRADS[name]
    gen = torch.Generator().manual_seed(cols)
    x, g = torch.randn(6, cols, generator=gen) * 4, torch.randn(6, cols, generator=gen)
    for view in (lambda t: t, lambda t: t.t().contiguous().t()):  # dense, and a transposed layout
        got = _grad(vt, f, view(vt.from_numpy(x.numpy())), vt.from_numpy(g.numpy())).numpy()
        want = _grad(torch, tf, view(x), g).numpy()
        # gelu_tanh's gradient near x = -5 is a difference of terms near 1: one ulp of tanh there (where vt's and
        # torch's tanh may round apart) moves it by about 4e-6 |g|
        atol = 4e-6 * float(g.abs().max()) if name == "gelu_tanh" else 1e-6
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)


def test_gelu_tanh_forward_vs_float64(isa):
    x = _sample()
    x = x[np.abs(x) < 60]
    x64 = x.astype(np.float64)
    ref = 0.5 * x64 * (1 + np.tanh(0.7978845608028654 * (x64 + 0.044715 * x64 ** 3)))
    got = vt.nn.functional.gelu(vt.from_numpy(x), approximate="tanh").numpy().astype(np.float64)
    want = torch.nn.functional.gelu(torch.from_numpy(x), approximate="tanh").numpy().astype(np.float64)
    # absolute error against the float64 value, relative to |x| (the cancellation near -3 makes ulps meaningless)
    scale = np.maximum(np.abs(x64), 1e-30)
    assert (np.abs(got - ref) / scale).max() <= 2 * max((np.abs(want - ref) / scale).max(), 1e-7)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16bit_activation_gradients(dtype):
    gen = torch.Generator().manual_seed(5)
    x, g = torch.randn(4, 37, generator=gen) * 3, torch.randn(4, 37, generator=gen)
    for name in ("gelu_tanh", "silu"):
        f, tf = GRADS[name]
        got = _grad(vt, f, vt.from_numpy(x.numpy()).to(getattr(vt, dtype)),
                    vt.from_numpy(g.numpy()).to(getattr(vt, dtype))).float().numpy()
        want = _grad(torch, tf, x.to(getattr(torch, dtype)), g.to(getattr(torch, dtype))).float().numpy()
        np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-2)


def test_softmax_backward_special_rows(isa):
    x = torch.tensor([[0.0] * 20, [-INF, 1.0] + [2.0] * 18, [5.0, -5.0] * 10])
    g = torch.tensor([[1.0] * 20, [0.5] * 20, [float(i) for i in range(20)]])
    for f, tf in (GRADS["softmax"], GRADS["log_softmax"]):
        got = _grad(vt, f, vt.from_numpy(x.numpy()), vt.from_numpy(g.numpy())).numpy()
        want = _grad(torch, tf, x, g).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_cos_ulp_error(isa, name):
    rng = np.random.default_rng(13)
    x = np.concatenate([rng.uniform(-8192, 8192, 200_000), rng.uniform(-10, 10, 100_000),
                        rng.standard_normal(20_000) * 1e-3]).astype(np.float32)
    f, tf, ref = getattr(vt, name), getattr(torch, name), getattr(np, name)
    want = ref(x.astype(np.float64)).astype(np.float32)
    got = f(vt.from_numpy(x)).numpy()
    assert _ulps(got, want).max() <= 2, x[_ulps(got, want).argmax()]
    np.testing.assert_allclose(got, tf(torch.from_numpy(x)).numpy(), rtol=3e-7, atol=1e-7)


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_cos_large_and_special_arguments(isa, name):
    f, tf = getattr(vt, name), getattr(torch, name)
    # past 8192 (and infinities) the whole array is computed with libm, as accurate as torch's
    for vals in ([1e5, 3.0, -2e7, 1.0], [INF, 0.5], [-INF, 1.0, float("nan")], [0.0, -0.0, 8192.0, -8192.0]):
        x = np.array(vals * 9, np.float32)  # longer than one vector
        got, want = f(vt.from_numpy(x)).numpy(), tf(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=3e-7, atol=1e-7)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.signbit(vt.sin(vt.tensor([-0.0])).numpy()[0]) and vt.cos(vt.tensor([-0.0])).item() == 1.0


@pytest.mark.parametrize("name,args", [("softplus", ()), ("softplus", (2.0, 5.0)), ("softplus", (0.5, 1.0)),
                                       ("softplus", (-1.0, 20.0)), ("elu", ()), ("elu", (0.3,)),
                                       ("celu", (1.7,)), ("selu", ())])
def test_parameterised_lanes_vs_torch(isa, name, args):
    rng = np.random.default_rng(17)
    x = np.concatenate([rng.uniform(-100, 100, 20_000), rng.standard_normal(5_000) * 1e-3,
                        [0.0, -0.0, INF, -INF, float("nan"), 20.0, 20.000002]]).astype(np.float32)
    got = getattr(vt.nn.functional, name)(vt.from_numpy(x), *args).numpy()
    want = getattr(torch.nn.functional, name)(torch.from_numpy(x), *args).numpy()
    np.testing.assert_allclose(got, want, rtol=4e-7, atol=1e-30)
    assert np.array_equal(np.signbit(got[x == 0]), np.signbit(want[x == 0]))
    t = torch.from_numpy(x[:500].copy()).to(torch.bfloat16)  # 16-bit through the float buffer
    got16 = getattr(vt.nn.functional, name)(vt.from_numpy(t.float().numpy()).to(vt.bfloat16), *args)
    np.testing.assert_allclose(got16.float().numpy(), getattr(torch.nn.functional, name)(t, *args).float().numpy(),
                               rtol=1e-2, atol=1e-30)


@pytest.mark.parametrize("n", [1, 3, 15, 16, 17, 33, 64, 100, 1029])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_max_min_argmax_rows(isa, n, dtype):
    """max/min/argmax/argmin along a dense float32 dim (cpu_math::arg_extreme): the first extreme, or the first
    NaN, as torch; ties, -0.0 beside 0.0, infinities; strided rows take the scalar lane."""
    rng = np.random.default_rng(n)
    rows = [rng.standard_normal(n), rng.integers(-2, 3, n).astype(np.float64), np.full(n, -INF), np.zeros(n)]
    with_nan = rng.standard_normal(n)
    with_nan[rng.integers(0, n)] = np.nan
    with_nan[-1] = np.nan
    signed_zero = np.zeros(n)
    signed_zero[: n // 2] = -0.0
    rows += [with_nan, signed_zero, np.where(rng.random(n) < 0.5, INF, -INF)]
    a = np.stack(rows).astype(np.float32)
    v, t = vt.from_numpy(a.copy()).to(getattr(vt, dtype)), torch.from_numpy(a.copy()).to(getattr(torch, dtype))
    for vv, tt in ((v, t), (v.t().contiguous().t(), t)):
        for name in ("max", "min"):
            got, want = getattr(vv, name)(-1), getattr(tt, name)(-1)
            gv, wv = got.values.float().numpy(), want.values.float().numpy()
            np.testing.assert_array_equal(gv, wv)  # NaN where torch's is (payloads differ in 16-bit inputs)
            np.testing.assert_array_equal(np.signbit(gv), np.signbit(wv) & ~np.isnan(wv) | np.signbit(gv) & np.isnan(gv))
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        np.testing.assert_array_equal(vv.argmax(-1).numpy(), tt.argmax(-1).numpy())
        np.testing.assert_array_equal(vv.argmin(-1).numpy(), tt.argmin(-1).numpy())


@pytest.mark.parametrize("shape,dim", [((5, 3), 0), ((4, 7, 33), 1), ((3, 4, 2, 5), 1), ((2, 9, 2100), 1),
                                       ((6, 1, 4), 0), ((1, 5, 3), 1)])
def test_max_min_argmax_across_rows(isa, shape, dim):
    """max/min/argmax/argmin over a dim that is not the innermost (Note [Arg-extremes across rows]): the first
    extreme, or the first NaN, and its index, as torch's; ties, -0.0 beside 0.0, infinities; blocks of 2048
    lanes (the [2, 9, 2100] case); a strided input through the generic lanes."""
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(-2, 3, shape).astype(np.float32)  # many ties
    flat = a.reshape(-1)
    flat[rng.integers(0, flat.size, max(1, flat.size // 7))] = np.nan
    flat[rng.integers(0, flat.size, max(1, flat.size // 9))] = -0.0
    flat[rng.integers(0, flat.size, max(1, flat.size // 11))] = INF
    for v, t in ((vt.from_numpy(a.copy()), torch.from_numpy(a.copy())),
                 (vt.from_numpy(np.ascontiguousarray(np.swapaxes(a, 0, -1))).transpose(0, -1), torch.from_numpy(a))):
        for name in ("max", "min"):
            got, want = getattr(v, name)(dim), getattr(t, name)(dim)
            np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
        np.testing.assert_array_equal(v.argmax(dim).numpy(), t.argmax(dim).numpy())
        np.testing.assert_array_equal(v.argmin(dim).numpy(), t.argmin(dim).numpy())


@pytest.mark.parametrize("n", [1, 7, 16, 17, 33, 100, 1029])
def test_amax_amin_rows_columns_and_whole(isa, n):
    """amax/amin and max()/min() of float32 (Note [Vector extremes]: cpu_math::row_extreme along a dense dim,
    accumulate_extreme across an outer one): NaN wins wherever it is, infinities, all--inf rows, a middle dim,
    strided inputs through the generic loop; values equal to torch's (0.0 and -0.0 compare equal)."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal((9, n)).astype(np.float32)
    a[1, rng.integers(0, n)] = np.nan  # a NaN in one row (and so in one column)
    a[2] = -INF
    a[3, -1] = INF
    a[4, 0] = np.nan
    b = rng.standard_normal((3, n, 5)).astype(np.float32)
    b[1, n // 2, 2] = np.nan
    cases = [(vt.from_numpy(a.copy()), torch.from_numpy(a.copy())), (vt.from_numpy(b.copy()), torch.from_numpy(b)),
             (vt.from_numpy(np.ascontiguousarray(a.T)).t(), torch.from_numpy(a.copy())),  # transposed
             (vt.from_numpy(b.copy())[:, ::2], torch.from_numpy(b.copy())[:, ::2])]  # strided middle dim
    for v, t in cases:
        for name in ("amax", "amin"):
            for dim in list(range(t.dim())) + [None, [0, t.dim() - 1]]:
                got = getattr(v, name)() if dim is None else getattr(v, name)(dim)
                want = getattr(t, name)() if dim is None else getattr(t, name)(dim)
                np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"{name} dim={dim}")
        np.testing.assert_array_equal(v.max().numpy(), t.max().numpy())
        np.testing.assert_array_equal(v.min().numpy(), t.min().numpy())


def test_pow_is_correctly_rounded(isa):
    """Note [Vector pow]: x ** y of two float32 tensors against the float64 power rounded once, over magnitudes
    from subnormal to huge and exponents of both signs (overflow, underflow and subnormal results included),
    negative bases with integer exponents, strided and broadcast operands; torch's own ulp error beside it."""
    r = np.random.default_rng(5)
    n = 1 << 16
    x = np.concatenate([np.abs(r.standard_normal(n)) * 3, np.exp(r.uniform(-100, 88, n)),
                        -np.exp(r.uniform(-5, 5, n))]).astype(np.float32)
    y = np.concatenate([r.standard_normal(n) * 4, r.uniform(-3, 3, n),
                        np.round(r.uniform(-20, 20, n))]).astype(np.float32)
    with np.errstate(all="ignore"):
        want = np.power(x.astype(np.float64), y.astype(np.float64)).astype(np.float32)
    got = (vt.from_numpy(x) ** vt.from_numpy(y)).numpy()
    err = np.abs(_ordered(got) - _ordered(want))
    theirs = np.abs(_ordered((torch.from_numpy(x) ** torch.from_numpy(y)).numpy()) - _ordered(want))
    assert err.max() <= 1 and (err > 0).sum() <= 2, (err.max(), (err > 0).sum(), theirs.max())
    m, e = vt.from_numpy(x[: 64 * 96].reshape(64, 96)), vt.from_numpy(y[:64].reshape(64, 1))
    np.testing.assert_array_equal((m.t() ** e.t()).numpy(), (m.t().contiguous() ** e.t().contiguous()).numpy())


def test_pow_special_values_as_c(isa):
    sp = [0.0, -0.0, 1.0, -1.0, INF, -INF, float("nan"), 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1e-40, -1e-40, 3.4e38]
    x, y = (a.ravel().astype(np.float32) for a in np.meshgrid(sp, sp))
    got = (vt.from_numpy(x) ** vt.from_numpy(y)).numpy()
    with np.errstate(all="ignore"):
        want = np.power(x.astype(np.float64), y.astype(np.float64)).astype(np.float32)
    same = (got.view(np.int32) == want.view(np.int32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), list(zip(x[~same], y[~same], got[~same], want[~same]))[:6]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_pow_16bit_rounds_the_float32_power(dtype, isa):
    r = np.random.default_rng(6)
    x, y = (np.abs(r.standard_normal(4099)) * 2).astype(np.float32), r.standard_normal(4099).astype(np.float32)
    xv, yv = vt.from_numpy(x).to(getattr(vt, dtype)), vt.from_numpy(y).to(getattr(vt, dtype))
    got = (xv ** yv).view(vt.int16).numpy()
    want = (xv.float() ** yv.float()).to(getattr(vt, dtype)).view(vt.int16).numpy()
    np.testing.assert_array_equal(got, want)
