"""CUDA graphs over several devices: one capture that every device's work joins.

    g = vt.cuda.CUDAGraph()
    with vt.fabric.graphs.capture(g, devices=[0, 1, 2, 3]):
        vt.fabric.all_reduce(xs, backend="ring")     # one kernel per device, all captured
    g.replay()                                        # replays on device 0's capture stream; the others join it

The capture runs on the first device's capture stream (vt.cuda.graph). Every other device gets a side stream
that waits on the capture stream before the body (so it joins the capture) and is waited on after it (so the
graph ends when every device is done); inside the body those side streams are the devices' current streams, so
any work a collective queues on "the current stream of device d" lands in the graph.
"""
from __future__ import annotations

import contextlib

_side: dict[int, object] = {}


@contextlib.contextmanager
def capture(cuda_graph, devices, pool=None):
    import vibetensor.cuda as vcuda

    devices = list(devices)
    first, rest = devices[0], devices[1:]
    previous = vcuda.current_device()
    vcuda.set_device(first)  # the capture begins on the current device's capture stream
    try:
        with vcuda.graph(cuda_graph, pool=pool):
            cap = vcuda.current_stream(first)
            side = [_side.setdefault(d, vcuda.Stream(d)) for d in rest]
            for s in side:
                s.wait_stream(cap)
            with contextlib.ExitStack() as scopes:
                for s in side:
                    scopes.enter_context(vcuda.stream(s))
                yield cuda_graph
            for s in side:
                cap.wait_stream(s)
    finally:
        vcuda.set_device(previous)
