"""``Poisson(rate)`` of vt.distributions (torch.distributions.Poisson): sampling (a vt-op sampler, see
_samplers.poisson), log_prob differentiable in rate, moments and expand. Like torch it has no entropy."""
import vibetensor.torch as vt

from . import constraints
from ._samplers import poisson
from .distribution import Distribution, broadcast_all

__all__ = ["Poisson"]


class Poisson(Distribution):
    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        batch_shape = self._broadcast_params(rate=rate)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Poisson, batch_shape, ["rate"], _instance)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with vt.no_grad():
            return poisson(self.rate.expand(shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, rate = broadcast_all(value, self.rate)
        return vt.xlogy(value, rate) - rate - vt.lgamma(value + 1)
