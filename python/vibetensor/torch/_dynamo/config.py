"""torch._dynamo.config: the options scripts set (cache sizes, dynamic-shape policy, error suppression), with
torch's defaults; see vibetensor/torch/_config_module.py."""
cache_size_limit = 8
accumulated_cache_size_limit = 256
recompile_limit = 8
accumulated_recompile_limit = 256
suppress_errors = False
verbose = False
capture_scalar_outputs = False
capture_dynamic_output_shape_ops = False
automatic_dynamic_shapes = True
assume_static_by_default = True
specialize_int = False
force_parameter_static_shapes = True
optimize_ddp = True
inline_inbuilt_nn_modules = True

from .._config_module import install  # noqa: E402

install(__name__)
del install
