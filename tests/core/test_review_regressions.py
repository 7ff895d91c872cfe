"""Bugs found in review, each pinned: overflow in shapes and strides, 0-dim size(), aliasing index_put_,
strided overlap false positives, negative expand sizes, huge slice steps, read-only DLPack producers."""
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import vibetensor.torch as vt


def test_shape_product_overflow_raises():
    with pytest.raises(RuntimeError, match="int64"):
        vt.zeros((2**62 + 1, 4))
    with pytest.raises(RuntimeError, match="invalid|overflow"):
        vt.zeros(4).view(2**62, -1)


def test_as_strided_overflow_raises():
    with pytest.raises(RuntimeError, match="overflows"):
        vt.ops.vt.as_strided(vt.zeros(4), [2**62], [4])


def test_size_of_0dim_raises_index_error():
    with pytest.raises(IndexError, match="no dimensions"):
        vt.tensor(1.5).size(0)
    with pytest.raises(IndexError, match="no dimensions"):
        vt.tensor(1.5).stride(-1)


def test_index_put_with_aliasing_values_is_refused_as_in_torch():
    # index_put_ reads its values while it writes self: values that alias self are refused, as torch refuses
    # them (Note [In-place overlap]); a copy of them permutes.
    x = vt.arange(4.0)
    with pytest.raises(RuntimeError, match="single memory location"):
        x[vt.tensor([1, 2, 3, 0])] = x
    x[vt.tensor([1, 2, 3, 0])] = x.clone()
    assert x.tolist() == [3.0, 0.0, 1.0, 2.0]


def test_interleaved_views_are_not_an_overlap():
    a = vt.arange(6.0).view(3, 2)
    a[:, 0] += a[:, 1]
    assert a.tolist() == [[1.0, 1.0], [5.0, 3.0], [9.0, 5.0]]


def test_expand_rejects_negative_sizes():
    with pytest.raises(RuntimeError, match="only -1"):
        vt.ones(1).expand(-5)


def test_huge_slice_step_and_narrow_length():
    assert vt.arange(5)[:: 2**63 - 1].shape == (1,)
    with pytest.raises(RuntimeError, match="exceeds dimension size"):
        vt.arange(5).narrow(0, 2, 2**63 - 1)


def test_read_only_dlpack_producer_warns():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        t = vt.from_dlpack(np.frombuffer(bytes(16), np.float32))
    assert t.shape == (4,) and any("read-only" in str(x.message) for x in w)


def test_set_num_threads_caps_a_running_pool():
    n = vt.get_num_threads()
    vt.set_num_threads(1)
    try:
        assert vt.get_num_threads() == 1
        assert float(vt.ones(100_000).sum()) == 100_000.0
    finally:
        vt.set_num_threads(n)


def test_set_num_threads_grows_a_running_pool():
    """Note [The pool grows]: a pool started with one thread takes more when asked later, as torch's
    set_num_threads does; in a fresh process, counting the OS threads."""
    code = textwrap.dedent("""
        import os, vibetensor.torch as vt
        tasks = lambda: len(os.listdir("/proc/self/task"))
        vt.set_num_threads(1)
        vt.ones(1_000_000).sum()                 # the pool starts with the caller alone
        before = tasks()
        vt.set_num_threads(3)
        assert vt.get_num_threads() == 3, vt.get_num_threads()
        assert float(vt.ones(1_000_000).sum()) == 1e6
        assert tasks() == before + 2, (before, tasks())
        vt.set_num_threads(2)                    # fewer: a cap, no thread goes
        assert vt.get_num_threads() == 2 and float(vt.arange(1_000_000, dtype=vt.float64).sum()) == 499999500000.0
        print("ok")
    """)
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("counts threads through /proc")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_requires_grad_flag_on_leaves():
    # Autograd exists now (tests/autograd/): the flag sets on float leaves and is refused on integer tensors.
    x = vt.ones(2)
    assert x.requires_grad is False
    x.requires_grad = True
    assert x.requires_grad and x.is_leaf and x.grad is None
    with pytest.raises(RuntimeError, match="floating point"):
        vt.ones(2, dtype=vt.int64).requires_grad = True
