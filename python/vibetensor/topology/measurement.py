"""`--measure`: bandwidth and latency matrices between the GPUs, plus host and local copies, attached to the
topology document under `measurements`. Conventions (stated in the document too): GB/s = 1e9 bytes copied per
second; bidirectional = both directions at once, summed; "ce" = copy engines, "sm" = a copy kernel on the
source GPU storing into the peer; latency = microseconds per dependent load from the source GPU into the
peer's memory. Medians of several timed repetitions after a warm-up."""
from __future__ import annotations

from .. import _C

CONVENTIONS = ("GB/s = 1e9 bytes copied per second; bidir = both directions at once, summed; ce = copy engines; "
               "sm = kernel on src storing to dst; latency = us per dependent load src->dst; medians")


def measure(doc: dict, size_bytes: int = 64 << 20, iters: int = 5, progress=None) -> dict:
    """Returns doc with `measurements` filled in; `progress(done, total, label)` is called between steps."""
    t = _C.topology
    n = len(doc["devices"])
    pairs = [(s, d) for s in range(n) for d in range(n) if s != d]
    usable = {(lk["src"], lk["dst"]) for lk in doc["links"]
              if lk["p2p_access"] and not str(lk["p2p_functional"]).startswith("failed")}
    steps = 3 * n + 5 * len(pairs)
    done = 0

    def tick(label):
        nonlocal done
        done += 1
        if progress:
            progress(done, steps, label)

    def matrix(fn, label):
        mat = [[None] * n for _ in range(n)]
        for s, d in pairs:
            # SM copies and latency need a peer mapping; copy engines stage through the host without one.
            if label.startswith("ce") or (s, d) in usable:
                mat[s][d] = fn(s, d)
            tick(f"{label} GPU{s}->GPU{d}")
        return mat

    m = {"conventions": CONVENTIONS, "size_bytes": size_bytes, "iters": iters}
    m["host_to_device_gbps"], m["device_to_host_gbps"], m["device_local_gbps"] = [], [], []
    for i in range(n):
        m["host_to_device_gbps"].append(t.host_to_device_gbps(i, size_bytes, iters))
        tick(f"H2D GPU{i}")
        m["device_to_host_gbps"].append(t.device_to_host_gbps(i, size_bytes, iters))
        tick(f"D2H GPU{i}")
        m["device_local_gbps"].append(t.device_local_copy_gbps(i, size_bytes, iters))
        tick(f"D2D GPU{i}")
    if n > 1:
        m["ce_unidir_gbps"] = matrix(lambda s, d: t.ce_copy_gbps(s, d, size_bytes, iters, False), "ce unidir")
        m["ce_bidir_gbps"] = matrix(lambda s, d: t.ce_copy_gbps(s, d, size_bytes, iters, True), "ce bidir")
        m["sm_unidir_gbps"] = matrix(lambda s, d: t.sm_copy_gbps(s, d, size_bytes, iters, False), "sm unidir")
        m["sm_bidir_gbps"] = matrix(lambda s, d: t.sm_copy_gbps(s, d, size_bytes, iters, True), "sm bidir")
        m["latency_us"] = matrix(lambda s, d: t.peer_latency_us(s, d, 20000), "latency")
    out = dict(doc)
    out["measurements"] = m
    return out
