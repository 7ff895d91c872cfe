"""``LogNormal(loc, scale)`` of vt.distributions (torch.distributions.LogNormal): exp of Normal(loc, scale),
written directly rather than as a TransformedDistribution: reparameterised sampling, log_prob, entropy, cdf/icdf,
moments and expand; ``base_dist`` is the underlying Normal as in torch."""
import math

import vibetensor.torch as vt

from . import constraints
from .distribution import Distribution
from .normal import Normal

__all__ = ["LogNormal"]


class LogNormal(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.base_dist = Normal(loc, scale, validate_args=validate_args)
        super().__init__(self.base_dist.batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogNormal, _instance)
        new.base_dist = Normal(self.loc.expand(tuple(batch_shape)), self.scale.expand(tuple(batch_shape)),
                               validate_args=False)
        return self._finish_expand(new, batch_shape)

    @property
    def loc(self):
        return self.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self):
        return (self.loc - self.scale.pow(2)).exp()

    @property
    def variance(self):
        scale_sq = self.scale.pow(2)
        return vt.expm1(scale_sq) * (2 * self.loc + scale_sq).exp()

    def rsample(self, sample_shape=()):
        return vt.exp(self.base_dist.rsample(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_value = vt.log(value)
        var = self.scale ** 2
        return (-((log_value - self.loc) ** 2) / (2 * var) - self.scale.log() - 0.5 * math.log(2 * math.pi)
                - log_value)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + vt.erf((vt.log(value) - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value):
        return vt.exp(self.base_dist.icdf(value))

    def entropy(self):
        return self.base_dist.entropy() + self.loc

    def __repr__(self):
        return "LogNormal()"  # torch's: loc/scale live on base_dist, so its repr lists no parameters
