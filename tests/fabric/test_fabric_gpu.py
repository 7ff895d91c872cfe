"""The Fabric on GPUs (emulated or real): emulation contract, peer access ownership, routes, cross-device ops
against the same op on one device (bit-identical), stream ordering under a delayed producer, allocator lifetime
across devices, faults, multi-device autograd, FabricTensor and traces. Collectives: test_collectives_gpu.py."""
import json

import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor import _C, fabric

from fabric_helpers import need

pytestmark = [pytest.mark.cuda, pytest.mark.multigpu(2)]
SPIN = 50_000_000  # GPU cycles: tens of milliseconds, far longer than the host needs to queue what follows


def test_emulation_is_visible_and_separates_devices():
    need(2)
    if not vt.cuda.is_emulated():
        pytest.skip("checks emulation")
    props = vt.cuda.get_device_properties(1)
    assert props.is_emulated and props.name.endswith("(emulated)") and props.physical_device == 0
    assert "emulated" in vt.cuda.emulation_label()
    s0, s1 = vt.cuda.default_stream(0), vt.cuda.default_stream(1)
    assert s0.cuda_stream != s1.cuda_stream and s0.cuda_stream != 0, "each logical device has its own default stream"
    before = [vt.cuda.memory_allocated(d) for d in (0, 1)]
    t = vt.empty(1 << 20, device="cuda:1")
    assert vt.cuda.memory_allocated(1) - before[1] >= 4 << 20 and vt.cuda.memory_allocated(0) == before[0]
    del t
    with pytest.raises(RuntimeError, match="before the first CUDA use"):
        vt.cuda.emulate_devices(vt.cuda.device_count() + 1)


def test_peer_access_is_refcounted():
    need(2)
    before = _C.cuda.peer_access_refcount(0, 1)
    _C.cuda.enable_peer_access(0, 1)
    _C.cuda.enable_peer_access(0, 1)
    assert _C.cuda.peer_access_refcount(0, 1) == before + 2
    assert _C.cuda.check_peer_access(0, 1) == "ok"
    _C.cuda.disable_peer_access(0, 1)
    _C.cuda.disable_peer_access(0, 1)
    assert _C.cuda.peer_access_refcount(0, 1) == before
    if before == 0:
        with pytest.raises(RuntimeError, match="not held"):
            _C.cuda.disable_peer_access(0, 1)


def test_fabric_routes_and_lifetime():
    need(2)
    n = vt.cuda.device_count()
    with fabric.Fabric(mode="strict") as fab:
        assert fab.devices == list(range(n))
        expect = "native" if vt.cuda.is_emulated() else "p2p"
        assert all(kind == expect for kind, _ in fab.routes.values())
        assert fab.enabled_peer_pairs == n * (n - 1)
        assert _C.cuda.peer_access_refcount(0, 1) >= 1 and _C.fabric.route(0, 1)[0] == expect
        assert "emulated" in fab.report() or not vt.cuda.is_emulated()
        assert fab.setup_seconds < 5.0
    assert fab.closed and _C.fabric.route(0, 1) == ("uncovered", "")
    with pytest.raises(fabric.FabricError, match="closed"):
        fab.route(0, 1)
    with pytest.raises(fabric.FabricError, match="does not exist"):
        fabric.Fabric(devices=[0, n])
    with pytest.raises(fabric.FabricError, match="listed twice"):
        fabric.Fabric(devices=[0, 0])


def test_mixed_devices_outside_a_fabric_raise():
    need(2)
    with pytest.raises(RuntimeError, match="same device.*cuda:0.*cuda:1"):
        vt.ones(2, device="cuda:0") + vt.ones(2, device="cuda:1")


BINARY = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a - b, lambda a, b: a / b,
          lambda a, b: vt.maximum(a, b), lambda a, b: vt.where(a > b, a, b), lambda a, b: a.add(b, alpha=2.5),
          lambda a, b: vt.atan2(a, b), lambda a, b: (a < b)]


@pytest.mark.parametrize("k", range(len(BINARY)))
@pytest.mark.parametrize("dtype", [vt.float32, vt.float64, vt.bfloat16])
@pytest.mark.parametrize("shapes", [((33, 17), (33, 17)), ((33, 1), (1, 17)), ((0, 4), (1, 4)), ((5, 6), (6,))])
def test_cross_device_op_bit_identical_to_local(k, dtype, shapes, rng):
    need(2)
    fn = BINARY[k]
    x = vt.from_numpy(rng.standard_normal(shapes[0]).astype(np.float32)).to(dtype)
    y = vt.from_numpy(rng.standard_normal(shapes[1]).astype(np.float32)).to(dtype)
    local = fn(x.to("cuda:0"), y.to("cuda:0")).cpu()
    with fabric.Fabric(devices=[0, 1]):
        a, b = x.to("cuda:0"), y.to("cuda:1")
        out = fn(a, b)
        assert out.device == vt.device("cuda:0")
        assert vt.equal(out.cpu(), local)
        back = fn(b, a)  # runs on cuda:1, reads cuda:0
        assert back.device == vt.device("cuda:1") and vt.equal(back.cpu(), fn(y.to("cuda:0"), x.to("cuda:0")).cpu())
        if shapes[0] == shapes[1]:  # non-contiguous operands on both devices
            strided = fn(x.to("cuda:0").t(), y.to("cuda:1").t())
            assert vt.equal(strided.cpu(), fn(x.to("cuda:0").t(), y.to("cuda:0").t()).cpu())


def test_cross_device_inplace_out_and_reductions(rng):
    need(2)
    x = vt.from_numpy(rng.standard_normal((64, 48)).astype(np.float32))
    with fabric.Fabric(devices=[0, 1]):
        a, b = x.to("cuda:0"), x.to("cuda:1")
        a.mul_(b)  # in place on cuda:0 reading cuda:1
        assert vt.equal(a.cpu(), x * x)
        out = b.clone()
        out.add_(a)  # in place on cuda:1 reading cuda:0
        assert vt.equal(out.cpu(), x * x + x)
        s = (a + b).sum(dim=0)
        assert vt.allclose(s.cpu(), (x * x + x).sum(dim=0))


def test_compute_waits_for_a_delayed_producer_on_the_remote_device():
    need(2)
    with fabric.Fabric(devices=[0, 1]):
        a = vt.zeros(1 << 16, device="cuda:0")
        b = vt.zeros(1 << 16, device="cuda:1")
        vt.cuda._sleep(SPIN, device=1)  # the producer on cuda:1 is late ...
        b.fill_(7.0)  # ... so this fill runs long after the host moves on
        c = a + b  # must wait for it (an event), not read zeros
        assert vt.equal(c.cpu(), vt.full((1 << 16,), 7.0))


# Ops that may prepare a remote operand with kernels of their own (a layout copy before a GEMM, an index made
# contiguous): the remote producer is late, so a preparation on the remote device's stream that the compute
# stream does not wait for reads or hands over stale memory (Note [Remote layouts]).
PREPARED = {
    "matmul_gapped": lambda a, b: a @ b[:, ::2],
    "matmul_transposed": lambda a, b: a @ b.t(),
    "bmm_permuted": lambda a, b: vt.bmm(a.reshape(4, 32, 32), b.reshape(32, 4, 32).permute(1, 2, 0)),
    "index_select_gapped_index": lambda a, b: a.index_select(0, b[::2, 0].long().clamp(0, 63)),
    "cat_gapped": lambda a, b: vt.cat([a, b[::2]]),
    "embedding_gapped_indices": lambda a, b: vt.nn.functional.embedding(b[::2, 0].long().clamp(0, 63), a),
}


@pytest.mark.parametrize("name", sorted(PREPARED))
def test_ops_preparing_a_remote_operand_wait_for_its_producer(name, rng):
    need(2)
    fn = PREPARED[name]
    x = vt.from_numpy((rng.standard_normal((64, 64)) * 8).astype(np.float32))
    y = vt.from_numpy((rng.standard_normal((64, 64)) * 8).astype(np.float32))
    local = fn(x.to("cuda:0"), y.to("cuda:0")).cpu()
    with fabric.Fabric(devices=[0, 1]):
        a = x.to("cuda:0")
        b = vt.zeros(64, 64, device="cuda:1")
        vt.cuda.synchronize(1)
        vt.cuda._sleep(SPIN, device=1)  # the producer on cuda:1 is late ...
        b.copy_(y.to("cuda:1"))  # ... so b holds zeros until long after the host moves on
        out = fn(a, b)
        assert out.device == vt.device("cuda:0")
        assert vt.equal(out.cpu(), local), name


def test_peer_copy_waits_for_the_producer_and_the_consumer_sees_it():
    need(2)
    x = vt.zeros(1 << 20, device="cuda:1")
    vt.cuda._sleep(SPIN, device=1)
    x.fill_(3.0)
    y = x.to("cuda:0")  # no Fabric needed: copies are always allowed
    z = y * 2  # on cuda:0's stream: must see the copy
    assert vt.equal(z.cpu(), vt.full((1 << 20,), 6.0))
    w = vt.empty(1 << 20, device="cuda:1")
    vt.cuda._sleep(SPIN, device=0)
    w.copy_(z)  # cuda:0 -> cuda:1 after cuda:0's delayed work
    assert vt.equal((w + 1).cpu(), vt.full((1 << 20,), 7.0))


def test_remote_block_is_not_reused_while_a_kernel_reads_it():
    need(2)
    n = 1 << 20
    with fabric.Fabric(devices=[0, 1]):
        a = vt.ones(n, device="cuda:0")
        b = vt.full((n,), 5.0, device="cuda:1")
        vt.cuda.synchronize(1)
        vt.cuda._sleep(SPIN, device=0)  # the reader on cuda:0 is late
        c = a + b  # queued behind the sleep, reads b remotely
        del b  # freed on cuda:1 while cuda:0 has not read it yet
        d = vt.full((n,), -1.0, device="cuda:1")  # would take b's block if it were handed out early
        assert vt.equal(c.cpu(), vt.full((n,), 6.0))
        del d


def test_topology_fixture_and_faults_route_through_the_fallback(monkeypatch, rng):
    need(2)
    x = vt.from_numpy(rng.standard_normal(1000).astype(np.float32))
    fabric.reset_stats()
    with fabric.Fabric(devices=[0, 1], faults="p2p_broken:0-1") as fab:
        assert fab.route(0, 1) == ("staged", "p2p_broken") and fab.route(1, 0) == ("staged", "p2p_broken")
        c = x.to("cuda:0") + x.to("cuda:1")
        assert vt.equal(c.cpu(), x + x)
        st = fab.stats()
        assert st["pairs"][(0, 1)]["fallbacks"]["p2p_broken"] == 1 and st["pairs"][(0, 1)]["hits"] == 0
        assert st["pairs"][(0, 1)]["bytes"] == 4000
    with pytest.raises(fabric.FabricError, match="strict Fabric.*p2p_broken"):
        fabric.Fabric(devices=[0, 1], mode="strict", faults="p2p_broken:0-1")
    assert _C.fabric.route(0, 1) == ("uncovered", ""), "a failed open holds nothing"
    with fabric.Fabric(devices=[0, 1], p2p=False) as fab:
        assert fab.route(0, 1) == ("staged", "disabled_by_user")


def test_emulated_topology_fixture_gives_link_reasons(monkeypatch):
    need(4)
    if not vt.cuda.is_emulated():
        pytest.skip("VT_EMULATE_TOPOLOGY applies to emulated devices")
    import os

    fixture = os.path.join(os.path.dirname(__file__), "..", "fixtures", "topologies", "pcie_two_socket_8gpu.json")
    doc = json.load(open(fixture))
    for link in doc["links"]:  # a machine whose GPUs 0 and 2 cannot reach each other over P2P
        if {link["src"], link["dst"]} == {0, 2}:
            link["p2p_access"] = False
    with fabric.Fabric(devices=[0, 1, 2, 3], topology=doc) as fab:
        kinds = {(a, b): fab.route(a, b) for a in range(4) for b in range(4) if a != b}
        assert kinds[(0, 2)] == ("staged", "no_p2p") and kinds[(2, 0)] == ("staged", "no_p2p")
        assert "no_p2p" in fab.report() and "link " in fab.report()
        for (a, b), (kind, why) in kinds.items():
            link = fab.link(a, b)
            assert (kind == "staged") == (not link["p2p_access"])
        x = vt.arange(10, dtype=vt.float32)
        for (a, b) in kinds:
            assert vt.equal((x.to(f"cuda:{a}") + x.to(f"cuda:{b}")).cpu(), x * 2)


def test_close_with_work_in_flight_raises_and_stays_open():
    need(2)
    fab = fabric.Fabric(devices=[0, 1])
    vt.cuda._sleep(SPIN * 20, device=1)
    with pytest.raises(fabric.FabricTimeoutError, match="cuda:1"):
        fab.close(timeout=0.001)
    assert not fab.closed and _C.fabric.route(0, 1)[0] != "uncovered"
    fab.close()
    assert fab.closed


def test_cross_device_autograd_matches_torch(rng):
    need(2)
    import torch

    xa = rng.standard_normal((8, 5)).astype(np.float32)
    xb = rng.standard_normal((8, 5)).astype(np.float32)
    with fabric.Fabric(devices=[0, 1]):
        a = vt.from_numpy(xa).to("cuda:0").requires_grad_()
        b = vt.from_numpy(xb).to("cuda:1").requires_grad_()
        loss = ((a * b).tanh() + b.exp()).sum()
        loss.backward()
        ta, tb = torch.from_numpy(xa).requires_grad_(), torch.from_numpy(xb).requires_grad_()
        ((ta * tb).tanh() + tb.exp()).sum().backward()
        assert a.grad.device == vt.device("cuda:0") and b.grad.device == vt.device("cuda:1")
        np.testing.assert_allclose(a.grad.cpu().numpy(), ta.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.grad.cpu().numpy(), tb.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_fabric_tensor_shard_ops_reduce_gather(rng):
    need(2)
    n = vt.cuda.device_count()
    x = vt.from_numpy(rng.standard_normal((2 * n + 1, 6)).astype(np.float64))
    with fabric.Fabric():
        ft = fabric.FabricTensor.shard(x, 0, range(n))
        assert ft.devices == list(range(n)) and ft.local(1).device == vt.device("cuda:1")
        y = (ft * 2 + 1).relu()
        assert vt.equal(y.gather(), (x * 2 + 1).relu())
        total = y.sum()
        for k in range(n):
            assert abs(total.local(k).item() - (x * 2 + 1).relu().sum().item()) < 1e-9
        r = y.reshard(fabric.Replicate())
        assert all(vt.equal(s.cpu(), (x * 2 + 1).relu()) for s in r.shards)
        with pytest.raises(fabric.FabricError, match="reshard first"):
            ft + r


def test_trace_has_gpu_spans_on_each_device(tmp_path):
    need(2)
    with fabric.Fabric(devices=[0, 1]):
        fabric.trace.start()
        a, b = vt.ones(1 << 16, device="cuda:0"), vt.ones(1 << 16, device="cuda:1")
        for _ in range(3):
            a = a + b
            b = b * a
        fabric.all_reduce([a, b])
        vt.cuda.synchronize(0), vt.cuda.synchronize(1)
        fabric.trace.stop()
        doc = fabric.trace.export(str(tmp_path / "trace.json"))
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in spans} == {0, 1}
    assert all(e["dur"] >= 0 for e in spans) and any(e["dur"] > 0 for e in spans)
    assert any(e["name"].startswith("collective") for e in doc["traceEvents"] if e["ph"] == "i")
    json.loads((tmp_path / "trace.json").read_text())


def test_staging_under_capture_is_refused_and_the_capture_stays_valid(rng):
    """Note [Staging under capture]: CUDA cannot record the staged copy into a graph, so the call is refused with
    capture_active before anything is enqueued, under a one-device capture and one joined over both devices; the
    capture then ends cleanly and what was captured replays."""
    need(2)
    x = rng.standard_normal(1000).astype(np.float32)
    with fabric.Fabric(devices=[0, 1], p2p=False):
        a, b = vt.from_numpy(x).to("cuda:0"), vt.from_numpy(x).to("cuda:1")
        out = vt.zeros(1000, device="cuda:0")
        for begin in (lambda g: vt.cuda.graph(g), lambda g: fabric.graphs.capture(g, [0, 1])):
            g = vt.cuda.CUDAGraph()
            with begin(g):
                out.copy_(a * 2)
                with pytest.raises(RuntimeError, match=r"cuda:1 -> cuda:0 .*disabled_by_user.*capture_active"):
                    a + b
            out.zero_()
            g.replay()
            vt.cuda.synchronize(0)
            np.testing.assert_array_equal(out.cpu().numpy(), x * 2)
        assert any(e["kind"] == "error" and e["reason"] == "capture_active" for e in fabric.trace.events())
