"""The window factories (hann_window, hamming_window, blackman_window, bartlett_window, kaiser_window) against
torch: lengths 0, 1, 2, odd and even, periodic and symmetric, float32 and float64, the shape parameters given
positionally and by keyword, the dtype/device/requires_grad keywords, and torch's errors. The cosine windows are
computed in torch's order in the output dtype (equal but where the two libraries' cos differ in the last bit);
the Kaiser window is rounded once from float64, closer to the exact values than torch's float32 evaluation."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

COSINE = ["hann_window", "hamming_window", "blackman_window", "bartlett_window"]
LENGTHS = [0, 1, 2, 3, 8, 25, 400, 512]


@pytest.mark.parametrize("name", COSINE + ["kaiser_window"])
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_match_torch(name, periodic, dtype):
    for n in LENGTHS:
        v = getattr(vt, name)(n, periodic, dtype=getattr(vt, dtype))
        t = getattr(torch, name)(n, periodic, dtype=getattr(torch, dtype))
        assert v.dtype == getattr(vt, dtype) and tuple(v.shape) == tuple(t.shape) == (n,)
        assert v.is_contiguous() and not v.requires_grad
        eps = np.finfo(dtype).eps
        atol = (2 * eps if name != "kaiser_window" or dtype == "float64" else 2e-6) * (1 + 4 * (dtype == "float64"))
        np.testing.assert_allclose(v.numpy(), t.numpy(), rtol=0, atol=atol)
    if name == "kaiser_window":  # the exact values, in float64
        k = np.arange(9.0)
        exact = np.i0(12.0 * np.sqrt(1 - ((k - 4) / 4) ** 2)) / np.i0(12.0)
        np.testing.assert_allclose(vt.kaiser_window(9, False, dtype=vt.float64).numpy(), exact, rtol=1e-14)


def test_default_dtype_shape_parameters_and_keywords():
    assert vt.hann_window(6).dtype == vt.float32
    np.testing.assert_array_equal(vt.hann_window(4).numpy(), [0.0, 0.5, 1.0, 0.5])  # periodic by default
    np.testing.assert_array_equal(vt.bartlett_window(5, periodic=False).numpy(), [0.0, 0.5, 1.0, 0.5, 0.0])
    for args, kw in (((6, False, 0.5), {}), ((6, True, 0.54, 0.46), {}), ((7, False), dict(alpha=0.6, beta=0.4))):
        np.testing.assert_allclose(vt.hamming_window(*args, dtype=vt.float64, **kw).numpy(),
                                   torch.hamming_window(*args, dtype=torch.float64, **kw).numpy(), rtol=0,
                                   atol=1e-15)
    for args, kw in (((8, True, 5.0), {}), ((8,), dict(periodic=False, beta=3.0))):
        np.testing.assert_allclose(vt.kaiser_window(*args, dtype=vt.float64, **kw).numpy(),
                                   torch.kaiser_window(*args, dtype=torch.float64, **kw).numpy(), rtol=1e-12)
    w = vt.hann_window(4, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    (w * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0] * 4)
    assert vt.blackman_window(5, device="cpu", layout=vt.strided).device.type == "cpu"
    x = vt.from_numpy(np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32))
    framed = x * vt.hann_window(16)  # broadcasting over frames, as a frontend windows them
    np.testing.assert_allclose(framed.numpy(), x.numpy() * torch.hann_window(16).numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", COSINE + ["kaiser_window"])
def test_errors_match_torch(name):
    for args, kw, exc in (((-1,), {}, RuntimeError), ((4,), dict(dtype="int64"), RuntimeError),
                          ((4.0,), {}, TypeError)):
        for lib in (torch, vt):
            kw2 = {k: getattr(lib, v) for k, v in kw.items()}
            with pytest.raises(exc) as e:
                getattr(lib, name)(*args, **kw2)
            msgs = str(e.value).split(",")[0] if exc is RuntimeError else str(e.value)
            if lib is torch:
                expect = msgs
        assert msgs == expect or msgs.split("(")[0] == expect.split("(")[0]
