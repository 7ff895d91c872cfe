"""vt.distributions: the commonly used part of torch.distributions (Distribution, Normal, Bernoulli, Categorical,
Uniform, kl_divergence/register_kl, constraints), built from vibetensor ops so autograd works through rsample,
log_prob, entropy and kl_divergence."""
from . import constraints
from .bernoulli import Bernoulli
from .categorical import Categorical
from .distribution import Distribution
from .kl import kl_divergence, register_kl
from .normal import Normal
from .uniform import Uniform
from .beta import Beta
from .binomial import Binomial
from .cauchy import Cauchy
from .dirichlet import Dirichlet
from .exponential import Exponential
from .gamma import Gamma
from .geometric import Geometric
from .gumbel import Gumbel
from .independent import Independent
from .laplace import Laplace
from .lognormal import LogNormal
from .multinomial import Multinomial
from .mixture_same_family import MixtureSameFamily
from .multivariate_normal import MultivariateNormal
from .one_hot_categorical import OneHotCategorical
from .one_hot_categorical import OneHotCategoricalStraightThrough
from .poisson import Poisson
from .negative_binomial import NegativeBinomial
from . import kl_more  # noqa: F401  (registers the KL pairs of the families above)

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "constraints", "kl_divergence",
           "register_kl"]
__all__ += ["Beta", "Binomial", "Cauchy", "Dirichlet", "Exponential", "Gamma", "Geometric", "Gumbel", "Independent",
            "Laplace", "LogNormal", "Multinomial", "MultivariateNormal", "OneHotCategorical", "Poisson"]
__all__ += ["MixtureSameFamily", "OneHotCategoricalStraightThrough", "NegativeBinomial"]
from . import transforms
from .constraint_registry import biject_to, transform_to
from .transforms import (AbsTransform, AffineTransform, CatTransform, ComposeTransform, ExpTransform,
                         IndependentTransform, PowerTransform, ReshapeTransform, SigmoidTransform, SoftmaxTransform,
                         StackTransform, StickBreakingTransform, TanhTransform, Transform, identity_transform)
from .transformed_distribution import TransformedDistribution
from .continuous_bernoulli import ContinuousBernoulli
from .half_normal import HalfCauchy, HalfNormal
from .lowrank_multivariate_normal import LowRankMultivariateNormal
from .pareto import Pareto
from .relaxed import RelaxedBernoulli, RelaxedOneHotCategorical
from .student_t import Chi2, StudentT
from .weibull import Weibull
from . import kl_transformed  # noqa: F401  (registers the KL pairs of the transform-based families)

__all__ += ["transforms", "biject_to", "transform_to", "TransformedDistribution", "ContinuousBernoulli",
            "HalfCauchy", "HalfNormal", "LowRankMultivariateNormal", "Pareto", "RelaxedBernoulli",
            "RelaxedOneHotCategorical", "Chi2", "StudentT", "Weibull"]
__all__ += ["AbsTransform", "AffineTransform", "CatTransform", "ComposeTransform", "ExpTransform",
            "IndependentTransform", "PowerTransform", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
            "StackTransform", "StickBreakingTransform", "TanhTransform", "Transform", "identity_transform"]
