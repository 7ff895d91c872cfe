"""A BERT-style encoder written the way public model code is written (imports torch only; loaded with vibetensor
swapped in by tests/models/swap_import.py):
  - word + position + token-type embeddings, summed, then LayerNorm and dropout;
  - padding masks built from sequence lengths: a bool [B, T] mask, widened to an additive float mask
    [B, 1, 1, T] with finfo(dtype).min (masked_fill) as Hugging Face code does;
  - self-attention written by hand (view / transpose / matmul / softmax / dropout), or through
    nn.MultiheadAttention(batch_first=True) with key_padding_mask (config.attention = "mha");
  - post-norm layers with a GELU MLP; a pooler (tanh of a dense layer on the [CLS] token);
  - heads: masked-LM (transform + LayerNorm + decoder tied to the word embeddings, ignore_index=-100 labels)
    and sequence classification on the pooled output.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BertConfig:
    vocab_size: int = 60
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 64
    max_position_embeddings: int = 32
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    num_labels: int = 3
    attention: str = "manual"  # or "mha": nn.MultiheadAttention with key_padding_mask


def padding_mask(lengths, max_len):
    """True at the real tokens of each row, False at the padding: [B, max_len] bool."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def extended_attention_mask(mask, dtype):
    """[B, T] (bool or 0/1) -> additive [B, 1, 1, T]: 0 where attended, the most negative finite value elsewhere
    (finite, so that a row with every key masked softmaxes to uniform instead of NaN)."""
    ext = mask[:, None, None, :].to(dtype)
    return (1.0 - ext) * torch.finfo(dtype).min


class BertEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.register_buffer("position_ids", torch.arange(cfg.max_position_embeddings).expand((1, -1)),
                             persistent=False)

    def forward(self, input_ids, token_type_ids=None):
        seq_len = input_ids.size(1)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = self.position_ids[:, :seq_len]
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ValueError(f"hidden size {cfg.hidden_size} is not a multiple of the number of attention heads "
                             f"({cfg.num_attention_heads})")
        self.num_heads = cfg.num_attention_heads
        self.head_size = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = nn.Dropout(cfg.attention_probs_dropout_prob)

    def split_heads(self, x):
        return x.view(x.size()[:-1] + (self.num_heads, self.head_size)).permute(0, 2, 1, 3)

    def forward(self, hidden, additive_mask=None, bool_mask=None):
        q = self.split_heads(self.query(hidden))
        k = self.split_heads(self.key(hidden))
        v = self.split_heads(self.value(hidden))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
        if additive_mask is not None:
            scores = scores + additive_mask
        if bool_mask is not None:  # True = attend
            scores = scores.masked_fill(~bool_mask[:, None, None, :], torch.finfo(scores.dtype).min)
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.num_heads * self.head_size,))


class BertAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.use_mha = cfg.attention == "mha"
        if self.use_mha:
            self.self = nn.MultiheadAttention(cfg.hidden_size, cfg.num_attention_heads,
                                              dropout=cfg.attention_probs_dropout_prob, batch_first=True)
        else:
            self.self = BertSelfAttention(cfg)
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, hidden, attention_mask, mask_kind):
        if self.use_mha:  # key_padding_mask is True at the keys to ignore
            ctx, _ = self.self(hidden, hidden, hidden, key_padding_mask=~attention_mask, need_weights=False)
        elif mask_kind == "bool":
            ctx = self.self(hidden, bool_mask=attention_mask)
        else:
            ctx = self.self(hidden, additive_mask=extended_attention_mask(attention_mask, hidden.dtype))
        return self.LayerNorm(self.dropout(self.dense(ctx)) + hidden)


class BertLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, hidden, attention_mask, mask_kind):
        a = self.attention(hidden, attention_mask, mask_kind)
        h = self.output(F.gelu(self.intermediate(a)))
        return self.LayerNorm(self.dropout(h) + a)


class BertModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, mask_kind="additive"):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        attention_mask = attention_mask.bool()
        hidden = self.embeddings(input_ids, token_type_ids)
        for layer in self.encoder:
            hidden = layer(hidden, attention_mask, mask_kind)
        pooled = torch.tanh(self.pooler(hidden[:, 0]))
        return hidden, pooled


class BertPreTrainedModel(nn.Module):
    def init_weights(self):
        std = self.config.initializer_range

        def init(module):
            if isinstance(module, nn.Linear):
                module.weight.data.normal_(mean=0.0, std=std)
                if module.bias is not None:
                    module.bias.data.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.data.normal_(mean=0.0, std=std)
                if module.padding_idx is not None:
                    module.weight.data[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                module.bias.data.zero_()
                module.weight.data.fill_(1.0)
        self.apply(init)


class BertForMaskedLM(BertPreTrainedModel):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg)
        self.transform = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.transform_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        self.init_weights()
        self.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, mask_kind="additive"):
        hidden, _ = self.bert(input_ids, attention_mask, token_type_ids, mask_kind)
        logits = self.decoder(self.transform_norm(F.gelu(self.transform(hidden))))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, self.config.vocab_size), labels.view(-1), ignore_index=-100)
        return loss, logits


class BertForSequenceClassification(BertPreTrainedModel):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, mask_kind="additive"):
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids, mask_kind)
        logits = self.classifier(self.dropout(pooled))
        loss = None if labels is None else nn.CrossEntropyLoss()(logits, labels)
        return loss, logits


class SentenceEncoder(nn.Module):
    """The same embeddings under torch's own nn.TransformerEncoder (GELU, post-norm, batch_first), mean-pooled into
    a sentence vector the way sentence-embedding code does it: the sum over positions divided by the lengths,
    which counts on the encoder returning zeros at the padding in inference (torch's nested-tensor fast path)."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = BertEmbeddings(cfg)
        layer = nn.TransformerEncoderLayer(cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
                                           dropout=cfg.hidden_dropout_prob, activation="gelu",
                                           layer_norm_eps=cfg.layer_norm_eps, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.num_hidden_layers)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids),
                              src_key_padding_mask=attention_mask == 0)
        if self.training or torch.is_grad_enabled():  # no fast path: mask the padding out by hand
            hidden = hidden * attention_mask.unsqueeze(-1).to(hidden.dtype)
        return hidden, hidden.sum(dim=1) / attention_mask.sum(dim=1, keepdim=True).to(hidden.dtype)


def mask_tokens(input_ids, attention_mask, vocab_size, mask_token_id, generator, prob=0.15):
    """BERT's MLM corruption: pick ~prob of the real tokens; labels keep them (-100 elsewhere); of the picked,
    80% become [MASK], 10% a random token, 10% stay."""
    labels = input_ids.clone()
    probs = torch.full(input_ids.shape, prob)
    picked = torch.bernoulli(probs, generator=generator).bool() & attention_mask.bool()
    labels[~picked] = -100
    inputs = input_ids.clone()
    masked = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & picked
    inputs[masked] = mask_token_id
    rand = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & picked & ~masked
    inputs[rand] = torch.randint(vocab_size, input_ids.shape, generator=generator)[rand]
    return inputs, labels
