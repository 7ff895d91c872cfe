"""How long `vt-fabric topo` (no --measure) takes: goal < 0.5 s after the first import.

Reports (1) the in-process time of probe + render after `import vibetensor.topology` (the figure the goal
names; the first probe includes CUDA and NVML initialisation) and (2) the end-to-end time of the command
in a fresh process, import included. Run: python benchmarks/topo_time.py [--json out.json]."""
import argparse
import json
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    import vibetensor.topology as topology
    from vibetensor.topology import render

    t_import = time.perf_counter() - t0
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        doc = topology.probe()
        render.render_text(doc, topology.plan_rings(doc))
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vibetensor.cli.fabric", "topo"], check=True, capture_output=True)
    t_cmd = time.perf_counter() - t0
    res = {"devices": len(doc["devices"]), "import_s": t_import, "first_probe_s": runs[0],
           "median_probe_s": statistics.median(runs), "command_end_to_end_s": t_cmd}
    for k, v in res.items():
        print(f"{k:<22} {v:.3f}" if isinstance(v, float) else f"{k:<22} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
