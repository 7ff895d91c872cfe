"""Adadelta, RAdam (decoupled_weight_decay) and ASGD with torch's update rules, per-parameter, in torch's order of
operations (so float64 trajectories equal torch's to rounding). State keys are torch's ('step', 'square_avg',
'acc_delta', 'exp_avg', 'exp_avg_sq', 'eta', 'mu', 'ax'); 'step' is kept as an int, as the other optimizers here."""
import struct

from .._functions import full, zeros_like
from .rmsprop_adagrad_adamax_nadam import _PerParameter, _adam_step_and_decay, _check, _check_betas


class Adadelta(_PerParameter):
    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        _check(lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                                  "foreach": foreach, "capturable": capturable, "maximize": maximize,
                                  "differentiable": differentiable})

    def _update(self, g, p, grad, st):
        if not st:
            st["step"] = 0
            st["square_avg"] = zeros_like(p)
            st["acc_delta"] = zeros_like(p)
        st["step"] += 1
        rho, eps = g["rho"], g["eps"]
        if g["weight_decay"]:
            grad = grad.add(p, alpha=g["weight_decay"])
        sq, acc = st["square_avg"], st["acc_delta"]
        sq.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        std = sq.add(eps).sqrt_()
        delta = acc.add(eps).sqrt_().div_(std).mul_(grad)
        acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        p.add_(delta, alpha=-g["lr"])


class RAdam(_PerParameter):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        _check(lr=lr, eps=eps)
        _check_betas(betas)
        _check(weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "foreach": foreach, "maximize": maximize, "capturable": capturable,
                                  "decoupled_weight_decay": decoupled_weight_decay,
                                  "differentiable": differentiable})

    def _update(self, g, p, grad, st):
        if not st:
            st["step"] = 0
            st["exp_avg"] = zeros_like(p)
            st["exp_avg_sq"] = zeros_like(p)
        t, lr, grad = _adam_step_and_decay(g, p, grad, st)
        b1, b2 = g["betas"]
        st["exp_avg"].lerp_(grad, 1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        corrected = st["exp_avg"] / bc1
        # the variance of the adaptive lr is tractable only once rho_t > 5; before that, plain momentum SGD
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * (b2 ** t) / bc2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = (bc2 ** 0.5) / st["exp_avg_sq"].sqrt().add_(g["eps"])
            p.add_(corrected * lr * adaptive * rect, alpha=-1.0)
        else:
            p.add_(corrected * lr, alpha=-1.0)


class ASGD(_PerParameter):
    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        _check(lr=lr, weight_decay=weight_decay)
        super().__init__(params, {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                                  "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                                  "capturable": capturable})

    def _update(self, g, p, grad, st):
        if not st:
            st["step"] = 0
            # float32 0-dim tensors, as torch's (its default scalar dtype): eta and mu round through float32
            st["eta"] = full((), g["lr"])
            st["mu"] = full((), 1.0)
            st["ax"] = zeros_like(p)
        st["step"] += 1
        if g["weight_decay"]:
            grad = grad.add(p, alpha=g["weight_decay"])
        eta = float(st["eta"].item())
        p.mul_(1 - g["lambd"] * eta)
        p.add_(grad, alpha=-eta)
        ax = st["ax"]
        if float(st["mu"].item()) != 1:
            ax.add_(p.sub(ax).mul_(float(st["mu"].item())))
        else:
            ax.copy_(p)
        t = st["step"]
        # torch makes each new value a float32 tensor before copying it in, even into a float64 loaded state
        st["eta"].fill_(_f32(g["lr"] / ((1 + g["lambd"] * g["lr"] * t) ** g["alpha"])))
        st["mu"].fill_(_f32(1 / max(1, t - g["t0"])))


def _f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]
