"""CPU copy_ across layouts: transposes of one dtype take the blocked walk (Note [CPU blocked transpose] in
core/src/ops/copy.cpp; 4-byte elements in 8 x 8 AVX2 squares where the CPU has them), everything else the
elementwise loop. Every element size, partial blocks, batches,
strided and broadcast sources, misaligned starts and transposed destinations, against NumPy."""
import numpy as np
import pytest

import vibetensor.torch as vt

DTYPES = ["bool", "uint8", "int16", "float16", "int32", "float32", "int64", "float64"]

LAYOUTS = [  # (storage shape, view applied to both the NumPy array and the tensor)
    ((67, 45), lambda t: t.transpose(1, 0)),                     # partial blocks on both sides
    ((16, 16), lambda t: t.transpose(1, 0)),                     # exactly one block
    ((300, 17), lambda t: t.transpose(1, 0)),                    # one block wide
    ((5, 40, 33), lambda t: t.transpose(0, 2, 1) if isinstance(t, np.ndarray) else t.permute(0, 2, 1)),
    ((6, 50, 36), lambda t: (t[1::2].transpose(2, 0, 1) if isinstance(t, np.ndarray) else t[1::2].permute(2, 0, 1))),
    ((2, 17, 40), lambda t: t.transpose(0, 2, 1)[:, 1:] if isinstance(t, np.ndarray) else t.transpose(1, 2)[:, 1:]),
    ((40, 1), lambda t: np.broadcast_to(t, (40, 30)) if isinstance(t, np.ndarray) else t.expand(40, 30)),
    ((9, 2048), lambda t: t.transpose(1, 0)),                    # long rows: the parallel split cuts them
    ((24, 40), lambda t: t.transpose(1, 0)),                     # whole 8 x 8 squares (4-byte AVX2 walk)
    ((8, 8), lambda t: t.transpose(1, 0)),
    ((35, 1030), lambda t: t[3:, 5:].transpose(1, 0)),           # starts off any alignment, ragged squares
    ((3, 29, 57), lambda t: t[:, ::2].transpose(0, 2, 1) if isinstance(t, np.ndarray) else t[:, ::2].mT),
]


def _np(shape, dtype, seed):
    a = np.random.default_rng(seed).integers(-50, 100, size=shape)
    return (a > 20) if dtype == "bool" else a.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transposed_and_permuted_copies_match_numpy(dtype):
    for i, (shape, view) in enumerate(LAYOUTS):
        a = _np(shape, dtype, i)
        x = vt.from_numpy(np.ascontiguousarray(a))
        want = np.ascontiguousarray(view(a))
        np.testing.assert_array_equal(view(x).contiguous().numpy(), want)
        out = vt.zeros(*want.shape, dtype=x.dtype)
        out.copy_(view(x))
        np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
def test_copy_into_a_transposed_destination(dtype):
    a = _np((45, 67), dtype, 3)
    dst = vt.zeros(67, 45, dtype=getattr(vt, dtype))
    dst.t().copy_(vt.from_numpy(a))
    np.testing.assert_array_equal(dst.numpy(), a.T)


def test_transposed_copy_with_a_cast_takes_the_elementwise_loop():
    a = _np((33, 70), "float32", 4)
    got = vt.zeros(70, 33, dtype=vt.float64)
    got.copy_(vt.from_numpy(a).t())
    np.testing.assert_array_equal(got.numpy(), a.T.astype(np.float64))
