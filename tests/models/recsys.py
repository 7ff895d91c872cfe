"""Recommendation models written the way public recsys code writes them: a DLRM (bottom MLP over dense features,
EmbeddingBag tables over multi-hot sparse features given as input + offsets (one of them quotient-remainder
compressed through F.embedding_bag), plain Embedding tables over one-hot ones, the pairwise dot interaction, a
top MLP, BCEWithLogitsLoss with pos_weight), a Wide&Deep model (a wide linear part over hashed feature crosses
built with int64 arithmetic and bitwise ops, a deep MLP over embeddings) and a two-tower retrieval model
(in-batch softmax with a logQ correction from numpy sampling probabilities,
L2-normalised towers, a temperature, histories pooled by EmbeddingBag or torch.segment_reduce); the metrics
(AUC from argsort ranks and by the trapezoidal rule, logloss, recall@k) in torch ops, the optimizer split recsys
code uses (Adagrad for embedding tables, Adam for the dense layers) and a warmup/decay _LRScheduler policy."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(sizes, last_relu=True):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if last_relu or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DotInteraction(nn.Module):
    """Pairwise dot products of the feature vectors (dense first), the strictly upper triangle, after the dense
    vector. The triangle comes from torch.triu_indices each call, or from index buffers built once."""

    def __init__(self, num_features, precomputed=False):
        super().__init__()
        self.num_features = num_features
        self.precomputed = precomputed
        if precomputed:
            li = torch.tensor([i for i in range(num_features) for j in range(i + 1, num_features)])
            lj = torch.tensor([j for i in range(num_features) for j in range(i + 1, num_features)])
            self.register_buffer("li", li, persistent=False)
            self.register_buffer("lj", lj, persistent=False)

    @property
    def out_features_extra(self):
        return self.num_features * (self.num_features - 1) // 2

    def forward(self, dense, sparse):
        batch, dim = dense.shape
        t = torch.cat([dense] + sparse, dim=1).view((batch, -1, dim))
        z = torch.bmm(t, torch.transpose(t, 1, 2))
        if self.precomputed:
            zflat = z[:, self.li, self.lj]
        else:
            li, lj = torch.triu_indices(self.num_features, self.num_features, offset=1, device=z.device)
            zflat = z[:, li, lj]
        return torch.cat([dense, zflat], dim=1)


class QREmbeddingBag(nn.Module):
    """The quotient-remainder trick: a table of num_embeddings rows stored as two small ones, the quotient's and
    the remainder's, combined elementwise; the same input/offsets/per_sample_weights interface as EmbeddingBag."""

    def __init__(self, num_embeddings, embedding_dim, num_collisions, mode="sum", operation="mult",
                 include_last_offset=False):
        super().__init__()
        self.include_last_offset = include_last_offset
        self.num_collisions = num_collisions
        self.operation = operation
        self.weight_q = nn.Parameter(torch.empty(int(np.ceil(num_embeddings / num_collisions)), embedding_dim))
        self.weight_r = nn.Parameter(torch.empty(num_collisions, embedding_dim))
        self.mode = mode
        nn.init.uniform_(self.weight_q, -np.sqrt(1 / num_embeddings), np.sqrt(1 / num_embeddings))
        nn.init.uniform_(self.weight_r, -np.sqrt(1 / num_embeddings), np.sqrt(1 / num_embeddings))

    def forward(self, input, offsets=None, per_sample_weights=None):
        input_q = (input / self.num_collisions).long()
        input_r = torch.remainder(input, self.num_collisions).long()
        embed_q = F.embedding_bag(input_q, self.weight_q, offsets, mode=self.mode,
                                  per_sample_weights=per_sample_weights, include_last_offset=self.include_last_offset)
        embed_r = F.embedding_bag(input_r, self.weight_r, offsets, mode=self.mode,
                                  per_sample_weights=per_sample_weights, include_last_offset=self.include_last_offset)
        return embed_q * embed_r if self.operation == "mult" else embed_q + embed_r


class RecModel(nn.Module):
    """Names its embedding tables (TABLES: parameter-name prefixes) apart from the dense layers."""
    TABLES = ()

    def embedding_parameters(self):
        return [p for name, p in self.named_parameters() if name.startswith(self.TABLES)]

    def dense_parameters(self):
        return [p for name, p in self.named_parameters() if not name.startswith(self.TABLES)]


class DLRM(RecModel):
    TABLES = ("bags.", "embs.")

    def __init__(self, num_dense=4, emb_dim=8, bag_tables=((10, "sum"), (12, "mean"), (9, "max")),
                 onehot_tables=(7, 5), bottom=(16,), top=(16, 8), include_last_offset=False, padding_idx=None,
                 precomputed_index=False, qr_table=None):
        super().__init__()
        self.bottom_mlp = mlp([num_dense, *bottom, emb_dim])
        self.bags = nn.ModuleList(
            nn.EmbeddingBag(n, emb_dim, mode=mode, include_last_offset=include_last_offset,
                            padding_idx=padding_idx)
            for n, mode in bag_tables)
        if qr_table is not None:  # one more multi-hot table, quotient-remainder compressed (a sum bag)
            self.bags.append(QREmbeddingBag(qr_table[0], emb_dim, qr_table[1],
                                            include_last_offset=include_last_offset))
        self.embs = nn.ModuleList(nn.Embedding(n, emb_dim, sparse=False) for n in onehot_tables)
        self.interaction = DotInteraction(1 + len(self.bags) + len(onehot_tables), precomputed_index)
        self.top_mlp = mlp([emb_dim + self.interaction.out_features_extra, *top, 1], last_relu=False)
        self._init_weights()

    def init_from_numpy(self, seed):
        """The reference DLRM's initialisation, drawn with numpy and assigned through .data: the same seed gives
        the same weights under any torch-like library."""
        rng = np.random.default_rng(seed)
        for table in list(self.bags) + list(self.embs):
            if isinstance(table, QREmbeddingBag):
                for w in (table.weight_q, table.weight_r):
                    w.data = torch.from_numpy(rng.uniform(-0.05, 0.05, size=tuple(w.shape)).astype(np.float32))
                continue
            n, m = table.weight.shape
            w = rng.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 / n), size=(n, m)).astype(np.float32)
            if getattr(table, "padding_idx", None) is not None:
                w[table.padding_idx] = 0
            table.weight.data = torch.tensor(w, requires_grad=True)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                fan_out, fan_in = m.weight.shape
                w = rng.normal(0.0, np.sqrt(2 / (fan_in + fan_out)), size=(fan_out, fan_in)).astype(np.float32)
                b = rng.normal(0.0, np.sqrt(1 / fan_out), size=fan_out).astype(np.float32)
                m.weight.data = torch.tensor(w, requires_grad=True)
                m.bias.data = torch.tensor(b, requires_grad=True)
        return self

    @torch.no_grad()
    def _init_weights(self):
        # uniform(+-1/sqrt(rows)) tables and Glorot-style normal linears, as the reference DLRM does
        for table in list(self.bags) + list(self.embs):
            if isinstance(table, QREmbeddingBag):
                continue  # initialised by its own constructor
            n = table.weight.shape[0]
            nn.init.uniform_(table.weight, -math.sqrt(1 / n), math.sqrt(1 / n))
            if getattr(table, "padding_idx", None) is not None:
                table.weight[table.padding_idx].fill_(0)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                fan_out, fan_in = m.weight.shape
                nn.init.normal_(m.weight, 0.0, math.sqrt(2 / (fan_in + fan_out)))
                nn.init.normal_(m.bias, 0.0, math.sqrt(1 / fan_out))

    def forward(self, dense, bag_inputs, onehot):
        """dense (B, num_dense); bag_inputs a list of (indices, offsets, per_sample_weights or None) per bag
        table; onehot (B, len(onehot_tables)) int64. Returns logits (B,)."""
        x = self.bottom_mlp(dense)
        ly = [bag(idx, off, per_sample_weights=w) for bag, (idx, off, w) in zip(self.bags, bag_inputs)]
        ly += [emb(onehot[:, k]) for k, emb in enumerate(self.embs)]
        z = self.interaction(x, ly)
        return self.top_mlp(z).squeeze(-1)


def hash_cross(a, b, salt, buckets):
    """A bucket for each pair of int64 ids: a multiplicative hash mixed with xor and shifts, kept non-negative
    with a mask, then a remainder (a signed difference goes through torch.remainder, Python's sign rule)."""
    h = (a * 1000003) ^ (b * 8191 + salt)
    h = h ^ (h >> 7)
    h = (h & 0x7FFFFFFF) | (a << 3 & 0xF0)
    skew = torch.remainder(a - 3 * b - salt, 11)  # a - 3b is often negative
    return (h + skew) % buckets


class LRPolicyScheduler(torch.optim.lr_scheduler._LRScheduler):
    """Linear warmup, a constant stretch, then a quadratic decay to zero, counted in optimizer steps."""

    def __init__(self, optimizer, num_warmup_steps, decay_start_step, num_decay_steps):
        self.num_warmup_steps = num_warmup_steps
        self.decay_start_step = decay_start_step
        self.decay_end_step = decay_start_step + num_decay_steps
        self.num_decay_steps = num_decay_steps
        super().__init__(optimizer)

    def get_lr(self):
        step = self._step_count
        if step < self.num_warmup_steps:
            scale = 1.0 - (self.num_warmup_steps - step) / self.num_warmup_steps
        elif self.decay_start_step <= step < self.decay_end_step:
            scale = ((self.decay_end_step - step) / self.num_decay_steps) ** 2
        elif step >= self.decay_end_step:
            scale = 0.0
        else:
            scale = 1.0
        return [base_lr * scale for base_lr in self.base_lrs]


class WideAndDeep(RecModel):
    TABLES = ("wide.", "deep_embs.")

    def __init__(self, field_sizes=(6, 9, 5), emb_dim=4, cross_buckets=37, hidden=(16, 8), num_dense=3):
        super().__init__()
        self.field_sizes = field_sizes
        self.cross_buckets = cross_buckets
        self.pairs = [(i, j) for i in range(len(field_sizes)) for j in range(i + 1, len(field_sizes))]
        self.pairs.append((0, len(field_sizes)))  # field 0 x the bucketized dense feature
        self.register_buffer("boundaries", torch.tensor([-1.0, -0.3, 0.0, 0.3, 1.0]))
        # the wide part: one weight per raw id and per crossed bucket, summed (a linear over one-hot features)
        self.register_buffer("field_offsets", torch.tensor([0, *np.cumsum(field_sizes)[:-1].tolist()]))
        self.wide = nn.EmbeddingBag(sum(field_sizes) + cross_buckets * len(self.pairs), 1, mode="sum")
        self.wide_bias = nn.Parameter(torch.zeros(1))
        self.deep_embs = nn.ModuleList(nn.Embedding(n, emb_dim) for n in field_sizes)
        self.deep = mlp([emb_dim * len(field_sizes) + num_dense, *hidden, 1], last_relu=False)
        nn.init.zeros_(self.wide.weight)

    def wide_ids(self, ids, dense):
        raw = ids + self.field_offsets
        base = sum(self.field_sizes)
        # the first dense feature, bucketized, is crossed with the first field like an id
        bucket = torch.bucketize(dense[:, 0].contiguous(), self.boundaries)
        cols = [ids[:, i] for i in range(ids.shape[1])] + [bucket]
        crosses = [base + k * self.cross_buckets + hash_cross(cols[i], cols[j], k, self.cross_buckets)
                   for k, (i, j) in enumerate(self.pairs)]
        return torch.cat([raw, torch.stack(crosses, dim=1)], dim=1)

    def forward(self, ids, dense):
        wide = self.wide(self.wide_ids(ids, dense)).squeeze(-1) + self.wide_bias
        deep_in = torch.cat([emb(ids[:, k]) for k, emb in enumerate(self.deep_embs)] + [dense], dim=-1)
        return wide + self.deep(deep_in).squeeze(-1)


class Tower(nn.Module):
    """An id embedding and a mean-pooled history: an EmbeddingBag, or (jagged=True) an Embedding lookup of the
    whole history reduced per row with torch.segment_reduce (initial 0: an empty history pools to zeros)."""

    def __init__(self, num_ids, num_hist, dim, hidden, out_dim, jagged=False):
        super().__init__()
        self.jagged = jagged
        self.id_emb = nn.Embedding(num_ids, dim)
        if jagged:
            self.hist = nn.Embedding(num_hist, dim)
        else:
            self.hist = nn.EmbeddingBag(num_hist, dim, mode="mean", include_last_offset=True)
        self.mlp = mlp([2 * dim, hidden, out_dim], last_relu=False)

    def forward(self, ids, hist, hist_offsets):
        if self.jagged:
            lengths = hist_offsets[1:] - hist_offsets[:-1]
            pooled = torch.segment_reduce(self.hist(hist), "mean", lengths=lengths, initial=0.0)
        else:
            pooled = self.hist(hist, hist_offsets)
        x = torch.cat([self.id_emb(ids), pooled], dim=-1)
        return F.normalize(self.mlp(x), p=2, dim=-1)


class TwoTower(RecModel):
    TABLES = ("user_tower.id_emb.", "user_tower.hist.", "item_tower.id_emb.", "item_tower.hist.")

    def __init__(self, num_users=11, num_items=17, dim=6, hidden=12, out_dim=8, temperature=0.1):
        super().__init__()
        self.user_tower = Tower(num_users, num_items, dim, hidden, out_dim)
        self.item_tower = Tower(num_items, num_users, dim, hidden, out_dim, jagged=True)
        self.temperature = temperature

    def forward(self, users, user_hist, user_off, items, item_hist, item_off):
        u = self.user_tower(users, user_hist, user_off)
        v = self.item_tower(items, item_hist, item_off)
        return u, v

    def in_batch_loss(self, u, v, log_q, item_ids=None):
        """Softmax over the batch's items, each logit corrected by the log of its sampling probability; with
        item_ids, an item repeated in the batch is no negative for its other rows (accidental hits masked)."""
        logits = torch.matmul(u, v.t()) / self.temperature
        logits = logits - log_q.unsqueeze(0)
        if item_ids is not None:
            same = item_ids.unsqueeze(1) == item_ids.unsqueeze(0)
            eye = torch.eye(len(item_ids), dtype=torch.bool, device=logits.device)
            logits = logits.masked_fill(same & ~eye, float("-inf"))
        labels = torch.arange(logits.shape[0], device=logits.device)
        return F.cross_entropy(logits, labels)


def sampling_log_q(item_ids, item_counts, device=None):
    """log P(item sampled into a batch) from the training-set frequencies, computed in numpy."""
    probs = item_counts.astype(np.float64) / item_counts.sum()
    return torch.from_numpy(np.log(probs[item_ids]).astype(np.float32)).to(device)


def auc(scores, labels):
    """ROC AUC from the rank sum of the positives (Mann-Whitney), ranks from argsort."""
    n = scores.shape[0]
    order = torch.argsort(scores)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, n + 1, device=scores.device)
    pos = labels > 0.5
    n_pos = pos.sum()
    n_neg = n - n_pos
    return (ranks[pos].double().sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_auc_trapezoid(scores, labels):
    """ROC AUC as the area under (false positive rate, true positive rate) over descending score thresholds."""
    order = torch.argsort(scores, descending=True)
    hits = labels[order]
    tps = torch.cumsum(hits, dim=0)
    fps = torch.cumsum(1 - hits, dim=0)
    zero = torch.zeros(1, dtype=tps.dtype, device=tps.device)
    tpr = torch.cat([zero, tps / tps[-1]])
    fpr = torch.cat([zero, fps / fps[-1]])
    return torch.trapezoid(tpr, fpr)


def logloss(logits, labels):
    p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
    return -(labels * torch.log(p) + (1 - labels) * torch.log1p(-p)).mean()


def recall_at_k(scores, targets, k):
    top = torch.topk(scores, k, dim=1).indices
    return (top == targets.unsqueeze(1)).any(dim=1).float().mean()


def make_optimizers(model, adagrad_lr=0.05, adam_lr=3e-3):
    """Adagrad for the embedding tables, Adam for the rest, as DLRM training scripts split them."""
    sparse = torch.optim.Adagrad(model.embedding_parameters(), lr=adagrad_lr, initial_accumulator_value=0.1)
    dense = torch.optim.Adam(model.dense_parameters(), lr=adam_lr, betas=(0.9, 0.98), eps=1e-7)
    return sparse, dense


def grouped_optimizer(model, lr=0.01):
    """One Adagrad with two parameter groups: the tables at a higher rate and no decay."""
    return torch.optim.Adagrad([
        {"params": model.embedding_parameters(), "lr": 5 * lr},
        {"params": model.dense_parameters(), "weight_decay": 1e-4},
    ], lr=lr, lr_decay=0.01)
