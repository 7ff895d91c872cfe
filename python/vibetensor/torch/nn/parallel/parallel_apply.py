"""torch.nn.parallel.parallel_apply: run module i on inputs i, one thread per module, each with its device
current and the caller's grad mode and autocast state (both are per thread, so a thread would otherwise start
from the defaults). The first error of any thread is raised in the caller, with its own type, after every thread
has finished."""
import threading

from .... import cuda as _cuda
from ...._C import autograd as _ag
from ...._C import core as _core


def _device_index(obj):
    """The CUDA index of the first tensor found in obj (tensors, lists, tuples, dicts), else None."""
    if isinstance(obj, _core.Tensor):
        return obj.device.index if obj.is_cuda else None
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    for x in items:
        d = _device_index(x)
        if d is not None:
            return d
    return None


def parallel_apply(modules, inputs, kwargs_tup=None, devices=None):
    """[modules[i](*inputs[i], **kwargs_tup[i]) for i]: one thread per module; devices default to each input's."""
    if len(modules) != len(inputs):
        raise AssertionError(f"The number of modules {len(modules)} is not equal to the number of inputs "
                             f"{len(inputs)}")
    kwargs_tup = kwargs_tup if kwargs_tup is not None else ({},) * len(modules)
    if len(modules) != len(kwargs_tup):
        raise AssertionError(f"The number of modules {len(modules)} is not equal to the number of kwargs "
                             f"{len(kwargs_tup)}")
    if devices is None:
        devices = [_device_index(x) for x in inputs]
    devices = [d.index if isinstance(d, _core.device) else d for d in devices]
    grad_mode, autocast = _ag._get_mode(), _ag._get_autocast()
    results = [None] * len(modules)
    errors = [None] * len(modules)

    def worker(i):
        _ag._set_mode(*grad_mode)
        _ag._set_autocast(*autocast)
        try:
            with _cuda.device(devices[i]):
                args = inputs[i] if isinstance(inputs[i], (list, tuple)) else (inputs[i],)
                results[i] = modules[i](*args, **kwargs_tup[i])
        except BaseException as e:  # re-raised in the caller, first by replica order
            errors[i] = e

    if len(modules) == 1:
        worker(0)
    else:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(modules))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i, e in enumerate(errors):
        if e is not None:
            e.add_note(f"Caught in replica {i} on device {devices[i]}")
            raise e
    return results
