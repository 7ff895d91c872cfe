"""``OneHotCategorical(probs=None, logits=None)`` of vt.distributions (torch.distributions.OneHotCategorical): a
Categorical whose samples are one-hot vectors (event_shape (n,)); log_prob, entropy, moments, enumerate_support
and expand delegate to the wrapped Categorical; OneHotCategoricalStraightThrough adds a straight-through rsample."""
import vibetensor.torch as vt
from vibetensor.torch.nn import functional as F

from . import constraints
from .categorical import Categorical, _CategoricalWrapper
from .distribution import Distribution

__all__ = ["OneHotCategorical", "OneHotCategoricalStraightThrough"]


class OneHotCategorical(_CategoricalWrapper, Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(OneHotCategorical, _instance)
        new._categorical = self._categorical.expand(batch_shape)
        return self._finish_expand(new, batch_shape)

    @property
    def mean(self):
        return self._categorical.probs

    @property
    def mode(self):
        probs = self._categorical.probs
        return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self):
        probs = self._categorical.probs
        return probs * (1 - probs)

    def sample(self, sample_shape=()):
        probs = self._categorical.probs
        indices = self._categorical.sample(sample_shape)
        return F.one_hot(indices, probs.shape[-1]).to(probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand=True):
        n = self._event_shape[0]
        values = vt.eye(n, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((n,) + (1,) * len(self._batch_shape) + (n,))
        if expand:
            values = values.expand((n,) + self._batch_shape + (n,))
        return values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """OneHotCategorical with a straight-through rsample (Bengio et al., 2013): the forward value is the one-hot
    draw, the backward pass treats it as the probabilities (their gradient passes through unchanged)."""
    has_rsample = True

    def rsample(self, sample_shape=()):
        hard = self.sample(sample_shape)
        soft = self._categorical.probs
        return hard + (soft - soft.detach())  # equal to hard, differentiable like soft
