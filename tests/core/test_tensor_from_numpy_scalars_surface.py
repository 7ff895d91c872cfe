"""torch.tensor / torch.as_tensor of NumPy scalars, against torch: a scalar keeps its dtype (torch.tensor(np.mean(x))
is float64, np.int32 gives int32), and a list of them takes the promotion of its numbers' dtypes, Python numbers
counting as the defaults (float32, int64); before, every NumPy float became float32 and every integer int64."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

DATA = {
    "float64": np.float64(1.5), "float32": np.float32(1.5), "float16": np.float16(1.5), "int32": np.int32(3),
    "int64": np.int64(3), "int16": np.int16(-3), "int8": np.int8(3), "uint8": np.uint8(200), "bool": np.bool_(True),
    "mean": np.mean(np.array([1.0, 2.5])), "list_float64": [np.float64(1.5), np.float64(2)],
    "list_int32": [np.int32(1), np.int32(2)], "with_python_float": [np.float64(1.5), 2.0],
    "float32_float64": [np.float32(1.5), np.float64(2)], "nested": [[np.float64(1)], [np.float64(2)]],
    "tuple": (np.float32(1), np.float32(2)), "float16_python_float": [np.float16(1), 2.0],
    "int32_python_int": [np.int32(1), 5], "float32_python_int": [np.float32(1), 1], "int8_bool": [np.int8(1), True],
    "uint8_int8": [np.uint8(1), np.int8(2)],
}


@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("factory", ["tensor", "as_tensor"])
def test_dtype_and_values_match_torch(name, factory):
    t = getattr(torch, factory)(DATA[name])
    v = getattr(vt, factory)(DATA[name])
    assert str(v.dtype).rsplit(".", 1)[-1] == str(t.dtype).rsplit(".", 1)[-1]
    assert v.tolist() == t.tolist()


def test_plain_python_data_keeps_the_defaults():
    for data in ([1.5, 2.0], [1, 2], [True], 2.5, [[1, 2]]):
        assert str(vt.tensor(data).dtype).rsplit(".", 1)[-1] == str(torch.tensor(data).dtype).rsplit(".", 1)[-1]
    assert vt.tensor(np.float64(1.5), dtype=vt.float32).dtype == vt.float32  # a dtype given wins
