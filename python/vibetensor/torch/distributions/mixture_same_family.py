"""``MixtureSameFamily(mixture_distribution, component_distribution)`` of vt.distributions
(torch.distributions.MixtureSameFamily): a Categorical over the right-most batch dim of a component
distribution, e.g. a Gaussian mixture prior. log_prob is a logsumexp over the components, mean and variance
follow the laws of total expectation and variance, and sampling picks one component draw per sample (no
rsample, as in torch)."""
import vibetensor.torch as vt

from .categorical import Categorical
from .constraints import Constraint
from .distribution import Distribution

__all__ = ["MixtureSameFamily", "MixtureSameFamilyConstraint"]


class MixtureSameFamilyConstraint(Constraint):
    """The support of a mixture: the components' constraint, checked with the component dim put back into the
    value (a value lies in the support when it lies in every component's)."""

    def __init__(self, base_constraint):
        if not isinstance(base_constraint, Constraint):
            raise AssertionError(f"base_constraint must be a Constraint, got {type(base_constraint).__name__}")
        self.base_constraint = base_constraint

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim

    def check(self, value):
        if value.dim() < self.event_dim:
            raise ValueError(f"Expected value.dim() >= {self.event_dim} but got {value.dim()}")
        ok = self.base_constraint.check(value.unsqueeze(-1 - self.event_dim))
        keep = value.dim() - self.event_dim
        return ok.reshape(tuple(ok.shape[:keep]) + (-1,)).all(-1)

    def __repr__(self):
        return f"MixtureSameFamilyConstraint({self.base_constraint!r})"


class MixtureSameFamily(Distribution):
    arg_constraints = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(" The Mixture distribution needs to be an instance of torch.distributions.Categorical")
        if not isinstance(component_distribution, Distribution):
            raise ValueError("The Component distribution need to be an instance of torch.distributions.Distribution")
        mix_batch = tuple(mixture_distribution.batch_shape)
        comp_batch = tuple(component_distribution.batch_shape)[:-1]
        for a, b in zip(reversed(mix_batch), reversed(comp_batch)):
            if a != 1 and b != 1 and a != b:
                raise ValueError(f"`mixture_distribution.batch_shape` ({vt.Size(mix_batch)}) is not compatible with "
                                 f"`component_distribution.batch_shape`({vt.Size(comp_batch)})")
        k_mix = mixture_distribution.logits.shape[-1]
        k_comp = tuple(component_distribution.batch_shape)[-1] if component_distribution.batch_shape else None
        if k_comp is None or k_mix != k_comp:
            raise ValueError(f"`mixture_distribution component` ({k_mix}) does not equal "
                             f"`component_distribution.batch_shape[-1]` ({k_comp})")
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._num_component = k_mix
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(comp_batch, component_distribution.event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MixtureSameFamily, _instance)
        batch_shape = tuple(batch_shape)
        new._component_distribution = self._component_distribution.expand(batch_shape + (self._num_component,))
        new._mixture_distribution = self._mixture_distribution.expand(batch_shape)
        new._num_component = self._num_component
        new._event_ndims = self._event_ndims
        return self._finish_expand(new, batch_shape)

    @property
    def support(self):
        return MixtureSameFamilyConstraint(self._component_distribution.support)

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    def _weights_like_components(self, w):
        """[..., K] mixture weights -> broadcastable against the components' [..., K, *event]: a Categorical with
        fewer batch dims than the mixture gets ones in front of K (one of batch size 1 broadcasts as it is)."""
        mix_ndims = len(self._mixture_distribution.batch_shape)
        pad = 0 if mix_ndims == 1 else len(self.batch_shape) - mix_ndims
        lead = tuple(w.shape[:-1])
        return w.reshape(lead + (1,) * pad + (w.shape[-1],) + (1,) * self._event_ndims)

    @property
    def mean(self):
        w = self._weights_like_components(self._mixture_distribution.probs)
        return (w * self._component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self):
        # total variance: the expected component variance plus the variance of the component means
        w = self._weights_like_components(self._mixture_distribution.probs)
        k_dim = -1 - self._event_ndims
        within = (w * self._component_distribution.variance).sum(k_dim)
        spread = (self._component_distribution.mean - self.mean.unsqueeze(k_dim)).pow(2)
        return within + (w * spread).sum(k_dim)

    def cdf(self, x):
        x = x.unsqueeze(-1 - self._event_ndims)
        return (self._component_distribution.cdf(x) * self._mixture_distribution.probs).sum(-1)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        per_component = self._component_distribution.log_prob(x.unsqueeze(-1 - self._event_ndims))
        log_w = vt.log_softmax(self._mixture_distribution.logits, dim=-1)
        return vt.logsumexp(per_component + log_w, dim=-1)

    def sample(self, sample_shape=()):
        sample_shape = tuple(sample_shape)
        with vt.no_grad():
            k_dim = len(sample_shape) + len(self.batch_shape)  # where the components sit in a draw
            which = self._mixture_distribution.sample(sample_shape)  # [*sample, *mix batch]
            draws = self._component_distribution.sample(sample_shape)  # [*sample, *batch, K, *event]
            pad = len(self.batch_shape) - len(self._mixture_distribution.batch_shape)
            lead = tuple(which.shape[:len(sample_shape)])
            index = which.reshape(lead + (1,) * pad + tuple(which.shape[len(sample_shape):])
                                  + (1,) * (self._event_ndims + 1))
            index = index.expand(tuple(draws.shape[:k_dim]) + (1,) + tuple(self.event_shape))
            return vt.gather(draws, k_dim, index).squeeze(k_dim)

    def __repr__(self):
        return f"MixtureSameFamily(\n  {self._mixture_distribution},\n  {self._component_distribution})"
