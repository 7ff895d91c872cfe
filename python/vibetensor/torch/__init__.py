"""`import vibetensor.torch as vt`: the torch-shaped front end of vibetensor.

Dtypes, devices, factories, Tensor methods and functions mirror torch's names and signatures, so code
written for torch mostly runs by swapping the import. Every op goes through vibetensor's dispatcher; the raw
ops are reachable as `vt.ops.vt.<name>(...)`.
"""
from __future__ import annotations

import builtins as _builtins

from .._C import core as _core
from . import _functions
from . import _tensor  # noqa: F401  (attaches Python-level Tensor methods)
from . import _tensor_surface  # noqa: F401  (and those of the selection / composition ops)
from ._functions import *  # noqa: F401,F403
from ._functions import (  # noqa: F401
    all, any, max, min, sum, tensor, from_numpy, from_dlpack, zeros, ones, empty, full, arange, linspace, eye,
    rand, randn, randint, stack, split, chunk, unbind, movedim, where, clamp, result_type, broadcast_shapes, cat, t, round, square, matmul,
)
from .nn.functional import relu_  # noqa: E402,F401
from ._select_ops import (  # noqa: F401
    argsort, gather, index_add, index_copy, index_fill, index_put, index_put_, index_select, masked_select, multinomial,
    scatter, scatter_add, scatter_reduce, sort, topk,
)
from ._composite_ops import (  # noqa: F401
    addcdiv, addcmul, addmm, baddbmm, flip, fliplr, flipud, lerp, outer, repeat_interleave, roll, tril, triu,
)
from ._composite_ops import outer as ger  # noqa: F401
from ._einsum import einsum  # noqa: F401
from ._more_functions import (  # noqa: F401  (also attaches their Tensor methods)
    aminmax, bincount, bucketize, cdist, diag, diag_embed, finfo, histc, hypot, iinfo, kron, logaddexp, logaddexp2,
    meshgrid, nan_to_num, randperm, searchsorted, std_mean, tile, tril_indices, triu_indices, unique, var_mean,
)
from ._shape_stat_functions import (  # noqa: F401  (also attaches their Tensor methods)
    argwhere, as_tensor, block_diag, cartesian_prod, clip, column_stack, combinations, count_nonzero, cummax, cummin,
    diff, dstack, empty_strided, hstack, is_complex, is_floating_point, is_nonzero, isin, kthvalue, logcumsumexp,
    median, mode, nanmean, nanmedian, nanquantile, nansum, quantile, rot90, row_stack, scalar_tensor,
    take_along_dim, tensor_split, vstack,
)
from . import linalg  # noqa: F401
from ._aliases import FUNCTIONS as _ALIASES  # (also attaches their Tensor methods)
globals().update(_ALIASES)
from ._surface_more import FUNCTIONS as _SURFACE_MORE  # (also attaches their Tensor methods)
globals().update(_SURFACE_MORE)
from . import _random_fill  # noqa: F401  (attaches bernoulli_, exponential_, geometric_, cauchy_, log_normal_)
from ._linalg_factor import det, logdet, slogdet, cholesky_solve, inv as inverse  # noqa: F401
from ._sci_functions import triangular_solve, vander  # noqa: F401
from ._linalg_lu import lu_unpack, torch_lu as lu  # noqa: F401
from ._linalg_svd import torch_svd as svd, matrix_power, matrix_exp, pinverse  # noqa: F401
from ._linalg_svd import torch_cross as cross  # noqa: F401
from ._composite_ops import addbmm, addr  # noqa: F401
from ._math_functions import (  # noqa: F401  (also attaches their Tensor methods)
    addmv, bernoulli, chain_matmul, copysign, deg2rad, digamma, dist, dot, erfinv, float_power, heaviside, i0, ldexp,
    lgamma, logit, mv, mvlgamma, normal, polygamma, rad2deg, renorm, sgn, signbit, sinc, tensordot, trace, vdot, xlogy,
)
from . import special  # noqa: F401
from ._foreach import *  # noqa: F401,F403  (torch._foreach_*)
from ._default_device import get_default_device, set_default_device  # noqa: F401
from ._constants import e, inf, nan, newaxis, pi  # noqa: F401


def softmax(input, dim, dtype=None):
    return _core.op("vt::softmax")(input, dim, dtype=dtype)


def log_softmax(input, dim, dtype=None):
    return _core.op("vt::log_softmax")(input, dim, dtype=dtype)
from ._tensor_str import set_printoptions, get_printoptions  # noqa: F401
from .. import cuda  # noqa: F401
from .. import autograd  # noqa: F401  (also attaches Tensor.backward)
import sys as _sys  # noqa: E402
_sys.modules[__name__ + ".autograd"] = autograd  # torch's import paths: from torch.autograd.functional import ...
_sys.modules[__name__ + ".autograd.functional"] = autograd.functional
_sys.modules[__name__ + ".autograd.profiler"] = autograd.profiler
from ..autograd import (  # noqa: F401
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, set_grad_enabled,
)

Tensor = _core.Tensor
device = _core.device
dtype = _core.dtype
from ._size import Size  # noqa: E402  (x.shape's type: Note [Size])

bool = dtype.bool
uint8 = dtype.uint8
int8 = dtype.int8
int16 = dtype.int16
int32 = dtype.int32
int64 = dtype.int64
float16 = dtype.float16
bfloat16 = dtype.bfloat16
float32 = dtype.float32
float64 = dtype.float64
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64


class _OpNamespace:
    """vt.ops.<ns>.<op>: the dispatcher's ops, called through the boxed path."""

    def __init__(self, ns):
        self._ns = ns

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            handle = _core.op(f"{self._ns}::{name}")
        except ValueError as err:
            raise AttributeError(str(err)) from None
        setattr(self, name, handle)
        return handle

    def __dir__(self):
        prefix = self._ns + "::"
        return [n[len(prefix):] for n in _core.op_names() if n.startswith(prefix)]


class _Ops:
    @staticmethod
    def load_library(path):
        """Loads a native plugin (a shared library built against vt_plugin.h; see vibetensor.get_include()) and
        returns what it registered: {"path", "abi_version", "ops"}. Loading the same file again, by any path,
        returns the first load's record; a plugin that fails leaves every op as it was. Never unloaded."""
        import os
        return _core.load_library(os.fspath(path))

    @staticmethod
    def loaded_libraries():
        """The plugins loaded so far, in load order."""
        return _core.loaded_libraries()

    def __getattr__(self, ns):
        if ns.startswith("__"):
            raise AttributeError(ns)
        space = _OpNamespace(ns)
        setattr(self, ns, space)
        return space


ops = _Ops()

# Functions that are exactly an op (first argument the tensor).
for _name in _tensor._METHOD_OPS + ["add", "sub", "mul", "cat", "permute", "reshape", "transpose", "mm", "bmm",
                                    "logsigmoid", "gelu", "softplus", "leaky_relu", "elu", "hardtanh", "narrow",
                                    "select", "unsqueeze", "flatten", "diagonal"]:
    if not _name.endswith("_") and _name not in globals():
        globals()[_name] = _core.fast_op("vt::" + _name)
concat = concatenate = cat
negative, absolute, multiply, divide, true_divide, subtract = neg, abs, mul, div, div, sub  # noqa: F405
from ._functions import mean, prod, var, std, norm, logsumexp, amax, amin, allclose, isclose, equal  # noqa: E402,F401,F811
from ._logspace import logspace  # noqa: E402,F401
from ._method_functions import FUNCTIONS as _METHOD_FUNCTIONS  # noqa: E402  (torch.clamp_min, torch.clone, ...)
globals().update({_k: _v for _k, _v in _METHOD_FUNCTIONS.items() if _k not in globals()})
from ._aten_functions import FUNCTIONS as _ATEN_FUNCTIONS  # noqa: E402  (torch.conv2d, torch.layer_norm, ...)
globals().update({_k: _v for _k, _v in _ATEN_FUNCTIONS.items() if _k not in globals()})


def masked_fill(input, mask, value):
    return input.masked_fill(mask, value)


from ._generator import Generator  # noqa: E402,F401


def manual_seed(seed: int):
    """Seeds the Philox generator behind rand/randn/randint/normal_/uniform_. Like torch, any int in
    [-2**63, 2**64) is a seed (negative ones wrap); others are a ValueError."""
    from .random import manual_seed as _seed_global_stream

    return _seed_global_stream(seed)  # default_generator, as torch returns


def initial_seed() -> int:
    return _core.initial_seed()


from . import random  # noqa: E402,F401
from .random import default_generator, get_rng_state, seed, set_rng_state  # noqa: E402,F401


def is_tensor(obj) -> _builtins.bool:
    return isinstance(obj, Tensor)


def numel(input) -> _builtins.int:
    return input.numel()


def promote_types(a, b):
    return _core.promote_types(a, b)


def can_cast(from_, to):
    return _core.can_cast(from_, to)


def get_default_dtype():
    """The floating dtype factories and Python floats take when none is given: float32, as torch's default."""
    return _core.dtype.float32


def set_default_dtype(d):
    """Only float32, the default, is supported: vibetensor's factories and type promotion are built for it."""
    if d != _core.dtype.float32:
        raise NotImplementedError(f"set_default_dtype({d}): vibetensor supports only float32 as the default dtype; "
                                  "pass dtype= to the factories instead")


def get_num_threads() -> _builtins.int:
    return _core.get_num_threads()


def set_num_threads(n: _builtins.int):
    """The threads CPU ops use from now on, as torch's: the pool grows when asked for more than it has."""
    _core.set_num_threads(n)


from . import nn  # noqa: E402,F401
from .nn.functional import pixel_shuffle, pixel_unshuffle, prelu  # noqa: E402,F401
from .nn.functional import (  # noqa: E402,F401
    adaptive_avg_pool1d, avg_pool1d, conv1d, conv_transpose1d, conv_transpose2d, max_pool1d,
)
from .nn.functional import (  # noqa: E402,F401
    bilinear, celu, celu_, channel_shuffle, hardshrink, native_channel_shuffle, rrelu, rrelu_, selu, selu_,
    threshold, threshold_,
)
from . import optim  # noqa: E402,F401
from . import backends  # noqa: E402,F401
from . import utils  # noqa: E402,F401
from . import distributed  # noqa: E402,F401
from .serialization import save, load  # noqa: E402,F401
from .backends import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: E402,F401
from ._memory_format import (  # noqa: E402,F401  (also attaches contiguous/is_contiguous/clone/to(memory_format=))
    channels_last, channels_last_3d, contiguous_format, empty_like, full_like, legacy_contiguous_format,
    memory_format, ones_like, preserve_format, rand_like, randn_like, zeros_like,
)
from ._tensor_misc import _assert, masked_scatter  # noqa: E402,F401  (also attaches detach_, masked_scatter_)
from ._poisson import poisson  # noqa: E402,F401
from ._segment_reduce import segment_reduce  # noqa: E402,F401
from ._trapezoid import cumulative_trapezoid, trapezoid, trapz  # noqa: E402,F401
from ._windows import (  # noqa: E402,F401
    bartlett_window, blackman_window, hamming_window, hann_window, kaiser_window,
)

from . import amp  # noqa: E402,F401  (wraps the Python composites with their autocast policies: before _out)
from .amp import autocast, get_autocast_dtype, is_autocast_enabled, set_autocast_dtype  # noqa: E402,F401
from .amp import set_autocast_enabled  # noqa: E402,F401
from .amp.autocast_mode import clear_autocast_cache, is_autocast_cache_enabled  # noqa: E402,F401
from .amp.autocast_mode import set_autocast_cache_enabled  # noqa: E402,F401
from .amp.autocast_mode import (  # noqa: E402,F401
    get_autocast_cpu_dtype, get_autocast_gpu_dtype, is_autocast_cpu_enabled, set_autocast_cpu_dtype,
    set_autocast_cpu_enabled, set_autocast_gpu_dtype,
)
from . import cpu  # noqa: E402,F401
from . import compiler, func, fx, jit, profiler, quasirandom, testing  # noqa: E402,F401
from . import _dynamo, _inductor  # noqa: E402,F401  (their config modules, for scripts that set them)
from ._vmap import vmap  # noqa: E402,F401
from . import distributions  # noqa: E402,F401
from ._compile import compile  # noqa: E402,F401
from ._surface_sweep import FUNCTIONS as _SURFACE_SWEEP  # noqa: E402  (also attaches their Tensor methods)
globals().update(_SURFACE_SWEEP)
from ._igamma import igamma, igammac  # noqa: E402,F401  (also attaches their Tensor methods)
from ._quantization import (  # noqa: E402,F401
    _int_mm, fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine,
)
from .nn.functional_sweep import pdist  # noqa: E402,F401
from .nn.conv_transpose3d import conv_transpose3d  # noqa: E402,F401
from . import _out  # noqa: E402

_out.install(globals())  # out= on the Python-level functions (Note [out= by copy])
from ._legacy_tensor_types import (  # noqa: E402,F401
    BFloat16Tensor, BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor, LongTensor,
    ShortTensor,
)
