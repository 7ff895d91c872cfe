"""vt.Tensor(...) as torch.Tensor(...), the legacy constructor older model code calls
(`nn.Parameter(torch.Tensor(out, in))` followed by an init): sizes give an uninitialized float32 tensor, data its
float32 values, nothing an empty tensor, a tensor itself (an alias of any dtype); bad data torch's TypeError."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


@pytest.mark.parametrize("args", [(2, 3), (0,), (4,), ()])
def test_sizes_give_uninitialized_float32(args):
    v, t = vt.Tensor(*args), torch.Tensor(*args)
    assert v.shape == tuple(t.shape) and v.dtype == vt.float32 and t.dtype == torch.float32
    assert isinstance(v, vt.Tensor) and not v.requires_grad


@pytest.mark.parametrize("data", [[1, 2.5, -3], [[1, 2], [3, 4]], np.arange(6, dtype=np.int64).reshape(2, 3),
                                  np.ones(3, dtype=np.float64), [True, False]])
def test_data_gives_float32_values(data):
    v, t = vt.Tensor(data), torch.Tensor(data)
    assert v.dtype == vt.float32 and v.shape == tuple(t.shape)
    np.testing.assert_array_equal(v.numpy(), t.numpy())


def test_a_tensor_comes_back_as_an_alias():
    for dtype in ("float32", "int64"):
        v = vt.ones(3, dtype=getattr(vt, dtype))
        t = torch.ones(3, dtype=getattr(torch, dtype))
        va, ta = vt.Tensor(v), torch.Tensor(t)
        assert va.dtype == v.dtype and ta.dtype == t.dtype
        assert va.data_ptr() == v.data_ptr() and ta.data_ptr() == t.data_ptr()


def test_parameter_idiom_matches_torch():
    # The pattern of older public layers: an uninitialized Parameter filled by an init function.
    for lib in (vt, torch):
        lib.manual_seed(0)
    v = vt.nn.Parameter(vt.Tensor(5, 4))
    t = torch.nn.Parameter(torch.Tensor(5, 4))
    for p in (v, t):
        with (vt if p is v else torch).no_grad():
            p.fill_(0.5)
    assert v.requires_grad and isinstance(v, vt.nn.Parameter)
    np.testing.assert_array_equal(v.detach().numpy(), t.detach().numpy())


@pytest.mark.parametrize("bad", ["abc", 2.5])
def test_bad_data_raises_typeerror_as_torch(bad):
    with pytest.raises(TypeError):
        torch.Tensor(bad)
    with pytest.raises(TypeError):
        vt.Tensor(bad)
