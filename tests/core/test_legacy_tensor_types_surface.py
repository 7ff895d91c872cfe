"""vt.FloatTensor and the other legacy CPU tensor types against torch's: construction from sizes, data, arrays and
tensors (an alias), the errors, isinstance (Parameters included, other dtypes not), Tensor.type(vt.LongTensor),
and the idioms older model code writes with them (FCOS's Scale: nn.Parameter(torch.FloatTensor([1.0])))."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

NAMES = ["DoubleTensor", "FloatTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor", "CharTensor", "ShortTensor",
         "IntTensor", "LongTensor", "BoolTensor"]


def tname(dtype):
    return str(dtype).split(".")[-1]


@pytest.mark.parametrize("name", NAMES)
def test_each_type_builds_its_dtype_from_data_and_sizes(name):
    T, V = getattr(torch, name), getattr(vt, name)
    assert tname(V.dtype) == tname(T.dtype) and V.__name__ == name and type(V).__name__ == "tensortype"
    assert not V.is_cuda and not issubclass(V, vt.Tensor) and not vt.is_tensor(V)
    data = [[1, 0], [3, 2]]
    t, v = T(data), V(data)
    assert tname(v.dtype) == tname(t.dtype) and v.tolist() == t.tolist()
    for sizes in [(), (3,), (2, 3), (0,)]:
        t, v = T(*sizes), V(*sizes)
        assert tuple(v.shape) == tuple(t.shape) and tname(v.dtype) == tname(t.dtype)
    arr = np.array([1, 0, 2], dtype=np.int64)
    assert V(arr).tolist() == T(arr).tolist()
    assert isinstance(V(2), V) and isinstance(V([1]), V)


def test_isinstance_reads_the_dtype_and_device():
    for L in (torch, vt):
        x = L.ones(2)
        assert isinstance(x, L.FloatTensor) and not isinstance(x, L.DoubleTensor)
        assert isinstance(L.ones(2, dtype=L.int64), L.LongTensor) and not isinstance(x, L.LongTensor)
        assert isinstance(L.nn.Parameter(L.ones(1)), L.FloatTensor)
        assert isinstance(x, L.Tensor) and not isinstance(3.0, L.FloatTensor) and not isinstance([1.0], L.FloatTensor)


def test_a_tensor_of_the_same_type_is_aliased_another_dtype_is_a_type_error():
    for L in (torch, vt):
        x = L.ones(2, 3)
        y = L.FloatTensor(x)
        assert y is not x and tuple(y.shape) == (2, 3) and y.data_ptr() == x.data_ptr()
        y[0, 0] = 5.0
        assert x[0, 0].item() == 5.0
        with pytest.raises(TypeError):
            L.FloatTensor(L.ones(2, dtype=L.int64))


@pytest.mark.parametrize("bad,exc,match", [
    (lambda L: L.FloatTensor(2.5), TypeError, "data must be a sequence"),
    (lambda L: L.FloatTensor("x"), TypeError, "invalid data type 'str'"),
    (lambda L: L.FloatTensor([1, 2], dtype=L.float64), TypeError, "new\\(\\) received an invalid combination"),
    (lambda L: L.FloatTensor(2, 3, device="cuda"), RuntimeError,
     "legacy constructor expects device type: cpu but device type: cuda was passed"),
])
def test_the_errors_match_torchs(bad, exc, match):
    for L in (torch, vt):
        with pytest.raises(exc, match=match):
            bad(L)


def test_values_truncate_like_torch_and_device_cpu_is_accepted():
    for L in (torch, vt):
        assert L.LongTensor([1.5, -2.7]).tolist() == [1, -2]
        assert L.BoolTensor([1, 0, 2]).tolist() == [True, False, True]
        assert L.ByteTensor([1, 255]).tolist() == [1, 255]
        assert tuple(L.FloatTensor(2, 2, device="cpu").shape) == (2, 2)
        assert L.FloatTensor([1.0], device=L.device("cpu")).tolist() == [1.0]


def test_tensor_type_converts_to_a_legacy_type():
    for L in (torch, vt):
        x = L.tensor([1.7, -2.2])
        y = x.type(L.LongTensor)
        assert isinstance(y, L.LongTensor) and y.tolist() == [1, -2]
        assert x.type(L.DoubleTensor).type() == "torch.DoubleTensor"
        assert x.type(L.FloatTensor).type() == "torch.FloatTensor"


def test_a_size_tuple_builds_a_tensor_of_that_size():
    """torch.FloatTensor(x.size()).uniform_() (vibetensor's sizes are tuples: any tuple of ints is a size here)."""
    t = torch.FloatTensor(torch.ones(2, 3).size()).uniform_()
    v = vt.FloatTensor(vt.ones(2, 3).size()).uniform_()
    assert tuple(v.shape) == tuple(t.shape) == (2, 3) and ((v >= 0) & (v < 1)).all().item()


def test_fcos_scale_parameter_trains_like_torchs():
    def scale(L):
        class Scale(L.nn.Module):
            def __init__(self, init_value=1.0):
                super().__init__()
                self.scale = L.nn.Parameter(L.FloatTensor([init_value]))

            def forward(self, x):
                return x * self.scale
        return Scale(0.5)

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    ts, vs = scale(torch), scale(vt)
    tl, vl = torch.exp(ts(torch.from_numpy(x))).sum(), vt.exp(vs(vt.from_numpy(x))).sum()
    tl.backward()
    vl.backward()
    assert vl.item() == pytest.approx(tl.item(), rel=1e-6)
    assert vs.scale.grad.tolist() == pytest.approx(ts.scale.grad.tolist(), rel=1e-5)
    assert [n for n, _ in vs.named_parameters()] == ["scale"] and isinstance(vs.scale, vt.FloatTensor)
