"""Where the host time of one eager 1 KiB all_reduce over every (emulated) device goes, piece by piece: the
argument checks, the Fabric lookup, the backend choice, the plugin op (its n kernel launches), the traffic
counters, against n empty launches from Python. Host time only (benchmarks/_timing.host_time: the device is
drained outside each timed loop). A benchmark, never a test.

  VT_EMULATE_DEVICES=8 python benchmarks/collective_front.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import host_time  # noqa: E402


def main():
    import vibetensor.cuda as vcuda
    import vibetensor.fabric as fabric
    import vibetensor.torch as vt
    from vibetensor.fabric import collectives as C
    from vibetensor.fabric import ring as R

    n = vcuda.device_count()
    if n < 2 or not R.available():
        print(f"needs 2 or more devices (VT_EMULATE_DEVICES=N on one GPU) and the ring plugin; have {n}")
        return
    devs = list(range(n))
    xs = [vt.ones(256, device=f"cuda:{d}") for d in devs]

    def sync():
        for d in devs:
            vcuda.synchronize(d)

    fabric.all_reduce(xs, backend="ring")
    sync()
    f, ops = C.fabric_for(devs), R._ops()
    plan = C._plan(C._schedule("all_reduce", "one_shot", n, True, None))
    rows = {
        "all_reduce(backend='ring')": lambda: fabric.all_reduce(xs, backend="ring"),
        "all_reduce (auto)": lambda: fabric.all_reduce(xs),
        "  argument checks": lambda: C._validate("all_reduce", xs, None, "sum", (1, 1)),
        "  Fabric lookup": lambda: C.fabric_for(devs)._check_open(),
        "  backend choice (auto)": lambda: C._pick_backend("auto", "all_reduce", devs, "float32", "sum", f),
        "  ring.run": lambda: R.run("all_reduce", xs, None, "sum", "one_shot", None, True),
        "    the plugin op": lambda: ops.all_reduce(xs, [], 0, 1, 0),
        "    an empty plugin op": lambda: ops.check(devs),
        "  traffic counters": lambda: plan.count_traffic(256, 256, 4, devs),
        f"{n} empty launches from Python": lambda: [vcuda._sleep(0, d) for d in devs],
    }
    label = vcuda.emulation_label() or "real devices"
    print(f"host time of a 1 KiB all_reduce over {n} devices ({vcuda.get_device_properties(0).name}, {label})")
    for name, fn in rows.items():
        print(f"{name:<34}{host_time(fn, 100, sync) * 1e6:8.2f} us")


if __name__ == "__main__":
    main()
