"""torch's layout= keyword for the factories: _check_layout (vt.strided and None pass, the other layouts are
refused) and empty/zeros/ones, which wrap the C++ factories so that they take it."""
from .._C import core as _core

# empty/zeros/ones(*size, dtype=, device=) are parsed in C++ (core/bindings/tensor.cpp): they are hot, so their
# Python wrappers (for torch's layout= keyword, which the C++ parser does not take) only forward the call.
_c_empty, _c_zeros, _c_ones = _core.empty, _core.zeros, _core.ones


_strided = [None]


def _check_layout(layout, fname):
    """torch's layout= keyword (often layout=x.layout): None and vt.strided pass; the sparse and mkldnn layouts
    are refused, vibetensor's tensors being all strided."""
    if layout is None or layout is _strided[0]:
        return
    from ._surface_sweep import layout as layout_type, strided

    _strided[0] = strided  # (the import is not free: strided is remembered for the next call)
    if not isinstance(layout, layout_type):
        raise TypeError(f"{fname}(): argument 'layout' must be torch.layout, not {type(layout).__name__}")
    if layout._name != "strided":
        raise NotImplementedError(f"{fname}(): layout={layout!r} is not supported: vibetensor tensors are all "
                                  "strided (dense)")


# A call without keywords goes straight through (the common, hot one); only keywords are looked at.
def empty(*size, **kwargs):
    if not kwargs:
        return _c_empty(*size)
    if "layout" in kwargs:
        _check_layout(kwargs.pop("layout"), "empty")
    return _c_empty(*size, **kwargs)


def zeros(*size, **kwargs):
    if not kwargs:
        return _c_zeros(*size)
    if "layout" in kwargs:
        _check_layout(kwargs.pop("layout"), "zeros")
    return _c_zeros(*size, **kwargs)


def ones(*size, **kwargs):
    if not kwargs:
        return _c_ones(*size)
    if "layout" in kwargs:
        _check_layout(kwargs.pop("layout"), "ones")
    return _c_ones(*size, **kwargs)
