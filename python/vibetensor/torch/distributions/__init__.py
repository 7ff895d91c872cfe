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

__all__ = ["Bernoulli", "Categorical", "Distribution", "Normal", "Uniform", "constraints", "kl_divergence",
           "register_kl"]
