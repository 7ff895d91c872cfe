"""Fabric example 3: a tensor-parallel MLP (Megatron-style) over every device.

y = W2 gelu(W1 x): W1 is split by output rows (column parallel), W2 by input columns (row parallel), so each
device computes its slice of the hidden layer with no communication and a partial y; partial sums meet in one
reduce_scatter (each device gets its slice of the batch) followed by an all_gather (everyone gets all of y).
Checks y against the unsplit MLP on one device (float64, 1e-10) and that replicated outputs are bit-identical.

  VT_EMULATE_DEVICES=4 python examples/fabric_3_tensor_parallel.py
"""
import sys

import vibetensor.torch as vt
from vibetensor import fabric

F = vt.nn.functional


def main():
    n = vt.cuda.device_count() if vt.cuda.is_available() else 0
    if n < 2:
        print("skipped: needs 2 CUDA devices (or VT_EMULATE_DEVICES=2 on one GPU)")
        return 0
    d, hidden, batch = 64, 64 * n, 8 * n
    vt.manual_seed(0)
    x = vt.randn(batch, d, dtype=vt.float64)
    w1 = vt.randn(hidden, d, dtype=vt.float64) / d ** 0.5
    w2 = vt.randn(d, hidden, dtype=vt.float64) / hidden ** 0.5
    ref = F.linear(F.gelu(F.linear(x, w1)), w2)
    with fabric.Fabric() as fab:
        w1s = fabric.FabricTensor.shard(w1, 0, fab.devices)  # column parallel
        w2s = fabric.FabricTensor.shard(w2, 1, fab.devices)  # row parallel
        xs = fabric.FabricTensor.replicate(x, fab.devices)
        partial = [F.linear(F.gelu(F.linear(xs.local(k), w1s.local(k))), w2s.local(k)).contiguous() for k in range(n)]
        mine = [vt.empty(batch // n, d, dtype=vt.float64, device=f"cuda:{k}") for k in fab.devices]
        fabric.reduce_scatter(partial, mine)
        full = [vt.empty(batch, d, dtype=vt.float64, device=f"cuda:{k}") for k in fab.devices]
        fabric.all_gather(mine, full)
        err = max(float((f.cpu() - ref).abs().max()) for f in full)
        same = all(vt.equal(f.cpu(), full[0].cpu()) for f in full)
        print(fab.report())
    print(f"tensor-parallel MLP over {n} devices: max |y - y_ref| = {err:.2e}, replicas identical: {same}")
    ok = err < 1e-10 and same
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
