"""A decoder block with a static KV cache and a top-1 mixture-of-experts MLP, written the way public LLM code is
written (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - the keys and values of the new tokens go into preallocated cache buffers [B, heads, max_len, head_dim] at
    their sequence positions with index_copy_ along dim 2 (as Hugging Face's StaticCache does), and attention
    runs over the whole cache with a causal mask on the positions;
  - the MoE router picks each token's top-1 expert; every expert runs on its own tokens (index_select) and its
    gated output is added back at those tokens (index_add_); index_fill keeps the router off disabled experts.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Top1MoE(nn.Module):
    def __init__(self, dim, hidden, n_experts, disabled=()):
        super().__init__()
        self.router = nn.Linear(dim, n_experts, bias=False)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) for _ in range(n_experts))
        self.register_buffer("disabled", torch.tensor(list(disabled), dtype=torch.long), persistent=False)
        self.last_counts = []  # tokens per expert in the last forward, for inspection

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        logits = self.router(flat)
        if self.disabled.numel():
            logits = logits.index_fill(1, self.disabled, float("-inf"))
        gate, expert = F.softmax(logits, dim=-1).max(dim=-1)
        out = torch.zeros_like(flat)
        self.last_counts = []
        for e, mlp in enumerate(self.experts):
            tokens = (expert == e).nonzero().squeeze(-1)
            self.last_counts.append(tokens.numel())
            if tokens.numel() == 0:
                continue
            y = mlp(flat.index_select(0, tokens)) * gate.index_select(0, tokens).unsqueeze(-1)
            out.index_add_(0, tokens, y)
        return out.reshape(x.shape)


class DecoderBlock(nn.Module):
    def __init__(self, dim, heads, batch, max_len, n_experts, hidden, disabled=()):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.moe = Top1MoE(dim, hidden, n_experts, disabled)
        cache = (batch, heads, max_len, dim // heads)
        self.register_buffer("k_cache", torch.zeros(cache), persistent=False)
        self.register_buffer("v_cache", torch.zeros(cache), persistent=False)

    def forward(self, x, positions):
        """x: [B, T, dim], the tokens at sequence positions `positions` [T]."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        self.k_cache.index_copy_(2, positions, k)
        self.v_cache.index_copy_(2, positions, v)
        scores = q @ self.k_cache.transpose(-2, -1) / math.sqrt(d // self.heads)
        key_positions = torch.arange(self.k_cache.shape[2], device=x.device)
        scores = scores.masked_fill(key_positions > positions.unsqueeze(-1), float("-inf"))
        attended = F.softmax(scores, dim=-1) @ self.v_cache
        x = x + self.proj(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.moe(self.ln2(x))
