"""vt.nn.utils: gradient clipping and parameter/vector conversion, torch's names and semantics."""
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm  # noqa: F401
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from . import rnn  # noqa: F401
from . import parametrize, parametrizations  # noqa: F401
from . import prune  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401
from . import stateless  # noqa: F401
from .clip_grad import clip_grad_norm  # noqa: F401
from .fusion import (  # noqa: F401
    fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights,
)
from .fusion import convert_conv2d_weight_memory_format, convert_conv3d_weight_memory_format, skip_init  # noqa: F401
from . import fusion, init, memory_format  # noqa: F401
from .spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F401
