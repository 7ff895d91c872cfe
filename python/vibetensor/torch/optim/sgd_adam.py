"""SGD, Adam and AdamW. Updates run under no_grad, in torch's order of operations (so trajectories match torch's to
rounding), on one of two paths chosen per parameter group (_fused.use_fused):
  - fused (the default): one multi-tensor kernel call per device and dtype of the group (_fused.py);
  - per parameter (fused=False, or foreach=False): in-place ops on each parameter, below.
Both keep the same per-parameter state (exp_avg, exp_avg_sq, max_exp_avg_sq, momentum_buffer, and step as an
int). Adam and AdamW differ only in weight decay: Adam adds weight_decay * param to the gradient (L2), AdamW
shrinks the parameter by lr * weight_decay before the update (decoupled); amsgrad takes the per-parameter path.
step(closure) re-evaluates the loss under enable_grad first and returns it, as torch's."""
import math

from ..._C import core as _core
from ...autograd import no_grad
from .._functions import zeros_like
from . import _fused
from .optimizer import Optimizer


def _step(opt, closure, fused_step, per_parameter_step):
    """One optimizer step: the closure's loss (under enable_grad), then each group on its path."""
    loss = opt._run_closure(closure)
    with no_grad():
        for g in opt.param_groups:
            (fused_step if _fused.use_fused(g) else per_parameter_step)(g)
    return loss


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if isinstance(lr, _core.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"Invalid SGD hyperparameters: lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                                  "foreach": foreach, "differentiable": differentiable, "fused": fused})
        _fused.check_flags(self.param_groups, foreach, fused)

    def step(self, closure=None):
        return _step(self, closure, self._sgd_fused, self._sgd_per_parameter)

    def _sgd_fused(self, g):
        # A parameter listed twice (optimizer.py warns) steps once per listing, as torch's per-parameter loop
        # does; the fused path would hand the kernel its momentum buffer twice in one call.
        if g["momentum"] and len({id(p) for p in g["params"]}) != len(g["params"]):
            return self._sgd_per_parameter(g)
        return _fused.sgd_step(g, self._state)

    def _sgd_per_parameter(self, g):
        # torch's order: every momentum buffer is read before any step and stored back after, so a parameter
        # listed twice takes its first step twice from fresh buffers.
        params = [p for p in g["params"] if p.grad is not None]
        bufs = [self._state(p).get("momentum_buffer") for p in params] if g["momentum"] else None
        for i, p in enumerate(params):
            d = -p.grad if g["maximize"] else p.grad
            if g["weight_decay"]:
                d = d + p * g["weight_decay"]
            if g["momentum"]:
                buf = bufs[i]
                if buf is None:
                    buf = bufs[i] = d.clone()
                else:
                    buf.mul_(g["momentum"]).add_(d, alpha=1 - g["dampening"])
                d = d + buf * g["momentum"] if g["nesterov"] else buf
            p.add_(d, alpha=-_fused.lr_value(g))
        for p, buf in zip(params, bufs or ()):
            self._state(p)["momentum_buffer"] = buf


def _check_adam_args(lr, betas, eps, weight_decay):
    if lr < 0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if weight_decay < 0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        if isinstance(lr, _core.Tensor):  # torch's checks, in its order
            if foreach and not capturable:
                raise ValueError("lr as a Tensor is not supported for capturable=False and foreach=True")
            if lr.numel() != 1:
                raise ValueError("Tensor lr must be 1-element")
        _check_adam_args(lr, betas, eps, weight_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                                  "capturable": capturable, "differentiable": differentiable, "fused": fused,
                                  # AdamW is Adam with this on (torch's decoupled_weight_decay): a group key
                                  "decoupled_weight_decay": bool(decoupled_weight_decay)})
        _fused.check_flags(self.param_groups, foreach, fused)

    def _decoupled_in(self, g):
        return g.get("decoupled_weight_decay", self._decoupled)

    def step(self, closure=None):
        return _step(self, closure, lambda g: _fused.adamw_step(g, self._state, decoupled=self._decoupled_in(g)),
                     self._adam_per_parameter)

    def _adam_per_parameter(self, g):
        if g.get("capturable"):
            raise NotImplementedError("capturable=True runs on the fused path, which amsgrad, foreach=False and "
                                      "fused=False leave; drop one or the other")
        b1, b2 = g["betas"]
        lr, wd = _fused.lr_value(g), g["weight_decay"]
        for p in g["params"]:
            if p.grad is None:
                continue
            grad = -p.grad if g["maximize"] else p.grad
            st = self._state(p)
            if not st:
                st["step"] = 0
                st["exp_avg"] = zeros_like(p)
                st["exp_avg_sq"] = zeros_like(p)
                if g["amsgrad"]:
                    st["max_exp_avg_sq"] = zeros_like(p)
            st["step"] += 1
            t = st["step"]
            if self._decoupled_in(g):
                p.mul_(1 - lr * wd)
            elif wd:
                grad = grad.add(p, alpha=wd)
            st["exp_avg"].mul_(b1).add_(grad, alpha=1 - b1)
            st["exp_avg_sq"].mul_(b2).add_(grad * grad, alpha=1 - b2)
            bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
            second = st["exp_avg_sq"]
            if g["amsgrad"]:
                second = st["max_exp_avg_sq"].copy_(st["max_exp_avg_sq"].maximum(second))
            denom = (second.sqrt() / math.sqrt(bias2)).add_(g["eps"])
            p.add_(st["exp_avg"] / denom, alpha=-lr / bias1)


class AdamW(Adam):
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
