"""``Gumbel(loc, scale)`` of vt.distributions (torch.distributions.Gumbel): reparameterised sampling
(loc - scale * log(-log U)), log_prob, entropy, cdf/icdf, moments and expand."""
import math

import vibetensor.torch as vt

from ._loc_scale import _LocScale

__all__ = ["Gumbel"]

_EULER = 0.57721566490153286060


class Gumbel(_LocScale):
    @property
    def mean(self):
        return self.loc + self.scale * _EULER

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        finfo = vt.finfo(self.loc.dtype)
        # U on [tiny, 1 - eps] so both logs stay finite, the range torch's Gumbel base Uniform uses.
        u = vt.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(min=finfo.tiny, max=1 - finfo.eps)
        return self.loc - self.scale * vt.log(-vt.log(u))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (self.loc - value) / self.scale
        return (z - z.exp()) - self.scale.log()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return vt.exp(-vt.exp((self.loc - value) / self.scale))

    def icdf(self, value):
        return self.loc - self.scale * vt.log(-vt.log(value))

    def entropy(self):
        return self.scale.log() + (1 + _EULER)
