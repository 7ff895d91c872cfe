"""Tensor.detach_, the requires_grad setter's leaf check, and masked_scatter / masked_scatter_ (method and
vt.masked_scatter), attached to the compiled Tensor class at import; and vt._assert, torch's traceable assert that
model code calls (torchvision-style `torch._assert(x.shape[1] == self.dim, "...")`). float(t) of a tensor that
requires grad warns once per process, as torch's does.

detach_ can only be done from Python where it amounts to clearing requires_grad: on a leaf, or on a tensor
outside autograd. A computed tensor cannot drop its grad_fn in place without the C++ autograd surface
(core/bindings/autograd.cpp exposes grad_fn read-only), so that case raises NotImplementedError pointing at
detach(). masked_scatter composes a cumulative count of the mask (which source element each True position takes)
with index_select and where, so it is differentiable in self and source."""
from .._C import core as _core
from . import _functions as F
from ._select_ops import _type_name, index_select

Tensor = _core.Tensor


def detach_(self):
    if self._base is not None:
        raise RuntimeError("Can't detach views in-place. Use detach() instead.")
    if self.requires_grad and self.grad_fn is not None:
        raise NotImplementedError("detach_() of a tensor computed by autograd (it has a grad_fn) is not supported "
                                  "in vibetensor; use t = t.detach() instead")
    if self.requires_grad:
        self.requires_grad_(False)
    return self


_requires_grad = Tensor.__dict__["requires_grad"]


def _set_requires_grad(self, flag):
    # torch's setter (unlike requires_grad_) refuses a non-leaf even for True: model code such as wav2vec 2.0's
    # feature encoder (`input_values[:, None].requires_grad = True`) relies on that to catch an input that needs grad
    if flag and self.grad_fn is not None:
        raise RuntimeError("you can only change requires_grad flags of leaf variables.")
    _requires_grad.fset(self, flag)


Tensor.requires_grad = property(_requires_grad.fget, _set_requires_grad, doc=_requires_grad.__doc__)


def _check(self, mask, source):
    if mask.dtype != _core.dtype.bool:
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with dtype "
                           f"{_type_name(mask.dtype)}")
    if self.dtype != source.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got "
                           f"{_type_name(self.dtype)} and {_type_name(source.dtype)}")


def _scatter(self, mask, source):
    """self and mask already of one shape: True positions take source's elements in order."""
    flat = mask.reshape(-1)
    count = int(flat.sum().item()) if flat.numel() else 0
    if count > source.numel():
        raise RuntimeError("Number of elements of source < number of ones in mask")
    if count == 0:  # source still takes part (an empty selection of it), so it gets torch's zero gradient
        taken = index_select(source.reshape(-1), 0, flat.nonzero().reshape(-1))
        return F.cat([self.reshape(-1), taken]).reshape(tuple(self.shape))
    # position k (row-major) takes source element (number of True before k); False positions index 0, unused
    idx = (flat.to(_core.dtype.int64).cumsum(0) - 1).clamp(min=0)
    taken = index_select(source.reshape(-1), 0, idx).reshape(tuple(self.shape))
    return F.where(mask, taken, self)


def masked_scatter(input, mask, source):
    _check(input, mask, source)
    shape = F.broadcast_shapes(tuple(input.shape), tuple(mask.shape))
    return _scatter(input.expand(*shape), mask.expand(*shape), source)


def masked_scatter_(self, mask, source):
    _check(self, mask, source)
    shape = tuple(self.shape)
    if F.broadcast_shapes(shape, tuple(mask.shape)) != shape:
        raise RuntimeError(f"masked_scatter_: mask of shape {list(mask.shape)} can't be broadcast to self's "
                           f"shape {list(shape)}")
    return self.copy_(_scatter(self, mask.expand(*shape), source))


_item_float = Tensor.__float__
_float_warned = []


def _float(self):
    if self.requires_grad and not _float_warned:  # torch's TORCH_WARN_ONCE
        import warnings

        _float_warned.append(True)
        warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to unexpected behavior.\n"
                      "Consider using tensor.detach() first.", UserWarning, stacklevel=2)
    return _item_float(self)


for _name, _fn in {"detach_": detach_, "masked_scatter": masked_scatter, "masked_scatter_": masked_scatter_,
                   "__float__": _float}.items():
    setattr(Tensor, _name, _fn)


def _assert(condition, message):
    """torch._assert: AssertionError(message) when condition (a bool or a one-element tensor) is false; unlike the
    assert statement it is not stripped by python -O."""
    if not condition:
        raise AssertionError(message)
