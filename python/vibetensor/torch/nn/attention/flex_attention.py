"""vt.nn.attention.flex_attention: torch's FlexAttention interface (flex_attention, create_block_mask,
create_mask, BlockMask, and_masks, or_masks, noop_mask, AuxRequest/AuxOutput) as a composed implementation.

There is no fused kernel: the scores Q K^T * scale are materialised, score_mod and the mask are applied to the
whole [B, H, L, S] block at once, and a masked softmax and the value product follow, so autograd flows through
every step (a tensor captured by score_mod gets its gradient too). torch calls score_mod / mask_mod on scalar
indices under vmap; here they are called once with broadcastable index tensors b [B,1,1,1], h [1,H,1,1],
q_idx [1,1,L,1], kv_idx [1,1,1,S] (int64), which gives the same values for mods written with tensor ops,
indexing and torch.where. As torch's eager path, the mask is mask_mod evaluated at the query's batch and head
indices; the BlockMask's block tables describe the sparsity and are not needed for the result."""
import inspect
import math
from typing import NamedTuple

import numpy as np

from .... import _C
from ... import _functions as _F

_dtype = _C.core.dtype
_DEFAULT_SPARSE_BLOCK_SIZE = 128

__all__ = ["AuxOutput", "AuxRequest", "BlockMask", "and_masks", "create_block_mask", "create_mask",
           "flex_attention", "noop_mask", "or_masks"]


class AuxRequest(NamedTuple):
    """Which auxiliary outputs flex_attention(return_aux=...) computes."""
    lse: bool = False
    max_scores: bool = False


class AuxOutput(NamedTuple):
    """flex_attention's auxiliary outputs: lse (natural-log log-sum-exp of each query row's scores) and
    max_scores (each row's maximum score); None where not requested."""
    lse: object = None
    max_scores: object = None


def _idx(n, shape_at, device):
    shape = [1, 1, 1, 1]
    shape[shape_at] = n
    return _F.arange(n, device=device).view(*shape)


def _index_tensors(B, H, L, S, device):
    return tuple(_idx(n, i, device) for i, n in enumerate((B, H, L, S)))


def noop_mask(b, h, q_idx, kv_idx):
    """The mask_mod that keeps every position."""
    return _F.ones((), dtype=_dtype.bool, device=b.device)


def _check_mods(mods):
    if not all(callable(m) for m in mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mods}")


def and_masks(*mask_mods):
    """A mask_mod keeping a position only where every one of mask_mods keeps it."""
    _check_mods(mask_mods)

    def and_mask(b, h, q_idx, kv_idx):
        out = _F.ones((), dtype=_dtype.bool, device=b.device)
        for m in mask_mods:
            out = out & m(b, h, q_idx, kv_idx)
        return out
    return and_mask


def or_masks(*mask_mods):
    """A mask_mod keeping a position where any one of mask_mods keeps it."""
    _check_mods(mask_mods)

    def or_mask(b, h, q_idx, kv_idx):
        out = _F.zeros((), dtype=_dtype.bool, device=b.device)
        for m in mask_mods:
            out = out | m(b, h, q_idx, kv_idx)
        return out
    return or_mask


def _n_positional(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)


def _default_device(device):
    if device is not None:
        return device
    try:
        from ... import cuda
        return "cuda" if cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _eval_mask(mask_mod, B, H, L, S, device):
    """mask_mod over the [B, H, L, S] grid as a bool tensor of that shape."""
    b, h, q, kv = _index_tensors(B, H, L, S, device)
    m = mask_mod(b, h, q, kv)
    if not hasattr(m, "dtype"):
        m = _F.tensor(bool(m), device=device)
    if m.dtype != _dtype.bool:
        m = m != 0
    return m.expand(B, H, L, S)


def create_mask(mod_fn, B, H, Q_LEN, KV_LEN, device=None):
    """The [B, H, Q_LEN, KV_LEN] bool mask (True = attend) of a mask_mod, or of a score_mod (True where it does
    not give -inf for a zero score); B or H None means 1."""
    device = _default_device(device)
    B, H = 1 if B is None else B, 1 if H is None else H
    if _n_positional(mod_fn) == 5:
        b, h, q, kv = _index_tensors(B, H, Q_LEN, KV_LEN, device)
        out = mod_fn(_F.zeros(B, H, Q_LEN, KV_LEN, device=device), b, h, q, kv)
        return (~out.isneginf()).expand(B, H, Q_LEN, KV_LEN)
    return _eval_mask(mod_fn, B, H, Q_LEN, KV_LEN, device)


def _ordered(flags):
    """Per row of a [..., n] bool table: how many are set, and the column indices with the set ones first
    (ascending), then the rest (ascending), as torch orders its block indices."""
    num = flags.sum(-1).astype(np.int32)
    order = np.argsort(~flags, axis=-1, kind="stable").astype(np.int32)
    return num, order


class BlockMask:
    """The block-sparse description of a mask at BLOCK_SIZE granularity, as create_block_mask builds it: a block
    is partial (mask_mod must be applied in it) or full (every position kept); blocks of neither kind are
    skipped. kv_num_blocks/kv_indices list the partial blocks of each query block row, full_kv_* the full ones,
    and q_*/full_q_* the same per key block column. The mask's tail past Q_LEN/KV_LEN counts as masked."""

    def __init__(self, partial, full, BLOCK_SIZE, seq_lengths, mask_mod, device, dense=None):
        # numpy bool [B, H, nq, nkv]; full None: no full-block tables (from_kv_blocks without them)
        self._partial, self._has_full = partial, full is not None
        self._full = full if full is not None else np.zeros_like(partial)
        self.BLOCK_SIZE = tuple(BLOCK_SIZE)
        self.seq_lengths = tuple(seq_lengths)
        self.mask_mod = mask_mod if mask_mod is not None else noop_mask
        self._device = device
        self._dense = dense  # the [B, H, Q_LEN, KV_LEN] bool mask create_block_mask evaluated, if it did
        t = self._tensor
        num, idx = _ordered(partial)
        self.kv_num_blocks, self.kv_indices = t(num), t(idx)
        num, idx = _ordered(np.swapaxes(partial, -1, -2))
        self.q_num_blocks, self.q_indices = t(num), t(idx)
        self.full_kv_num_blocks = self.full_kv_indices = self.full_q_num_blocks = self.full_q_indices = None
        if self._has_full:
            num, idx = _ordered(full)
            self.full_kv_num_blocks, self.full_kv_indices = t(num), t(idx)
            num, idx = _ordered(np.swapaxes(full, -1, -2))
            self.full_q_num_blocks, self.full_q_indices = t(num), t(idx)

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks, kv_indices, full_kv_num_blocks=None, full_kv_indices=None,
                       BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE, mask_mod=None, seq_lengths=None, compute_q_blocks=True,
                       **_):
        """A BlockMask from its kv block tables ([B, H, nq] counts, [B, H, nq, nkv] indices, the first count of
        each row used). seq_lengths defaults to the blocks' extent, mask_mod to noop_mask. As in torch's eager
        flex_attention, only mask_mod decides what is masked; the tables describe the sparsity."""
        if kv_indices.dim() < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise AssertionError("full_kv_num_blocks and full_kv_indices must be both provided or omitted")
        bq, bk = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)

        def table(num, idx):
            num, idx = num.to("cpu").numpy(), idx.to("cpu").numpy()
            flags = np.zeros(idx.shape, dtype=bool)
            for pos in np.ndindex(*num.shape):
                flags[pos][idx[pos][:num[pos]]] = True
            return flags

        partial = table(kv_num_blocks, kv_indices)
        full = None if full_kv_num_blocks is None else table(full_kv_num_blocks, full_kv_indices)
        if seq_lengths is None:
            seq_lengths = (partial.shape[-2] * bq, partial.shape[-1] * bk)
        return cls(partial, full, (bq, bk), seq_lengths, mask_mod, kv_indices.device)

    def _tensor(self, a):
        return _F.from_numpy(np.ascontiguousarray(a)).to(self._device)

    @property
    def shape(self):
        return tuple(self._partial.shape[:2]) + self.seq_lengths

    @property
    def device(self):
        return self.kv_num_blocks.device

    def numel(self):
        return int(np.prod(self.shape))

    def to_dense(self):
        """[B, H, num q blocks, num kv blocks] int32: 1 where the block is computed (partial or full)."""
        return self._tensor((self._partial | self._full).astype(np.int32))

    def sparsity(self):
        """The percentage of the mask not computed, counted as torch counts it (whole blocks against the
        unpadded size, so it can be negative for lengths well under a block)."""
        computed = int(self._partial.sum() + self._full.sum()) * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1]
        return 100 * (1 - computed / self.numel())

    def to(self, device):
        """This mask's tables on device."""
        return BlockMask(self._partial, self._full if self._has_full else None, self.BLOCK_SIZE, self.seq_lengths,
                         self.mask_mod, device, None if self._dense is None else self._dense.to(device))

    def to_string(self, grid_size=(20, 20), limit=4):
        """A picture of the block table per (batch, head): '█' computed, ' ' skipped, '░' a mix where blocks
        are grouped to fit grid_size (-1: one character pair per block)."""
        dense = self._partial | self._full
        nq, nk = dense.shape[-2:]
        rows, cols = (nq, nk) if grid_size == -1 else (
            (grid_size, grid_size) if isinstance(grid_size, int) else grid_size)
        rs, cs = max(1, -(-nq // rows)), max(1, -(-nk // cols))
        parts = []
        for n, (bi, hi) in enumerate(np.ndindex(*dense.shape[:2])):
            if n == limit:
                parts.append("...\nTo print out more, set BlockMask.to_string(limit=N)")
                break
            lines = [f"(batch {bi}, head {hi})"]
            for r in range(0, nq, rs):
                cells = [dense[bi, hi, r:r + rs, c:c + cs].mean() for c in range(0, nk, cs)]
                lines.append("".join("██" if f == 1 else "  " if f == 0 else "░░" for f in cells))
            parts.append("\n".join(lines))
        return "\n".join(parts)

    def __repr__(self):
        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        return (f"BlockMask(shape={self.shape}, BLOCK_SIZE={self.BLOCK_SIZE}, sparsity={self.sparsity():.2f}%, "
                f"mask_mod={name},\n{self.to_string()}\n)")


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device=None, BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE,
                      _compile=False, separate_full_blocks=True, compute_dq_write_order=False, dq_kv_order=True):
    """The BlockMask of mask_mod(b, h, q_idx, kv_idx) -> bool over [B, H, Q_LEN, KV_LEN] (B or H None: one,
    broadcast over every batch / head). BLOCK_SIZE: an int or a (q, kv) pair. _compile has no effect here."""
    if _n_positional(mask_mod) == 5:
        raise AssertionError("create_block_mask requires a mask_mod function (4 arguments), got a score_mod")
    device = _default_device(device)
    bq, bk = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    dense = create_mask(mask_mod, B, H, Q_LEN, KV_LEN, device)
    m = dense.to("cpu").numpy().astype(bool)
    nq, nk = -(-Q_LEN // bq), -(-KV_LEN // bk)
    padded = np.zeros(m.shape[:2] + (nq * bq, nk * bk), dtype=bool)
    padded[..., :Q_LEN, :KV_LEN] = m
    blocks = padded.reshape(m.shape[:2] + (nq, bq, nk, bk))
    anyb, allb = blocks.any(axis=(3, 5)), blocks.all(axis=(3, 5))
    if not separate_full_blocks:
        allb = np.zeros_like(allb)
    return BlockMask(anyb & ~allb, allb, (bq, bk), (Q_LEN, KV_LEN), mask_mod, device, dense)


def _check_inputs(query, key, value, block_mask, enable_gqa):
    for t in (key, value):
        if t.device != query.device:
            raise ValueError(f"Expected query, key, and value to have the same device type, but got query.device: "
                             f"{query.device}, key.device: {key.device}, and value.device: {value.device} instead.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"Expect query and key/value to have the same embedding dimension but got "
                         f"E={query.shape[-1]} and E={key.shape[-1]}.")
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise NotImplementedError("NYI: query, key, and value must be 4D tensors")
    Hq, Hkv = query.shape[1], key.shape[1]
    if not enable_gqa and Hq != Hkv:
        raise ValueError(f"Expect query and key/value to have the same number of heads but got Hq={Hq} and "
                         f"Hkv={Hkv}. Try setting enable_gqa=True for GQA.")
    if enable_gqa and (Hkv == 0 or Hq % Hkv != 0):
        raise ValueError(f"Expect number of query heads to be a multiple of kv heads for GQA but got Hq={Hq} "
                         f"and Hkv={Hkv}.")
    if value.shape[1] != Hkv or value.shape[2] != key.shape[2] or value.shape[0] != key.shape[0]:
        raise RuntimeError(f"flex_attention: value of shape {tuple(value.shape)} does not match key of shape "
                           f"{tuple(key.shape)} (batch, heads and length must agree)")
    Bq, Bkv = query.shape[0], key.shape[0]
    if Bq != Bkv:
        if block_mask is None:
            raise ValueError(f"Expect query and key/value to have the same batch size, or non-none block_mask, "
                             f"but got block_mask=None, Bq={Bq}, and Bkv={Bkv}.")
        if block_mask.shape[0] != Bq or Bkv != 1:
            raise ValueError(f"Expect query and key/value to have the same batch size, or block_mask and query "
                             f"to have the same batch size, but got Bq={Bq}, Bkv={Bkv}, "
                             f"B_block_mask={block_mask.shape[0]}.")
    if block_mask is not None:
        mq, mk = block_mask.shape[-2:]
        L, S = query.shape[2], key.shape[2]
        if L > mq or S > mk:
            raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} "
                             f"and kv_len={S}. As the block mask was created for a smaller length than you're "
                             f"using it for, you likely need to create a new block mask.")
        if (L, S) != (mq, mk):
            raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} "
                             f"and kv_len={S}. As the block mask was created for a larger length than you're "
                             f"using it for, create a new block mask with the correct length.")
        if block_mask.device != query.device:
            raise RuntimeError(f"Expect q/k/v and block_mask to be on the same device but got {query.device} "
                               f"and {block_mask.device}.")


def flex_attention(query, key, value, score_mod=None, block_mask=None, scale=None, enable_gqa=False,
                   return_lse=False, kernel_options=None, *, return_aux=None):
    """softmax(score_mod(Q K^T * scale, b, h, q_idx, kv_idx) masked by block_mask.mask_mod) V for query
    [B, Hq, L, E], key [B, Hkv, S, E], value [B, Hkv, S, Ev] -> [B, Hq, L, Ev] in the query's dtype.
    enable_gqa: Hq a multiple of Hkv, each key/value head shared by Hq // Hkv consecutive query heads.
    return_lse: also the natural-log log-sum-exp of each row's modified scores ([B, Hq, L], float32 for 16-bit
    and float32 inputs). A row whose every key is masked gives 0 output and -inf lse, as torch.
    kernel_options only tune torch's kernels and are ignored."""
    _check_inputs(query, key, value, block_mask, enable_gqa)
    if return_lse and return_aux is not None:
        raise ValueError("Cannot specify both return_lse and return_aux. return_lse is deprecated, please use "
                         "return_aux=AuxRequest(lse=True) instead.")
    B, Hq, L, _ = query.shape
    Hkv, S = key.shape[1], key.shape[2]
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    # Scores in float32 at least (float64 stays), as torch's reference computes them.
    cdt = _dtype.float64 if query.dtype == _dtype.float64 else _dtype.float32
    q, k, v = (t if t.dtype == cdt else t.to(cdt) for t in (query, key, value))
    if Hq != Hkv:
        k, v = k.repeat_interleave(Hq // Hkv, 1), v.repeat_interleave(Hq // Hkv, 1)
    if k.shape[0] != B:
        k, v = k.expand(B, *k.shape[1:]), v.expand(B, *v.shape[1:])
    scores = q.matmul(k.transpose(-2, -1)) * scale
    if score_mod is not None:
        b, h, qi, kvi = _index_tensors(B, Hq, L, S, query.device)
        scores = score_mod(scores, b, h, qi, kvi)
        if tuple(scores.shape) != (B, Hq, L, S):
            scores = scores.expand(B, Hq, L, S)
    if block_mask is not None:
        keep = _eval_mask(block_mask.mask_mod, B, Hq, L, S, query.device)
        scores = _F.where(keep, scores, float("-inf"))
    # The masked softmax: a row with no key left has max -inf; shifting it by 0 keeps exp at 0 (not NaN) and
    # its sum 0, which becomes 1 in the division (0 output) and -inf in the lse, with finite gradients.
    m = scores.detach().amax(-1, keepdim=True)
    m = _F.where(m.isinf(), 0.0, m)
    e = (scores - m).exp()
    denom = e.sum(-1, keepdim=True)
    empty = denom == 0
    safe = _F.where(empty, 1.0, denom)
    out = (e / safe).matmul(v).to(query.dtype)
    want_lse = return_lse or (return_aux is not None and return_aux.lse)
    want_max = return_aux is not None and return_aux.max_scores
    lse = _F.where(empty, float("-inf"), safe.log() + m).squeeze(-1) if want_lse else None
    if return_aux is not None:
        mx = scores.amax(-1) if want_max else None
        return out, AuxOutput(lse=lse, max_scores=mx)
    return (out, lse) if return_lse else out
