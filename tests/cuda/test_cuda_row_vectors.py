"""The elementwise vector kernel over rows (Note [Row vectors] in core/src/ops/cuda/loops.cuh) against torch on
the GPU: a broadcast row operand (a Linear's bias add), rows of a wider tensor (a slice, so rows are strided),
row lengths that leave a scalar tail, row starts that are not aligned to a vector (these take the strided
kernel), short rows, in-place, three operands, scalars beside rows, and every dtype width (1 to 8 bytes).

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_row_vectors.py -q -p no:cacheprovider
Tests of the tests on the CPU:
  VT_CUDA_TEST_DEVICE=cpu PYTHONPATH=python python -m pytest tests/cuda/test_cuda_row_vectors.py
"""
import pytest
from cuda_helpers import CUDA_MARKS, Failures, dcheck, dpair

pytestmark = CUDA_MARKS

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "uint8"]
# (rows, row length, slice of a wider row): long rows (vector path), a tail (1027 % 8 != 0), an odd width
# whose row starts are misaligned (strided path), short rows (strided path), one row.
LAYOUTS = [(64, 1024, None), (33, 1027, None), (16, 2048, (8, 2056)), (16, 1024, (3, 1031)), (512, 16, None),
           (1, 4099, None), (7, 4096, (0, 4104))]


def rows_pair(rows, n, window, dtype, rng):
    if window is None:
        return dpair((rows, n), dtype, rng=rng)
    start, width = window
    p = dpair((rows, width), dtype, rng=rng)
    return type(p)(p.v[:, start:start + n], p.t[:, start:start + n])


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_against_torch(dtype, rng):
    f = Failures()
    for rows, n, window in LAYOUTS:
        label = f"[{rows}, {n}] window {window}"
        with f.case(f"{label}: x + bias"):
            dcheck(lambda m, x, b: x + b, rows_pair(rows, n, window, dtype, rng), dpair((n,), dtype, rng=rng))
        with f.case(f"{label}: bias * x (broadcast first operand)"):
            dcheck(lambda m, b, x: b * x, dpair((n,), dtype, rng=rng), rows_pair(rows, n, window, dtype, rng))
        with f.case(f"{label}: x - y, both rows"):
            dcheck(lambda m, x, y: x - y, rows_pair(rows, n, window, dtype, rng),
                   rows_pair(rows, n, window, dtype, rng))
        with f.case(f"{label}: x.add_(bias) in place"):
            dcheck(lambda m, x, b: x.add_(b), rows_pair(rows, n, window, dtype, rng), dpair((n,), dtype, rng=rng))
        with f.case(f"{label}: maximum(x, bias) * 2 (a Python scalar beside rows)"):
            dcheck(lambda m, x, b: m.maximum(x, b) * 2, rows_pair(rows, n, window, dtype, rng),
                   dpair((n,), dtype, rng=rng))
        with f.case(f"{label}: where(x > bias, x, bias) (three operands)"):
            dcheck(lambda m, x, b: m.where(x > b, x, b), rows_pair(rows, n, window, dtype, rng),
                   dpair((n,), dtype, rng=rng))
    f.raise_if_any()


def test_rows_mixed_dtypes_and_column_broadcast(rng):
    # a float16 row plus a float32 bias (promotion: the vector width follows the widest operand), and a column
    # operand ([rows, 1], stride 0 along the row: the strided kernel)
    f = Failures()
    with f.case("float16 rows + float32 bias"):
        dcheck(lambda m, x, b: x + b, dpair((32, 2048), "float16", rng=rng), dpair((2048,), "float32", rng=rng),
               rtol=1e-3, atol=1e-3)
    with f.case("rows + column"):
        dcheck(lambda m, x, c: x + c, dpair((32, 2048), "float32", rng=rng), dpair((32, 1), "float32", rng=rng))
    with f.case("rows of a 3-d broadcast: [4, 8, 1024] + [1024]"):
        dcheck(lambda m, x, b: x + b, dpair((4, 8, 1024), "float32", rng=rng), dpair((1024,), "float32", rng=rng))
    f.raise_if_any()
