"""torch's layout= keyword for the factories: _check_layout (vt.strided and None pass, the other layouts are
refused). empty/zeros/ones take it through their wrappers in _functions.py (with the default device)."""
from .._C import core as _core

# The C++ empty, for the factories that fill a new tensor (no default-device or layout handling wanted there).
_c_empty = _core.empty


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
