"""x.shape and x.size() as torch.Size (Note [Size]): a tuple subclass with numel() and torch's repr, equal and hashed
as the plain tuple, unpacking and indexing as a tuple, concatenation and repetition staying Sizes, pickling, and
vt.Size(...) validating its items as torch.Size does."""
import pickle

import numpy as np
import pytest
import torch
import vibetensor.torch as vt


@pytest.mark.parametrize("shape", [(2, 3, 4), (5,), (), (0, 3)])
def test_shape_and_size_are_sizes_as_torch(shape):
    v, t = vt.zeros(shape), torch.zeros(shape)
    for vs, ts in ((v.shape, t.shape), (v.size(), t.size())):
        assert isinstance(vs, vt.Size) and isinstance(vs, tuple)
        assert repr(vs) == repr(ts) and str(vs) == str(ts) and f"{vs}" == f"{ts}"
        assert vs.numel() == ts.numel() == v.numel()
        assert vs == tuple(ts) and hash(vs) == hash(tuple(ts)) and list(vs) == list(ts)
        assert repr(vs + (7,)) == repr(ts + (7,)) and repr((7,) + vs) == repr((7,) + ts)
        assert repr(vs * 2) == repr(ts * 2) and repr(2 * vs) == repr(2 * ts)
        assert pickle.loads(pickle.dumps(vs)) == vs and type(pickle.loads(pickle.dumps(vs))) is vt.Size
    assert isinstance(v.stride(), tuple) and not isinstance(v.stride(), vt.Size)  # torch's stride() is a tuple too


def test_indexing_and_unpacking_give_ints():
    x = vt.zeros(2, 3, 4)
    b, t, c = x.shape
    assert (b, t, c) == (2, 3, 4) and type(x.shape[-1]) is int and x.size(1) == 3
    assert x.shape[1:] == (3, 4)
    assert vt.zeros(x.shape).shape == (2, 3, 4) and x.view(x.shape[0], -1).shape == (2, 12)


def test_constructor_validates_items_as_torch():
    assert repr(vt.Size([2, np.int64(3)])) == repr(torch.Size([2, np.int64(3)])) == "torch.Size([2, 3])"
    assert vt.Size() == () and repr(vt.Size()) == repr(torch.Size())
    for bad in ([2.5], ["a"]):
        with pytest.raises(TypeError) as tv:
            vt.Size(bad)
        with pytest.raises(TypeError) as tt:
            torch.Size(bad)
        assert str(tv.value) == str(tt.value)
