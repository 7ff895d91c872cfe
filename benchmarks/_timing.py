"""Shared pieces of the benchmarks: warm up, then the median over several repeats of a tight loop; the results
file every benchmark writes with --json."""
import json
import statistics
import time


def median_time(fn, iters, repeats=7, warmup=None, sync=None):
    """Seconds per call of fn(); `sync` (e.g. a device synchronize) closes each timed loop."""
    for _ in range(warmup if warmup is not None else max(3, iters // 10)):
        fn()
    if sync:
        sync()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        if sync:
            sync()
        samples.append((time.perf_counter() - t0) / iters)
    return statistics.median(samples)


def paired_times(fa, fb, iters, rounds=5, sync_a=None, sync_b=None):
    """(seconds per call of fa, of fb): medians over `rounds` that each time fa, then fb, in short loops, so a
    drift of the GPU's clocks or the host's load during the run reaches both sides alike."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(median_time(fa, iters, repeats=1, warmup=2, sync=sync_a))
        tb.append(median_time(fb, iters, repeats=1, warmup=2, sync=sync_b))
    return statistics.median(ta), statistics.median(tb)


def host_time(fn, iters, sync, repeats=7, warmup=None):
    """Seconds of host time per call of fn(): the device is drained (`sync`) before each timed loop and after
    it, outside the timing, so a call that queues GPU work slower than the host issues it is not charged the
    GPU's time (keep iters below the launch queue's depth, about a thousand launches per stream)."""
    for _ in range(warmup if warmup is not None else max(3, iters // 10)):
        fn()
    samples = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        samples.append((time.perf_counter() - t0) / iters)
    sync()
    return statistics.median(samples)


def write_results(path, rows, **meta):
    """The --json file: run metadata (device, torch version, ...) and the table's rows."""
    with open(path, "w") as f:
        json.dump({**meta, "rows": rows}, f, indent=2)
