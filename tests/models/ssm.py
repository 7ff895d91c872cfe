"""A Mamba-style selective state-space language model, written the way public SSM code is written (imports torch
only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - token embedding, a stack of pre-norm residual blocks (RMSNorm), a final norm and an LM head tied to the
    embedding;
  - each block projects to (x, gate), runs x through a depthwise causal Conv1d and SiLU, projects it to the
    input-dependent dt / B / C, and runs the selective scan h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t,
    y_t = C_t h_t + D x_t, gated by SiLU(gate);
  - the scan is written three ways: the sequential reference loop over time; a chunked parallel form (segment
    sums of dt A within each chunk under a causal mask, and between the chunks); a log-depth doubling scan in a
    custom autograd.Function with its own backward (in-place updates of slices of its buffers);
  - a step-by-step inference path keeps a conv state (the last kernel-1 inputs) and the SSM state per layer.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class SSMConfig:
    vocab_size: int = 32
    d_model: int = 16
    n_layers: int = 2
    d_state: int = 4
    expand: int = 2
    d_conv: int = 4
    dt_rank: int = 0  # 0: ceil(d_model / 16), as Mamba does
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    chunk_size: int = 4
    scan: str = "parallel"  # (chunked), or "sequential", or "pscan" (the custom autograd Function)
    eps: float = 1e-5


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def selective_scan_sequential(x, dt, A, B, C, D, h0=None):
    """The reference recurrence. x, dt: [b, l, d]; A: [d, n]; B, C: [b, l, n]; D: [d].
    Returns y [b, l, d] and the last state [b, d, n]."""
    b, l, d = x.shape
    h = x.new_zeros(b, d, A.shape[-1]) if h0 is None else h0
    dA = torch.exp(dt.unsqueeze(-1) * A)  # [b, l, d, n]
    dBx = torch.einsum("bld,bln,bld->bldn", dt, B, x)
    ys = []
    for t in range(l):
        h = dA[:, t] * h + dBx[:, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, t]))
    y = torch.stack(ys, dim=1)
    return y + x * D, h


def segsum(a):
    """a: [..., T] -> [..., T, T] with out[i, j] = a[j+1] + ... + a[i] for j <= i and -inf above the diagonal, so
    that exp(out) is the decay from step j to step i."""
    t = a.size(-1)
    cs = torch.cumsum(a, dim=-1)
    diff = cs.unsqueeze(-1) - cs.unsqueeze(-2)
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool, device=a.device))
    return diff.masked_fill(~mask, -torch.inf)


def selective_scan_chunked(x, dt, A, B, C, D, chunk_size, h0=None):
    """The same scan in chunks, with no loop over time: inside a chunk, outputs come from a masked (attention-like)
    product with the decays exp(segsum); between chunks, each chunk's final state is carried by the same masked
    product over chunks. Same shapes as the sequential one."""
    b, l, d = x.shape
    n = A.shape[-1]
    pad = (-l) % chunk_size
    if pad:  # dt = 0 on the padding: no decay, no input, the last state is unchanged
        x, dt, B, C = (F.pad(z, (0, 0, 0, pad)) for z in (x, dt, B, C))
    c = x.shape[1] // chunk_size
    xc, dtc, Bc, Cc = (z.reshape(b, c, chunk_size, z.shape[-1]) for z in (x, dt, B, C))
    a = (dtc.unsqueeze(-1) * A).permute(0, 1, 3, 4, 2)  # [b, c, d, n, s]
    a_cum = torch.cumsum(a, dim=-1)
    L = torch.exp(segsum(a))  # [b, c, d, n, s, s]
    u = dtc * xc  # [b, c, s, d]
    # within a chunk: y_i = sum_{j<=i} C_i . (decay(j->i) * B_j) u_j
    y_diag = torch.einsum("bcin,bcdnij,bcjn,bcjd->bcid", Cc, L, Bc, u)
    # each chunk's own final state, from zero at its start
    decay_to_end = torch.exp(a_cum[..., -1:] - a_cum)  # [b, c, d, n, s]
    states = torch.einsum("bcjn,bcdnj,bcjd->bcdn", Bc, decay_to_end, u)
    # between chunks, the same masked decay one level up: with the initial state in front, the state entering
    # chunk z sums every earlier chunk's own state, decayed across the chunks in between
    h0 = x.new_zeros(b, 1, d, n) if h0 is None else h0.unsqueeze(1)
    states = torch.cat([h0, states], dim=1)  # [b, c + 1, d, n]
    chunk_a = F.pad(a_cum[..., -1].permute(0, 2, 3, 1), (1, 0))  # each chunk's total decay, [b, d, n, c + 1]
    carried = torch.einsum("bdnzc,bcdn->bzdn", torch.exp(segsum(chunk_a)), states)
    start, h = carried[:, :-1], carried[:, -1]  # the state entering each chunk; the final state
    y_off = torch.einsum("bcin,bcdni,bcdn->bcid", Cc, torch.exp(a_cum), start)
    y = (y_diag + y_off).reshape(b, c * chunk_size, d)[:, :l]
    return y + x[:, :l] * D, h


class LinearScan(torch.autograd.Function):
    """h_t = a_t * h_{t-1} + b_t along dim 1 (h_{-1} = 0) for a, b [b, l, ...], by Hillis-Steele doubling:
    log2(l) vectorised steps instead of l. The backward is the same recurrence run backwards in time."""

    @staticmethod
    def scan(a, b):
        a, h = a.clone(), b.clone()
        offset = 1
        while offset < h.size(1):
            # combine each step with the one `offset` back; the right sides read the values before the update
            h[:, offset:] += a[:, offset:] * h[:, :-offset]
            a[:, offset:] = a[:, offset:] * a[:, :-offset]
            offset *= 2
        return h

    @staticmethod
    def forward(ctx, a, b):
        h = LinearScan.scan(a, b)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        # g_t = dL/dh_t in full = grad_h_t + a_{t+1} g_{t+1}; then dL/db_t = g_t and dL/da_t = g_t h_{t-1}
        a_next = torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], dim=1)
        g = LinearScan.scan(a_next.flip(1), grad_h.flip(1)).flip(1)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = g * torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        return grad_a, g


def selective_scan_pscan(x, dt, A, B, C, D, h0=None):
    """The scan through LinearScan (a custom autograd Function): all the states at once. Same shapes as the
    sequential one."""
    dA = torch.exp(dt.unsqueeze(-1) * A)
    dBx = torch.einsum("bld,bln,bld->bldn", dt, B, x)
    if h0 is not None:  # the initial state enters through the first input
        dBx = torch.cat([dBx[:, :1] + dA[:, :1] * h0.unsqueeze(1), dBx[:, 1:]], dim=1)
    hs = LinearScan.apply(dA, dBx)
    y = torch.einsum("bldn,bln->bld", hs, C)
    return y + x * D, hs[:, -1]


class MambaBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d_inner = cfg.expand * cfg.d_model
        self.d_inner = d_inner
        self.dt_rank = cfg.dt_rank or math.ceil(cfg.d_model / 16)
        self.in_proj = nn.Linear(cfg.d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, kernel_size=cfg.d_conv, groups=d_inner, padding=cfg.d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * cfg.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True)
        # dt = softplus(bias) starts log-uniform in [dt_min, dt_max]: the bias is its inverse softplus
        dt = torch.exp(torch.rand(d_inner) * (math.log(cfg.dt_max) - math.log(cfg.dt_min)) + math.log(cfg.dt_min))
        dt = dt.clamp(min=1e-4)
        inv_dt = dt + torch.log(-torch.expm1(-dt))
        with torch.no_grad():
            self.dt_proj.bias.copy_(inv_dt)
        self.dt_proj.bias._no_reinit = True  # MambaLM._init_weights must keep it
        A = torch.arange(1, cfg.d_state + 1, dtype=torch.float32).repeat(d_inner, 1)  # S4D-real init
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(d_inner))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(d_inner, cfg.d_model, bias=False)

    def ssm_inputs(self, x):
        """x: [b, l, d_inner] after the conv -> dt [b, l, d_inner], B, C [b, l, d_state]."""
        dt, B, C = torch.split(self.x_proj(x), [self.dt_rank, self.cfg.d_state, self.cfg.d_state], dim=-1)
        return F.softplus(self.dt_proj(dt)), B, C

    def forward(self, hidden, scan=None, state=None):
        """hidden [b, l, d_model]; a (conv_state, ssm_state) pair in `state` is filled for decoding to go on
        (a prefill)."""
        scan = scan or self.cfg.scan
        l = hidden.shape[1]
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        x = x.transpose(1, 2)
        if state is not None:  # the last d_conv inputs, zero-padded on the left (cropped when l > d_conv)
            state[0].copy_(F.pad(x, (self.cfg.d_conv - l, 0)))
        x = self.conv1d(x)[..., :l].transpose(1, 2)  # causal: drop the right padding
        x = F.silu(x)
        dt, B, C = self.ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        if scan == "sequential":
            y, h = selective_scan_sequential(x, dt, A, B, C, self.D)
        elif scan == "pscan":
            y, h = selective_scan_pscan(x, dt, A, B, C, self.D)
        else:
            y, h = selective_scan_chunked(x, dt, A, B, C, self.D, self.cfg.chunk_size)
        if state is not None:
            state[1].copy_(h)
        return self.out_proj(y * F.silu(z))

    def step(self, hidden, conv_state, ssm_state):
        """One token: hidden [b, d_model]; conv_state [b, d_inner, d_conv] (the last inputs, newest at the end),
        ssm_state [b, d_inner, d_state]; both updated in place."""
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[:, :, -1] = x
        x = torch.sum(conv_state * self.conv1d.weight.squeeze(1), dim=-1) + self.conv1d.bias
        x = F.silu(x)
        dt, B, C = self.ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        dA = torch.exp(torch.einsum("bd,dn->bdn", dt, A))
        ssm_state.copy_(ssm_state * dA + torch.einsum("bd,bn,bd->bdn", dt, B, x))
        y = torch.einsum("bdn,bn->bd", ssm_state, C) + self.D * x
        return self.out_proj(y * F.silu(z))


class ResidualBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.eps)
        self.mixer = MambaBlock(cfg)

    def forward(self, x, scan=None, state=None):
        return x + self.mixer(self.norm(x), scan, state)

    def step(self, x, conv_state, ssm_state):
        return x + self.mixer.step(self.norm(x), conv_state, ssm_state)


class MambaLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(ResidualBlock(cfg) for _ in range(cfg.n_layers))
        self.norm_f = RMSNorm(cfg.d_model, cfg.eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.embedding.weight  # tied
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, nn.Linear) and module.bias is not None and not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, MambaBlock):  # residual outputs scaled down with depth, as GPT-2 / Mamba do
            nn.init.kaiming_uniform_(module.out_proj.weight, a=math.sqrt(5))
            with torch.no_grad():
                module.out_proj.weight /= math.sqrt(2 * self.cfg.n_layers)

    def forward(self, tokens, targets=None, scan=None, states=None):
        """states (from allocate_states): filled with each layer's states after the tokens, for step()."""
        x = self.embedding(tokens)
        for i, layer in enumerate(self.layers):
            x = layer(x, scan, None if states is None else states[i])
        logits = self.lm_head(self.norm_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def allocate_states(self, batch):
        """Zero (conv_state, ssm_state) per layer, on the device and in the dtype of the layer's weights."""
        states = []
        for layer in self.layers:
            w = layer.mixer.conv1d.weight
            d_inner = layer.mixer.d_inner
            states.append((torch.zeros(batch, d_inner, self.cfg.d_conv, device=w.device, dtype=w.dtype),
                           torch.zeros(batch, d_inner, self.cfg.d_state, device=w.device, dtype=w.dtype)))
        return states

    @torch.inference_mode()
    def step(self, token, states):
        """token: [b] -> logits [b, vocab] for the next token; `states` (from allocate_states) advance."""
        x = self.embedding(token)
        for layer, (conv_state, ssm_state) in zip(self.layers, states):
            x = layer.step(x, conv_state, ssm_state)
        return self.lm_head(self.norm_f(x))

    @torch.inference_mode()
    def generate(self, prompt, new_tokens, prefill=True):
        """Greedy decoding through the recurrent path, after a parallel prefill of the prompt (or, prefill=False,
        after stepping through it token by token)."""
        states = self.allocate_states(prompt.shape[0])
        if prefill:
            logits = self(prompt, states=states)[0][:, -1]
        else:
            for i in range(prompt.shape[1]):
                logits = self.step(prompt[:, i], states)
        out = [prompt]
        for _ in range(new_tokens):
            token = logits.argmax(dim=-1)
            out.append(token.unsqueeze(1))
            logits = self.step(token, states)
        return torch.cat(out, dim=1)


def lr_lambda(warmup, total, min_ratio=0.1):
    """LambdaLR factor: linear warmup, then cosine decay down to min_ratio of the peak."""
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def configure_optimizer(model, lr, weight_decay):
    """AdamW with weight decay on the matrices only; A_log and D (marked _no_weight_decay), the norms and the
    biases go undecayed."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() < 2 or getattr(p, "_no_weight_decay", False):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)
