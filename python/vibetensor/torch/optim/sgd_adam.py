"""SGD and AdamW. Updates run under no_grad, in torch's order of operations (so trajectories match torch's to
rounding), on one of two paths chosen per parameter group (_fused.use_fused):
  - fused (the default): one multi-tensor kernel call per device and dtype of the group (_fused.py);
  - per parameter (fused=False, or foreach=False): in-place ops on each parameter, below.
Both keep the same per-parameter state (exp_avg, exp_avg_sq, momentum_buffer, and step as an int)."""
import math

from ...autograd import no_grad
from .._functions import zeros_like
from . import _fused
from .optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, fused=None):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"Invalid SGD hyperparameters: lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                                  "foreach": foreach, "fused": fused})
        _fused.check_flags(self.param_groups, foreach, fused)

    def step(self):
        with no_grad():
            for g in self.param_groups:
                if _fused.use_fused(g):
                    _fused.sgd_step(g, self._state)
                else:
                    self._sgd_per_parameter(g)

    def _sgd_per_parameter(self, g):
        for p in g["params"]:
            if p.grad is None:
                continue
            d = -p.grad if g["maximize"] else p.grad
            if g["weight_decay"]:
                d = d + p * g["weight_decay"]
            if g["momentum"]:
                st = self._state(p)
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = d.clone()
                else:
                    buf.mul_(g["momentum"]).add_(d, alpha=1 - g["dampening"])
                d = d + buf * g["momentum"] if g["nesterov"] else buf
            p.add_(d, alpha=-g["lr"])


class AdamW(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *, maximize=False,
                 foreach=None, fused=None):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Invalid AdamW hyperparameters: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize, "foreach": foreach, "fused": fused})
        _fused.check_flags(self.param_groups, foreach, fused)

    def step(self):
        with no_grad():
            for g in self.param_groups:
                if _fused.use_fused(g):
                    _fused.adamw_step(g, self._state)
                else:
                    self._adamw_per_parameter(g)

    def _adamw_per_parameter(self, g):
        b1, b2 = g["betas"]
        for p in g["params"]:
            if p.grad is None:
                continue
            grad = -p.grad if g["maximize"] else p.grad
            st = self._state(p)
            if not st:
                st["step"] = 0
                st["exp_avg"] = zeros_like(p)
                st["exp_avg_sq"] = zeros_like(p)
            st["step"] += 1
            t = st["step"]
            p.mul_(1 - g["lr"] * g["weight_decay"])  # decoupled weight decay
            st["exp_avg"].mul_(b1).add_(grad, alpha=1 - b1)
            st["exp_avg_sq"].mul_(b2).add_(grad * grad, alpha=1 - b2)
            bias1, bias2 = 1 - b1 ** t, 1 - b2 ** t
            denom = (st["exp_avg_sq"].sqrt() / math.sqrt(bias2)).add_(g["eps"])
            p.add_(st["exp_avg"] / denom, alpha=-g["lr"] / bias1)
