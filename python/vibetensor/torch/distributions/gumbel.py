"""``Gumbel(loc, scale)`` of vt.distributions (torch.distributions.Gumbel): reparameterised sampling
(loc - scale * log(-log U)), log_prob, entropy, cdf/icdf, moments and expand."""
import math
import numbers

import vibetensor.torch as vt

from . import constraints
from .distribution import Distribution, broadcast_all

__all__ = ["Gumbel"]

_EULER = 0.57721566490153286060


class Gumbel(Distribution):
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
        return self._expand_params(Gumbel, batch_shape, ["loc", "scale"], _instance)

    @property
    def mean(self):
        return self.loc + self.scale * _EULER

    @property
    def mode(self):
        return self.loc

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
