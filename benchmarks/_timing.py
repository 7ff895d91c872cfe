"""Shared timing for the benchmarks: warm up, then the median over several repeats of a tight loop."""
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
