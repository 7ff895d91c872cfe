"""A small message-passing GNN for graph classification, written the way public GNN code without a graph
library is written (imports torch only; loaded with vibetensor swapped in by tests/models/swap_import.py):
  - a batch of graphs is one big graph: x [N, F], edge_index [2, E] (source row, target row), batch [N]
    giving each node's graph;
  - GCNConv: self loops, symmetric degree normalisation deg^-1/2 A deg^-1/2 with the degrees from
    torch.bincount / index_add_, messages gathered with index_select and summed with index_add_ (or, with
    sparse=True, one torch.sparse.mm with the normalised adjacency as a sparse COO tensor);
  - GATConv: per-edge attention logits from the source and target projections, a segment softmax over each
    target's incoming edges written by hand (scatter_reduce amax for the shift, index_add_ for the sum),
    several heads concatenated;
  - SAGEConv: neighbour aggregation by scatter_reduce (mean / amax / sum, include_self=False);
  - global mean pooling per graph, a Linear classifier and cross_entropy.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def add_self_loops(edge_index, num_nodes):
    loops = torch.arange(num_nodes, device=edge_index.device)
    return torch.cat([edge_index, torch.stack([loops, loops])], dim=1)


def segment_softmax(scores, index, num_segments):
    """Softmax of scores [E, H] within the groups of rows sharing index [E]."""
    shape = (num_segments,) + tuple(scores.shape[1:])
    expanded = index.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    # shift each group by its max, which needs no gradient: softmax does not depend on it
    smax = torch.full(shape, float("-inf"), dtype=scores.dtype, device=scores.device)
    smax = smax.scatter_reduce(0, expanded, scores.detach(), reduce="amax", include_self=True)
    e = torch.exp(scores - smax.index_select(0, index))
    denom = torch.zeros(shape, dtype=scores.dtype, device=scores.device).index_add_(0, index, e)
    return e / denom.index_select(0, index).clamp_min(1e-16)


class GCNConv(nn.Module):
    def __init__(self, in_features, out_features, sparse=False):
        super().__init__()
        self.sparse = sparse  # aggregate with a sparse normalised adjacency (torch.sparse.mm), as Kipf's code does
        self.lin = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x, edge_index):
        n = x.shape[0]
        src, dst = add_self_loops(edge_index, n)
        deg = torch.bincount(dst, minlength=n).to(x.dtype)
        norm = deg.pow(-0.5)
        weight = norm[src] * norm[dst]
        h = self.lin(x)
        if self.sparse:
            adj = torch.sparse_coo_tensor(torch.stack([dst, src]), weight, (n, n))
            return torch.sparse.mm(adj, h) + self.bias
        msg = h.index_select(0, src) * weight.unsqueeze(-1)
        out = torch.zeros_like(h).index_add_(0, dst, msg)
        return out + self.bias


class GATConv(nn.Module):
    def __init__(self, in_features, out_features, heads=2, negative_slope=0.2, concat=True):
        super().__init__()
        self.heads, self.out_features, self.concat = heads, out_features, concat
        self.negative_slope = negative_slope
        self.lin = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_features))
        self.bias = nn.Parameter(torch.zeros(heads * out_features if concat else out_features))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        self.last_attention = None

    def forward(self, x, edge_index):
        n = x.shape[0]
        src, dst = add_self_loops(edge_index, n)
        h = self.lin(x).view(n, self.heads, self.out_features)
        a_src = (h * self.att_src).sum(-1)  # [N, H]
        a_dst = (h * self.att_dst).sum(-1)
        logits = F.leaky_relu(a_src[src] + a_dst[dst], self.negative_slope)  # [E, H]
        alpha = segment_softmax(logits, dst, n)
        self.last_attention = alpha.detach()
        msg = h[src] * alpha.unsqueeze(-1)  # [E, H, C]
        out = h.new_zeros(n, self.heads, self.out_features)
        out.index_add_(0, dst, msg)
        out = out.reshape(n, -1) if self.concat else out.mean(1)
        return out + self.bias


class SAGEConv(nn.Module):
    """GraphSAGE: the node's own features next to an aggregate of its neighbours' (scatter_reduce mean, amax or
    sum, include_self=False so that a node without neighbours aggregates to zero)."""

    def __init__(self, in_features, out_features, aggr="mean"):
        super().__init__()
        if aggr not in ("mean", "amax", "sum"):
            raise ValueError(f"aggr must be 'mean', 'amax' or 'sum', got {aggr!r}")
        self.aggr = aggr
        self.lin_self = nn.Linear(in_features, out_features)
        self.lin_neigh = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x, edge_index):
        src, dst = edge_index
        msg = x.index_select(0, src)
        index = dst.unsqueeze(-1).expand_as(msg)
        agg = x.new_zeros(x.shape).scatter_reduce(0, index, msg, reduce=self.aggr, include_self=False)
        return self.lin_self(x) + self.lin_neigh(agg)


def global_mean_pool(x, batch, num_graphs=None):
    if num_graphs is None:
        num_graphs = int(batch.max().item()) + 1
    counts = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(x.dtype)
    sums = x.new_zeros(num_graphs, x.shape[1]).index_add_(0, batch, x)
    return sums / counts.unsqueeze(1)


class GraphClassifier(nn.Module):
    def __init__(self, in_features=5, hidden=8, classes=3, heads=2, dropout=0.0, first="gcn", aggr="mean"):
        super().__init__()
        self.gcn1 = GCNConv(in_features, hidden) if first == "gcn" else SAGEConv(in_features, hidden, aggr)
        self.gat = GATConv(hidden, hidden, heads=heads)
        self.gcn2 = GCNConv(heads * hidden, hidden)
        self.dropout = dropout
        self.head = nn.Linear(hidden, classes)

    def forward(self, x, edge_index, batch, num_graphs=None):
        h = F.relu(self.gcn1(x, edge_index))
        h = F.dropout(h, self.dropout, self.training)
        h = F.elu(self.gat(h, edge_index))
        h = F.relu(self.gcn2(h, edge_index))
        return self.head(global_mean_pool(h, batch, num_graphs))

    def loss(self, x, edge_index, batch, y):
        return F.cross_entropy(self(x, edge_index, batch, y.shape[0]), y)
