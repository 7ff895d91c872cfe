"""Grid sampling and embedding bags of torch.nn.functional, composed from differentiable vt ops: affine_grid
(2-D and 3-D), grid_sample (4-D and 5-D input; bilinear, nearest or bicubic; zeros, border or reflection padding) and
embedding_bag (sum, mean or max bags, per-sample weights, padding_idx, max_norm, scale_grad_by_freq)."""
import itertools
import math
import warnings

from ..._C import core as _core
from .. import _functions


def _no_grad():
    from ...autograd import no_grad

    return no_grad()


def _F():
    return _functions  # imported above: vibetensor.torch imports _functions before nn


_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                  "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                  "grid_sample for details.")


def _base_coords(n, align_corners, like):
    """n points spanning [-1, 1] (pixel corners) or their centres (align_corners False); 0 for n == 1."""
    F = _F()
    if n <= 1:
        return F.zeros(max(n, 0), dtype=like.dtype, device=like.device)
    pts = F.linspace(-1.0, 1.0, n, dtype=like.dtype, device=like.device)
    return pts if align_corners else pts * (n - 1) / n


def affine_grid(theta, size, align_corners=None):
    """grid[n, ..., :] = theta[n] @ (x, y[, z], 1) over the normalised output coordinates."""
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    given, size = size, list(size)  # messages print the size as given
    rows = len(size) - 2
    if len(size) in (4, 5):
        if theta.dim() != 3 or tuple(theta.shape[-2:]) != (rows, rows + 1):
            raise ValueError(f"Expected a batch of {rows}D affine matrices of shape Nx{rows}x{rows + 1} for size "
                             f"{given}. Got {list(theta.shape)}.")
    else:
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
                                  f"respectively. Got size {given}.")
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the "
                      "documentation of affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {given}")
    F = _F()
    # the last spatial dim is x: coordinates (x, y[, z]) run in reverse order of the dims
    axes = [_base_coords(s, align_corners, theta) for s in spatial]
    parts = []
    for k in range(rows):
        dim = rows - 1 - k  # x is the last spatial dim
        shape = [1] * rows
        shape[dim] = spatial[dim]
        parts.append(axes[dim].reshape(shape).expand(*spatial))
    parts.append(F.ones(*spatial, dtype=theta.dtype, device=theta.device))
    base = F.stack(parts, -1).reshape(1, -1, rows + 1)
    grid = F.matmul(base, theta.transpose(1, 2))
    return grid.reshape(size[0], *spatial, rows)


def _unnormalize(g, n, align_corners):
    # written as torch's CPU kernel rounds it, so points meant to be whole pixels land on the same side
    return (g + 1) * ((n - 1) / 2) if align_corners else (g + 1) * (n / 2) - 0.5


def _reflect(x, low2, high2):
    """x folded into [low2 / 2, high2 / 2] by reflecting at both ends (a piecewise +-1 slope)."""
    if low2 == high2:
        return x * 0
    lo, span = low2 / 2, (high2 - low2) / 2
    d = (x - lo).abs()
    flips = (d / span).floor().detach()
    extra = d - flips * span
    even = flips.remainder(2) == 0
    return _F().where(even, extra + lo, span - extra + lo)


def _source_coords(g, n, padding_mode, align_corners):
    return _pad_coords(_unnormalize(g, n, align_corners), n, padding_mode, align_corners)


def _pad_coords(x, n, padding_mode, align_corners):
    if padding_mode == "reflection":
        x = _reflect(x, 0, 2 * (n - 1)) if align_corners else _reflect(x, -1, 2 * n - 1)
    if padding_mode in ("border", "reflection"):
        x = _clip(x, n)
    return x


def _clip(x, n):
    # torch's clip passes no gradient at the bounds themselves
    inside = (x > 0) & (x < n - 1)
    clipped = x.clamp(0, n - 1)
    return _F().where(inside, x, clipped.detach())


def _check_grid_sample(input, grid, mode):
    if input.device != grid.device:
        raise RuntimeError(f"grid_sampler(): expected input and grid to be on same device, but input is on "
                           f"{input.device} and grid is on {grid.device}")
    if input.dtype != grid.dtype:
        from .functional_losses_more import _type_name

        raise RuntimeError(f"expected scalar type {_type_name(input.dtype)} but found {_type_name(grid.dtype)}")
    sizes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if input.dim() == 4:
        if grid.dim() != 4:
            raise RuntimeError(f"grid_sampler(): expected 4D input and grid with same number of dimensions, but got "
                               f"{sizes}")
    else:  # torch reads any other rank as volumetric
        if grid.shape[-1] != input.dim() - 2:
            raise RuntimeError(f"grid_sampler(): expected grid to have size {input.dim() - 2} in last dimension, "
                               f"but got grid with sizes {list(grid.shape)}")
        if input.dim() != 5 or grid.dim() != 5:
            raise RuntimeError(f"grid_sampler(): expected 5D input and grid with same number of dimensions, but got "
                               f"{sizes}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got {sizes}")
    if grid.shape[-1] != input.dim() - 2:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {input.dim() - 2} in last dimension, but "
                           f"got grid with sizes {list(grid.shape)}")
    for d in range(2, input.dim()):
        if input.shape[d] <= 0:
            raise RuntimeError(f"grid_sampler(): expected input to have non-empty spatial dimensions, but input "
                               f"has sizes {list(input.shape)} with dimension {d} being empty")
    if mode == "bicubic" and input.dim() == 5:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """out[n, c, (d,) h, w] = input[n, c] read at grid[n, (d,) h, w] = (x, y(, z)) in [-1, 1] (x across width):
    linear weights of the 2^k neighbours, cubic ones of the 4 x 4 (4-D input only), or the nearest pixel (ties to
    even); out-of-range reads per padding_mode."""
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, stacklevel=2)
        align_corners = False
    _check_grid_sample(input, grid, mode)
    F = _F()
    n, c = input.shape[:2]
    spatial, out_spatial = list(input.shape[2:]), list(grid.shape[1:-1])
    k, length = len(spatial), math.prod(out_spatial)
    flat = input.reshape(n, c, math.prod(spatial))
    # coords[d]: the source position along spatial dim d (the grid's last coordinate is x, the last dim)
    coords = []
    for d in range(k):
        g = grid[..., k - 1 - d]
        x = (_unnormalize(g, spatial[d], align_corners) if mode == "bicubic"
             else _source_coords(g, spatial[d], padding_mode, align_corners))
        coords.append(x.reshape(n, length))

    def read(idx):
        """input at the integer positions idx (one float [N, L] tensor per spatial dim), 0 outside."""
        ok, lin = None, 0
        for d, i in enumerate(idx):
            inside = (i >= 0) & (i <= spatial[d] - 1)
            ok = inside if ok is None else ok & inside
            lin = lin * spatial[d] + i
        lin = F.where(ok, lin, 0.0).to(_core.dtype.int64)
        vals = flat.gather(2, lin.unsqueeze(1).expand(n, c, length))
        return F.where(ok.unsqueeze(1), vals, 0.0)

    if mode == "nearest":
        out = read([x.round().detach() for x in coords])
        if grid.requires_grad:  # torch gives the grid a zero gradient: keep it in the graph through a where
            never = F.zeros(1, 1, 1, dtype=_core.dtype.bool, device=grid.device)
            out = out + F.where(never, sum(coords).unsqueeze(1), 0.0)
        return out.reshape(n, c, *out_spatial)
    lows = [x.floor().detach() for x in coords]
    if mode == "bicubic":
        # 4 x 4 taps around the floor, each tap's position padded on its own (no gradient through it); the
        # grid's gradient comes through the cubic weights of the fractions
        weights = [_cubic_weights(x - x0) for x, x0 in zip(coords, lows)]
        taps = [[_pad_coords(x0 + (t - 1), size, padding_mode, align_corners).detach() for t in range(4)]
                for x0, size in zip(lows, spatial)]
    else:
        weights = [[1 - (x - x0), x - x0] for x, x0 in zip(coords, lows)]
        taps = [[x0, x0 + 1] for x0 in lows]
    out = 0
    for corner in itertools.product(range(len(taps[0])), repeat=k):
        wt = math.prod(weights[d][t] for d, t in enumerate(corner))
        out = out + read([taps[d][t] for d, t in enumerate(corner)]) * wt.unsqueeze(1)
    return out.reshape(n, c, *out_spatial)


def _cubic_weights(t, a=-0.75):
    """The cubic convolution weights (Keys, a = -0.75) of the taps at -1, 0, 1, 2 for a fraction t."""
    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Each bag (a row of a 2-D input, or input[offsets[b]:offsets[b + 1]]) reduced over its rows of weight
    by sum (each scaled by per_sample_weights), mean or max; entries equal to padding_idx are left out (an
    empty bag gives zeros)."""
    F = _F()
    if padding_idx is not None:
        rows = weight.shape[0]
        if not -rows <= padding_idx < rows:
            raise RuntimeError(f"padding_idx must be within the number of embeddings, {-rows} through "
                               f"{rows - 1}, but got {padding_idx}")
        padding_idx %= rows
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({list(per_sample_weights.shape)}) is not "
                         f"None, then it must have the same shape as the input ({list(input.shape)})")
    if weight.dim() != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.dim()}")
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             f"fixed length sequences. However, found offsets of type {type(offsets)}")
        if input.shape[1] == 0:
            raise RuntimeError("step must be nonzero")
        offsets = F.arange(0, input.numel(), input.shape[1], dtype=input.dtype, device=input.device)
        include_last_offset = False
        input = input.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.dim() == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.dim() != 1:
            raise ValueError("offsets has to be a 1D Tensor")
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.dim()}")
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError("max mode does not support sparse weights")
    if sparse:
        raise NotImplementedError("embedding_bag: sparse gradients are not supported (vibetensor has no sparse "
                                  "tensors); use sparse=False")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
                                  "on GitHub.")
    if max_norm is not None:  # torch renormalizes every picked row in place first, as F.embedding does
        from .functional import _embedding_renorm_

        flat = input.reshape(-1)
        if flat.shape[0] and bool((flat >= weight.shape[0]).any()):  # the renorm's row select refuses it
            at = int((flat >= weight.shape[0]).to(_core.dtype.int64).argmax().item())
            raise IndexError(f"select(): index {flat[at].item()} out of range for tensor of size "
                             f"{list(weight.shape)} at dimension 0")
        _embedding_renorm_(weight, flat[flat >= 0], max_norm, norm_type)  # negatives are refused below
    return _bags(input, weight, offsets, mode, per_sample_weights, include_last_offset, padding_idx,
                 scale_grad_by_freq)


def _check_indices(input, weight, mode, padding_idx):
    """An index outside the rows is refused with the message of the torch CPU kernel that would run: its fast
    sum/mean path for reduced and single floats without padding_idx, its generic one otherwise."""
    rows = weight.shape[0]
    bad = (input < 0) | (input >= rows)
    if not (input.shape[0] and bool(bad.any())):
        return
    at = int(bad.to(_core.dtype.int64).argmax().item())
    fast = (mode != "max" and padding_idx is None
            and weight.dtype in (_core.dtype.float32, _core.dtype.float16, _core.dtype.bfloat16))
    if fast:
        raise RuntimeError(f"Index {at} of input takes value {input[at].item()} which is not in the valid range "
                           f"[0, {rows})")
    raise RuntimeError(f"embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be "
                       f"{input[at].item()}")


def _bags(input, weight, offsets, mode, psw, include_last_offset, padding_idx, scale_grad_by_freq=False):
    F = _F()
    i64 = _core.dtype.int64
    if input.dtype != offsets.dtype:  # torch promotes the two to their common type first (int16 + int64: int64)
        from .. import promote_types

        common = promote_types(input.dtype, offsets.dtype)
        input, offsets = input.to(common), offsets.to(common)
    if input.dtype not in (i64, _core.dtype.int32) or offsets.dtype not in (i64, _core.dtype.int32):
        bad, arg = (input, "#1 'indices'") if input.dtype not in (i64, _core.dtype.int32) else (offsets, "#2 'offsets'")
        raise RuntimeError(f"Expected tensor for argument {arg} to have one of the following scalar types: Long, "
                           f"Int; but got {_legacy_name(bad)} instead (while checking arguments for embedding_bag)")
    if psw is not None and psw.dtype != weight.dtype:
        raise RuntimeError(f"Expected tensor for argument #1 'weight' to have the same type as tensor for argument "
                           f"#1 'per_sample_weights'; but type {_legacy_name(weight)} does not equal "
                           f"{_legacy_name(psw)} (while checking arguments for embedding_bag)")
    if include_last_offset and offsets.shape[0] < 1:
        raise RuntimeError("include_last_offset: number of offset should be at least 1")
    length = input.shape[0]
    input, offsets = input.to(i64), offsets.to(i64)
    nbags = offsets.shape[0] - (1 if include_last_offset else 0)
    if offsets.shape[0]:
        if offsets[0].item() != 0:
            raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start "
                               f"from position 0. However, got {offsets[0].item()}")
        if offsets[-1].item() > length:
            raise RuntimeError(f"offsets[-1] can not be greater than input's length {length} but got "
                               f"offsets[-1] of {offsets[-1].item()}")
        if offsets.shape[0] > 1 and bool((offsets[1:] < offsets[:-1]).any()):
            raise RuntimeError(f"embedding_bag: offsets has to be a non-decreasing sequence, but got "
                               f"{offsets.tolist()}")
    if nbags:  # torch reads no index when there is no bag
        _check_indices(input, weight, mode, padding_idx)
    d = weight.shape[1]
    starts = offsets[:nbags]
    # bag of each entry: the last bag starting at or before it (entries past include_last_offset's end: none)
    # (a count of bag starts at each position, summed up: O(entries + bags) where a comparison table is O(both))
    pos = F.arange(length, device=input.device)
    starts_at = F.zeros(length + 1, dtype=i64, device=input.device).index_add(
        0, starts.clamp(0, length), F.ones(nbags, dtype=i64, device=input.device))
    bag = starts_at[:length].cumsum(0) - 1
    keep = bag >= 0
    if include_last_offset and offsets.shape[0]:
        keep = keep & (pos < offsets[-1])
    if padding_idx is not None:
        keep = keep & (input != padding_idx)
    bag = F.where(keep, bag, 0)
    out = F.zeros(nbags, d, dtype=weight.dtype, device=weight.device)
    if nbags == 0 or length == 0:
        return out + weight.sum() * 0 if weight.requires_grad else out
    # half-precision tables are reduced in float32 and rounded once, as torch's kernels accumulate; each distinct
    # row is widened once and gathered from there, so that a row's gradient also adds up in float32 (and only
    # the picked rows are widened: a recsys table can be far larger than a batch's rows)
    wide = weight.dtype in (_core.dtype.float16, _core.dtype.bfloat16)
    if wide:
        distinct, where = input.unique(return_inverse=True)
        rows = weight[distinct].float()[where]
    else:
        rows = weight[input]
    if wide:
        out = out.float()
        psw = None if psw is None else psw.float()
    if scale_grad_by_freq and rows.requires_grad:
        # each row's gradient divided by how often the whole input picks it (torch counts every index, the
        # padding ones too); per_sample_weights' gradient reads the forward rows and is left as it is
        counts = F.zeros(weight.shape[0], dtype=i64, device=input.device).index_add(
            0, input, F.ones(length, dtype=i64, device=input.device))
        scale = (1.0 / counts.index_select(0, input).to(rows.dtype)).unsqueeze(1)
        rows.register_hook(lambda grad: grad * scale)
    count = F.zeros(nbags, dtype=i64, device=input.device).index_add(0, bag, keep.to(i64))
    if mode == "max":
        # torch's kernel keeps the first entry of a bag holding the maximum (a strict > replaces it), and that
        # entry alone gets the gradient: the winner's position is found outside autograd, then gathered
        index = bag.unsqueeze(1).expand(length, d)
        with _no_grad():
            masked = F.where(keep.unsqueeze(1), rows, float("-inf"))
            top = out.scatter_reduce(0, index, masked, "amax", include_self=False)
            hit = keep.unsqueeze(1) & (masked == top.index_select(0, bag))
            at = F.where(hit, pos.unsqueeze(1).expand(length, d), length)
            first = F.full((nbags, d), length, dtype=i64, device=input.device).scatter_reduce(
                0, index, at, "amin", include_self=True)
        won = rows.gather(0, first.clamp(max=max(length - 1, 0)))
        return F.where((count > 0).unsqueeze(1), won, 0.0).to(weight.dtype)
    if psw is not None:
        rows = rows * psw.unsqueeze(1)
    total = out.index_add(0, bag, F.where(keep.unsqueeze(1), rows, 0.0))
    if mode == "mean":
        total = total / count.clamp(min=1).to(total.dtype).unsqueeze(1)
    return total.to(weight.dtype)


def _legacy_name(t):
    """torch's legacy type name of a tensor, as its argument checks print it."""
    name = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
            "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}.get(t.dtype.name)
    cuda = t.device.type == "cuda"
    if name == "BFloat16" and not cuda:
        return "CPUBFloat16Type"
    return f"torch.{'cuda.' if cuda else ''}{name}Tensor"
