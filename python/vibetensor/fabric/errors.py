"""The Fabric's exception types. FabricTimeoutError is raised by the core (a bounded wait that expired), so it
is the one object the C++ layer's Timeout errors translate to."""
from .. import _C

FabricTimeoutError = _C.FabricTimeoutError


class FabricError(RuntimeError):
    """A Fabric cannot do what was asked: a pair strict mode cannot route over P2P, a closed Fabric, devices
    outside the Fabric. The message names the devices and the reason."""
