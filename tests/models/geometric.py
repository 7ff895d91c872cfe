"""Geometric deep learning written the way public research code writes it (imports torch only; loaded with
vibetensor swapped in by tests/models/swap_import.py):
  - an E(n)-equivariant graph network (EGNN): messages from node features and squared distances over an
    edge_index, coordinates moved along the (optionally normalised) differences weighted by an MLP whose last
    Linear is xavier-initialised with gain 0.001, the segment sums / means by scatter_add_ (unsorted_segment_sum),
    attention gates, a residual node update;
  - rotation utilities: quaternion to matrix, the continuous 6D representation (Gram-Schmidt with F.normalize and
    torch.cross), and Kabsch alignment by torch.linalg.svd with the determinant sign fix, for an RMSD loss that
    is invariant to rigid motions.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.linalg import det, svd


def unsorted_segment_sum(data, segment_ids, num_segments):
    result = data.new_full((num_segments, data.size(1)), 0)
    segment_ids = segment_ids.unsqueeze(-1).expand(-1, data.size(1))
    result.scatter_add_(0, segment_ids, data)
    return result


def unsorted_segment_mean(data, segment_ids, num_segments):
    ids = segment_ids.unsqueeze(-1).expand(-1, data.size(1))
    result = data.new_full((num_segments, data.size(1)), 0).scatter_add_(0, ids, data)
    count = data.new_full((num_segments, data.size(1)), 0).scatter_add_(0, ids, torch.ones_like(data))
    return result / count.clamp(min=1)


class EGCL(nn.Module):
    def __init__(self, hidden, edge_dim=0, act=nn.SiLU(), residual=True, attention=False, normalize=False,
                 coords_agg="mean", tanh=False, eps=1e-8):
        super().__init__()
        self.residual, self.attention, self.normalize = residual, attention, normalize
        self.coords_agg, self.tanh, self.eps = coords_agg, tanh, eps
        self.edge_mlp = nn.Sequential(nn.Linear(2 * hidden + 1 + edge_dim, hidden), act, nn.Linear(hidden, hidden),
                                      act)
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), act, nn.Linear(hidden, hidden))
        layer = nn.Linear(hidden, 1, bias=False)
        torch.nn.init.xavier_uniform_(layer.weight, gain=0.001)
        coord_mlp = [nn.Linear(hidden, hidden), act, layer]
        if tanh:
            coord_mlp.append(nn.Tanh())
        self.coord_mlp = nn.Sequential(*coord_mlp)
        if attention:
            self.att_mlp = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid())

    def coord2radial(self, edge_index, coord):
        row, col = edge_index
        coord_diff = coord[row] - coord[col]
        radial = torch.sum(coord_diff ** 2, 1).unsqueeze(1)
        if self.normalize:
            norm = torch.sqrt(radial).detach() + self.eps
            coord_diff = coord_diff / norm
        return radial, coord_diff

    def edge_model(self, source, target, radial, edge_attr):
        parts = [source, target, radial] + ([edge_attr] if edge_attr is not None else [])
        out = self.edge_mlp(torch.cat(parts, dim=1))
        if self.attention:
            out = out * self.att_mlp(out)
        return out

    def forward(self, h, edge_index, coord, edge_attr=None):
        row, col = edge_index
        radial, coord_diff = self.coord2radial(edge_index, coord)
        edge_feat = self.edge_model(h[row], h[col], radial, edge_attr)
        trans = coord_diff * self.coord_mlp(edge_feat)
        agg = unsorted_segment_sum if self.coords_agg == "sum" else unsorted_segment_mean
        coord = coord + agg(trans, row, coord.size(0))
        node_agg = unsorted_segment_sum(edge_feat, row, h.size(0))
        out = self.node_mlp(torch.cat([h, node_agg], dim=1))
        return (h + out if self.residual else out), coord


class EGNN(nn.Module):
    def __init__(self, in_node, hidden, out_node, edge_dim=0, n_layers=3, **layer_kw):
        super().__init__()
        self.embedding_in = nn.Linear(in_node, hidden)
        self.embedding_out = nn.Linear(hidden, out_node)
        self.layers = nn.ModuleList([EGCL(hidden, edge_dim, **layer_kw) for _ in range(n_layers)])

    def forward(self, h, x, edges, edge_attr=None):
        h = self.embedding_in(h)
        for layer in self.layers:
            h, x = layer(h, edges, x, edge_attr)
        return self.embedding_out(h), x


def full_edges(n, device=None):
    """Both directions of every pair of distinct nodes, as a [2, n(n-1)] edge_index."""
    idx = torch.arange(n, device=device)
    row, col = torch.meshgrid(idx, idx, indexing="ij")
    mask = row != col
    return torch.stack([row[mask], col[mask]])


def quaternion_to_matrix(q):
    """Unit quaternions (r, i, j, k) [..., 4] to rotation matrices [..., 3, 3]."""
    r, i, j, k = torch.unbind(q, -1)
    two_s = 2.0 / (q * q).sum(-1)
    o = torch.stack((
        1 - two_s * (j * j + k * k), two_s * (i * j - k * r), two_s * (i * k + j * r),
        two_s * (i * j + k * r), 1 - two_s * (i * i + k * k), two_s * (j * k - i * r),
        two_s * (i * k - j * r), two_s * (j * k + i * r), 1 - two_s * (i * i + j * j),
    ), -1)
    return o.reshape(q.shape[:-1] + (3, 3))


def rotation_6d_to_matrix(d6):
    """Zhou et al.'s continuous representation: Gram-Schmidt on two 3-vectors, rows of the matrix."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = F.normalize(b2, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def kabsch(P, Q):
    """The rotation R [B, 3, 3] and translation t [B, 1, 3] minimising |P R^T + t - Q| (P, Q [B, N, 3])."""
    p_mean, q_mean = P.mean(1, keepdim=True), Q.mean(1, keepdim=True)
    H = (P - p_mean).transpose(1, 2) @ (Q - q_mean)
    U, S, Vh = svd(H)
    d = torch.sign(det(Vh.transpose(1, 2) @ U.transpose(1, 2)))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    R = Vh.transpose(1, 2) @ D @ U.transpose(1, 2)
    t = q_mean - p_mean @ R.transpose(1, 2)
    return R, t


def aligned_rmsd(P, Q):
    """RMSD after the optimal rigid alignment of P onto Q: invariant to rotating or moving either."""
    R, t = kabsch(P, Q)
    return torch.sqrt(((P @ R.transpose(1, 2) + t - Q) ** 2).sum(-1).mean(-1) + 1e-12)
