"""torch.nn.parallel's scatter and gather: split a batch across devices and join per-device outputs on one, both
differentiable (each piece is a copy whose backward copies the gradient back), so a loss on the output device
sends gradients to every replica's inputs.

scatter walks tensors inside tuples, lists and dicts: a tensor is cut into equal chunks along `dim` (the last
chunk smaller, and fewer chunks than devices when the batch is smaller, as Tensor.chunk gives), chunk i copied
to device i; anything else is shared by reference. gather does the inverse for outputs: tensors are copied to
the output device and concatenated along `dim` (0-dim ones become a vector, with torch's warning), dicts and
sequences gathered key by key, None stays None.
"""
import warnings

from ...._C import core as _core


def _to(t, device):
    return t if t.device == device else t.to(device)


def _cuda(d):
    return d if isinstance(d, _core.device) else _core.device("cuda", d) if isinstance(d, int) else _core.device(d)


def scatter(inputs, target_gpus, dim=0):
    """inputs split across target_gpus: a list with one entry per chunk (len(list) may be < len(target_gpus))."""
    devices = [_cuda(d) for d in target_gpus]

    def scatter_map(obj):
        if isinstance(obj, _core.Tensor):
            return [_to(c, devices[i]) for i, c in enumerate(obj.chunk(len(devices), dim))]
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple keeps its type
            return [type(obj)(*args) for args in zip(*map(scatter_map, obj))]
        if isinstance(obj, (tuple, list)) and len(obj) > 0:
            return [type(obj)(parts) for parts in zip(*map(scatter_map, obj))]
        if isinstance(obj, dict) and len(obj) > 0:
            return [type(obj)(parts) for parts in zip(*map(scatter_map, obj.items()))]
        return [obj for _ in devices]

    return scatter_map(inputs)


def scatter_kwargs(inputs, kwargs, target_gpus, dim=0):
    """scatter of the positional and the keyword arguments, padded to the same length (empty tuple / dict)."""
    scattered_inputs = scatter(inputs, target_gpus, dim) if inputs else []
    scattered_kwargs = scatter(kwargs, target_gpus, dim) if kwargs else []
    if len(scattered_inputs) < len(scattered_kwargs):
        scattered_inputs.extend(() for _ in range(len(scattered_kwargs) - len(scattered_inputs)))
    elif len(scattered_kwargs) < len(scattered_inputs):
        scattered_kwargs.extend({} for _ in range(len(scattered_inputs) - len(scattered_kwargs)))
    return tuple(scattered_inputs), tuple(scattered_kwargs)


def gather(outputs, target_device, dim=0):
    """The per-device outputs joined on target_device ("cpu", an index, "cuda:k" or a device; -1 is the CPU)."""
    target = _core.device("cpu") if target_device in (-1, "cpu") else _cuda(target_device)

    def gather_map(outs):
        out = outs[0]
        if isinstance(out, _core.Tensor):
            if all(o.dim() == 0 for o in outs) and dim == 0:
                warnings.warn("Was asked to gather along dimension 0, but all input tensors were scalars; will "
                              "instead unsqueeze and return a vector.")
                outs = [o.reshape(1) for o in outs]
            from ... import cat
            return cat([_to(o, target) for o in outs], dim)
        if out is None:
            return None
        if isinstance(out, dict):
            if not all(len(out) == len(d) for d in outs):
                raise ValueError("All dicts must have the same number of keys")
            return type(out)((k, gather_map([d[k] for d in outs])) for k in out)
        if isinstance(out, tuple) and hasattr(out, "_fields"):
            return type(out)._make(map(gather_map, zip(*outs)))
        return type(out)(map(gather_map, zip(*outs)))

    return gather_map(outputs)
