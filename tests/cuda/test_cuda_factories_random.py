"""CUDA factories and RNG: zeros/ones/full/empty/arange/linspace/eye/tensor/*_like with device="cuda" against
torch on the GPU, and the CUDA samplers (rand/randn/randint, uniform_/normal_/random_, *_like): device, dtype,
range, statistics (>= 6 sigma bounds), seeded reproducibility (vt.manual_seed twice -> the same CUDA values;
matching the CPU stream is not required), strided in-place sampling.

GPU run: PYTHONPATH=python python -m pytest tests/cuda -q -p no:cacheprovider
"""
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import (
    CUDA_MARKS,
    DEV,
    ON_CUDA,
    Failures,
    assert_on_device,
    dcheck,
    dpair,
    dsame,
)
from helpers import ALL_DTYPES, FLOAT_DTYPES, assert_same, dtype_name, to_numpy

pytestmark = CUDA_MARKS

SIZES = [(), (0,), (5,), (3, 1, 5), (0, 4), (2, 3, 4), (1023,)]


def test_zeros_ones_full_empty():
    f = Failures()
    for dtype in ALL_DTYPES:
        for size in SIZES:
            with f.case(f"{dtype} {size}"):
                dcheck(lambda m, s, d: m.zeros(s, dtype=getattr(m, d), device=DEV), size, dtype)
                dcheck(lambda m, s, d: m.ones(*s, dtype=getattr(m, d), device=DEV) if s else
                       m.ones(s, dtype=getattr(m, d), device=DEV), size, dtype)
                dcheck(lambda m, s, d: m.full(s, 3, dtype=getattr(m, d), device=DEV), size, dtype)
                dcheck(lambda m, s, d: m.full(s, True, dtype=getattr(m, d), device=DEV), size, dtype)
                dcheck(lambda m, s, d: m.full(s, 1.5, dtype=getattr(m, d), device=DEV), size, dtype)
                e = vt.empty(size, dtype=getattr(vt, dtype), device=DEV)
                te = torch.empty(size, dtype=getattr(torch, dtype), device=DEV)
                assert_on_device(e, te)
                assert dtype_name(e.dtype) == dtype and tuple(e.shape) == size and e.is_contiguous()
                assert tuple(e.stride()) == tuple(te.stride())
    for fill in (3, -2, 2.5, True, math.inf, math.nan, 2**40, -0.0):
        with f.case(f"full infers dtype from {fill!r}"):
            dcheck(lambda m, v: m.full((2, 3), v, device=DEV), fill)
            dcheck(lambda m, v: m.full((), v, device=DEV), fill)
    with f.case("default dtypes on the device"):
        dcheck(lambda m: (m.zeros(2, device=DEV), m.ones(2, 3, device=DEV), m.eye(2, device=DEV),
                          m.arange(3, device=DEV), m.arange(3.0, device=DEV), m.linspace(0, 1, 3, device=DEV)))
    f.raise_if_any()


def test_like_factories_keep_the_device(rng):
    f = Failures()
    for dtype in ALL_DTYPES:
        for kind in (False, "transpose", "expand"):
            x = dpair((3, 4), dtype, noncontig=kind, rng=rng)
            with f.case(f"{dtype} {kind}"):
                dcheck(lambda m, t: m.zeros_like(t), x)
                dcheck(lambda m, t: m.ones_like(t), x)
                dcheck(lambda m, t: m.full_like(t, 7), x)
                dcheck(lambda m, t: m.zeros_like(t, dtype=m.float64), x)
                dcheck(lambda m, t: m.full_like(t, 2.5, dtype=m.float16), x)
                for e in (vt.empty_like(x.v), vt.empty_like(x.v, dtype=vt.float64)):
                    assert e.is_cuda == ON_CUDA and tuple(e.shape) == (3, 4)
                if dtype in FLOAT_DTYPES:
                    for r in (vt.rand_like(x.v), vt.randn_like(x.v)):
                        assert_on_device(r, torch.rand_like(x.t))
                        assert r.dtype == x.v.dtype and tuple(r.shape) == (3, 4)
    with f.case("tensor(..., device=) and .to(device)"):
        dcheck(lambda m: m.tensor([[1.5, -2.0], [3.0, 4.25]], device=DEV))
        dcheck(lambda m: m.tensor([1, 2, 3], dtype=m.int16, device=DEV))
        dcheck(lambda m: m.tensor(True, device=DEV))
    f.raise_if_any()


ARANGE = [(5,), (0,), (1,), (2, 9), (9, 2, -2), (-3, 3), (0, 10, 3), (0.0, 1.0, 0.1), (1, 2.5, 0.5), (-1.5, 1.5),
          (2.5,), (0, 1, 0.3), (10, 0, -0.7), (5, 5), (0, 100_003), (0, 4099, 1), (-1e4, 1e4, 0.37)]


def test_arange():
    """torch's CUDA kernel may differ from its CPU one in the last bit of a float value: either is accepted."""
    f = Failures()
    for args in ARANGE:
        with f.case(f"arange{args}"):
            dcheck(lambda m, a: m.arange(*a, device=DEV), args, cpu_ref=True)
    for dtype in [d for d in ALL_DTYPES if d != "bool"]:
        with f.case(f"arange dtype={dtype}"):
            dcheck(lambda m, d: m.arange(10, dtype=getattr(m, d), device=DEV), dtype)
            dcheck(lambda m, d: m.arange(1, 7, 2, dtype=getattr(m, d), device=DEV), dtype)
            if dtype in FLOAT_DTYPES:
                dcheck(lambda m, d: m.arange(0, 2, 0.25, dtype=getattr(m, d), device=DEV), dtype)
    for args in [(0, 1, 0), (0, 5, -1), (5, 0, 1), (0, math.inf)]:
        with f.case(f"arange{args} raises"):
            dcheck(lambda m, a: m.arange(*a, device=DEV), args)
    f.raise_if_any()


def test_linspace():
    f = Failures()
    for args in [(0, 1, 5), (-2, 3, 11), (1, 1, 4), (3, -3, 7), (0, 1, 1), (0, 1, 0), (2, 7, 2), (0.5, 2.25, 8),
                 (-1e3, 1e3, 1001), (0, 1, 10_000), (0, 1, 4099)]:
        for dtype in [None, "float64", "float16", "bfloat16", "int64", "int32"]:
            kw = {} if dtype is None else {"dtype": dtype}
            with f.case(f"linspace{args} {kw}"):
                def fn(m, a, kw):
                    return m.linspace(*a, device=DEV, **{k: getattr(m, v) for k, v in kw.items()})
                if dtype in ("float16", "bfloat16"):
                    # torch evaluates 16-bit linspace in reduced precision: accept its values or correctly rounded
                    v = fn(vt, args, kw)
                    try:
                        dsame(v, fn(torch, args, kw))
                    except AssertionError:
                        dsame(v, torch.linspace(*args, dtype=torch.float64, device=DEV).to(getattr(torch, dtype)))
                else:
                    dcheck(fn, args, kw, rtol=1e-6, atol=1e-5, cpu_ref=True)
    with f.case("linspace(0, 1, -1) raises"):
        dcheck(lambda m: m.linspace(0, 1, -1, device=DEV))
    f.raise_if_any()


def test_eye():
    f = Failures()
    for args in [(3,), (1,), (0,), (3, 5), (5, 3), (4, 0), (0, 2), (130, 67)]:
        for dtype in [None, "int64", "bool", "float16", "bfloat16", "float64", "uint8"]:
            with f.case(f"eye{args} {dtype}"):
                dcheck(lambda m, a, d: m.eye(*a, device=DEV) if d is None else
                       m.eye(*a, dtype=getattr(m, d), device=DEV), args, dtype)
    f.raise_if_any()


# ------------------------------------------------------------------------------------------------- RNG

N = 100_003


def _draws():
    return {
        "rand": lambda: vt.rand(1000, device=DEV),
        "rand_2d": lambda: vt.rand(30, 40, device=DEV),
        "randn": lambda: vt.randn(1001, device=DEV),
        "randint": lambda: vt.randint(0, 1000, (1000,), device=DEV),
        "randint_high": lambda: vt.randint(7, (3, 5), device=DEV),
        "normal_": lambda: vt.empty(1000, device=DEV).normal_(),
        "uniform_": lambda: vt.empty(1000, device=DEV).uniform_(-1, 1),
        "random_": lambda: vt.empty(1000, dtype=vt.int32, device=DEV).random_(0, 100),
        "rand_like": lambda: vt.rand_like(vt.zeros(10, 10, device=DEV)),
        "randn_like": lambda: vt.randn_like(vt.zeros(10, 10, device=DEV)),
        "rand_f64": lambda: vt.rand(500, dtype=vt.float64, device=DEV),
        "randn_f16": lambda: vt.randn(500, dtype=vt.float16, device=DEV),
        "rand_bf16": lambda: vt.rand(500, dtype=vt.bfloat16, device=DEV),
        "rand_big": lambda: vt.rand(1_000_003, device=DEV),
    }


@pytest.mark.parametrize("name", list(_draws()))
def test_same_seed_same_values(name, seed):
    draw = _draws()[name]
    vt.manual_seed(seed)
    a, b = draw(), draw()
    assert a.is_cuda == ON_CUDA, f"{name} drew on {a.device}"
    a, b = to_numpy(a.cpu()), to_numpy(b.cpu())
    vt.manual_seed(seed)
    a2, b2 = to_numpy(draw().cpu()), to_numpy(draw().cpu())
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert not np.array_equal(a, b), "consecutive draws must differ"
    vt.manual_seed(seed + 1)
    assert not np.array_equal(a, to_numpy(draw().cpu())), "different seeds must give different values"


def _host(x):
    assert x.is_cuda == ON_CUDA, f"sample on {x.device}"
    return to_numpy(x.cpu()).astype(np.float64)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_rand_randn_distribution(dtype, seed):
    vt.manual_seed(seed)
    x = vt.rand(N, dtype=getattr(vt, dtype), device=DEV)
    assert dtype_name(x.dtype) == dtype and tuple(x.shape) == (N,)
    a = _host(x)
    assert a.min() >= 0.0 and a.max() < 1.0, (a.min(), a.max())
    assert abs(a.mean() - 0.5) < (0.006 if dtype in ("float32", "float64") else 0.01), a.mean()
    assert abs(a.std() - math.sqrt(1 / 12)) < 0.005, a.std()
    hist, _ = np.histogram(a, bins=10, range=(0, 1))
    np.testing.assert_allclose(hist / N, 0.1, atol=0.01 if dtype == "bfloat16" else 0.007)
    assert len(np.unique(a)) > (50 if dtype == "bfloat16" else 500), "values must not collapse to a few levels"
    n = _host(vt.randn(N, dtype=getattr(vt, dtype), device=DEV))
    wide = 0.01 if dtype == "bfloat16" else 0
    assert np.isfinite(n).all()
    assert abs(n.mean()) < 0.02 + wide and abs(n.std() - 1.0) < 0.015 + wide, (n.mean(), n.std())
    assert abs((np.abs(n) < 1).mean() - 0.6827) < 0.01 + wide
    assert abs((np.abs(n) < 2).mean() - 0.9545) < 0.006 + wide
    assert n.max() > 3 and n.min() < -3, "tails are missing"
    assert abs(np.corrcoef(n[:-1], n[1:])[0, 1]) < 0.02, "neighbouring draws must be uncorrelated"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_uniform_normal_inplace(dtype, seed):
    vt.manual_seed(seed)
    x = vt.empty(N, dtype=getattr(vt, dtype), device=DEV)
    r = x.uniform_(-2.0, 5.0)
    assert r is x or r.data_ptr() == x.data_ptr()
    a = _host(x)
    assert a.min() >= -2.0 and a.max() <= 5.0
    assert abs(a.mean() - 1.5) < 0.05 and abs(a.std() - 7 / math.sqrt(12)) < 0.04, (a.mean(), a.std())
    y = vt.empty(N, dtype=getattr(vt, dtype), device=DEV)
    y.normal_(2.0, 3.0)
    b = _host(y)
    wide = 0.03 if dtype == "bfloat16" else 0
    assert abs(b.mean() - 2.0) < 0.06 + wide and abs(b.std() - 3.0) < 0.05 + wide, (b.mean(), b.std())
    z = _host(vt.empty(1000, dtype=getattr(vt, dtype), device=DEV).normal_(5.0, 0.0))
    assert (z == 5.0).all()


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8", "float32", "float64"])
def test_randint_and_random_(dtype, seed):
    vt.manual_seed(seed)
    x = vt.randint(-3 if dtype != "uint8" else 0, 7, (N,), dtype=getattr(vt, dtype), device=DEV)
    assert dtype_name(x.dtype) == dtype
    a = _host(x).astype(np.int64)
    lo = -3 if dtype != "uint8" else 0
    assert a.min() == lo and a.max() == 6
    counts = np.bincount(a - lo) / N
    np.testing.assert_allclose(counts, 1 / (7 - lo), atol=0.007)
    y = vt.empty(5000, dtype=getattr(vt, dtype), device=DEV)
    assert y.random_(0, 100) is y
    b = _host(y)
    assert b.min() >= 0 and b.max() < 100 and (b == np.round(b)).all() and len(np.unique(b)) > 90


def test_randint_wide_ranges(seed):
    vt.manual_seed(seed)
    big = _host(vt.randint(0, 2**40, (1000,), device=DEV))
    assert big.max() > 2**32, "randint must cover ranges wider than 32 bits"
    neg = to_numpy(vt.randint(-(2**40), -(2**40) + 3, (100,), device=DEV).cpu())
    assert set(neg.tolist()) <= {-(2**40), -(2**40) + 1, -(2**40) + 2}
    assert (to_numpy(vt.randint(0, 1, (10,), device=DEV).cpu()) == 0).all()


@pytest.mark.parametrize("method", ["uniform_", "normal_"])
def test_inplace_sampler_on_strided_view(method, seed):
    vt.manual_seed(seed)
    base = vt.zeros(200, 300, device=DEV)
    getattr(base.t()[::2], method)()  # (150, 200): every other column of base, transposed
    a = _host(base)
    assert (a[:, 1::2] == 0).all(), "elements outside the view must be untouched"
    inside = a[:, ::2]
    assert (inside != 0).mean() > 0.99
    if method == "uniform_":
        assert inside.min() >= 0 and inside.max() < 1 and abs(inside.mean() - 0.5) < 0.01
    else:
        assert abs(inside.mean()) < 0.03 and abs(inside.std() - 1) < 0.03
    vt.manual_seed(seed)
    base2 = vt.zeros(200, 300, device=DEV)
    getattr(base2.t()[::2], method)()
    assert_same(base2.cpu(), torch.from_numpy(a.astype(np.float32)))


@pytest.mark.parametrize("fn", [
    lambda m: m.empty(3, device=DEV).normal_(0.0, -1.0),
    lambda m: m.empty(3, device=DEV).uniform_(2.0, 1.0),
    lambda m: m.empty(3, dtype=m.int64, device=DEV).normal_(),
    lambda m: m.rand(4, dtype=m.int32, device=DEV),
    lambda m: m.randint(5, 2, (3,), device=DEV),
], ids=["neg_std", "from_gt_to", "int_normal", "int_rand", "randint_empty_range"])
def test_sampler_errors_like_torch(fn):
    dcheck(lambda m: fn(m).shape)
