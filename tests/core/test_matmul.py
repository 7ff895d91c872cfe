"""mm / bmm / matmul / linear on the CPU against torch: shapes of every matmul case, broadcast batches,
non-contiguous operands, empty and odd sizes, dtypes."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def pair(shape, dtype, rng):
    a = (rng.standard_normal(shape) * 3).astype(np.float64)
    if dtype in ("int32", "int64", "int16", "int8", "uint8"):
        a = np.round(a).astype(np.int64) % 5
    tt = torch.from_numpy(np.array(a)).to(getattr(torch, dtype))
    vv = vt.from_numpy(np.array(a)).to(getattr(vt, dtype))
    return vv, tt


def close(v, t, dtype):
    tol = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 1e-4, "float64": 1e-10}.get(dtype, 0)
    vn = v.to(vt.float64).numpy() if dtype in ("float16", "bfloat16") else v.numpy()
    tn = t.to(torch.float64).numpy() if dtype in ("float16", "bfloat16") else t.numpy()
    assert vn.shape == tn.shape, (vn.shape, tn.shape)
    np.testing.assert_allclose(vn, tn, rtol=tol, atol=tol * max(1.0, float(np.abs(tn).max(initial=0))))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64", "int32"])
@pytest.mark.parametrize("sa, sb", [
    ((5,), (5,)), ((3, 5), (5,)), ((5,), (5, 4)), ((3, 5), (5, 4)), ((2, 3, 5), (5, 4)), ((3, 5), (2, 5, 4)),
    ((2, 1, 3, 5), (4, 5, 7)), ((7,), (3, 7, 2)), ((2, 3, 5), (5,)), ((0, 5), (5, 4)), ((3, 0), (0, 4)),
    ((65, 257), (257, 33)),
])
def test_matmul_matches_torch(sa, sb, dtype, rng):
    a, ta = pair(sa, dtype, rng)
    b, tb = pair(sb, dtype, rng)
    close(vt.matmul(a, b), torch.matmul(ta, tb), dtype)
    close(a @ b, ta @ tb, dtype)


def test_mm_bmm_noncontiguous(rng):
    a, ta = pair((6, 9), "float32", rng)
    b, tb = pair((4, 9), "float32", rng)
    close(vt.mm(a, b.t()), torch.mm(ta, tb.t()), "float32")
    c, tc = pair((3, 9, 6), "float32", rng)
    d, td = pair((3, 4, 9), "float32", rng)
    close(vt.bmm(c.transpose(1, 2), d.transpose(1, 2)), torch.bmm(tc.transpose(1, 2), td.transpose(1, 2)), "float32")
    close(c.transpose(1, 2)[:, ::2] @ d.transpose(1, 2), tc.transpose(1, 2)[:, ::2] @ td.transpose(1, 2), "float32")


def test_linear(rng):
    x, tx = pair((8, 16), "float32", rng)
    w, tw = pair((4, 16), "float32", rng)
    b, tb = pair((4,), "float32", rng)
    close(vt.nn.functional.linear(x, w, b), torch.nn.functional.linear(tx, tw, tb), "float32")
    close(vt.nn.functional.linear(x, w), torch.nn.functional.linear(tx, tw), "float32")


def test_large_parallel(rng):
    a, ta = pair((300, 200), "float32", rng)
    b, tb = pair((200, 150), "float32", rng)
    close(a @ b, ta @ tb, "float32")


@pytest.mark.parametrize("fn, args, exc, msg", [
    ("mm", ((2, 3), (4, 5)), RuntimeError, "cannot be multiplied"),
    ("matmul", ((2, 3), (4, 5)), RuntimeError, "cannot be multiplied"),
    ("matmul", ((3,), (4,)), RuntimeError, "same number of elements"),
    ("bmm", ((2, 3, 4), (3, 4, 5)), RuntimeError, "cannot be multiplied"),
    ("mm", ((2, 3, 4), (4, 5)), RuntimeError, "2D tensor"),
])
def test_shape_errors(fn, args, exc, msg):
    a, b = (vt.ones(*s) for s in args)
    with pytest.raises(exc, match=msg):
        getattr(vt, fn)(a, b)


def test_dtype_mismatch_and_bool():
    with pytest.raises(RuntimeError, match="same dtype"):
        vt.mm(vt.ones(2, 2), vt.ones(2, 2, dtype=vt.float64))
    with pytest.raises(NotImplementedError, match="bool"):
        vt.mm(vt.ones(2, 2, dtype=vt.bool), vt.ones(2, 2, dtype=vt.bool))
