"""softmax, log_softmax and softmin (functional and modules) without dim=: torch's legacy dim (0 for 0-, 1- and 3-d
inputs, 1 otherwise) and its deprecation warning. F.softmax and F.log_softmax took the last dim, a different
answer for 3- and 4-d inputs."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def _forms(m):
    F = m.nn.functional
    return {"F.softmax": F.softmax, "F.log_softmax": F.log_softmax, "F.softmin": F.softmin,
            "nn.Softmax": lambda x: m.nn.Softmax()(x), "nn.LogSoftmax": lambda x: m.nn.LogSoftmax()(x),
            "nn.Softmin": lambda x: m.nn.Softmin()(x)}


@pytest.mark.parametrize("form", list(_forms(torch)))
@pytest.mark.parametrize("shape", [(), (5,), (3, 5), (2, 3, 5), (2, 3, 4, 5)], ids=str)
def test_implicit_dim_matches_torch(shape, form, rng):
    data = rng.standard_normal(shape).astype(np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        want = _forms(torch)[form](torch.from_numpy(data.copy()))
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        got = _forms(vt)[form](vt.from_numpy(data.copy()))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_dtype_is_the_fourth_argument_as_in_torch():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for name in ("softmax", "log_softmax"):
        want = getattr(torch.nn.functional, name)(torch.from_numpy(x), 1, 3, torch.float64)
        got = getattr(vt.nn.functional, name)(vt.from_numpy(x), 1, 3, vt.float64)
        assert got.dtype == vt.float64
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
