"""``Exponential(rate)`` of vt.distributions (torch.distributions.Exponential): reparameterised sampling
(-log(1 - U) / rate), log_prob, entropy, cdf/icdf, moments and expand."""
import vibetensor.torch as vt

from . import constraints
from .distribution import Distribution

__all__ = ["Exponential"]


class Exponential(Distribution):
    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        batch_shape = self._broadcast_params(rate=rate)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Exponential, batch_shape, ["rate"], _instance)

    @property
    def mean(self):
        return self.rate.reciprocal()

    @property
    def mode(self):
        return vt.zeros_like(self.rate)

    @property
    def stddev(self):
        return self.rate.reciprocal()

    @property
    def variance(self):
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        u = vt.rand(shape, dtype=self.rate.dtype, device=self.rate.device)
        return -vt.log1p(-u) / self.rate

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self.rate.log() - self.rate * value

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 1 - vt.exp(-self.rate * value)

    def icdf(self, value):
        return -vt.log1p(-value) / self.rate

    def entropy(self):
        return 1.0 - vt.log(self.rate)
