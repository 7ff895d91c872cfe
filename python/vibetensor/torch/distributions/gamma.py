"""``Gamma(concentration, rate)`` of vt.distributions (torch.distributions.Gamma): reparameterised sampling
through the vt-op Marsaglia-Tsang sampler with the implicit reparameterisation gradient (_gamma_rsample),
log_prob, entropy and cdf (the regularised incomplete gamma function) differentiable in both parameters,
moments and expand."""
import vibetensor.torch as vt

from . import constraints
from ._gamma_rsample import gammainc_lower, standard_gamma_rsample
from .distribution import Distribution

__all__ = ["Gamma"]


class Gamma(Distribution):
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        batch_shape = self._broadcast_params(concentration=concentration, rate=rate)
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Gamma, batch_shape, ["concentration", "rate"], _instance)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        value = standard_gamma_rsample(self.concentration.expand(shape)) / self.rate.expand(shape)
        # Keep draws positive after the division (torch clamps too) without touching the gradient.
        floor = value.detach().clamp(min=vt.finfo(value.dtype).tiny)
        return value + (floor - value.detach())

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c, rate = self.concentration, self.rate
        return vt.xlogy(c, rate) + vt.xlogy(c - 1, value) - rate * value - vt.lgamma(c)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        # torch cannot differentiate this w.r.t. the concentration; the series here can.
        return gammainc_lower(self.concentration, self.rate * value)

    def entropy(self):
        c = self.concentration
        return c - vt.log(self.rate) + vt.lgamma(c) + (1.0 - c) * vt.digamma(c)
