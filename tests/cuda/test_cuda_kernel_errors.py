"""Out-of-range indices found by CUDA kernels (Note [Deferred kernel errors]): the op itself does not wait for
the GPU; the host's next synchronization raises the recorded error (IndexError for index / index_put_ /
embedding / cross_entropy, RuntimeError for gather / scatter, as torch's CPU kernels raise), naming the index,
the dim, the size, the op and the device. The bad positions are skipped (nothing outside the tensor is read or
written; good positions of the same call are written), the context stays usable, and the next error is
reported again. Graph replays report the same way; VT_CUDA_INDEX_CHECKS=sync raises at the op.

GPU run: PYTHONPATH=python python -m pytest tests/cuda/test_cuda_kernel_errors.py -q -p no:cacheprovider
"""
import os
import subprocess
import sys

import pytest
import vibetensor.torch as vt
from vibetensor._C import core as _core
from cuda_helpers import CUDA_MARKS, DEV, ON_CUDA

pytestmark = CUDA_MARKS
_index_put_ = _core.op("vt::index_put_")  # (self, indices, values, accumulate)

BAD = {  # op -> (call, exception kind, text the message names)
    "index": (lambda: vt.arange(5.0, device=DEV)[vt.tensor([1, 7], device=DEV)], IndexError,
              "index 7 is out of bounds for dimension 0 with size 5"),
    "index 2-d": (lambda: vt.ones(3, 4, device=DEV)[:, vt.tensor([-5], device=DEV)], IndexError,
                  "index -5 is out of bounds for dimension 1 with size 4"),
    "index_put_": (lambda: _index_put_(vt.zeros(4, device=DEV), [vt.tensor([9], device=DEV)], vt.ones(1, device=DEV)),
                   IndexError, "index 9 is out of bounds for dimension 0 with size 4"),
    "index_put_ accumulate": (lambda: _index_put_(vt.zeros(4, device=DEV), [vt.tensor([2, 4], device=DEV)],
                                                  vt.ones(2, device=DEV), True), IndexError, "index 4 is out"),
    "embedding": (lambda: vt.nn.functional.embedding(vt.tensor([[0, 11]], device=DEV), vt.ones(10, 3, device=DEV)),
                  IndexError, "index 11 is out of bounds for dimension 0 with size 10"),
    "embedding negative": (lambda: vt.nn.functional.embedding(vt.tensor([-1], device=DEV), vt.ones(10, 3, device=DEV)),
                           IndexError, "index -1 is out of bounds"),  # the user's index, not the moved one
    "cross_entropy": (lambda: vt.nn.functional.cross_entropy(vt.ones(2, 3, device=DEV), vt.tensor([0, 3], device=DEV)),
                      IndexError, "index 3 is out of bounds"),
    "cross_entropy negative": (lambda: vt.nn.functional.cross_entropy(vt.ones(2, 3, device=DEV),
                                                                      vt.tensor([0, -2], device=DEV)),
                               IndexError, "-2 is out of bounds"),
    "embedding int32": (lambda: vt.nn.functional.embedding(vt.tensor([-3], dtype=vt.int32, device=DEV),
                                                           vt.ones(10, 3, device=DEV)), IndexError, "-3 is out of bounds"),
    "gather": (lambda: vt.ones(2, 5, device=DEV).gather(1, vt.tensor([[7]], device=DEV)), RuntimeError,
               "index 7 is out of bounds for dimension 1 with size 5"),
    "scatter_": (lambda: vt.zeros(2, 5, device=DEV).scatter_(1, vt.tensor([[-1]], device=DEV), vt.ones(1, 1, device=DEV)),
                 RuntimeError, "index -1 is out of bounds for dimension 1 with size 5"),
    "scatter_add": (lambda: vt.zeros(3, device=DEV).scatter_add(0, vt.tensor([3], device=DEV), vt.ones(1, device=DEV)),
                    RuntimeError, "index 3 is out of bounds for dimension 0 with size 3"),
    "empty dim": (lambda: vt.ones(0, 3, device=DEV)[vt.tensor([0], device=DEV)], IndexError,
                  "index 0 is out of bounds for dimension 0 with size 0"),
}

SYNCS = {  # every way the host waits for the GPU reports the error
    "synchronize": lambda r: vt.cuda.synchronize(),
    "cpu": lambda r: r.cpu(),
    "item": lambda r: r.sum().item(),
    "tolist": lambda r: r.tolist(),
    "stream.synchronize": lambda r: vt.cuda.current_stream().synchronize(),
    "event.synchronize": lambda r: vt.cuda.current_stream().record_event().synchronize(),
    "event.query": lambda r: _until_done(vt.cuda.current_stream().record_event()),
}


def _until_done(event):
    while not event.query():
        pass


@pytest.fixture(autouse=True)
def _no_pending_error():
    if ON_CUDA:
        try:  # an error left behind by an earlier test is not this test's
            vt.cuda.synchronize()
        except (IndexError, RuntimeError):
            pass
    yield


@pytest.mark.parametrize("case", sorted(BAD))
def test_reported_at_the_next_synchronization(case):
    call, kind, text = BAD[case]
    with pytest.raises(kind, match=text.replace("(", r"\(")):
        call()
        vt.cuda.synchronize()
    assert float(vt.ones(8, device=DEV).sum().item()) == 8.0  # the device is still usable, the record cleared


@pytest.mark.skipif(not ON_CUDA, reason="the CPU raises at the op")
@pytest.mark.parametrize("sync", sorted(SYNCS))
def test_every_synchronization_reports_and_the_op_does_not_wait(sync):
    result = BAD["index"][0]()  # no exception here: the op queued its kernels and returned
    with pytest.raises(IndexError, match=r"index 7 is out of bounds .*\(index on cuda:\d"):
        SYNCS[sync](result)
    SYNCS[sync](vt.ones(2, device=DEV))  # reported once: the next synchronization is clean


@pytest.mark.skipif(not ON_CUDA, reason="the CPU raises at the op")
def test_bad_positions_are_skipped_good_ones_written():
    x = vt.zeros(4, device=DEV)
    x[vt.tensor([1, 9, 3], device=DEV)] = vt.tensor([5.0, 6.0, 7.0], device=DEV)
    with pytest.raises(IndexError, match="index 9"):
        vt.cuda.synchronize()
    assert x.tolist() == [0.0, 5.0, 0.0, 7.0]  # nothing written at row 0 (or anywhere else) for the bad index
    w = vt.arange(12.0, device=DEV).reshape(4, 3)
    y = w[vt.tensor([2, -9], device=DEV)]
    with pytest.raises(IndexError, match="index -9 is out of bounds for dimension 0 with size 4"):
        vt.cuda.synchronize()
    assert y[0].tolist() == [6.0, 7.0, 8.0]


@pytest.mark.skipif(not ON_CUDA, reason="the CPU raises at the op")
def test_the_first_error_is_kept_until_reported_then_the_next_one():
    a = vt.arange(5.0, device=DEV)
    a[vt.tensor([6], device=DEV)]
    a[vt.tensor([8], device=DEV)]  # a second error before any synchronization: the first one is reported
    with pytest.raises(IndexError, match="index 6 is out of bounds"):
        vt.cuda.synchronize()
    a[vt.tensor([10], device=DEV)]
    with pytest.raises(IndexError, match="index 10 is out of bounds"):
        vt.cuda.synchronize()


@pytest.mark.skipif(not ON_CUDA, reason="graphs need a GPU")
def test_graph_replay_reports_a_bad_index_written_into_its_static_input():
    w = vt.arange(12.0, device=DEV).reshape(4, 3)
    idx = vt.tensor([0, 1], device=DEV)
    w[idx]  # warm-up: the device's error record exists before the capture
    vt.cuda.synchronize()
    g = vt.cuda.CUDAGraph()
    with vt.cuda.graph(g):
        out = w[idx] * 2
    idx.copy_(vt.tensor([3, 2], device=DEV))
    g.replay()
    assert out.tolist() == [[18.0, 20.0, 22.0], [12.0, 14.0, 16.0]]
    idx.copy_(vt.tensor([1, 4], device=DEV))
    g.replay()
    with pytest.raises(IndexError, match="index 4 is out of bounds for dimension 0 with size 4"):
        vt.cuda.synchronize()
    idx.copy_(vt.tensor([0, 3], device=DEV))
    g.replay()  # the context survived: replays go on
    assert out.tolist() == [[0.0, 2.0, 4.0], [18.0, 20.0, 22.0]]


@pytest.mark.skipif(not ON_CUDA, reason="the CPU raises at the op")
def test_sync_mode_raises_at_the_op():
    code = ("import vibetensor.torch as vt\n"
            "x = vt.arange(5.0, device='cuda')\n"
            "try:\n"
            "    x[vt.tensor([7], device='cuda')]\n"
            "    print('not raised at the op')\n"
            "except IndexError as e:\n"
            "    print('raised at the op:', e)\n")
    env = dict(os.environ, VT_CUDA_INDEX_CHECKS="sync")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "raised at the op: index 7 is out of bounds" in out.stdout, out.stdout + out.stderr


@pytest.mark.skipif(not ON_CUDA or vt.cuda.device_count() < 2, reason="needs two (or two emulated) devices")
def test_the_error_names_its_device_and_other_devices_stay_clean():
    x = vt.arange(5.0, device="cuda:1")
    x[vt.tensor([5], device="cuda:1")]
    with pytest.raises(IndexError, match=r"index 5 is out of bounds .*on cuda:1"):
        vt.cuda.synchronize(1)
    vt.cuda.synchronize(0)
    y = vt.arange(5.0, device="cuda:0")
    picked = y[vt.tensor([4], device="cuda:0")]
    assert picked.tolist() == [4.0]
