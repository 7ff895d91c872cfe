"""Cross-device behaviour on machines with several GPUs (marker multigpu(2)): copies between GPUs over the
peer path and the staged path, allocator accounting per device, and the device check on mixed ops."""
import pytest

import vibetensor.torch as vt

pytestmark = [pytest.mark.cuda, pytest.mark.multigpu(2)]


def test_copy_between_gpus_dense_and_strided(rng):
    import numpy as np

    x = vt.from_numpy(rng.standard_normal((64, 48)).astype(np.float32))
    a = x.to("cuda:0")
    b = a.to("cuda:1")  # dense: cudaMemcpyPeerAsync
    assert b.device == vt.device("cuda:1") and vt.equal(b.cpu(), x)
    c = a.t().to("cuda:1")  # strided source: densified on cuda:0, moved, arranged on cuda:1
    assert vt.equal(c.cpu(), x.t())
    d = vt.zeros(48, 64, dtype=vt.float64, device="cuda:1")
    d.copy_(a.t())  # strided + cast across devices
    assert vt.equal(d.cpu(), x.t().double())


def test_allocator_accounts_per_device():
    before = [vt.cuda.memory_allocated(i) for i in (0, 1)]
    t = vt.empty(1 << 20, device="cuda:1")
    assert vt.cuda.memory_allocated(1) - before[1] >= 4 << 20
    assert vt.cuda.memory_allocated(0) == before[0]
    del t
    assert vt.cuda.memory_allocated(1) == before[1]


def test_mixed_gpu_op_names_both_devices():
    with pytest.raises(RuntimeError, match="cuda:0.*cuda:1|cuda:1.*cuda:0"):
        vt.ones(2, device="cuda:0") + vt.ones(2, device="cuda:1")


def test_peer_copy_matches_staged_copy():
    # The same bytes must arrive whether the driver uses P2P or stages through the host.
    x = vt.arange(1 << 16, dtype=vt.int32).to("cuda:0")
    direct = x.to("cuda:1")
    staged = x.cpu().to("cuda:1")
    assert vt.equal(direct.cpu(), staged.cpu())
