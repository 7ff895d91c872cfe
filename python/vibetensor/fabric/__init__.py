"""vibetensor.fabric: single-process multi-GPU work - peer access, cross-device ops, sharded tensors,
collectives, counters and traces - on real GPUs or on emulated ones (VT_EMULATE_DEVICES=N).

    import vibetensor.torch as vt
    from vibetensor import fabric

    with fabric.Fabric() as fab:                    # routes every device pair (native / p2p / staged + reason)
        xs = [vt.full((4,), float(k), device=f"cuda:{k}") for k in fab.devices]
        fabric.all_reduce(xs)                       # in place, stream-ordered, no host wait
        y = xs[0] + xs[1]                           # a cross-device op: runs on cuda:0, reads cuda:1's memory
        print(fab.report(), fab.stats()["total"])

The design (routes, Notes, the emulation contract, how to write an experiment) is in docs/fabric.md.
"""
from . import graphs, ring, trace  # noqa: F401
from ._fabric import MODES, Fabric, fabric_for, open_fabrics  # noqa: F401
from .collectives import BACKENDS, OPS, Work, all_gather, all_reduce, broadcast, reduce, reduce_scatter  # noqa: F401
from .errors import FabricError, FabricTimeoutError  # noqa: F401
from .functional import all_gather_autograd, all_reduce_autograd, reduce_scatter_autograd  # noqa: F401
from .schedules import ALGORITHMS  # noqa: F401
from .tensor import FabricTensor, Replicate, Shard  # noqa: F401


def reason_names() -> list[str]:
    """The fixed set of reasons a pair is staged."""
    from .. import _C

    return list(_C.fabric.reason_names())


def stats() -> dict:
    """Counters over every pair and the total (Note [Counter invariants])."""
    from .. import _C

    return {"total": _C.fabric.total_counters()}


def reset_stats() -> None:
    from .. import _C

    _C.fabric.reset_counters()
