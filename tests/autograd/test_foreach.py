"""The foreach ops on the CPU (vt._foreach_norm, vt._foreach_mul_; core/src/ops/foreach.h) against torch's:
norms of every order over lists of odd sizes (empty, one element, 0-dim, chunk and cell boundaries, a million
elements), non-contiguous views (transposed, strided, offset, permuted), 300 small tensors with a few large
ones, every floating dtype and lists mixing them; bit-identical norms run to run and across thread counts;
_foreach_mul_ bit for bit with every kind of scale; the errors. tests/cuda/test_cuda_foreach.py runs the same
checks (tests/foreach_cases.py) on the GPU; clip_grad_norm_'s foreach paths are in test_init_clip_optim.py."""
import math

import pytest
import torch
import vibetensor.torch as vt
from foreach_cases import (DTYPES, MORE_ORDS, ODD, ORDS, SCALE_KINDS, SMALL, assert_lists_equal, check_deterministic,
                           check_mixed_dtypes, check_mul, check_mul_16bit_scalar, check_norm, many, make_lists,
                           norm_bits)
from helpers import dtype_name


@pytest.mark.parametrize("p", ORDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_odd_sizes_and_views(dtype, p, rng):
    check_norm(rng, ODD, dtype, p, "cpu")


@pytest.mark.parametrize("p", MORE_ORDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_more_orders(dtype, p, rng):
    check_norm(rng, SMALL, dtype, p, "cpu")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_norm_many_tensors(dtype, rng):
    specs = many(rng)
    for p in ORDS:
        check_norm(rng, specs, dtype, p, "cpu")


def test_norm_mixed_dtypes_and_dtype_argument(rng):
    check_mixed_dtypes(rng, "cpu")


def test_norm_deterministic(rng):
    check_deterministic(rng, "cpu")


def test_norm_independent_of_thread_count(rng):
    vs, _, _ = make_lists(rng, many(rng), "float32", "cpu")
    threads = vt.get_num_threads()
    try:
        vt.set_num_threads(1)
        one = norm_bits(vt._foreach_norm(vs, 2.0))
        vt.set_num_threads(max(2, threads))
        assert norm_bits(vt._foreach_norm(vs, 2.0)) == one
    finally:
        vt.set_num_threads(threads)


def test_norm_special_values():
    vals = [[math.nan, 1.0], [math.inf, 1.0], [-math.inf, 2.0], [1e-30], [1e30, 1e30], [0.0, -0.0]]
    vs, ts = [vt.tensor(v) for v in vals], [torch.tensor(v) for v in vals]
    for p in ORDS + MORE_ORDS:
        got = [r.item() for r in vt._foreach_norm(vs, p)]
        want = [r.item() for r in torch._foreach_norm(ts, p)]
        assert [("nan" if math.isnan(g) else g) for g in got] == [("nan" if math.isnan(w) else w) for w in want], p


@pytest.mark.parametrize("kind", SCALE_KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_mul_matches_torch(dtype, kind, rng):
    check_mul(rng, SMALL + [((70000,), None), ((0, 3), None)], dtype, kind, "cpu")


def test_mul_many_and_mixed(rng):
    specs = many(rng)[:120]
    for dtype in ("float32", "bfloat16"):
        check_mul(rng, specs, dtype, "cpu float32", "cpu")
    vs, ts, _ = make_lists(rng, SMALL, "float32", "cpu")
    vi, ti = vt.arange(6).reshape(2, 3), torch.arange(6).reshape(2, 3)
    vh, th, _ = make_lists(rng, SMALL, "float16", "cpu")
    vt._foreach_mul_(vs + [vi] + vh, vt.tensor(2))  # three groups, the int64 one through mul_
    torch._foreach_mul_(ts + [ti] + th, torch.tensor(2))
    assert [dtype_name(v.dtype) for v in vs + [vi] + vh] == [dtype_name(t.dtype) for t in ts + [ti] + th]
    assert_lists_equal(vs + [vi] + vh, ts + [ti] + th)


def test_mul_16bit_cpu_scalar():
    check_mul_16bit_scalar("cpu")


def test_mul_scale_in_the_list_is_read_before_writing():
    """vt reads the scale once, before writing anything (torch's CPU path multiplies one tensor after another,
    so its h would be scaled by the new s, 9; its GPU path leaves the order undefined)."""
    s, g, h = vt.tensor(3.0), vt.ones(4), vt.full((2,), 2.0)
    vt._foreach_mul_([g, s, h], s)
    assert s.item() == 9.0 and g.tolist() == [3.0] * 4 and h.tolist() == [6.0, 6.0]


def test_errors():
    for fn in (lambda m: m._foreach_norm([]), lambda m: m._foreach_mul_([], m.tensor(1.0)),
               lambda m: m._foreach_norm([m.arange(3)]), lambda m: m._foreach_norm([m.zeros(0)], math.inf),
               lambda m: m._foreach_norm([m.ones(2), m.zeros(0)], -1.0),
               lambda m: m._foreach_norm([m.ones(2)], 2.0, dtype=m.float16),
               lambda m: m._foreach_mul_([m.ones(2)], m.ones(2)), lambda m: m._foreach_mul_([m.ones(2)], m.ones(1)),
               lambda m: m._foreach_mul_([m.ones(2, dtype=m.int64)], m.tensor(2.5)),
               lambda m: m._foreach_mul_([m.ones(1).expand(3)], m.tensor(2.0)),
               lambda m: m._foreach_mul_([m.ones(2, requires_grad=True)], m.tensor(2.0))):
        with pytest.raises(Exception) as te:
            fn(torch)
        with pytest.raises(type(te.value)):
            fn(vt)
    with pytest.raises(RuntimeError, match="infinity norm on an empty tensor"):
        vt._foreach_norm([vt.ones(3), vt.zeros(0)], math.inf)
    with pytest.raises(RuntimeError, match="scalar tensor expected to be 0 dim"):
        vt._foreach_mul_([vt.ones(2)], vt.ones(1))
    for other in (2.0, [vt.tensor(2.0, dtype=vt.float32)]):  # torch's Scalar and list overloads (test_foreach_ops.py)
        x = vt.ones(2)
        vt._foreach_mul_([x], other)
        assert x.tolist() == [2.0, 2.0]
    # vt has no derivative for the foreach norm yet: the result says so when backward reaches it
    r = vt._foreach_norm([vt.ones(3, requires_grad=True)])[0]
    with pytest.raises(NotImplementedError):
        r.backward()
