"""flip and roll (vt::flip / vt::roll: one gather each, core/src/ops/reorder.cpp and cuda/reorder.cu) against torch
on random inputs: every dtype, non-contiguous inputs (transposed, sliced with steps, expanded with stride 0, at an
offset), several and negative dims, shifts past the size and negative, repeated roll dims, roll of the flattened
tensor, empty and 0-dim tensors; gradients (FlipBackward0, RollBackward0); torch's errors. On the CPU always, on
CUDA where there is a GPU (against torch on the CPU)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]

VIEWS = {
    "dense": lambda x: x,
    "transposed": lambda x: x.transpose(0, 2),
    "stepped": lambda x: x[:, ::2, 1:],
    "expanded": lambda x: x[:, :1].expand(-1, 4, -1),
    "offset": lambda x: x.reshape(-1)[3:].reshape(-1)[:60].reshape(3, 4, 5),
}
FLIPS = [(0,), (1,), (-1,), (0, 2), (2, 0, 1), ()]
ROLLS = [((1,), (0,)), ((-2,), (2,)), ((7,), (-1,)), ((1, 2), (0, 2)), ((3, -1), (1, 1)), ((5,), None),
         ((-13,), None), ((0,), (1,))]


def pair(dtype, device, seed=0, shape=(3, 5, 6)):
    a = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 4)
    t = torch.from_numpy(a).to(getattr(torch, dtype))
    return vt.from_numpy(a).to(getattr(vt, dtype)).to(device), t


def same(v, t):
    np.testing.assert_array_equal(v.cpu().to(vt.float64).numpy(), t.to(torch.float64).numpy())
    assert v.shape == tuple(t.shape) and v.dtype == getattr(vt, str(t.dtype).split(".")[1])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_and_roll_match_torch(device, dtype):
    xv, xt = pair(dtype, device)
    for name, view in VIEWS.items():
        v, t = view(xv), view(xt)
        for dims in FLIPS:
            same(v.flip(dims), t.flip(dims))
        for shifts, dims in ROLLS:
            same(vt.roll(v, shifts, dims), torch.roll(t, shifts, dims))
        same(vt.fliplr(v), torch.fliplr(t))
        same(vt.flipud(v), torch.flipud(t))


@pytest.mark.parametrize("device", DEVICES)
def test_edge_shapes(device):
    for shape in [(0,), (0, 3), (3, 0), (1,), (), (1, 1, 7)]:
        xv, xt = pair("float32", device, 1, shape)
        dims = tuple(range(len(shape))) or (0,)
        same(vt.flip(xv, dims), torch.flip(xt, dims))
        same(vt.roll(xv, 3), torch.roll(xt, 3))
        if shape:
            same(vt.roll(xv, [2] * len(dims), dims), torch.roll(xt, [2] * len(dims), dims))
        else:  # a 0-dim tensor rolls only without dims
            for m, x in ((torch, xt), (vt, xv)):
                with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
                    m.roll(x, 1, 0)
    xv, xt = pair("float32", device, 2, (64, 257))  # many rows, an odd row length (the CPU kernel's rows)
    same(xv.flip(1), xt.flip(1))
    same(xv.t().roll(100, 0), xt.t().roll(100, 0))
    big_v, big_t = pair("float16", device, 3, (3, 70001))  # several blocks of the CUDA kernel
    same(big_v.roll(-5, 1).flip(0), big_t.roll(-5, 1).flip(0))


@pytest.mark.parametrize("device", DEVICES)
def test_gradients(device):
    a = np.random.default_rng(4).standard_normal((4, 5))
    g = np.random.default_rng(5).standard_normal((4, 5))
    for fv, ft in [(lambda x: x.flip(0, 1), lambda x: x.flip(0, 1)),
                   (lambda x: vt.roll(x, (2, -1), (0, 1)), lambda x: torch.roll(x, (2, -1), (0, 1))),
                   (lambda x: vt.roll(x.t(), 7), lambda x: torch.roll(x.t(), 7))]:
        xv = vt.from_numpy(a).to(device).requires_grad_(True)
        xt = torch.from_numpy(a).requires_grad_(True)
        yv, yt = fv(xv), ft(xt)
        yv.backward(vt.from_numpy(g).to(device).reshape(yv.shape))
        yt.backward(torch.from_numpy(g).reshape(yt.shape))
        np.testing.assert_array_equal(xv.grad.cpu().numpy(), xt.grad.numpy())
    assert vt.from_numpy(a).requires_grad_(True).flip(0).grad_fn.name() == "FlipBackward0"
    assert vt.roll(vt.from_numpy(a).requires_grad_(True), 1, 0).grad_fn.name() == "RollBackward0"


def test_errors_match_torch():
    x, t = vt.ones(2, 3), torch.ones(2, 3)
    cases = [lambda m, a: m.flip(a, (0, 0)), lambda m, a: m.flip(a, (2,)), lambda m, a: m.roll(a, (1, 2)),
             lambda m, a: m.roll(a, 1, (0, 1)), lambda m, a: m.roll(a, [], []), lambda m, a: m.roll(a, 1, 5),
             lambda m, a: m.flip(a, (-3,))]
    for i, fn in enumerate(cases):
        with pytest.raises(Exception) as te:
            fn(torch, t)
        with pytest.raises(type(te.value)) as ve:
            fn(vt, x)
        assert str(te.value).split("(")[0] in str(ve.value), (i, str(te.value), str(ve.value))
