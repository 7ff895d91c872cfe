"""copy_ and fill_ on the GPU run as elementwise kernels over a TensorIterator (Note [Copy as elementwise] in
core/src/cuda/copy.cu): dense layouts take 16-byte vectors, any other layout the strided kernel. Every dtype
pair through each path (dense, odd-length tail, misaligned start, transposed, broadcast, non-contiguous
destination), checked against the same copy on the CPU, which the CPU suites check against torch."""
import numpy as np
import pytest

import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV

pytestmark = CUDA_MARKS
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def values(shape, seed):
    """Values every dtype holds exactly after the cast (small integers and halves, some negative, some zero)."""
    a = np.random.default_rng(seed).integers(-40, 90, size=shape).astype(np.float32) / 2
    return vt.from_numpy(a)


LAYOUTS = {  # name: (source view of a [37, 41] tensor, destination shape)
    "dense": (lambda t: t, (37, 41)),
    "misaligned": (lambda t: t.reshape(-1)[1:], (37 * 41 - 1,)),
    "transposed": (lambda t: t.t(), (41, 37)),
    "every_other": (lambda t: t[:, ::2], (37, 21)),
    "broadcast_row": (lambda t: t[0], (5, 41)),
    "scalar": (lambda t: t[3, 4], (6, 7)),
}


@pytest.mark.parametrize("src", DTYPES)
@pytest.mark.parametrize("dst", DTYPES)
def test_every_dtype_pair_every_layout(dst, src):
    base = values((37, 41), hash((dst, src)) & 0xFFFF).to(getattr(vt, src))
    dev = base.to(DEV)
    for name, (view, shape) in LAYOUTS.items():
        want = vt.empty(shape, dtype=getattr(vt, dst)).copy_(view(base))
        got = vt.empty(shape, dtype=getattr(vt, dst), device=DEV).copy_(view(dev))
        assert vt.equal(got.cpu(), want), (name, dst, src)
    # a non-contiguous destination, written through a transposed view
    want = vt.zeros(41, 37, dtype=getattr(vt, dst))
    want.t().copy_(base)
    got = vt.zeros(41, 37, dtype=getattr(vt, dst), device=DEV)
    got.t().copy_(dev)
    assert vt.equal(got.cpu(), want), ("transposed destination", dst, src)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "int64", "uint8", "bool"])
def test_large_odd_sizes_dense_and_transposed(dtype):
    x = values((1031, 2053), 7).to(getattr(vt, dtype))
    d = x.to(DEV)
    assert vt.equal(d.t().contiguous().cpu(), x.t().contiguous())
    assert vt.equal(d.to(vt.float64).cpu(), x.to(vt.float64))
    assert vt.equal(d[:, 1:].to(vt.float32).cpu(), x[:, 1:].to(vt.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fill_dense_tail_strided_and_expanded(dtype):
    d = getattr(vt, dtype)
    for n in (1, 7, 4099):
        assert vt.equal(vt.empty(n, dtype=d, device=DEV).fill_(1).cpu(), vt.ones(n, dtype=d))
    m = vt.zeros(33, 65, dtype=d, device=DEV)
    m[:, 1::3].fill_(1)
    m.t()[2].fill_(1)
    want = vt.zeros(33, 65, dtype=d)
    want[:, 1::3] = 1
    want.t()[2] = 1
    assert vt.equal(m.cpu(), want)
    e = vt.zeros(9, dtype=d, device=DEV)
    e.expand(4, 9).fill_(1)  # elements share memory: fill is idempotent, allowed as in torch
    assert vt.equal(e.cpu(), vt.ones(9, dtype=d))


def test_partly_overlapping_copy_is_refused_on_both_devices():
    for device in ("cpu", DEV):
        x = vt.arange(10.0, device=device)
        with pytest.raises(RuntimeError, match="memory location"):
            x[1:].copy_(x[:-1])
        x.copy_(x)  # the very same elements: fine
        assert x.cpu().tolist() == list(map(float, range(10)))


PERMUTES = [  # (storage shape, view): layouts whose source and destination unit-stride dims differ
    ((67, 45), lambda t: t.t()),                               # partial tiles on both sides
    ((5, 40, 33), lambda t: t.permute(0, 2, 1)),               # a batch of transposes
    ((40, 3, 70), lambda t: t.permute(2, 1, 0)),               # the batch dim between the two
    ((6, 50, 36), lambda t: t[1::2, :, ::1].permute(2, 0, 1)),  # a strided batch
    ((48, 1), lambda t: t.expand(48, 20)),                     # a broadcast source (stride 0 along the rows)
    ((2, 17, 16), lambda t: t.transpose(1, 2)[:, 1:]),         # a misaligned start
]


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int16", "float16", "bfloat16", "int32", "float32", "int64",
                                   "float64"])
def test_tiled_transpose_layouts_every_element_size(dtype):
    for shape, view in PERMUTES:
        x = values(shape, len(shape)).to(getattr(vt, dtype))
        d = x.to(DEV)
        assert vt.equal(view(d).contiguous().cpu(), view(x).contiguous()), (shape, dtype)
        out = vt.zeros(*view(x).shape, dtype=x.dtype, device=DEV)
        out.copy_(view(d))
        assert vt.equal(out.cpu(), view(x).contiguous()), (shape, dtype)
    # into a transposed destination from a contiguous source: the destination decides the walk
    x = values((45, 67), 9).to(getattr(vt, dtype))
    dst = vt.zeros(67, 45, dtype=x.dtype, device=DEV)
    dst.t().copy_(x.to(DEV))
    assert vt.equal(dst.cpu(), x.t().contiguous())
