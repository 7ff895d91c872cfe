"""A small ECAPA-TDNN speaker-embedding model with an additive-angular-margin (ArcFace) head, written the way public
speaker-verification code (SpeechBrain, wespeaker) writes it (imports torch only; loaded with vibetensor swapped in
by tests/models/swap_import.py):
  - TDNN blocks: "same" Conv1d by reflect padding (F.pad before the conv, or the conv's padding_mode), ReLU,
    BatchNorm1d;
  - SE-Res2Net blocks: torch.chunk into scales, each scale's conv fed the previous scale's output, squeeze-and-
    excitation whose time average counts only each utterance's frames (relative lengths, as SpeechBrain passes
    them), a residual shortcut;
  - multi-layer feature aggregation and attentive statistics pooling: global context (masked mean and std
    repeated over time), attention energies masked_fill'ed with -inf past each length, softmax over time,
    weighted mean and clamped std;
  - the AAM-softmax loss: normalised embeddings and class weights through F.linear, sqrt / cos / sin margins,
    torch.where on the threshold, a one-hot built with scatter_, cross-entropy; cosine scoring of trials.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def length_to_mask(length, max_len=None, dtype=None, device=None):
    if max_len is None:
        max_len = length.max().long().item()
    mask = torch.arange(max_len, device=length.device, dtype=length.dtype).expand(len(length), max_len) < \
        length.unsqueeze(1)
    if dtype is None:
        dtype = length.dtype
    if device is None:
        device = length.device
    return torch.as_tensor(mask, dtype=dtype, device=device)


class TDNNBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, dilation, groups=1, manual_pad=True):
        super().__init__()
        self.pad = dilation * (kernel_size - 1) // 2
        self.manual_pad = manual_pad
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups,
                              padding=0 if manual_pad else self.pad, padding_mode="zeros" if manual_pad else "reflect")
        self.activation = nn.ReLU()
        self.norm = nn.BatchNorm1d(out_channels)

    def forward(self, x):
        if self.manual_pad and self.pad:
            x = F.pad(x, (self.pad, self.pad), mode="reflect")
        return self.norm(self.activation(self.conv(x)))


class Res2NetBlock(nn.Module):
    def __init__(self, in_channels, out_channels, scale=4, kernel_size=3, dilation=1):
        super().__init__()
        assert in_channels % scale == 0 and out_channels % scale == 0
        in_c, hidden = in_channels // scale, out_channels // scale
        self.blocks = nn.ModuleList([TDNNBlock(in_c, hidden, kernel_size, dilation, manual_pad=i % 2 == 0)
                                     for i in range(scale - 1)])
        self.scale = scale

    def forward(self, x):
        y = []
        for i, x_i in enumerate(torch.chunk(x, self.scale, dim=1)):
            if i == 0:
                y_i = x_i
            elif i == 1:
                y_i = self.blocks[i - 1](x_i)
            else:
                y_i = self.blocks[i - 1](x_i + y_i)
            y.append(y_i)
        return torch.cat(y, dim=1)


class SEBlock(nn.Module):
    def __init__(self, in_channels, se_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, se_channels, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv1d(se_channels, out_channels, kernel_size=1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x, lengths=None):
        L = x.shape[-1]
        if lengths is not None:
            mask = length_to_mask(lengths * L, max_len=L, device=x.device).unsqueeze(1)
            total = mask.sum(dim=2, keepdim=True)
            s = (x * mask).sum(dim=2, keepdim=True) / total
        else:
            s = x.mean(dim=2, keepdim=True)
        s = self.sigmoid(self.conv2(self.relu(self.conv1(s))))
        return s * x


class SERes2NetBlock(nn.Module):
    def __init__(self, in_channels, out_channels, res2net_scale=4, se_channels=8, kernel_size=3, dilation=1):
        super().__init__()
        self.tdnn1 = TDNNBlock(in_channels, out_channels, kernel_size=1, dilation=1)
        self.res2net_block = Res2NetBlock(out_channels, out_channels, res2net_scale, kernel_size, dilation)
        self.tdnn2 = TDNNBlock(out_channels, out_channels, kernel_size=1, dilation=1)
        self.se_block = SEBlock(out_channels, se_channels, out_channels)
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv1d(in_channels, out_channels, kernel_size=1)

    def forward(self, x, lengths=None):
        residual = x if self.shortcut is None else self.shortcut(x)
        x = self.tdnn2(self.res2net_block(self.tdnn1(x)))
        return self.se_block(x, lengths) + residual


class AttentiveStatisticsPooling(nn.Module):
    def __init__(self, channels, attention_channels=8, global_context=True):
        super().__init__()
        self.eps = 1e-12
        self.global_context = global_context
        self.tdnn = TDNNBlock(channels * 3 if global_context else channels, attention_channels, 1, 1)
        self.tanh = nn.Tanh()
        self.conv = nn.Conv1d(attention_channels, channels, kernel_size=1)

    def forward(self, x, lengths=None):
        L = x.shape[-1]

        def _compute_statistics(x, m, dim=2, eps=self.eps):
            mean = (m * x).sum(dim)
            std = torch.sqrt((m * (x - mean.unsqueeze(dim)).pow(2)).sum(dim).clamp(eps))
            return mean, std

        if lengths is None:
            lengths = torch.ones(x.shape[0], device=x.device)
        mask = length_to_mask(lengths * L, max_len=L, device=x.device).unsqueeze(1)
        if self.global_context:
            total = mask.sum(dim=2, keepdim=True).float()
            mean, std = _compute_statistics(x, mask / total)
            mean = mean.unsqueeze(2).repeat(1, 1, L)
            std = std.unsqueeze(2).repeat(1, 1, L)
            attn = torch.cat([x, mean, std], dim=1)
        else:
            attn = x
        attn = self.conv(self.tanh(self.tdnn(attn)))
        attn = attn.masked_fill(mask == 0, float("-inf"))
        attn = F.softmax(attn, dim=2)
        mean, std = _compute_statistics(x, attn)
        return torch.cat((mean, std), dim=1).unsqueeze(2)


class ECAPA_TDNN(nn.Module):
    def __init__(self, input_size=10, lin_neurons=8, channels=(16, 16, 16, 24), kernel_sizes=(5, 3, 3, 1),
                 dilations=(1, 2, 3, 1), attention_channels=8, res2net_scale=4, se_channels=8):
        super().__init__()
        self.blocks = nn.ModuleList([TDNNBlock(input_size, channels[0], kernel_sizes[0], dilations[0])])
        for i in range(1, len(channels) - 1):
            self.blocks.append(SERes2NetBlock(channels[i - 1], channels[i], res2net_scale, se_channels,
                                              kernel_sizes[i], dilations[i]))
        self.mfa = TDNNBlock(channels[-2] * (len(channels) - 2), channels[-1], kernel_sizes[-1], dilations[-1])
        self.asp = AttentiveStatisticsPooling(channels[-1], attention_channels)
        self.asp_bn = nn.BatchNorm1d(channels[-1] * 2)
        self.fc = nn.Conv1d(channels[-1] * 2, lin_neurons, kernel_size=1)

    def forward(self, x, lengths=None):
        """x [B, T, F] features, lengths relative (0, 1] -> embeddings [B, 1, lin_neurons]."""
        x = x.transpose(1, 2)
        xl = []
        for layer in self.blocks:
            try:
                x = layer(x, lengths=lengths)
            except TypeError:
                x = layer(x)
            xl.append(x)
        x = torch.cat(xl[1:], dim=1)
        x = self.mfa(x)
        x = self.asp(x, lengths=lengths)
        x = self.asp_bn(x)
        return self.fc(x).transpose(1, 2)


class AAMSoftmax(nn.Module):
    def __init__(self, in_features, n_classes, margin=0.2, scale=30.0, easy_margin=False):
        super().__init__()
        self.weight = nn.Parameter(torch.FloatTensor(n_classes, in_features))
        nn.init.xavier_normal_(self.weight, gain=1)
        self.s, self.m, self.easy_margin = scale, margin, easy_margin
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.th = math.cos(math.pi - margin)
        self.mm = math.sin(math.pi - margin) * margin

    def forward(self, x, label):
        cosine = F.linear(F.normalize(x), F.normalize(self.weight))
        sine = torch.sqrt((1.0 - torch.mul(cosine, cosine)).clamp(0, 1))
        phi = cosine * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosine > 0, phi, cosine)
        else:
            phi = torch.where((cosine - self.th) > 0, phi, cosine - self.mm)
        one_hot = torch.zeros_like(cosine)
        one_hot.scatter_(1, label.view(-1, 1), 1)
        output = (one_hot * phi) + ((1.0 - one_hot) * cosine)
        output = output * self.s
        return F.cross_entropy(output, label), output


class SpeakerModel(nn.Module):
    def __init__(self, n_speakers=4, **kw):
        super().__init__()
        self.embedding_model = ECAPA_TDNN(**kw)
        self.loss = AAMSoftmax(kw.get("lin_neurons", 8), n_speakers)

    def forward(self, feats, lengths, labels):
        emb = self.embedding_model(feats, lengths).squeeze(1)
        return self.loss(emb, labels)[0], emb


def cosine_score(enrol, test):
    return F.cosine_similarity(enrol, test, dim=-1, eps=1e-6)
