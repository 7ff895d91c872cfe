"""``Cauchy(loc, scale)`` of vt.distributions (torch.distributions.Cauchy): reparameterised sampling by inversion,
log_prob, entropy, cdf/icdf, expand, and torch's NaN mean / infinite variance."""
import math

import vibetensor.torch as vt

from ._loc_scale import _LocScale

__all__ = ["Cauchy"]


class Cauchy(_LocScale):
    @property
    def mean(self):
        return vt.full(self._extended_shape(), math.nan, dtype=self.loc.dtype, device=self.loc.device)

    @property
    def variance(self):
        return vt.full(self._extended_shape(), math.inf, dtype=self.loc.dtype, device=self.loc.device)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = vt.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * vt.tan(math.pi * (u - 0.5))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - vt.log1p(z ** 2)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return vt.atan((value - self.loc) / self.scale) / math.pi + 0.5

    def icdf(self, value):
        return vt.tan(math.pi * (value - 0.5)) * self.scale + self.loc

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()
