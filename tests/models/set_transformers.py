"""Models built from torch's own nn.MultiheadAttention and nn.Transformer modules, written the way public code
writes them (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - a Set Transformer: MAB / SAB / ISAB (learned inducing points) / PMA (learned seed vectors) over padded sets,
    keys of another width than the queries (kdim / vdim), a bool key_padding_mask;
  - a Perceiver-style stack: learned latents cross-attend to the inputs (sequence-first layout, kdim / vdim,
    add_zero_attn, a float key_padding_mask), then latent self-attention blocks with add_bias_kv;
  - a DETR-style head: nn.TransformerDecoder over a subclass of nn.TransformerDecoderLayer that adds positional
    embeddings to the queries and keys (not the values), learned query embeddings, memory_key_padding_mask;
  - a sequence-to-sequence model on the full nn.Transformer with generate_square_subsequent_mask and key padding
    masks, or with a custom encoder and decoder carrying their own final norms;
  - a linear-warmup schedule for AdamW and a toy set task (the largest element of each set).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class MAB(nn.Module):
    """Multihead attention block: LN(H + FF(H)), H = LN(Q' + Attn(Q', K, K)), Q' = fc_q(Q)."""

    def __init__(self, dim_q, dim_k, dim, heads, layer_norm=True):
        super().__init__()
        self.fc_q = nn.Linear(dim_q, dim)
        # keys and values keep their own width: the attention projects them (k_proj_weight, v_proj_weight)
        self.attn = nn.MultiheadAttention(dim, heads, kdim=dim_k, vdim=dim_k, batch_first=True)
        self.ln0 = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.ln1 = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, q, k, key_padding_mask=None):
        h = self.fc_q(q)
        a, _ = self.attn(h, k, k, key_padding_mask=key_padding_mask, need_weights=False)
        h = self.ln0(h + a)
        return self.ln1(h + self.ff(h))


class SAB(nn.Module):
    def __init__(self, dim_in, dim, heads):
        super().__init__()
        self.mab = MAB(dim_in, dim_in, dim, heads)

    def forward(self, x, key_padding_mask=None):
        return self.mab(x, x, key_padding_mask)


class ISAB(nn.Module):
    """Self-attention through m learned inducing points: O(n m) instead of O(n^2)."""

    def __init__(self, dim_in, dim, heads, num_inds):
        super().__init__()
        self.inducing = nn.Parameter(torch.empty(1, num_inds, dim))
        nn.init.xavier_uniform_(self.inducing)
        self.mab0 = MAB(dim, dim_in, dim, heads)
        self.mab1 = MAB(dim_in, dim, dim, heads)

    def forward(self, x, key_padding_mask=None):
        h = self.mab0(self.inducing.expand(x.size(0), -1, -1), x, key_padding_mask)
        return self.mab1(x, h)


class PMA(nn.Module):
    """Pooling by multihead attention: k learned seed vectors attend to the set."""

    def __init__(self, dim, heads, num_seeds):
        super().__init__()
        self.seeds = nn.Parameter(torch.empty(1, num_seeds, dim))
        nn.init.xavier_uniform_(self.seeds)
        self.mab = MAB(dim, dim, dim, heads)

    def forward(self, x, key_padding_mask=None):
        return self.mab(self.seeds.repeat(x.size(0), 1, 1), x, key_padding_mask)


class SetTransformer(nn.Module):
    def __init__(self, dim_in=3, dim_out=1, dim=16, heads=2, num_inds=4, num_seeds=1):
        super().__init__()
        self.enc = nn.ModuleList([ISAB(dim_in, dim, heads, num_inds), ISAB(dim, dim, heads, num_inds)])
        self.pool = PMA(dim, heads, num_seeds)
        self.dec = nn.Sequential(SAB(dim, dim, heads), nn.Linear(dim, dim_out))

    def forward(self, x, key_padding_mask=None):
        """x: [B, N, dim_in]; key_padding_mask: [B, N] bool, True at padding elements."""
        # padded elements must not leak into the encodings that later layers attend to
        for block in self.enc:
            x = block(x, key_padding_mask)
        return self.dec(self.pool(x, key_padding_mask)).squeeze(1)


class LatentBlock(nn.Module):
    """Pre-norm self-attention over the latents with learned extra key/value biases, then an MLP."""

    def __init__(self, dim, heads, dropout=0.0):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, add_bias_kv=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))

    def forward(self, z):
        h = self.norm1(z)
        z = z + self.attn(h, h, h, need_weights=False)[0]
        return z + self.mlp(self.norm2(z))


class Perceiver(nn.Module):
    """Latents [L, dim] cross-attend to the inputs [S, B, in_dim] (sequence first), then self-attend."""

    def __init__(self, in_dim=5, dim=16, heads=2, num_latents=6, depth=2, num_classes=3, dropout=0.0):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.cross_norm = nn.LayerNorm(dim)
        # add_zero_attn: a latent can attend to "nothing", so an input that is all padding is harmless
        self.cross = nn.MultiheadAttention(dim, 1, dropout=dropout, kdim=in_dim, vdim=in_dim, add_zero_attn=True)
        self.blocks = nn.ModuleList(LatentBlock(dim, heads, dropout) for _ in range(depth))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x, padding=None, return_weights=False):
        """x: [S, B, in_dim]; padding: [B, S] float, -inf at padding and 0 elsewhere."""
        z = self.latents.unsqueeze(1).expand(-1, x.shape[1], -1)
        a, weights = self.cross(self.cross_norm(z), x, x, key_padding_mask=padding, need_weights=return_weights)
        z = z + a
        for block in self.blocks:
            z = block(z)
        logits = self.head(z.mean(0))
        return (logits, weights) if return_weights else logits


class PosDecoderLayer(nn.TransformerDecoderLayer):
    """DETR's decoder layer on top of torch's: positional embeddings join the queries and keys, never the values.
    The embeddings are handed over through `positions` before the stack runs (nn.TransformerDecoder's forward
    has no argument for them)."""

    query_pos = memory_pos = None

    def positions(self, query_pos, memory_pos):
        self.query_pos, self.memory_pos = query_pos, memory_pos

    def _with(self, x, pos):
        return x if pos is None else x + pos

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False):
        q = k = self._with(x, self.query_pos)
        x = self.self_attn(q, k, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal=False):
        x = self.multihead_attn(self._with(x, self.query_pos), self._with(mem, self.memory_pos), mem,
                                attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False)[0]
        return self.dropout2(x)


class DETRHead(nn.Module):
    """Object queries decoded against flattened image features [B, HW, C] with a padding mask [B, HW]."""

    def __init__(self, feat_dim=12, d_model=16, nhead=2, num_layers=2, num_queries=5, num_classes=4, h=3, w=4,
                 dropout=0.1):
        super().__init__()
        self.input_proj = nn.Linear(feat_dim, d_model)
        self.query_embed = nn.Embedding(num_queries, d_model)
        self.row_embed = nn.Parameter(torch.rand(h, d_model // 2))
        self.col_embed = nn.Parameter(torch.rand(w, d_model // 2))
        layer = PosDecoderLayer(d_model, nhead, dim_feedforward=32, dropout=dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, num_layers, norm=nn.LayerNorm(d_model))
        self.class_embed = nn.Linear(d_model, num_classes + 1)
        self.bbox_embed = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, 4))
        self.h, self.w = h, w

    def pos_embed(self):
        h, w = self.h, self.w
        pos = torch.cat([self.col_embed.unsqueeze(0).repeat(h, 1, 1), self.row_embed.unsqueeze(1).repeat(1, w, 1)],
                        dim=-1)
        return pos.flatten(0, 1).unsqueeze(0)  # [1, HW, d]

    def forward(self, features, mask):
        memory = self.input_proj(features)
        b = memory.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(0).repeat(b, 1, 1)
        for layer in self.decoder.layers:
            layer.positions(query_pos, self.pos_embed())
        try:
            hs = self.decoder(torch.zeros_like(query_pos), memory, memory_key_padding_mask=mask)
        finally:
            for layer in self.decoder.layers:
                layer.positions(None, None)
        return self.class_embed(hs), self.bbox_embed(hs).sigmoid()


def squared_relu(x):
    return F.relu(x).square()


class Seq2SeqTransformer(nn.Module):
    """Token embeddings + sinusoidal positions into nn.Transformer, then a vocabulary projection.
    custom=True builds the encoder and decoder here (each with its own final norm) and hands them in."""

    def __init__(self, vocab=11, d_model=16, nhead=2, layers=2, ff=32, dropout=0.1, batch_first=True,
                 norm_first=False, activation="relu", custom=False, max_len=32, pad=0):
        super().__init__()
        self.pad, self.batch_first, self.d_model = pad, batch_first, d_model
        self.src_embed = nn.Embedding(vocab, d_model, padding_idx=pad)
        self.tgt_embed = nn.Embedding(vocab, d_model, padding_idx=pad)
        position = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        self.register_buffer("pe", pe, persistent=False)
        kw = dict(dim_feedforward=ff, dropout=dropout, activation=activation, batch_first=batch_first,
                  norm_first=norm_first)
        if custom:
            enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model, nhead, **kw), layers,
                                        norm=nn.LayerNorm(d_model, eps=1e-6), enable_nested_tensor=False)
            dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(d_model, nhead, **kw), layers,
                                        norm=nn.RMSNorm(d_model))
            self.transformer = nn.Transformer(d_model, nhead, custom_encoder=enc, custom_decoder=dec, **kw)
        else:
            self.transformer = nn.Transformer(d_model, nhead, layers, layers, **kw)
        self.out = nn.Linear(d_model, vocab)

    def embed(self, table, tokens):
        x = table(tokens) * math.sqrt(self.d_model) + self.pe[: tokens.shape[1]]
        return x if self.batch_first else x.transpose(0, 1)

    def forward(self, src, tgt):
        """src [B, S], tgt [B, T] token ids (batch first whatever the layout inside), pad = padding."""
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        src_pad, tgt_pad = src == self.pad, tgt == self.pad
        y = self.transformer(self.embed(self.src_embed, src), self.embed(self.tgt_embed, tgt), tgt_mask=tgt_mask,
                             src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
                             memory_key_padding_mask=src_pad, tgt_is_causal=True)
        return self.out(y if self.batch_first else y.transpose(0, 1))


def warmup_schedule(optimizer, warmup, total):
    """Linear warmup to the base learning rate, then linear decay to 10% of it."""

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.1, 1.0 - 0.9 * (step - warmup) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def max_of_set_loss(model, x, mask, target):
    """Regression of each set's largest first feature (padding excluded)."""
    return F.mse_loss(model(x, mask).squeeze(-1), target)
