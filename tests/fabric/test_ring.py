"""The ring backend (plugins/ring_allreduce, loaded through the plugin ABI) against a float64 reference, nccl-tests
style: inputs depend on the device and the index, so a misplaced chunk counts; every algorithm, dtype, op and
placement; sizes 0, 1, odd, unaligned and multi-slice; bit-identical results on every device; stream order;
CUDA-graph capture and replay; a peer that never arrives ends in FabricTimeoutError, not a hang; bad input is
refused before any launch. The plugin's own checks are tested on the CPU too (it loads without a GPU)."""
import random

import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor import fabric
from vibetensor.fabric import ring

from fabric_helpers import need

gpu = [pytest.mark.cuda, pytest.mark.multigpu(2)]
DTYPES = {"float32": (vt.float32, 1e-6), "bfloat16": (vt.bfloat16, 1e-2), "float16": (vt.float16, 2e-3)}
REDUCE = {"sum": np.sum, "avg": np.mean, "max": np.max, "min": np.min}
ALGS = ["one_shot", "two_shot", "ring", "auto"]


def built():
    if not ring.available():
        pytest.skip("the ring plugin was not built (the build found no CUTLASS headers)")
    return ring._ops()


# ---- without a GPU: the plugin loads, registers its ops, and refuses what it cannot run ----

def test_plugin_registers_its_ops_through_the_abi():
    built()
    rec = vt.ops.load_library(ring.plugin_path())  # loading again returns the first load's record
    assert rec["abi_version"] == "1.1"
    assert set(rec["ops"]) == {f"ring::{n}" for n in ("all_reduce", "reduce_scatter", "all_gather", "check", "status",
                                                      "destroy", "inject_fault")}


def test_plugin_refuses_cpu_tensors_and_bad_lists():
    ops = built()
    with pytest.raises(ValueError, match=r"inputs\[0\] is on the CPU"):
        ops.all_reduce([vt.ones(4)], [], 0, 0, 0)
    with pytest.raises(ValueError, match="inputs is empty"):
        ops.all_reduce([], [], 0, 0, 0)
    assert ring.status([0, 0])["exists"] == 0  # no communicator can have one device twice


# ---- on GPUs (emulated or real) ----

def ranks(n, numel, dtype, offset=0, seed=None):
    """Rank r's input: small integers depending on r and the index (exact in every dtype, so sums compare
    exactly), or random normals with `seed`. `offset` elements in front make the tensors unaligned views."""
    idx = np.arange(numel)
    if seed is None:
        host = [((r + 1) * 3 + idx % 5).astype(np.float64) for r in range(n)]
    else:
        g = np.random.default_rng(seed)
        host = [g.standard_normal(numel) for _ in range(n)]
    xs = []
    for r, h in enumerate(host):
        full = vt.from_numpy(np.concatenate([np.zeros(offset), h])).to(dtype).to(f"cuda:{r}")
        xs.append(full[offset:])
    host = [x.double().cpu().numpy() for x in xs]  # the values as the dtype holds them
    return host, xs


def n_wrong(got, expect, tol):
    return int(np.sum(~np.isclose(got.double().cpu().numpy(), expect, rtol=tol, atol=tol)))


def assert_all_reduce(xs, host, outs, op, tol):
    ref = REDUCE[op](np.stack(host), axis=0)
    res = outs if outs is not None else xs
    assert sum(n_wrong(r, ref, tol) for r in res) == 0
    first = res[0].cpu()
    assert all(vt.equal(r.cpu(), first) for r in res[1:]), "bit-identical on every device"


@pytest.mark.parametrize("op", list(REDUCE))
@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("numel", [0, 1, 7, 1000, 65536 + 3, (1 << 20) + 1])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_all_reduce(dtype, numel, alg, in_place, op):
    need(2)
    built()
    n = vt.cuda.device_count()
    vdt, tol = DTYPES[dtype]
    host, xs = ranks(n, numel, vdt)
    outs = None if in_place else [vt.empty_like(x) for x in xs]
    fabric.all_reduce(xs, op, out=outs, backend="ring", algorithm=alg)
    assert_all_reduce(xs, host, outs, op, tol)
    assert ring.status(list(range(n)))["broken"] == 0


@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("offset", [1, 3])
def test_all_reduce_unaligned_views_and_large_buffers(alg, offset):
    need(2)
    built()
    n = vt.cuda.device_count()
    for numel in (12345, (3 << 20) + 5):
        host, xs = ranks(n, numel, vt.float32, offset=offset, seed=numel)
        fabric.all_reduce(xs, "sum", backend="ring", algorithm=alg)
        assert_all_reduce(xs, host, None, "sum", 1e-5)


@pytest.mark.parametrize("numel", [(1 << 19) + 1, 939461, (1 << 21) + 12345])
def test_one_shot_in_place_beyond_the_scratch(numel):
    """In place, one_shot stages through the communicator's 2 MiB scratch in rounds, each block through its own
    slot; a last round shorter than the others once let a block restage what another block's peers still read."""
    need(2)
    built()
    n = vt.cuda.device_count()
    for seed in range(3):
        g = np.random.default_rng(seed)
        host = [g.integers(-8, 9, numel).astype(np.float64) for _ in range(n)]
        xs = [vt.from_numpy(h).float().to(f"cuda:{r}") for r, h in enumerate(host)]
        fabric.all_reduce(xs, "sum", backend="ring", algorithm="one_shot")
        assert_all_reduce(xs, host, None, "sum", 0)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("count", [0, 1, 5, 4096, 100003])
def test_reduce_scatter_and_all_gather(dtype, count):
    need(2)
    built()
    n = vt.cuda.device_count()
    vdt, tol = DTYPES[dtype]
    host, xs = ranks(n, count * n, vdt)
    outs = [vt.empty(count, dtype=vdt, device=f"cuda:{r}") for r in range(n)]
    fabric.reduce_scatter(xs, outs, "sum", backend="ring")
    total = np.sum(np.stack(host), axis=0)
    assert sum(n_wrong(outs[r], total[r * count:(r + 1) * count], tol) for r in range(n)) == 0
    # all_gather of those parts rebuilds the total on every device
    gathered = [vt.empty(count * n, dtype=vdt, device=f"cuda:{r}") for r in range(n)]
    fabric.all_gather(outs, gathered, backend="ring")
    assert sum(n_wrong(g, total, tol) for g in gathered) == 0


def test_in_place_reduce_scatter_and_all_gather_positions():
    need(2)
    built()
    n, count = vt.cuda.device_count(), 1001
    host, xs = ranks(n, count * n, vt.float32)
    total = np.sum(np.stack(host), axis=0)
    outs = [x[r * count:(r + 1) * count] for r, x in enumerate(xs)]  # NCCL's in-place reduce_scatter
    fabric.reduce_scatter(xs, outs, "sum", backend="ring")
    assert sum(n_wrong(outs[r], total[r * count:(r + 1) * count], 0) for r in range(n)) == 0
    fabric.all_gather([x[r * count:(r + 1) * count] for r, x in enumerate(xs)], xs, backend="ring")  # in place
    assert sum(n_wrong(x, total, 0) for x in xs) == 0


def test_device_subsets_orders_and_repeated_calls():
    """Communicators per ordered device list; the flags' epochs carry across calls of every algorithm."""
    need(2)
    built()
    n = vt.cuda.device_count()
    lists = [list(range(n)), list(reversed(range(n))), [0, n - 1]] + ([[1, 2, 0]] if n >= 3 else [])
    rng = random.Random(0)
    for step in range(40):
        devs = lists[step % len(lists)]
        numel = rng.choice([1, 333, 4096, 70000, 300001])
        xs = [vt.full((numel,), float(k + 1), device=f"cuda:{d}") for k, d in enumerate(devs)]
        fabric.all_reduce(xs, "sum", backend="ring", algorithm=rng.choice(ALGS))
        want = len(devs) * (len(devs) + 1) / 2
        assert all(float(x.min()) == want == float(x.max()) for x in xs), (step, devs, numel)


def test_randomized_runs():
    """Random algorithm, dtype, op, placement, size and offset; #wrong must stay 0 (the long form: bench --check)."""
    need(2)
    built()
    n = vt.cuda.device_count()
    rng = random.Random(1234)
    for case in range(60):
        dtype, op, alg = rng.choice(list(DTYPES)), rng.choice(list(REDUCE)), rng.choice(ALGS)
        numel, offset, in_place = rng.choice([0, 1, 2, 9, 257, 5000, 65537, 400000]), rng.choice([0, 0, 1]), rng.random() < .5
        vdt, tol = DTYPES[dtype]
        tol *= n  # a ring rounds each partial sum to the dtype: up to n - 1 roundings of a partial
        host, xs = ranks(n, numel, vdt, offset=offset, seed=case)
        outs = None if in_place else [vt.empty_like(x) for x in xs]
        fabric.all_reduce(xs, op, out=outs, backend="ring", algorithm=alg)
        ref = REDUCE[op](np.stack(host), axis=0)
        res = outs if outs is not None else xs
        # a bf16/fp16 sum rounds partials: compare against the reference with the dtype's tolerance and magnitude
        scale = np.abs(np.stack(host)).sum(0) if op in ("sum", "avg") else np.abs(ref)
        bad = sum(int(np.sum(np.abs(r.double().cpu().numpy() - ref) > tol * (1 + scale))) for r in res)
        assert bad == 0, (case, dtype, op, alg, numel, offset, in_place)


def test_stream_order_with_a_delayed_producer():
    """Inputs written late on each device's stream are what the collective reads; outputs are ready for the
    next op on the same stream - no host sync anywhere."""
    need(2)
    built()
    n = vt.cuda.device_count()
    xs = [vt.zeros(300000, device=f"cuda:{r}") for r in range(n)]
    for alg in ALGS:
        for r in range(n):
            vt.cuda._sleep(20_000_000, device=r)  # the producer is slow...
            xs[r].fill_(float(r + 1))             # ...and writes after the collective was queued behind it
        fabric.all_reduce(xs, "sum", backend="ring", algorithm=alg)
        ys = [x * 2 for x in xs]
        want = n * (n + 1)
        assert all(float(y.min()) == want == float(y.max()) for y in ys), alg


@pytest.mark.parametrize("kind", ["one_shot", "two_shot", "ring", "reduce_scatter", "all_gather"])
def test_traffic_is_counted_on_the_pairs(kind):
    """Note [Counted backend traffic]: what each rank pulls from each peer, by algorithm, and the pairs' sums are
    the totals (Note [Counter invariants])."""
    need(2)
    built()
    n = vt.cuda.device_count()
    numel = 4096 * n  # divisible by n: every chunk has numel / n elements
    xs = [vt.ones(numel, device=f"cuda:{r}") for r in range(n)]
    with fabric.Fabric() as fab:
        fabric.reset_stats()
        if kind == "reduce_scatter":
            fabric.reduce_scatter(xs, [vt.empty(numel // n, device=f"cuda:{r}") for r in range(n)], backend="ring")
        elif kind == "all_gather":
            fabric.all_gather(xs, [vt.empty(numel * n, device=f"cuda:{r}") for r in range(n)], backend="ring")
        else:
            fabric.all_reduce(xs, backend="ring", algorithm=kind)
        st = fab.stats()
    got = {p: c["bytes"] for p, c in st["pairs"].items()}
    assert sum(got.values()) == st["total"]["bytes"] > 0
    chunk = numel // n * 4
    if kind == "ring":  # each rank pulls 2(n - 1) chunks from one peer, and every rank from a different one
        pulls = {a: [b for b in range(n) if b != a and got[(a, b)]] for a in range(n)}
        assert all(len(p) == 1 for p in pulls.values()) and len({p[0] for p in pulls.values()}) == n, pulls
        assert all(got[(a, p[0])] == 2 * (n - 1) * chunk for a, p in pulls.items())
    else:
        each = {"one_shot": numel * 4, "two_shot": 2 * chunk, "reduce_scatter": chunk, "all_gather": numel * 4}[kind]
        assert all(v == each for v in got.values()), got


def test_graph_capture_and_replay():
    need(2)
    built()
    n = vt.cuda.device_count()
    xs = [vt.zeros(70001, device=f"cuda:{r}") for r in range(n)]
    outs = [vt.empty_like(x) for x in xs]
    for alg in ("one_shot", "two_shot", "ring"):
        g = vt.cuda.CUDAGraph()
        with fabric.graphs.capture(g, range(n)):
            fabric.all_reduce(xs, "sum", out=outs, backend="ring", algorithm=alg)
        for k in range(3):  # each replay sees the inputs of the moment: the epochs live on the device
            for r in range(n):
                xs[r].fill_(float(r + k))
            g.replay()
            for r in range(n):
                vt.cuda.synchronize(r)
            want = sum(r + k for r in range(n))
            assert all(float(o.min()) == want == float(o.max()) for o in outs), (alg, k)


def test_async_work_and_check():
    need(2)
    built()
    n = vt.cuda.device_count()
    xs = [vt.ones(1 << 16, device=f"cuda:{r}") for r in range(n)]
    w = fabric.all_reduce(xs, backend="ring", async_op=True)
    assert w.wait(timeout=10.0)
    assert float(xs[0][0]) == n


def test_a_peer_that_never_arrives_times_out_and_reset_recovers():
    need(2)
    built()
    n = vt.cuda.device_count()
    devs = list(range(n))
    xs = [vt.ones(1 << 18, device=f"cuda:{r}") for r in range(n)]
    for alg in ("one_shot", "ring"):
        ring.inject_fault(devs, n - 1)
        w = fabric.all_reduce(xs, backend="ring", algorithm=alg, async_op=True)
        with pytest.raises(fabric.FabricTimeoutError, match=r"rank \d+ \(cuda:\d+\) gave up after .* waiting for rank"):
            w.wait(timeout=30.0)  # the kernels give up after their own timeout (below), then the check raises
        assert ring.status(devs)["broken"] == 1
        with pytest.raises(fabric.FabricTimeoutError, match="broken"):
            fabric.all_reduce(xs, backend="ring", algorithm=alg)
        ring.reset(devs)
        xs = [vt.ones(1 << 18, device=f"cuda:{r}") for r in range(n)]
        fabric.all_reduce(xs, backend="ring", algorithm=alg)
        assert float(xs[0].min()) == n == float(xs[-1].max())


@pytest.fixture(autouse=True)
def _short_ring_timeout(monkeypatch):
    monkeypatch.setenv("VT_RING_TIMEOUT_MS", "2000")


def test_bad_input_is_refused_before_any_launch():
    need(2)
    built()
    n = vt.cuda.device_count()
    xs = [vt.ones(8, device=f"cuda:{r}") for r in range(n)]
    calls = ring.status(list(range(n)))["calls"]
    with pytest.raises(fabric.FabricError, match="float32, float16, bfloat16"):
        fabric.all_reduce([x.double() for x in xs], backend="ring")
    with pytest.raises(fabric.FabricError, match="all must match"):
        fabric.all_reduce([xs[0], vt.ones(9, device="cuda:1")], backend="ring")
    with pytest.raises(ValueError, match="both on cuda:0"):
        ring._ops().all_reduce([xs[0], xs[0]], [], 0, 0, 0)
    with pytest.raises(TypeError, match="another dtype"):
        ring._ops().all_reduce([xs[0], xs[1].half()], [], 0, 0, 0)
    with pytest.raises(ValueError, match="expected 8"):
        ring._ops().all_reduce(xs[:2], [vt.empty(7, device="cuda:0"), vt.empty(8, device="cuda:1")], 0, 0, 0)
    buf = [vt.ones(16, device=f"cuda:{r}") for r in range(2)]
    with pytest.raises(ValueError, match="overlaps"):
        ring._ops().all_reduce([b[:8] for b in buf], [b[4:12] for b in buf], 0, 0, 0)
    with pytest.raises(ValueError, match="op 7"):
        ring._ops().all_reduce(xs[:2], [], 7, 0, 0)
    with pytest.raises(ValueError, match="not a multiple"):
        ring._ops().reduce_scatter([vt.ones(5, device=f"cuda:{r}") for r in range(2)],
                                   [vt.ones(2, device=f"cuda:{r}") for r in range(2)], 0, 0)
    assert ring.status(list(range(n)))["calls"] == calls


def test_auto_backend_takes_the_ring_under_emulation():
    need(2)
    built()
    if not vt.cuda.is_emulated():
        pytest.skip("on real GPUs auto prefers NCCL")
    n = vt.cuda.device_count()
    xs = [vt.ones(100, device=f"cuda:{r}") for r in range(n)]
    before = ring.status(list(range(n)))["calls"]
    fabric.all_reduce(xs)
    assert ring.status(list(range(n)))["calls"] == before + 1
    assert float(xs[0][0]) == n


@pytest.mark.slow
@pytest.mark.parametrize("alg", ["two_shot", "ring", "one_shot"])
def test_all_reduce_of_a_gibibyte_per_rank(alg):
    """The largest size: 1 GiB per rank (256 MiB beyond 4 ranks, to fit one emulating GPU), checked on the
    device against values that depend on rank and index."""
    need(2)
    built()
    n = vt.cuda.device_count()
    numel = (1 << 28) if n <= 4 else (1 << 26)
    idx = [(vt.arange(numel, device=f"cuda:{r}") % 7).float() for r in range(n)]
    xs = [i + (r + 1) for r, i in enumerate(idx)]
    outs = [vt.empty_like(x) for x in xs]
    fabric.all_reduce(xs, "sum", out=outs, backend="ring", algorithm=alg)
    for r in range(n):
        want = idx[r] * n + n * (n + 1) / 2
        assert vt.equal(outs[r], want), (alg, r)
    del xs, outs, idx
