"""CUDA memory and copies, vibetensor vs PyTorch on the same GPU in one run, as ratios (vt / torch).

  alloc+free 1 MiB from Python (time; goal <= 0.5x), the same with allocation history recording Python stacks
  (vt.cuda.memory._record_memory_history vs torch's), pinned host alloc+free (cached), host->device and
  device->host copies (pageable; pinned with non_blocking=True, both sides pinned; bandwidth; goal >= 0.95x),
  device->device copy (bandwidth).
Run: python benchmarks/cuda_memory.py [--json out.json]. Needs a GPU and torch with CUDA."""
import argparse
import json

from _timing import median_time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    import torch

    import vibetensor.torch as vt

    rows = []

    def row(name, v, t, unit, higher_is_better):
        ratio = v / t
        rows.append({"case": name, "vt": v, "torch": t, "unit": unit, "ratio_vt_over_torch": ratio})
        print(f"{name:<28}{v:>12.3f}{t:>12.3f}  {unit:<6}{ratio:>8.2f}{'  (higher is better)' if higher_is_better else ''}")

    print(f"{'case':<28}{'vibetensor':>12}{'torch':>12}  {'unit':<6}{'ratio':>8}")
    n = 1 << 18  # 1 MiB of float32
    tv = median_time(lambda: vt.empty(n, device="cuda"), 20000)
    tt = median_time(lambda: torch.empty(n, device="cuda"), 20000)
    row("alloc+free 1 MiB", tv * 1e6, tt * 1e6, "us", False)
    vt.cuda.memory._record_memory_history(max_entries=100000)
    torch.cuda.memory._record_memory_history(max_entries=100000, stacks="python")
    tv = median_time(lambda: vt.empty(n, device="cuda"), 5000)
    tt = median_time(lambda: torch.empty(n, device="cuda"), 5000)
    vt.cuda.memory._record_memory_history(enabled=None)
    torch.cuda.memory._record_memory_history(enabled=None)
    row("alloc+free 1 MiB, history", tv * 1e6, tt * 1e6, "us", False)
    tv = median_time(lambda: vt.empty(n, pin_memory=True), 20000)
    tt = median_time(lambda: torch.empty(n, pin_memory=True), 20000)
    row("pinned alloc+free 1 MiB", tv * 1e6, tt * 1e6, "us", False)

    size = 256 << 20
    nel = size // 4
    host_t = torch.ones(nel).pin_memory()
    dev_t = torch.empty(nel, device="cuda")
    host_v = vt.ones(nel)
    host_v_pinned = vt.ones(nel, pin_memory=True)
    host_t_pageable = torch.ones(nel)
    dev_v = vt.empty(nel, device="cuda")
    sync_t = torch.cuda.synchronize
    sync_v = vt.cuda.synchronize
    gb = size / 1e9
    t_h2d_v = median_time(lambda: dev_v.copy_(host_v), 10, sync=sync_v)
    t_h2d_t = median_time(lambda: dev_t.copy_(host_t_pageable), 10, sync=sync_t)
    row("H2D 256 MiB (pageable)", gb / t_h2d_v, gb / t_h2d_t, "GB/s", True)
    t_h2d_vp = median_time(lambda: dev_v.copy_(host_v_pinned, non_blocking=True), 10, sync=sync_v)
    t_h2d_tp = median_time(lambda: dev_t.copy_(host_t, non_blocking=True), 10, sync=sync_t)
    row("H2D 256 MiB (pinned, async)", gb / t_h2d_vp, gb / t_h2d_tp, "GB/s", True)
    t_d2h_v = median_time(lambda: host_v.copy_(dev_v), 10, sync=sync_v)
    t_d2h_t = median_time(lambda: host_t_pageable.copy_(dev_t), 10, sync=sync_t)
    row("D2H 256 MiB (pageable)", gb / t_d2h_v, gb / t_d2h_t, "GB/s", True)
    t_d2h_vp = median_time(lambda: host_v_pinned.copy_(dev_v, non_blocking=True), 10, sync=sync_v)
    t_d2h_tp = median_time(lambda: host_t.copy_(dev_t, non_blocking=True), 10, sync=sync_t)
    row("D2H 256 MiB (pinned, async)", gb / t_d2h_vp, gb / t_d2h_tp, "GB/s", True)
    dev_v2 = vt.empty(nel, device="cuda")
    dev_t2 = torch.empty(nel, device="cuda")
    t_d2d_v = median_time(lambda: dev_v2.copy_(dev_v), 20, sync=sync_v)
    t_d2d_t = median_time(lambda: dev_t2.copy_(dev_t), 20, sync=sync_t)
    row("D2D 256 MiB (bytes copied)", gb / t_d2d_v, gb / t_d2d_t, "GB/s", True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
