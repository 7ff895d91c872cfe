"""Lazy modules: LazyLinear, LazyConv1d/2d/3d, LazyConvTranspose1d/2d/3d, LazyBatchNorm1d/2d/3d and
LazyInstanceNorm1d/2d/3d. They hold UninitializedParameter/UninitializedBuffer placeholders until the first forward
shows the input's features/channels, then materialise them with the regular class's default initialisation and
turn into that class (cls_to_become), as torch's. Before that, state_dict lists the placeholders; load_state_dict
materialises them at the checkpoint's shapes (the class changes at the next forward, as in torch).

Deviation (see parameter.py): materialising puts new tensors in the module's tables; the placeholder objects are
not turned into them, so build optimizers after the dry run (torch's advice too)."""
from ..._C.core import dtype as _dtype
from .conv3d_layers import Conv3d
from .conv_layers import Conv2d
from .conv_more_layers import Conv1d, ConvTranspose1d, ConvTranspose2d
from .conv_transpose3d import ConvTranspose3d
from .layers import Linear
from .norm_layers import BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from .parameter import Parameter, UninitializedBuffer, UninitializedParameter, UninitializedTensorMixin


def _infer_parameters(module, args, kwargs):
    """The forward pre-hook: materialise from the first call's arguments, then become cls_to_become."""
    module.initialize_parameters(*args, **kwargs)
    if module.has_uninitialized_params():
        raise RuntimeError(f"module {module._get_name()} has not been fully initialized")
    module._initialize_hook.remove()
    del module.__dict__["_initialize_hook"]
    if module.cls_to_become is not None:
        module.__class__ = module.cls_to_become


class LazyModuleMixin:
    cls_to_become = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)

    def _placeholders(self):
        for table in (self._parameters, self._buffers):
            for name, t in table.items():
                if isinstance(t, UninitializedTensorMixin):
                    yield table, name, t

    def has_uninitialized_params(self):
        return any(True for _ in self._placeholders())

    def initialize_parameters(self, *args, **kwargs):
        raise NotImplementedError(f"initialize_parameters is not implemented for {type(self).__name__}")

    def _materialize_from(self, make):
        """make(device, dtype) -> the regular module at the inferred size; its freshly initialised tensors replace
        this module's placeholders (those already materialised, e.g. by a partial load, stay)."""
        table, name, first = next(iter(self._placeholders()))
        ref = make(first.device, first.dtype)
        for table, name, t in list(self._placeholders()):
            new = getattr(ref, name).detach().to(device=t.device, dtype=t.dtype)
            table[name] = Parameter(new, t.requires_grad) if isinstance(t, UninitializedParameter) else new

    def _lazy_load_state_dict(self, state_dict, prefix):
        """Called by Module.load_state_dict before it copies: a placeholder with an entry in the checkpoint becomes
        an (uninitialised) tensor of that entry's shape."""
        for table, name, t in list(self._placeholders()):
            v = state_dict.get(prefix + name)
            if v is not None and not isinstance(v, UninitializedTensorMixin):
                table[name] = t.materialize(tuple(v.shape))

    def _replicate_for_data_parallel(self):
        raise RuntimeError("Modules with uninitialized parameters can't be used with `DataParallel`. Run a dummy "
                           "forward pass to correctly initialize the modules")


class LazyLinear(LazyModuleMixin, Linear):
    cls_to_become = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def initialize_parameters(self, input, *args, **kwargs):
        if self.has_uninitialized_params():
            self.in_features = input.shape[-1]
            self._materialize_from(lambda device, dtype: Linear(self.in_features, self.out_features,
                                                                self.bias is not None, device, dtype))
        if self.in_features == 0:  # loaded from a checkpoint before the first call: torch reads it off the input
            if input.shape[-1] != self.weight.shape[-1]:
                raise AssertionError(f"The in_features inferred from input: {input.shape[-1]} is not equal to "
                                     f"in_features from self.weight: {self.weight.shape[-1]}")
            self.in_features = input.shape[-1]


class _LazyConvMixin(LazyModuleMixin):
    _n = 1

    def _lazy_init(self, out_channels, bias, device, dtype):
        """After the regular __init__ ran with 0 channels: placeholders, and the hook LazyModuleMixin.__init__
        would have registered (the regular class's __init__ is called directly, with its own signature)."""
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)

    def _in_channels(self, input):
        n = self._n
        if input.dim() not in (n + 1, n + 2):
            raise RuntimeError(f"Expected {n + 1}D (unbatched) or {n + 2}D (batched) input to {self._get_name()}, "
                               f"but got input of size: torch.Size({list(input.shape)})")
        return input.shape[1] if input.dim() == n + 2 else input.shape[0]

    def initialize_parameters(self, input, *args, **kwargs):
        if self.has_uninitialized_params():
            self.in_channels = self._in_channels(input)
            if self.in_channels % self.groups:
                raise ValueError("in_channels must be divisible by groups")
            self._materialize_from(self._regular)

    def _regular(self, device, dtype):
        return self.cls_to_become(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                                  self.dilation, self.groups, self.bias is not None, self.padding_mode, device, dtype)


class _LazyConvTransposeMixin(_LazyConvMixin):
    def _regular(self, device, dtype):
        return self.cls_to_become(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
                                  self.output_padding, self.groups, self.bias is not None, self.dilation,
                                  self.padding_mode, device, dtype)


def _lazy_conv(regular, n, transposed):
    """LazyConv{n}d / LazyConvTranspose{n}d over the regular class: torch's signature less in_channels."""
    mixin = _LazyConvTransposeMixin if transposed else _LazyConvMixin
    if transposed:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                     dilation=1, padding_mode="zeros", device=None, dtype=None):
            regular.__init__(self, 0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation,
                             padding_mode, device, dtype)
            self._lazy_init(out_channels, bias, device, dtype)
    else:
        def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                     padding_mode="zeros", device=None, dtype=None):
            regular.__init__(self, 0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode, device,
                             dtype)
            self._lazy_init(out_channels, bias, device, dtype)

    name = f"LazyConv{'Transpose' if transposed else ''}{n}d"
    return type(name, (mixin, regular), {"__init__": __init__, "cls_to_become": regular, "_n": n,
                                         "__module__": __name__, "__qualname__": name})


LazyConv1d = _lazy_conv(Conv1d, 1, False)
LazyConv2d = _lazy_conv(Conv2d, 2, False)
LazyConv3d = _lazy_conv(Conv3d, 3, False)
LazyConvTranspose1d = _lazy_conv(ConvTranspose1d, 1, True)
LazyConvTranspose2d = _lazy_conv(ConvTranspose2d, 2, True)
LazyConvTranspose3d = _lazy_conv(ConvTranspose3d, 3, True)


class _LazyNormBase(LazyModuleMixin):
    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True):
        from .. import _functions as T

        super().__init__(0, eps, momentum, False, False, device, dtype)
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = T.tensor(0, dtype=_dtype.int64, device=device)

    def initialize_parameters(self, input, *args, **kwargs):
        if self.has_uninitialized_params():
            self.num_features = input.shape[1]  # torch's choice, an unbatched instance-norm input included
            self._materialize_from(lambda device, dtype: self.cls_to_become(
                self.num_features, self.eps, self.momentum, self.affine, self.track_running_stats, device, dtype,
                bias=self.bias is not None or not self.affine))


def _lazy_norm(regular):
    name = "Lazy" + regular.__name__
    return type(name, (_LazyNormBase, regular), {"cls_to_become": regular, "__module__": __name__,
                                                 "__qualname__": name})


LazyBatchNorm1d = _lazy_norm(BatchNorm1d)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d)
LazyBatchNorm3d = _lazy_norm(BatchNorm3d)
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d)
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d)
LazyInstanceNorm3d = _lazy_norm(InstanceNorm3d)
