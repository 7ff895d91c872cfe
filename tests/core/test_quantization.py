"""vt.fake_quantize_per_tensor_affine, vt.fake_quantize_per_channel_affine and vt._int_mm against torch's: values
bit for bit (float32, float64, float16, bfloat16 inputs; python-number and tensor qparams; int32 and float zero
points, whole and fractional; int8 / uint8 products), the straight-through gradient masked to the unclamped
elements, non-contiguous inputs, and torch's refusals for bad arguments."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

DTYPES = ["float32", "float64", "float16", "bfloat16"]


def inputs(seed, shape=(5, 7), dtype="float32", transpose=False):
    x = (np.random.default_rng(seed).standard_normal(shape) * 3).astype(np.float32)
    x.flat[:4] = [0.15, 0.25, -0.35, 12.7]  # ties (x / scale at .5) and a clamped value
    t, v = torch.from_numpy(x).to(getattr(torch, dtype)), vt.from_numpy(x).to(getattr(vt, dtype))
    return (t.t(), v.t()) if transpose else (t, v)


def same_bits(v, t):
    assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1] and tuple(v.shape) == tuple(t.shape)
    np.testing.assert_array_equal(v.detach().float().numpy(), t.detach().float().numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale,zero_point,qmin,qmax", [(0.1, 0, -128, 127), (0.05, 3, -8, 7), (0.3, 10, 0, 15),
                                                        (1 / 3, 0, -1, 1)])
@pytest.mark.parametrize("transpose", [False, True])
def test_per_tensor_matches_torch(dtype, scale, zero_point, qmin, qmax, transpose):
    t, v = inputs(1, dtype=dtype, transpose=transpose)
    same_bits(vt.fake_quantize_per_tensor_affine(v, scale, zero_point, qmin, qmax),
              torch.fake_quantize_per_tensor_affine(t, scale, zero_point, qmin, qmax))
    ts, tz = torch.tensor(scale), torch.tensor(zero_point, dtype=torch.int32)
    vs, vz = vt.tensor(scale), vt.tensor(zero_point, dtype=vt.int32)
    same_bits(vt.fake_quantize_per_tensor_affine(v, vs, vz, qmin, qmax),
              torch.fake_quantize_per_tensor_affine(t, ts, tz, qmin, qmax))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("zp_kind", ["int32", "float_whole", "float_fraction"])
def test_per_channel_matches_torch(dtype, axis, zp_kind):
    t, v = inputs(2, shape=(4, 5, 6), dtype=dtype)
    r = np.random.default_rng(axis)
    n = t.shape[axis]
    scale = r.uniform(0.05, 0.5, n).astype(np.float32)
    zp = {"int32": r.integers(-3, 4, n).astype(np.int32), "float_whole": r.integers(-3, 4, n).astype(np.float32),
          "float_fraction": r.uniform(-3, 3, n).astype(np.float32)}[zp_kind]
    same_bits(vt.fake_quantize_per_channel_affine(v, vt.from_numpy(scale), vt.from_numpy(zp), axis, -8, 7),
              torch.fake_quantize_per_channel_affine(t, torch.from_numpy(scale), torch.from_numpy(zp), axis, -8, 7))


@pytest.mark.parametrize("per_channel", [False, True])
def test_straight_through_gradient_is_masked_to_the_unclamped_range(per_channel):
    t, v = inputs(3)
    g = np.linspace(-1, 1, 35, dtype=np.float32).reshape(5, 7)
    grads = []
    for lib, x in ((torch, t), (vt, v)):
        x = x.clone().requires_grad_()
        if per_channel:
            y = lib.fake_quantize_per_channel_affine(x, lib.full((5,), 0.2), lib.zeros(5, dtype=lib.int32), 0, -8, 7)
        else:
            y = lib.fake_quantize_per_tensor_affine(x, 0.2, 0, -8, 7)
        assert y.requires_grad
        (y * lib.from_numpy(g)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(grads[1], grads[0])
    q = np.round(t.numpy() * np.float32(5.0))
    np.testing.assert_array_equal(grads[1], np.where((q >= -8) & (q <= 7), g, 0))
    assert 0 < (grads[1] == 0).sum() < 35


@pytest.mark.parametrize("call", [
    lambda m, x: m.fake_quantize_per_tensor_affine(x, 0.1, 0, 8, 7),
    lambda m, x: m.fake_quantize_per_tensor_affine(x, 0.1, 9, -8, 7),
    lambda m, x: m.fake_quantize_per_tensor_affine(x, m.tensor([0.1, 0.2]), m.tensor([0, 0], dtype=m.int32), -8, 7),
    lambda m, x: m.fake_quantize_per_channel_affine(x, m.ones(2), m.zeros(3, dtype=m.int32), 0, -8, 7),
    lambda m, x: m.fake_quantize_per_channel_affine(x, m.ones(3), m.zeros(3, dtype=m.int32), 0, -8, 7),
    lambda m, x: m.fake_quantize_per_channel_affine(x, m.ones(2), m.tensor([0, 9], dtype=m.int32), 0, -8, 7),
    lambda m, x: m.fake_quantize_per_channel_affine(x, m.ones(2, 1), m.zeros(2, 1, dtype=m.int32), 0, -8, 7),
    lambda m, x: m.fake_quantize_per_channel_affine(x, m.ones(2, dtype=m.float64), m.zeros(2, dtype=m.int32), 0, -8,
                                                    7),
    lambda m, x: m.fake_quantize_per_channel_affine(x, m.ones(2), m.zeros(2, dtype=m.int64), 0, -8, 7),
    lambda m, x: m.fake_quantize_per_channel_affine(x, m.ones(3), m.zeros(3, dtype=m.int32), -1, -8, 7),
])
def test_bad_arguments_are_refused_as_torch_refuses_them(call):
    with pytest.raises(RuntimeError) as te:
        call(torch, torch.ones(2, 3))
    with pytest.raises(RuntimeError) as ve:
        call(vt, vt.ones(2, 3))
    # the gist of torch's message: its first words
    assert str(ve.value).split()[:3] == " ".join(str(te.value).split()).split()[:3]


def test_integer_input_is_not_implemented():
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        torch.fake_quantize_per_tensor_affine(torch.ones(2, dtype=torch.int64), 0.1, 0, -8, 7)
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'"):
        vt.fake_quantize_per_tensor_affine(vt.ones(2, dtype=vt.int64), 0.1, 0, -8, 7)


def _torch_int_mm_takes_uint8():
    try:
        torch._int_mm(torch.ones(1, 1, dtype=torch.uint8), torch.ones(1, 1, dtype=torch.int8))
    except RuntimeError:
        return False
    return True


# torch 2.13's CPU _int_mm took a uint8 left operand (vt follows it); torch 2.11 refused it as not int8
TORCH_INT_MM_UINT8 = _torch_int_mm_takes_uint8()


@pytest.mark.parametrize("lhs", ["int8", "uint8"])
@pytest.mark.parametrize("shape", [(17, 32, 8), (3, 5, 2), (1, 1, 1)])
def test_int_mm_matches_torch(lhs, shape):
    m, k, n = shape
    r = np.random.default_rng(m * k * n)
    lo = -128 if lhs == "int8" else 0
    a, b = r.integers(lo, lo + 256, (m, k)), r.integers(-128, 128, (k, n))
    ta, tb = torch.from_numpy(a).to(getattr(torch, lhs)), torch.from_numpy(b).to(torch.int8)
    va, vb = vt.from_numpy(a).to(getattr(vt, lhs)), vt.from_numpy(b).to(vt.int8)
    out = vt._int_mm(va, vb)
    assert out.dtype == vt.int32
    if lhs == "int8" or TORCH_INT_MM_UINT8:
        np.testing.assert_array_equal(out.numpy(), torch._int_mm(ta, tb).numpy())
    np.testing.assert_array_equal(out.numpy(), a @ b)
    np.testing.assert_array_equal(vt._int_mm(va.t().contiguous().t(), vb[:, :]).numpy(), a @ b)


@pytest.mark.parametrize("a,b", [((3, 4), (4, 2, "uint8")), ((4,), (4, 2)), ((3, 4), (5, 2)), ((3, 4), (4, 2, "int32")),
                                 ((2, 3, 4), (4, 2)), ((3, 4, "float32"), (4, 2))])
def test_int_mm_refuses_what_torch_refuses(a, b):
    def make(m, spec):
        shape = tuple(d for d in spec if isinstance(d, int))
        dtype = spec[-1] if isinstance(spec[-1], str) else "int8"
        return m.ones(shape, dtype=getattr(m, dtype))
    with pytest.raises(RuntimeError) as te:
        torch._int_mm(make(torch, a), make(torch, b))
    with pytest.raises(RuntimeError) as ve:
        vt._int_mm(make(vt, a), make(vt, b))
    want = str(te.value)
    if not TORCH_INT_MM_UINT8:  # torch 2.13 reworded the left operand's check when it took uint8 there
        want = want.replace("Expected self dtype to be of type int8", "Expected self dtype to be int8 or uint8")
    assert str(ve.value) == want
