"""Tensor.repeat against torch: it always returns a new tensor owning its memory, with or without grad mode, so
writing into the result (the masked assignment of PointNet++'s ball query) leaves the source and the other
copies alone. Under no_grad, vibetensor's repeat used to return a stride-0 alias of its input."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

CASES = [((3,), (2, 1)), ((1, 3), (2, 1)), ((1, 1, 4), (2, 3, 1)), ((2, 3), (1, 1)), ((2, 3), (1, 1, 1)),
         ((2, 1, 3), (1, 4, 1)), ((), (3,)), ((2,), (0, 2))]


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("shape,reps", CASES)
def test_repeat_result_owns_its_memory(shape, reps, grad):
    src = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    t, v = torch.from_numpy(src.copy()), vt.from_numpy(src.copy())
    with torch.set_grad_enabled(grad), vt.set_grad_enabled(grad):
        tr, vr = t.repeat(*reps), v.repeat(*reps)
        assert tuple(vr.shape) == tuple(tr.shape)
        assert vr.stride() == tr.stride()
        assert vr.is_contiguous()
        assert not vr._is_view_of(v)
        if vr.numel():
            tr.view(-1)[0] = 99
            vr.view(-1)[0] = 99
    np.testing.assert_array_equal(vr.numpy(), tr.numpy())
    np.testing.assert_array_equal(v.numpy(), src)


def test_masked_assignment_into_a_repeat_under_no_grad():
    mask = np.random.default_rng(0).random((2, 3, 5)) > 0.5
    with torch.no_grad(), vt.no_grad():
        tg = torch.arange(5).view(1, 1, 5).repeat([2, 3, 1])
        vg = vt.arange(5).view(1, 1, 5).repeat([2, 3, 1])
        tg[torch.from_numpy(mask)] = 5
        vg[vt.from_numpy(mask)] = 5
    np.testing.assert_array_equal(vg.numpy(), tg.numpy())
    assert (vg.numpy() == 5).sum() == mask.sum()


def test_repeat_errors_match_torch():
    for mod in (torch, vt):
        x = mod.zeros(2, 3)
        with pytest.raises(RuntimeError, match="can not be smaller"):
            x.repeat(2)
        with pytest.raises(RuntimeError, match="negative dimension"):
            x.repeat(-1, 1)
