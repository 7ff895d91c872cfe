"""A small decoder-only LM with the fine-tuning and compression idioms of current LLM code, written the way public
implementations write them (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - the decoder: RMSNorm computed in float32, grouped-query attention (k/v heads repeated with repeat_interleave),
    ALiBi slopes (the BLOOM / MPT recipe, non-power-of-two head counts included) as an additive bias, an optional
    sliding-window causal mask, a SwiGLU MLP, dropout on the attention probabilities;
  - KV caches: a dynamic one grown with torch.cat, a static one preallocated and written by slice assignment, both
    reorderable by index_select for beam search;
  - LoRA (as PEFT writes it): LoRALinear wraps a frozen nn.Linear, lora_A kaiming-uniform, lora_B zeros, scaling
    alpha / r, dropout on the LoRA path only, merge / unmerge of B @ A * scaling into the base weight under
    torch.no_grad; injection by walking named_modules and setattr; mark_only_lora_as_trainable; LoRA+-style
    parameter groups; the adapter-only state_dict;
  - weight-only int8 quantization (per output channel, symmetric: amax, scale, round, clamp, .to(torch.int8)),
    4-bit group-wise asymmetric quantization with two nibbles packed into a uint8 by shifts and bitwise ops, and
    dequantization in the forward;
  - quantization-aware training: fake quantization with a straight-through estimator in a custom
    autograd.Function (the gradient passes where the value was not clamped), per-channel weight scales and
    per-token dynamic activation scales (W8A8).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 40
    dim: int = 32
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    hidden: int = 48
    max_seq_len: int = 32
    window: int = 0  # sliding-window attention span; 0: full causal attention
    attn_dropout: float = 0.0
    eps: float = 1e-5


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # in float32 at least (float64 stays float64), as Llama does under bf16
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.type_as(x)


def alibi_slopes(n_heads):
    """Geometric slopes 2^(-8 i / n); for a head count that is not a power of two, the closest power's slopes plus
    every other slope of the next power (as BLOOM and MPT compute them)."""
    def power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if math.log2(n_heads).is_integer():
        return power_of_2(n_heads)
    closest = 2 ** math.floor(math.log2(n_heads))
    return power_of_2(closest) + alibi_slopes(2 * closest)[0::2][: n_heads - closest]


def attention_bias(slopes, q_len, k_len, window, device):
    """[heads, q_len, k_len] additive bias: ALiBi's -slope * distance, -inf on future keys and (with a window) on
    keys `window` or more steps back. The queries are the last q_len of the k_len positions."""
    q_pos = torch.arange(k_len - q_len, k_len, device=device).unsqueeze(-1)
    k_pos = torch.arange(k_len, device=device).unsqueeze(0)
    rel = (k_pos - q_pos).to(slopes.dtype)
    allowed = k_pos <= q_pos
    if window > 0:
        allowed = allowed & (q_pos - k_pos < window)
    bias = slopes[:, None, None] * rel
    return bias.masked_fill(~allowed, float("-inf"))


class DynamicCache:
    """Keys / values per layer, grown along the sequence with torch.cat."""

    def __init__(self):
        self.keys, self.values = [], []

    def update(self, layer, k, v):
        if layer == len(self.keys):
            self.keys.append(k)
            self.values.append(v)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)
        return self.keys[layer], self.values[layer]

    def length(self):
        return self.keys[0].shape[-2] if self.keys else 0

    def reorder(self, beam_idx):
        for i in range(len(self.keys)):
            self.keys[i] = self.keys[i].index_select(0, beam_idx)
            self.values[i] = self.values[i].index_select(0, beam_idx)


class StaticCache:
    """Preallocated [B, kv_heads, max_len, head_dim] buffers per layer, written by slice assignment; attention
    reads the filled prefix."""

    def __init__(self, n_layers, batch, kv_heads, max_len, head_dim, dtype, device):
        shape = (batch, kv_heads, max_len, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.pos = 0

    def update(self, layer, k, v):
        t = k.shape[-2]
        self.keys[layer][:, :, self.pos:self.pos + t] = k
        self.values[layer][:, :, self.pos:self.pos + t] = v
        if layer == len(self.keys) - 1:
            self.pos += t
            end = self.pos
        else:
            end = self.pos + t
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def length(self):
        return self.pos

    def reorder(self, beam_idx):
        for i in range(len(self.keys)):
            self.keys[i].copy_(self.keys[i].index_select(0, beam_idx))
            self.values[i].copy_(self.values[i].index_select(0, beam_idx))


class Attention(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_kv_heads = cfg.n_heads, cfg.n_kv_heads
        self.head_dim = cfg.dim // cfg.n_heads
        self.window = cfg.window
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * self.head_dim, cfg.dim, bias=False)
        self.attn_dropout = nn.Dropout(cfg.attn_dropout)
        # derived from the config, so not saved in checkpoints
        self.register_buffer("slopes", torch.tensor(alibi_slopes(cfg.n_heads)), persistent=False)

    def forward(self, x, cache=None):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)
        n_rep = self.n_heads // self.n_kv_heads
        k = torch.repeat_interleave(k, n_rep, dim=1)
        v = torch.repeat_interleave(v, n_rep, dim=1)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        scores = scores + attention_bias(self.slopes, t, k.shape[-2], self.window, x.device).to(scores.dtype)
        probs = F.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).type_as(q)
        probs = self.attn_dropout(probs)
        out = torch.matmul(probs, v).transpose(1, 2).contiguous().view(b, t, -1)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        self.input_norm = RMSNorm(cfg.dim, cfg.eps)
        self.self_attn = Attention(cfg, layer_idx)
        self.post_attn_norm = RMSNorm(cfg.dim, cfg.eps)
        self.mlp = MLP(cfg.dim, cfg.hidden)

    def forward(self, x, cache=None):
        x = x + self.self_attn(self.input_norm(x), cache)
        return x + self.mlp(self.post_attn_norm(x))


class DecoderLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList([Block(cfg, i) for i in range(cfg.n_layers)])
        self.norm = RMSNorm(cfg.dim, cfg.eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.08)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.5)

    def forward(self, ids, targets=None, cache=None):
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h, cache)
        logits = self.lm_head(self.norm(h))
        if targets is None:
            return logits
        flat = logits.view(-1, logits.size(-1))
        loss = F.cross_entropy(flat.to(torch.promote_types(flat.dtype, torch.float32)), targets.view(-1))
        return logits, loss


# ---------------------------------------------------------------------------------------------------- LoRA

class LoRALinear(nn.Module):
    """base(x) + lora_B(lora_A(dropout(x))) * alpha / r, with the base layer frozen."""

    def __init__(self, base, r=4, alpha=8, dropout=0.0):
        super().__init__()
        self.base_layer = base
        self.base_layer.weight.requires_grad_(False)
        if self.base_layer.bias is not None:
            self.base_layer.bias.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_dropout = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        w = base.weight
        self.lora_A = nn.Linear(base.in_features, r, bias=False, device=w.device, dtype=w.dtype)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, device=w.device, dtype=w.dtype)
        self.merged = False
        self.reset_lora_parameters()

    def reset_lora_parameters(self):
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)

    def delta_weight(self):
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    def merge(self):
        with torch.no_grad():
            if not self.merged:
                self.base_layer.weight.data += self.delta_weight()
                self.merged = True

    def unmerge(self):
        with torch.no_grad():
            if self.merged:
                self.base_layer.weight.data -= self.delta_weight()
                self.merged = False

    def forward(self, x):
        result = self.base_layer(x)
        if self.merged:
            return result
        x = x.to(self.lora_A.weight.dtype)
        return result + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling

    def extra_repr(self):
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def inject_lora(model, target_modules=("q_proj", "v_proj"), r=4, alpha=8, dropout=0.0):
    """Replaces every nn.Linear whose attribute name is in target_modules by a LoRALinear around it; returns the
    dotted names replaced."""
    replaced = []
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if child_name in target_modules and isinstance(child, nn.Linear):
                setattr(parent, child_name, LoRALinear(child, r=r, alpha=alpha, dropout=dropout))
                replaced.append(f"{parent_name}.{child_name}" if parent_name else child_name)
    return replaced


def mark_only_lora_as_trainable(model):
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name


def lora_param_groups(model, lr, weight_decay, lr_ratio_b=4.0):
    """LoRA+ style: lora_B learns lr_ratio_b times faster than lora_A; neither group decays lora_B."""
    a_params = [p for n, p in model.named_parameters() if p.requires_grad and "lora_A" in n]
    b_params = [p for n, p in model.named_parameters() if p.requires_grad and "lora_B" in n]
    return [{"params": a_params, "lr": lr, "weight_decay": weight_decay},
            {"params": b_params, "lr": lr * lr_ratio_b, "weight_decay": 0.0}]


def lora_state_dict(model):
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}


def merge_all(model, merge=True):
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.merge() if merge else m.unmerge()


def unwrap_lora(model):
    """Merges every adapter and puts the plain nn.Linear back (what merge_and_unload does)."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                child.merge()
                setattr(parent, name, child.base_layer)
    return model


# ---------------------------------------------------------------------------------------------- quantization

def quantize_int8_per_channel(w):
    """Symmetric per-output-channel int8: (int8 weight, float scales [out])."""
    with torch.no_grad():
        amax = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-8)
        scales = amax / 127.0
        q = torch.round(w / scales).clamp(-128, 127).to(torch.int8)
    return q, scales.squeeze(1)


class WeightOnlyInt8Linear(nn.Module):
    """int8 weights and float scales in buffers; the matmul runs on the weight cast to the input's dtype and the
    scales apply to the output channels (as gpt-fast writes it)."""

    def __init__(self, in_features, out_features, bias=True, dtype=torch.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scales", torch.ones(out_features, dtype=dtype))
        if bias:
            self.register_buffer("bias", torch.zeros(out_features, dtype=dtype))
        else:
            self.bias = None

    @classmethod
    def from_linear(cls, linear):
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, linear.weight.dtype)
        q.to(linear.weight.device)  # the buffers start on the host; the layer's weights may be on a GPU
        w, s = quantize_int8_per_channel(linear.weight.detach())
        q.weight.copy_(w)
        q.scales.copy_(s)
        if linear.bias is not None:
            q.bias.copy_(linear.bias.detach())
        return q

    def forward(self, x):
        out = F.linear(x, self.weight.to(dtype=x.dtype)) * self.scales.to(x.dtype)
        return out + self.bias.to(x.dtype) if self.bias is not None else out


def pack_int4(q):
    """[..., 2n] integers in 0..15 -> [..., n] uint8, the even column in the high nibble."""
    q = q.to(torch.uint8)
    return (q[..., 0::2] << 4) | (q[..., 1::2] & 0x0F)


def unpack_int4(packed):
    high = torch.bitwise_right_shift(packed, 4)
    low = torch.bitwise_and(packed, 15)
    return torch.stack([high, low], dim=-1).flatten(-2)


def quantize_int4_grouped(w, group_size):
    """Asymmetric 4-bit per group of `group_size` input columns: (packed uint8 [out, in / 2], scales and zero
    points [out, in / group_size])."""
    out_f, in_f = w.shape
    with torch.no_grad():
        g = w.reshape(out_f, in_f // group_size, group_size)
        wmin = g.amin(dim=-1, keepdim=True)
        wmax = g.amax(dim=-1, keepdim=True)
        scales = ((wmax - wmin) / 15).clamp(min=1e-6)
        zeros = torch.round(-wmin / scales).clamp(0, 15)
        q = torch.clamp(torch.round(g / scales) + zeros, 0, 15).reshape(out_f, in_f)
    return pack_int4(q), scales.squeeze(-1), zeros.squeeze(-1)


def dequantize_int4_grouped(packed, scales, zeros, group_size):
    q = unpack_int4(packed).to(scales.dtype)
    out_f, in_f = q.shape
    q = q.view(out_f, in_f // group_size, group_size)
    return ((q - zeros.unsqueeze(-1)) * scales.unsqueeze(-1)).reshape(out_f, in_f)


class Int4Linear(nn.Module):
    def __init__(self, linear, group_size=8):
        super().__init__()
        self.group_size = group_size
        packed, scales, zeros = quantize_int4_grouped(linear.weight.detach(), group_size)
        self.register_buffer("qweight", packed)
        self.register_buffer("scales", scales)
        self.register_buffer("zeros", zeros)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def forward(self, x):
        w = dequantize_int4_grouped(self.qweight, self.scales, self.zeros, self.group_size)
        return F.linear(x, w.to(x.dtype), self.bias)


def quantize_model(model, kind="int8", group_size=8, skip=("lm_head",)):
    """Swaps every nn.Linear (except those named in skip) for its quantized counterpart."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and name not in skip:
                new = WeightOnlyInt8Linear.from_linear(child) if kind == "int8" else Int4Linear(child, group_size)
                setattr(parent, name, new)
    return model


def quantize_fp8_per_tensor(w):
    """FP8 (e4m3) weight with one float32 scale, as FP8 inference stacks store it: (fp8 weight, scale)."""
    with torch.no_grad():
        scale = w.abs().amax().float().clamp(min=1e-12) / torch.finfo(torch.float8_e4m3fn).max
        return (w / scale).clamp(-448.0, 448.0).to(torch.float8_e4m3fn), scale


def dequantize_fp8(wq, scale, dtype):
    return wq.to(dtype) * scale.to(dtype)


def from_checkpoint(cfg, state_dict):
    """gpt-fast / torchtune style loading: build on the meta device (no memory, no init), take the checkpoint's
    tensors themselves (assign=True), then recompute the non-persistent buffers."""
    with torch.device("meta"):
        model = DecoderLM(cfg)
    model.load_state_dict(state_dict, assign=True)
    device = next(iter(state_dict.values())).device
    for m in model.modules():
        if isinstance(m, Attention):
            m.slopes = torch.tensor(alibi_slopes(cfg.n_heads), device=device)
    return model


# ------------------------------------------------------------------------------------------------------- QAT

class FakeQuantize(torch.autograd.Function):
    """round(x / scale) clamped to [qmin, qmax], times scale; the backward is the straight-through estimator
    restricted to the unclamped range, and the scale gets no gradient."""

    @staticmethod
    def forward(ctx, x, scale, qmin, qmax):
        # the mask is on the rounded values (as torch's fake_quantize_*_cachemask kernels take it): the element
        # that set a max-based scale lands on qmax whatever the division's last bit
        xq = torch.round(x / scale)
        ctx.save_for_backward((xq >= qmin) & (xq <= qmax))
        return torch.clamp(xq, qmin, qmax) * scale

    @staticmethod
    def backward(ctx, grad_output):
        (inside,) = ctx.saved_tensors
        return grad_output * inside.to(grad_output.dtype), None, None, None


def fake_quant_ste_detach(x, scale, qmin, qmax):
    """The other common spelling of the STE: x + (q(x) - x).detach() (gradient 1 everywhere)."""
    q = torch.clamp(torch.round(x / scale), qmin, qmax) * scale
    return x + (q - x).detach()


class QATLinear(nn.Linear):
    """W8A8 fake quantization: per-output-channel weight scales, per-token dynamic activation scales."""

    def __init__(self, in_features, out_features, bias=True, act_bits=8, weight_bits=8):
        super().__init__(in_features, out_features, bias=bias)
        self.act_qmax = 2 ** (act_bits - 1) - 1
        self.w_qmax = 2 ** (weight_bits - 1) - 1

    def forward(self, x):
        w_scale = self.weight.detach().abs().amax(dim=1, keepdim=True).clamp(min=1e-5) / self.w_qmax
        w = FakeQuantize.apply(self.weight, w_scale, -self.w_qmax - 1, self.w_qmax)
        a_scale = x.detach().abs().amax(dim=-1, keepdim=True).clamp(min=1e-5) / self.act_qmax
        x = FakeQuantize.apply(x, a_scale, -self.act_qmax - 1, self.act_qmax)
        return F.linear(x, w, self.bias)


class TorchOpsQATLinear(QATLinear):
    """The same fake quantization through torch's own primitives, as torch.ao's FakeQuantize modules call them:
    fake_quantize_per_channel_affine on the weight (float32 scales, int32 zero points), and
    fake_quantize_per_tensor_affine on the activations with a scale from their running absolute max."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("act_amax", torch.zeros(()))

    def forward(self, x):
        w_scale = (self.weight.detach().abs().amax(dim=1).clamp(min=1e-5) / self.w_qmax).float()
        zero = torch.zeros_like(w_scale, dtype=torch.int32)
        w = torch.fake_quantize_per_channel_affine(self.weight, w_scale, zero, 0, -self.w_qmax - 1, self.w_qmax)
        if self.training:
            with torch.no_grad():
                self.act_amax.copy_(torch.maximum(self.act_amax, x.detach().abs().max().to(self.act_amax.dtype)))
        a_scale = max(self.act_amax.item(), 1e-5) / self.act_qmax
        x = torch.fake_quantize_per_tensor_affine(x, a_scale, 0, -self.act_qmax - 1, self.act_qmax)
        return F.linear(x, w, self.bias)


def to_qat(model, skip=("lm_head",), torch_ops=False):
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and name not in skip:
                cls = TorchOpsQATLinear if torch_ops else QATLinear
                new = cls(child.in_features, child.out_features, child.bias is not None)
                new.load_state_dict(child.state_dict(), strict=False)  # act_amax starts at zero
                setattr(parent, name, new.to(child.weight.device, child.weight.dtype))
    return model


def int8_matmul_per_token(x, w):
    """The integer path W8A8 kernels take: both sides quantized (per token, per channel), an int32 matmul, the
    two scales applied to the int32 result."""
    xq_scale = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5) / 127
    xq = torch.round(x / xq_scale).clamp(-128, 127).to(torch.int8)
    wq, w_scale = quantize_int8_per_channel(w)
    # torch._int_mm is the int8 x int8 -> int32 kernel (2-D operands); the plain int32 matmul is its reference
    flat = xq.reshape(-1, xq.shape[-1])
    acc = torch._int_mm(flat, wq.t().contiguous()).view(*xq.shape[:-1], -1)
    assert torch.equal(acc, torch.matmul(xq.to(torch.int32), wq.to(torch.int32).t()))
    return acc.to(x.dtype) * xq_scale * w_scale.to(x.dtype)
