"""Autocast policies for the torch functions vibetensor writes in Python (F.conv2d, F.mse_loss, vt.matmul, ...):
the same policies the dispatcher's autocast layer applies to its ops (vt/core/autocast.h), applied around the
Python function: its eligible tensor arguments are cast, then its body runs with autocast suspended, so the ops
inside it keep the dtypes the policy chose (Note [Autocast suspension]).

install() wraps each listed function once and puts the wrapper wherever vibetensor's modules hold the original
(vt.matmul, F.mse_loss, the module that defines it, a class's staticmethod), so module code and layers that
call them by module attribute get the policy too. Outside every autocast region a wrapper costs an extra Python
call and one attribute test (about 0.25 us on the devbox).

A row with no policy for a device type still runs the body suspended: for the functions that are native kernels
in torch (vt.linalg's factorizations, mv) nothing inside is autocast there either. Functions torch decomposes
into products (chain_matmul, multi_dot) get LowerPrecision on both device types, as their pieces would. einsum
has no row: its pieces meet autocast one by one, as torch's do - each GEMM in lower precision, while a pair with
nothing to contract is a mul that keeps (and promotes) its dtypes (Note [einsum pairs without a contraction]).
"""
import functools
import sys

from ..._C import autograd as _ag
from ..._C import core as _core
from .._no_autocast import call_without_autocast
from .autocast_mode import _Regions

_F32 = _core.dtype.float32
_F64 = _core.dtype.float64

# (module, name, cpu policy, cuda policy): torch's lists, for the functions vibetensor defines in Python.
_LOW, _FP32, _PROMOTE = "lower", "fp32", "promote"
_BOTH_LOW = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "prelu",
             "scaled_dot_product_attention"]
_VT_LOW_BOTH = ["matmul", "addmm", "baddbmm", "addbmm", "chain_matmul"]
_VT_LOW_CUDA = ["addmv", "addr", "mv"]
_F_FP32_BOTH = ["binary_cross_entropy_with_logits", "cosine_embedding_loss", "hinge_embedding_loss", "kl_div",
                "l1_loss", "margin_ranking_loss", "mse_loss", "multilabel_margin_loss", "multi_margin_loss",
                "nll_loss", "poisson_nll_loss", "smooth_l1_loss", "huber_loss", "soft_margin_loss",
                "triplet_margin_loss"]
_F_FP32_CUDA = ["cosine_similarity", "group_norm", "normalize", "softmin"]
_F_FP32_CPU = ["binary_cross_entropy", "ctc_loss", "avg_pool3d", "max_pool3d", "adaptive_avg_pool3d",
               "grid_sample"]


def _table():
    F = "vibetensor.torch.nn.functional"
    vt = "vibetensor.torch"
    rows = [(F, n, _LOW, _LOW) for n in _BOTH_LOW]
    rows += [(vt, n, _LOW, _LOW) for n in _VT_LOW_BOTH] + [(vt, n, None, _LOW) for n in _VT_LOW_CUDA]
    L = "vibetensor.torch.linalg"
    rows += [(L, "multi_dot", _LOW, _LOW), (L, "vecdot", _LOW, _LOW)]
    rows += [(F, n, _FP32, _FP32) for n in _F_FP32_BOTH] + [(F, n, None, _FP32) for n in _F_FP32_CUDA]
    rows += [(F, n, _FP32, None) for n in _F_FP32_CPU]
    rows += [(vt, "cdist", _FP32, _FP32), (vt, "dist", None, _FP32), (vt, "renorm", None, _FP32),
             (vt, "erfinv", None, _FP32), (vt, "trace", _FP32, None)]
    # Native kernels in torch, Python composites over vt::mm here: suspended everywhere, float32 on the CPU
    # where torch's CPU list says so.
    rows += [(L, n, None, None) for n in ("solve_triangular", "lu_factor", "lu_solve", "det", "slogdet",
                                           "matrix_exp")]
    rows += [(L, n, _FP32, None) for n in ("inv", "solve", "cholesky", "cholesky_ex", "qr", "lstsq", "eigh",
                                           "eigvalsh", "svd", "svdvals", "cond")]
    rows += [(vt, n, _FP32, None) for n in ("inverse", "pinverse", "cholesky_solve")]
    rows += [(vt, "index_copy", _PROMOTE, _PROMOTE)]  # torch's promote list (its kernel needs one dtype)
    return rows


def _tensors(x, out):
    if isinstance(x, _core.Tensor):
        out.append(x)
    elif isinstance(x, (list, tuple)):
        for e in x:
            _tensors(e, out)


def _cast(x, device_type, dtype):
    """x with every eligible tensor in it (Note [Autocast eligibility]) cast to dtype; lists and tuples kept."""
    if isinstance(x, _core.Tensor):
        if (x.device.type == device_type and x.is_floating_point() and x.dtype is not _F64
                and x.dtype is not dtype):
            return x.to(dtype)
        return x
    if isinstance(x, (list, tuple)):
        return type(x)(_cast(e, device_type, dtype) for e in x)
    if isinstance(x, dict):
        return {k: _cast(v, device_type, dtype) for k, v in x.items()}
    return x


def _widest(tensors, device_type):
    """The widest floating dtype among the eligible tensors (the Promote policy's target), or None."""
    widest = None
    for t in tensors:
        if t.device.type == device_type and t.is_floating_point() and t.dtype is not _F64:
            widest = t.dtype if widest is None else _core.promote_types(widest, t.dtype)
    return widest


def _wrap(fn, cpu_policy, cuda_policy):
    @functools.wraps(fn)
    def with_policy(*args, **kwargs):
        if not _Regions.open:
            return fn(*args, **kwargs)
        state = _ag._get_autocast()
        if state[4] or not (state[0] or state[1]):  # suspended, or no region of this thread is enabled
            return fn(*args, **kwargs)
        found = []
        _tensors(args, found)
        _tensors(list(kwargs.values()), found)
        k = 1 if any(t.is_cuda for t in found) else 0
        policy = (cpu_policy, cuda_policy)[k]
        if state[k] and policy:
            device_type = ("cpu", "cuda")[k]
            dtype = state[2 + k] if policy == _LOW else _F32 if policy == _FP32 else _widest(found, device_type)
            if dtype is not None:
                args = _cast(args, device_type, dtype)
                kwargs = {key: _cast(v, device_type, dtype) for key, v in kwargs.items()}
        return call_without_autocast(fn, *args, **kwargs)
    with_policy._autocast_policy = (cpu_policy, cuda_policy)
    return with_policy


def install():
    """Wraps every listed function (once) wherever a vibetensor.torch module, or the Tensor class, holds it."""
    modules = [m for name, m in list(sys.modules.items()) if name.startswith("vibetensor.torch") and m is not None]
    classes = [v for m in modules for v in vars(m).values()
               if isinstance(v, type) and v.__module__.startswith("vibetensor.torch")]
    holders = {}  # id(function) -> [(namespace, attribute, kind)]
    for ns in modules + classes + [_core.Tensor]:
        for attr, value in list(vars(ns).items()):
            if isinstance(value, staticmethod):  # a layer holding its function (nn.MaxPool3d's _pool)
                holders.setdefault(id(value.__func__), []).append((ns, attr, staticmethod))
            elif callable(value):
                holders.setdefault(id(value), []).append((ns, attr, None))
    for module_name, name, cpu_policy, cuda_policy in _table():
        original = getattr(sys.modules[module_name], name)
        if hasattr(original, "_autocast_policy"):
            continue
        wrapped = _wrap(original, cpu_policy, cuda_policy)
        for ns, attr, kind in holders.get(id(original), ()):
            setattr(ns, attr, kind(wrapped) if kind else wrapped)
