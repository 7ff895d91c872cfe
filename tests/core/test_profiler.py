"""vt.profiler (torch.profiler's interface) and vt.autograd.profiler over the dispatcher's op recorder: which ops
and backward nodes are recorded and how often, their nesting and self times, record_function ranges (context and
decorator), input shapes, the schedule's recording cycles and on_trace_ready, the Chrome trace, threads, and the
errors (a second profile at once, unbalanced ranges, device-time sort keys)."""
import json
import threading
import warnings

import pytest
import vibetensor.torch as vt
from vibetensor._C import profiler as rec

P = vt.profiler


def by_key(prof):
    return {a.key: a for a in prof.key_averages()}


def test_ops_and_counts_and_nothing_outside():
    x, y = vt.randn(2, 3), vt.randn(2, 3)
    x.add(y)  # before: not recorded
    with P.profile() as prof:
        for _ in range(7):
            x.add(y)
        for _ in range(3):
            x.mul(y)
    x.sub(y)  # after: not recorded
    avg = by_key(prof)
    assert avg["vt::add"].count == 7 and avg["vt::mul"].count == 3 and "vt::sub" not in avg
    assert not rec.is_active()
    for a in avg.values():
        assert a.cpu_time_total > 0 and 0 <= a.self_cpu_time_total <= a.cpu_time_total + 1e-9
        assert a.cpu_time == pytest.approx(a.cpu_time_total / a.count)


def test_nesting_self_times_and_record_function():
    m = vt.nn.Sequential(vt.nn.Linear(16, 32), vt.nn.ReLU(), vt.nn.Linear(32, 4))
    x = vt.randn(8, 16)
    with P.profile() as prof:
        with P.record_function("forward"):
            out = m(x)
        out.sum().backward()
    events = prof.events()
    outer = [e for e in events if e.name == "forward"]
    assert len(outer) == 1 and outer[0].depth == 0
    kids = outer[0].cpu_children
    assert kids and all(k.cpu_parent is outer[0] and k.depth == 1 for k in kids)
    assert {"vt::_linear_bias", "vt::relu"} <= {k.name for k in kids}
    for e in events:  # a range's total is its own time plus its children's
        assert e.cpu_time_total == pytest.approx(e.self_cpu_time_total + sum(c.cpu_time_total for c in e.cpu_children),
                                                 abs=1e-6)
        for c in e.cpu_children:
            assert e.time_range[0] <= c.time_range[0] and c.time_range[1] <= e.time_range[1]
    names = {e.name for e in events}
    assert "autograd::engine::evaluate_function: ReluBackward0" in names
    assert "autograd::engine::evaluate_function: AccumulateGrad" in names


def test_input_shapes_and_grouping():
    a, b = vt.randn(2, 3), vt.randn(3)
    with P.profile(record_shapes=True) as prof:
        a.add(b)
        vt.randn(4, 5).add(vt.randn(4, 5))
    adds = [e for e in prof.events() if e.name == "vt::add"]
    assert sorted(e.input_shapes for e in adds) == [[[2, 3], [3], []], [[4, 5], [4, 5], []]]
    grouped = [g for g in prof.key_averages(group_by_input_shape=True) if g.key == "vt::add"]
    assert len(grouped) == 2 and all(g.count == 1 for g in grouped)
    table = prof.key_averages(group_by_input_shape=True).table(sort_by="cpu_time_total")
    assert "Input Shapes" in table and "[[2, 3], [3], []]" in table
    with P.profile() as plain:
        a.add(b)
    assert plain.events()[0].input_shapes == []  # shapes only when asked


def test_schedule_cycles_and_on_trace_ready():
    seen = []

    def ready(prof):
        seen.append(sorted(e.name for e in prof.events() if e.name.startswith("step")))

    sched = P.schedule(wait=1, warmup=1, active=2, repeat=2)
    with P.profile(schedule=sched, on_trace_ready=ready) as prof:
        for i in range(10):
            with P.record_function(f"step{i}"):
                vt.ones(2).sum()
            prof.step()
    assert seen == [["step2", "step3"], ["step6", "step7"]]
    act = [sched(i) for i in range(9)]
    assert act[:4] == [P.ProfilerAction.NONE, P.ProfilerAction.WARMUP, P.ProfilerAction.RECORD,
                       P.ProfilerAction.RECORD_AND_SAVE] and act[8] == P.ProfilerAction.NONE


def test_chrome_trace_and_tensorboard_handler(tmp_path):
    with P.profile(record_shapes=True, on_trace_ready=P.tensorboard_trace_handler(str(tmp_path / "tb"),
                                                                                   worker_name="w")) as prof:
        vt.randn(3, 3).matmul(vt.randn(3, 3))
    path = prof.export_chrome_trace(str(tmp_path / "t.json"))
    trace = json.load(open(path))["traceEvents"]
    assert len(trace) == len(prof.events()) and all(t["ph"] == "X" and t["ts"] >= 0 for t in trace)
    mm = [t for t in trace if t["name"] == "vt::mm"]
    assert mm and mm[0]["args"]["Input Dims"] == [[3, 3], [3, 3]]
    files = list((tmp_path / "tb").iterdir())
    assert len(files) == 1 and files[0].name.startswith("w.") and files[0].name.endswith(".pt.trace.json")


def test_threads_and_decorator():
    @P.record_function("worker_fn")
    def work():
        vt.ones(4).exp()

    with P.profile() as prof:
        t = threading.Thread(target=work)
        t.start()
        t.join()
        vt.ones(4).exp()
    exps = [e for e in prof.events() if e.name == "vt::exp"]
    assert len(exps) == 2 and len({e.thread for e in exps}) == 2
    fn = [e for e in prof.events() if e.name == "worker_fn"][0]
    assert any(c.name == "vt::exp" for c in fn.cpu_children)


def test_legacy_autograd_profiler_and_import_path():
    from vibetensor.torch.autograd.profiler import profile, record_function

    with profile(record_shapes=True) as p:
        with record_function("r"):
            vt.ones(2) * 3
    assert {"r", "vt::mul"} <= {e.name for e in p.function_events}
    assert "vt::mul" in p.table()
    with profile(enabled=False) as off:
        vt.ones(2) * 3
    assert len(off.function_events) == 0


def test_errors():
    with P.profile():
        with pytest.raises(RuntimeError, match="already recording"):
            P.profile().start()
    with pytest.raises(RuntimeError, match="no range is open"):
        rec.pop_range()
    with P.profile() as prof:
        vt.ones(2).sum()
    with pytest.raises(ValueError, match="host \\(CPU\\) times only"):
        prof.key_averages().table(sort_by="cuda_time_total")
    with pytest.raises(AttributeError, match="not one of"):
        prof.key_averages().table(sort_by="bogus")
    with pytest.warns(UserWarning, match="GPU kernel times are not collected"):
        P.profile(activities=[P.ProfilerActivity.CPU, P.ProfilerActivity.CUDA])
    with pytest.raises(TypeError, match="must be a str"):
        P.record_function(3)
    with pytest.raises(AssertionError):
        P.schedule(wait=0, warmup=0, active=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.profile()  # CPU only: no warning
