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

--sweep measures only the cuda load, over the staging knobs the loader reads at every load (VT_IO_READ pread
or map, VT_IO_THREADS, VT_IO_CHUNK_MIB), each as a fraction of the pinned rate: where a machine's page cache,
host memory and copy engine saturate, which sets the defaults (results/io_sweep_<machine>.json).
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


def pinned_rate(torch, nbytes):
    host = torch.empty(nbytes, dtype=torch.uint8).pin_memory()
    dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    t = median_time(lambda: dev.copy_(host, non_blocking=True), 3, repeats=5, sync=torch.cuda.synchronize)
    return nbytes / t / 1e9


def sweep(args, vio, vt, torch):
    import itertools

    rows = []
    knobs = ("VT_IO_READ", "VT_IO_THREADS", "VT_IO_CHUNK_MIB")
    saved = {k: os.environ.get(k) for k in knobs}
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = os.path.join(d, "model.safetensors")
        count, nbytes = build_file(path, args.size_mib)
        pinned = pinned_rate(torch, nbytes)
        print(f"{count} tensors, {nbytes / 2**20:.0f} MiB on {machine()}; pinned host->device {pinned:.1f} GB/s")
        print(f"{'read':<7}{'threads':>8}{'chunk MiB':>10}{'GB/s':>8}{'of pinned':>11}")
        try:
            for read, threads, chunk in itertools.product(("pread", "map"), (4, 8, 12, 16), (2, 8, 32)):
                os.environ.update(VT_IO_READ=read, VT_IO_THREADS=str(threads), VT_IO_CHUNK_MIB=str(chunk))
                t = median_time(lambda: vio.load_file(path, device="cuda:0"), 1, repeats=5, warmup=1, sync=vt.cuda.synchronize)
                rate = nbytes / t / 1e9
                rows.append({"read": read, "threads": threads, "chunk_mib": chunk, "GBps": rate, "fraction_of_pinned": rate / pinned})
                print(f"{read:<7}{threads:>8}{chunk:>10}{rate:>8.1f}{rate / pinned:>11.2f}", flush=True)
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    best = max(rows, key=lambda r: r["GBps"])
    print(f"best: {best}")
    out = args.json or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"io_sweep_{machine()}.json")
    write_results(out, rows, machine=machine(), torch=torch.__version__, size_bytes=nbytes, pinned_GBps=pinned)
    print(f"results: {out}")


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
    ap.add_argument("--sweep", action="store_true", help="cuda load over the staging knobs (needs a GPU)")
    args = ap.parse_args()
    if args.sweep:
        return sweep(args, vio, vt, torch)

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
            t_pinned = nbytes / pinned_rate(torch, nbytes) / 1e9
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
