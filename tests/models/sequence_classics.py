"""Classic sequence models as public NLP and time-series code writes them, with `import torch` only: a BiLSTM-CRF
tagger (character CNN + word embeddings, packed sequences, a batched linear-chain CRF with the forward algorithm and
Viterbi decoding, and a one-sentence tutorial-style CRF with start/stop states), an AWD-LSTM language model
(embedding dropout, locked dropout, weight drop on the hidden-to-hidden weights, activation regularisation,
truncated BPTT, tied weights) and, for time series, a temporal convolutional network (causal dilated convolutions
with weight norm), an N-BEATS block stack trained with a quantile loss and a DeepAR forecaster (autoregressive LSTM,
Gaussian likelihood). Random masks come from a numpy Generator the caller seeds, so two libraries running this file
draw the same masks. Tested side by side with torch in tests/models/test_sequence_classics.py."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


# ---------------------------------------------------------------- BiLSTM-CRF

class CRF(nn.Module):
    """Linear-chain CRF over batch-first emissions [B, T, K]; mask [B, T] is True on real tokens (left-aligned)."""

    def __init__(self, num_tags):
        super().__init__()
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags))
        self.end_transitions = nn.Parameter(torch.empty(num_tags))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # [from, to]
        nn.init.uniform_(self.start_transitions, -0.1, 0.1)
        nn.init.uniform_(self.end_transitions, -0.1, 0.1)
        nn.init.uniform_(self.transitions, -0.1, 0.1)

    def forward(self, emissions, tags, mask, reduction="mean"):
        """Negative log-likelihood of the gold tags."""
        llh = self._gold_score(emissions, tags, mask) - self._log_partition(emissions, mask)
        if reduction == "none":
            return -llh
        if reduction == "sum":
            return -llh.sum()
        return -llh.mean()

    def _gold_score(self, emissions, tags, mask):
        maskf = mask.type_as(emissions)
        score = self.start_transitions[tags[:, 0]]
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # [B, T]
        score = score + (emit * maskf).sum(dim=1)
        # transitions[tags[t-1], tags[t]]: rows picked by the previous tag, the column gathered by the next
        trans = self.transitions[tags[:, :-1]].gather(2, tags[:, 1:].unsqueeze(-1)).squeeze(-1)  # [B, T-1]
        score = score + (trans * maskf[:, 1:]).sum(dim=1)
        lengths = mask.long().sum(dim=1)
        last_tags = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return score + self.end_transitions[last_tags]

    def _log_partition(self, emissions, mask):
        seq_len = emissions.size(1)
        score = self.start_transitions + emissions[:, 0]  # [B, K]
        for i in range(1, seq_len):
            # [B, K, 1] + [K, K] + [B, 1, K]: every (previous tag, next tag) pair
            nxt = score.unsqueeze(2) + self.transitions + emissions[:, i].unsqueeze(1)
            nxt = torch.logsumexp(nxt, dim=1)
            score = torch.where(mask[:, i].unsqueeze(1), nxt, score)  # padded steps carry the score through
        score = score + self.end_transitions
        return torch.logsumexp(score, dim=1)

    @torch.no_grad()
    def decode(self, emissions, mask):
        """Best tag sequence of each sentence, as lists cut to the sentence lengths."""
        batch, seq_len, _ = emissions.shape
        score = self.start_transitions + emissions[:, 0]
        history = []
        for i in range(1, seq_len):
            nxt = score.unsqueeze(2) + self.transitions + emissions[:, i].unsqueeze(1)
            nxt, indices = nxt.max(dim=1)
            score = torch.where(mask[:, i].unsqueeze(1), nxt, score)
            history.append(indices)
        score += self.end_transitions
        lengths = mask.sum(dim=1)
        best = score.argmax(dim=1)
        path = [best]
        for i in reversed(range(seq_len - 1)):
            prev = history[i].gather(1, best.unsqueeze(1)).squeeze(1)
            best = torch.where(lengths > i + 1, prev, best)  # only step back inside the sentence
            path.append(best)
        path = torch.stack(path[::-1], dim=1)  # [B, T]
        return [p[:n].tolist() for p, n in zip(path, lengths.tolist())]


class SentenceCRF(nn.Module):
    """The tutorial-style CRF: one sentence at a time, start and stop as two extra states of the transition
    matrix (transitions[to, from]), the impossible moves pinned to -10000 through .data, the gold score summed
    tag by tag with scalar indexing, and a Viterbi whose backpointers are Python ints."""

    def __init__(self, num_tags):
        super().__init__()
        self.num_tags, self.start, self.stop = num_tags, num_tags, num_tags + 1
        self.transitions = nn.Parameter(torch.randn(num_tags + 2, num_tags + 2))
        self.transitions.data[self.start, :] = -10000.0  # nothing moves into start
        self.transitions.data[:, self.stop] = -10000.0  # nothing moves out of stop

    def _init_alpha(self, feats):
        alpha = torch.full((1, self.num_tags + 2), -10000.0, dtype=feats.dtype, device=feats.device)
        alpha[0][self.start] = 0.0
        return alpha

    def log_partition(self, feats):  # [T, K]
        alpha = self._init_alpha(feats)
        for feat in F.pad(feats, (0, 2), value=-10000.0):
            alpha = torch.logsumexp(alpha + self.transitions, dim=1).view(1, -1) + feat.view(1, -1)
        return torch.logsumexp(alpha + self.transitions[self.stop], dim=1)[0]

    def gold_score(self, feats, tags):
        score = torch.zeros(1, dtype=feats.dtype, device=feats.device)
        tags = torch.cat([torch.tensor([self.start], dtype=torch.long, device=feats.device), tags])
        for i, feat in enumerate(feats):
            score = score + self.transitions[tags[i + 1], tags[i]] + feat[tags[i + 1]]
        return (score + self.transitions[self.stop, tags[-1]])[0]

    def neg_log_likelihood(self, feats, tags):
        return self.log_partition(feats) - self.gold_score(feats, tags)

    def viterbi(self, feats):
        alpha = self._init_alpha(feats)
        backpointers = []
        for feat in F.pad(feats, (0, 2), value=-10000.0):
            best, idx = torch.max(alpha + self.transitions, dim=1)
            backpointers.append(idx.tolist())
            alpha = (best + feat).view(1, -1)
        final = alpha[0] + self.transitions[self.stop]
        tag = int(torch.argmax(final))
        path_score = final[tag]
        path = [tag]
        for bp in reversed(backpointers):
            tag = bp[tag]
            path.append(tag)
        assert path.pop() == self.start
        path.reverse()
        return path_score, path


class CharCNN(nn.Module):
    """Character embeddings, a 1-d convolution over each word's characters, max over time."""

    def __init__(self, n_chars, char_dim, filters, kernel_size=3):
        super().__init__()
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, filters, kernel_size, padding=kernel_size // 2)

    def forward(self, chars):  # [B, T, L]
        b, t, length = chars.shape
        x = self.embed(chars.view(b * t, length)).transpose(1, 2)  # [B*T, C, L]
        x = torch.tanh(self.conv(x))
        x, _ = torch.max(x, dim=2)
        return x.view(b, t, -1)


class BiLSTMCRF(nn.Module):
    def __init__(self, vocab=30, n_chars=12, num_tags=5, word_dim=8, char_dim=4, filters=6, hidden=7):
        super().__init__()
        self.word_embed = nn.Embedding(vocab, word_dim, padding_idx=0)
        self.char_cnn = CharCNN(n_chars, char_dim, filters)
        self.lstm = nn.LSTM(word_dim + filters, hidden, batch_first=True, bidirectional=True)
        self.hidden2tag = nn.Linear(2 * hidden, num_tags)
        self.crf = CRF(num_tags)

    def emissions(self, words, chars, mask):
        x = torch.cat([self.word_embed(words), self.char_cnn(chars)], dim=-1)
        lengths = mask.sum(dim=1)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        self.lstm.flatten_parameters()
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=words.size(1))
        return self.hidden2tag(out)

    def forward(self, words, chars, tags, mask):
        return self.crf(self.emissions(words, chars, mask), tags, mask)

    def decode(self, words, chars, mask):
        return self.crf.decode(self.emissions(words, chars, mask), mask)


# ---------------------------------------------------------------- AWD-LSTM language model

def embedded_dropout(embed, words, dropout, rng):
    """Drops whole rows (words) of the embedding matrix, scaling the kept rows by 1 / (1 - dropout)."""
    weight = embed.weight
    if dropout:
        keep = rng.binomial(1, 1 - dropout, size=(weight.size(0), 1))
        mask = torch.from_numpy(keep).to(weight).expand_as(weight) / (1 - dropout)
        weight = mask * weight
    return F.embedding(words, weight, embed.padding_idx, embed.max_norm, embed.norm_type,
                       embed.scale_grad_by_freq, embed.sparse)


class LockedDropout(nn.Module):
    """Variational dropout: one mask per sequence, shared by every time step of a [T, B, H] input."""

    def __init__(self, rng):
        super().__init__()
        self.rng = rng

    def forward(self, x, dropout=0.5):
        if not self.training or not dropout:
            return x
        keep = self.rng.binomial(1, 1 - dropout, size=(1, x.size(1), x.size(2)))
        mask = x.new_tensor(keep) / (1 - dropout)
        return mask.expand_as(x) * x


class WeightDrop(nn.Module):
    """DropConnect on an RNN's hidden-to-hidden weights: the raw weights are the parameters, and before each
    forward the wrapped module gets a masked copy as a plain tensor attribute (RNNBase picks it up)."""

    def __init__(self, module, weights, dropout, rng):
        super().__init__()
        self.module, self.weights, self.dropout, self.rng = module, weights, dropout, rng
        for name in weights:
            w = getattr(module, name)
            del module._parameters[name]
            self.register_parameter(name + "_raw", nn.Parameter(w.data))
            setattr(module, name, w.data.clone())
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters = self._no_flatten  # the weights are no longer one flat buffer

    def _no_flatten(self):
        return None

    def _setweights(self):
        for name in self.weights:
            raw = getattr(self, name + "_raw")
            if self.training and self.dropout:
                keep = self.rng.binomial(1, 1 - self.dropout, size=tuple(raw.shape))
                w = raw * torch.from_numpy(keep).to(raw) / (1 - self.dropout)
            else:
                w = raw.clone()
            setattr(self.module, name, w)

    def forward(self, *args):
        self._setweights()
        return self.module(*args)


def patch_weight_drop(module, weights, dropout, rng):
    """The other public form of weight drop: the raw weights become parameters of the RNN itself and the RNN's
    forward is replaced, on the instance, by one that sets the masked weights first."""
    for name in weights:
        w = getattr(module, name)
        del module._parameters[name]
        module.register_parameter(name + "_raw", nn.Parameter(w.data))
    original_forward = module.forward

    def forward(*args, **kwargs):
        for name in weights:
            raw = getattr(module, name + "_raw")
            if module.training and dropout:
                keep = rng.binomial(1, 1 - dropout, size=tuple(raw.shape))
                raw = raw * raw.new_tensor(keep) / (1 - dropout)
            # in eval the raw Parameter itself is set, which registers it under the plain name as well (as
            # F.dropout(raw, training=False), returning raw, does in the code this follows)
            setattr(module, name, raw)
        return original_forward(*args, **kwargs)

    module.forward = forward
    return module


class AWDLSTM(nn.Module):
    def __init__(self, ntoken=40, ninp=12, nhid=16, nlayers=2, dropout=0.3, dropouti=0.25, dropoute=0.1,
                 wdrop=0.4, lstm_dropout=0.0, seed=0, weight_drop="wrapper"):
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.lockdrop = LockedDropout(self.rng)
        self.encoder = nn.Embedding(ntoken, ninp)
        # multi-layer LSTM whose last layer projects back to the embedding size so the decoder can be tied
        lstm = nn.LSTM(ninp, nhid, num_layers=nlayers, dropout=lstm_dropout, proj_size=ninp)
        names = [f"weight_hh_l{k}" for k in range(nlayers)]
        if weight_drop == "wrapper":
            self.rnn = WeightDrop(lstm, names, wdrop, self.rng)
        else:
            self.rnn = patch_weight_drop(lstm, names, wdrop, self.rng)
        self.decoder = nn.Linear(ninp, ntoken)
        self.decoder.weight = self.encoder.weight  # tied
        self.ninp, self.nhid, self.nlayers = ninp, nhid, nlayers
        self.dropout, self.dropouti, self.dropoute = dropout, dropouti, dropoute
        self.init_weights()

    def init_weights(self):
        initrange = 0.1
        self.encoder.weight.data.uniform_(-initrange, initrange)
        self.decoder.bias.data.zero_()

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.ninp), weight.new_zeros(self.nlayers, bsz, self.nhid))

    def forward(self, tokens, hidden):  # tokens [T, B]
        emb = embedded_dropout(self.encoder, tokens, self.dropoute if self.training else 0, self.rng)
        emb = self.lockdrop(emb, self.dropouti)
        raw_output, hidden = self.rnn(emb, hidden)
        output = self.lockdrop(raw_output, self.dropout)
        logits = self.decoder(output)
        return logits, hidden, raw_output, output


def repackage_hidden(h):
    """Cuts the graph between BPTT windows: the hidden state keeps its values, drops its history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()  # [T, B]


def get_batch(source, i, seq_len):
    seq_len = min(seq_len, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


def lm_loss(model, data, targets, hidden, alpha=2.0, beta=1.0):
    """Cross entropy plus activation regularisation (AR) on the dropped outputs and temporal activation
    regularisation (TAR) on the raw ones."""
    logits, hidden, raw_output, output = model(data, hidden)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets)
    raw = loss
    if alpha:
        loss = loss + alpha * output.pow(2).mean()
    if beta:
        loss = loss + beta * (raw_output[1:] - raw_output[:-1]).pow(2).mean()
    return loss, raw, hidden


# ---------------------------------------------------------------- TCN and N-BEATS

class Chomp1d(nn.Module):
    """Removes the right padding so each output step sees only the past."""

    def __init__(self, chomp_size):
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x):
        return x[:, :, :-self.chomp_size].contiguous()


class TemporalBlock(nn.Module):
    def __init__(self, n_in, n_out, kernel_size, dilation, dropout=0.0, parametrized=False):
        super().__init__()
        norm = nn.utils.parametrizations.weight_norm if parametrized else weight_norm
        padding = (kernel_size - 1) * dilation
        self.conv1 = norm(nn.Conv1d(n_in, n_out, kernel_size, padding=padding, dilation=dilation))
        self.conv2 = norm(nn.Conv1d(n_out, n_out, kernel_size, padding=padding, dilation=dilation))
        self.net = nn.Sequential(self.conv1, Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout),
                                 self.conv2, Chomp1d(padding), nn.ReLU(), nn.Dropout(dropout))
        self.downsample = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else None
        self.relu = nn.ReLU()
        self.init_weights()

    def init_weights(self):
        # under weight norm these write into the computed weight, which the next forward recomputes from g and v
        self.conv1.weight.data.normal_(0, 0.01)
        self.conv2.weight.data.normal_(0, 0.01)
        if self.downsample is not None:
            self.downsample.weight.data.normal_(0, 0.01)

    def forward(self, x):
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class TCN(nn.Module):
    """Dilations 1, 2, 4, ...; a linear head reads the last time step."""

    def __init__(self, n_in=2, channels=(6, 6, 4), kernel_size=3, n_out=3, dropout=0.0, parametrized=False):
        super().__init__()
        layers = []
        for i, c in enumerate(channels):
            cin = n_in if i == 0 else channels[i - 1]
            layers += [TemporalBlock(cin, c, kernel_size, 2 ** i, dropout, parametrized)]
        self.network = nn.Sequential(*layers)
        self.linear = nn.Linear(channels[-1], n_out)

    def forward(self, x):  # [B, C, T]
        y = self.network(x)
        return self.linear(y[:, :, -1])


class NBeatsBlock(nn.Module):
    """Fully connected stack, then theta heads mapped through a basis to a backcast and a forecast."""

    def __init__(self, backcast_len, forecast_len, hidden, n_layers=3, n_quantiles=1, trend_degree=None,
                 harmonics=None):
        super().__init__()
        dims = [backcast_len] + [hidden] * n_layers
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.forecast_len, self.n_quantiles = forecast_len, n_quantiles
        self.fixed_basis = trend_degree is not None or harmonics is not None
        if not self.fixed_basis:  # generic: the basis is learnt
            self.theta_b = nn.Linear(hidden, backcast_len)
            self.theta_f = nn.Linear(hidden, forecast_len * n_quantiles)
            return
        t_b = torch.arange(backcast_len, dtype=torch.float32) / backcast_len
        t_f = torch.arange(forecast_len, dtype=torch.float32) / forecast_len
        if trend_degree is not None:  # trend: polynomial coefficients over fixed time grids
            powers = torch.arange(trend_degree + 1, dtype=torch.float32)
            basis_b, basis_f = t_b.unsqueeze(0) ** powers.unsqueeze(1), t_f.unsqueeze(0) ** powers.unsqueeze(1)
        else:  # seasonality: Fourier coefficients, a cosine and a sine per harmonic
            freq = 2 * np.pi * torch.arange(1, harmonics + 1, dtype=torch.float32).unsqueeze(1)
            basis_b = torch.cat([torch.cos(freq * t_b), torch.sin(freq * t_b)], dim=0)
            basis_f = torch.cat([torch.cos(freq * t_f), torch.sin(freq * t_f)], dim=0)
        self.register_buffer("basis_b", basis_b)  # [P, L]
        self.register_buffer("basis_f", basis_f)  # [P, H]
        self.theta_b = nn.Linear(hidden, basis_b.size(0), bias=False)
        self.theta_f = nn.Linear(hidden, basis_b.size(0) * n_quantiles, bias=False)

    def forward(self, x):
        for layer in self.fc:
            x = F.relu(layer(x))
        if not self.fixed_basis:
            return self.theta_b(x), self.theta_f(x).view(x.size(0), self.forecast_len, self.n_quantiles)
        backcast = self.theta_b(x) @ self.basis_b
        coeffs = self.theta_f(x).view(x.size(0), self.n_quantiles, -1)
        forecast = torch.einsum("bqp,ph->bhq", coeffs, self.basis_f)
        return backcast, forecast


class NBeats(nn.Module):
    def __init__(self, backcast_len=12, forecast_len=4, hidden=16, quantiles=(0.1, 0.5, 0.9)):
        super().__init__()
        q = len(quantiles)
        self.quantiles = quantiles
        self.blocks = nn.ModuleList([NBeatsBlock(backcast_len, forecast_len, hidden, n_quantiles=q, trend_degree=2),
                                     NBeatsBlock(backcast_len, forecast_len, hidden, n_quantiles=q, harmonics=3),
                                     NBeatsBlock(backcast_len, forecast_len, hidden, n_quantiles=q)])

    def forward(self, x):  # [B, L] -> [B, H, Q]
        residuals = x.flip(dims=(1,))
        forecast = 0
        for block in self.blocks:
            backcast, f = block(residuals)
            residuals = residuals - backcast
            forecast = forecast + f
        return forecast


def quantile_loss(pred, target, quantiles):
    """Pinball loss averaged over batch, horizon and quantiles: pred [B, H, Q], target [B, H]."""
    q = torch.tensor(quantiles, dtype=pred.dtype, device=pred.device)
    err = target.unsqueeze(-1) - pred
    return torch.max(q * err, (q - 1) * err).mean()


# ---------------------------------------------------------------- DeepAR

class DeepAR(nn.Module):
    """Autoregressive LSTM forecaster: each step sees the previous (scaled) value, the covariates and an embedding
    of the series id; the series are scaled by their mean absolute context value. The likelihood is Gaussian for
    real values or negative binomial (mean mu, dispersion alpha) for counts."""

    def __init__(self, n_series=5, n_cov=2, embed_dim=3, hidden=10, layers=2, likelihood="normal"):
        super().__init__()
        self.likelihood = likelihood
        self.embed = nn.Embedding(n_series, embed_dim)
        self.lstm = nn.LSTM(1 + n_cov + embed_dim, hidden, num_layers=layers, batch_first=True)
        self.mu = nn.Linear(hidden, 1)
        self.presigma = nn.Linear(hidden, 1)

    def _step_inputs(self, prev, cov, series):  # prev [B, T], cov [B, T, C], series [B]
        emb = self.embed(series).unsqueeze(1).expand(-1, prev.size(1), -1)
        return torch.cat([prev.unsqueeze(-1), cov, emb], dim=-1)

    def _heads(self, out, scale):
        if self.likelihood == "negbin":  # a positive mean; the dispersion shrinks as the scale grows
            mu = F.softplus(self.mu(out)).squeeze(-1) * scale
            return mu, F.softplus(self.presigma(out)).squeeze(-1) / scale.sqrt()
        mu = self.mu(out).squeeze(-1) * scale
        sigma = F.softplus(self.presigma(out)).squeeze(-1) * scale
        return mu, sigma

    def distribution(self, mu, shape):
        if self.likelihood == "negbin":
            # mean mu and variance mu + alpha mu^2: r = 1 / alpha failures, success log-odds log(alpha mu)
            return torch.distributions.NegativeBinomial(total_count=1 / shape, logits=torch.log(shape * mu))
        return torch.distributions.Normal(mu, shape)

    def scale_of(self, context):
        return 1 + context.abs().mean(dim=1, keepdim=True)

    def forward(self, target, cov, series, context_len):
        """Teacher-forced Gaussian negative log-likelihood of target[:, 1:]."""
        scale = self.scale_of(target[:, :context_len])
        out, _ = self.lstm(self._step_inputs(target[:, :-1] / scale, cov[:, 1:], series))
        return -self.distribution(*self._heads(out, scale)).log_prob(target[:, 1:]).mean()

    @torch.no_grad()
    def forecast(self, context, cov, series, horizon):
        """Mean forecast: the context warms the state up, then each predicted mean is fed back."""
        scale = self.scale_of(context)
        t = context.size(1)
        _, state = self.lstm(self._step_inputs(context[:, :-1] / scale, cov[:, 1:t], series))
        prev, means, sigmas = context[:, -1:], [], []
        for k in range(horizon):
            out, state = self.lstm(self._step_inputs(prev / scale, cov[:, t + k:t + k + 1], series), state)
            mu, sigma = self._heads(out, scale)
            means.append(mu)
            sigmas.append(sigma)
            prev = mu
        return torch.cat(means, dim=1), torch.cat(sigmas, dim=1)
