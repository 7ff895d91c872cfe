"""Speech feature frontends without complex numbers, written the way public speech code (torchaudio's functional
helpers, Kaldi-compatible fbank code, SincNet) writes them (imports torch only; loaded with vibetensor swapped in
by tests/models/swap_import.py):
  - pre-emphasis, framing with Tensor.unfold (snip_edges) or after reflect padding (center), DC removal, the
    Povey window (hann ** 0.85) or a Hamming window;
  - the power spectrum by a real DFT written as two matmuls with cos/sin bases (what rfft computes);
  - HTK / Slaney mel filterbanks (torchaudio's melscale_fbanks), log-mel with a clamp floor, amplitude_to_DB with
    top_db, MFCCs through an orthonormal DCT-II matrix (create_dct), deltas by a replicate-padded grouped conv
    (compute_deltas), utterance CMVN over each utterance's frames only;
  - sinc resampling (torchaudio's kernel: a windowed sinc per output phase, with Hann or Kaiser windows, applied
    as a strided conv1d);
  - SincNet's learnable band-pass convolution: low cut-offs and bandwidths as parameters, the filters built each
    forward from sin, the Hamming window and a flip, then a conv1d.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def preemphasis(waveform, coeff=0.97):
    waveform = waveform.clone()
    waveform[..., 1:] -= coeff * waveform[..., :-1]
    return waveform


def frame(waveform, frame_length, hop_length, center=False):
    """[..., samples] -> [..., frames, frame_length]."""
    if center:
        pad = frame_length // 2
        shape = waveform.shape
        waveform = F.pad(waveform.reshape(-1, 1, shape[-1]), (pad, pad), mode="reflect").reshape(
            *shape[:-1], shape[-1] + 2 * pad)
    return waveform.unfold(-1, frame_length, hop_length)


def povey_window(n, dtype=torch.float32):
    return torch.hann_window(n, periodic=False, dtype=dtype).pow(0.85)


def dft_bases(n_fft, dtype=torch.float32):
    """cos / sin bases [n_fft, n_fft // 2 + 1] so that x @ cos - i x @ sin is rfft(x)."""
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
    t = torch.arange(n_fft, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(t, k) / n_fft
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def power_spectrum(frames, n_fft):
    if frames.size(-1) < n_fft:
        frames = F.pad(frames, (0, n_fft - frames.size(-1)))
    cos, sin = dft_bases(n_fft, frames.dtype)
    cos, sin = cos.to(frames.device), sin.to(frames.device)
    real, imag = frames @ cos, frames @ sin
    return real.pow(2) + imag.pow(2)


def _hz_to_mel(freq, mel_scale="htk"):
    if mel_scale == "htk":
        return 2595.0 * math.log10(1.0 + (freq / 700.0))
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    mels = freq / f_sp
    if freq >= min_log_hz:
        mels = min_log_hz / f_sp + math.log(freq / min_log_hz) / (math.log(6.4) / 27.0)
    return mels


def _mel_to_hz(mels, mel_scale="htk"):
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    freqs = f_sp * mels
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * torch.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None, mel_scale="htk"):
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_min, m_max = _hz_to_mel(f_min, mel_scale), _hz_to_mel(f_max, mel_scale)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2)
    f_pts = _mel_to_hz(m_pts, mel_scale)
    f_diff = f_pts[1:] - f_pts[:-1]  # (n_mels + 1)
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    zero = torch.zeros(1)
    down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
    up_slopes = slopes[:, 2:] / f_diff[1:]
    fb = torch.max(zero, torch.min(down_slopes, up_slopes))
    if norm == "slaney":
        enorm = 2.0 / (f_pts[2:n_mels + 2] - f_pts[:n_mels])
        fb *= enorm.unsqueeze(0)
    return fb


def create_dct(n_mfcc, n_mels, norm="ortho"):
    n = torch.arange(float(n_mels))
    k = torch.arange(float(n_mfcc)).unsqueeze(1)
    dct = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)  # size (n_mfcc, n_mels)
    if norm is None:
        dct *= 2.0
    else:
        dct[0] *= 1.0 / math.sqrt(2.0)
        dct *= math.sqrt(2.0 / float(n_mels))
    return dct.t()


def amplitude_to_DB(x, multiplier=10.0, amin=1e-10, db_multiplier=0.0, top_db=None):
    x_db = multiplier * torch.log10(torch.clamp(x, min=amin))
    x_db -= multiplier * db_multiplier
    if top_db is not None:
        packed = x_db.reshape(-1, x_db.shape[-2], x_db.shape[-1])
        x_db = torch.max(packed, (packed.amax(dim=(-2, -1)) - top_db).view(-1, 1, 1)).reshape(x_db.shape)
    return x_db


def compute_deltas(specgram, win_length=5):
    """specgram [..., freq, time]: the regression deltas along time."""
    shape = specgram.size()
    specgram = specgram.reshape(1, -1, shape[-1])
    n = (win_length - 1) // 2
    denom = n * (n + 1) * (2 * n + 1) / 3
    specgram = F.pad(specgram, (n, n), mode="replicate")
    kernel = torch.arange(-n, n + 1, 1, device=specgram.device, dtype=specgram.dtype).repeat(specgram.shape[1], 1, 1)
    output = F.conv1d(specgram, kernel, groups=specgram.shape[1]) / denom
    return output.reshape(shape)


def utterance_cmvn(feats, lengths, eps=1e-5):
    """feats [B, T, F]: each utterance normalised by the mean and std of its own frames; padding left at 0."""
    mask = (torch.arange(feats.size(1), device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    n = lengths.to(feats.dtype).view(-1, 1, 1)
    mean = (feats * mask).sum(1, keepdim=True) / n
    var = ((feats - mean).pow(2) * mask).sum(1, keepdim=True) / n
    return ((feats - mean) / torch.sqrt(var + eps)).masked_fill(~mask, 0.0)


class LogMelFrontend(nn.Module):
    def __init__(self, sample_rate=8000, n_fft=64, win_length=50, hop_length=20, n_mels=12, n_mfcc=8,
                 center=False, window="povey", norm=None, mel_scale="htk"):
        super().__init__()
        self.n_fft, self.win_length, self.hop_length, self.center = n_fft, win_length, hop_length, center
        win = povey_window(win_length) if window == "povey" else torch.hamming_window(win_length, periodic=False)
        self.register_buffer("window", win)
        self.register_buffer("fb", melscale_fbanks(n_fft // 2 + 1, 20.0, sample_rate / 2, n_mels, sample_rate,
                                                   norm, mel_scale))
        self.register_buffer("dct", create_dct(n_mfcc, n_mels))

    def forward(self, waveform, lengths=None):
        """waveform [B, samples] -> log-mel [B, T, n_mels], MFCC with deltas [B, T, 3 * n_mfcc], frame lengths."""
        frames = frame(preemphasis(waveform), self.win_length, self.hop_length, self.center)
        frames = frames - frames.mean(dim=-1, keepdim=True)  # remove the DC offset
        spec = power_spectrum(frames * self.window, self.n_fft)
        mel = torch.matmul(spec, self.fb)
        logmel = torch.log(torch.clamp(mel, min=1e-6))
        mfcc = torch.matmul(amplitude_to_DB(mel, top_db=80.0), self.dct)
        d1 = compute_deltas(mfcc.transpose(1, 2))
        d2 = compute_deltas(d1)
        feats = torch.cat([mfcc, d1.transpose(1, 2), d2.transpose(1, 2)], dim=-1)
        if lengths is None:
            return logmel, feats, None
        if self.center:
            flen = torch.div(lengths, self.hop_length, rounding_mode="floor") + 1
        else:
            flen = torch.div(lengths - self.win_length, self.hop_length, rounding_mode="floor") + 1
        return logmel, utterance_cmvn(feats, flen), flen


def sinc_resample_kernel(orig_freq, new_freq, gcd, lowpass_filter_width=6, rolloff=0.99,
                         resampling_method="sinc_interp_hann", beta=None, dtype=None):
    orig_freq, new_freq = int(orig_freq) // gcd, int(new_freq) // gcd
    base_freq = min(orig_freq, new_freq) * rolloff
    width = math.ceil(lowpass_filter_width * orig_freq / base_freq)
    idx = torch.arange(-width, width + orig_freq, dtype=torch.float64)[None, None] / orig_freq
    t = torch.arange(0, -new_freq, -1, dtype=dtype)[:, None, None] / new_freq + idx
    t *= base_freq
    t = t.clamp_(-lowpass_filter_width, lowpass_filter_width)
    if resampling_method == "sinc_interp_hann":
        window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    else:
        beta_tensor = torch.tensor(float(beta if beta is not None else 14.769656459379492))
        window = torch.i0(beta_tensor * torch.sqrt(1 - (t / lowpass_filter_width) ** 2)) / torch.i0(beta_tensor)
    t *= math.pi
    scale = base_freq / orig_freq
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * scale
    return kernels.to(dtype=torch.float32 if dtype is None else dtype), width


def resample(waveform, orig_freq, new_freq, **kw):
    gcd = math.gcd(int(orig_freq), int(new_freq))
    kernel, width = sinc_resample_kernel(orig_freq, new_freq, gcd, dtype=waveform.dtype, **kw)
    orig_freq, new_freq = int(orig_freq) // gcd, int(new_freq) // gcd
    shape = waveform.size()
    waveform = waveform.view(-1, shape[-1])
    num_wavs, length = waveform.shape
    waveform = F.pad(waveform, (width, width + orig_freq))
    resampled = F.conv1d(waveform[:, None], kernel, stride=orig_freq)
    resampled = resampled.transpose(1, 2).reshape(num_wavs, -1)
    target_length = torch.ceil(torch.as_tensor(new_freq * length / orig_freq)).long()
    resampled = resampled[..., :target_length]
    return resampled.view(shape[:-1] + resampled.shape[-1:])


class SincConv(nn.Module):
    """SincNet's band-pass filters: band i passes [low_i, low_i + band_i] Hz."""

    @staticmethod
    def to_mel(hz):
        return 2595 * torch.log10(1 + hz / 700)

    @staticmethod
    def to_hz(mel):
        return 700 * (10 ** (mel / 2595) - 1)

    def __init__(self, out_channels, kernel_size, sample_rate=8000, min_low_hz=50, min_band_hz=50):
        super().__init__()
        if kernel_size % 2 == 0:
            kernel_size = kernel_size + 1  # forcing the filters to be odd (perfectly symmetric)
        self.out_channels, self.kernel_size, self.sample_rate = out_channels, kernel_size, sample_rate
        self.min_low_hz, self.min_band_hz = min_low_hz, min_band_hz
        low_hz, high_hz = 30, self.sample_rate / 2 - (self.min_low_hz + self.min_band_hz)
        mel = torch.linspace(self.to_mel(torch.tensor(float(low_hz))).item(),
                             self.to_mel(torch.tensor(float(high_hz))).item(), self.out_channels + 1)
        hz = self.to_hz(mel)
        self.low_hz_ = nn.Parameter(hz[:-1].view(-1, 1))
        self.band_hz_ = nn.Parameter(torch.diff(hz).view(-1, 1))
        n_lin = torch.linspace(0, (self.kernel_size / 2) - 1, steps=int((self.kernel_size / 2)))
        self.register_buffer("window_", 0.54 - 0.46 * torch.cos(2 * math.pi * n_lin / self.kernel_size))
        n = (self.kernel_size - 1) / 2.0
        self.register_buffer("n_", 2 * math.pi * torch.arange(-n, 0).view(1, -1) / self.sample_rate)

    def forward(self, waveforms):
        low = self.min_low_hz + torch.abs(self.low_hz_)
        high = torch.clamp(low + self.min_band_hz + torch.abs(self.band_hz_), self.min_low_hz, self.sample_rate / 2)
        band = (high - low)[:, 0]
        f_times_t_low = torch.matmul(low, self.n_)
        f_times_t_high = torch.matmul(high, self.n_)
        band_pass_left = ((torch.sin(f_times_t_high) - torch.sin(f_times_t_low)) / (self.n_ / 2)) * self.window_
        band_pass_center = 2 * band.view(-1, 1)
        band_pass_right = torch.flip(band_pass_left, dims=[1])
        band_pass = torch.cat([band_pass_left, band_pass_center, band_pass_right], dim=1)
        band_pass = band_pass / (2 * band[:, None])
        self.filters = band_pass.view(self.out_channels, 1, self.kernel_size)
        return F.conv1d(waveforms, self.filters, stride=1, padding=0, dilation=1, bias=None, groups=1)


class SincFrontendClassifier(nn.Module):
    """SincConv -> abs -> max-pool -> LayerNorm -> LeakyReLU -> mean over time -> Linear: a learnable frontend
    that trains end to end."""

    def __init__(self, n_filters=6, kernel_size=25, n_classes=3):
        super().__init__()
        self.sinc = SincConv(n_filters, kernel_size)
        self.norm = nn.LayerNorm(n_filters)
        self.head = nn.Linear(n_filters, n_classes)

    def forward(self, waveforms):
        x = F.max_pool1d(torch.abs(self.sinc(waveforms.unsqueeze(1))), 3)
        x = F.leaky_relu(self.norm(x.transpose(1, 2)), 0.2)
        return self.head(x.mean(1))
