"""The names the surface sweep added are public where torch has them: vt.nn, vt.nn.functional, vt, vt.special and
the Tensor methods, each the implementation its own module tests."""
import inspect

import torch

import vibetensor.torch as vt
from vibetensor.torch import _igamma, _surface_sweep
from vibetensor.torch.nn import (adaptive_softmax, conv_transpose3d, functional_sweep, lazy, parameter, pool_indices,
                                 unpool)

NN = {
    parameter: ["Buffer", "UninitializedParameter", "UninitializedBuffer"],
    lazy: ["LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
           "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d",
           "LazyInstanceNorm2d", "LazyInstanceNorm3d"],
    unpool: ["MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"],
    pool_indices: ["AdaptiveMaxPool3d"],
    functional_sweep: ["UpsamplingNearest2d", "UpsamplingBilinear2d", "FeatureAlphaDropout"],
    conv_transpose3d: ["ConvTranspose3d"],
    adaptive_softmax: ["AdaptiveLogSoftmaxWithLoss"],
}
FUNCTIONAL = {
    unpool: ["max_unpool1d", "max_unpool2d", "max_unpool3d"],
    pool_indices: ["max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
                   "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d",
                   "adaptive_max_pool3d_with_indices"],
    functional_sweep: ["upsample", "upsample_nearest", "upsample_bilinear", "pdist", "elu_", "hardtanh_",
                       "leaky_relu_", "feature_alpha_dropout"],
    conv_transpose3d: ["conv_transpose3d"],
}
TOP = {
    _surface_sweep: ["bitwise_left_shift", "bitwise_right_shift", "histogram", "unsafe_chunk", "unsafe_split",
                     "unsafe_split_with_sizes", "strided", "sparse_coo", "sparse_csr", "layout"],
    _igamma: ["igamma", "igammac"],
    functional_sweep: ["pdist"],
    conv_transpose3d: ["conv_transpose3d"],
}
METHODS = ["bitwise_left_shift", "bitwise_right_shift", "bitwise_left_shift_", "bitwise_right_shift_", "__lshift__",
           "__rshift__", "__ilshift__", "__irshift__", "__rlshift__", "__rrshift__", "layout", "is_meta", "is_sparse",
           "is_quantized", "is_nested", "is_mkldnn", "is_sparse_csr", "is_vulkan", "is_xpu", "is_mps", "is_ipu",
           "is_xla", "is_maia", "is_mtia", "share_memory_", "is_shared", "new", "new_empty_strided", "as_subclass",
           "apply_", "map_", "resize_as_", "igamma", "igammac", "igamma_", "igammac_", "histogram", "hardshrink",
           "prelu", "absolute_", "arctan2_", "addmv_", "unsafe_chunk", "unsafe_split", "unsafe_split_with_sizes"]


def test_nn_and_functional_names():
    for namespace, table in ((vt.nn, NN), (vt.nn.functional, FUNCTIONAL), (vt, TOP)):
        for module, names in table.items():
            for name in names:
                assert getattr(namespace, name) is getattr(module, name), (namespace.__name__, name)
    torch_ns = {vt.nn: torch.nn, vt.nn.functional: torch.nn.functional, vt: torch}
    for namespace, table in ((vt.nn, NN), (vt.nn.functional, FUNCTIONAL), (vt, TOP)):
        for names in table.values():
            for name in names:
                assert hasattr(torch_ns[namespace], name), name  # each is a torch name


def test_special_and_methods():
    assert vt.special.gammainc is _igamma.igamma and vt.special.gammaincc is _igamma.igammac
    for name in METHODS:
        assert hasattr(vt.Tensor, name) and hasattr(torch.Tensor, name), name


# torch 2.13 gave the norms a keyword-only bias flag (vt follows 2.13); older torch's Lazy norms end before it
TORCH_NORM_HAS_BIAS = "bias" in inspect.signature(torch.nn.BatchNorm1d.__init__).parameters
NORM_BIAS = ("bias", True, inspect.Parameter.KEYWORD_ONLY)


def _params(fn):
    return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]


def test_signatures_match_torch():
    """Names, defaults and kinds of every parameter (torch's annotations aside)."""
    for namespace, tns, table in ((vt.nn, torch.nn, NN), (vt.nn.functional, torch.nn.functional, FUNCTIONAL)):
        for names in table.values():
            for name in names:
                ours, theirs = getattr(namespace, name), getattr(tns, name)
                if name in ("Buffer", "UninitializedParameter", "UninitializedBuffer"):  # the constructor proper
                    ours = ours.__new__ if "__new__" in vars(ours) else ours.__init__
                    assert _params(ours)[1:] == _params(theirs.__new__)[1:], name
                    continue
                try:
                    want = _params(theirs)
                except ValueError:  # a builtin without a signature (elu_, hardtanh_, leaky_relu_, pdist)
                    continue
                if want and want[0][0] == "args":  # torch's boolean_dispatch wrappers (adaptive_max_pool3d)
                    continue
                got = _params(ours)
                if not TORCH_NORM_HAS_BIAS and "Norm" in name:
                    assert got[-1] == NORM_BIAS, name
                    got = got[:-1]
                assert got == want, name
