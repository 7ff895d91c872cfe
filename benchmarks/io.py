"""Loading a safetensors file, vibetensor.io vs the `safetensors` package (torch), side by side in one run.

The file holds a model-like mix (bf16 and fp32 matrices, small fp32 vectors) of --size-mib MiB (default
2048 with a GPU, 256 without), written once and read warm from the page cache. Cases:
  cpu load (mmap)        load_file(path): both map the file, so this is header parsing and tensor creation
  cpu load + touch       the same, then one byte of every 4 KiB page read (page faults of the map)
  cpu load (pread)       backend="pread": every byte read into fresh memory
  cuda load              load_file(path, device="cuda:0") until the data is on the device, against the
                         pinned host->device copy rate of the same bytes (goal: >= 80% of it)
Ratios are vibetensor's time over the package's (goal <= 1.0). Run: python benchmarks/io.py [--size-mib N]
[--json out.json]; results/io_<machine>.{json,txt}.
"""
import argparse
import os
import tempfile

from _timing import median_time, write_results


def build_file(path, size_mib):
    import vibetensor.io as vio
    import vibetensor.torch as vt

    vt.manual_seed(0)
    tensors, total, i = {}, 0, 0
    target = size_mib << 20
    while total < target:
        rows = min(4096, max(1, (target - total) // (4096 * 2)))
        tensors[f"layers.{i}.weight"] = vt.randn(rows, 4096).to(vt.bfloat16)
        tensors[f"layers.{i}.bias"] = vt.randn(4096)
        tensors[f"layers.{i}.norm"] = vt.ones(4096)
        total += rows * 4096 * 2 + 2 * 4096 * 4
        i += 1
    vio.save_file(tensors, path)  # byte-identical to what the safetensors package writes
    return len(tensors), os.path.getsize(path)


def touch(tensors):
    """Reads one byte of every page of every tensor (as torch views, so both sides pay the same)."""
    import torch

    s = 0
    for t in tensors.values():
        b = (t if isinstance(t, torch.Tensor) else torch.from_dlpack(t)).reshape(-1).view(torch.uint8)
        s += int(b[::4096].sum()) if b.numel() else 0
    return s


def machine():
    import vibetensor.torch as vt

    if vt.cuda.is_available():
        import torch

        return f"{torch.cuda.get_device_name().replace(' ', '_')}_x{vt.cuda.device_count()}"
    return f"devbox_{os.cpu_count()}core"


def main():
    import torch

    import vibetensor.io as vio
    import vibetensor.torch as vt

    try:
        import safetensors.torch as st
    except ImportError:  # a machine without the package: vibetensor's numbers alone
        st = None

    cuda = vt.cuda.is_available() and torch.cuda.is_available()
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=2048 if cuda else 256)
    ap.add_argument("--json")
    ap.add_argument("--dir", default=None, help="where to write the temporary file (default: the system temp dir)")
    args = ap.parse_args()

    rows = []

    def row(name, v, t, unit="ms", extra=None):
        ratio = v / t if t else None
        rows.append({"case": name, "vt": v, "safetensors": t, "unit": unit, "ratio_vt_over_safetensors": ratio, **(extra or {})})
        note = "" if not extra else "  " + ", ".join(f"{k}={val:.3g}" for k, val in extra.items() if val is not None)
        print(f"{name:<24}{v:>12.2f}{t or float('nan'):>14.2f}  {unit:<5}{ratio or float('nan'):>8.2f}{note}")

    def ms(seconds):
        return seconds * 1e3 if seconds is not None else None

    def theirs(fn, *a, **k):
        return median_time(fn, *a, **k) if st is not None else None

    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = os.path.join(d, "model.safetensors")
        count, nbytes = build_file(path, args.size_mib)
        print(f"{count} tensors, {nbytes / 2**20:.0f} MiB on {machine()}, warm page cache")
        print(f"{'case':<24}{'vibetensor':>12}{'safetensors':>14}  {'unit':<5}{'ratio':>8}")
        tv = median_time(lambda: vio.load_file(path), 5, repeats=5, warmup=2)
        tt = theirs(lambda: st.load_file(path), 5, repeats=5, warmup=2)
        row("cpu load (mmap)", tv * 1e3, ms(tt))
        tv = median_time(lambda: touch(vio.load_file(path)), 1, repeats=5, warmup=1)
        tt = theirs(lambda: touch(st.load_file(path)), 1, repeats=5, warmup=1)
        row("cpu load + touch", tv * 1e3, ms(tt))
        tv = median_time(lambda: vio.load_file(path, backend="pread"), 1, repeats=5, warmup=1)
        tt = theirs(lambda: st.load_file(path, backend="pread"), 1, repeats=5, warmup=1)
        row("cpu load (pread)", tv * 1e3, ms(tt), extra={"vt_GBps": nbytes / tv / 1e9, "safetensors_GBps": tt and nbytes / tt / 1e9})
        if cuda:
            host = torch.empty(nbytes, dtype=torch.uint8).pin_memory()
            dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
            t_pinned = median_time(lambda: dev.copy_(host, non_blocking=True), 3, repeats=5, sync=torch.cuda.synchronize)
            del dev, host
            tv = median_time(lambda: vio.load_file(path, device="cuda:0"), 1, repeats=5, warmup=1, sync=vt.cuda.synchronize)
            tt = theirs(lambda: st.load_file(path, device="cuda:0"), 1, repeats=5, warmup=1, sync=torch.cuda.synchronize)
            rate = nbytes / tv / 1e9
            row("cuda load", tv * 1e3, ms(tt), extra={"vt_GBps": rate, "pinned_h2d_GBps": nbytes / t_pinned / 1e9,
                                                        "vt_fraction_of_pinned": t_pinned / tv})
        else:
            print("cuda load: skipped (no GPU)")
    meta = dict(machine=machine(), torch=torch.__version__, size_bytes=nbytes, tensors=count)
    out = args.json or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"io_{machine()}.json")
    write_results(out, rows, **meta)
    print(f"results: {out}")


if __name__ == "__main__":
    main()
