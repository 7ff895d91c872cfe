"""torch.autograd.profiler's older interface (profile with use_cuda, record_function), over the same recorder as
vt.profiler (vibetensor/torch/profiler.py, where the model is)."""
from __future__ import annotations


def _new():
    from ..torch import profiler

    return profiler


class profile:
    """torch.autograd.profiler.profile: records while entered (when enabled); function_events, key_averages(),
    table() and export_chrome_trace() as torch's."""

    def __init__(self, enabled=True, *, use_cuda=False, use_device=None, record_shapes=False, with_flops=False,
                 profile_memory=False, with_stack=False, with_modules=False, use_kineto=False, use_cpu=True,
                 experimental_config=None, acc_events=False, custom_trace_id_callback=None):
        self.enabled = enabled
        p = _new()
        acts = [p.ProfilerActivity.CPU] + ([p.ProfilerActivity.CUDA] if use_cuda or use_device else [])
        self._prof = p.profile(activities=acts, record_shapes=record_shapes, acc_events=acc_events) \
            if enabled else None

    def __enter__(self):
        if self._prof is not None:
            self._prof.start()
        return self

    def __exit__(self, *exc):
        if self._prof is not None:
            self._prof.stop()
        return False

    @property
    def function_events(self):
        return self._prof.events() if self._prof is not None else _new().EventList()

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        return self._prof.key_averages(group_by_input_shape) if self._prof is not None else _new().EventList()

    def table(self, *args, **kwargs):
        return self.key_averages().table(*args, **kwargs)

    def export_chrome_trace(self, path):
        return self._prof.export_chrome_trace(path)


def record_function(name, args=None):
    return _new().record_function(name, args)
