"""vt.profiler: torch.profiler's interface over vibetensor's op recorder (vt/core/profiler.h).

    with vt.profiler.profile(record_shapes=True) as prof:
        with vt.profiler.record_function("forward"):
            loss = model(x).sum()
        loss.backward()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")          # chrome://tracing or ui.perfetto.dev

What is recorded: every dispatcher op called from Python or from another op (a composite's pieces nest under it),
every backward node the engine evaluates ("autograd::engine::evaluate_function: MulBackward0", as torch names
them) and every record_function range, each with its thread, its nesting and, with record_shapes, its tensor
arguments' sizes. Times are host (CPU) times: for a CUDA op that is the time to issue its kernels, not their run
time. GPU kernel times are not collected (ProfilerActivity.CUDA is accepted with a warning; sorting by a device
time raises): vt.fabric.trace records device times with CUDA events, and Nsight Systems sees every kernel.
Python-level functions that are not ops (F.linear's wrapper, a module's forward) show as the ops they call.

schedule(wait, warmup, active, repeat, skip_first) and profile.step() drive recording cycles as torch's do;
on_trace_ready receives the profile at the end of each active cycle (tensorboard_trace_handler writes each
cycle's trace as <dir>/<worker>.<time>.pt.trace.json)."""
from __future__ import annotations

import enum
import functools
import json
import os
import socket
import time
import warnings

from .._C import profiler as _rec


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1
    XPU = 2
    MTIA = 3
    PrivateUse1 = 4


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait, warmup, active, repeat=0, skip_first=0, skip_first_wait=0):
    """torch.profiler.schedule: after skip_first steps, cycles of `wait` idle, `warmup` and `active` recorded
    steps (the last of which saves), `repeat` times (0: forever)."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise AssertionError("Invalid profiler schedule arguments")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results")

    def action(step):
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        cycle = wait + warmup + active
        if skip_first_wait and step < cycle - wait:  # the first cycle without its wait
            step += wait
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        mod = step % cycle
        if mod < wait:
            return ProfilerAction.NONE
        if mod < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if mod < cycle - 1 else ProfilerAction.RECORD_AND_SAVE
    return action


class FunctionEvent:
    """One recorded range. Times in microseconds."""

    def __init__(self, id, name, start_ns, end_ns, thread, depth, shapes):
        self.id, self.name, self.key, self.thread, self.depth = id, name, name, thread, depth
        self.input_shapes = [list(s) for s in shapes]
        self.time_range = (start_ns / 1e3, end_ns / 1e3)
        self.cpu_time_total = (end_ns - start_ns) / 1e3
        self.self_cpu_time_total = self.cpu_time_total  # minus the children, once they are known
        self.cpu_parent = None
        self.cpu_children = []

    def __repr__(self):
        return (f"<FunctionEvent id={self.id} name={self.name} cpu_time_total={self.cpu_time_total:.3f}us "
                f"self_cpu_time_total={self.self_cpu_time_total:.3f}us thread={self.thread} depth={self.depth}>")


class FunctionEventAvg:
    """The events of one key (name, and input shapes when grouped by them), summed."""

    def __init__(self, key, input_shapes=None):
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0

    def add(self, e):
        self.count += 1
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total
        return self

    @property
    def cpu_time(self):
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def self_cpu_time(self):
        return self.self_cpu_time_total / self.count if self.count else 0.0

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total:.3f}us "
                f"cpu_time={self.cpu_time_total:.3f}us count={self.count}>")


_SORT_KEYS = {"cpu_time_total", "self_cpu_time_total", "cpu_time", "self_cpu_time", "count"}
_DEVICE_KEYS = {"cuda_time_total", "self_cuda_time_total", "cuda_time", "device_time_total",
                "self_device_time_total", "device_time", "self_device_time", "cuda_memory_usage",
                "self_cuda_memory_usage", "device_memory_usage", "self_device_memory_usage"}


def _fmt_us(us):
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """torch's EventList: a list of events (or of averages) with table() and export_chrome_trace()."""

    def table(self, sort_by=None, row_limit=100, max_name_column_width=55, max_shapes_column_width=80, header=None,
              top_level_events_only=False):
        if sort_by in _DEVICE_KEYS:
            raise ValueError(f"sort_by={sort_by!r}: vibetensor's profiler records host (CPU) times only; device "
                             "times come from vt.fabric.trace or Nsight Systems")
        if sort_by is not None and sort_by not in _SORT_KEYS:
            raise AttributeError(f"sort_by={sort_by!r} is not one of {sorted(_SORT_KEYS)}")
        rows = [e for e in self if not top_level_events_only or getattr(e, "depth", 0) == 0]
        if sort_by is not None:
            rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
        total_self = sum(e.self_cpu_time_total for e in self) or 1.0
        rows = rows[:row_limit] if row_limit and row_limit > 0 else rows
        shapes = any(getattr(e, "input_shapes", None) for e in rows)
        width = min(max_name_column_width, max([len(e.key) for e in rows] + [4]))
        shape_width = min(max_shapes_column_width, max([len(str(e.input_shapes)) for e in rows] + [12]))
        heads = [("Name", width), ("Self CPU %", 10), ("Self CPU", 10), ("CPU total %", 11), ("CPU total", 10),
                 ("CPU time avg", 12), ("# of Calls", 10)] + ([("Input Shapes", shape_width)] if shapes else [])

        def line_of(cells):  # the name left-aligned, the rest right-aligned, two spaces apart
            return "  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, (_, w)) in enumerate(zip(cells, heads)))
        rule = "-" * len(line_of([h for h, _ in heads]))
        out = ([header] if header else []) + [rule, line_of([h for h, _ in heads]), rule]
        for e in rows:
            count = getattr(e, "count", 1)
            name = e.key if len(e.key) <= width else e.key[:width - 3] + "..."
            cells = [name, f"{100 * e.self_cpu_time_total / total_self:.2f}%", _fmt_us(e.self_cpu_time_total),
                     f"{100 * e.cpu_time_total / total_self:.2f}%", _fmt_us(e.cpu_time_total),
                     _fmt_us(e.cpu_time_total / max(count, 1)), str(count)]
            if shapes:
                cells.append(str(e.input_shapes or [])[:shape_width])
            out.append(line_of(cells))
        out += [rule, f"Self CPU time total: {_fmt_us(sum(e.self_cpu_time_total for e in self))}"]
        return "\n".join(out) + "\n"

    def total_average(self):
        total = FunctionEventAvg("Total")
        for e in self:
            total.count += getattr(e, "count", 1)
            total.cpu_time_total += e.cpu_time_total
            total.self_cpu_time_total += e.self_cpu_time_total
        return total


def _link(events):
    """Parents, children and self times from each thread's nesting (depth d's parent is the latest range at
    depth d - 1 that began before it on the same thread)."""
    latest = {}
    for e in sorted(events, key=lambda e: (e.thread, e.time_range[0], e.depth)):
        latest[(e.thread, e.depth)] = e
        parent = latest.get((e.thread, e.depth - 1)) if e.depth > 0 else None
        if parent is not None and parent.time_range[0] <= e.time_range[0] <= parent.time_range[1]:
            e.cpu_parent = parent
            parent.cpu_children.append(e)
            parent.self_cpu_time_total -= e.cpu_time_total
    return events


def _collect():
    raw = sorted(_rec.stop(), key=lambda r: r[1])
    return EventList(_link([FunctionEvent(i, *r) for i, r in enumerate(raw)]))


class profile:
    """torch.profiler.profile over vibetensor's op recorder (module docstring). profile_memory, with_stack,
    with_flops, with_modules and experimental_config are accepted and record nothing more."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes=False,
                 profile_memory=False, with_stack=False, with_flops=False, with_modules=False,
                 experimental_config=None, execution_trace_observer=None, acc_events=False, use_cuda=None,
                 custom_trace_id_callback=None):
        acts = set(activities) if activities is not None else {ProfilerActivity.CPU}
        if use_cuda:
            acts.add(ProfilerActivity.CUDA)
        if any(a != ProfilerActivity.CPU for a in acts):
            warnings.warn("vibetensor's profiler records host (CPU) times of ops only; GPU kernel times are not "
                          "collected (use vt.fabric.trace or Nsight Systems for them)", stacklevel=2)
        self.activities, self.schedule, self.on_trace_ready = acts, schedule, on_trace_ready
        self.record_shapes, self.acc_events = bool(record_shapes), bool(acc_events)
        self.step_num = 0
        self._recording = False
        self._events = EventList()
        self._action = ProfilerAction.RECORD

    # -- recording
    def _start_recording(self):
        if not self._recording:
            _rec.start(self.record_shapes)
            self._recording = True

    def _stop_recording(self):
        if self._recording:
            self._recording = False
            got = _collect()
            self._events = EventList(self._events + got) if self.acc_events else got

    def start(self):
        self.step_num = 0
        self._action = self.schedule(0) if self.schedule else ProfilerAction.RECORD
        if self._action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            self._start_recording()
        return self

    def stop(self):
        was = self._recording
        self._stop_recording()
        if was and self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def step(self):
        """Ends step step_num: the schedule's next action starts or ends a recording cycle."""
        prev = self._action
        self.step_num += 1
        self._action = self.schedule(self.step_num) if self.schedule else ProfilerAction.RECORD
        if prev == ProfilerAction.RECORD_AND_SAVE:
            self.stop()
        if self._action in (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE):
            self._start_recording()
        elif self._recording:  # a schedule that left its active steps without a save
            self._stop_recording()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- results
    def events(self):
        return self._events

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0, group_by_overload_name=False):
        groups = {}
        for e in self._events:
            key = (e.key, str(e.input_shapes)) if group_by_input_shape else e.key
            if key not in groups:
                groups[key] = FunctionEventAvg(e.key, e.input_shapes if group_by_input_shape else None)
            groups[key].add(e)
        return EventList(groups.values())

    def table(self, *args, **kwargs):
        return self.key_averages().table(*args, **kwargs)

    def export_chrome_trace(self, path):
        """Trace Event JSON: one complete ("X") event per range, microseconds from the first range."""
        t0 = min((e.time_range[0] for e in self._events), default=0.0)
        pid = os.getpid()
        trace = [{"name": e.name, "ph": "X", "cat": "cpu_op", "ts": e.time_range[0] - t0,
                  "dur": e.cpu_time_total, "pid": pid, "tid": e.thread,
                  "args": {"Input Dims": e.input_shapes} if e.input_shapes else {}} for e in self._events]
        with open(path, "w") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)
        return path


def tensorboard_trace_handler(dir_name, worker_name=None, use_gzip=False):
    """An on_trace_ready callback writing each cycle's trace to <dir_name>/<worker>.<time_ns>.pt.trace.json(.gz)."""
    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        path = os.path.join(dir_name, f"{worker}.{time.time_ns()}.pt.trace.json")
        prof.export_chrome_trace(path)
        if use_gzip:
            import gzip
            import shutil

            with open(path, "rb") as src, gzip.open(path + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.remove(path)
    return handler


class record_function:
    """A named range around a block (or, as a decorator, around each call) in the profile."""

    def __init__(self, name, args=None):
        if not isinstance(name, str):
            raise TypeError(f"record_function: name must be a str, got {type(name).__name__}")
        self.name, self.args = name, args

    def __enter__(self):
        _rec.push_range(self.name)
        return self

    def __exit__(self, *exc):
        _rec.pop_range()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*a, **k):
            with record_function(self.name, self.args):
                return fn(*a, **k)
        return wrapped
