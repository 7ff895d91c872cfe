"""Fabric example 4: peer-copy bandwidth sweep, cuda:0 -> cuda:1, against a device-local copy of the same size.

Times .copy_() between devices (the core's stream-ordered peer copy) with CUDA events, sizes 4 KiB .. 256 MiB,
and checks every copied buffer. Under emulation both devices are one GPU, so the "peer" copy is a local copy:
the printout says so. A benchmark, not a test: the numbers are for reading.

  VT_EMULATE_DEVICES=2 python examples/fabric_4_peer_copy_sweep.py [--max-mib 256]
"""
import argparse
import sys

import vibetensor.torch as vt


def time_copy(dst, src, iters):
    start, end = vt.cuda.Event(enable_timing=True), vt.cuda.Event(enable_timing=True)
    dst.copy_(src)
    start.record(vt.cuda.current_stream(src.device.index))
    for _ in range(iters):
        dst.copy_(src)
    end.record(vt.cuda.current_stream(src.device.index))
    end.synchronize()
    vt.cuda.synchronize(dst.device.index)
    return start.elapsed_time(end) / iters


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-mib", type=int, default=256)
    args = ap.parse_args(argv)
    if not vt.cuda.is_available() or vt.cuda.device_count() < 2:
        print("skipped: needs 2 CUDA devices (or VT_EMULATE_DEVICES=2 on one GPU)")
        return 0
    label = vt.cuda.emulation_label()
    print(f"peer copy cuda:0 -> cuda:1{'  [' + label + ': a local copy]' if label else ''}")
    print(f"{'bytes':>12} {'peer GB/s':>10} {'local GB/s':>11} {'ratio':>6}")
    size, ok = 4096, True
    while size <= args.max_mib << 20:
        n = size // 4
        src = vt.arange(n, dtype=vt.float32, device="cuda:0")
        peer, local = vt.empty(n, device="cuda:1"), vt.empty(n, device="cuda:0")
        iters = 20 if size < (16 << 20) else 5
        t_peer, t_local = time_copy(peer, src, iters), time_copy(local, src, iters)
        ok = ok and vt.equal(peer.to("cuda:0"), src)
        print(f"{size:12d} {size / t_peer / 1e6:10.1f} {size / t_local / 1e6:11.1f} {t_local / t_peer:6.2f}")
        size *= 4
    print("OK" if ok else "FAIL: a copied buffer differs")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
