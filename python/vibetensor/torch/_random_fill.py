"""The in-place random fills of torch's Tensor that vibetensor's kernels lack, drawn from uniforms (and normals)
of the global generator or `generator=` and transformed in float64 before rounding to the tensor's dtype:
bernoulli_ (1 where u < p), exponential_ (-log(1 - u) / lambd), geometric_ (the trials to the first success,
ceil(log(1 - u) / log(1 - p)), at least 1), cauchy_ (median + sigma tan(pi (u - 1/2))) and log_normal_
(exp(mean + std z)). The distributions are torch's; the streams are vibetensor's, so the values are not. torch's
argument checks and messages; a leaf that requires grad is refused as for any in-place op."""
from __future__ import annotations

import math

from .._C import core as _core
from . import _functions as F
from ._generator import drawing_from

Tensor = _core.Tensor
_dt = _core.dtype


def _uniform(self, generator):
    with drawing_from(generator):
        return F.rand(*self.shape, dtype=_dt.float64, device=self.device)


def _fill(self, values):
    from ..autograd import no_grad  # (late: vibetensor.autograd is imported after this module)
    with no_grad():
        return self.copy_(values)


def _check_leaf(self):
    if self.requires_grad and self.is_leaf:
        from .._C import autograd as _ag
        if _ag.is_grad_enabled():
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def _continuous(self, what, dtype_name):
    # torch names the dtype differently per distribution (Long for Exponential, long int for Cauchy)
    if not self.dtype.is_floating_point:
        raise RuntimeError(f"{what} distribution is a continuous probability distribution. dtype must be a floating "
                           f"point but you specified {dtype_name(self.dtype)}")


def bernoulli_(self, p=0.5, *, generator=None):
    _check_leaf(self)
    if isinstance(p, Tensor):
        prob = p.detach().to(_dt.float64)
    elif not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    else:
        prob = p
    return _fill(self, (_uniform(self, generator) < prob).to(self.dtype))


def exponential_(self, lambd=1.0, *, generator=None):
    _check_leaf(self)
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    _continuous(self, "Exponential", _title)
    return _fill(self, (-_uniform(self, generator)).log1p() * (-1.0 / lambd))


def geometric_(self, p, *, generator=None):
    _check_leaf(self)
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    trials = ((-_uniform(self, generator)).log1p() / math.log1p(-p)).ceil().clamp_min(1.0)
    return _fill(self, trials)


def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    _check_leaf(self)
    if not sigma > 0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    _continuous(self, "Cauchy", _c_name)
    return _fill(self, ((_uniform(self, generator) - 0.5) * math.pi).tan() * sigma + median)


def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    _check_leaf(self)
    if not std > 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    if not self.dtype.is_floating_point:
        raise NotImplementedError(f"\"log_normal_cpu\" not implemented for '{_title(self.dtype)}'")
    with drawing_from(generator):
        z = F.randn(*self.shape, dtype=_dt.float64, device=self.device)
    return _fill(self, (z * std + mean).exp())


def _title(dtype):  # torch's dispatch names: Long, Int, Byte, ...
    return {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
            "bool": "Bool"}.get(str(dtype).split(".")[-1], str(dtype))


def _c_name(dtype):  # torch's C type names in the Cauchy message
    return {"int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
            "bool": "bool"}.get(str(dtype).split(".")[-1], str(dtype))


for _name, _fn in (("bernoulli_", bernoulli_), ("exponential_", exponential_), ("geometric_", geometric_),
                   ("cauchy_", cauchy_), ("log_normal_", log_normal_)):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _fn)
