"""``Dirichlet(concentration)`` of vt.distributions (torch.distributions.Dirichlet) over the last dim:
reparameterised sampling as normalised standard-gamma draws (the gradient flows through each gamma's implicit
reparameterisation and the normalisation; torch differentiates the Dirichlet draw by its own implicit formula,
another unbiased pathwise gradient), log_prob, entropy, moments and expand."""
import vibetensor.torch as vt
from vibetensor.torch.nn import functional as F

from . import constraints
from ._gamma_rsample import standard_gamma_rsample
from .distribution import Distribution

__all__ = ["Dirichlet"]


class Dirichlet(Distribution):
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        shape = tuple(concentration.shape)
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Dirichlet, batch_shape, ["concentration"], _instance, event_dims=1)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        gammas = standard_gamma_rsample(self.concentration.expand(shape))
        return gammas / gammas.sum(-1, keepdim=True)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return vt.xlogy(c - 1.0, value).sum(-1) + vt.lgamma(c.sum(-1)) - vt.lgamma(c).sum(-1)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        cm1 = (self.concentration - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, keepdim=True)
        # With every concentration below 1 the density peaks at a vertex: torch picks the largest one's.
        all_below = (self.concentration < 1).all(-1, keepdim=True)
        vertex = F.one_hot(mode.argmax(-1), self._event_shape[0]).to(mode.dtype)
        return vt.where(all_below.expand_as(mode), vertex, mode)

    @property
    def variance(self):
        c = self.concentration
        c0 = c.sum(-1, keepdim=True)
        return c * (c0 - c) / (c0.pow(2) * (c0 + 1))

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (vt.lgamma(c).sum(-1) - vt.lgamma(a0) - (k - a0) * vt.digamma(a0)
                - ((c - 1.0) * vt.digamma(c)).sum(-1))
