"""Tensor.flip's argument forms against torch: dims as varargs, as one sequence, and as the keyword `dims`
(public code writes x.flip(dims=(1,))), with torch's TypeErrors for the forms torch refuses."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

ARR = np.arange(24, dtype=np.float32).reshape(2, 3, 4)


@pytest.mark.parametrize("args, kwargs", [((1,), {}), ((0, 2), {}), (([0, 1],), {}), (((2,),), {}),
                                          ((), {"dims": (1,)}), ((), {"dims": [0, 2]}), ((-1,), {}),
                                          ((), {"dims": ()})])
def test_flip_forms_match_torch(args, kwargs):
    t = torch.from_numpy(ARR).flip(*args, **kwargs)
    v = vt.from_numpy(ARR.copy()).flip(*args, **kwargs)
    np.testing.assert_array_equal(v.numpy(), t.numpy())


@pytest.mark.parametrize("args, kwargs", [((), {}), ((), {"dims": 1}), ((1,), {"dims": (0,)}),
                                          ((), {"dim": 0})])
def test_flip_refusals_match_torch(args, kwargs):
    with pytest.raises(TypeError):
        torch.from_numpy(ARR).flip(*args, **kwargs)
    with pytest.raises(TypeError):
        vt.from_numpy(ARR.copy()).flip(*args, **kwargs)


def test_flip_by_keyword_keeps_autograd():
    x = vt.from_numpy(ARR.copy()).requires_grad_()
    w = vt.from_numpy(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    (x.flip(dims=(1, 2)) * w).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), w.numpy()[:, ::-1, ::-1])
