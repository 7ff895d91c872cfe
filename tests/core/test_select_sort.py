"""gather, the scatters, index_select, masked_select, sort/argsort/topk and multinomial against torch on random
inputs: every dtype, non-contiguous operands, 0-dim, empty and odd shapes, duplicate indices, and bad input
(wrong dims, out-of-range indices, mismatched shapes and dtypes) raising torch's kind of error."""
import numpy as np
import pytest
import vibetensor.torch as vt
from helpers import ALL_DTYPES, FLOAT_DTYPES, NUMERIC_DTYPES, Pair, check_op, pair, pair_from_numpy


def idx_pair(arr):
    return pair_from_numpy(np.asarray(arr, dtype=np.int64))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather(dtype, dim, rng):
    x = pair((4, 5, 3), dtype, rng=rng, noncontig="transpose")
    ishape = [3, 4, 2]
    ishape[dim] = 6  # longer than self along dim: repeats allowed
    index = idx_pair(rng.integers(0, x.t.shape[dim], size=ishape))
    check_op(lambda m, a, i: m.gather(a, dim, i), x, index)
    check_op(lambda m, a, i: a.gather(dim, i), x, index)


def test_gather_odd_shapes_and_errors(rng):
    x = pair((3, 4), rng=rng)
    check_op(lambda m, a: m.gather(a, 1, m.zeros(3, 0, dtype=m.int64)), x)  # empty index
    check_op(lambda m: m.gather(m.tensor(3.0), 0, m.tensor(0)))             # 0-dim
    check_op(lambda m, a: m.gather(a, 1, m.tensor([[1]], dtype=m.int32)), x)  # int32 index
    check_op(lambda m, a: m.gather(a, 1, m.tensor([[5]])), x)                 # out of range
    check_op(lambda m, a: m.gather(a, 1, m.tensor([[-1]])), x)
    check_op(lambda m, a: m.gather(a, 1, m.tensor([1])), x)                   # wrong dims
    check_op(lambda m, a: m.gather(a, 1, m.zeros(4, 2, dtype=m.int64)), x)    # index too large off dim
    check_op(lambda m, a: m.gather(a, 2, m.zeros(3, 2, dtype=m.int64)), x)    # dim out of range
    check_op(lambda m, a: m.gather(a, 1, m.zeros(3, 2)), x)                   # float index


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
def test_scatter_and_scatter_add(dtype, rng):
    x = pair((4, 6), dtype, rng=rng, noncontig="transpose")
    src = pair((5, 6), dtype, rng=rng)
    # distinct targets per column for scatter (duplicates would pick an unspecified writer)
    perm = np.stack([rng.permutation(4)[:3] for _ in range(5)], 1)  # [3, 5]
    index = idx_pair(perm)
    check_op(lambda m, a, i, s: m.scatter(a, 0, i, s), x, index, src)
    check_op(lambda m, a, i, s: a.clone().scatter_(0, i, s), x, index, src)
    check_op(lambda m, a, i: a.scatter(0, i, 2), x, index)  # a number as src
    dup = idx_pair(rng.integers(0, 4, size=(5, 6)))  # duplicates add up
    # Sums of up to six values near 10 that may cancel: each half-precision addition rounds at the partial sum's
    # ulp (1/16 for bfloat16 near 10), and the order of additions is not torch's contract, so the tolerance is
    # absolute at that scale (seed 448124912 gave 0.0625 against torch's 0.0732 in bfloat16).
    tol = dict(rtol=1e-2, atol=0.1 if dtype in ("float16", "bfloat16") else None) if dtype in FLOAT_DTYPES else {}
    check_op(lambda m, a, i, s: m.scatter_add(a, 0, i, s), x, dup, src, **tol)
    check_op(lambda m, a, i, s: a.clone().scatter_add_(0, i, s), x, dup, src, **tol)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8"])
def test_scatter_reduce(reduce, include_self, dtype, rng):
    x = pair((5, 3), dtype, rng=rng, low=1, high=4)
    src = pair((7, 3), dtype, rng=rng, low=1, high=4)
    index = idx_pair(rng.integers(0, 4, size=(7, 3)))  # row 4 of self is never a target
    tol = dict(rtol=2e-2, atol=1e-2) if dtype in ("float16", "bfloat16") else dict(rtol=1e-5)
    check_op(lambda m, a, i, s: m.scatter_reduce(a, 0, i, s, reduce, include_self=include_self), x, index, src,
             **tol)
    check_op(lambda m, a, i, s: a.clone().scatter_reduce_(0, i, s, reduce, include_self=include_self), x, index,
             src, **tol)


def test_scatter_errors(rng):
    x = pair((3, 4), rng=rng)
    i = idx_pair(np.zeros((3, 4)))
    check_op(lambda m, a, i: a.scatter(1, i, m.ones(2, 4)), x, i)                       # src too small
    check_op(lambda m, a, i: a.scatter_add(1, i, m.ones(3, 4, dtype=m.float64)), x, i)  # dtype mismatch
    check_op(lambda m, a: a.scatter(1, m.tensor([[5]]), 1.0), x)                        # out of range
    check_op(lambda m, a, i: a.scatter_reduce(1, i, m.ones(3, 4), "max"), x, i)         # unknown reduce
    check_op(lambda m, a: a.scatter(1, m.zeros(3, dtype=m.int64), m.ones(3)), x)        # wrong dims


@pytest.mark.parametrize("noncontig", [False, "transpose"])
def test_index_select(noncontig, rng):
    x = pair((4, 6), "float32", rng=rng, noncontig=noncontig)
    for dim in (0, 1, -1):
        idx = idx_pair(rng.integers(0, x.t.shape[dim], size=7))
        check_op(lambda m, a, i: m.index_select(a, dim, i), x, idx)
        check_op(lambda m, a, i: a.index_select(dim, i), x, idx)
    check_op(lambda m, a: a.index_select(0, m.tensor([], dtype=m.int64)), x)
    check_op(lambda m, a: a.index_select(1, m.tensor([7])), x)
    check_op(lambda m, a: a.index_select(1, m.tensor([[1]])), x)
    check_op(lambda m: m.tensor(3.0).index_select(0, m.tensor([0])))


@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_masked_select(dtype, rng):
    x = pair((3, 1, 5), dtype, rng=rng)
    mask = pair_from_numpy(rng.random((4, 5)) < 0.5)
    check_op(lambda m, a, k: m.masked_select(a, k), x, mask)
    check_op(lambda m, a, k: a.masked_select(k), x, mask)
    check_op(lambda m, a: a.masked_select(m.ones(2, 2, dtype=m.bool)), x)  # does not broadcast


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
@pytest.mark.parametrize("descending", [False, True])
def test_sort_values_and_stable_indices(dtype, descending, rng):
    # few distinct values: many ties, which stable=True must keep in order
    x = pair((5, 9), dtype, rng=rng, low=0, high=4, noncontig="transpose")
    x = Pair(x.v.round() if dtype in FLOAT_DTYPES else x.v, x.t.round() if dtype in FLOAT_DTYPES else x.t)
    for dim in (0, 1, -1):
        check_op(lambda m, a: tuple(m.sort(a, dim=dim, descending=descending, stable=True)), x)
        check_op(lambda m, a: a.argsort(dim=dim, descending=descending, stable=True), x)
        check_op(lambda m, a: a.sort(dim=dim, descending=descending, stable=True).values, x)


def test_sort_special_values_and_shapes():
    vals = np.array([3.0, np.nan, -np.inf, 0.0, -0.0, np.inf, -1.0, np.nan], dtype=np.float32)
    x = pair_from_numpy(vals)
    check_op(lambda m, a: tuple(m.sort(a, stable=True)), x)
    check_op(lambda m, a: tuple(m.sort(a, descending=True, stable=True)), x)
    check_op(lambda m: tuple(m.sort(m.tensor(2.0))))
    check_op(lambda m: tuple(m.sort(m.zeros(3, 0), 1)))
    check_op(lambda m: m.sort(m.zeros(3, 4), 3))


@pytest.mark.parametrize("largest", [True, False])
def test_topk(largest, rng):
    x = pair((4, 3, 10), "float32", rng=rng, noncontig="transpose")
    for k, dim in [(1, -1), (3, 1), (2, 0), (0, -1)]:
        check_op(lambda m, a: tuple(m.topk(a, k, dim, largest)), x)
        check_op(lambda m, a: tuple(a.topk(k, dim=dim, largest=largest)), x)
    check_op(lambda m, a: m.topk(a, 11), x)
    check_op(lambda m, a: m.topk(a, -1), x)
    r = vt.topk(x.v, 2)
    assert r.values.shape == r[0].shape and r.indices.dtype == vt.int64


def test_multinomial_distribution_and_errors():
    vt.manual_seed(0)
    p = vt.tensor([[0.1, 0.0, 0.6, 0.3], [1.0, 1.0, 1.0, 1.0]])
    draws = vt.multinomial(p, 4000, replacement=True).numpy()
    freq = np.stack([np.bincount(r, minlength=4) / 4000 for r in draws])
    np.testing.assert_allclose(freq, [[0.1, 0.0, 0.6, 0.3], [0.25] * 4], atol=0.03)
    without = vt.multinomial(p, 3).numpy()
    assert all(len(set(r)) == 3 for r in without) and 1 not in without[0]
    first = np.array([vt.multinomial(p[0], 1).item() for _ in range(600)])
    np.testing.assert_allclose(np.bincount(first, minlength=4) / 600, [0.1, 0.0, 0.6, 0.3], atol=0.06)
    vt.manual_seed(5)
    a = vt.multinomial(p, 2)
    vt.manual_seed(5)
    assert vt.multinomial(p, 2).tolist() == a.tolist()
    assert vt.multinomial(p[0], 2).dtype == vt.int64 and tuple(vt.multinomial(p[0], 2).shape) == (2,)
    check_op(lambda m: m.multinomial(m.tensor([-1.0, 1.0]), 1))
    check_op(lambda m: m.multinomial(m.tensor([1.0, 1.0]), 3))
    check_op(lambda m: m.multinomial(m.tensor([0.0, 0.0]), 1))
    assert sorted(vt.multinomial(vt.tensor([1.0, 0.0]), 2).tolist()) == [0, 1]  # the zero-probability one last
    check_op(lambda m: m.multinomial(m.ones(2, 2, 2), 1))
    with pytest.raises(RuntimeError, match="floating-point dtypes for input, got: Long$"):  # torch's dtype name
        vt.multinomial(vt.tensor([0, 1]), 1)
