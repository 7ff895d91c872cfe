"""torch's legacy CPU tensor types (vt.LongTensor, vt.FloatTensor, ...) against torch: construction from data
(cast as torch casts), from sizes and from nothing, what they refuse, isinstance by dtype and device,
Tensor.type(cls) and Module.type(cls), and their dtype / repr."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor", "ShortTensor",
         "CharTensor", "ByteTensor", "BoolTensor"]


def same(v, t):
    assert str(v.dtype).rsplit(".", 1)[-1] == str(t.dtype).rsplit(".", 1)[-1]
    assert tuple(v.shape) == tuple(t.shape)


@pytest.mark.parametrize("name", NAMES)
def test_from_data_sizes_and_nothing(name):
    tcls, vcls = getattr(torch, name), getattr(vt, name)
    data = [[1, 0, 3], [2, 1, 0]]
    same(vcls(data), tcls(data))
    assert vcls(data).tolist() == tcls(data).tolist()
    arr = np.array([1, 0, 2])
    assert vcls(arr).tolist() == tcls(arr).tolist()
    same(vcls(2, 3), tcls(2, 3))
    same(vcls(), tcls())
    assert vcls.dtype == getattr(vt, str(tcls.dtype).rsplit(".", 1)[-1]) and vcls.is_cuda is tcls.is_cuda is False
    assert repr(vcls) == repr(tcls) and vcls.__name__ == tcls.__name__


def test_values_are_cast_as_torch_casts_them():
    for name, data in (("LongTensor", [1.7, -1.5, 2.2]), ("BoolTensor", [1, 0, 2]), ("FloatTensor", [1, 2]),
                       ("IntTensor", [True, False]), ("HalfTensor", [0.1, 70000.0])):
        v, t = getattr(vt, name)(data), getattr(torch, name)(data)
        same(v, t)
        assert v.tolist() == t.tolist(), name
    assert vt.LongTensor((2, 3)).tolist() == torch.LongTensor((2, 3)).tolist() == [2, 3]  # a tuple is data


@pytest.mark.parametrize("arg, error", [(2.5, TypeError), ("a", TypeError), ([[1, 2], [3]], ValueError)])
def test_what_torch_refuses(arg, error):
    with pytest.raises(error):
        torch.LongTensor(arg)
    with pytest.raises(error):
        vt.LongTensor(arg)


def test_a_tensor_passes_only_in_its_own_dtype():
    x = vt.tensor([1, 2])
    assert vt.LongTensor(x) is x
    with pytest.raises(TypeError):
        torch.LongTensor(torch.ones(2))
    with pytest.raises(TypeError):
        vt.LongTensor(vt.ones(2))


@pytest.mark.parametrize("name", NAMES)
def test_isinstance_asks_for_the_dtype(name):
    for dtype in ("float32", "int64", "bool", "float16"):
        t, v = torch.zeros(2, dtype=getattr(torch, dtype)), vt.zeros(2, dtype=getattr(vt, dtype))
        assert isinstance(v, getattr(vt, name)) == isinstance(t, getattr(torch, name)), (name, dtype)
    assert not isinstance([1], getattr(vt, name)) and not isinstance(np.zeros(2), getattr(vt, name))
    assert isinstance(vt.nn.Parameter(vt.zeros(2)), vt.FloatTensor)


def test_tensor_and_module_type_take_the_classes():
    for name in ("LongTensor", "DoubleTensor", "BoolTensor"):
        same(vt.ones(2).type(getattr(vt, name)), torch.ones(2).type(getattr(torch, name)))
    vm, tm = vt.nn.Linear(2, 3).type(vt.DoubleTensor), torch.nn.Linear(2, 3).type(torch.DoubleTensor)
    same(vm.weight, tm.weight)
    assert vt.ones(2).type() == torch.ones(2).type() == "torch.FloatTensor"


def test_a_collate_function_as_older_code_writes_it():
    batch = [[3, 4, 5], [6, 7, 1]]
    v = vt.LongTensor(batch).masked_fill(vt.LongTensor(batch) == 1, -100)
    t = torch.LongTensor(batch).masked_fill(torch.LongTensor(batch) == 1, -100)
    assert v.tolist() == t.tolist()
    assert vt.FloatTensor(np.ones((2, 2), dtype=np.float64)).dtype == vt.float32
