"""A Conformer CTC speech recogniser, written the way public speech code (ESPnet / WeNet / torchaudio) writes it
(imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - SpecAugment: iid time and frequency masks per utterance, done with masked_fill on arange index ranges (the
    uniform draws can be passed in so that two libraries mask the same bins);
  - conv subsampling: two strided 3x3 Conv2d + ReLU over [B, 1, T, F], a Linear over (channels x freq), and the
    lengths / padding mask subsampled the same way;
  - positional encoding: the sinusoidal table (absolute) or ESPnet's relative table of 2T-1 positions, both
    precomputed into a buffer and extended on demand;
  - Conformer blocks: macaron feed-forward halves with SiLU, multi-head self-attention (relative: pos_bias_u /
    pos_bias_v and rel_shift; absolute: nn.MultiheadAttention with a key padding mask), the convolution module
    (pointwise conv, GLU, depthwise Conv1d with groups=channels, BatchNorm1d, SiLU, pointwise conv), a final
    LayerNorm; the padding mask is built from lengths as arange < lengths[:, None];
  - a CTC head: log_softmax over the vocabulary, F.ctc_loss with input/target lengths, greedy decoding (argmax,
    unique_consecutive, blanks removed).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ConformerConfig:
    n_mels: int = 20
    d_model: int = 16
    n_heads: int = 2
    ff_mult: int = 4
    n_layers: int = 2
    kernel_size: int = 7
    vocab_size: int = 9  # index 0 is the CTC blank
    dropout: float = 0.0
    pos: str = "rel"  # or "abs" (sinusoidal + nn.MultiheadAttention)
    max_len: int = 64


def make_pad_mask(lengths, max_len=None):
    """True on the padding: [B, T]."""
    max_len = max_len or int(lengths.max().item())
    seq = torch.arange(0, max_len, dtype=torch.int64, device=lengths.device)
    return seq.unsqueeze(0).expand(lengths.size(0), max_len) >= lengths.unsqueeze(-1)


def mask_along_axis_iid(specs, mask_param, mask_value, axis, u=None):
    """torchaudio's iid masking: specs [B, C, F, T], one mask per (utterance, channel) along axis 2 (freq) or 3
    (time). u: two uniform draws [2, B, C] (torch.rand when None)."""
    if u is None:
        u = torch.rand(2, *specs.shape[:2], device=specs.device, dtype=specs.dtype)
    value = u[0] * mask_param
    min_value = u[1] * (specs.size(axis) - value)
    mask_start = min_value.long()[..., None, None]
    mask_end = (min_value.long() + value.long())[..., None, None]
    mask = torch.arange(0, specs.size(axis), device=specs.device, dtype=specs.dtype)
    specs = specs.transpose(axis, -1)
    specs = specs.masked_fill((mask >= mask_start) & (mask < mask_end), mask_value)
    return specs.transpose(axis, -1)


class SpecAugment(nn.Module):
    def __init__(self, freq_mask_param=5, time_mask_param=6, n_freq_masks=2, n_time_masks=2):
        super().__init__()
        self.freq_mask_param, self.time_mask_param = freq_mask_param, time_mask_param
        self.n_freq_masks, self.n_time_masks = n_freq_masks, n_time_masks

    def forward(self, feats, draws=None):
        """feats [B, T, F] -> masked [B, T, F] (identity in eval). draws: [n_freq + n_time, 2, B] uniforms."""
        if not self.training:
            return feats
        x = feats.transpose(1, 2).unsqueeze(1)  # [B, 1, F, T]
        mean = x.mean()  # frequency masks take the batch mean (as some recipes do), time masks zero
        k = 0
        for _ in range(self.n_freq_masks):
            x = mask_along_axis_iid(x, self.freq_mask_param, mean.item(), 2,
                                    None if draws is None else draws[k].unsqueeze(-1))
            k += 1
        for _ in range(self.n_time_masks):
            x = mask_along_axis_iid(x, self.time_mask_param, 0.0, 3, None if draws is None else draws[k].unsqueeze(-1))
            k += 1
        return x.squeeze(1).transpose(1, 2)


class Conv2dSubsampling(nn.Module):
    """[B, T, F] -> [B, T', d] with T' = ((T - 1) // 2 - 1) // 2."""

    def __init__(self, idim, odim):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, odim, 3, 2), nn.ReLU(), nn.Conv2d(odim, odim, 3, 2), nn.ReLU())
        self.out = nn.Linear(odim * (((idim - 1) // 2 - 1) // 2), odim)

    def forward(self, x, mask):
        x = x.unsqueeze(1)  # (b, c=1, t, f)
        x = self.conv(x)
        b, c, t, f = x.size()
        x = self.out(x.transpose(1, 2).contiguous().view(b, t, c * f))
        return x, mask[:, :, :-2:2][:, :, :-2:2]


class PositionalEncoding(nn.Module):
    """Absolute sinusoidal encoding, x * sqrt(d) + pe."""

    def __init__(self, d_model, dropout, max_len=5000):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.dropout = nn.Dropout(p=dropout)
        self.register_buffer("pe", self.table(max_len), persistent=False)

    def table(self, length):
        pe = torch.zeros(length, self.d_model)
        position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, self.d_model, 2, dtype=torch.float32)
                             * -(math.log(10000.0) / self.d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        return pe.unsqueeze(0)

    def forward(self, x):
        if self.pe.size(1) < x.size(1):
            self.pe = self.table(x.size(1)).to(device=x.device, dtype=x.dtype)
        x = x * self.xscale + self.pe[:, :x.size(1)].to(x.dtype)
        return self.dropout(x), None


class RelPositionalEncoding(PositionalEncoding):
    """ESPnet's relative encoding: returns x * sqrt(d) and the embeddings of relative positions T-1 ... -(T-1)."""

    def table(self, length):
        pe_positive = torch.zeros(length, self.d_model)
        pe_negative = torch.zeros(length, self.d_model)
        position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, self.d_model, 2, dtype=torch.float32)
                             * -(math.log(10000.0) / self.d_model))
        pe_positive[:, 0::2] = torch.sin(position * div_term)
        pe_positive[:, 1::2] = torch.cos(position * div_term)
        pe_negative[:, 0::2] = torch.sin(-1 * position * div_term)
        pe_negative[:, 1::2] = torch.cos(-1 * position * div_term)
        pe_positive = torch.flip(pe_positive, [0]).unsqueeze(0)
        pe_negative = pe_negative[1:].unsqueeze(0)
        return torch.cat([pe_positive, pe_negative], dim=1)

    def forward(self, x):
        if self.pe.size(1) < 2 * x.size(1) - 1:
            self.pe = self.table(x.size(1)).to(device=x.device, dtype=x.dtype)
        x = x * self.xscale
        center = self.pe.size(1) // 2
        pos_emb = self.pe[:, center - x.size(1) + 1: center + x.size(1)].to(x.dtype)
        return self.dropout(x), self.dropout(pos_emb)


class RelPositionMultiHeadedAttention(nn.Module):
    def __init__(self, n_head, n_feat, dropout):
        super().__init__()
        self.d_k = n_feat // n_head
        self.h = n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout = nn.Dropout(p=dropout)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.Tensor(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.Tensor(self.h, self.d_k))
        torch.nn.init.xavier_uniform_(self.pos_bias_u)
        torch.nn.init.xavier_uniform_(self.pos_bias_v)

    @staticmethod
    def rel_shift(x):
        """[b, h, t, 2t-1] scores by relative position -> [b, h, t, t] scores by key position."""
        zero_pad = torch.zeros((*x.size()[:3], 1), device=x.device, dtype=x.dtype)
        x_padded = torch.cat([zero_pad, x], dim=-1)
        x_padded = x_padded.view(*x.size()[:2], x.size(3) + 1, x.size(2))
        return x_padded[:, :, 1:].view_as(x)[:, :, :, : x.size(-1) // 2 + 1]

    def forward(self, x, mask, pos_emb):
        """x [b, t, d]; mask [b, 1, t] True on frames; pos_emb [1, 2t-1, d]."""
        n_batch = x.size(0)
        q = self.linear_q(x).view(n_batch, -1, self.h, self.d_k)
        k = self.linear_k(x).view(n_batch, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(n_batch, -1, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(pos_emb.size(0), -1, self.h, self.d_k).transpose(1, 2)
        q_with_bias_u = (q + self.pos_bias_u).transpose(1, 2)
        q_with_bias_v = (q + self.pos_bias_v).transpose(1, 2)
        matrix_ac = torch.matmul(q_with_bias_u, k.transpose(-2, -1))
        matrix_bd = self.rel_shift(torch.matmul(q_with_bias_v, p.transpose(-2, -1)))
        scores = (matrix_ac + matrix_bd) / math.sqrt(self.d_k)
        mask = mask.unsqueeze(1).eq(0)  # (batch, 1, 1, time2)
        min_value = torch.finfo(scores.dtype).min
        scores = scores.masked_fill(mask, min_value)
        self.attn = torch.softmax(scores, dim=-1).masked_fill(mask, 0.0)
        x = torch.matmul(self.dropout(self.attn), v)
        x = x.transpose(1, 2).contiguous().view(n_batch, -1, self.h * self.d_k)
        return self.linear_out(x)


class AbsMultiHeadedAttention(nn.Module):
    def __init__(self, n_head, n_feat, dropout):
        super().__init__()
        self.mha = nn.MultiheadAttention(n_feat, n_head, dropout=dropout, batch_first=True)

    def forward(self, x, mask, pos_emb=None):
        out, self.attn = self.mha(x, x, x, key_padding_mask=~mask.squeeze(1), need_weights=True)
        return out


class FeedForward(nn.Module):
    def __init__(self, d_model, hidden, dropout):
        super().__init__()
        self.w_1 = nn.Linear(d_model, hidden)
        self.w_2 = nn.Linear(hidden, d_model)
        self.activation = nn.SiLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


class ConvolutionModule(nn.Module):
    def __init__(self, channels, kernel_size):
        super().__init__()
        assert (kernel_size - 1) % 2 == 0
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, 1)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2,
                                        groups=channels)
        self.norm = nn.BatchNorm1d(channels)
        self.pointwise_conv2 = nn.Conv1d(channels, channels, 1)
        self.activation = nn.SiLU()

    def forward(self, x, mask_pad):
        """x [b, t, c]; mask_pad [b, 1, t] True on frames: padded frames are zeroed before the depthwise conv so
        that they do not leak into real frames."""
        x = x.transpose(1, 2)
        x = nn.functional.glu(self.pointwise_conv1(x), dim=1)
        x.masked_fill_(~mask_pad, 0.0)
        x = self.depthwise_conv(x)
        x = self.activation(self.norm(x))
        x = self.pointwise_conv2(x)
        x.masked_fill_(~mask_pad, 0.0)
        return x.transpose(1, 2)


class ConformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, hidden = cfg.d_model, cfg.d_model * cfg.ff_mult
        attn = RelPositionMultiHeadedAttention if cfg.pos == "rel" else AbsMultiHeadedAttention
        self.feed_forward_macaron = FeedForward(d, hidden, cfg.dropout)
        self.self_attn = attn(cfg.n_heads, d, cfg.dropout)
        self.conv_module = ConvolutionModule(d, cfg.kernel_size)
        self.feed_forward = FeedForward(d, hidden, cfg.dropout)
        self.norm_ff_macaron = nn.LayerNorm(d, eps=1e-5)
        self.norm_mha = nn.LayerNorm(d, eps=1e-5)
        self.norm_conv = nn.LayerNorm(d, eps=1e-5)
        self.norm_ff = nn.LayerNorm(d, eps=1e-5)
        self.norm_final = nn.LayerNorm(d, eps=1e-5)
        self.dropout = nn.Dropout(cfg.dropout)
        self.ff_scale = 0.5

    def forward(self, x, mask, pos_emb):
        x = x + self.ff_scale * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        x = x + self.dropout(self.self_attn(self.norm_mha(x), mask, pos_emb))
        x = x + self.dropout(self.conv_module(self.norm_conv(x), mask))
        x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x)


class ConformerCTC(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.specaug = SpecAugment()
        self.embed = Conv2dSubsampling(cfg.n_mels, cfg.d_model)
        pe = RelPositionalEncoding if cfg.pos == "rel" else PositionalEncoding
        self.pos_enc = pe(cfg.d_model, cfg.dropout, cfg.max_len)
        self.encoders = nn.ModuleList([ConformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ctc_lo = nn.Linear(cfg.d_model, cfg.vocab_size)

    def encode(self, feats, feats_lengths, draws=None):
        feats = self.specaug(feats, draws)
        masks = ~make_pad_mask(feats_lengths, feats.size(1)).unsqueeze(1)  # (B, 1, T)
        xs, masks = self.embed(feats, masks)
        xs, pos_emb = self.pos_enc(xs)
        for layer in self.encoders:
            xs = layer(xs, masks, pos_emb)
        return xs, masks.squeeze(1).sum(1)

    def forward(self, feats, feats_lengths, targets=None, target_lengths=None, draws=None, reduction="mean",
                zero_infinity=True):
        xs, lengths = self.encode(feats, feats_lengths, draws)
        log_probs = self.ctc_lo(xs).log_softmax(dim=-1)
        if targets is None:
            return log_probs, lengths, None
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=0,
                          reduction=reduction, zero_infinity=zero_infinity)
        return log_probs, lengths, loss


def subsampled_lengths(lengths):
    return torch.div(torch.div(lengths - 1, 2, rounding_mode="floor") - 1, 2, rounding_mode="floor")


def greedy_decode(log_probs, lengths, blank=0):
    """Best path per utterance: argmax per frame, repeats merged, blanks removed."""
    best = log_probs.argmax(dim=-1)
    hyps = []
    for b in range(best.size(0)):
        seq = torch.unique_consecutive(best[b, :lengths[b]])
        hyps.append(seq[seq != blank].tolist())
    return hyps


def configure_optimizer(model, lr=1e-3, weight_decay=1e-2):
    """AdamW with no decay on biases, norms and the attention position biases, as recipes do."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "pos_bias" in name or "norm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.98), eps=1e-9)


def noam_lambda(d_model, warmup):
    return lambda step: d_model ** -0.5 * min((step + 1) ** -0.5, (step + 1) * warmup ** -1.5)
