"""torch.nn.parallel.replicate: one copy of a module per device, for data parallelism in one process.

Note [Replicas share the gradient]
Replica k's parameters are differentiable copies of the module's (p.to(device k)); their backward copies each
gradient back to the module's device, where autograd accumulates them into p.grad: after backward through every
replica, p.grad holds the sum over replicas - torch's Broadcast / ReduceAddCoalesced pair, made of ordinary
copies. The replica on the module's own device uses the parameters and buffers themselves, so in-place buffer
updates there (BatchNorm's running statistics) land in the module, as torch documents for device_ids[0]. A
replica is a shallow copy of each submodule with an empty parameter table and its tensors as plain attributes
(they are not leaves), so replica.parameters() is empty, as in torch; replicas are made per forward and dropped.
"""
from collections import OrderedDict

from ..module import Module
from .scatter_gather import _cuda


def _copy_to(t, device):
    if t is None or t.device == device:
        return t
    return t.to(device) if t.requires_grad else t.detach().to(device)


def _detached_to(t, device):
    return t.detach().to(device)


def _shallow_copy(module):
    replica = object.__new__(type(module))
    object.__setattr__(replica, "__dict__", module.__dict__.copy())
    for table in ("_buffers", "_modules", "_forward_hooks", "_forward_pre_hooks"):
        object.__setattr__(replica, table, OrderedDict(module.__dict__[table]))
    object.__setattr__(replica, "_parameters", OrderedDict())
    return replica


def replicate(network, devices, detach=False):
    """A list of len(devices) replicas of `network` (Note [Replicas share the gradient]); detach=True makes the
    parameter copies leaves without a path back (torch's flag of the same name)."""
    if not isinstance(network, Module):
        raise TypeError(f"replicate: expected a vt.nn.Module, got {type(network).__name__}")
    devices = [_cuda(d) for d in devices]
    memo = [dict() for _ in devices]  # module -> its replica, per device (a module reached twice is copied once)
    copies = [dict() for _ in devices]  # id(tensor) -> its copy, per device (a tied weight is copied once)

    def copy_tensor(t, k, make):
        if t is None:
            return None
        if id(t) not in copies[k]:
            copies[k][id(t)] = make(t, devices[k])
        return copies[k][id(t)]

    def copy(module, k):
        if module in memo[k]:
            return memo[k][module]
        replica = _shallow_copy(module)
        memo[k][module] = replica
        for name, p in module._parameters.items():
            object.__setattr__(replica, name, copy_tensor(p, k, _detached_to if detach else _copy_to))
        for name, b in module._buffers.items():
            replica._buffers[name] = copy_tensor(b, k, _copy_to)
        for name, child in module._modules.items():
            replica._modules[name] = None if child is None else copy(child, k)
        return replica

    return [copy(network, k) for k in range(len(devices))]
