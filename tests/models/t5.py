"""A T5-style encoder-decoder written the way public model code is written (imports torch only; loaded with
vibetensor swapped in by tests/models/swap_import.py):
  - relative position bias: relative distances bucketed (exact for small ones, log-spaced up to max_distance),
    bidirectional in the encoder and causal in the decoder, an nn.Embedding of buckets permuted to
    [1, heads, q, k]; only the first block of each stack owns it, the others reuse its bias;
  - T5's LayerNorm: RMS without the mean, the variance in float32, cast back to a 16-bit weight's dtype;
  - attention without the 1/sqrt(d) scaling (by hand, or F.scaled_dot_product_attention with the bias as its
    float mask and scale=1.0), additive masks (1 - mask) * finfo.min, cross-attention onto the encoder output,
    past key/value tuples that grow by torch.cat along the sequence dim;
  - a gated-GELU feed-forward (tanh GELU), dropout (active in train mode only); float16 residuals clamped off
    inf (torch.where on isinf(...).any(), torch.clamp with tensor bounds); gradient checkpointing of the blocks;
  - shared input embeddings tied to the LM head, the decoder output scaled by d_model ** -0.5 before it;
  - the loss over labels (ignore_index=-100, optional label smoothing), the decoder inputs their shift right;
  - `generate`: greedy decoding with an eos-finished mask, or a beam search (log_softmax, topk over
    beams * vocab, // and % on the indices, caches reordered with index_select, a length penalty); either
    may ban repeated ngrams (scores[i, banned] = -inf, as Hugging Face's processor writes it).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


@dataclass
class T5Config:
    vocab_size: int = 40
    d_model: int = 32
    d_kv: int = 8
    d_ff: int = 48
    num_layers: int = 2
    num_decoder_layers: int = 2
    num_heads: int = 4
    relative_attention_num_buckets: int = 8
    relative_attention_max_distance: int = 20
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 0
    label_smoothing: float = 0.0
    attn_implementation: str = "eager"  # or "sdpa": F.scaled_dot_product_attention, the bias as its mask


class T5LayerNorm(nn.Module):
    """Scale-only RMS norm: no mean subtracted, no bias."""

    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        # the variance in float32 even for half-precision activations: their squares overflow or lose bits
        variance = hidden_states.to(torch.float32).pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            hidden_states = hidden_states.to(self.weight.dtype)
        return self.weight * hidden_states


def clamp_inf(hidden_states):
    """float16 residual streams of large T5s overflow; pull an inf back to just under the largest finite value."""
    if hidden_states.dtype == torch.float16:
        clamp_value = torch.where(torch.isinf(hidden_states).any(), torch.finfo(hidden_states.dtype).max - 1000,
                                  torch.finfo(hidden_states.dtype).max)
        hidden_states = torch.clamp(hidden_states, min=-clamp_value, max=clamp_value)
    return hidden_states


class T5DenseGatedActDense(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states):
        gate = F.gelu(self.wi_0(hidden_states), approximate="tanh")
        hidden_states = self.dropout(gate * self.wi_1(hidden_states))
        return self.wo(hidden_states)


class T5LayerFF(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.DenseReluDense = T5DenseGatedActDense(config)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states):
        return hidden_states + self.dropout(self.DenseReluDense(self.layer_norm(hidden_states)))


def relative_position_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """The bucket of each (key - query) distance. Half the buckets hold the exact small distances, the rest cover
    distances up to max_distance on a log scale (farther ones share the last bucket). Bidirectional: the buckets
    split in two by sign; causal (the decoder): only keys at or before the query count, later ones map to 0."""
    buckets = 0
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    # the log of a zero distance is -inf, but those positions take the exact branch of the torch.where
    if_large = max_exact + (
        torch.log(relative_position.float() / max_exact) / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    if_large = torch.min(if_large, torch.full_like(if_large, num_buckets - 1))
    buckets += torch.where(is_small, relative_position, if_large)
    return buckets


class T5Attention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        self.has_relative_attention_bias = has_relative_attention_bias
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.n_heads, self.key_value_proj_dim = config.num_heads, config.d_kv
        self.inner_dim = self.n_heads * self.key_value_proj_dim
        self.dropout = config.dropout_rate
        self.attn_implementation = config.attn_implementation
        self.q = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.k = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.v = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.o = nn.Linear(self.inner_dim, config.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, self.n_heads)

    def compute_bias(self, query_length, key_length, device=None, past_length=0):
        """[1, heads, query_length, key_length]; the queries sit at past_length onwards."""
        if device is None:
            device = self.relative_attention_bias.weight.device
        context_position = torch.arange(past_length, past_length + query_length, dtype=torch.long,
                                        device=device)[:, None]
        memory_position = torch.arange(key_length, dtype=torch.long, device=device)[None, :]
        relative_position = memory_position - context_position
        buckets = relative_position_bucket(relative_position, bidirectional=not self.is_decoder,
                                           num_buckets=self.num_buckets, max_distance=self.max_distance)
        values = self.relative_attention_bias(buckets)  # [q, k, heads]
        return values.permute([2, 0, 1]).unsqueeze(0)

    def forward(self, hidden_states, mask=None, key_value_states=None, position_bias=None, past_key_value=None,
                use_cache=False):
        """Self-attention, or cross-attention onto key_value_states. past_key_value: this attention's (keys,
        values) so far; a cross-attention's are the encoder's, computed once and reused as they are."""
        batch_size, seq_length = hidden_states.shape[:2]

        def shape(states):
            return states.view(batch_size, -1, self.n_heads, self.key_value_proj_dim).transpose(1, 2)

        query_states = shape(self.q(hidden_states))
        if key_value_states is None:
            key_states, value_states = shape(self.k(hidden_states)), shape(self.v(hidden_states))
            if past_key_value is not None:
                key_states = torch.cat([past_key_value[0], key_states], dim=2)
                value_states = torch.cat([past_key_value[1], value_states], dim=2)
        elif past_key_value is None:
            key_states, value_states = shape(self.k(key_value_states)), shape(self.v(key_value_states))
        else:
            key_states, value_states = past_key_value
        key_length = key_states.shape[2]
        past_length = key_length - seq_length if key_value_states is None else 0

        if position_bias is None:
            if self.has_relative_attention_bias:
                position_bias = self.compute_bias(seq_length, key_length, query_states.device, past_length)
                position_bias = position_bias.to(query_states.dtype)
            else:
                position_bias = torch.zeros((1, self.n_heads, seq_length, key_length), device=query_states.device,
                                            dtype=query_states.dtype)
            if mask is not None:
                position_bias = position_bias + mask  # the layers after the first reuse the masked bias
        if self.attn_implementation == "sdpa":
            # the additive bias is the float attn_mask; scale=1.0 keeps T5's unscaled scores
            attn_output = F.scaled_dot_product_attention(query_states, key_states, value_states,
                                                         attn_mask=position_bias, scale=1.0,
                                                         dropout_p=self.dropout if self.training else 0.0)
        else:
            # no 1/sqrt(d) scaling: T5 folds it into the initialization of q
            scores = torch.matmul(query_states, key_states.transpose(3, 2))
            scores += position_bias
            attn_weights = F.softmax(scores.float(), dim=-1).type_as(scores)
            attn_weights = F.dropout(attn_weights, p=self.dropout, training=self.training)
            attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).contiguous().view(batch_size, -1, self.inner_dim)
        present = (key_states, value_states) if use_cache else None
        return self.o(attn_output), present, position_bias


class T5LayerSelfAttention(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.SelfAttention = T5Attention(config, has_relative_attention_bias, is_decoder)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states, mask=None, position_bias=None, past_key_value=None, use_cache=False):
        out, present, position_bias = self.SelfAttention(self.layer_norm(hidden_states), mask=mask,
                                                         position_bias=position_bias,
                                                         past_key_value=past_key_value, use_cache=use_cache)
        return hidden_states + self.dropout(out), present, position_bias


class T5LayerCrossAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.EncDecAttention = T5Attention(config, has_relative_attention_bias=False, is_decoder=True)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden_states, key_value_states, mask=None, position_bias=None, past_key_value=None,
                use_cache=False):
        out, present, position_bias = self.EncDecAttention(self.layer_norm(hidden_states), mask=mask,
                                                           key_value_states=key_value_states,
                                                           position_bias=position_bias,
                                                           past_key_value=past_key_value, use_cache=use_cache)
        return hidden_states + self.dropout(out), present, position_bias


class T5Block(nn.Module):
    def __init__(self, config, has_relative_attention_bias=False, is_decoder=False):
        super().__init__()
        self.is_decoder = is_decoder
        self.layer = nn.ModuleList([T5LayerSelfAttention(config, has_relative_attention_bias, is_decoder)])
        if is_decoder:
            self.layer.append(T5LayerCrossAttention(config))
        self.layer.append(T5LayerFF(config))

    def forward(self, hidden_states, attention_mask=None, position_bias=None, encoder_hidden_states=None,
                encoder_attention_mask=None, encoder_decoder_position_bias=None, past_key_value=None,
                use_cache=False):
        """past_key_value: (self keys, self values, cross keys, cross values) of the decoder, or None."""
        self_past = cross_past = None
        if past_key_value is not None:
            self_past, cross_past = past_key_value[:2], past_key_value[2:]
        hidden_states, present, position_bias = self.layer[0](hidden_states, attention_mask, position_bias,
                                                              self_past, use_cache)
        hidden_states = clamp_inf(hidden_states)
        if self.is_decoder:
            hidden_states, cross_present, encoder_decoder_position_bias = self.layer[1](
                hidden_states, encoder_hidden_states, encoder_attention_mask, encoder_decoder_position_bias,
                cross_past, use_cache)
            hidden_states = clamp_inf(hidden_states)
            if use_cache:
                present = present + cross_present
        hidden_states = clamp_inf(self.layer[-1](hidden_states))
        return hidden_states, present, position_bias, encoder_decoder_position_bias


class T5Stack(nn.Module):
    def __init__(self, config, embed_tokens, is_decoder=False):
        super().__init__()
        self.embed_tokens = embed_tokens
        self.is_decoder = is_decoder
        n = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList(T5Block(config, has_relative_attention_bias=i == 0, is_decoder=is_decoder)
                                   for i in range(n))
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.gradient_checkpointing = False

    def forward(self, input_ids, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                past_key_values=None, use_cache=False):
        batch_size, seq_length = input_ids.shape
        past_length = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        inputs_embeds = self.embed_tokens(input_ids)
        dtype = inputs_embeds.dtype
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, past_length + seq_length, device=input_ids.device)
        if self.is_decoder:
            # each new query sees the new keys up to itself, and every cached one before them
            seq_ids = torch.arange(seq_length, device=input_ids.device)
            causal = seq_ids[None, None, :].repeat(batch_size, seq_length, 1) <= seq_ids[None, :, None]
            causal = causal.to(attention_mask.dtype)
            if past_length > 0:
                prefix = torch.ones((batch_size, seq_length, past_length), device=input_ids.device,
                                    dtype=causal.dtype)
                causal = torch.cat([prefix, causal], dim=-1)
            extended = causal[:, None, :, :] * attention_mask[:, None, None, :]
        else:
            extended = attention_mask[:, None, None, :]
        extended = (1.0 - extended.to(dtype)) * torch.finfo(dtype).min
        encoder_extended = None
        if encoder_hidden_states is not None:
            if encoder_attention_mask is None:
                encoder_attention_mask = torch.ones(encoder_hidden_states.shape[:2], device=input_ids.device)
            encoder_extended = (1.0 - encoder_attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

        hidden_states = self.dropout(inputs_embeds)
        position_bias = encoder_decoder_position_bias = None
        presents = () if use_cache else None
        for i, block in enumerate(self.block):
            past = None if past_key_values is None else past_key_values[i]
            block_args = (hidden_states, extended, position_bias, encoder_hidden_states, encoder_extended,
                          encoder_decoder_position_bias, past, use_cache)
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                # the block's activations are recomputed in the backward pass instead of kept
                hidden_states, present, position_bias, encoder_decoder_position_bias = checkpoint(
                    block, *block_args, use_reentrant=False)
            else:
                hidden_states, present, position_bias, encoder_decoder_position_bias = block(*block_args)
            if use_cache:
                presents = presents + (present,)
        hidden_states = self.dropout(self.final_layer_norm(hidden_states))
        return hidden_states, presents


def ban_repeated_ngrams(scores, sequences, ngram_size):
    """Sets to -inf, per row, each token that would complete an ngram the row has generated already."""
    if ngram_size <= 0 or sequences.shape[-1] < ngram_size:
        return scores
    for i, tokens in enumerate(sequences.tolist()):
        seen = {}
        for ngram in zip(*[tokens[k:] for k in range(ngram_size)]):
            seen.setdefault(tuple(ngram[:-1]), []).append(ngram[-1])
        banned = seen.get(tuple(tokens[len(tokens) - ngram_size + 1:]), [])
        scores[i, banned] = -float("inf")
    return scores


class T5ForConditionalGeneration(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.model_dim = config.d_model
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.shared.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        f = self.config.initializer_factor
        d_model, d_kv, heads = self.config.d_model, self.config.d_kv, self.config.num_heads
        if isinstance(module, T5LayerNorm):
            module.weight.data.fill_(f)
        elif isinstance(module, T5ForConditionalGeneration):
            module.shared.weight.data.normal_(mean=0.0, std=f * 1.0)
        elif isinstance(module, T5DenseGatedActDense):
            module.wi_0.weight.data.normal_(mean=0.0, std=f * d_model ** -0.5)
            module.wi_1.weight.data.normal_(mean=0.0, std=f * d_model ** -0.5)
            module.wo.weight.data.normal_(mean=0.0, std=f * self.config.d_ff ** -0.5)
        elif isinstance(module, T5Attention):
            # the query's std carries the 1/sqrt(d_kv) the attention leaves out
            module.q.weight.data.normal_(mean=0.0, std=f * (d_model * d_kv) ** -0.5)
            module.k.weight.data.normal_(mean=0.0, std=f * d_model ** -0.5)
            module.v.weight.data.normal_(mean=0.0, std=f * d_model ** -0.5)
            module.o.weight.data.normal_(mean=0.0, std=f * (heads * d_kv) ** -0.5)
            if module.has_relative_attention_bias:
                module.relative_attention_bias.weight.data.normal_(mean=0.0, std=f * d_model ** -0.5)

    def _shift_right(self, input_ids):
        start, pad = self.config.decoder_start_token_id, self.config.pad_token_id
        shifted = input_ids.new_zeros(input_ids.shape)
        shifted[..., 1:] = input_ids[..., :-1].clone()
        shifted[..., 0] = start
        # the labels' -100 (ignored by the loss) must not reach the embedding
        shifted.masked_fill_(shifted == -100, pad)
        return shifted

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                labels=None, encoder_outputs=None, past_key_values=None, use_cache=False):
        """Returns (loss or None, logits, past_key_values or None, encoder hidden states)."""
        if encoder_outputs is None:
            encoder_outputs, _ = self.encoder(input_ids, attention_mask)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self._shift_right(labels)
        sequence_output, presents = self.decoder(decoder_input_ids, decoder_attention_mask, encoder_outputs,
                                                 attention_mask, past_key_values, use_cache)
        # the tied head: rescale, or the embeddings' unit std would make the logits d_model times too large
        sequence_output = sequence_output * (self.model_dim ** -0.5)
        lm_logits = self.lm_head(sequence_output)
        loss = None
        if labels is not None:
            loss_fct = nn.CrossEntropyLoss(ignore_index=-100, label_smoothing=self.config.label_smoothing)
            loss = loss_fct(lm_logits.view(-1, lm_logits.size(-1)), labels.view(-1))
        return loss, lm_logits, presents, encoder_outputs

    @staticmethod
    def _reorder_cache(past_key_values, beam_idx):
        return tuple(tuple(state.index_select(0, beam_idx) for state in layer) for layer in past_key_values)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask=None, max_new_tokens=10, num_beams=1, length_penalty=1.0,
                 use_cache=True, no_repeat_ngram_size=0):
        """Greedy (num_beams=1) or beam search. Returns (sequences [B, 1 + steps] starting with the decoder start
        token, pad after eos; scores [B]: the sum of the chosen tokens' log-probabilities, for beams divided by
        length ** length_penalty). no_repeat_ngram_size > 0 bans the tokens that would repeat an ngram of that
        size."""
        if num_beams > 1:
            return self._beam_search(input_ids, attention_mask, max_new_tokens, num_beams, length_penalty,
                                     use_cache, no_repeat_ngram_size)
        cfg = self.config
        batch_size = input_ids.shape[0]
        encoder_outputs, _ = self.encoder(input_ids, attention_mask)
        sequences = torch.full((batch_size, 1), cfg.decoder_start_token_id, dtype=torch.long,
                               device=input_ids.device)
        scores = torch.zeros(batch_size, device=input_ids.device)
        finished = torch.zeros(batch_size, dtype=torch.bool, device=input_ids.device)
        past = None
        for _ in range(max_new_tokens):
            step_ids = sequences[:, -1:] if use_cache else sequences
            _, logits, past, _ = self(attention_mask=attention_mask, decoder_input_ids=step_ids,
                                      encoder_outputs=encoder_outputs, past_key_values=past, use_cache=use_cache)
            log_probs = F.log_softmax(logits[:, -1, :].float(), dim=-1)
            log_probs = ban_repeated_ngrams(log_probs, sequences[:, 1:], no_repeat_ngram_size)
            next_tokens = torch.argmax(log_probs, dim=-1)
            token_scores = log_probs.gather(-1, next_tokens[:, None]).squeeze(-1)
            scores = scores + torch.where(finished, torch.zeros_like(token_scores), token_scores)
            next_tokens = torch.where(finished, torch.full_like(next_tokens, cfg.pad_token_id), next_tokens)
            sequences = torch.cat([sequences, next_tokens[:, None]], dim=-1)
            finished = finished | (next_tokens == cfg.eos_token_id)
            if finished.all():
                break
        return sequences, scores

    def _beam_search(self, input_ids, attention_mask, max_new_tokens, num_beams, length_penalty, use_cache,
                     no_repeat_ngram_size):
        cfg = self.config
        device = input_ids.device
        batch_size = input_ids.shape[0]
        vocab_size = cfg.vocab_size
        # every row of the batch repeated num_beams times, beams of one row next to each other
        expand = torch.arange(batch_size, device=device).repeat_interleave(num_beams)
        encoder_outputs, _ = self.encoder(input_ids, attention_mask)
        encoder_outputs = encoder_outputs.index_select(0, expand)
        if attention_mask is not None:
            attention_mask = attention_mask.index_select(0, expand)
        sequences = torch.full((batch_size * num_beams, 1), cfg.decoder_start_token_id, dtype=torch.long,
                               device=device)
        # only the first beam of each row is live at the start, or all beams would pick the same tokens
        beam_scores = torch.zeros(batch_size, num_beams, device=device)
        beam_scores[:, 1:] = -1e9
        beam_scores = beam_scores.view(-1)
        finished = torch.zeros(batch_size * num_beams, dtype=torch.bool, device=device)
        lengths = torch.zeros(batch_size * num_beams, dtype=torch.long, device=device)
        # a finished beam may only continue with pad, at no cost
        pad_only = torch.full((vocab_size,), float("-inf"), device=device)
        pad_only[cfg.pad_token_id] = 0.0
        offsets = (torch.arange(batch_size, device=device) * num_beams)[:, None]
        past = None
        for _ in range(max_new_tokens):
            step_ids = sequences[:, -1:] if use_cache else sequences
            _, logits, past, _ = self(attention_mask=attention_mask, decoder_input_ids=step_ids,
                                      encoder_outputs=encoder_outputs, past_key_values=past, use_cache=use_cache)
            log_probs = F.log_softmax(logits[:, -1, :].float(), dim=-1)
            log_probs = ban_repeated_ngrams(log_probs, sequences[:, 1:], no_repeat_ngram_size)
            log_probs = torch.where(finished[:, None], pad_only[None, :], log_probs)
            candidates = (beam_scores[:, None] + log_probs).view(batch_size, num_beams * vocab_size)
            top_scores, top_indices = torch.topk(candidates, num_beams, dim=1, largest=True, sorted=True)
            beam_indices = top_indices // vocab_size
            next_tokens = top_indices % vocab_size
            beam_idx = (beam_indices + offsets).view(-1)
            sequences = torch.cat([sequences.index_select(0, beam_idx), next_tokens.view(-1, 1)], dim=-1)
            if use_cache:
                past = self._reorder_cache(past, beam_idx)
            was_finished = finished.index_select(0, beam_idx)
            lengths = lengths.index_select(0, beam_idx) + (~was_finished).long()
            finished = was_finished | (next_tokens.view(-1) == cfg.eos_token_id)
            beam_scores = top_scores.view(-1)
            if finished.all():
                break
        normalized = (beam_scores / lengths.float() ** length_penalty).view(batch_size, num_beams)
        best = normalized.argmax(dim=-1)
        steps = sequences.shape[-1]
        best_sequences = sequences.view(batch_size, num_beams, steps).gather(
            1, best[:, None, None].expand(batch_size, 1, steps)).squeeze(1)
        return best_sequences, normalized.gather(1, best[:, None]).squeeze(1)
