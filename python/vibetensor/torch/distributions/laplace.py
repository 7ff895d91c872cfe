"""``Laplace(loc, scale)`` of vt.distributions (torch.distributions.Laplace): reparameterised sampling by
inversion, log_prob, entropy, cdf/icdf, moments and expand."""
import math
import numbers

import vibetensor.torch as vt

from . import constraints
from .distribution import Distribution, broadcast_all

__all__ = ["Laplace"]


class Laplace(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        if isinstance(loc, numbers.Number) and isinstance(scale, numbers.Number):
            batch_shape = ()
        else:
            batch_shape = tuple(self.loc.shape)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Laplace, batch_shape, ["loc", "scale"], _instance)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return 2 * self.scale.pow(2)

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = vt.finfo(self.loc.dtype).eps
        # U on (eps - 1, 1) keeps log1p(-|u|) finite at both ends.
        u = (eps - 1) + vt.rand(shape, dtype=self.loc.dtype, device=self.loc.device) * (2 - eps)
        return self.loc - self.scale * u.sign() * vt.log1p(-u.abs())

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -vt.log(2 * self.scale) - (value - self.loc).abs() / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = value - self.loc
        return 0.5 - 0.5 * z.sign() * vt.expm1(-z.abs() / self.scale)

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * term.sign() * vt.log1p(-2 * term.abs())

    def entropy(self):
        return 1 + vt.log(2 * self.scale)
