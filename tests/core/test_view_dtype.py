"""Tensor.view(dtype) between element sizes (packed quantized weights read as bytes or as int32 words, fp16 scales
stored in byte buffers): shapes, strides, storage offsets and values equal torch's, the result aliases its base,
and torch's conditions (not 0-dim, unit last stride, divisible last size / offset / strides) are refused the same
way."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

DTYPES = ["uint8", "int8", "int16", "float16", "bfloat16", "int32", "float32", "int64", "float64", "bool"]


def from_bytes(raw, dtype):
    """The same bytes as a torch tensor and a vibetensor tensor of `dtype` (bytes re-read through uint8)."""
    t = torch.from_numpy(raw.copy())
    v = vt.from_numpy(raw.copy())
    return t.view(getattr(torch, dtype)), v.view(getattr(vt, dtype))


def same_layout(v, t):
    assert tuple(v.shape) == tuple(t.shape)
    assert tuple(v.stride()) == tuple(t.stride())
    assert v.storage_offset() == t.storage_offset()
    assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]


def bits(x):
    """The tensor's bytes as an int array of its width (NaN payloads and -0.0 compare exactly)."""
    width = {1: "uint8", 2: "int16", 4: "int32", 8: "int64"}[x.element_size()]
    lib = vt if isinstance(x, vt.Tensor) else torch
    return x.contiguous().view(getattr(lib, width)).cpu().numpy()


@pytest.mark.parametrize("src", DTYPES)
@pytest.mark.parametrize("dst", DTYPES)
def test_view_dtype_matches_torch(src, dst):
    raw = np.random.default_rng(DTYPES.index(src) * 16 + DTYPES.index(dst)).integers(0, 256, (6, 48), np.uint8)
    if "bool" in (src, dst):  # only 0 / 1 bytes are valid bools
        raw &= 1
    t, v = from_bytes(raw, src)
    cases = [lambda x: x, lambda x: x[1:5], lambda x: x[::2], lambda x: x.reshape(3, 2, -1)[:, 1]]
    for case in cases:
        tb, vb = case(t), case(v)
        tv, vv = tb.view(getattr(torch, dst)), vb.view(getattr(vt, dst))
        same_layout(vv, tv)
        np.testing.assert_array_equal(bits(vv), bits(tv))
        # and back again: the original bytes
        back = vv.view(getattr(vt, src))
        same_layout(back, vb)
        np.testing.assert_array_equal(bits(back), bits(vb))


def test_view_dtype_aliases_its_base():
    raw = np.zeros((2, 8), np.uint8)
    v = vt.from_numpy(raw.copy())
    w = v.view(vt.int32)
    assert tuple(w.shape) == (2, 2)
    w[1, 0] = 0x01020304
    assert v[1, :4].tolist() == [4, 3, 2, 1]  # little-endian
    v[0, 4:] = 255
    assert w[0, 1].item() == -1
    h = v[:, 2:6].view(vt.float16)  # an offset view: storage offset 2 bytes = one float16
    assert h.storage_offset() == 1 and tuple(h.stride()) == (4, 1)
    h.fill_(1.0)
    assert v[0].tolist() == [0, 0, 0, 60, 0, 60, 255, 255]


@pytest.mark.parametrize("make,dst,match", [
    (lambda m: m.tensor(1.0), "uint8", r"self\.dim\(\) cannot be 0"),
    (lambda m: m.zeros(3, 4).t(), "uint8", r"self\.stride\(-1\) must be 1"),
    (lambda m: m.zeros(4, 4).t(), "float64", r"self\.stride\(-1\) must be 1"),
    (lambda m: m.zeros(3, 6, dtype=m.uint8)[:, :3], "int16", r"self\.size\(-1\) must be divisible by 2"),
    (lambda m: m.zeros(12, dtype=m.uint8)[1:9], "int32", r"self\.storage_offset\(\) must be divisible by 4"),
    (lambda m: m.zeros(3, 6, dtype=m.uint8)[:, :4], "int16", None),  # stride 6 divides by 2: allowed
    (lambda m: m.zeros(3, 5, dtype=m.int16)[:, :4], "int32", r"self\.stride\(0\) must be divisible by 2"),
    (lambda m: m.zeros(3, 1), "float64", r"self\.size\(-1\) must be divisible by 2"),
])
def test_view_dtype_refuses_what_torch_refuses(make, dst, match):
    if match is None:
        same_layout(make(vt).view(getattr(vt, dst)), make(torch).view(getattr(torch, dst)))
        return
    with pytest.raises(RuntimeError, match=match):
        make(torch).view(getattr(torch, dst))
    with pytest.raises(RuntimeError, match=match):
        make(vt).view(getattr(vt, dst))
