"""vt.optim: SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW (amsgrad, maximize), parameter
groups, state_dict, and the learning-rate schedulers in vt.optim.lr_scheduler, with torch's update rules."""
from . import lr_scheduler  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .sgd_adam import SGD, Adam, AdamW  # noqa: F401
from .rmsprop_adagrad_adamax_nadam import RMSprop, Adagrad, Adamax, NAdam  # noqa: F401
from .adadelta_radam_asgd import Adadelta, RAdam, ASGD  # noqa: F401
from .lbfgs import LBFGS  # noqa: F401
from . import swa_utils  # noqa: E402,F401
from .rprop_adafactor_muon import Rprop, Adafactor, Muon  # noqa: F401
