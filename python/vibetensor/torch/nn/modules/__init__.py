"""vt.nn.modules: torch.nn.modules' namespace - the layers under their submodules (batchnorm, conv, loss, ...) and
the private base classes public code reaches through it: isinstance(m, nn.modules.batchnorm._BatchNorm) to keep
norms out of weight decay or freeze them, nn.modules.conv._ConvNd to initialise every convolution,
class FocalLoss(nn.modules.loss._Loss), `from torch.nn.modules.utils import _pair`.

The classes are vt.nn's own (nothing is copied): each submodule here is a namespace listing, for one of torch's
submodules, the names of its __all__ that vt.nn has, plus the private bases. Importable as packages are:
`import vibetensor.torch.nn.modules.batchnorm` works (the submodules are registered in sys.modules).
`module` also holds the global register_module_*_hook functions (module_more.py).
Absent, as from vt.nn: CrossMapLRN2d, NLLLoss2d, LinearCrossEntropyLoss, FractionalMaxPool2d/3d and Container."""
import collections.abc
import sys
import types
from itertools import repeat

from .. import attention_layers as _attention_layers
from .. import conv_base as _conv_base
from .. import conv_layers as _conv_layers
from .. import conv_more_layers as _conv_more_layers
from .. import conv3d_layers as _conv3d_layers
from .. import lazy as _lazy
from .. import loss_layers as _loss_layers
from .. import misc_layers as _misc_layers
from .. import module_more as _module_more
from .. import norm_layers as _norm_layers
from .. import unpool as _unpool

_nn = sys.modules[__name__.rsplit(".", 1)[0]]

_PUBLIC = {
    "activation": "Threshold ReLU RReLU Hardtanh ReLU6 Sigmoid Hardsigmoid Tanh SiLU Mish Hardswish ELU CELU SELU GLU "
                  "GELU Hardshrink LeakyReLU LogSigmoid Softplus Softshrink MultiheadAttention PReLU Softsign "
                  "Tanhshrink Softmin Softmax Softmax2d LogSoftmax",
    "adaptive": "AdaptiveLogSoftmaxWithLoss",
    "batchnorm": "BatchNorm1d LazyBatchNorm1d BatchNorm2d LazyBatchNorm2d BatchNorm3d LazyBatchNorm3d SyncBatchNorm",
    "channelshuffle": "ChannelShuffle",
    "container": "Sequential ModuleList ModuleDict ParameterList ParameterDict",
    "conv": "Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d LazyConv1d LazyConv2d LazyConv3d "
            "LazyConvTranspose1d LazyConvTranspose2d LazyConvTranspose3d",
    "distance": "PairwiseDistance CosineSimilarity",
    "dropout": "Dropout Dropout1d Dropout2d Dropout3d AlphaDropout FeatureAlphaDropout",
    "flatten": "Flatten Unflatten",
    "fold": "Fold Unfold",
    "instancenorm": "InstanceNorm1d InstanceNorm2d InstanceNorm3d LazyInstanceNorm1d LazyInstanceNorm2d "
                    "LazyInstanceNorm3d",
    "lazy": "",
    "linear": "Bilinear Identity LazyLinear Linear",
    "loss": "L1Loss NLLLoss KLDivLoss MSELoss BCELoss BCEWithLogitsLoss HingeEmbeddingLoss MultiLabelMarginLoss "
            "SmoothL1Loss HuberLoss SoftMarginLoss CrossEntropyLoss MultiLabelSoftMarginLoss CosineEmbeddingLoss "
            "MarginRankingLoss MultiMarginLoss TripletMarginLoss TripletMarginWithDistanceLoss CTCLoss "
            "PoissonNLLLoss GaussianNLLLoss",
    "module": "Module",
    "normalization": "LocalResponseNorm LayerNorm GroupNorm RMSNorm",
    "padding": "CircularPad1d CircularPad2d CircularPad3d ConstantPad1d ConstantPad2d ConstantPad3d ZeroPad1d "
               "ZeroPad2d ZeroPad3d ReflectionPad1d ReflectionPad2d ReflectionPad3d ReplicationPad1d "
               "ReplicationPad2d ReplicationPad3d",
    "pixelshuffle": "PixelShuffle PixelUnshuffle",
    "pooling": "AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d AdaptiveMaxPool2d "
               "AdaptiveMaxPool3d AvgPool1d AvgPool2d AvgPool3d LPPool1d LPPool2d LPPool3d MaxPool1d MaxPool2d "
               "MaxPool3d MaxUnpool1d MaxUnpool2d MaxUnpool3d",
    "rnn": "RNNBase RNN LSTM GRU RNNCellBase RNNCell LSTMCell GRUCell",
    "sparse": "Embedding EmbeddingBag",
    "transformer": "TransformerEncoder TransformerDecoder TransformerEncoderLayer TransformerDecoderLayer Transformer",
    "upsampling": "UpsamplingNearest2d UpsamplingBilinear2d Upsample",
}

_PRIVATE = {
    "batchnorm": {"_NormBase": _norm_layers._NormBase, "_BatchNorm": _norm_layers._BatchNorm,
                  "_LazyNormBase": _lazy._LazyNormBase},
    "instancenorm": {"_InstanceNorm": _norm_layers._InstanceNorm, "_NormBase": _norm_layers._NormBase,
                     "_LazyNormBase": _lazy._LazyNormBase},
    "conv": {"_ConvNd": _conv_base._ConvNd, "_ConvTransposeNd": _conv_more_layers._ConvTransposeNd,
             "LazyModuleMixin": _lazy.LazyModuleMixin},
    "lazy": {"LazyModuleMixin": _lazy.LazyModuleMixin},
    "loss": {"_Loss": _loss_layers._Loss, "_WeightedLoss": _loss_layers._WeightedLoss},
    "pooling": {"_MaxPoolNd": _conv_layers._MaxPoolNd, "_AvgPoolNd": _conv_layers._AvgPoolNd,
                "_AdaptiveAvgPoolNd": _conv_layers._AdaptiveAvgPoolNd, "_LPPoolNd": _conv3d_layers._LPPoolNd,
                "_MaxUnpoolNd": _unpool._MaxUnpoolNd},
    "padding": {"_ConstantPadNd": _misc_layers._ConstantPadNd, "_CircularPadNd": _misc_layers._CircularPadNd},
    "module": {n: getattr(_module_more, n) for n in ("register_module_forward_pre_hook", "register_module_forward_hook",
                                                     "register_module_full_backward_pre_hook",
                                                     "register_module_full_backward_hook")},
    "linear": {"NonDynamicallyQuantizableLinear": _attention_layers.NonDynamicallyQuantizableLinear},
    "transformer": {n: getattr(_attention_layers, n) for n in ("_get_clones", "_get_activation_fn", "_get_seq_len",
                                                               "_generate_square_subsequent_mask",
                                                               "_detect_is_causal_mask")},
}


def _ntuple(n, name="parse"):
    """torch's tuple parsers: an iterable as a tuple, anything else repeated n times."""
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


def _reverse_repeat_tuple(t, n):
    """Each element of t repeated n times, in reverse order (a conv's padding as F.pad's argument)."""
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size, defaults):
    """An adaptive pool's output size with its None entries taken from `defaults` (the input's trailing sizes)."""
    if isinstance(out_size, int):
        return out_size
    if len(defaults) <= len(out_size):
        raise ValueError(f"Input dimension should be at least {len(out_size) + 1}")
    return [v if v is not None else d for v, d in zip(out_size, defaults[-len(out_size):])]


def _submodule(name, members):
    mod = types.ModuleType(f"{__name__}.{name}")
    mod.__dict__.update(members)
    mod.__all__ = [k for k in members if not k.startswith("_")]
    sys.modules[mod.__name__] = mod
    globals()[name] = mod
    return mod


__all__ = []
for _name, _names in _PUBLIC.items():
    _members = {n: getattr(_nn, n) for n in _names.split()}
    _members.update(_PRIVATE.get(_name, {}))
    _submodule(_name, _members)
    for _n in _names.split():
        globals()[_n] = _members[_n]
        __all__.append(_n)

_single, _pair, _triple, _quadruple = (_ntuple(n, f"_{w}") for n, w in
                                       ((1, "single"), (2, "pair"), (3, "triple"), (4, "quadruple")))
utils = _submodule("utils", {"_ntuple": _ntuple, "_single": _single, "_pair": _pair, "_triple": _triple,
                             "_quadruple": _quadruple, "_reverse_repeat_tuple": _reverse_repeat_tuple,
                             "_list_with_default": _list_with_default})
del _name, _names, _members, _n
