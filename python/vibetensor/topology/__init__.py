"""vibetensor.topology: how a machine's GPUs are connected, as data.

    doc = probe()                 # CUDA + NVML + host -> a validated topology document (dict)
    doc = load("dgx.json")        # or read one back (works without a GPU)
    rings = plan_rings(doc)       # pure functions over the document
    print(render_text(doc, rings))
"""
from .rings import plan_rings, ring_bottleneck, validate_ring  # noqa: F401
from .render import render_text  # noqa: F401
from .schema import SCHEMA, TopologyError, dumps, link_rank, load, validate  # noqa: F401


def probe(functional_check: bool = True) -> dict:
    from .discover import probe as _probe

    return _probe(functional_check)


def measure(doc: dict, size_bytes: int = 64 << 20, iters: int = 5, progress=None) -> dict:
    from .measurement import measure as _measure

    return _measure(doc, size_bytes, iters, progress)
