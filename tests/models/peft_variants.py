"""Parameter-efficient fine-tuning variants and post-training quantization calibration, written the way public
implementations write them (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py);
they act on any model of nn.Linear layers, such as tests/models/lora_llm.py's DecoderLM:
  - LoRA as a parametrization (minLoRA's way): torch.nn.utils.parametrize.register_parametrization puts
    W + B @ A * scaling in place of the weight; merging is remove_parametrizations(leave_parametrized=True);
  - DoRA: the weight split into a learned magnitude (the column norms of W, torch.linalg.norm) and a direction
    W + B A normalised by its detached norm;
  - (IA)^3: learned vectors rescaling the outputs of chosen layers, installed as forward hooks whose return
    value replaces the output;
  - prompt tuning: learned virtual-token embeddings concatenated before the input embeddings (the model is
    entered through forward(inputs_embeds=...)), their labels -100;
  - NF4 (QLoRA's 4-bit NormalFloat): blockwise absmax scaling, the nearest of 16 normal-quantile levels by argmin,
    two indices packed per uint8, dequantization by indexing the level table;
  - activation offloading: a torch.autograd.graph.saved_tensors_hooks subclass moving what autograd saves to
    the CPU and back (torchtune's OffloadActivations);
  - SmoothQuant calibration: forward pre-hooks record each linear input's per-channel absmax (torch.maximum over
    batches); the smoothing factors s = amax_x^alpha / amax_w^(1 - alpha) divide the preceding norm's weight and
    multiply the linears' input columns, in place under torch.no_grad, leaving the function unchanged.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from torch.autograd.graph import saved_tensors_hooks


# ------------------------------------------------------------------------------------- LoRA as parametrization

class LoRAParametrization(nn.Module):
    def __init__(self, fan_out, fan_in, rank=4, alpha=8, dtype=None, device=None):
        super().__init__()
        self.lora_A = nn.Parameter(torch.zeros(rank, fan_in, dtype=dtype, device=device))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, rank, dtype=dtype, device=device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / rank
        self.enabled = True

    def forward(self, original_weight):
        if not self.enabled:
            return original_weight
        return original_weight + (self.lora_B @ self.lora_A).view(original_weight.shape) * self.scaling


def add_lora_parametrizations(model, target_modules, rank=4, alpha=8):
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.split(".")[-1] in target_modules:
            w = module.weight
            parametrize.register_parametrization(
                module, "weight", LoRAParametrization(w.shape[0], w.shape[1], rank, alpha, w.dtype, w.device))
            module.parametrizations.weight.original.requires_grad_(False)


def merge_lora_parametrizations(model):
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)


# --------------------------------------------------------------------------------------------------------- DoRA

class DoRALinear(nn.Module):
    def __init__(self, base, r=4, alpha=8):
        super().__init__()
        self.weight = nn.Parameter(base.weight.detach().clone(), requires_grad=False)
        self.bias = None if base.bias is None else nn.Parameter(base.bias.detach().clone(), requires_grad=False)
        like = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / r
        # the magnitude starts at the norm of each output row of W, so the layer starts as the base layer
        self.magnitude = nn.Parameter(torch.linalg.norm(self.weight, dim=1).detach())

    def forward(self, x):
        w = self.weight + self.scaling * (self.lora_B @ self.lora_A)
        # the norm is treated as a constant in the backward (DoRA section 4.3: saves memory, barely changes it)
        norm = torch.linalg.norm(w, dim=1).detach()
        return F.linear(x, w * (self.magnitude / norm).unsqueeze(1), self.bias)


def apply_dora(model, target_modules, r=4, alpha=8):
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if name in target_modules and isinstance(child, nn.Linear):
                setattr(parent, name, DoRALinear(child, r, alpha))


# ------------------------------------------------------------------------------------------------------- (IA)^3

class IA3(nn.Module):
    """Wraps the model (as PeftModel does); the learned vectors live in a ParameterDict keyed by layer name (dots
    replaced)."""

    def __init__(self, model, target_modules):
        super().__init__()
        self.model = model
        self.scales = nn.ParameterDict()
        self.handles = []
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and name.split(".")[-1] in target_modules:
                key = name.replace(".", "_")
                self.scales[key] = nn.Parameter(torch.ones(module.out_features, dtype=module.weight.dtype,
                                                                device=module.weight.device))
                self.handles.append(module.register_forward_hook(self._hook(key)))

    def _hook(self, key):
        def hook(module, inputs, output):
            return output * self.scales[key]
        return hook

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def remove(self):
        for h in self.handles:
            h.remove()


# ------------------------------------------------------------------------------------------------ prompt tuning

class PromptTuning(nn.Module):
    def __init__(self, model, n_virtual, init_from_vocab=True):
        super().__init__()
        self.model = model
        for p in model.parameters():
            p.requires_grad_(False)
        emb = model.embed_tokens.weight
        if init_from_vocab:  # start from the embeddings of the first vocabulary tokens, as PEFT's TEXT init does
            init = emb[:n_virtual].detach().clone()
        else:
            init = torch.randn(n_virtual, emb.shape[1], dtype=emb.dtype, device=emb.device) * 0.02
        self.prompt = nn.Parameter(init)

    def forward(self, ids, targets=None):
        b = ids.shape[0]
        embeds = self.model.embed_tokens(ids)
        prompt = self.prompt.unsqueeze(0).expand(b, -1, -1)
        h = torch.cat([prompt, embeds], dim=1)
        for layer in self.model.layers:
            h = layer(h)
        logits = self.model.lm_head(self.model.norm(h))[:, self.prompt.shape[0]:]
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)


# ---------------------------------------------------------------------------------------------------------- NF4

def nf4_levels():
    """The 16 NF4 levels of QLoRA (normal quantiles, asymmetric so that 0 is exact), as a float32 tensor."""
    return torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                         -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                         0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                         0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0])


def quantize_nf4(w, block_size=16):
    """(packed uint8 [numel / 2], absmax per block [numel / block_size]) of a float weight."""
    flat = w.reshape(-1, block_size).float()
    absmax = flat.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
    normed = flat / absmax
    levels = nf4_levels().to(w.device)
    idx = torch.argmin((normed.unsqueeze(-1) - levels).abs(), dim=-1).to(torch.uint8).reshape(-1)
    packed = (idx[0::2] << 4) | idx[1::2]
    return packed, absmax.squeeze(1)


def dequantize_nf4(packed, absmax, shape, block_size=16, dtype=torch.float32):
    idx = torch.stack([packed >> 4, packed & 0xF], dim=-1).reshape(-1).long()
    values = nf4_levels().to(packed.device)[idx].view(-1, block_size) * absmax.unsqueeze(1)
    return values.view(shape).to(dtype)


class NF4Linear(nn.Module):
    def __init__(self, base, block_size=16):
        super().__init__()
        self.shape, self.block_size = tuple(base.weight.shape), block_size
        packed, absmax = quantize_nf4(base.weight.detach(), block_size)
        self.register_buffer("packed", packed)
        self.register_buffer("absmax", absmax)

    def forward(self, x):
        return F.linear(x, dequantize_nf4(self.packed, self.absmax, self.shape, self.block_size, x.dtype))


# ------------------------------------------------------------------------------------- activation offloading

class OffloadActivations(saved_tensors_hooks):
    """torchtune's pattern: every tensor autograd saves goes to a side table (on the CPU) under an integer key, and
    the backward fetches it back; counts what it stored."""

    def __init__(self):
        self.stash, self.packed = {}, 0

        def pack(t):
            key = self.packed
            self.stash[key] = (t.device, t.to("cpu", copy=True))
            self.packed += 1
            return key

        def unpack(key):
            device, t = self.stash.pop(key)
            return t.to(device)
        super().__init__(pack, unpack)


# ------------------------------------------------------------------------------------------------ SmoothQuant

@torch.no_grad()
def collect_input_amax(model, batches, forward):
    """Per-input-channel absmax of every nn.Linear's input over the calibration batches, by forward pre-hooks."""
    stats, handles = {}, []

    def make_hook(name):
        def hook(module, args):
            x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(dim=0)
            stats[name] = torch.maximum(stats[name], x) if name in stats else x
        return hook
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            handles.append(module.register_forward_pre_hook(make_hook(name)))
    for batch in batches:
        forward(model, batch)
    for h in handles:
        h.remove()
    return stats


@torch.no_grad()
def smooth_norm_linears(norm, linears, act_amax, alpha=0.5):
    """Migrates activation outliers into the weights: x / s through the norm's weight, W * s in the linears."""
    weight_amax = torch.cat([lin.weight.abs() for lin in linears], dim=0).amax(dim=0).clamp(min=1e-5)
    s = (act_amax.clamp(min=1e-5).pow(alpha) / weight_amax.pow(1 - alpha)).clamp(min=1e-5)
    norm.weight.div_(s)
    for lin in linears:
        lin.weight.mul_(s.view(1, -1))
    return s
