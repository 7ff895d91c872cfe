"""A small FastSpeech 2 acoustic model, written the way public implementations (ming024/FastSpeech2, ESPnet) write
it (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - phoneme embedding with padding_idx, a sinusoid position table (get_sinusoid_encoding_table, numpy-built,
    loaded as a frozen nn.Parameter and sliced to the length), FFT blocks (nn.MultiheadAttention with a key
    padding mask, a Conv1d position-wise feed-forward over transposes, LayerNorm, padded positions zeroed with
    masked_fill);
  - the variance adaptor: Conv1d + LayerNorm predictors of log-duration, pitch and energy; pitch and energy
    quantised with torch.bucketize into linspace bins and embedded; the length regulator expanding each
    phoneme by its duration with repeat_interleave (per utterance) and pad_sequence, durations at inference
    from torch.round(torch.exp(log_d) - 1).clamp(min=0);
  - the mel decoder and a linear projection; the loss: MSE on log-durations and variances, L1 on mels, each
    over the unpadded positions (masked_select).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence


def get_sinusoid_encoding_table(n_position, d_hid, padding_idx=None):
    def cal_angle(position, hid_idx):
        return position / np.power(10000, 2 * (hid_idx // 2) / d_hid)

    table = np.array([[cal_angle(pos, j) for j in range(d_hid)] for pos in range(n_position)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    if padding_idx is not None:
        table[padding_idx] = 0.0
    return torch.FloatTensor(table)


def get_mask_from_lengths(lengths, max_len=None):
    batch_size = lengths.shape[0]
    if max_len is None:
        max_len = torch.max(lengths).item()
    ids = torch.arange(0, max_len).unsqueeze(0).expand(batch_size, -1).to(lengths.device)
    return ids >= lengths.unsqueeze(1).expand(-1, max_len)  # True on the padding


class FFTBlock(nn.Module):
    def __init__(self, d_model, n_head, d_inner, kernel_size=(3, 1), dropout=0.0):
        super().__init__()
        self.slf_attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, batch_first=True)
        self.attn_norm = nn.LayerNorm(d_model)
        self.w_1 = nn.Conv1d(d_model, d_inner, kernel_size[0], padding=(kernel_size[0] - 1) // 2)
        self.w_2 = nn.Conv1d(d_inner, d_model, kernel_size[1], padding=(kernel_size[1] - 1) // 2)
        self.ffn_norm = nn.LayerNorm(d_model)

    def forward(self, x, mask):
        out, _ = self.slf_attn(x, x, x, key_padding_mask=mask, need_weights=False)
        x = self.attn_norm(out + x).masked_fill(mask.unsqueeze(-1), 0)
        out = self.w_2(F.relu(self.w_1(x.transpose(1, 2)))).transpose(1, 2)
        return self.ffn_norm(out + x).masked_fill(mask.unsqueeze(-1), 0)


class Encoder(nn.Module):
    def __init__(self, n_vocab, d_model, n_layers, n_head, d_inner, max_seq_len=64):
        super().__init__()
        self.src_word_emb = nn.Embedding(n_vocab, d_model, padding_idx=0)
        self.position_enc = nn.Parameter(get_sinusoid_encoding_table(max_seq_len + 1, d_model).unsqueeze(0),
                                         requires_grad=False)
        self.layer_stack = nn.ModuleList([FFTBlock(d_model, n_head, d_inner) for _ in range(n_layers)])

    def forward(self, src_seq, mask):
        batch_size, max_len = src_seq.shape[0], src_seq.shape[1]
        x = self.src_word_emb(src_seq) + self.position_enc[:, :max_len, :].expand(batch_size, -1, -1)
        for layer in self.layer_stack:
            x = layer(x, mask)
        return x


class VariancePredictor(nn.Module):
    def __init__(self, d_model, filter_size=16, kernel=3):
        super().__init__()
        self.conv1 = nn.Conv1d(d_model, filter_size, kernel, padding=(kernel - 1) // 2)
        self.ln1 = nn.LayerNorm(filter_size)
        self.conv2 = nn.Conv1d(filter_size, filter_size, kernel, padding=1)
        self.ln2 = nn.LayerNorm(filter_size)
        self.linear_layer = nn.Linear(filter_size, 1)

    def forward(self, x, mask):
        x = self.ln1(F.relu(self.conv1(x.transpose(1, 2))).transpose(1, 2))
        x = self.ln2(F.relu(self.conv2(x.transpose(1, 2))).transpose(1, 2))
        out = self.linear_layer(x).squeeze(-1)
        if mask is not None:
            out = out.masked_fill(mask, 0.0)
        return out


class LengthRegulator(nn.Module):
    def forward(self, x, duration, max_len=None):
        expanded = [torch.repeat_interleave(x[b], duration[b], dim=0) for b in range(x.size(0))]
        mel_len = torch.tensor([e.size(0) for e in expanded], dtype=torch.long, device=x.device)
        out = pad_sequence(expanded, batch_first=True)
        if max_len is not None and out.size(1) < max_len:
            out = F.pad(out, (0, 0, 0, max_len - out.size(1)))
        return out, mel_len


class VarianceAdaptor(nn.Module):
    def __init__(self, d_model, n_bins=8, pitch_range=(-2.0, 2.0), energy_range=(-2.0, 2.0)):
        super().__init__()
        self.duration_predictor = VariancePredictor(d_model)
        self.length_regulator = LengthRegulator()
        self.pitch_predictor = VariancePredictor(d_model)
        self.energy_predictor = VariancePredictor(d_model)
        self.pitch_bins = nn.Parameter(torch.linspace(pitch_range[0], pitch_range[1], n_bins - 1),
                                       requires_grad=False)
        self.energy_bins = nn.Parameter(torch.linspace(energy_range[0], energy_range[1], n_bins - 1),
                                        requires_grad=False)
        self.pitch_embedding = nn.Embedding(n_bins, d_model)
        self.energy_embedding = nn.Embedding(n_bins, d_model)

    def forward(self, x, src_mask, max_mel_len=None, p_target=None, e_target=None, d_target=None):
        log_d_prediction = self.duration_predictor(x, src_mask)
        p_pred = self.pitch_predictor(x, src_mask)
        pitch = p_target if p_target is not None else p_pred
        x = x + self.pitch_embedding(torch.bucketize(pitch, self.pitch_bins))
        e_pred = self.energy_predictor(x, src_mask)
        energy = e_target if e_target is not None else e_pred
        x = x + self.energy_embedding(torch.bucketize(energy, self.energy_bins))
        if d_target is not None:
            duration = d_target
        else:
            duration = torch.clamp(torch.round(torch.exp(log_d_prediction) - 1), min=0).long()
            duration = duration.masked_fill(src_mask, 0)
        x, mel_len = self.length_regulator(x, duration, max_mel_len)
        return x, p_pred, e_pred, log_d_prediction, duration, mel_len


class FastSpeech2(nn.Module):
    def __init__(self, n_vocab=12, d_model=16, n_head=2, d_inner=32, n_mels=6, n_layers=1):
        super().__init__()
        self.encoder = Encoder(n_vocab, d_model, n_layers, n_head, d_inner)
        self.variance_adaptor = VarianceAdaptor(d_model)
        self.decoder = Encoder(n_vocab, d_model, n_layers, n_head, d_inner)  # its embedding is unused
        self.mel_linear = nn.Linear(d_model, n_mels)

    def forward(self, texts, src_lens, mel_lens=None, max_mel_len=None, p_targets=None, e_targets=None,
                d_targets=None):
        src_masks = get_mask_from_lengths(src_lens, texts.size(1))
        x = self.encoder(texts, src_masks)
        x, p_pred, e_pred, log_d_pred, d_rounded, mel_lens_out = self.variance_adaptor(
            x, src_masks, max_mel_len, p_targets, e_targets, d_targets)
        mel_masks = get_mask_from_lengths(mel_lens_out, x.size(1))
        x = x + self.decoder.position_enc[:, :x.size(1), :]
        for layer in self.decoder.layer_stack:
            x = layer(x, mel_masks)
        return self.mel_linear(x), p_pred, e_pred, log_d_pred, d_rounded, src_masks, mel_masks, mel_lens_out


def fastspeech2_loss(outputs, mel_targets, p_targets, e_targets, d_targets):
    mel_pred, p_pred, e_pred, log_d_pred, _, src_masks, mel_masks, _ = outputs
    src_masks, mel_masks = ~src_masks, ~mel_masks
    log_d_targets = torch.log(d_targets.float() + 1)
    log_d_targets.requires_grad = False
    mel_targets = mel_targets[:, : mel_masks.shape[1], :]
    p_loss = F.mse_loss(p_pred.masked_select(src_masks), p_targets.masked_select(src_masks))
    e_loss = F.mse_loss(e_pred.masked_select(src_masks), e_targets.masked_select(src_masks))
    d_loss = F.mse_loss(log_d_pred.masked_select(src_masks), log_d_targets.masked_select(src_masks))
    mel_loss = F.l1_loss(mel_pred.masked_select(mel_masks.unsqueeze(-1)),
                         mel_targets.masked_select(mel_masks.unsqueeze(-1)))
    return mel_loss + p_loss + e_loss + d_loss
