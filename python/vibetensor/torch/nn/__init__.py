"""vt.nn: Module, containers, the standard layers, init, utils and the functional ops, torch-shaped."""
from . import functional  # noqa: F401
from . import init  # noqa: F401
from . import utils  # noqa: F401
from .attention_layers import (  # noqa: F401
    MultiheadAttention,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .conv_layers import AdaptiveAvgPool2d, AvgPool2d, Conv2d, Flatten, MaxPool2d, Softmax, Unflatten  # noqa: F401
from .conv_more_layers import (  # noqa: F401
    AdaptiveAvgPool1d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d, Conv1d, ConvTranspose1d, ConvTranspose2d,
    MaxPool1d,
)
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from .layers import (  # noqa: F401
    GELU,
    Dropout,
    Embedding,
    Identity,
    LayerNorm,
    Linear,
    ReLU,
    RMSNorm,
    SiLU,
    Tanh,
)
from .activation_layers import (  # noqa: F401
    ELU, AlphaDropout, Dropout1d, Dropout2d, Dropout3d, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid,
    Mish, PixelShuffle, PixelUnshuffle, PReLU, ReLU6, Sigmoid, Softplus, Upsample,
)
from .loss_layers import (  # noqa: F401
    BCELoss,
    BCEWithLogitsLoss,
    CosineSimilarity,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    NLLLoss,
    PairwiseDistance,
    SmoothL1Loss,
)
from .loss_layers_more import (  # noqa: F401
    CosineEmbeddingLoss, EmbeddingBag, GaussianNLLLoss, HingeEmbeddingLoss, MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss, MultiMarginLoss, PoissonNLLLoss, SoftMarginLoss, TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)
from .module import Module  # noqa: F401
from . import module_more  # noqa: F401  (attaches get_buffer, set_submodule, type, to_empty, full backward hooks)
from .norm_layers import (  # noqa: F401
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, SyncBatchNorm,
)
from .parameter import Parameter  # noqa: F401
from .rnn_layers import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase  # noqa: F401
from .misc_layers import (  # noqa: F401
    CELU, GLU, SELU, Bilinear, ChannelShuffle, CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d,
    ConstantPad2d, ConstantPad3d, Fold, Hardshrink, LocalResponseNorm, LogSoftmax, ReflectionPad1d, ReflectionPad2d,
    ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, RReLU, Softmax2d, Softmin, Softshrink,
    Softsign, Tanhshrink, Threshold, Unfold, ZeroPad1d, ZeroPad2d, ZeroPad3d,
)
from .conv3d_layers import (  # noqa: F401
    AdaptiveAvgPool3d, AvgPool3d, Conv3d, LPPool1d, LPPool2d, LPPool3d, MaxPool3d,
)
from .functional_ctc import CTCLoss  # noqa: F401
from . import parallel  # noqa: F401,E402
from .parallel import DataParallel  # noqa: F401,E402
from . import attention  # noqa: F401,E402
from .parameter import Buffer, UninitializedBuffer, UninitializedParameter  # noqa: F401,E402
from .conv_transpose3d import ConvTranspose3d  # noqa: F401,E402
from .lazy import (  # noqa: F401,E402
    LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d, LazyConv2d, LazyConv3d, LazyConvTranspose1d,
    LazyConvTranspose2d, LazyConvTranspose3d, LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d, LazyLinear,
)
from .unpool import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d  # noqa: F401,E402
from .pool_indices import AdaptiveMaxPool3d  # noqa: F401,E402
from .functional_sweep import FeatureAlphaDropout, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401,E402
from .adaptive_softmax import AdaptiveLogSoftmaxWithLoss  # noqa: F401,E402
from . import modules  # noqa: F401,E402
