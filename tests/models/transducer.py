"""A small RNN transducer (RNN-T), written the way public pure-PyTorch transducer code writes it (imports torch only;
loaded with vibetensor swapped in by tests/models/swap_import.py):
  - the encoder: frame stacking (time reduction by reshaping [B, T, F] to [B, T / 2, 2F]) and a two-layer LSTM;
  - the predictor: an embedding of the previous label with the blank as the start symbol, an LSTM whose
    (h, c) is carried between steps at decoding time, LayerNorm and a projection;
  - the joiner: enc.unsqueeze(2) + pred.unsqueeze(1) broadcast to [B, T, U + 1, H], tanh, a Linear to the
    vocabulary, log_softmax;
  - the loss: the forward variable log_alpha[b, t, u] filled cell by cell into a zeros tensor (indexed in-place
    writes on a tensor autograd tracks), blank and label transitions through gather and logsumexp over a stack,
    each utterance's -log p read at its own (T_b - 1, U_b); and the same recursion over anti-diagonals;
  - greedy decoding: per frame, emit labels until the joiner picks the blank (at most max_symbols), stepping the
    predictor one label at a time.
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TransducerConfig:
    n_feats: int = 8
    stack: int = 2
    enc_dim: int = 16
    pred_dim: int = 16
    joint_dim: int = 16
    vocab_size: int = 6  # index 0 is the blank
    blank: int = 0
    max_symbols: int = 3


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.stack = cfg.stack
        self.lstm = nn.LSTM(cfg.n_feats * cfg.stack, cfg.enc_dim, num_layers=2, batch_first=True)

    def forward(self, x, lengths):
        b, t, f = x.shape
        t = t - t % self.stack
        x = x[:, :t].reshape(b, t // self.stack, f * self.stack)
        out, _ = self.lstm(x)
        return out, torch.div(lengths, self.stack, rounding_mode="trunc")


class Predictor(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.blank = cfg.blank
        self.embed = nn.Embedding(cfg.vocab_size, cfg.pred_dim)
        self.lstm = nn.LSTM(cfg.pred_dim, cfg.pred_dim, batch_first=True)
        self.norm = nn.LayerNorm(cfg.pred_dim)
        self.out = nn.Linear(cfg.pred_dim, cfg.joint_dim)

    def forward(self, labels, state=None):
        """labels [B, U] -> [B, U + 1, H] (the blank prepended as the start symbol)."""
        start = torch.full((labels.size(0), 1), self.blank, dtype=labels.dtype, device=labels.device)
        return self.step(torch.cat([start, labels], dim=1), state)

    def step(self, labels, state=None):
        out, state = self.lstm(self.embed(labels), state)
        return self.out(self.norm(out)), state


class Joiner(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.enc_proj = nn.Linear(cfg.enc_dim, cfg.joint_dim)
        self.out = nn.Linear(cfg.joint_dim, cfg.vocab_size)

    def forward(self, enc, pred):
        """enc [B, T, H], pred [B, U + 1, J] -> log-probabilities [B, T, U + 1, V]."""
        joint = torch.tanh(self.enc_proj(enc).unsqueeze(2) + pred.unsqueeze(1))
        return F.log_softmax(self.out(joint), dim=-1)


def rnnt_loss_cellwise(log_probs, targets, logit_lengths, target_lengths, blank=0, reduction="mean"):
    """-log p(y | x) by the forward recursion, one (t, u) cell at a time."""
    B, T, U1, _ = log_probs.shape
    log_alpha = torch.zeros(B, T, U1, dtype=log_probs.dtype, device=log_probs.device)
    for t in range(T):
        for u in range(U1):
            if u == 0:
                if t > 0:
                    log_alpha[:, t, u] = log_alpha[:, t - 1, u] + log_probs[:, t - 1, 0, blank]
            else:
                emit = log_alpha[:, t, u - 1] + torch.gather(
                    log_probs[:, t, u - 1], dim=1, index=targets[:, u - 1].view(-1, 1)).reshape(-1)
                if t == 0:
                    log_alpha[:, t, u] = emit
                else:
                    stay = log_alpha[:, t - 1, u] + log_probs[:, t - 1, u, blank]
                    log_alpha[:, t, u] = torch.logsumexp(torch.stack([stay, emit]), dim=0)
    nll = []
    for b in range(B):
        t, u = logit_lengths[b] - 1, target_lengths[b]
        nll.append(-(log_alpha[b, t, u] + log_probs[b, t, u, blank]))
    nll = torch.stack(nll)
    return _reduce(nll, target_lengths, reduction)


def rnnt_loss_diagonal(log_probs, targets, logit_lengths, target_lengths, blank=0, reduction="mean"):
    """The same recursion over anti-diagonals t + u = n (each cell of a diagonal needs only the one before), the
    cells stacked rather than written in place."""
    B, T, U1, _ = log_probs.shape
    blank_lp = log_probs[..., blank]  # [B, T, U1]
    idx = targets.unsqueeze(1).expand(B, T, U1 - 1).unsqueeze(-1)
    emit_lp = torch.gather(log_probs[:, :, :-1], 3, idx).squeeze(-1)  # [B, T, U1 - 1]: the next label's

    def lo(n):  # diagonal n holds alpha[t, n - t] for t = lo(n) .. hi(n), at index t - lo(n)
        return max(0, n - U1 + 1)

    def hi(n):
        return min(n, T - 1)

    alphas = [log_probs.new_zeros(B, 1)]
    for n in range(1, T + U1 - 1):
        prev = alphas[-1]
        cells = []
        for t in range(lo(n), hi(n) + 1):
            u = n - t
            terms = []
            if t >= 1 and t - 1 >= lo(n - 1):  # from alpha[t - 1, u] by a blank
                terms.append(prev[:, t - 1 - lo(n - 1)] + blank_lp[:, t - 1, u])
            if u >= 1 and t <= hi(n - 1):  # from alpha[t, u - 1] by emitting label u
                terms.append(prev[:, t - lo(n - 1)] + emit_lp[:, t, u - 1])
            cells.append(torch.logsumexp(torch.stack(terms), dim=0))
        alphas.append(torch.stack(cells, dim=1))
    nll = []
    for b in range(B):
        t, u = int(logit_lengths[b]) - 1, int(target_lengths[b])
        nll.append(-(alphas[t + u][b, t - lo(t + u)] + blank_lp[b, t, u]))
    return _reduce(torch.stack(nll), target_lengths, reduction)


def _reduce(nll, target_lengths, reduction):
    if reduction == "mean":
        return (nll / target_lengths.clamp(min=1).to(nll.dtype)).mean()
    if reduction == "sum":
        return nll.sum()
    return nll


class Transducer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.predictor = Predictor(cfg)
        self.joiner = Joiner(cfg)

    def forward(self, feats, feat_lengths, targets, target_lengths, loss="cellwise", reduction="mean"):
        enc, enc_lengths = self.encoder(feats, feat_lengths)
        pred, _ = self.predictor(targets)
        log_probs = self.joiner(enc, pred)
        fn = rnnt_loss_cellwise if loss == "cellwise" else rnnt_loss_diagonal
        return fn(log_probs, targets, enc_lengths, target_lengths, self.cfg.blank, reduction), log_probs

    @torch.no_grad()
    def greedy_decode(self, feats, feat_lengths):
        enc, enc_lengths = self.encoder(feats, feat_lengths)
        hyps = []
        for b in range(enc.size(0)):
            hyp, state = [], None
            label = torch.full((1, 1), self.cfg.blank, dtype=torch.long, device=enc.device)
            pred, state = self.predictor.step(label, state)
            for t in range(int(enc_lengths[b])):
                for _ in range(self.cfg.max_symbols):
                    k = int(self.joiner(enc[b:b + 1, t:t + 1], pred).argmax(-1))
                    if k == self.cfg.blank:
                        break
                    hyp.append(k)
                    pred, state = self.predictor.step(torch.tensor([[k]], device=enc.device), state)
            hyps.append(hyp)
        return hyps
