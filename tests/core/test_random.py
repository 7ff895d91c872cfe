"""RNG: seeded reproducibility and distribution statistics (vt's streams differ from torch's by design).

Statistical bounds are >= 6 sigma for the sample sizes used, so false failures are practically impossible.
"""
import math

import numpy as np
import pytest

import vibetensor.torch as vt
from helpers import FLOAT_DTYPES, INT_DTYPES, check_op, dtype_name, to_numpy

N = 100_003


def _draws():
    return {
        "rand": lambda: vt.rand(1000),
        "rand_2d": lambda: vt.rand(30, 40),
        "randn": lambda: vt.randn(1000),
        "randint": lambda: vt.randint(0, 1000, (1000,)),
        "randint_high": lambda: vt.randint(7, (3, 5)),
        "normal_": lambda: vt.empty(1000).normal_(),
        "uniform_": lambda: vt.empty(1000).uniform_(-1, 1),
        "rand_like": lambda: vt.rand_like(vt.zeros(10, 10)),
        "randn_like": lambda: vt.randn_like(vt.zeros(10, 10)),
        "rand_f64": lambda: vt.rand(500, dtype=vt.float64),
        "randn_f16": lambda: vt.randn(500, dtype=vt.float16),
        "rand_bf16": lambda: vt.rand(500, dtype=vt.bfloat16),
    }


@pytest.mark.parametrize("name", list(_draws()))
def test_same_seed_same_values(name, seed):
    draw = _draws()[name]
    vt.manual_seed(seed)
    a = to_numpy(draw())
    b = to_numpy(draw())
    vt.manual_seed(seed)
    a2 = to_numpy(draw())
    b2 = to_numpy(draw())
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert not np.array_equal(a, b), "consecutive draws must differ"
    vt.manual_seed(seed + 1)
    c = to_numpy(draw())
    assert not np.array_equal(a, c), "different seeds must give different values"


def test_reproducible_large_multithreaded(seed):
    vt.manual_seed(seed)
    a = vt.rand(1_000_003)
    n1 = vt.randn(300_001)
    vt.manual_seed(seed)
    b = vt.rand(1_000_003)
    n2 = vt.randn(300_001)
    assert vt.equal(a, b)
    assert vt.equal(n1, n2)


def test_manual_seed_accepts_large_seeds():
    vt.manual_seed(0)
    vt.manual_seed(2**40 + 3)
    a = vt.rand(4)
    vt.manual_seed(2**40 + 3)
    assert vt.equal(a, vt.rand(4))
    vt.manual_seed(2**63 - 1)


def test_interleaved_ops_stay_reproducible(seed):
    def run():
        vt.manual_seed(seed)
        x = vt.rand(100)
        y = vt.randn(50) * 2 + x[:50]
        z = vt.randint(-5, 5, (20,))
        w = vt.empty(64).uniform_(2, 3)
        return [to_numpy(t) for t in (x, y, z, w)]
    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------- rand


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_rand_distribution(dtype, seed):
    vt.manual_seed(seed)
    x = vt.rand(N, dtype=vt_d(dtype))
    assert dtype_name(x.dtype) == dtype and tuple(x.shape) == (N,)
    a = to_numpy(x).astype(np.float64)
    assert a.min() >= 0.0 and a.max() < 1.0, (a.min(), a.max())
    tol = 0.006 if dtype in ("float32", "float64") else 0.01
    assert abs(a.mean() - 0.5) < tol, a.mean()
    assert abs(a.std() - math.sqrt(1 / 12)) < 0.005, a.std()
    hist, _ = np.histogram(a, bins=10, range=(0, 1))
    np.testing.assert_allclose(hist / N, 0.1, atol=0.01 if dtype == "bfloat16" else 0.007)
    assert len(np.unique(a)) > (50 if dtype == "bfloat16" else 500), "values must not collapse to a few levels"


def vt_d(name):
    return getattr(vt, name)


def test_rand_default_dtype_and_shapes(seed):
    vt.manual_seed(seed)
    assert vt.rand(3, 4).dtype == vt.float32
    assert tuple(vt.rand(3, 4).shape) == (3, 4)
    assert tuple(vt.rand((2, 5)).shape) == (2, 5)
    assert tuple(vt.rand(size=(2, 5)).shape) == (2, 5)
    assert tuple(vt.rand(0).shape) == (0,)
    assert tuple(vt.rand(()).shape) == ()
    assert tuple(vt.randn(2, 0, 3).shape) == (2, 0, 3)
    assert str(vt.rand(2).device) == "cpu"


# ------------------------------------------------------------------------------------------- randn


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_randn_distribution(dtype, seed):
    vt.manual_seed(seed)
    x = vt.randn(N, dtype=vt_d(dtype))
    assert dtype_name(x.dtype) == dtype
    a = to_numpy(x).astype(np.float64)
    assert np.isfinite(a).all()
    tol = 0.02 if dtype != "bfloat16" else 0.03
    assert abs(a.mean()) < tol, a.mean()
    assert abs(a.std() - 1.0) < 0.015 + (0.01 if dtype == "bfloat16" else 0), a.std()
    assert abs((np.abs(a) < 1).mean() - 0.6827) < 0.01 + (0.01 if dtype == "bfloat16" else 0)
    assert abs((np.abs(a) < 2).mean() - 0.9545) < 0.006 + (0.01 if dtype == "bfloat16" else 0)
    assert abs((a > 0).mean() - 0.5) < 0.01
    assert a.max() > 3 and a.min() < -3, "tails are missing"


def test_randn_2d_columns_independent(seed):
    vt.manual_seed(seed)
    x = to_numpy(vt.randn(50_000, 2)).astype(np.float64)
    corr = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert abs(corr) < 0.03, corr
    # neighbouring elements of a flat draw must be uncorrelated too
    y = to_numpy(vt.randn(N)).astype(np.float64)
    assert abs(np.corrcoef(y[:-1], y[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("dtype", INT_DTYPES + ["bool"])
def test_rand_randn_int_dtype_raises_like_torch(dtype):
    check_op(lambda m: m.rand(4, dtype=getattr(m, dtype)).dtype)
    check_op(lambda m: m.randn(4, dtype=getattr(m, dtype)).dtype)


# ----------------------------------------------------------------------------------------- randint


def test_randint_distribution(seed):
    vt.manual_seed(seed)
    x = vt.randint(-3, 7, (N,))
    assert x.dtype == vt.int64
    a = to_numpy(x)
    assert a.min() == -3 and a.max() == 6
    counts = np.bincount(a + 3, minlength=10) / N
    np.testing.assert_allclose(counts, 0.1, atol=0.007)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "int8", "uint8", "float32", "float64"])
def test_randint_dtype(dtype, seed):
    vt.manual_seed(seed)
    x = vt.randint(0, 100, (2000,), dtype=vt_d(dtype))
    assert dtype_name(x.dtype) == dtype
    a = to_numpy(x)
    assert a.min() >= 0 and a.max() < 100 and (a == np.round(a)).all()
    assert len(np.unique(a)) > 90


def test_randint_forms(seed):
    vt.manual_seed(seed)
    x = vt.randint(5, (3, 4))
    assert tuple(x.shape) == (3, 4) and to_numpy(x).max() < 5 and to_numpy(x).min() >= 0
    y = vt.randint(2, 4, size=(100,))
    assert set(to_numpy(y).tolist()) == {2, 3}
    z = vt.randint(0, 1, (10,))
    assert (to_numpy(z) == 0).all()
    big = vt.randint(0, 2**40, (1000,))
    assert to_numpy(big).max() > 2**32, "randint must cover ranges wider than 32 bits"
    neg = vt.randint(-(2**40), -(2**40) + 3, (100,))
    assert set(to_numpy(neg).tolist()) <= {-(2**40), -(2**40) + 1, -(2**40) + 2}


@pytest.mark.parametrize("args", [(5, 2, (3,)), (3, 3, (2,)), (0, (-1,))], ids=repr)
def test_randint_errors_like_torch(args):
    check_op(lambda m: m.randint(*args))


# ------------------------------------------------------------------------------ in-place samplers


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_uniform_inplace(dtype, seed):
    vt.manual_seed(seed)
    x = vt.empty(N, dtype=vt_d(dtype))
    r = x.uniform_(-2.0, 5.0)
    assert r is x or r.data_ptr() == x.data_ptr()
    a = to_numpy(x).astype(np.float64)
    assert a.min() >= -2.0 and a.max() <= 5.0
    assert abs(a.mean() - 1.5) < 0.05, a.mean()
    assert abs(a.std() - 7 / math.sqrt(12)) < 0.04, a.std()
    vt.manual_seed(seed)
    y = vt.empty(N, dtype=vt_d(dtype)).uniform_()
    b = to_numpy(y).astype(np.float64)
    assert b.min() >= 0 and b.max() <= 1 and abs(b.mean() - 0.5) < 0.01


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_normal_inplace(dtype, seed):
    vt.manual_seed(seed)
    x = vt.empty(N, dtype=vt_d(dtype))
    r = x.normal_(2.0, 3.0)
    assert r is x or r.data_ptr() == x.data_ptr()
    a = to_numpy(x).astype(np.float64)
    assert abs(a.mean() - 2.0) < 0.06 + (0.03 if dtype == "bfloat16" else 0), a.mean()
    assert abs(a.std() - 3.0) < 0.05 + (0.03 if dtype == "bfloat16" else 0), a.std()
    y = vt.empty(N, dtype=vt_d(dtype)).normal_(mean=-1.0, std=0.5)
    b = to_numpy(y).astype(np.float64)
    assert abs(b.mean() + 1.0) < 0.02 and abs(b.std() - 0.5) < 0.02
    z = vt.empty(1000, dtype=vt_d(dtype)).normal_(5.0, 0.0)
    assert (to_numpy(z) == 5.0).all()


@pytest.mark.parametrize("method", ["uniform_", "normal_"])
def test_inplace_sampler_on_strided_view(method, seed):
    vt.manual_seed(seed)
    base = vt.zeros(200, 300)
    view = base.t()[::2]  # (150, 200): every other column of base, transposed
    getattr(view, method)()
    a = to_numpy(base)
    assert (a[:, 1::2] == 0).all(), "elements outside the view must be untouched"
    inside = a[:, ::2]
    assert (inside != 0).mean() > 0.99
    if method == "uniform_":
        assert inside.min() >= 0 and inside.max() < 1 and abs(inside.mean() - 0.5) < 0.01
    else:
        assert abs(inside.mean()) < 0.03 and abs(inside.std() - 1) < 0.03
    # and it is reproducible
    vt.manual_seed(seed)
    base2 = vt.zeros(200, 300)
    getattr(base2.t()[::2], method)()
    assert vt.equal(base, base2)


@pytest.mark.parametrize("fn", [
    lambda m: m.empty(3).normal_(0.0, -1.0),
    lambda m: m.empty(3).uniform_(2.0, 1.0),
    lambda m: m.empty(3, dtype=m.int64).normal_(),
    lambda m: m.empty(3, dtype=m.int64).uniform_(),
    lambda m: m.rand(-1),
], ids=["neg_std", "from_gt_to", "int_normal", "int_uniform", "neg_size"])
def test_sampler_errors_like_torch(fn):
    check_op(lambda m: fn(m).shape, )
