"""torch.optim.swa_utils: weight averaging of a model during training - stochastic weight averaging (the running
mean of the weights) and exponential moving averages (EMA, as training scripts keep beside the model).

AveragedModel holds a deep copy of the model and, on each update_parameters(model), folds the model's current
parameters (and buffers, with use_buffers) into it: the first call copies them, later ones apply avg_fn
(averaged, current, n_averaged) per tensor or multi_avg_fn over the lists, by default the running mean
averaged + (current - averaged) / (n + 1). Without use_buffers the copy's buffers (batch-norm statistics) follow
the model's. update_bn recomputes batch-norm statistics over a loader, as SWA's final step. SWALR anneals each
group's learning rate to its swa_lr over anneal_epochs steps (cosine or linear), then holds it there."""
from __future__ import annotations

import copy
import itertools
import math

from ..nn.module import Module
from ..nn.norm_layers import _BatchNorm
from .lr_scheduler import LRScheduler, _per_group


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


class SWALR(LRScheduler):
    """Anneals each group's lr from where it is to group["swa_lr"] over `anneal_epochs` steps, by the cosine
    (1 - cos(pi t)) / 2 or linearly, then keeps it at swa_lr. As torch's, each step works from the group's current
    lr: it recovers the lr the annealing started from out of the previous step's mix, then mixes anew, so another
    scheduler may have moved the lr before SWA starts (same arithmetic as torch's, so the lrs agree to the bit)."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        for value, group in zip(_per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    def _set_anneal_func(self, anneal_strategy):
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def _progress(self, step):
        return max(0, min(1, step / max(1, self.anneal_epochs)))

    def get_lr(self):
        step = self._step_count - 1  # the constructor's step is step 0
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(self._progress(step - 1))
        alpha = self.anneal_func(self._progress(step))
        lrs = []
        for group in self.optimizer.param_groups:
            lr, swa = group["lr"], group["swa_lr"]
            # the lr before annealing: group lr = swa * prev_alpha + start * (1 - prev_alpha), solved for start
            start = swa if prev_alpha == 1 else (lr - prev_alpha * swa) / (1 - prev_alpha)
            lrs.append(swa * alpha + start * (1 - alpha))
        return lrs

    def state_dict(self):
        """Every attribute but the optimizer and the anneal function (load_state_dict restores it by name)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
