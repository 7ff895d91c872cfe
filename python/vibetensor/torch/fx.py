"""torch.fx for model files that register leaf functions at import: `wrap(fn_or_name)`, which torchvision's model
files call at module level (torch.fx.wrap("_patch_merging_pad")) or use as a decorator, only marks a function
for FX's symbolic tracer. vibetensor has no tracer, so wrap validates its argument and its caller as torch does
and gives the argument back; the function runs as written."""
from __future__ import annotations

import inspect


def wrap(fn_or_name):
    if not callable(fn_or_name) and not isinstance(fn_or_name, str):
        raise RuntimeError("Unsupported type for global function! Must be either a callable or string name")
    frame = inspect.currentframe().f_back
    # torch records the caller's globals to patch while tracing, which only makes sense for module-level code
    if frame.f_code.co_name != "<module>":
        raise NotImplementedError("wrap must be called at the top level of a module")
    return fn_or_name
