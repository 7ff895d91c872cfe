"""A small Tacotron 2, written the way the public implementation (NVIDIA's tacotron2) writes it (imports torch only;
loaded with vibetensor swapped in by tests/models/swap_import.py):
  - LinearNorm / ConvNorm wrappers with xavier_uniform_ init scaled by calculate_gain;
  - the encoder: character embedding, Conv1d + BatchNorm1d + ReLU + dropout blocks, a bidirectional LSTM over
    pack_padded_sequence / pad_packed_sequence;
  - the decoder: a prenet whose dropout stays on at inference (F.dropout(training=True)), an attention LSTMCell and
    a decoder LSTMCell stepped in a Python loop with their states kept on the module, location-sensitive
    attention (a Conv1d over the previous and cumulative attention weights; energies masked through
    `alignment.data.masked_fill_(mask, -inf)`), the cumulative weights updated in place, mel and gate projections;
  - the postnet: Conv1d + BatchNorm1d + tanh blocks, added residually;
  - the loss: MSE on the mel before and after the postnet, BCE-with-logits on the stop gate, padded frames
    zeroed with `.data.masked_fill_`; greedy inference that stops on the gate.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TacotronConfig:
    n_symbols: int = 12
    symbols_embedding_dim: int = 16
    encoder_kernel_size: int = 5
    encoder_n_convolutions: int = 2
    n_mel_channels: int = 6
    prenet_dim: int = 8
    attention_rnn_dim: int = 16
    decoder_rnn_dim: int = 16
    attention_dim: int = 8
    attention_location_n_filters: int = 4
    attention_location_kernel_size: int = 5
    postnet_embedding_dim: int = 8
    postnet_kernel_size: int = 5
    postnet_n_convolutions: int = 3
    dropout: float = 0.0  # the encoder/postnet/decoder dropouts (0.5 / 0.5 / 0.1 in the recipe)
    prenet_dropout: float = 0.0  # 0.5 in the recipe, on even at inference
    gate_threshold: float = 0.5
    max_decoder_steps: int = 20


class LinearNorm(nn.Module):
    def __init__(self, in_dim, out_dim, bias=True, w_init_gain="linear"):
        super().__init__()
        self.linear_layer = nn.Linear(in_dim, out_dim, bias=bias)
        nn.init.xavier_uniform_(self.linear_layer.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, x):
        return self.linear_layer(x)


class ConvNorm(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=None, dilation=1, bias=True,
                 w_init_gain="linear"):
        super().__init__()
        if padding is None:
            assert kernel_size % 2 == 1
            padding = int(dilation * (kernel_size - 1) / 2)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                              dilation=dilation, bias=bias)
        nn.init.xavier_uniform_(self.conv.weight, gain=nn.init.calculate_gain(w_init_gain))

    def forward(self, signal):
        return self.conv(signal)


def get_mask_from_lengths(lengths):
    max_len = torch.max(lengths).item()
    ids = torch.arange(0, max_len, device=lengths.device)
    return (ids < lengths.unsqueeze(1)).bool()


class LocationLayer(nn.Module):
    def __init__(self, n_filters, kernel_size, attention_dim):
        super().__init__()
        self.location_conv = ConvNorm(2, n_filters, kernel_size=kernel_size, padding=int((kernel_size - 1) / 2),
                                      bias=False)
        self.location_dense = LinearNorm(n_filters, attention_dim, bias=False, w_init_gain="tanh")

    def forward(self, attention_weights_cat):
        return self.location_dense(self.location_conv(attention_weights_cat).transpose(1, 2))


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.query_layer = LinearNorm(cfg.attention_rnn_dim, cfg.attention_dim, bias=False, w_init_gain="tanh")
        self.memory_layer = LinearNorm(cfg.symbols_embedding_dim, cfg.attention_dim, bias=False,
                                       w_init_gain="tanh")
        self.v = LinearNorm(cfg.attention_dim, 1, bias=False)
        self.location_layer = LocationLayer(cfg.attention_location_n_filters, cfg.attention_location_kernel_size,
                                            cfg.attention_dim)
        self.score_mask_value = -float("inf")

    def get_alignment_energies(self, query, processed_memory, attention_weights_cat):
        processed_query = self.query_layer(query.unsqueeze(1))
        processed_attention_weights = self.location_layer(attention_weights_cat)
        energies = self.v(torch.tanh(processed_query + processed_attention_weights + processed_memory))
        return energies.squeeze(-1)

    def forward(self, attention_hidden_state, memory, processed_memory, attention_weights_cat, mask):
        alignment = self.get_alignment_energies(attention_hidden_state, processed_memory, attention_weights_cat)
        if mask is not None:
            alignment.data.masked_fill_(mask, self.score_mask_value)
        attention_weights = F.softmax(alignment, dim=1)
        attention_context = torch.bmm(attention_weights.unsqueeze(1), memory).squeeze(1)
        return attention_context, attention_weights


class Prenet(nn.Module):
    def __init__(self, in_dim, sizes, p):
        super().__init__()
        in_sizes = [in_dim] + sizes[:-1]
        self.layers = nn.ModuleList([LinearNorm(i, o, bias=False) for i, o in zip(in_sizes, sizes)])
        self.p = p

    def forward(self, x):
        for linear in self.layers:
            x = F.dropout(F.relu(linear(x)), p=self.p, training=True)
        return x


class Postnet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dropout = cfg.dropout
        self.convolutions = nn.ModuleList()
        dims = [cfg.n_mel_channels] + [cfg.postnet_embedding_dim] * (cfg.postnet_n_convolutions - 1)
        dims.append(cfg.n_mel_channels)
        for i in range(cfg.postnet_n_convolutions):
            last = i == cfg.postnet_n_convolutions - 1
            self.convolutions.append(nn.Sequential(
                ConvNorm(dims[i], dims[i + 1], kernel_size=cfg.postnet_kernel_size,
                         w_init_gain="linear" if last else "tanh"),
                nn.BatchNorm1d(dims[i + 1])))

    def forward(self, x):
        for i, conv in enumerate(self.convolutions):
            x = conv(x)
            if i < len(self.convolutions) - 1:
                x = torch.tanh(x)
            x = F.dropout(x, self.dropout, self.training)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dropout = cfg.dropout
        d = cfg.symbols_embedding_dim
        self.convolutions = nn.ModuleList([nn.Sequential(
            ConvNorm(d, d, kernel_size=cfg.encoder_kernel_size, w_init_gain="relu"), nn.BatchNorm1d(d))
            for _ in range(cfg.encoder_n_convolutions)])
        self.lstm = nn.LSTM(d, int(d / 2), 1, batch_first=True, bidirectional=True)

    def forward(self, x, input_lengths):
        for conv in self.convolutions:
            x = F.dropout(F.relu(conv(x)), self.dropout, self.training)
        x = x.transpose(1, 2)
        # pytorch tensor are not reversible, hence the conversion
        input_lengths = input_lengths.cpu().numpy()
        x = nn.utils.rnn.pack_padded_sequence(x, input_lengths, batch_first=True)
        self.lstm.flatten_parameters()
        outputs, _ = self.lstm(x)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True)
        return outputs


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.n_mel_channels = cfg.n_mel_channels
        self.prenet = Prenet(cfg.n_mel_channels, [cfg.prenet_dim, cfg.prenet_dim], cfg.prenet_dropout)
        self.attention_rnn = nn.LSTMCell(cfg.prenet_dim + cfg.symbols_embedding_dim, cfg.attention_rnn_dim)
        self.attention_layer = Attention(cfg)
        self.decoder_rnn = nn.LSTMCell(cfg.attention_rnn_dim + cfg.symbols_embedding_dim, cfg.decoder_rnn_dim, 1)
        self.linear_projection = LinearNorm(cfg.decoder_rnn_dim + cfg.symbols_embedding_dim, cfg.n_mel_channels)
        self.gate_layer = LinearNorm(cfg.decoder_rnn_dim + cfg.symbols_embedding_dim, 1, bias=True,
                                     w_init_gain="sigmoid")

    def get_go_frame(self, memory):
        return memory.new_zeros(memory.size(0), self.n_mel_channels)

    def initialize_decoder_states(self, memory, mask):
        B, MAX_TIME = memory.size(0), memory.size(1)
        self.attention_hidden = memory.new_zeros(B, self.cfg.attention_rnn_dim)
        self.attention_cell = memory.new_zeros(B, self.cfg.attention_rnn_dim)
        self.decoder_hidden = memory.new_zeros(B, self.cfg.decoder_rnn_dim)
        self.decoder_cell = memory.new_zeros(B, self.cfg.decoder_rnn_dim)
        self.attention_weights = memory.new_zeros(B, MAX_TIME)
        self.attention_weights_cum = memory.new_zeros(B, MAX_TIME)
        self.attention_context = memory.new_zeros(B, self.cfg.symbols_embedding_dim)
        self.memory = memory
        self.processed_memory = self.attention_layer.memory_layer(memory)
        self.mask = mask

    def decode(self, decoder_input):
        cell_input = torch.cat((decoder_input, self.attention_context), -1)
        self.attention_hidden, self.attention_cell = self.attention_rnn(
            cell_input, (self.attention_hidden, self.attention_cell))
        self.attention_hidden = F.dropout(self.attention_hidden, self.cfg.dropout, self.training)
        attention_weights_cat = torch.cat(
            (self.attention_weights.unsqueeze(1), self.attention_weights_cum.unsqueeze(1)), dim=1)
        self.attention_context, self.attention_weights = self.attention_layer(
            self.attention_hidden, self.memory, self.processed_memory, attention_weights_cat, self.mask)
        self.attention_weights_cum += self.attention_weights
        decoder_input = torch.cat((self.attention_hidden, self.attention_context), -1)
        self.decoder_hidden, self.decoder_cell = self.decoder_rnn(
            decoder_input, (self.decoder_hidden, self.decoder_cell))
        self.decoder_hidden = F.dropout(self.decoder_hidden, self.cfg.dropout, self.training)
        decoder_hidden_attention_context = torch.cat((self.decoder_hidden, self.attention_context), dim=1)
        decoder_output = self.linear_projection(decoder_hidden_attention_context)
        gate_prediction = self.gate_layer(decoder_hidden_attention_context)
        return decoder_output, gate_prediction, self.attention_weights

    @staticmethod
    def parse_decoder_outputs(mel_outputs, gate_outputs, alignments):
        alignments = torch.stack(alignments).transpose(0, 1)
        gate_outputs = torch.stack(gate_outputs).transpose(0, 1).contiguous()
        mel_outputs = torch.stack(mel_outputs).transpose(0, 1).contiguous()
        return mel_outputs.transpose(1, 2), gate_outputs, alignments  # (B, n_mel, T_out)

    def forward(self, memory, decoder_inputs, memory_lengths):
        """Teacher forcing: decoder_inputs (B, n_mel, T_out), the previous frame fed at each step."""
        decoder_input = self.get_go_frame(memory).unsqueeze(0)
        decoder_inputs = decoder_inputs.permute(2, 0, 1)  # (T_out, B, n_mel)
        decoder_inputs = torch.cat((decoder_input, decoder_inputs), dim=0)
        decoder_inputs = self.prenet(decoder_inputs)
        self.initialize_decoder_states(memory, mask=~get_mask_from_lengths(memory_lengths))
        mel_outputs, gate_outputs, alignments = [], [], []
        while len(mel_outputs) < decoder_inputs.size(0) - 1:
            decoder_input = decoder_inputs[len(mel_outputs)]
            mel_output, gate_output, attention_weights = self.decode(decoder_input)
            mel_outputs += [mel_output.squeeze(1)]
            gate_outputs += [gate_output.squeeze(1)]
            alignments += [attention_weights]
        return self.parse_decoder_outputs(mel_outputs, gate_outputs, alignments)

    def inference(self, memory):
        decoder_input = self.get_go_frame(memory)
        self.initialize_decoder_states(memory, mask=None)
        mel_outputs, gate_outputs, alignments = [], [], []
        while True:
            decoder_input = self.prenet(decoder_input)
            mel_output, gate_output, alignment = self.decode(decoder_input)
            mel_outputs += [mel_output.squeeze(1)]
            gate_outputs += [gate_output]
            alignments += [alignment]
            if torch.sigmoid(gate_output.data) > self.cfg.gate_threshold:
                break
            elif len(mel_outputs) == self.cfg.max_decoder_steps:
                break
            decoder_input = mel_output
        return self.parse_decoder_outputs(mel_outputs, gate_outputs, alignments)


class Tacotron2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.n_symbols, cfg.symbols_embedding_dim)
        std = (2.0 / (cfg.n_symbols + cfg.symbols_embedding_dim)) ** 0.5
        val = (3.0 ** 0.5) * std
        self.embedding.weight.data.uniform_(-val, val)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.postnet = Postnet(cfg)

    def parse_output(self, outputs, output_lengths):
        mask = ~get_mask_from_lengths(output_lengths)
        mask = mask.expand(self.cfg.n_mel_channels, mask.size(0), mask.size(1)).permute(1, 0, 2)
        outputs[0].data.masked_fill_(mask, 0.0)
        outputs[1].data.masked_fill_(mask, 0.0)
        outputs[2].data.masked_fill_(mask[:, 0, :], 1e3)  # gate energies
        return outputs

    def forward(self, text_inputs, text_lengths, mels, output_lengths):
        embedded_inputs = self.embedding(text_inputs).transpose(1, 2)
        encoder_outputs = self.encoder(embedded_inputs, text_lengths)
        mel_outputs, gate_outputs, alignments = self.decoder(encoder_outputs, mels, memory_lengths=text_lengths)
        mel_outputs_postnet = mel_outputs + self.postnet(mel_outputs)
        return self.parse_output([mel_outputs, mel_outputs_postnet, gate_outputs, alignments], output_lengths)

    def inference(self, inputs):
        embedded_inputs = self.embedding(inputs).transpose(1, 2)
        encoder_outputs = self.encoder(embedded_inputs, torch.tensor([inputs.size(1)] * inputs.size(0)))
        mel_outputs, gate_outputs, alignments = self.decoder.inference(encoder_outputs)
        mel_outputs_postnet = mel_outputs + self.postnet(mel_outputs)
        return mel_outputs, mel_outputs_postnet, gate_outputs, alignments


def tacotron2_loss(model_output, targets):
    mel_target, gate_target = targets[0], targets[1]
    mel_target.requires_grad = False
    gate_target.requires_grad = False
    gate_target = gate_target.view(-1, 1)
    mel_out, mel_out_postnet, gate_out, _ = model_output
    gate_out = gate_out.view(-1, 1)
    mel_loss = nn.MSELoss()(mel_out, mel_target) + nn.MSELoss()(mel_out_postnet, mel_target)
    gate_loss = nn.BCEWithLogitsLoss()(gate_out, gate_target)
    return mel_loss + gate_loss
