"""The ring backend's figures on one GPU emulating n devices (a benchmark, never a test), side by side with the
p2p backend in the same run:

  traffic      memory traffic of each ring algorithm (bytes read + written by all logical devices per second,
               from each algorithm's access pattern) at >= 256 MiB per rank, as a fraction of the measured
               device copy bandwidth (read + write)                                            goal >= 80%
  latency      one_shot all_reduce at <= 64 KiB per rank, replayed from a CUDA graph (and p2p's eager time)
  issue        host time to issue one eager 1 KiB all_reduce over every device                   goal <= 15 us

Under emulation all ranks share one GPU's memory system, so "bus bandwidth" is memory traffic; on real GPUs use
`vt-fabric bench allreduce` against NCCL. Each n runs in its own process (VT_EMULATE_DEVICES is read once):

  python benchmarks/ring.py --ranks 2,4,8 [--json benchmarks/results/ring_<card>_emulated.json]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def per_rank_traffic(alg, n, nbytes, in_place):
    """Bytes one rank reads + writes in one all_reduce of nbytes per rank (see plugins/ring_allreduce/src/kernels.cu)."""
    if alg == "one_shot":
        return (n + 1) * nbytes + (2 * nbytes if in_place else 0)
    if alg == "two_shot":
        return nbytes + nbytes / n + 2 * (n - 1) * nbytes / n
    return 5 * (n - 1) * nbytes / n  # ring: (n-1) steps of 2 reads + 1 write, (n-1) of 1 read + 1 write, per chunk


def measure(n, big_sizes):
    import vibetensor.torch as vt
    from vibetensor import fabric
    from _timing import host_time, median_time

    devs = list(range(n))

    def sync():
        for d in devs:
            vt.cuda.synchronize(d)

    def gpu_us(fn, iters):
        fn()
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        return (time.perf_counter() - t0) / iters * 1e6

    out = {"n": n, "card": vt.cuda.get_device_name(0), "emulated": vt.cuda.emulation_label()}
    src = vt.empty(1 << 28, device="cuda:0")  # 1 GiB
    dst = vt.empty_like(src)
    copy_us = gpu_us(lambda: dst.copy_(src), 10)
    out["copy_GBps"] = 2 * src.numel() * 4 / copy_us / 1e3
    del src, dst
    rows = []
    for nbytes in big_sizes:
        xs = [vt.ones(nbytes // 4, device=f"cuda:{d}") for d in devs]
        ys = [vt.empty_like(x) for x in xs]
        for alg in ("ring", "two_shot", "one_shot"):
            us = gpu_us(lambda: fabric.all_reduce(xs, out=ys, backend="ring", algorithm=alg), 5)
            traffic = n * per_rank_traffic(alg, n, nbytes, False) / us / 1e3
            rows.append({"bytes": nbytes, "backend": f"ring/{alg}", "time_us": us, "traffic_GBps": traffic,
                         "of_copy": traffic / out["copy_GBps"], "busbw_GBps": nbytes / us / 1e3 * 2 * (n - 1) / n})
        us = gpu_us(lambda: fabric.all_reduce(xs, out=ys, backend="p2p", algorithm="two_shot"), 3)
        rows.append({"bytes": nbytes, "backend": "p2p/two_shot", "time_us": us,
                     "busbw_GBps": nbytes / us / 1e3 * 2 * (n - 1) / n})
        del xs, ys
    out["traffic"] = rows
    lat = []
    for nbytes in (1 << 10, 8 << 10, 64 << 10):
        xs = [vt.ones(nbytes // 4, device=f"cuda:{d}") for d in devs]
        ys = [vt.empty_like(x) for x in xs]
        g, iters = vt.cuda.CUDAGraph(), 100
        with fabric.graphs.capture(g, devs):
            for _ in range(iters):
                fabric.all_reduce(xs, out=ys, backend="ring", algorithm="one_shot")
        replay_us = gpu_us(g.replay, 5) / iters
        eager = {b: gpu_us(lambda: fabric.all_reduce(xs, out=ys, backend=b, algorithm="one_shot"), 200)
                 for b in ("ring", "p2p")}
        lat.append({"bytes": nbytes, "ring_one_shot_graph_us": replay_us, "ring_one_shot_eager_us": eager["ring"],
                    "p2p_one_shot_eager_us": eager["p2p"]})
    out["latency"] = lat
    xs = [vt.ones(256, device=f"cuda:{d}") for d in devs]
    # Host time only (host_time drains the GPUs outside the timed loops): with sync inside, a 1 KiB all_reduce's
    # GPU time under emulation (eight co-resident kernels meeting at barriers) would be charged as issue time.
    out["issue_us"] = {b: host_time(lambda: fabric.all_reduce(xs, backend=b), 100, sync) * 1e6
                       for b in ("ring", "p2p")}
    ops = fabric.ring._ops()  # where the ring's issue time goes: the plugin op alone, and an op that does nothing
    out["issue_us"]["plugin_op"] = host_time(lambda: ops.all_reduce(xs, [], 0, 1, 0), 100, sync) * 1e6
    out["issue_us"]["empty_plugin_op"] = median_time(lambda: ops.check(devs), 200) * 1e6
    # The floor of any design with one kernel per rank: n launches of an empty kernel, one per device's stream
    out["issue_us"]["launch_floor"] = host_time(lambda: [vt.cuda._sleep(0, d) for d in devs], 100, sync) * 1e6
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", default="2,4,8")
    ap.add_argument("--sizes", default="256M,1G", help="per-rank sizes of the traffic rows")
    ap.add_argument("--json")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    from vibetensor.cli.bench import parse_size

    sizes = [parse_size(s) for s in a.sizes.split(",")]
    if a.child:
        print(json.dumps(measure(a.child, sizes)))
        return
    results = []
    for n in (int(k) for k in a.ranks.split(",")):
        env = dict(os.environ, VT_EMULATE_DEVICES=str(n))
        p = subprocess.run([sys.executable, __file__, "--child", str(n), "--sizes", a.sizes], env=env,
                           capture_output=True, text=True)
        if p.returncode:
            print(p.stdout, p.stderr, file=sys.stderr)
            raise SystemExit(f"n={n} failed")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"# n={n} on {r['card']} ({r['emulated']}); device copy {r['copy_GBps']:.0f} GB/s (read + write)")
        for row in r["traffic"]:
            extra = (f"traffic {row['traffic_GBps']:7.0f} GB/s = {row['of_copy']:.0%} of copy"
                     if "traffic_GBps" in row else "")
            print(f"  {row['bytes'] >> 20:5d} MiB {row['backend']:>14} {row['time_us']:10.1f} us  "
                  f"busbw {row['busbw_GBps']:7.1f} GB/s  {extra}")
        for row in r["latency"]:
            print(f"  {row['bytes'] >> 10:5d} KiB one_shot: graph {row['ring_one_shot_graph_us']:6.1f} us, eager ring "
                  f"{row['ring_one_shot_eager_us']:6.1f} us, eager p2p {row['p2p_one_shot_eager_us']:6.1f} us")
        i = r["issue_us"]
        print(f"  issue 1 KiB eager: ring {i['ring']:.1f} us (plugin op alone {i['plugin_op']:.1f} us, an empty "
              f"plugin op {i['empty_plugin_op']:.1f} us, {r['n']} empty launches {i['launch_floor']:.1f} us), "
              f"p2p {i['p2p']:.1f} us")
    if a.json:
        from _timing import write_results

        write_results(a.json, results, benchmark="ring", note="emulated devices: traffic is one GPU's memory traffic")


if __name__ == "__main__":
    main()
