"""F.pad as one _resample gather (Note [Pads as gathers] in python/vibetensor/torch/nn/functional_pad.py) against
torch on the GPU: every mode over 1-3 padded dims, negative pads that crop, every dtype class, transposed and
channels-last inputs (the result's layout as torch's), empty dims; gradients through the gather's adjoint; the
filled fallback (a non-zero value, more than three dims); torch's errors. Also the plan kernels' 64-bit paths:
inputs whose rows lie past 2^31 elements (Note [Taps in registers] in core/src/ops/cuda/resample.cu).

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_pad.py -q -p no:cacheprovider
"""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV, Failures, dcheck, dpair

pytestmark = CUDA_MARKS
MODES = ("constant", "reflect", "replicate", "circular")
CASES = [  # input shape, pad
    ((2, 3, 7), (2, 3)),
    ((3, 6), (1, 0)),  # unbatched 1-D
    ((2, 3, 5, 6), (1, 2, 3, 0)),
    ((3, 5, 4), (2, 1, 0, 3)),  # unbatched 2-D
    ((1, 2, 3, 4, 5), (1, 2, 0, 2, 1, 1)),
    ((2, 3, 4, 3), (2, 2, 1, 1, 0, 1)),  # unbatched 3-D
    ((2, 3, 7), (-1, 2)),  # a negative pad crops
    ((1, 2, 5), (-2, 3)),  # reflect / replicate: the right side's rows still count from the uncropped input
    ((1, 2, 5), (3, -2)),
    ((2, 3, 5, 6), (-2, 1, 1, -3)),
    ((2, 3, 5, 6), (0, 0, 2, 1)),  # the last dim left as it is
    ((2, 4, 5, 6), (0, 0, 0, 0)),
]


def _pad(pad, mode, value=None):
    return lambda m, a: m.nn.functional.pad(a, pad, mode=mode, value=value)


def _torch_pads(shape, pad, mode):
    try:
        torch.nn.functional.pad(torch.zeros(shape), pad, mode=mode)
        return True
    except (RuntimeError, NotImplementedError):
        return False


def test_modes_dtypes_and_layouts(rng):
    f = Failures()
    for shape, pad in CASES:
        for mode in filter(lambda m: _torch_pads(shape, pad, m), MODES):
            for dtype in ("float32", "float64", "bfloat16", "int64", "uint8"):
                if mode != "constant" and dtype in ("int64", "uint8"):
                    continue  # torch's reflect/replicate kernels are floating only
                for layout in (None, "transpose"):
                    with f.case(f"{shape} {pad} {mode} {dtype} {layout}"):
                        dcheck(_pad(pad, mode), dpair(shape, dtype, rng=rng, noncontig=layout))
            if len(shape) == 4 and mode != "circular":  # a channels-last result, as torch's
                with f.case(f"{shape} {pad} {mode} channels_last"):
                    v, t = dcheck(lambda m, a: m.nn.functional.pad(a.contiguous(memory_format=m.channels_last),
                                                                   pad, mode=mode), dpair(shape, rng=rng))
                    assert list(v.stride()) == list(t.stride())
    f.raise_if_any()


def test_constant_pad_of_bool_and_int_dtypes_torch_has(rng):
    for dtype in ("bool", "int32", "int8", "float16"):
        dcheck(_pad((1, 2, 0, 1), "constant"), dpair((2, 3, 4), dtype, rng=rng))


def test_filled_fallback(rng):
    """A non-zero value, or more than three padded dims, fills the padded shape and copies into its middle."""
    x = dpair((2, 3, 4, 5), rng=rng)
    dcheck(_pad((1, 2, 0, 1), "constant", value=-1.5), x)
    dcheck(_pad((1, 0, 0, 1, 2, 0, 1, 1), "constant"), x)
    dcheck(_pad((1, -1, 0, 1, -1, 0, 1, 1), "constant", value=2.0), x)


@pytest.mark.parametrize("mode", MODES)
def test_gradients_match_torch(rng, mode):
    f = Failures()
    for shape, pad in filter(lambda c: _torch_pads(*c, mode), CASES):
        x = rng.standard_normal(shape)
        xv = vt.from_numpy(x).to(DEV).requires_grad_()
        xt = torch.from_numpy(x).to(DEV).requires_grad_()
        yv, yt = vt.nn.functional.pad(xv, pad, mode=mode), torch.nn.functional.pad(xt, pad, mode=mode)
        g = rng.standard_normal(tuple(yt.shape))
        yv.backward(vt.from_numpy(g).to(DEV))
        yt.backward(torch.from_numpy(g).to(DEV))
        with f.case(f"{shape} {pad}"):
            np.testing.assert_allclose(xv.grad.cpu().numpy(), xt.grad.cpu().numpy(), rtol=1e-12, atol=1e-12)
    f.raise_if_any()


def test_bfloat16_gradient(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    xv = vt.from_numpy(x).to(DEV).to(vt.bfloat16).requires_grad_()
    xt = torch.from_numpy(x).to(DEV).to(torch.bfloat16).requires_grad_()
    for m, t in ((vt, xv), (torch, xt)):
        y = m.nn.functional.pad(t, (2, 1, 1, 2), mode="reflect")
        (y * y).sum().backward()
    np.testing.assert_allclose(xv.grad.float().cpu().numpy(), xt.grad.float().cpu().numpy(), rtol=2e-2, atol=2e-2)


def test_empty_dims(rng):
    dcheck(_pad((1, 1), "constant"), dpair((2, 0, 3), rng=rng))  # no planes
    dcheck(_pad((1, 2), "constant"), dpair((2, 3, 0), rng=rng))  # an empty padded dim: all border
    dcheck(_pad((0, 0, 1, 1), "replicate"), dpair((0, 3, 4), rng=rng))


@pytest.mark.parametrize("mode,shape,pad,exc", [
    ("reflect", (1, 2, 3), (3, 0), RuntimeError),  # pad >= size
    ("reflect", (2, 4), (-4, 0), RuntimeError),  # an empty 1-D result
    ("replicate", (2, 0, 4), (1, 1), RuntimeError),  # an empty non-batch dim
    ("reflect", (1, 2, 3, 4), (0, 0, 0, 3), RuntimeError),
    ("circular", (1, 2, 3), (4, 0), RuntimeError),
    ("constant", (1, 2, 3), (-2, -2), RuntimeError),  # a negative size
    ("reflect", (4,), (1, 1), NotImplementedError),  # 1-D input has no batch/channel dim
    ("replicate", (1, 2, 3, 4, 5, 6), (1, 1), NotImplementedError),
    ("bogus", (1, 2, 3), (1, 1), NotImplementedError),
    ("constant", (1, 2, 3), (1, 1, 1), RuntimeError),  # an odd pad length
    ("constant", (3,), (1, 1, 1, 1), RuntimeError),  # more pairs than dims
])
def test_errors_as_torch(mode, shape, pad, exc):
    with pytest.raises(exc):
        torch.nn.functional.pad(torch.zeros(shape), pad, mode=mode)
    with pytest.raises(exc):
        vt.nn.functional.pad(vt.zeros(*shape, device=DEV), pad, mode=mode)


def test_conv_padding_modes_run_through_the_gather(rng):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    ct = torch.nn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect").to(DEV)
    cv = vt.nn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect").to(DEV)
    cv.load_state_dict({k: vt.from_numpy(v.detach().cpu().numpy()).to(DEV) for k, v in ct.state_dict().items()})
    want = ct(torch.from_numpy(x).to(DEV)).detach().cpu().numpy()
    np.testing.assert_allclose(cv(vt.from_numpy(x).to(DEV)).detach().cpu().numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(DEV == "cpu", reason="the 32/64-bit choice is the CUDA kernels'")
@pytest.mark.parametrize("dtype,mode", [("uint8", "nearest"), ("float16", "bilinear")])
def test_rows_past_2_31_elements(dtype, mode):
    """A view whose second row starts 2^31 elements after its first: the plan kernels take their 64-bit path."""
    far = 1 << 31
    base = vt.zeros(far + 8, dtype=getattr(vt, dtype), device=DEV)
    base[:3] = vt.tensor([1, 2, 3], dtype=base.dtype, device=DEV)
    base[far:far + 3] = vt.tensor([4, 5, 6], dtype=base.dtype, device=DEV)
    x = base.as_strided((1, 1, 2, 3), (0, 0, far, 1))
    got = vt.nn.functional.interpolate(x, size=(3, 5), mode=mode)
    want = torch.nn.functional.interpolate(torch.tensor([[[[1., 2, 3], [4, 5, 6]]]]), size=(3, 5), mode=mode)
    np.testing.assert_allclose(got.float().cpu().numpy(), want.numpy(), rtol=1e-3, atol=1e-3)
    got = vt.nn.functional.pad(x, (1, 1, 1, 0), mode="replicate" if mode == "bilinear" else "constant")
    want = torch.nn.functional.pad(torch.tensor([[[[1., 2, 3], [4, 5, 6]]]]), (1, 1, 1, 0),
                                   mode="replicate" if mode == "bilinear" else "constant")
    np.testing.assert_array_equal(got.float().cpu().numpy(), want.numpy())
