"""torch.nn.DataParallel and data_parallel: data parallelism in one process over several GPUs (real, or
emulated on one GPU with VT_EMULATE_DEVICES=N). Each forward splits the inputs along `dim` across device_ids,
replicates the module onto those devices (Note [Replicas share the gradient]), runs the replicas in one thread
per device and gathers the outputs on output_device; backward sums every replica's gradient into the module's
parameters. The module must live on device_ids[0]. Without CUDA the wrapper calls the module as it is.

Cross-device copies here are the core's peer copies, stream-ordered on both devices (Note [Cross-device copy
ordering]); they need no Fabric. A Fabric over the same devices adds peer access (direct NVLink reads) where the
pairs support it, plus the traffic counters and the trace.
"""
import itertools

from .... import cuda as _cuda
from ...._C import core as _core
from ..module import Module
from .parallel_apply import parallel_apply
from .replicate import replicate
from .scatter_gather import _cuda as _cuda_device
from .scatter_gather import gather, scatter_kwargs


def _index(d):
    return _cuda_device(d).index


def _check_on(module, src):
    for t in itertools.chain(module.parameters(), module.buffers()):
        if t.device != src:
            raise RuntimeError(f"module must have its parameters and buffers on device {src} (device_ids[0]) but "
                               f"found one of them on device: {t.device}")


class DataParallel(Module):
    """DataParallel(module, device_ids=None, output_device=None, dim=0), as torch's."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        if not _cuda.is_available():
            self.module = module
            self.device_ids = []
            return
        if device_ids is None:
            device_ids = list(range(_cuda.device_count()))
        if output_device is None:
            output_device = device_ids[0]
        self.dim = dim
        self.module = module
        self.device_ids = [_index(d) for d in device_ids]
        self.output_device = _index(output_device)
        self.src_device_obj = _core.device("cuda", self.device_ids[0])
        if len(self.device_ids) == 1:
            self.module.to(self.src_device_obj)

    def forward(self, *inputs, **kwargs):
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        _check_on(self.module, self.src_device_obj)
        inputs, module_kwargs = self.scatter(inputs, kwargs, self.device_ids)
        if not inputs and not module_kwargs:  # a forward with no arguments still runs once
            inputs, module_kwargs = ((),), ({},)
        if len(self.device_ids) == 1:
            return self.module(*inputs[0], **module_kwargs[0])
        replicas = self.replicate(self.module, self.device_ids[:len(inputs)])
        outputs = self.parallel_apply(replicas, inputs, module_kwargs)
        return self.gather(outputs, self.output_device)

    def replicate(self, module, device_ids):
        return replicate(module, device_ids)

    def scatter(self, inputs, kwargs, device_ids):
        return scatter_kwargs(inputs, kwargs, device_ids, dim=self.dim)

    def parallel_apply(self, replicas, inputs, kwargs):
        return parallel_apply(replicas, inputs, kwargs, self.device_ids[:len(replicas)])

    def gather(self, outputs, output_device):
        return gather(outputs, output_device, dim=self.dim)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """The functional form: module(*inputs, **module_kwargs) data-parallel over device_ids, as torch's."""
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    if device_ids is None:
        device_ids = list(range(_cuda.device_count()))
    if output_device is None:
        output_device = device_ids[0]
    device_ids = [_index(d) for d in device_ids]
    src = _core.device("cuda", device_ids[0])
    _check_on(module, src)
    inputs, module_kwargs = scatter_kwargs(inputs, module_kwargs, device_ids, dim)
    if not inputs and not module_kwargs:
        inputs, module_kwargs = ((),), ({},)
    if len(device_ids) == 1:
        return module(*inputs[0], **module_kwargs[0])
    used = device_ids[:len(inputs)]
    replicas = replicate(module, used)
    outputs = parallel_apply(replicas, inputs, module_kwargs, used)
    return gather(outputs, output_device, dim)
