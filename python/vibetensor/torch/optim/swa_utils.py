"""torch.optim.swa_utils: weight averaging of a model during training - stochastic weight averaging (the running
mean of the weights) and exponential moving averages (EMA, as training scripts keep beside the model).

AveragedModel holds a deep copy of the model and, on each update_parameters(model), folds the model's current
parameters (and buffers, with use_buffers) into it: the first call copies them, later ones apply avg_fn
(averaged, current, n_averaged) per tensor or multi_avg_fn over the lists, by default the running mean
averaged + (current - averaged) / (n + 1). Without use_buffers the copy's buffers (batch-norm statistics) follow
the model's. update_bn recomputes batch-norm statistics over a loader, as SWA's final step."""
from __future__ import annotations

import copy
import itertools

from ..nn.module import Module
from ..nn.norm_layers import _BatchNorm


def _vt():
    import vibetensor.torch as vt  # (late: this module is imported while vibetensor.torch initialises)
    return vt


def get_ema_avg_fn(decay=0.999):
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def get_ema_multi_avg_fn(decay=0.999):
    def ema_update(ema_param_list, current_param_list, _):
        with _vt().no_grad():
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                if p_ema.dtype.is_floating_point:
                    p_ema.lerp_(p_model, 1 - decay)
                else:
                    p_ema.copy_(p_ema * decay + p_model * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    def swa_update(averaged_param_list, current_param_list, num_averaged):
        with _vt().no_grad():
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                p_avg.copy_(p_avg + (p_model - p_avg) / (num_averaged + 1))
    return swa_update


class AveragedModel(Module):
    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        vt = _vt()
        self.register_buffer("n_averaged", vt.tensor(0, dtype=vt.int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model):
        vt = _vt()
        mine = (itertools.chain(self.module.parameters(), self.module.buffers()) if self.use_buffers
                else self.parameters())
        theirs = itertools.chain(model.parameters(), model.buffers()) if self.use_buffers else model.parameters()
        averaged, current = [], []
        first = int(self.n_averaged.item()) == 0
        with vt.no_grad():
            for p_avg, p_model in zip(mine, theirs):
                p_model_ = p_model.detach().to(p_avg.device)
                averaged.append(p_avg.detach())
                current.append(p_model_)
                if first:
                    p_avg.detach().copy_(p_model_)
            if not first:
                n = self.n_averaged
                if self.avg_fn is not None:
                    for p_avg, p_model in zip(averaged, current):
                        p_avg.copy_(self.avg_fn(p_avg, p_model, n.to(p_avg.device)))
                else:
                    (self.multi_avg_fn or get_swa_multi_avg_fn())(averaged, current, n)
            if not self.use_buffers:  # the copy's buffers follow the model's
                for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                    b_avg.detach().copy_(b_model.detach().to(b_avg.device))
            self.n_averaged += 1


def update_bn(loader, model, device=None):
    """Recomputes every batch norm's running statistics of `model` as the plain average over one pass of
    `loader` (tensors, or sequences whose first item is the input), in training mode; the mode is restored."""
    vt = _vt()
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.running_mean is not None:
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None  # a cumulative average over the pass
    with vt.no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)
