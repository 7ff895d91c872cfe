"""F.interpolate with antialias=True (bilinear, bicubic and the antialias-only lanczos mode on 4-D input): down-
and upsampling by size, by scale_factor (recomputed or not) and to the same size, with and without
align_corners, values in float32 and float64 and float64 gradients against torch, a channels_last input, and
torch's errors with its messages."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import vibetensor.torch as vt

VF = vt.nn.functional

CASES = [((9, 13), dict(size=(4, 5))), ((9, 13), dict(size=(20, 7))), ((8, 8), dict(scale_factor=0.5)),
         ((7, 11), dict(scale_factor=(0.3, 1.7))), ((6, 6), dict(size=(6, 6))), ((5, 9), dict(size=(1, 2))),
         ((16, 16), dict(scale_factor=0.37, recompute_scale_factor=True)), ((64, 3), dict(size=(5, 3)))]
# torch 2.13 added the lanczos mode (aten::_upsample_lanczos2d_aa); vt follows 2.13, older torch has nothing to compare
TORCH_HAS_LANCZOS = hasattr(torch._C._nn, "_upsample_lanczos2d_aa")
NEEDS_LANCZOS = pytest.mark.skipif(not TORCH_HAS_LANCZOS, reason="torch 2.13 added mode='lanczos'")
MODES = [("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True),
         pytest.param("lanczos", False, marks=NEEDS_LANCZOS)]


@pytest.mark.parametrize("mode,align_corners", MODES)
@pytest.mark.parametrize("hw,kw", CASES, ids=[f"{h}x{w}-{k}" for (h, w), k in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_antialiased_values_and_gradients(mode, align_corners, hw, kw, dtype):
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 3) + hw).astype(dtype)
    tx, vx = torch.from_numpy(x).requires_grad_(), vt.from_numpy(x.copy()).requires_grad_()
    to = TF.interpolate(tx, mode=mode, align_corners=align_corners, antialias=True, **kw)
    vo = VF.interpolate(vx, mode=mode, align_corners=align_corners, antialias=True, **kw)
    assert tuple(vo.shape) == tuple(to.shape) and vo.dtype == getattr(vt, np.dtype(dtype).name)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(vo.detach().numpy(), to.detach().numpy(), **tol)
    g = r.standard_normal(tuple(to.shape)).astype(dtype)
    (to * torch.from_numpy(g)).sum().backward()
    (vo * vt.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(vx.grad.numpy(), tx.grad.numpy(), **tol)


def test_antialias_differs_from_plain_when_downsampling():
    x = np.random.default_rng(1).standard_normal((1, 1, 16, 16))
    plain = VF.interpolate(vt.from_numpy(x), size=(4, 4), mode="bilinear")
    aa = VF.interpolate(vt.from_numpy(x), size=(4, 4), mode="bilinear", antialias=True)
    assert not np.allclose(plain.numpy(), aa.numpy())
    # downsampling by 4 with the triangle filter: each output averages 8 rows with weights 1, 3, 5, 7, 7, 5, 3, 1
    w = np.array([1, 3, 5, 7, 7, 5, 3, 1]) / 32.0
    ref = np.zeros((4, 16))
    for i in range(4):
        lo, taps = max(4 * i - 2, 0), w[max(2 - 4 * i, 0):][:16 - max(4 * i - 2, 0)]
        ref[i, lo:lo + len(taps)] = taps / taps.sum()
    np.testing.assert_allclose(aa.numpy()[0, 0], ref @ x[0, 0] @ ref.T, rtol=1e-12)


def test_channels_last_input():
    x = np.random.default_rng(2).standard_normal((2, 3, 9, 7)).astype(np.float32)
    tx = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    vx = vt.from_numpy(x).contiguous(memory_format=vt.channels_last)
    to = TF.interpolate(tx, size=(4, 3), mode="bicubic", antialias=True)
    vo = VF.interpolate(vx, size=(4, 3), mode="bicubic", antialias=True)
    np.testing.assert_allclose(vo.numpy(), to.numpy(), rtol=1e-5, atol=1e-6)
    assert vo.is_contiguous(memory_format=vt.channels_last) == to.is_contiguous(memory_format=torch.channels_last)


AA_ONLY = "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires a 4-D tensor as input"
NDIM = ("Input Error: Only 3D, 4D and 5D input Tensors supported (got {}D) for the modes: nearest | linear | "
        "bilinear | bicubic | trilinear | lanczos | area | nearest-exact (got {})")


# torch 2.13's errors and messages, which vt follows: with lanczos, torch 2.13 rewrote the antialias message and the
# mode list. Older torch words them otherwise (and refuses lanczos before checking antialias / align_corners), so vt
# is held to this text on every torch and torch itself is compared only where it has lanczos.
@pytest.mark.parametrize("shape,kw,err", [
    ((1, 2, 5, 6), dict(size=3, mode="nearest", antialias=True), (ValueError, AA_ONLY)),
    ((1, 2, 5, 6), dict(size=3, mode="area", antialias=True), (ValueError, AA_ONLY)),
    ((1, 2, 5), dict(size=3, mode="linear", antialias=True), (ValueError, AA_ONLY)),
    ((1, 2, 5, 6, 4), dict(size=3, mode="trilinear", antialias=True), (ValueError, AA_ONLY)),
    ((1, 2, 5), dict(size=3, mode="lanczos", antialias=True), (ValueError, AA_ONLY)),
    ((1, 2, 5, 6), dict(size=3, mode="lanczos"), (ValueError, "Lanczos mode requires antialias=True")),
    ((1, 2, 5, 6), dict(size=3, mode="lanczos", antialias=True, align_corners=True),
     (ValueError, "Lanczos mode does not support align_corners=True")),
    ((1, 2, 5), dict(size=3, mode="lanczos"), (NotImplementedError, NDIM.format(3, "lanczos"))),
    ((1, 2, 5, 6), dict(size=3, mode="cubic"), (NotImplementedError, NDIM.format(4, "cubic"))),
])
def test_errors_match_torch(shape, kw, err):
    with pytest.raises(Exception) as ve:
        VF.interpolate(vt.zeros(*shape), **kw)
    assert (type(ve.value), str(ve.value)) == err
    if TORCH_HAS_LANCZOS:
        with pytest.raises(Exception) as te:
            TF.interpolate(torch.zeros(shape), **kw)
        assert (type(te.value), str(te.value)) == err
