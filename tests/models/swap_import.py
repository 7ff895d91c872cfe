"""Loads a model file that does `import torch` with a chosen module standing in for torch: the file runs
unmodified, and every `import torch`, `import torch.nn as nn`, `from torch.nn import functional as F` inside
it resolves to the stand-in while the file executes (then sys.modules is restored)."""
import os
import sys
import types

import torch
import vibetensor.torch as vt
import vibetensor.torch.distributed as vt_distributed
import vibetensor.torch.fx as vt_fx
import vibetensor.torch.nn.utils.prune as vt_prune

_NAMES = ("torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.optim", "torch.optim.lr_scheduler",
          "torch.nn.utils", "torch.utils", "torch.utils.checkpoint", "torch.distributions",
          "torch.nn.utils.rnn", "torch.optim.swa_utils", "torch.distributed", "torch.fx", "torch.autograd",
          "torch.utils.data", "torch.nn.utils.parametrize", "torch.nn.utils.parametrizations", "torch.amp",
          "torch.nn.utils.prune", "torch._dynamo", "torch._dynamo.config", "torch._inductor", "torch._inductor.config",
          "torch.autograd.graph", "torch.func", "torch.linalg", "torch.special", "torch.autograd.functional",
          "torch.quasirandom")


def load(path, torch_module):
    name = os.path.splitext(os.path.basename(path))[0] + ("_vt" if torch_module is vt else "_torch")
    mod = types.ModuleType(name)
    mod.__file__ = path
    saved = {k: sys.modules.get(k) for k in _NAMES}
    try:
        if torch_module is vt:
            stand_in = {"torch": vt, "torch.nn": vt.nn, "torch.nn.functional": vt.nn.functional,
                        "torch.nn.init": vt.nn.init, "torch.optim": vt.optim,
                        "torch.optim.lr_scheduler": vt.optim.lr_scheduler, "torch.nn.utils": vt.nn.utils,
                        "torch.utils": vt.utils, "torch.utils.checkpoint": vt.utils.checkpoint,
                        "torch.distributions": vt.distributions, "torch.nn.utils.rnn": vt.nn.utils.rnn,
                        "torch.optim.swa_utils": vt.optim.swa_utils,
                        "torch.distributed": vt_distributed, "torch.fx": vt_fx, "torch.autograd": vt.autograd,
                        "torch.utils.data": vt.utils.data, "torch.nn.utils.parametrize": vt.nn.utils.parametrize,
                        "torch.nn.utils.parametrizations": vt.nn.utils.parametrizations, "torch.amp": vt.amp,
                        "torch.nn.utils.prune": vt_prune, "torch._dynamo": vt._dynamo,
                        "torch._dynamo.config": vt._dynamo.config, "torch._inductor": vt._inductor,
                        "torch._inductor.config": vt._inductor.config, "torch.autograd.graph": vt.autograd.graph,
                        "torch.func": vt.func, "torch.linalg": vt.linalg, "torch.special": vt.special,
                        "torch.autograd.functional": vt.autograd.functional, "torch.quasirandom": vt.quasirandom}
            sys.modules.update(stand_in)
        sys.modules[name] = mod  # dataclasses look their module up by name
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), mod.__dict__)
    finally:
        for k, v in saved.items():
            if torch_module is not vt:  # torch's own submodules that the file imported stay imported
                break
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return mod


def here(name):
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


def pair(name):
    """(torch version, vibetensor version) of the model file `name` next to this one."""
    return load(here(name), torch), load(here(name), vt)
