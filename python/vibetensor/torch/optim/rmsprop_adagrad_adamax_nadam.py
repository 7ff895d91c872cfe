"""RMSprop, Adagrad, Adamax and NAdam with torch's update rules, per-parameter, in torch's order of operations (so
float64 trajectories equal torch's to rounding). State keys are torch's ('step', 'square_avg', 'momentum_buffer',
'grad_avg', 'sum', 'exp_avg', 'exp_inf', 'exp_avg_sq', 'mu_product'), so state_dicts move between the two through
Optimizer.load_state_dict (Note [Optimizer state_dict]); 'step' is kept as an int, as SGD/Adam here keep it.
step(closure) re-evaluates the loss under enable_grad first and returns it, as torch's."""
from ...autograd import no_grad
from .._functions import full_like, ones, zeros_like
from .optimizer import Optimizer


def _check(**values):
    """torch's ValueError for a negative (or out of range) hyperparameter, naming it."""
    names = {"lr": "learning rate", "eps": "epsilon value"}
    for k, v in values.items():
        if v < 0:
            raise ValueError(f"Invalid {names.get(k, k)}: {v}" if k in names else f"Invalid {k} value: {v}")


def _check_betas(betas):
    for i, b in enumerate(betas):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b}")


def _adam_step_and_decay(g, p, grad, st):
    """The step count and weight decay NAdam and RAdam share: decoupled (p shrinks) or L2 (added to grad)."""
    st["step"] += 1
    t, lr, wd = st["step"], g["lr"], g["weight_decay"]
    if wd:
        if g["decoupled_weight_decay"]:
            p.mul_(1 - lr * wd)
        else:
            grad = grad.add(p, alpha=wd)
    return t, lr, grad


class _PerParameter(Optimizer):
    """Shared step(): each group's parameters with a gradient go through self._update(group, p, grad, state)."""

    def step(self, closure=None):
        loss = self._run_closure(closure)
        with no_grad():
            for g in self.param_groups:
                for p in g["params"]:
                    if p.grad is None:
                        continue
                    grad = -p.grad if g.get("maximize") else p.grad
                    self._update(g, p, grad, self._state(p))
        return loss


class RMSprop(_PerParameter):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        _check(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered, "capturable": capturable,
                                  "foreach": foreach, "maximize": maximize, "differentiable": differentiable})

    def _update(self, g, p, grad, st):
        if not st:
            st["step"] = 0
            st["square_avg"] = zeros_like(p)
            if g["momentum"] > 0:
                st["momentum_buffer"] = zeros_like(p)
            if g["centered"]:
                st["grad_avg"] = zeros_like(p)
        st["step"] += 1
        alpha = g["alpha"]
        if g["weight_decay"]:
            grad = grad.add(p, alpha=g["weight_decay"])
        sq = st["square_avg"]
        sq.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
        if g["centered"]:
            ga = st["grad_avg"]
            ga.lerp_(grad, 1 - alpha)
            avg = sq.addcmul(ga, ga, value=-1).sqrt_()
        else:
            avg = sq.sqrt()
        avg = avg.add_(g["eps"])
        if g["momentum"] > 0:
            buf = st["momentum_buffer"]
            buf.mul_(g["momentum"]).addcdiv_(grad, avg)
            p.add_(buf, alpha=-g["lr"])
        else:
            p.addcdiv_(grad, avg, value=-g["lr"])


class Adagrad(_PerParameter):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
               initial_accumulator_value=initial_accumulator_value, eps=eps)
        if fused:
            raise NotImplementedError("Adagrad(fused=True) is not implemented in vibetensor")
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                                  "maximize": maximize, "differentiable": differentiable, "fused": fused})

    def add_param_group(self, param_group):
        # torch creates Adagrad's state eagerly, so a fresh optimizer's state_dict already holds 'sum'
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        for p in g["params"]:
            st = self._state(p)
            st["step"] = 0
            st["sum"] = full_like(p, g["initial_accumulator_value"])

    def _update(self, g, p, grad, st):
        st["step"] += 1
        if g["weight_decay"]:
            grad = grad.add(p, alpha=g["weight_decay"])
        clr = g["lr"] / (1 + (st["step"] - 1) * g["lr_decay"])
        st["sum"].addcmul_(grad, grad, value=1)
        std = st["sum"].sqrt().add_(g["eps"])
        p.addcdiv_(grad, std, value=-clr)


class Adamax(_PerParameter):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check(lr=lr, eps=eps, weight_decay=weight_decay)
        _check_betas(betas)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                                  "capturable": capturable})

    def _update(self, g, p, grad, st):
        if not st:
            st["step"] = 0
            st["exp_avg"] = zeros_like(p)
            st["exp_inf"] = zeros_like(p)
        st["step"] += 1
        b1, b2 = g["betas"]
        if g["weight_decay"]:
            grad = grad.add(p, alpha=g["weight_decay"])
        st["exp_avg"].lerp_(grad, 1 - b1)
        # the infinity norm: max(b2 * exp_inf, |grad| + eps), elementwise
        inf = st["exp_inf"]
        inf.copy_(inf.mul_(b2).maximum(grad.abs().add_(g["eps"])))
        p.addcdiv_(st["exp_avg"], inf, value=-g["lr"] / (1 - b1 ** st["step"]))


class NAdam(_PerParameter):
    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check(lr=lr, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay)
        _check_betas(betas)
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                                  "foreach": foreach, "maximize": maximize, "capturable": capturable,
                                  "differentiable": differentiable})

    def _update(self, g, p, grad, st):
        if not st:
            st["step"] = 0
            # a float32 0-dim tensor, as torch's (its default scalar dtype): the running product rounds in float32
            # unless loaded from a state_dict (which, as torch's load, gives it the parameter's dtype)
            st["mu_product"] = ones(())
            st["exp_avg"] = zeros_like(p)
            st["exp_avg_sq"] = zeros_like(p)
        t, lr, grad = _adam_step_and_decay(g, p, grad, st)
        b1, b2 = g["betas"]
        mu = b1 * (1.0 - 0.5 * 0.96 ** (t * g["momentum_decay"]))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * g["momentum_decay"]))
        mu_product = float(st["mu_product"].mul_(mu).item())
        st["exp_avg"].lerp_(grad, 1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = st["exp_avg_sq"].div(1 - b2 ** t).sqrt().add_(g["eps"])
        mu_product_next = mu_product * mu_next
        p.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
        p.addcdiv_(st["exp_avg"], denom, value=-lr * mu_next / (1.0 - mu_product_next))
