"""The CPU's normal draws (randn, normal_, randn_like) computed in vector lanes (Note [Vector Box-Muller]):
against the Box-Muller formula evaluated by numpy over the same Philox uniforms (a float64 rand drawn from the
same seed and offset yields them: element 4b + 2p is u1 of pair p of block b, element 4b + 2p + 1 its u2), in
every instruction set this CPU runs, every float dtype, odd lengths and chunk tails, non-contiguous outputs, and
one or several threads - which must all give the same bits."""
import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor._C import core as C

from helpers import kernel_variant_fixture, to_numpy

isa = kernel_variant_fixture(C.cpu_math_isa, C.set_cpu_math_isa, ("generic", "avx2", "avx512"))

# 1 and 3 leave a partial block; 4 * 256 * k +- 1 straddle the 256-block chunks; 65541 spans two threads' ranges
SIZES = [1, 3, 4, 5, 1023, 1025, 4 * 256 * 3 + 1, 65541]


def reference(seed, n, mean=0.0, std=1.0):
    """The draws in float64 from the formula, over the uniforms vt.rand gives for the same seed and offset."""
    vt.manual_seed(seed)
    u = to_numpy(vt.rand(n + (-n) % 4, dtype=vt.float64))  # whole blocks, as the normal draw consumes them
    u1, u2 = u[0::2], u[1::2]
    rad = np.sqrt(-2.0 * np.log1p(-u1))
    th = 6.283185307179586 * u2
    z = np.empty_like(u)
    z[0::2], z[1::2] = rad * np.cos(th), rad * np.sin(th)
    return (mean + std * z)[:n]


def ulps(a, ref):
    return np.abs(a - ref) / np.spacing(np.abs(ref).astype(a.dtype))


@pytest.mark.parametrize("n", SIZES)
def test_float64_draws_match_the_formula(isa, n):
    seed = 1000 + n
    ref = reference(seed, n)
    vt.manual_seed(seed)
    z = to_numpy(vt.randn(n, dtype=vt.float64))
    # fdlibm's log, sin and cos are within 1 ulp, as numpy's libm is: a few ulp between the two products
    assert ulps(z, ref).max() <= 4


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_narrow_draws_are_the_float64_draw_rounded(isa, dtype):
    n = 200_003
    vt.manual_seed(5)
    wide = to_numpy(vt.randn(n, dtype=vt.float64))
    vt.manual_seed(5)
    narrow = vt.randn(n, dtype=getattr(vt, dtype))
    assert narrow.dtype == getattr(vt, dtype) and narrow.shape == (n,)
    # each element is the same double rounded once to the dtype, so rounding the float64 draw agrees exactly
    np.testing.assert_array_equal(to_numpy(narrow.double()), to_numpy(vt.from_numpy(wide).to(narrow.dtype).double()))
    ref32 = reference(5, n).astype(np.float32)
    if dtype == "float32":  # and with numpy's formula, but where the last double bits cross a float32 rounding
        assert (to_numpy(narrow) != ref32).sum() <= 2


def test_every_instruction_set_and_thread_count_draws_the_same_bits():
    outs = []
    before_isa, before_threads = C.cpu_math_isa(), vt.get_num_threads()
    try:
        for name in ("generic", "avx2", "avx512"):
            try:
                C.set_cpu_math_isa(name)
            except NotImplementedError:
                continue
            for threads in (1, 2):
                vt.set_num_threads(threads)
                vt.manual_seed(11)
                outs.append(to_numpy(vt.randn(3, 70_001, dtype=vt.float64)))
    finally:
        C.set_cpu_math_isa(before_isa)
        vt.set_num_threads(before_threads)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_normal_mean_std_and_non_contiguous_outputs(isa):
    base = vt.zeros(40, 30, dtype=vt.float64)
    view = base.t()[:, ::3]  # (30, 14), strided: drawn dense and copied in
    vt.manual_seed(21)
    view.normal_(2.5, 0.75)
    ref = reference(21, view.numel(), 2.5, 0.75).reshape(30, 14)
    assert ulps(to_numpy(view), ref).max() <= 4
    # view holds base's rows 0, 3, ..., 39 (transposed): the other rows stay zero
    assert (to_numpy(base)[1::3] == 0).all() and (to_numpy(base)[2::3] == 0).all()

def test_a_draw_advances_the_generator_by_whole_blocks(isa):
    vt.manual_seed(9)
    first = to_numpy(vt.randn(5, dtype=vt.float64))
    second = to_numpy(vt.randn(6, dtype=vt.float64))
    vt.manual_seed(9)
    both = to_numpy(vt.randn(8 + 6, dtype=vt.float64))
    # five draws take two blocks of four (the rest of the second is discarded): the next draw starts at element 8
    np.testing.assert_array_equal(first, both[:5])
    np.testing.assert_array_equal(second, both[8:])
