"""A lone NumPy integer as a factory's size, against torch: torch.zeros(np.prod(shape)) and nn.Linear(np.prod(shape),
10) (flattened-input MLPs, VAEs) read it through __index__. The C++ size parsing (core/bindings/tensor.cpp,
varargs_ints) takes a lone argument for a sequence of sizes only when it is not an integer itself: an int, a NumPy
integer or an integer tensor is one size; a list, tuple or NumPy array is the sizes. A factory without any size is
torch's TypeError."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

CASES = {
    "zeros": lambda lib: lib.zeros(np.int64(3)),
    "empty": lambda lib: lib.empty(np.int64(3)),
    "ones": lambda lib: lib.ones(np.int32(3)),
    "rand": lambda lib: lib.rand(np.int64(3)),
    "randn": lambda lib: lib.randn(np.int64(3)),
    "randperm": lambda lib: lib.randperm(np.int64(3)),
    "linear": lambda lib: lib.nn.Linear(np.int64(4), np.int64(3)).weight,
    "layer_norm": lambda lib: lib.nn.LayerNorm(np.int64(3)).weight,
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_lone_numpy_integer_is_a_size(name):
    assert tuple(CASES[name](vt).shape) == tuple(CASES[name](torch).shape)


def test_several_numpy_integers_already_pass():
    assert tuple(vt.zeros(np.int64(2), np.int32(3)).shape) == tuple(torch.zeros(np.int64(2), np.int32(3)).shape)
    assert tuple(vt.zeros((np.int64(2),)).shape) == (2,)
    assert tuple(vt.nn.Embedding(np.int64(5), np.int64(2)).weight.shape) == (5, 2)


def test_a_missing_size_is_torchs_typeerror():
    for name in ("zeros", "ones", "empty"):
        with pytest.raises(TypeError) as tv:
            getattr(vt, name)()
        with pytest.raises(TypeError) as tt:
            getattr(torch, name)()
        want = f'{name}() missing 1 required positional arguments: "size"'  # torch 2.13's, which vt follows
        assert str(tv.value) == want
        if torch.__version__ >= "2.13":  # torch 2.11 listed its overloads ("received an invalid combination ...")
            assert str(tt.value) == want
