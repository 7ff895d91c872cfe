"""``Laplace(loc, scale)`` of vt.distributions (torch.distributions.Laplace): reparameterised sampling by
inversion, log_prob, entropy, cdf/icdf, moments and expand."""
import math

import vibetensor.torch as vt

from ._loc_scale import _LocScale

__all__ = ["Laplace"]


class Laplace(_LocScale):
    @property
    def mean(self):
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
