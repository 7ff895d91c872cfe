"""vt.distributions.transforms (torch.distributions.transforms): invertible maps with a log|det J| used by
TransformedDistribution and the transform_to/biject_to registries: the ``Transform`` base (inverse, sign,
domain/codomain, event_dim, one-slot caching), ComposeTransform, ExpTransform, AffineTransform, SigmoidTransform,
TanhTransform, PowerTransform, SoftmaxTransform, StickBreakingTransform, AbsTransform, IndependentTransform,
ReshapeTransform, CatTransform and StackTransform (the base and the structural ones live in _transform_base.py
and _transforms_structural.py). All composed from vibetensor ops, so autograd flows through forward, inverse
and jacobian."""
import math
import numbers

import vibetensor.torch as vt
import vibetensor.torch.nn.functional as F

from . import constraints
from ._transform_base import ComposeTransform, Transform, _independent, _sum_rightmost, identity_transform
from ._transforms_structural import CatTransform, IndependentTransform, ReshapeTransform, StackTransform
from .distribution import broadcast_all

__all__ = ["Transform", "ComposeTransform", "ExpTransform", "AffineTransform", "SigmoidTransform", "TanhTransform",
           "PowerTransform", "SoftmaxTransform", "StickBreakingTransform", "AbsTransform", "IndependentTransform",
           "ReshapeTransform", "CatTransform", "StackTransform", "identity_transform"]


class _Parameterless(Transform):
    """A transform without parameters: every instance of the class is equal to every other (torch's rule)."""

    def __eq__(self, other):
        return isinstance(other, type(self))

    __hash__ = object.__hash__


class ExpTransform(_Parameterless):
    domain = constraints.real
    codomain = constraints.positive
    bijective = True
    sign = 1

    def _call(self, x):
        return x.exp()

    def _inverse(self, y):
        return y.log()

    def log_abs_det_jacobian(self, x, y):
        return x


class PowerTransform(Transform):
    """y = x ** exponent on the positive reals."""
    domain = constraints.positive
    codomain = constraints.positive
    bijective = True

    def __init__(self, exponent, cache_size=0):
        super().__init__(cache_size=cache_size)
        (self.exponent,) = broadcast_all(exponent)

    def with_cache(self, cache_size=1):
        return self if self._cache_size == cache_size else PowerTransform(self.exponent, cache_size=cache_size)

    @property
    def sign(self):
        return self.exponent.sign()

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return (self.exponent * y / x).abs().log()

    def forward_shape(self, shape):
        return tuple(vt.broadcast_shapes(tuple(shape), tuple(self.exponent.shape)))

    inverse_shape = forward_shape


def _clamp_unit(y):
    # Keep a sigmoid output strictly inside (0, 1) so its inverse (a logit) stays finite.
    info = vt.finfo(y.dtype)
    return y.clamp(min=info.tiny, max=1.0 - info.eps)


class SigmoidTransform(_Parameterless):
    domain = constraints.real
    codomain = constraints.unit_interval
    bijective = True
    sign = 1

    def _call(self, x):
        return _clamp_unit(vt.sigmoid(x))

    def _inverse(self, y):
        y = _clamp_unit(y)
        return y.log() - (-y).log1p()

    def log_abs_det_jacobian(self, x, y):
        # log s(x) + log s(-x), each as -softplus so neither underflows for large |x|.
        return -F.softplus(-x) - F.softplus(x)


class TanhTransform(_Parameterless):
    """y = tanh(x), SAC's squashing. log|dy/dx| = log(1 - tanh(x)^2) is evaluated as 2 (log 2 - x - softplus(-2x)),
    which stays finite where 1 - tanh(x)^2 rounds to 0."""
    domain = constraints.real
    codomain = constraints.interval(-1.0, 1.0)
    bijective = True
    sign = 1

    def _call(self, x):
        return x.tanh()

    def _inverse(self, y):
        return vt.atanh(y)

    def log_abs_det_jacobian(self, x, y):
        return 2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x))


class AbsTransform(_Parameterless):
    """y = |x|; not bijective, its ``inv`` returns the positive branch."""
    domain = constraints.real
    codomain = constraints.positive

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class AffineTransform(Transform):
    """y = loc + scale * x, with ``event_dim`` right-most dims summed in the jacobian term."""
    bijective = True

    def __init__(self, loc, scale, event_dim=0, cache_size=0):
        super().__init__(cache_size=cache_size)
        self.loc, self.scale = loc, scale
        self._event_dim = event_dim

    @property
    def event_dim(self):
        return self._event_dim

    @property
    def domain(self):
        return _independent(constraints.real, self._event_dim)

    codomain = domain

    def with_cache(self, cache_size=1):
        if self._cache_size == cache_size:
            return self
        return AffineTransform(self.loc, self.scale, self._event_dim, cache_size=cache_size)

    def __eq__(self, other):
        if not isinstance(other, AffineTransform):
            return False
        for a, b in ((self.loc, other.loc), (self.scale, other.scale)):
            if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
                if a != b:
                    return False
            elif not bool((vt.as_tensor(a) == vt.as_tensor(b)).all().item()):
                return False
        return True

    __hash__ = object.__hash__

    @property
    def sign(self):
        if isinstance(self.scale, numbers.Real):
            return 1 if float(self.scale) > 0 else -1 if float(self.scale) < 0 else 0
        return self.scale.sign()

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        shape = tuple(x.shape)
        if isinstance(self.scale, numbers.Real):
            result = vt.full_like(x, math.log(abs(self.scale)))
        else:
            result = self.scale.abs().log()
        if self._event_dim:
            result = _sum_rightmost(result, self._event_dim)
            shape = shape[:len(shape) - self._event_dim]
        return result.expand(shape)

    def forward_shape(self, shape):
        shapes = [tuple(shape)] + [tuple(p.shape) for p in (self.loc, self.scale) if vt.is_tensor(p)]
        return tuple(vt.broadcast_shapes(*shapes))

    inverse_shape = forward_shape


class SoftmaxTransform(_Parameterless):
    """Unconstrained vector -> simplex by softmax; not bijective (its inverse is log, defined up to a constant)."""
    domain = constraints.real_vector
    codomain = constraints.simplex

    def _call(self, x):
        e = (x - x.max(-1, keepdim=True)[0]).exp()
        return e / e.sum(-1, keepdim=True)

    def _inverse(self, y):
        return y.log()

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return shape

    inverse_shape = forward_shape


class StickBreakingTransform(_Parameterless):
    """R^(K-1) -> K-simplex: the k-th coordinate takes the fraction sigmoid(x_k - log(K-1-k)) of the stick left
    after the first k pieces (the shift makes x = 0 the uniform point); the last coordinate takes the rest."""
    domain = constraints.real_vector
    codomain = constraints.simplex
    bijective = True

    @staticmethod
    def _log_remaining(x):
        # log(K-1-k) for k = 0..K-2: the number of pieces still to cut after this one, plus one.
        n = x.shape[-1]
        return vt.arange(n, 0, -1, dtype=x.dtype, device=x.device).log()

    def _call(self, x):
        z = vt.sigmoid(x - self._log_remaining(x))
        left = (1 - z).cumprod(-1)  # the stick left after each cut
        return F.pad(z, [0, 1], value=1.0) * F.pad(left, [1, 0], value=1.0)

    def _inverse(self, y):
        pieces = y[..., :-1]
        left = (1 - pieces.cumsum(-1)).clamp(min=vt.finfo(y.dtype).tiny)
        return pieces.log() - left.log() + self._log_remaining(pieces)

    def log_abs_det_jacobian(self, x, y):
        shifted = x - self._log_remaining(x)
        # d y_k / d x_k = z_k (1 - z_k) * stick_k = y_k (1 - z_k), and log(1 - z) = logsigmoid(-shifted).
        return (F.logsigmoid(-shifted) + y[..., :-1].log()).sum(-1)

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] - 1,)
