"""Kernels past 2^31 elements on the GPU, paths no other suite reaches: the vector kernel and the reductions
switch to 64-bit index arithmetic when an iteration holds more than INT32_MAX elements (Note [Unrolled dims] in
loops.cuh), and the strided elementwise kernel (copies included) runs such an iteration in chunks of at most
INT32_MAX elements (Note [32-bit chunks]). uint8 operands of 3.2 and 4.3 billion elements
(about 10 and 13 GB at the peak) with values known in closed form, checked by sums and by elements on both sides
of the 2^31 boundary, so no reference copy of these sizes is needed. Each test builds its own operands and frees
them, so two workers never hold more than ~25 GB."""
import pytest

import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, ON_CUDA

pytestmark = CUDA_MARKS + [
    pytest.mark.skipif(not ON_CUDA, reason="about the CUDA kernels' 64-bit index paths"),
]

N = 2**30 + 7          # columns: 3 * N = 3,221,225,493 elements > INT32_MAX; each row fits in 32 bits
M = 2**31 + 9          # a row that does not: its chunks split one row


@pytest.fixture(autouse=True)
def _room():
    if vt.cuda.get_device_properties(0).total_memory < 40 * 2**30:
        pytest.skip("needs about 13 GB of GPU memory beside the other tests")
    yield
    vt.cuda.empty_cache()


def test_three_rows_past_int32():
    # a[i, j] = i + 1, contiguous (3, N): the copy kernel from a broadcast (stride 0) input
    a = vt.arange(1, 4, dtype=vt.uint8, device=DEV).view(3, 1).expand(3, N).contiguous()
    assert int(a.sum(dtype=vt.int64)) == N * (1 + 2 + 3)
    for i, j in [(0, 0), (1, 0), (2, N - 1), (1, N - 1), (2, 2**31 // 3 + 1)]:
        assert int(a[i, j]) == i + 1, (i, j)
    # b (N, 3): zero but for row 0 (2) and the last five rows (7); b.t() is a (3, N) view of stride 3
    b = vt.zeros(N, 3, dtype=vt.uint8, device=DEV)
    b[0] = 2
    b[N - 5:] = 7
    b_total = 3 * (2 + 5 * 7)

    # two layouts that cannot share one order: the strided kernel, one chunk per row (Note [32-bit chunks])
    out = a + b.t()
    assert out.shape == (3, N) and out.is_contiguous()
    assert int(out.sum(dtype=vt.int64)) == N * 6 + b_total
    for i in range(3):
        for j, v in [(0, 2), (1, 0), (N - 6, 0), (N - 5, 7), (N - 1, 7)]:
            assert int(out[i, j]) == i + 1 + v, (i, j)
    del out

    out = a * 2 + 1  # dense operands: the 16-byte vector kernel, 64-bit indices
    assert int(out.sum(dtype=vt.int64)) == N * (3 + 5 + 7)
    assert int(out[2, N - 1]) == 7 and int(out[0, 0]) == 3
    del out

    bt = b.t().contiguous()  # a transposing copy of 3.2e9 elements
    assert int(bt.sum(dtype=vt.int64)) == b_total
    for i in range(3):
        assert int(bt[i, 0]) == 2 and int(bt[i, 1]) == 0 and int(bt[i, N - 5]) == 7 and int(bt[i, N - 6]) == 0
    del bt

    # reductions over more than INT32_MAX elements (the 64-bit offset calculators of reduce.cuh)
    assert int(b.sum()) == b_total  # uint8 sums to int64, as in torch
    assert a.sum(1).tolist() == [N, 2 * N, 3 * N]                 # inner: rows of 2^30 + 7
    assert b.sum(0).tolist() == [b_total // 3] * 3                 # outer: 2^30 + 7 rows of 3
    assert b.t().sum(1).tolist() == [b_total // 3] * 3             # the same through a transposed view
    assert int(b.amax()) == 7 and int(a.amin()) == 1
    assert int(b.argmax()) == 3 * (N - 5)                          # the first 7, past 2^31


def test_a_row_past_int32():
    # (2, M): the dims inside the outer one already exceed INT32_MAX, so each row runs on its own, in two chunks
    c = vt.zeros(M, 2, dtype=vt.uint8, device=DEV)
    c[0] = 1
    c[2**31 - 1] = 3  # the last element of a row's first chunk
    c[2**31] = 4      # the first of its second
    c[M - 1] = 5
    out = vt.ones(2, M, dtype=vt.uint8, device=DEV) + c.t()
    assert int(out.sum(dtype=vt.int64)) == 2 * M + 2 * (1 + 3 + 4 + 5)
    for i in range(2):
        for j, v in [(0, 1), (1, 0), (2**31 - 2, 0), (2**31 - 1, 3), (2**31, 4), (2**31 + 1, 0), (M - 1, 5)]:
            assert int(out[i, j]) == 1 + v, (i, j)
