"""A small Swin Transformer written the way public vision code writes it: strided-conv patch embedding, (shifted)
window attention with a learned relative position bias, the shifted-window attention mask, DropPath, patch
merging, padding to window multiples, an average-pooled head, a no_weight_decay() set for AdamW param groups and
a cosine schedule with linear warmup. Attention runs either written out (softmax of q k^T + bias + mask) or fused
through F.scaled_dot_product_attention with the bias and the mask as a float attn_mask; helpers are registered
with torch.fx.wrap as torchvision's model files do. It imports torch only; tests/models/test_swin.py runs it on
torch and on vibetensor."""
import math

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch.nn.init import trunc_normal_


def window_partition(x, ws):
    """(B, H, W, C) -> (B * nW, ws, ws, C)."""
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)


def window_reverse(windows, ws, H, W):
    """(B * nW, ws, ws, C) -> (B, H, W, C)."""
    B = int(windows.shape[0] / (H * W / ws / ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def relative_position_index(ws):
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))  # 2, ws, ws
    flat = torch.flatten(coords, 1)  # 2, ws*ws
    rel = flat[:, :, None] - flat[:, None, :]  # 2, N, N
    rel = rel.permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws - 1  # shift to start from 0
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    return rel.sum(-1)  # N, N


def shifted_window_mask(H, W, ws, shift):
    """Windows that wrap around after the cyclic shift mix regions that were not adjacent: -100 keeps them apart."""
    img_mask = torch.zeros((1, H, W, 1))
    slices = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    cnt = 0
    for h in slices:
        for w in slices:
            img_mask[:, h, w, :] = cnt
            cnt += 1
    mask_windows = window_partition(img_mask, ws).view(-1, ws * ws)
    attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
    return attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(attn_mask == 0, float(0.0))


def pad_to_multiple(x, multiple):
    """(B, H, W, C) padded at the bottom / right up to multiples of `multiple`: F.pad runs from the last dim."""
    H, W = x.shape[1], x.shape[2]
    return F.pad(x, (0, 0, 0, (multiple - W % multiple) % multiple, 0, (multiple - H % multiple) % multiple))


torch.fx.wrap("pad_to_multiple")  # data-dependent padding: a leaf for FX tracing


@torch.fx.wrap
def merge_neighbours(x):
    """(B, H, W, C) with even H, W -> (B, H / 2, W / 2, 4C): each 2x2 neighbourhood's features side by side."""
    x0, x1 = x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :]
    x2, x3 = x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]
    return torch.cat([x0, x1, x2, x3], -1)


class DropPath(nn.Module):
    """Stochastic depth per sample; the keep mask comes from numpy's global generator, so a seed fixes it."""

    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1 - self.drop_prob
        keep = (np.random.rand(x.shape[0]) < keep_prob).astype(np.float32)
        mask = torch.from_numpy(keep).to(x.device, x.dtype).view((x.shape[0],) + (1,) * (x.ndim - 1))
        return x.div(keep_prob) * mask

    def extra_repr(self):
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


class Mlp(nn.Module):
    def __init__(self, dim, hidden, drop=0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    def __init__(self, dim, ws, num_heads, qkv_bias=True, attn_drop=0.0, proj_drop=0.0, fused_attn=False,
                 persistent_index=False):
        super().__init__()
        self.fused_attn = fused_attn
        self.dim, self.ws, self.num_heads = dim, ws, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) * (2 * ws - 1), num_heads))
        # the original code saves the index with the weights; later code rebuilds it and leaves it out
        self.register_buffer("relative_position_index", relative_position_index(ws), persistent=persistent_index)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x, mask=None):
        B_, N, C = x.shape
        qkv = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)  # 1, heads, N, N
        if self.fused_attn:
            attn_mask = bias.expand(B_, -1, -1, -1)
            if mask is not None:
                nW = mask.shape[0]
                mask = mask.view(1, nW, 1, N, N).expand(B_ // nW, -1, self.num_heads, -1, -1)
                attn_mask = attn_mask + mask.reshape(-1, self.num_heads, N, N)
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                               dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            q = q * self.scale
            attn = q @ k.transpose(-2, -1) + bias
            if mask is not None:
                nW = mask.shape[0]
                attn = attn.view(B_ // nW, nW, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
                attn = attn.view(-1, self.num_heads, N, N)
            x = self.attn_drop(self.softmax(attn)) @ v
        x = x.transpose(1, 2).reshape(B_, N, C)
        return self.proj_drop(self.proj(x))


class SwinBlock(nn.Module):
    def __init__(self, dim, num_heads, ws=2, shift=0, mlp_ratio=2.0, drop_path=0.0, fused_attn=False,
                 persistent_index=False):
        super().__init__()
        self.ws, self.shift = ws, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, num_heads, fused_attn=fused_attn, persistent_index=persistent_index)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, H, W):
        B, L, C = x.shape
        assert L == H * W, "input feature has wrong size"
        shortcut = x
        x = self.norm1(x).view(B, H, W, C)
        x = pad_to_multiple(x, self.ws)  # cropped again after attention
        Hp, Wp = x.shape[1], x.shape[2]
        if self.shift > 0:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
            mask = shifted_window_mask(Hp, Wp, self.ws, self.shift).to(x.device, x.dtype)
        else:
            mask = None
        windows = window_partition(x, self.ws).view(-1, self.ws * self.ws, C)
        windows = self.attn(windows, mask=mask).view(-1, self.ws, self.ws, C)
        x = window_reverse(windows, self.ws, Hp, Wp)
        if self.shift > 0:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        if Hp > H or Wp > W:
            x = x[:, :H, :W, :].contiguous()
        x = shortcut + self.drop_path(x.view(B, H * W, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x, H, W):
        B, L, C = x.shape
        x = x.view(B, H, W, C)
        x = merge_neighbours(pad_to_multiple(x, 2)).view(B, -1, 4 * C)
        return self.reduction(self.norm(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch=2, in_chans=3, dim=16):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.proj(x)
        H, W = x.shape[2], x.shape[3]
        return self.norm(x.flatten(2).transpose(1, 2)), H, W


class SwinTransformer(nn.Module):
    def __init__(self, num_classes=5, dim=16, depths=(2, 2), heads=(2, 4), ws=2, patch=2, drop_path_rate=0.0,
                 fused_attn=False, persistent_index=False, use_checkpoint=False):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.patch_embed = PatchEmbed(patch, 3, dim)
        dpr = [v.item() for v in torch.linspace(0, drop_path_rate, sum(depths))]  # stochastic depth decay rule
        self.layers = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i, (depth, h) in enumerate(zip(depths, heads)):
            d = dim * 2 ** i
            blocks = [SwinBlock(d, h, ws, 0 if j % 2 == 0 else ws // 2, drop_path=dpr[sum(depths[:i]) + j],
                                fused_attn=fused_attn, persistent_index=persistent_index) for j in range(depth)]
            self.layers.append(nn.ModuleList(blocks))
            self.merges.append(PatchMerging(d) if i < len(depths) - 1 else nn.Identity())
        self.num_features = dim * 2 ** (len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Linear(self.num_features, num_classes)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def no_weight_decay_keywords(self):
        return {"relative_position_bias_table"}

    def no_weight_decay(self):
        return {n for n, _ in self.named_parameters() if "relative_position_bias_table" in n}

    def forward_features(self, x):
        x, H, W = self.patch_embed(x)
        for blocks, merge in zip(self.layers, self.merges):
            for blk in blocks:
                if self.use_checkpoint and self.training:  # recompute activations in backward to save memory
                    x = checkpoint.checkpoint(blk, x, H, W, use_reentrant=False)
                else:
                    x = blk(x, H, W)
            if isinstance(merge, PatchMerging):
                x = merge(x, H, W)
                H, W = (H + 1) // 2, (W + 1) // 2
        x = self.norm(x)  # B L C
        return torch.flatten(self.avgpool(x.transpose(1, 2)), 1)

    def forward(self, x):
        return self.head(self.forward_features(x))


def param_groups(model, weight_decay):
    """Biases, norms and the bias tables go without weight decay, as Swin's training code sets up AdamW."""
    skip = model.no_weight_decay()
    keywords = model.no_weight_decay_keywords()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim == 1 or name.endswith(".bias") or name in skip or any(k in name for k in keywords):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_then_cosine(optimizer, warmup, total, start_factor=0.1, eta_min=1e-5):
    """The same shape from torch's own schedulers: LinearLR warmup chained into CosineAnnealingLR."""
    lr_sched = torch.optim.lr_scheduler
    return lr_sched.SequentialLR(optimizer, [lr_sched.LinearLR(optimizer, start_factor, total_iters=warmup),
                                             lr_sched.CosineAnnealingLR(optimizer, total - warmup, eta_min)],
                                 milestones=[warmup])


def cosine_with_warmup(optimizer, warmup, total):
    def factor(step):
        if step < warmup:
            return float(step + 1) / float(warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
