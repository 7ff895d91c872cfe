"""vt.optim: SGD (momentum, dampening, Nesterov, weight decay) and AdamW, with torch's update rules."""
from .optimizer import Optimizer  # noqa: F401
from .sgd_adamw import SGD, AdamW  # noqa: F401
