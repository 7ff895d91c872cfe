"""torch._inductor.config: the options inference scripts set at import (gpt-fast: coordinate_descent_tuning,
triton.unique_kernel_names, fx_graph_cache), with torch's defaults; see vibetensor/torch/_config_module.py."""
from .._config_module import install, SubConfig

coordinate_descent_tuning = False
coordinate_descent_check_all_directions = False
fx_graph_cache = True
fx_graph_remote_cache = None
autotune_local_cache = True
freezing = False
max_autotune = False
max_autotune_gemm = False
epilogue_fusion = True
aggressive_fusion = False
force_fuse_int_mm_with_mul = False
use_mixed_mm = True
cpp_wrapper = False
compile_threads = 2
fallback_random = False
benchmark_kernel = False
triton = SubConfig("torch._inductor.config.triton", unique_kernel_names=True, cudagraphs=False,
                   cudagraph_trees=True)

install(__name__)
del install, SubConfig
