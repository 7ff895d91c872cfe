"""out= and Tensor.resize_ on the GPU (Note [out= by copy], Note [Storage growth]): a CUDA storage grows in place
on the current stream with its old bytes, out= writes device results, runs sum in out's dtype, and refuses an
out on another device. The CPU suite (tests/core/test_out_arguments.py) checks every op against torch."""
import numpy as np
import pytest

import vibetensor.torch as vt
from cuda_helpers import CUDA_MARKS, DEV

pytestmark = CUDA_MARKS


def test_resize_grows_a_device_storage_with_its_old_bytes():
    base = vt.arange(1000.0, device=DEV)
    view = base[10:20]
    base.resize_(1 << 20)  # far past the old block: new memory, the old bytes copied first
    base[-1] = 5.0
    assert view.cpu().tolist() == [float(i) for i in range(10, 20)]
    assert base[:1000].cpu().tolist() == [float(i) for i in range(1000)] and base[-1].item() == 5.0
    base.resize_(3, 4)  # shrinking keeps the storage
    assert base.cpu().reshape(-1).tolist() == [float(i) for i in range(12)]


def test_out_on_the_device():
    rng = np.random.default_rng(0)
    a, b = (vt.from_numpy(rng.standard_normal((33, 65)).astype(np.float32)).to(DEV) for _ in range(2))
    o = vt.empty(0, device=DEV)
    assert vt.add(a, b, alpha=2, out=o) is o and o.shape == (33, 65)
    np.testing.assert_allclose(o.cpu().numpy(), (a + 2 * b).cpu().numpy())
    strided = vt.zeros(65, 33, device=DEV).t()  # a transposed out keeps its strides
    vt.mul(a, b, out=strided)
    np.testing.assert_allclose(strided.cpu().numpy(), (a * b).cpu().numpy())
    x = vt.from_numpy(np.arange(12, dtype=np.float32).reshape(3, 4) / 4).to(DEV)
    s = vt.empty(3, dtype=vt.int64, device=DEV)
    vt.sum(x, 1, out=s)  # runs in out's dtype, as torch: each value truncated, then summed
    assert s.cpu().tolist() == vt.sum(x.cpu(), 1, dtype=vt.int64).tolist()
    v, i = vt.max(a, 1, out=(vt.empty(0, device=DEV), vt.empty(0, dtype=vt.int64, device=DEV)))
    assert v.cpu().tolist() == a.cpu().max(1).values.tolist()
    if DEV != "cpu":
        with pytest.raises(RuntimeError, match="device"):
            vt.add(a, b, out=vt.empty(33, 65))
