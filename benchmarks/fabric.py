"""Fabric benchmarks, side by side in one run, as ratios (a benchmark, never a test):

  cross_op_gpu     a + b with b on another device vs both local (64 MiB float32, CUDA-event time)   goal <= 1.1x
  cross_op_host    host cost of a tiny cross-device op vs the same op on local operands            goal <= 1.2x
  setup            opening + closing a Fabric over every device (NCCL's communicator setup: 1-3 s)
  collective_issue host time to issue one 1 KiB all_reduce over every device (p2p backend)
  backward_threads backward of a data-parallel MLP (a replica per device, losses summed on cuda:0) with a
                   thread per device vs the calling thread alone (Note [Device workers])     goal < 1.0x
  trace_overhead   a data-parallel training step (forward and backward on every device, gradient all_reduce,
                   SGD update) with the trace on vs off, alternating; _host: the host's time alone  goal <= 5%

  VT_EMULATE_DEVICES=8 python benchmarks/fabric.py [--json benchmarks/results/fabric_<card>_emulated8.json]
Results name the card and say "emulated" where the devices were.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import vibetensor.torch as vt  # noqa: E402
from vibetensor import _C, fabric  # noqa: E402
from _timing import host_time, median_time, write_results  # noqa: E402


def gpu_ms(fn, iters=20):
    fn()
    start, end = vt.cuda.Event(enable_timing=True), vt.cuda.Event(enable_timing=True)
    start.record(vt.cuda.current_stream(0))
    for _ in range(iters):
        fn()
    end.record(vt.cuda.current_stream(0))
    end.synchronize()
    return start.elapsed_time(end) / iters


WIDTH, DEPTH = 512, 8


def mlp_replica(device):
    vt.manual_seed(0)  # every replica starts from the same weights, as in data-parallel training
    return [(vt.randn(WIDTH, WIDTH) / WIDTH**0.5).to(device).requires_grad_() for _ in range(DEPTH)]


def dp_loss(replicas, batches):
    """Each device runs its replica on its batch; the per-device losses meet on cuda:0."""
    total = None
    for replica, h in zip(replicas, batches):
        for w in replica:
            h = (h @ w).relu()
        loss = h.square().mean().to("cuda:0")
        total = loss if total is None else total + loss
    return total


def sync_all():
    for d in range(vt.cuda.device_count()):
        vt.cuda.synchronize(d)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not vt.cuda.is_available() or vt.cuda.device_count() < 2:
        print("skipped: needs 2 CUDA devices (or VT_EMULATE_DEVICES=N on one GPU)")
        return 0
    n = vt.cuda.device_count()
    card = vt.cuda.get_device_properties(0).name
    label = vt.cuda.emulation_label()
    print(f"{card}, {n} devices{' [' + label + ']' if label else ''}")
    rows = []

    def row(name, ours, base, unit, goal=None):
        ratio = ours / base if base else None
        rows.append({"name": name, "value": ours, "baseline": base, "ratio": ratio, "unit": unit, "goal": goal})
        print(f"{name:18s} {ours:12.3f} {unit:6s} vs {base if base is not None else float('nan'):12.3f}"
              f"  ratio {ratio if ratio is not None else float('nan'):6.3f}{'  goal <= ' + str(goal) if goal else ''}")

    t_setup = median_time(lambda: fabric.Fabric().close(), 1, repeats=5, warmup=1)
    rows.append({"name": "setup", "value": t_setup * 1e3, "unit": "ms", "devices": n})
    print(f"{'setup':18s} {t_setup * 1e3:12.3f} ms     (open + close over {n} devices)")
    with fabric.Fabric():
        big = 16 << 20
        a, b_local, b_remote = vt.ones(big, device="cuda:0"), vt.ones(big, device="cuda:0"), vt.ones(big, device="cuda:1")
        row("cross_op_gpu", gpu_ms(lambda: a + b_remote), gpu_ms(lambda: a + b_local), "ms", 1.1)
        s0, s_local, s_remote = vt.ones(1, device="cuda:0"), vt.ones(1, device="cuda:0"), vt.ones(1, device="cuda:1")
        t_remote = median_time(lambda: s0 + s_remote, 2000, sync=sync_all)
        t_local = median_time(lambda: s0 + s_local, 2000, sync=sync_all)
        row("cross_op_host", t_remote * 1e6, t_local * 1e6, "us", 1.2)
        xs = [vt.ones(256, device=f"cuda:{d}") for d in range(n)]
        t_issue = host_time(lambda: fabric.all_reduce(xs, backend="p2p"), 100, sync_all)
        rows.append({"name": "collective_issue", "value": t_issue * 1e6, "unit": "us", "devices": n})
        print(f"{'collective_issue':18s} {t_issue * 1e6:12.3f} us     (1 KiB all_reduce, {n} devices, host only)")
        replicas = [mlp_replica(d) for d in range(n)]
        batches = [vt.randn(64, WIDTH, device=f"cuda:{d}") for d in range(n)]
        loss = dp_loss(replicas, batches)
        backward = lambda: loss.backward(retain_graph=True)  # noqa: E731 - the same graph every time
        t_threads = median_time(backward, 20, sync=sync_all)
        _C.autograd._set_device_threads(False)
        t_one = median_time(backward, 20, sync=sync_all)
        _C.autograd._set_device_threads(True)
        row("backward_threads", t_threads * 1e3, t_one * 1e3, "ms", 1.0)

        def step():
            dp_loss(replicas, batches).backward()
            for group in zip(*replicas):
                fabric.all_reduce([w.grad for w in group], op="avg")
            with vt.no_grad():
                for replica in replicas:
                    for w in replica:
                        w -= 1e-3 * w.grad
                        w.grad = None

        # Off and on alternate, so drift (clocks, allocator growth) falls on both sides alike.
        # The host side alone (host_time: the GPUs drained outside the timing) tells host cost from GPU cost.
        offs, ons, host_offs, host_ons = [], [], [], []
        # 21 rounds of 10 steps a side: with 7 rounds of 5 the ratio moved 1.00 -> 1.12 between machines of one kind.
        for _ in range(21):
            offs.append(median_time(step, 10, repeats=1, warmup=1, sync=sync_all))
            host_offs.append(host_time(step, 10, sync_all, repeats=1, warmup=0))
            fabric.trace.start()
            ons.append(median_time(step, 10, repeats=1, warmup=1, sync=sync_all))
            per_step = len(fabric.trace.events()) / 11
            host_ons.append(host_time(step, 10, sync_all, repeats=1, warmup=0))
            fabric.trace.stop()
        t_off, t_on = statistics.median(offs), statistics.median(ons)
        row("trace_overhead", t_on * 1e3, t_off * 1e3, "ms", 1.05)
        rows[-1]["events_per_step"] = per_step
        row("trace_overhead_host", statistics.median(host_ons) * 1e3, statistics.median(host_offs) * 1e3, "ms", 1.05)
        print(f"{'':18s} {per_step:12.0f} traced events per step")
    if args.json:
        write_results(args.json, rows, card=card, devices=n, emulated=label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
