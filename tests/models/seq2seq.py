"""A small attentional seq2seq model written the way public translation tutorials write it (imports torch only;
loaded with vibetensor swapped in by tests/models/swap_import.py):
  - encoder: Embedding, a bidirectional LSTM over a padded batch packed with pack_padded_sequence
    (enforce_sorted=False, so the batch keeps its order) and unpacked with pad_packed_sequence; the final
    forward and backward states are joined into the decoder's initial state;
  - decoder: a GRUCell stepped by hand with Bahdanau (additive) or Luong (general, multiplicative) attention
    over the encoder outputs, the padded source positions masked with -inf from the source lengths;
  - teacher forcing (the gold previous token is fed back; a ratio < 1 draws, from a given generator, when to
    feed back the model's own argmax instead), cross_entropy with ignore_index over padded targets;
  - greedy decoding until every row has produced EOS or max_len; batched beam search (topk over beam x vocab).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

PAD, BOS, EOS = 0, 1, 2


class Encoder(nn.Module):
    def __init__(self, vocab, emb, hidden, num_layers=1):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.rnn = nn.LSTM(emb, hidden, num_layers=num_layers, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)

    def forward(self, src, lengths):
        packed = pack_padded_sequence(self.embed(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.rnn(packed)
        out, out_lengths = pad_packed_sequence(out, batch_first=True, padding_value=0.0,
                                               total_length=src.shape[1])
        h = torch.tanh(self.bridge(torch.cat([h[-2], h[-1]], dim=-1)))  # last layer, both directions
        return out, h, out_lengths


class BahdanauAttention(nn.Module):
    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.q = nn.Linear(query_dim, attn_dim, bias=False)
        self.k = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query, keys, mask):
        scores = self.v(torch.tanh(self.q(query).unsqueeze(1) + self.k(keys))).squeeze(-1)  # [B, S]
        return scores.masked_fill(~mask, float("-inf"))


class LuongAttention(nn.Module):
    def __init__(self, query_dim, key_dim):
        super().__init__()
        self.w = nn.Linear(key_dim, query_dim, bias=False)

    def forward(self, query, keys, mask):
        scores = torch.bmm(self.w(keys), query.unsqueeze(-1)).squeeze(-1)
        return scores.masked_fill(~mask, float("-inf"))


class Decoder(nn.Module):
    def __init__(self, vocab, emb, hidden, attention):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=PAD)
        if attention == "bahdanau":
            self.attn = BahdanauAttention(hidden, 2 * hidden, hidden)
        elif attention == "luong":
            self.attn = LuongAttention(hidden, 2 * hidden)
        else:
            raise ValueError(f"attention must be 'bahdanau' or 'luong', got {attention!r}")
        self.cell = nn.GRUCell(emb + 2 * hidden, hidden)
        self.out = nn.Linear(hidden + 2 * hidden + emb, vocab)

    def step(self, token, h, enc, mask):
        e = self.embed(token)
        weights = F.softmax(self.attn(h, enc, mask), dim=-1)  # attend with the previous state
        context = torch.bmm(weights.unsqueeze(1), enc).squeeze(1)
        h = self.cell(torch.cat([e, context], dim=-1), h)
        return self.out(torch.cat([h, context, e], dim=-1)), h, weights


class Seq2Seq(nn.Module):
    def __init__(self, src_vocab=20, tgt_vocab=18, emb=8, hidden=12, attention="bahdanau", num_layers=1):
        super().__init__()
        self.encoder = Encoder(src_vocab, emb, hidden, num_layers)
        self.decoder = Decoder(tgt_vocab, emb, hidden, attention)

    def encode(self, src, src_lengths):
        enc, h, _ = self.encoder(src, src_lengths)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        return enc, h, mask

    def forward(self, src, src_lengths, tgt, teacher_forcing=1.0, generator=None):
        """tgt [B, T] starts with BOS and is PAD after EOS; returns logits [B, T - 1, V] for tgt[:, 1:]."""
        enc, h, mask = self.encode(src, src_lengths)
        token, logits = tgt[:, 0], []
        for t in range(1, tgt.shape[1]):
            out, h, _ = self.decoder.step(token, h, enc, mask)
            logits.append(out)
            token = tgt[:, t]
            if teacher_forcing < 1.0:
                own = torch.rand(tgt.shape[0], generator=generator, device=tgt.device) >= teacher_forcing
                token = torch.where(own, out.argmax(-1), token)
        return torch.stack(logits, dim=1)

    def loss(self, src, src_lengths, tgt, **kw):
        logits = self(src, src_lengths, tgt, **kw)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=PAD)

    @torch.no_grad()
    def greedy_decode(self, src, src_lengths, max_len=10):
        enc, h, mask = self.encode(src, src_lengths)
        token = torch.full((src.shape[0],), BOS, dtype=torch.long, device=src.device)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        out, attn = [], []
        for _ in range(max_len):
            logits, h, w = self.decoder.step(token, h, enc, mask)
            token = logits.argmax(-1).masked_fill(done, PAD)
            out.append(token)
            attn.append(w)
            done = done | (token == EOS)
            if bool(done.all()):
                break
        return torch.stack(out, dim=1), torch.stack(attn, dim=1)

    @torch.no_grad()
    def beam_search(self, src, src_lengths, beam=3, max_len=10):
        """Batched beam search: each row keeps `beam` hypotheses; a finished one (EOS) only extends with PAD at no
        cost. Returns the best sequence per row [B, max_len] (PAD after EOS) and its log-probability [B]."""
        enc, h, mask = self.encode(src, src_lengths)
        b, vocab = src.shape[0], self.decoder.out.out_features
        enc, h, mask = (t.repeat_interleave(beam, dim=0) for t in (enc, h, mask))
        scores = torch.full((b, beam), float("-inf"), device=src.device)
        scores[:, 0] = 0.0  # all beams start identical: keep one, or topk would return it `beam` times
        token = torch.full((b * beam,), BOS, dtype=torch.long, device=src.device)
        history = torch.zeros(b * beam, 0, dtype=torch.long, device=src.device)
        finished = torch.zeros(b * beam, dtype=torch.bool, device=src.device)
        offsets = (torch.arange(b, device=src.device) * beam).unsqueeze(1)
        for _ in range(max_len):
            logits, h, _ = self.decoder.step(token, h, enc, mask)
            logp = F.log_softmax(logits, dim=-1)
            stay = torch.full_like(logp, float("-inf"))
            stay[:, PAD] = 0.0
            logp = torch.where(finished.unsqueeze(1), stay, logp)
            total = (scores.unsqueeze(-1) + logp.view(b, beam, vocab)).view(b, beam * vocab)
            scores, flat = total.topk(beam, dim=-1)
            parent = (torch.div(flat, vocab, rounding_mode="floor") + offsets).view(-1)
            token = (flat % vocab).view(-1)
            h, history, finished = h[parent], history[parent], finished[parent]
            history = torch.cat([history, token.unsqueeze(1)], dim=1)
            finished = finished | (token == EOS)
            token = token.masked_fill(token == PAD, EOS)  # a finished beam's input: any real token will do
            if bool(finished.all()):
                break
        best = scores.argmax(-1)
        rows = history.view(b, beam, -1)[torch.arange(b, device=src.device), best]
        return rows, scores.gather(1, best.unsqueeze(1)).squeeze(1)
