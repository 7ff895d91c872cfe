"""Tensor.to(dtype), to(own device), cpu() and tolist() skip the general argument parser (python/vibetensor/torch/
_tensor.py): they must return what torch returns - the very tensor where nothing changes, a converted copy
otherwise - and tolist() torch's Python values for every dtype and shape."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt
from helpers import ALL_DTYPES

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_to_dtype_and_device_alias_or_convert_as_torch(device, dtype):
    x = vt.arange(6, device=device).reshape(2, 3).to(getattr(vt, dtype))
    t = torch.arange(6).reshape(2, 3).to(getattr(torch, dtype))
    assert x.to(x.dtype) is x and t.to(t.dtype) is t
    assert x.to(x.device) is x and x.to(str(x.device)) is x
    assert (x.cpu() is x) == (device == "cpu")
    for other in ("float64", "int32", "bool"):
        y, u = x.to(getattr(vt, other)), t.to(getattr(torch, other))
        assert (y is x) == (u is t) and y.dtype == getattr(vt, other)
        np.testing.assert_array_equal(y.cpu().to(vt.float64).numpy(), u.double().numpy())
    assert x.to("cpu", copy=True) is not x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 2)], ids=str)
def test_tolist_gives_torchs_python_values(device, dtype, shape, rng):
    a = np.asarray(rng.standard_normal(shape) * 3)
    x = vt.from_numpy(a).to(getattr(vt, dtype)).to(device)
    t = torch.from_numpy(a).to(getattr(torch, dtype))
    got, want = x.tolist(), t.tolist()
    assert got == want
    assert type(got) is type(want)  # a Python number for a 0-dim tensor, else a list
    x_view = x.t() if len(shape) == 2 else x
    assert x_view.tolist() == (t.t() if len(shape) == 2 else t).tolist()
