# Tensor pretty-printing for vibetensor, matching PyTorch's repr(tensor) text.
#
# Pure Python + numpy: the core hands over the tensor's values as a numpy array
# (bool, int64 or float64; half/bfloat16/float32 values already widened to
# float64, which is exact) together with the dtype name, and format_tensor()
# lays them out the way torch/_tensor_str.py does: one shared column width,
# integer-valued floats as "1.", scientific notation for wide value ranges,
# "..." summarization of big tensors, line wrapping at `linewidth`, and the
# trailing ", device=..., dtype=..., grad_fn=..." suffixes.  The numeric
# decisions (int mode, sci mode, widths) are made on the values exactly as
# torch makes them, so the result is byte-for-byte identical, with "vt."
# printed in place of "torch.".
#
# Print options live in a module-global object, with torch's defaults and
# set_printoptions()/get_printoptions() semantics.

import contextlib
import math

import numpy as np

__all__ = ["format_tensor", "set_printoptions", "get_printoptions", "printoptions"]

_DEFAULT_DTYPE = "float32"  # torch omits dtype= for this, int64 and bool
_IMPLICIT_DTYPES = {_DEFAULT_DTYPE, "complex64", "int64", "bool"}
_DTYPE_ALIASES = {"half": "float16", "float": "float32", "double": "float64",
                  "long": "int64", "int": "int32", "short": "int16"}


class _PrintOptions:
    def __init__(self):
        self.precision, self.threshold, self.edgeitems = 4, 1000, 3
        self.linewidth, self.sci_mode = 80, None


_OPTS = _PrintOptions()
_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None,
                     linewidth=None, profile=None, sci_mode=None):
    """Set printing options (same meaning and defaults as torch.set_printoptions).

    `profile` ("default", "short", "full") is applied first; explicit arguments
    override it.  Like torch, `sci_mode` is always assigned (None = automatic).
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"unknown print profile {profile!r}")
        for key, val in _PROFILES[profile].items():
            setattr(_OPTS, key, val)
    for key, val in (("precision", precision), ("threshold", threshold),
                     ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if val is not None:
            setattr(_OPTS, key, val)
    _OPTS.sci_mode = sci_mode


def get_printoptions():
    """Current print options as a dict usable as set_printoptions(**kwargs)."""
    return {"precision": _OPTS.precision, "threshold": _OPTS.threshold,
            "edgeitems": _OPTS.edgeitems, "linewidth": _OPTS.linewidth,
            "sci_mode": _OPTS.sci_mode}


@contextlib.contextmanager
def printoptions(**kwargs):
    """Temporarily change print options inside a `with` block."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


class _Formatter:
    """Chooses one layout (width, int/sci/fixed mode) for all printed elements."""

    def __init__(self, values, floating):
        self.floating = floating
        self.int_mode, self.sci_mode, self.max_width = True, False, 1
        flat = values.reshape(-1)
        if not floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(str(v)))
            return
        nz = flat[np.isfinite(flat) & (flat != 0)]
        if nz.size == 0:
            return  # only zeros / nan / inf: keep the defaults
        absv = np.abs(nz)
        lo, hi = float(absv.min()), float(absv.max())
        self.int_mode = bool(np.all(nz == np.ceil(nz)))
        if _OPTS.sci_mode is None:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        else:
            self.sci_mode = bool(_OPTS.sci_mode)
        p = _OPTS.precision
        for v in nz.tolist():
            if self.sci_mode:
                n = len(f"{v:.{p}e}")
            elif self.int_mode:
                n = len(f"{v:.0f}") + 1  # room for the trailing "."
            else:
                n = len(f"{v:.{p}f}")
            self.max_width = max(self.max_width, n)

    def format(self, v):
        if not self.floating:
            s = str(v)
        elif self.sci_mode:
            s = f"{v:{self.max_width}.{_OPTS.precision}e}"
        elif self.int_mode:
            s = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            s = f"{v:.{_OPTS.precision}f}"
        return s.rjust(self.max_width)


def _summarized(values):
    """Only the elements that will be shown (torch's get_summarized_data)."""
    e = _OPTS.edgeitems
    if values.ndim == 0:
        return values
    if values.ndim == 1:
        if values.shape[0] > 2 * e:  # note: e == 0 keeps everything, like torch
            return np.concatenate((values[:e], values[-e:]))
        return values
    if not e:
        return values[tuple(slice(0, 0) for _ in values.shape)]
    index = [np.r_[0:e, n - e:n] if n > 2 * e else np.arange(n)
             for n in values.shape]
    return values[np.ix_(*index)]


def _vector_str(values, indent, summarize, fmt):
    e = _OPTS.edgeitems
    per_line = max(1, math.floor((_OPTS.linewidth - indent) / (fmt.max_width + 2)))
    if summarize and not e:
        data = ["..."]
    elif summarize and values.shape[0] > 2 * e:
        data = ([fmt.format(v) for v in values[:e].tolist()] + [" ..."]
                + [fmt.format(v) for v in values[-e:].tolist()])
    else:
        data = [fmt.format(v) for v in values.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(values, indent, summarize, fmt):
    if values.ndim == 0:
        return fmt.format(values.item())
    if values.ndim == 1:
        return _vector_str(values, indent, summarize, fmt)
    e, n = _OPTS.edgeitems, values.shape[0]
    if summarize and n > 2 * e:
        rows = ([_nested_str(values[i], indent + 1, summarize, fmt) for i in range(e)]
                + ["..."]
                + [_nested_str(values[i], indent + 1, summarize, fmt)
                   for i in range(n - e, n)])
    else:
        rows = [_nested_str(values[i], indent + 1, summarize, fmt) for i in range(n)]
    sep = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + sep.join(rows) + "]"


def _add_suffixes(text, suffixes, indent):
    parts = [text]
    # torch's own arithmetic (counts 2 too many when there is no newline).
    last_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        # Break lines where torch would: measure "dtype=torch.x", not "dtype=vt.x".
        n = len(suffix.replace("=vt.", "=torch."))
        if last_len + n + 2 > _OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_len = indent + n
        else:
            parts.append(", " + suffix)
            last_len += n + 2
    return "".join(parts) + ")"


def _is_floating(dtype_name):
    return dtype_name.startswith(("float", "bfloat"))


def format_tensor(values, dtype_name, device="cpu", *, requires_grad=False,
                  grad_fn=None, prefix="tensor("):
    """Return the text torch's repr() gives for a tensor with these values.

    values:      numpy array of the tensor's values (its shape is the tensor's).
    dtype_name:  torch dtype name without "torch.", e.g. "float32", "int64".
    device:      "cpu" prints nothing, anything else ", device='...'".
    grad_fn:     autograd node name, e.g. "AddBackward0" (wins over requires_grad).
    prefix:      text before the data; continuation lines are indented past it.
    """
    dtype_name = _DTYPE_ALIASES.get(dtype_name, dtype_name)
    floating = _is_floating(dtype_name)
    values = np.asarray(values)
    if floating:
        values = values.astype(np.float64, copy=False)
    elif dtype_name == "bool":
        values = values.astype(np.bool_, copy=False)
    elif values.dtype.kind not in "iu":
        values = values.astype(np.int64)

    indent = len(prefix)
    suffixes = []
    device = str(device)
    if device == "cuda":
        device = "cuda:0"
    if device != "cpu":
        suffixes.append(f"device='{device}'")

    if values.size == 0:
        if values.ndim != 1:
            suffixes.append(f"size={tuple(int(n) for n in values.shape)}")
        if dtype_name != _DEFAULT_DTYPE:  # nothing to infer the dtype from
            suffixes.append(f"dtype=vt.{dtype_name}")
        body = "[]"
    else:
        if not _OPTS.edgeitems:
            suffixes.append(f"size={tuple(int(n) for n in values.shape)}")
        if dtype_name not in _IMPLICIT_DTYPES:
            suffixes.append(f"dtype=vt.{dtype_name}")
        summarize = values.size > _OPTS.threshold
        fmt = _Formatter(_summarized(values) if summarize else values, floating)
        body = _nested_str(values, indent, summarize, fmt)

    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{grad_fn}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
