"""The CPU block cache (core/src/cpu_allocator.cpp): freed large blocks come back with stale contents, so every
factory must write its result, and two live blocks of one size class never alias."""
import numpy as np
import pytest

import vibetensor.torch as vt

MIB = 1 << 20


@pytest.mark.parametrize("nbytes", [MIB - 4, MIB, MIB + 4, 3 * MIB + 68, 32 * MIB])
def test_reused_large_block_is_written_by_factories(nbytes):
    n = nbytes // 4
    for _ in range(2):  # the second round gets the first round's freed, dirty blocks
        dirty = vt.full((n,), 7.0)
        del dirty
        assert not vt.zeros(n).numpy().any()
        assert (vt.ones(n).numpy() == 1).all()
        np.testing.assert_array_equal(vt.arange(n, dtype=vt.float32).numpy(), np.arange(n, dtype=np.float32))
        e = vt.empty(n)
        e.fill_(3.0)
        assert (e.numpy() == 3).all()


def test_live_blocks_of_one_size_class_do_not_alias():
    n = (2 * MIB + 12) // 4
    a, b = vt.full((n,), 1.0), vt.full((n + 1,), 2.0)  # both round to the same 64 KiB class
    c = a + b[:n]
    assert (a.numpy() == 1).all() and (b.numpy() == 2).all() and (c.numpy() == 3).all()
    del a
    d = vt.full((n,), 4.0)
    assert (b.numpy() == 2).all() and (c.numpy() == 3).all() and (d.numpy() == 4).all()


def test_numpy_view_keeps_a_cached_block_alive():
    x = vt.full((MIB,), 5.0)
    view = x.numpy()
    del x
    y = vt.full((MIB,), 6.0)  # must not get x's block while the numpy view holds it
    assert (view == 5).all() and (y.numpy() == 6).all()
