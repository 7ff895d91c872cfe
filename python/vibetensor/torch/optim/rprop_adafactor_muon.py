"""Rprop, Adafactor (torch 2.5+ semantics) and Muon with torch's update rules, per-parameter, in torch's order of
operations, so float64 trajectories equal torch's to rounding (Muon's Newton-Schulz runs in bfloat16, as torch's).
State keys are torch's ('step', 'prev', 'step_size'; 'step', 'row_var', 'col_var', 'variance'; 'momentum_buffer');
'step' is kept as an int, as the other optimizers here keep it."""
import math

from ...autograd import no_grad
from .._functions import full_like, where, zeros, zeros_like
from .._more_functions import finfo
from .rmsprop_adagrad_adamax_nadam import _PerParameter


def _check_lr(lr, msg="Invalid learning rate: {}"):
    if hasattr(lr, "numel") and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(msg.format(lr))


def _no_complex(p, name):
    if p.dtype.is_complex:
        raise RuntimeError(f"{name} does not support complex parameters")


class Rprop(_PerParameter):
    """Resilient backprop: each element keeps its own step size, grown by etas[1] while the gradient keeps its
    sign and shrunk by etas[0] when it flips (that element then skips one update), clamped to step_sizes."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        _check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        super().__init__(params, {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                                  "maximize": maximize, "differentiable": differentiable, "capturable": capturable})

    def _update(self, g, p, grad, st):
        if not st:
            st["step"] = 0
            st["prev"] = zeros_like(p)
            st["step_size"] = full_like(grad, float(g["lr"]))
        st["step"] += 1
        etaminus, etaplus = g["etas"]
        lo, hi = g["step_sizes"]
        sign = grad.mul(st["prev"]).sign()
        # the factors are built in the parameter's dtype: a Python-scalar where() would round them to float32
        factor = where(sign > 0, full_like(p, etaplus), where(sign < 0, full_like(p, etaminus), full_like(p, 1.0)))
        st["step_size"].mul_(factor).clamp_(lo, hi)
        # where the sign flipped the element waits a step: its gradient counts as zero now and as 'prev' next time
        grad = where(sign < 0, zeros_like(grad), grad)
        p.addcmul_(grad.sign(), st["step_size"], value=-1)
        st["prev"].copy_(grad)


class Adafactor(_PerParameter):
    """Adafactor: for params of 2 or more dims the second moment is kept factored over the last two dims (a row
    mean and a column mean of grad**2); the step is relative to the parameter's RMS and clipped by its own RMS/d."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *, foreach=None,
                 maximize=False):
        _check_lr(lr, "Learning rate should be >= 0 but is: {}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        super().__init__(params, {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d,
                                  "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize})

    def step(self, closure=None):
        loss = self._run_closure(closure)
        with no_grad():
            for g in self.param_groups:
                # as torch's, a default eps1 is the finfo eps of the group's first parameter with a gradient and
                # then serves the whole group
                eps1 = g["eps"][0]
                for p in g["params"]:
                    if p.grad is None:
                        continue
                    if eps1 is None:
                        eps1 = finfo(p.dtype).eps
                    self._update(g, p, -p.grad if g["maximize"] else p.grad, self._state(p), eps1)
        return loss

    def _update(self, g, p, grad, st, eps1):
        _no_complex(p, "Adafactor")
        if not st:
            st["step"] = 0
            if grad.dim() > 1:
                shape = list(grad.shape)
                st["row_var"] = zeros(*(shape[:-1] + [1]), dtype=grad.dtype, device=grad.device)
                st["col_var"] = zeros(*(shape[:-2] + [1, shape[-1]]), dtype=grad.dtype, device=grad.device)
            else:
                st["variance"] = zeros_like(grad)
        eps2 = g["eps"][1]
        lr = float(g["lr"])
        st["step"] += 1
        t = float(st["step"])
        beta_weight = t ** g["beta2_decay"]  # 1 - beta2_t: the weight of the new grad**2
        rho = min(lr, 1 / t ** 0.5)
        alpha = max(eps2, float(p.norm(2).item()) / p.numel() ** 0.5) * rho
        if g["weight_decay"] != 0:
            p.mul_(1 - lr * g["weight_decay"])
        if grad.dim() > 1:
            row, col = st["row_var"], st["col_var"]
            row.lerp_(grad.norm(dim=-1, keepdim=True).square_().div_(grad.shape[-1]), beta_weight)
            col.lerp_(grad.norm(dim=-2, keepdim=True).square_().div_(grad.shape[-2]), beta_weight)
            var = (row @ col).div_(row.mean(dim=-2, keepdim=True).clamp_(min=eps1))
        else:
            st["variance"].lerp_(grad * grad, beta_weight)
            var = st["variance"].clone()
        update = var.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)
        denom = max(1.0, float(update.norm(2).item()) / (update.numel() ** 0.5 * g["d"]))
        p.add_(update, alpha=-alpha / denom)


def _zeropower_via_newtonschulz(grad, ns_coefficients, ns_steps, eps):
    """Approximately orthogonalise a matrix (U S V^T -> about U V^T) with ns_steps quintic Newton-Schulz rounds in
    bfloat16, iterating on the wide orientation so the Gram matrix is the small one."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.dim() != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    tall = grad.shape[0] > grad.shape[1]
    x = grad.bfloat16()
    if tall:
        x = x.T
    x = x.div(x.norm().clamp(min=eps))
    # torch's bfloat16 addmm sums beta*input + alpha*(m1 @ m2) in float32 and rounds once; a bfloat16 composite
    # would round the product, each scaled term and the sum, and the iteration amplifies those differences
    for _ in range(ns_steps):
        xf = x.float()
        gram = (xf @ xf.T).bfloat16().float()
        update = (gram * b + (gram @ gram) * c).bfloat16().float()
        x = (xf * a + update @ xf).bfloat16()
    return x.T if tall else x


def _adjust_lr(lr, adjust_lr_fn, shape):
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(_PerParameter):
    """Muon for 2-D parameters: momentum (Nesterov by default), then the update is orthogonalised by Newton-Schulz
    and scaled by adjust_lr_fn; weight decay is decoupled."""

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None):
        _check_lr(lr, "Learning rate should be >= 0 but is: {}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                                  "nesterov": nesterov, "ns_coefficients": ns_coefficients, "eps": eps,
                                  "ns_steps": ns_steps, "adjust_lr_fn": adjust_lr_fn})
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError("Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"torch.Size({list(p.shape)})")

    def _update(self, g, p, grad, st):
        _no_complex(p, "Muon")
        if "momentum_buffer" not in st:
            st["momentum_buffer"] = zeros_like(grad)
        if grad.dim() != 2:
            raise ValueError("Param gradient must be a 2D matrix")
        buf = st["momentum_buffer"]
        buf.lerp_(grad, 1 - g["momentum"])
        update = grad.lerp(buf, g["momentum"]) if g["nesterov"] else buf
        update = _zeropower_via_newtonschulz(update, g["ns_coefficients"], g["ns_steps"], g["eps"])
        lr = float(g["lr"])
        p.mul_(1 - lr * g["weight_decay"])
        p.add_(update, alpha=-_adjust_lr(lr, g["adjust_lr_fn"], tuple(p.shape)))
