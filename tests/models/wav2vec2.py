"""A small wav2vec 2.0, written the way public implementations (fairseq, Hugging Face) write it (imports torch only;
loaded with vibetensor swapped in by tests/models/swap_import.py):
  - the feature encoder: a Conv1d stack over the raw waveform, GroupNorm (one group per channel) on the first
    layer, GELU, no biases; the output lengths from the kernel/stride arithmetic, and the frame attention mask
    built by marking each last frame and flipping a cumsum;
  - the feature projection (LayerNorm, Linear) and the convolutional positional embedding: a grouped Conv1d under
    weight normalisation over the kernel dim (nn.utils.weight_norm or nn.utils.parametrizations.weight_norm), the
    trailing frame of an even kernel removed, GELU;
  - a post-LN transformer encoder with additive finfo.min attention masks and padded frames zeroed by boolean
    indexing;
  - span masking of the projected frames with a learned mask embedding (hidden[mask] = masked_spec_embed);
  - pre-training: the Gumbel-softmax vector quantizer (straight-through hard one-hots in training, argmax in eval,
    codebook perplexity), the contrastive loss over cosine similarities with sampled negatives (negatives equal
    to the positive set to -inf through a chained index) and the diversity loss;
  - fine-tuning: a CTC head (log_softmax in float32, targets flattened with masked_select, the blank at the pad
    id) and a frozen feature encoder.
The random parts (span masks, negatives, the Gumbel noise) can be passed in so that two libraries draw the same.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Wav2Vec2Config:
    conv_dim: tuple = (16, 16, 16)
    conv_kernel: tuple = (10, 3, 2)
    conv_stride: tuple = (5, 2, 2)
    hidden_size: int = 16
    num_heads: int = 2
    intermediate_size: int = 32
    num_layers: int = 2
    pos_conv_kernel: int = 8
    pos_conv_groups: int = 4
    num_codevector_groups: int = 2
    num_codevectors_per_group: int = 5
    codevector_dim: int = 8
    proj_codevector_dim: int = 8
    diversity_loss_weight: float = 0.1
    contrastive_temperature: float = 0.1
    vocab_size: int = 7
    pad_token_id: int = 1  # the CTC blank
    layer_norm_eps: float = 1e-5
    weight_norm: str = "parametrizations"  # or "legacy" (nn.utils.weight_norm)


class FeatureEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        layers = []
        for i, (c, k, s) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride)):
            cin = 1 if i == 0 else cfg.conv_dim[i - 1]
            block = nn.Module()
            block.conv = nn.Conv1d(cin, c, kernel_size=k, stride=s, bias=False)
            if i == 0:
                block.layer_norm = nn.GroupNorm(num_groups=c, num_channels=c, affine=True)
            block.activation = nn.GELU()
            layers.append(block)
        self.conv_layers = nn.ModuleList(layers)
        self._requires_grad = True

    def _freeze_parameters(self):
        for param in self.parameters():
            param.requires_grad = False
        self._requires_grad = False

    def forward(self, input_values):
        hidden_states = input_values[:, None]
        if self._requires_grad and self.training:  # so that checkpointing sees a graph input
            hidden_states.requires_grad = True
        for block in self.conv_layers:
            hidden_states = block.conv(hidden_states)
            if hasattr(block, "layer_norm"):
                hidden_states = block.layer_norm(hidden_states)
            hidden_states = block.activation(hidden_states)
        return hidden_states


class PositionalConvEmbedding(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, k = cfg.hidden_size, cfg.pos_conv_kernel
        self.conv = nn.Conv1d(d, d, kernel_size=k, padding=k // 2, groups=cfg.pos_conv_groups)
        nn.init.normal_(self.conv.weight, mean=0, std=2 * math.sqrt(1 / (k * (d // cfg.pos_conv_groups))))
        nn.init.constant_(self.conv.bias, 0)
        if cfg.weight_norm == "legacy":
            self.conv = nn.utils.weight_norm(self.conv, name="weight", dim=2)
        else:
            self.conv = nn.utils.parametrizations.weight_norm(self.conv, name="weight", dim=2)
        self.num_pad_remove = 1 if k % 2 == 0 else 0
        self.activation = nn.GELU()

    def forward(self, hidden_states):
        hidden_states = self.conv(hidden_states.transpose(1, 2))
        if self.num_pad_remove > 0:
            hidden_states = hidden_states[:, :, : -self.num_pad_remove]
        return self.activation(hidden_states).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.num_heads, self.head_dim = heads, d // heads
        self.scaling = self.head_dim ** -0.5
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def _shape(self, tensor, seq_len, bsz):
        return tensor.view(bsz, seq_len, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(self, hidden_states, attention_mask=None):
        bsz, tgt_len, _ = hidden_states.size()
        query_states = self.q_proj(hidden_states) * self.scaling
        key_states = self._shape(self.k_proj(hidden_states), -1, bsz)
        value_states = self._shape(self.v_proj(hidden_states), -1, bsz)
        proj_shape = (bsz * self.num_heads, -1, self.head_dim)
        query_states = self._shape(query_states, tgt_len, bsz).view(*proj_shape)
        key_states = key_states.reshape(*proj_shape)
        value_states = value_states.reshape(*proj_shape)
        attn_weights = torch.bmm(query_states, key_states.transpose(1, 2))
        if attention_mask is not None:
            attn_weights = attn_weights.view(bsz, self.num_heads, tgt_len, -1) + attention_mask
            attn_weights = attn_weights.view(bsz * self.num_heads, tgt_len, -1)
        attn_weights = nn.functional.softmax(attn_weights, dim=-1)
        attn_output = torch.bmm(attn_weights, value_states)
        attn_output = attn_output.view(bsz, self.num_heads, tgt_len, self.head_dim).transpose(1, 2)
        return self.out_proj(attn_output.reshape(bsz, tgt_len, -1))


class EncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.hidden_size
        self.attention = Attention(d, cfg.num_heads)
        self.layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.intermediate_dense = nn.Linear(d, cfg.intermediate_size)
        self.output_dense = nn.Linear(cfg.intermediate_size, d)
        self.final_layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)

    def forward(self, hidden_states, attention_mask=None):
        hidden_states = self.layer_norm(hidden_states + self.attention(hidden_states, attention_mask))
        ff = self.output_dense(F.gelu(self.intermediate_dense(hidden_states)))
        return self.final_layer_norm(hidden_states + ff)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.pos_conv_embed = PositionalConvEmbedding(cfg)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList([EncoderLayer(cfg) for _ in range(cfg.num_layers)])

    def forward(self, hidden_states, attention_mask=None):
        if attention_mask is not None:
            # make sure padded tokens output 0
            expand_attention_mask = attention_mask.unsqueeze(-1).repeat(1, 1, hidden_states.shape[2])
            hidden_states[~expand_attention_mask] = 0
            # extend attention_mask
            attention_mask = 1.0 - attention_mask[:, None, None, :].to(dtype=hidden_states.dtype)
            attention_mask = attention_mask * torch.finfo(hidden_states.dtype).min
            attention_mask = attention_mask.expand(attention_mask.shape[0], 1, attention_mask.shape[-1],
                                                   attention_mask.shape[-1])
        hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        hidden_states = self.layer_norm(hidden_states)
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask)
        return hidden_states


class GumbelVectorQuantizer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.num_groups = cfg.num_codevector_groups
        self.num_vars = cfg.num_codevectors_per_group
        self.codevectors = nn.Parameter(torch.FloatTensor(1, self.num_groups * self.num_vars,
                                                          cfg.codevector_dim // self.num_groups))
        self.weight_proj = nn.Linear(cfg.conv_dim[-1], self.num_groups * self.num_vars)
        self.temperature = 2
        self.weight_proj.weight.data.normal_(mean=0.0, std=1)
        self.weight_proj.bias.data.zero_()
        nn.init.uniform_(self.codevectors)

    @staticmethod
    def _compute_perplexity(probs, mask=None):
        if mask is not None:
            mask_extended = mask.flatten()[:, None, None].expand(probs.shape)
            probs = torch.where(mask_extended, probs, torch.zeros_like(probs))
            marginal_probs = probs.sum(dim=0) / mask.sum()
        else:
            marginal_probs = probs.mean(dim=0)
        return torch.exp(-torch.sum(marginal_probs * torch.log(marginal_probs + 1e-7), dim=-1)).sum()

    def forward(self, hidden_states, mask_time_indices=None, gumbels=None):
        """gumbels: the Gumbel noise (shape of the logits) to use instead of F.gumbel_softmax's own."""
        batch_size, sequence_length, hidden_size = hidden_states.shape
        hidden_states = self.weight_proj(hidden_states)
        hidden_states = hidden_states.view(batch_size * sequence_length * self.num_groups, -1)
        if self.training:
            if gumbels is None:
                codevector_probs = nn.functional.gumbel_softmax(hidden_states.float(), tau=self.temperature,
                                                                hard=True).type_as(hidden_states)
            else:  # what F.gumbel_softmax(hard=True) computes, with the noise given
                y_soft = ((hidden_states.float() + gumbels) / self.temperature).softmax(-1)
                index = y_soft.max(-1, keepdim=True)[1]
                y_hard = torch.zeros_like(y_soft, memory_format=torch.legacy_contiguous_format).scatter_(-1, index, 1.0)
                codevector_probs = (y_hard - y_soft.detach() + y_soft).type_as(hidden_states)
            codevector_soft_dist = torch.softmax(
                hidden_states.view(batch_size * sequence_length, self.num_groups, -1).float(), dim=-1)
            perplexity = self._compute_perplexity(codevector_soft_dist, mask_time_indices)
        else:
            codevector_idx = hidden_states.argmax(dim=-1)
            codevector_probs = hidden_states.new_zeros(hidden_states.shape).scatter_(
                -1, codevector_idx.view(-1, 1), 1.0)
            codevector_probs = codevector_probs.view(batch_size * sequence_length, self.num_groups, -1)
            perplexity = self._compute_perplexity(codevector_probs, mask_time_indices)
        codevector_probs = codevector_probs.view(batch_size * sequence_length, -1)
        codevectors_per_group = codevector_probs.unsqueeze(-1) * self.codevectors
        codevectors = codevectors_per_group.view(batch_size * sequence_length, self.num_groups, self.num_vars, -1)
        codevectors = codevectors.sum(-2).view(batch_size, sequence_length, -1)
        return codevectors, perplexity


class Wav2Vec2Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = FeatureEncoder(cfg)
        self.feature_projection = nn.Sequential(nn.LayerNorm(cfg.conv_dim[-1], eps=cfg.layer_norm_eps),
                                                nn.Linear(cfg.conv_dim[-1], cfg.hidden_size))
        self.masked_spec_embed = nn.Parameter(torch.Tensor(cfg.hidden_size).uniform_())
        self.encoder = Encoder(cfg)

    def _get_feat_extract_output_lengths(self, input_lengths):
        for kernel_size, stride in zip(self.cfg.conv_kernel, self.cfg.conv_stride):
            input_lengths = torch.div(input_lengths - kernel_size, stride, rounding_mode="floor") + 1
        return input_lengths

    def _get_feature_vector_attention_mask(self, feature_vector_length, attention_mask):
        output_lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1)).to(torch.long)
        batch_size = attention_mask.shape[0]
        attention_mask = torch.zeros((batch_size, feature_vector_length), dtype=attention_mask.dtype,
                                     device=attention_mask.device)
        # these two operations makes sure that all values before the output lengths idxs are attended to
        attention_mask[(torch.arange(attention_mask.shape[0], device=attention_mask.device), output_lengths - 1)] = 1
        return attention_mask.flip([-1]).cumsum(-1).flip([-1]).bool()

    def forward(self, input_values, attention_mask=None, mask_time_indices=None):
        extract_features = self.feature_extractor(input_values).transpose(1, 2)
        if attention_mask is not None:
            attention_mask = self._get_feature_vector_attention_mask(extract_features.shape[1], attention_mask)
        hidden_states = self.feature_projection(extract_features)
        if mask_time_indices is not None:
            hidden_states[mask_time_indices] = self.masked_spec_embed.to(hidden_states.dtype)
        hidden_states = self.encoder(hidden_states, attention_mask=attention_mask)
        return hidden_states, extract_features, attention_mask


def compute_mask_indices(shape, mask_prob, mask_length, rng, min_masks=1):
    """Spans of mask_length frames starting at random frames (numpy, as the public code draws them)."""
    batch_size, sequence_length = shape
    mask = np.zeros(shape, dtype=bool)
    for b in range(batch_size):
        num = max(min_masks, int(mask_prob * sequence_length / mask_length + rng.random()))
        starts = rng.choice(sequence_length - mask_length + 1, num, replace=False)
        for s in starts:
            mask[b, s:s + mask_length] = True
    return mask


def sample_negative_indices(features_shape, num_negatives, rng, mask_time_indices):
    """Indices into the flattened [B * T] frames: for each masked frame, num_negatives other masked frames of the
    same utterance."""
    batch_size, sequence_length = features_shape
    out = np.zeros((batch_size, sequence_length, num_negatives), dtype=np.int32)
    for b in range(batch_size):
        idx = np.arange(sequence_length)[mask_time_indices[b]]
        for t in idx:
            others = idx[idx != t] if len(idx) > 1 else idx
            out[b, t] = rng.choice(others, num_negatives) + b * sequence_length
    return out


class Wav2Vec2ForPreTraining(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wav2vec2 = Wav2Vec2Model(cfg)
        self.quantizer = GumbelVectorQuantizer(cfg)
        self.project_hid = nn.Linear(cfg.hidden_size, cfg.proj_codevector_dim)
        self.project_q = nn.Linear(cfg.codevector_dim, cfg.proj_codevector_dim)

    @staticmethod
    def compute_contrastive_logits(target_features, negative_features, predicted_features, temperature=0.1):
        target_features = torch.cat([target_features, negative_features], dim=0)
        logits = torch.cosine_similarity(predicted_features.float(), target_features.float(), dim=-1)
        return logits.type_as(target_features) / temperature

    def forward(self, input_values, mask_time_indices, sampled_negative_indices, attention_mask=None,
                gumbels=None):
        hidden, extract_features, _ = self.wav2vec2(input_values, attention_mask, mask_time_indices)
        transformer_features = self.project_hid(hidden)
        quantized_features, codevector_perplexity = self.quantizer(extract_features, mask_time_indices, gumbels)
        quantized_features = self.project_q(quantized_features.to(self.project_q.weight.dtype))
        batch_size, sequence_length, hidden_size = quantized_features.shape
        num_negatives = sampled_negative_indices.shape[-1]
        negative_quantized_features = quantized_features.view(-1, hidden_size)[
            sampled_negative_indices.long().view(-1)]
        negative_quantized_features = negative_quantized_features.view(
            batch_size, sequence_length, num_negatives, hidden_size).permute(2, 0, 1, 3)
        logits = self.compute_contrastive_logits(quantized_features[None, :], negative_quantized_features,
                                                 transformer_features, self.cfg.contrastive_temperature)
        # if a negative vector is identical to the positive, its logit is -inf (it cannot be told apart)
        neg_is_pos = (quantized_features == negative_quantized_features).all(-1)
        if neg_is_pos.any():
            logits[1:][neg_is_pos] = float("-inf")
        logits = logits.transpose(0, 2).reshape(-1, logits.size(0))
        target = ((1 - mask_time_indices.long()) * -100).transpose(0, 1).flatten()
        contrastive_loss = nn.functional.cross_entropy(logits.float(), target, reduction="sum")
        num_codevectors = self.quantizer.num_groups * self.quantizer.num_vars
        diversity_loss = ((num_codevectors - codevector_perplexity) / num_codevectors) * mask_time_indices.sum()
        loss = contrastive_loss + self.cfg.diversity_loss_weight * diversity_loss
        return loss, contrastive_loss, diversity_loss, codevector_perplexity, neg_is_pos


class Wav2Vec2ForCTC(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.wav2vec2 = Wav2Vec2Model(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def freeze_feature_encoder(self):
        self.wav2vec2.feature_extractor._freeze_parameters()

    def forward(self, input_values, attention_mask, labels=None, reduction="mean"):
        hidden, _, _ = self.wav2vec2(input_values, attention_mask)
        logits = self.lm_head(hidden)
        if labels is None:
            return logits, None
        input_lengths = self.wav2vec2._get_feat_extract_output_lengths(attention_mask.sum(-1)).to(torch.long)
        # assuming that padded tokens are filled with -100 when not being attended to
        labels_mask = labels >= 0
        target_lengths = labels_mask.sum(-1)
        flattened_targets = labels.masked_select(labels_mask)
        log_probs = nn.functional.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)
        with torch.backends.cudnn.flags(enabled=False):
            loss = nn.functional.ctc_loss(log_probs, flattened_targets, input_lengths, target_lengths,
                                          blank=self.cfg.pad_token_id, reduction=reduction, zero_infinity=True)
        return logits, loss
