"""Parameter, Buffer and the lazy modules' UninitializedParameter/UninitializedBuffer.

vibetensor's Tensor is a compiled class, so a Parameter (or Buffer) is the tensor itself, marked;
`isinstance(t, Parameter)` reads the mark (the metaclasses below), as torch code expects. Module.__setattr__
registers a Parameter as a parameter and a Buffer as a buffer (with the Buffer's `persistent`), as torch >= 2.5.

An Uninitialized* is a placeholder with no data (it knows its dtype, device and requires_grad): the lazy modules
hold them until the first forward shows the input's size. torch turns the very object into a Parameter/Tensor
(`materialize` changes its class in place); a compiled vibetensor Tensor cannot take over a Python object, so here
`materialize` returns the new tensor and the lazy module puts it in its table: code that kept a reference to the
placeholder (an optimizer built before the dry run) keeps the placeholder."""
from ._tensor_api import Tensor


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        if isinstance(obj, UninitializedTensorMixin):
            return type.__instancecheck__(cls, obj)  # an UninitializedParameter is a Parameter, as torch's
        return isinstance(obj, Tensor) and getattr(obj, "_is_parameter", False)


class Parameter(metaclass=_ParameterMeta):
    def __new__(cls, data=None, requires_grad=True):
        from .. import _functions as F

        t = (F.empty(0) if data is None else data).detach()
        t.requires_grad_(requires_grad)
        t._is_parameter = True
        return t


class _BufferMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and getattr(obj, "_is_buffer", False)


class Buffer(metaclass=_BufferMeta):
    """nn.Buffer(data=None, *, persistent=True): `module.x = nn.Buffer(t)` registers x as a buffer (left out of
    state_dict when persistent=False). The tensor is data detached, keeping its requires_grad."""

    def __new__(cls, data=None, *, persistent=True):
        from .. import _functions as F

        if data is None:
            data = F.empty(0)
        t = data.detach()
        t.requires_grad_(data.requires_grad)
        t.persistent = persistent
        t._is_buffer = True
        return t


class UninitializedTensorMixin:
    """The placeholder's protocol: dtype, device, requires_grad, materialize(shape); reading its shape or data
    raises, as torch's."""

    grad = None  # (Module.zero_grad reads it)

    def __init__(self, requires_grad, device, dtype):
        from .. import _functions as F

        probe = F.empty(0, device=device, dtype=dtype)  # resolves the defaults (float32 / cpu) as a tensor would
        self.dtype, self.device, self.requires_grad = probe.dtype, probe.device, requires_grad

    def materialize(self, shape, device=None, dtype=None):
        from .. import _functions as F

        data = F.empty(*tuple(shape), device=self.device if device is None else device,
                       dtype=self.dtype if dtype is None else dtype)
        return self._become(data)

    def _fail(self, what):
        raise RuntimeError(f"Can't access the {what} of an uninitialized parameter or buffer. This error usually "
                           "happens in `load_state_dict` when trying to load an uninitialized parameter into an "
                           "initialized one. Call `forward` to initialize the parameters before accessing their "
                           "attributes.")

    @property
    def shape(self):
        self._fail("shape")

    def size(self, dim=None):
        self._fail("shape")

    def dim(self):
        self._fail("shape")

    def numel(self):
        self._fail("shape")

    @property
    def data(self):
        self._fail("data")

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def is_floating_point(self):
        return self.dtype.is_floating_point

    def detach(self):  # state_dict lists the placeholder itself, as torch's
        return self

    def to(self, *args, **kwargs):
        """A placeholder of the new dtype/device (Module.to, .double(), ... on a lazy module)."""
        from .. import _functions as F

        moved = F.empty(0, device=self.device, dtype=self.dtype).to(*args, **kwargs)
        return type(self)(self.requires_grad, moved.device, moved.dtype)

    def __repr__(self):
        return f"<{type(self).__name__}>"


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    def __new__(cls, requires_grad=True, device=None, dtype=None):
        return object.__new__(cls)

    def __init__(self, requires_grad=True, device=None, dtype=None):
        super().__init__(requires_grad, device, dtype)

    def _become(self, data):
        return Parameter(data, self.requires_grad)


class UninitializedBuffer(UninitializedTensorMixin):
    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        super().__init__(requires_grad, device, dtype)
        self.persistent = persistent

    def to(self, *args, **kwargs):
        out = super().to(*args, **kwargs)
        out.persistent = self.persistent
        return out

    def _become(self, data):
        return data.requires_grad_(self.requires_grad) if self.requires_grad else data
