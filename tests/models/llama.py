"""A Llama-style decoder written the way public model code is written (imports torch only; loaded with vibetensor
swapped in by tests/models/swap_import.py):
  - pre-norm blocks with RMSNorm (root mean square over the last dim, a learned scale, no bias, no mean);
  - rotary position embeddings from precomputed cos/sin tables, applied with the rotate-half formulation (or,
    with rope="complex", Meta's original form: complex frequencies from torch.polar, view_as_complex pairs);
  - grouped-query attention: n_kv_heads < n_heads, each key/value head shared by n_heads // n_kv_heads query
    heads (repeat_interleave, or expand + reshape), through F.scaled_dot_product_attention with is_causal;
  - a SwiGLU MLP (silu(gate) * up, then down), tied input/output embeddings;
  - a KV cache for generation: prefill the prompt, then one token at a time, and `generate` with greedy decoding
    or top-k / top-p sampling from a torch.Generator;
  - batches of left-padded prompts: an attention_mask [B, S] gives each row its own positions (cumsum) for the
    rotary tables and a causal + padding bool mask for attention.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class LlamaConfig:
    vocab_size: int = 64
    dim: int = 32
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    hidden_dim: int = 64
    max_seq_len: int = 32
    rope_theta: float = 10000.0
    rope: str = "rotate_half"  # or "complex"
    norm_eps: float = 1e-5
    kv_repeat: str = "repeat_interleave"  # or "expand": the two ways public code shares the key/value heads


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # normalize in float32 even when the activations are half precision, as the reference code does
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.type_as(x)


def rope_tables(head_dim, max_len, theta=10000.0):
    """cos and sin [max_len, head_dim]: each frequency appears twice, once per half (the rotate-half layout)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    t = torch.arange(max_len, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(q, k, cos, sin):
    """q, k: [B, heads, T, head_dim]; cos, sin: [B or 1, T, head_dim] (broadcast over the heads)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def complex_rope_table(head_dim, max_len, theta=10000.0):
    """e^(i * position * frequency) [max_len, head_dim // 2], complex64."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    return torch.polar(torch.ones_like(angles), angles)


def apply_rotary_complex(q, k, freqs_cis):
    """Rotates each adjacent pair (x[2i], x[2i+1]) of q and k as one complex number; freqs_cis [B or 1, T, D/2]."""
    f = freqs_cis.unsqueeze(1)

    def rotate(x):
        pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        return torch.view_as_real(pairs * f).flatten(-2).type_as(x)
    return rotate(q), rotate(k)


def repeat_kv(x, n_rep, how):
    """[B, kv_heads, T, D] -> [B, kv_heads * n_rep, T, D], each key/value head next to its copies."""
    if n_rep == 1:
        return x
    if how == "repeat_interleave":
        return x.repeat_interleave(n_rep, dim=1)
    b, h, t, d = x.shape
    return x[:, :, None, :, :].expand(b, h, n_rep, t, d).reshape(b, h * n_rep, t, d)


class KVCache:
    """Keys and values of the tokens seen so far, per layer; grows by concatenation along the sequence."""

    def __init__(self, n_layers):
        self.keys = [None] * n_layers
        self.values = [None] * n_layers

    def update(self, layer, k, v):
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    @property
    def length(self):
        return 0 if self.keys[0] is None else self.keys[0].shape[2]


class Attention(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        self.head_dim = cfg.dim // cfg.n_heads
        self.n_rep = cfg.n_heads // cfg.n_kv_heads
        self.kv_repeat = cfg.kv_repeat
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * self.head_dim, cfg.dim, bias=False)

    def forward(self, x, rope, cache=None, mask=None):
        """rope: (cos, sin) tables, or (freqs_cis,) for the complex form."""
        bsz, seqlen, _ = x.shape
        q = self.q_proj(x).view(bsz, seqlen, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, k, *rope) if len(rope) == 2 else apply_rotary_complex(q, k, *rope)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        k = repeat_kv(k, self.n_rep, self.kv_repeat)
        v = repeat_kv(v, self.n_rep, self.kv_repeat)
        if mask is not None:  # [B, 1, T, S] bool, True where a query may look
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        elif seqlen == k.shape[2]:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif seqlen == 1:  # one new token attends to everything cached
            out = F.scaled_dot_product_attention(q, k, v)
        else:  # a chunk after a prefix: causal with the diagonal offset by the cached length
            past = k.shape[2] - seqlen
            mask = torch.ones(seqlen, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.o_proj(out)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.up_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.down_proj = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.self_attn = Attention(cfg, layer_idx)
        self.post_attention_layernorm = RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.mlp = FeedForward(cfg.dim, cfg.hidden_dim)

    def forward(self, x, rope, cache=None, mask=None):
        h = x + self.self_attn(self.input_layernorm(x), rope, cache, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class Llama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg.dim % cfg.n_heads or cfg.n_heads % cfg.n_kv_heads:
            raise ValueError("dim must divide by n_heads and n_heads by n_kv_heads")
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.embed_tokens.weight
        if cfg.rope == "complex":
            table = complex_rope_table(cfg.dim // cfg.n_heads, cfg.max_seq_len, cfg.rope_theta)
            self.register_buffer("freqs_cis", table, persistent=False)
        else:
            cos, sin = rope_tables(cfg.dim // cfg.n_heads, cfg.max_seq_len, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, tokens, targets=None, cache=None, attention_mask=None):
        """attention_mask: [B, cached + T], 1 at real tokens and 0 at the padding (left of each prompt)."""
        bsz, seqlen = tokens.shape
        start = 0 if cache is None else cache.length
        if start + seqlen > self.config.max_seq_len:
            raise ValueError(f"{start + seqlen} positions exceed max_seq_len {self.config.max_seq_len}")
        mask = None
        if attention_mask is None:
            positions = slice(start, start + seqlen)
            rope = self._rope(lambda table: table[positions].unsqueeze(0))
        else:
            # each row counts its positions from its first real token; the padding sits at position 0
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, start:]
            rope = self._rope(lambda table: table[position_ids])
            total = start + seqlen
            causal = torch.ones(seqlen, total, dtype=torch.bool, device=tokens.device).tril(diagonal=start)
            mask = causal[None, None] & attention_mask.bool()[:, None, None, :]
            # a padding query would see no key at all (an empty softmax row); let it see itself
            keys = torch.arange(total, device=tokens.device)
            mask = mask | (keys[None, :] == keys[start:, None])[None, None]
        h = self.embed_tokens(tokens)
        for layer in self.layers:
            h = layer(h, rope, cache, mask)
        logits = self.lm_head(self.norm(h))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)
        return logits, loss

    def _rope(self, pick):
        """The rotary tables at the positions `pick` selects, as the layers take them."""
        if self.config.rope == "complex":
            return (pick(self.freqs_cis),)
        return pick(self.rope_cos), pick(self.rope_sin)

    @torch.inference_mode()
    def generate(self, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
                 use_cache=True, attention_mask=None):
        """Greedy when neither top_k nor top_p is given (or top_k is 1), else samples with `generator` among the
        top_k logits or the smallest set of tokens whose probability reaches top_p. attention_mask marks the real
        tokens of left-padded prompts."""
        cache = KVCache(self.config.n_layers) if use_cache else None
        tokens = prompt
        logits, _ = self(prompt, cache=cache, attention_mask=attention_mask)
        for _ in range(max_new_tokens):
            last = logits[:, -1, :] / temperature
            if top_p is not None:
                nxt = self.sample_top_p(last, top_p, generator)
            elif top_k is None or top_k == 1:
                nxt = last.argmax(dim=-1, keepdim=True)
            else:
                vals, idx = torch.topk(last, min(top_k, last.size(-1)), dim=-1)
                probs = F.softmax(vals, dim=-1)
                nxt = idx.gather(-1, torch.multinomial(probs, 1, generator=generator))
            tokens = torch.cat([tokens, nxt], dim=1)
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones((attention_mask.size(0), 1))],
                                           dim=1)
            if use_cache:
                logits, _ = self(nxt, cache=cache, attention_mask=attention_mask)
            else:
                logits, _ = self(tokens, attention_mask=attention_mask)
        return tokens

    @staticmethod
    def sample_top_p(logits, top_p, generator=None):
        probs = torch.softmax(logits, dim=-1)
        sorted_probs, sorted_idx = torch.sort(probs, dim=-1, descending=True)
        # drop a token once the ones before it already reach top_p (the most likely one always stays)
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        sorted_probs.div_(sorted_probs.sum(dim=-1, keepdim=True))
        choice = torch.multinomial(sorted_probs, num_samples=1, generator=generator)
        return torch.gather(sorted_idx, -1, choice)


def cosine_with_warmup(warmup, total, min_ratio=0.1):
    """LambdaLR factor: linear warmup, then cosine decay down to min_ratio of the peak."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor
