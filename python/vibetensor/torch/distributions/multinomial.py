"""``Multinomial(total_count=1, probs=None, logits=None)`` of vt.distributions (torch.distributions.Multinomial):
counts of total_count categorical draws over the last dim. Sampling, log_prob (differentiable in probs/logits),
entropy, moments and expand; like torch, total_count must be one Python int."""
import vibetensor.torch as vt
from vibetensor.torch.nn import functional as F

from . import constraints
from .binomial import Binomial
from .categorical import Categorical, _CategoricalWrapper
from .distribution import Distribution, broadcast_all

__all__ = ["Multinomial"]


class Multinomial(_CategoricalWrapper, Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Multinomial, _instance)
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        new._binomial = Binomial(total_count=self.total_count, probs=new._categorical.probs, validate_args=False)
        return self._finish_expand(new, batch_shape)

    @property
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        sample_shape = tuple(sample_shape)
        n = self._event_shape[0]
        with vt.no_grad():
            draws = self._categorical.sample((self.total_count,) + sample_shape)
            counts = F.one_hot(draws, n).sum(0) if self.total_count > 0 else vt.zeros(
                sample_shape + self._batch_shape + (n,), dtype=vt.int64, device=self._param.device)
            return counts.to(self.probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        # A -inf logit of a category that was never drawn contributes 0 * -inf = 0.
        logits = vt.where((value == 0) & (logits == -float("inf")), vt.zeros_like(logits), logits)
        log_factorial_n = vt.lgamma(value.sum(-1) + 1)
        log_factorial_xs = vt.lgamma(value + 1).sum(-1)
        return log_factorial_n - log_factorial_xs + (logits * value).sum(-1)

    def entropy(self):
        # H = n H(categorical) - log n! + sum_i E[log x_i!], each x_i ~ Binomial(n, p_i).
        n = float(self.total_count)
        term1 = n * self._categorical.entropy() - vt.lgamma(vt.tensor(n + 1, dtype=self.probs.dtype))
        support = self._binomial.enumerate_support(expand=False)[1:]
        binomial_probs = vt.exp(self._binomial.log_prob(support))
        weights = vt.lgamma(support + 1)
        return term1 + (binomial_probs * weights).sum(0).sum(-1)
