"""Point-cloud classifiers and a part segmenter written the way public 3-D deep-learning code writes them (imports
torch only; loaded with vibetensor swapped in by tests/models/swap_import.py). Points are [B, C, N] for the conv
nets, [B, N, 3] for the sampling helpers:
  - PointNet: a T-Net regresses a k x k transform (added to torch.eye(k).flatten(), applied with torch.bmm),
    shared MLPs as Conv1d(kernel 1) + BatchNorm1d, a symmetric max over points (torch.max(x, 2, keepdim=True)[0])
    and the feature-transform regulariser ||I - A A^T||_F (torch.norm); the input T-Net's identity is built as
    the original code builds it (Variable(torch.from_numpy(...)), moved with .cuda() when x.is_cuda);
  - DGCNN's EdgeConv: knn from -|xi - xj|^2 written as -2 x^T x plus squared norms, topk(k, dim=-1)[1], flat
    indices offset by torch.arange(B).view(-1, 1, 1) * N, neighbours gathered from a [B*N, C] view, the centre
    repeated k times, cat(neighbour - centre, centre), Conv2d + LeakyReLU(0.2), max over k; its loss smooths
    one-hot targets made with scatter;
  - PointNet++: farthest point sampling as a loop over npoint (torch.max on running distances; the start points
    are given, where public code draws them with torch.randint), ball query by masking and sorting the point
    indices, grouping by gathered indices, and set abstraction with Conv2d + BatchNorm2d and a max over the group;
  - PointNet++ part segmentation: multi-scale grouping (a ball query and MLP per radius), feature propagation by
    inverse-distance weights of the 3 nearest (sort), class one-hots from torch.eye(n)[labels.numpy(), ],
    model.apply(weights_init) with xavier_normal_ on .data and model.apply to change batch-norm momentum or to
    make the (Leaky)ReLU modules in-place;
  - the accuracy count of training scripts: pred.data.max(1)[1].eq(target.data).cpu().sum().item().
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Variable


class TNet(nn.Module):
    """Predicts a k x k transform of its input [B, k, N], initialised near identity by the added eye."""

    def __init__(self, k=3, width=16):
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv1d(k, width, 1)
        self.conv2 = nn.Conv1d(width, 2 * width, 1)
        self.bn1 = nn.BatchNorm1d(width)
        self.bn2 = nn.BatchNorm1d(2 * width)
        self.fc1 = nn.Linear(2 * width, width)
        self.bn3 = nn.BatchNorm1d(width)
        self.fc2 = nn.Linear(width, k * k)

    def forward(self, x):
        batch = x.size(0)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = torch.max(x, 2, keepdim=True)[0]
        x = x.view(-1, x.size(1))
        x = F.relu(self.bn3(self.fc1(x)))
        x = self.fc2(x)
        # the identity is float32 as public code builds it; adding it keeps x's (wider) dtype
        if self.k == 3:  # the input T-Net's, as the original PointNet code writes it
            iden = Variable(torch.from_numpy(np.array([1, 0, 0, 0, 1, 0, 0, 0, 1]).astype(np.float32)))
            iden = iden.view(1, 9).repeat(batch, 1)
            if x.is_cuda:
                iden = iden.cuda()
        else:
            iden = torch.eye(self.k, device=x.device).flatten().view(1, self.k * self.k).repeat(batch, 1)
        x = x + iden
        return x.view(-1, self.k, self.k)


def feature_transform_regularizer(trans):
    """Mean over the batch of ||I - A A^T||_F: keeps the feature transform close to orthogonal."""
    d = trans.size(1)
    eye = torch.eye(d, dtype=trans.dtype, device=trans.device)[None, :, :]
    return torch.mean(torch.norm(torch.bmm(trans, trans.transpose(2, 1)) - eye, dim=(1, 2)))


class PointNetCls(nn.Module):
    def __init__(self, num_classes=3, width=16, feature_transform=True):
        super().__init__()
        self.stn = TNet(3, width)
        self.conv1 = nn.Conv1d(3, width, 1)
        self.bn1 = nn.BatchNorm1d(width)
        self.feature_transform = feature_transform
        if feature_transform:
            self.fstn = TNet(width, width)
        self.conv2 = nn.Conv1d(width, 2 * width, 1)
        self.bn2 = nn.BatchNorm1d(2 * width)
        self.fc1 = nn.Linear(2 * width, width)
        self.bn3 = nn.BatchNorm1d(width)
        self.fc2 = nn.Linear(width, num_classes)

    def forward(self, x):
        """x [B, 3, N] -> (log-probabilities [B, classes], input transform, feature transform or None)."""
        trans = self.stn(x)
        x = torch.bmm(x.transpose(2, 1), trans).transpose(2, 1)
        x = F.relu(self.bn1(self.conv1(x)))
        trans_feat = None
        if self.feature_transform:
            trans_feat = self.fstn(x)
            x = torch.bmm(x.transpose(2, 1), trans_feat).transpose(2, 1)
        x = self.bn2(self.conv2(x))
        x = torch.max(x, 2, keepdim=True)[0].view(x.size(0), -1)
        x = F.relu(self.bn3(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1), trans, trans_feat


def smoothed_one_hot_loss(pred, gold, eps=0.2):
    """DGCNN's label-smoothed cross-entropy: one-hot targets by scatter, eps spread over the other classes."""
    n_class = pred.size(1)
    one_hot = torch.zeros_like(pred).scatter(1, gold.view(-1, 1), 1)
    one_hot = one_hot * (1 - eps) + (1 - one_hot) * eps / (n_class - 1)
    log_prb = F.log_softmax(pred, dim=1)
    return -(one_hot * log_prb).sum(dim=1).mean()


def correct_count(pred, target):
    """How many argmax predictions hit, as training scripts count them."""
    pred_choice = pred.data.max(1)[1]
    return pred_choice.eq(target.data).cpu().sum().item()


def knn(x, k):
    """Indices [B, N, k] of each point's k nearest points (itself first) in feature space x [B, C, N]."""
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    sq = torch.sum(x ** 2, dim=1, keepdim=True)
    neg_dist = -sq - inner - sq.transpose(2, 1)
    return neg_dist.topk(k=k, dim=-1)[1]


def get_graph_feature(x, k, idx=None):
    """Edge features [B, 2C, N, k]: (neighbour - centre, centre) for each point's k neighbours."""
    b, c, n = x.size()
    if idx is None:
        idx = knn(x, k)
    base = torch.arange(0, b, device=x.device).view(-1, 1, 1) * n
    flat = (idx + base).view(-1)
    x = x.transpose(2, 1).contiguous()
    neighbours = x.view(b * n, -1)[flat, :].view(b, n, k, c)
    centre = x.view(b, n, 1, c).repeat(1, 1, k, 1)
    return torch.cat((neighbours - centre, centre), dim=3).permute(0, 3, 1, 2).contiguous()


class DGCNN(nn.Module):
    def __init__(self, num_classes=3, k=5, width=16, emb=32):
        super().__init__()
        self.k = k
        self.conv1 = nn.Sequential(nn.Conv2d(6, width, kernel_size=1, bias=False), nn.BatchNorm2d(width),
                                   nn.LeakyReLU(negative_slope=0.2))
        self.conv2 = nn.Sequential(nn.Conv2d(2 * width, width, kernel_size=1, bias=False), nn.BatchNorm2d(width),
                                   nn.LeakyReLU(negative_slope=0.2))
        self.conv3 = nn.Sequential(nn.Conv1d(2 * width, emb, kernel_size=1, bias=False), nn.BatchNorm1d(emb),
                                   nn.LeakyReLU(negative_slope=0.2))
        self.linear1 = nn.Linear(2 * emb, width, bias=False)
        self.bn4 = nn.BatchNorm1d(width)
        self.linear2 = nn.Linear(width, num_classes)

    def forward(self, x):
        b = x.size(0)
        x1 = self.conv1(get_graph_feature(x, self.k)).max(dim=-1, keepdim=False)[0]
        x2 = self.conv2(get_graph_feature(x1, self.k)).max(dim=-1, keepdim=False)[0]
        x = self.conv3(torch.cat((x1, x2), dim=1))
        x = torch.cat((F.adaptive_max_pool1d(x, 1).view(b, -1), F.adaptive_avg_pool1d(x, 1).view(b, -1)), 1)
        x = F.leaky_relu(self.bn4(self.linear1(x)), negative_slope=0.2)
        return self.linear2(x)


def square_distance(src, dst):
    """Squared distances [B, N, M] between src [B, N, C] and dst [B, M, C]."""
    b, n, _ = src.shape
    m = dst.shape[1]
    dist = -2 * torch.matmul(src, dst.permute(0, 2, 1))
    dist += torch.sum(src ** 2, -1).view(b, n, 1)
    dist += torch.sum(dst ** 2, -1).view(b, 1, m)
    return dist


def index_points(points, idx):
    """points [B, N, C] gathered at idx [B, S] or [B, S, K] -> [B, S, C] or [B, S, K, C]."""
    b = points.shape[0]
    view_shape = [b] + [1] * (idx.dim() - 1)
    repeat_shape = [1] + list(idx.shape[1:])
    batch_indices = torch.arange(b, dtype=torch.long, device=points.device).view(view_shape).repeat(repeat_shape)
    return points[batch_indices, idx, :]


def farthest_point_sample(xyz, npoint, start):
    """Indices [B, npoint] of points chosen greedily farthest from those chosen so far, from start [B]."""
    device = xyz.device
    b, n, _ = xyz.shape
    centroids = torch.zeros(b, npoint, dtype=torch.long).to(device)
    distance = torch.ones(b, n, dtype=xyz.dtype).to(device) * 1e10
    farthest = start.to(device)
    batch_indices = torch.arange(b, dtype=torch.long).to(device)
    for i in range(npoint):
        centroids[:, i] = farthest
        centroid = xyz[batch_indices, farthest, :].view(b, 1, 3)
        dist = torch.sum((xyz - centroid) ** 2, -1)
        mask = dist < distance
        distance[mask] = dist[mask]
        farthest = torch.max(distance, -1)[1]
    return centroids


def query_ball_point(radius, nsample, xyz, new_xyz):
    """Indices [B, S, nsample] of points within radius of each centre; short groups repeat their first member."""
    b, n, _ = xyz.shape
    s = new_xyz.shape[1]
    group_idx = torch.arange(n, dtype=torch.long).to(xyz.device).view(1, 1, n).repeat([b, s, 1])
    sqrdists = square_distance(new_xyz, xyz)
    group_idx[sqrdists > radius ** 2] = n
    group_idx = group_idx.sort(dim=-1)[0][:, :, :nsample]
    group_first = group_idx[:, :, 0].view(b, s, 1).repeat([1, 1, nsample])
    mask = group_idx == n
    group_idx[mask] = group_first[mask]
    return group_idx


def sample_and_group(npoint, radius, nsample, xyz, points, start):
    """Centres [B, S, 3], their groups [B, S, K, 3 + D] (coordinates relative to the centre) and the indices."""
    b, _, c = xyz.shape
    fps_idx = farthest_point_sample(xyz, npoint, start)
    new_xyz = index_points(xyz, fps_idx)
    idx = query_ball_point(radius, nsample, xyz, new_xyz)
    grouped_xyz = index_points(xyz, idx)
    grouped_xyz_norm = grouped_xyz - new_xyz.view(b, npoint, 1, c)
    if points is not None:
        new_points = torch.cat([grouped_xyz_norm, index_points(points, idx)], dim=-1)
    else:
        new_points = grouped_xyz_norm
    return new_xyz, new_points, fps_idx, idx


class PointNetSetAbstraction(nn.Module):
    def __init__(self, npoint, radius, nsample, in_channel, mlp, group_all=False):
        super().__init__()
        self.npoint, self.radius, self.nsample, self.group_all = npoint, radius, nsample, group_all
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        last = in_channel
        for out in mlp:
            self.mlp_convs.append(nn.Conv2d(last, out, 1))
            self.mlp_bns.append(nn.BatchNorm2d(out))
            last = out

    def forward(self, xyz, points, start=None):
        """xyz [B, 3, N], points [B, D, N] or None -> new xyz [B, 3, S], features [B, D', S]."""
        xyz = xyz.permute(0, 2, 1)
        if points is not None:
            points = points.permute(0, 2, 1)
        if self.group_all:
            b, n, c = xyz.shape
            new_xyz = torch.zeros(b, 1, c).to(xyz.device)
            grouped = xyz.view(b, 1, n, c)
            new_points = torch.cat([grouped, points.view(b, 1, n, -1)], dim=-1) if points is not None else grouped
            self.last_indices = None
        else:
            new_xyz, new_points, fps_idx, idx = sample_and_group(self.npoint, self.radius, self.nsample, xyz,
                                                                 points, start)
            self.last_indices = (fps_idx, idx)
        new_points = new_points.permute(0, 3, 2, 1)  # [B, C, K, S]
        for conv, bn in zip(self.mlp_convs, self.mlp_bns):
            new_points = F.relu(bn(conv(new_points)))
        new_points = torch.max(new_points, 2)[0]
        return new_xyz.permute(0, 2, 1), new_points


class PointNetSetAbstractionMsg(nn.Module):
    """Multi-scale grouping: one ball query and shared MLP per radius around the same sampled centres."""

    def __init__(self, npoint, radius_list, nsample_list, in_channel, mlp_list):
        super().__init__()
        self.npoint, self.radius_list, self.nsample_list = npoint, radius_list, nsample_list
        self.conv_blocks = nn.ModuleList()
        self.bn_blocks = nn.ModuleList()
        for mlp in mlp_list:
            convs, bns = nn.ModuleList(), nn.ModuleList()
            last = in_channel + 3
            for out in mlp:
                convs.append(nn.Conv2d(last, out, 1))
                bns.append(nn.BatchNorm2d(out))
                last = out
            self.conv_blocks.append(convs)
            self.bn_blocks.append(bns)

    def forward(self, xyz, points, start):
        xyz = xyz.permute(0, 2, 1)
        if points is not None:
            points = points.permute(0, 2, 1)
        b, n, c = xyz.shape
        s = self.npoint
        new_xyz = index_points(xyz, farthest_point_sample(xyz, s, start))
        new_points_list = []
        for i, radius in enumerate(self.radius_list):
            k = self.nsample_list[i]
            group_idx = query_ball_point(radius, k, xyz, new_xyz)
            grouped_xyz = index_points(xyz, group_idx)
            grouped_xyz -= new_xyz.view(b, s, 1, c)
            if points is not None:
                grouped_points = torch.cat([index_points(points, group_idx), grouped_xyz], dim=-1)
            else:
                grouped_points = grouped_xyz
            grouped_points = grouped_points.permute(0, 3, 2, 1)  # [B, D, K, S]
            for j in range(len(self.conv_blocks[i])):
                conv = self.conv_blocks[i][j]
                bn = self.bn_blocks[i][j]
                grouped_points = F.relu(bn(conv(grouped_points)))
            new_points_list.append(torch.max(grouped_points, 2)[0])  # [B, D', S]
        return new_xyz.permute(0, 2, 1), torch.cat(new_points_list, dim=1)


class PointNetFeaturePropagation(nn.Module):
    """Interpolates coarse features onto the dense points by inverse-distance weights of the 3 nearest."""

    def __init__(self, in_channel, mlp):
        super().__init__()
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        last = in_channel
        for out in mlp:
            self.mlp_convs.append(nn.Conv1d(last, out, 1))
            self.mlp_bns.append(nn.BatchNorm1d(out))
            last = out

    def forward(self, xyz1, xyz2, points1, points2):
        xyz1 = xyz1.permute(0, 2, 1)
        xyz2 = xyz2.permute(0, 2, 1)
        points2 = points2.permute(0, 2, 1)
        b, n, _ = xyz1.shape
        _, s, _ = xyz2.shape
        if s == 1:
            interpolated_points = points2.repeat(1, n, 1)
        else:
            dists = square_distance(xyz1, xyz2)
            dists, idx = dists.sort(dim=-1)
            dists, idx = dists[:, :, :3], idx[:, :, :3]
            dist_recip = 1.0 / (dists + 1e-8)
            norm = torch.sum(dist_recip, dim=2, keepdim=True)
            weight = dist_recip / norm
            interpolated_points = torch.sum(index_points(points2, idx) * weight.view(b, n, 3, 1), dim=2)
        if points1 is not None:
            new_points = torch.cat([points1.permute(0, 2, 1), interpolated_points], dim=-1)
        else:
            new_points = interpolated_points
        new_points = new_points.permute(0, 2, 1)
        for i, conv in enumerate(self.mlp_convs):
            new_points = F.relu(self.mlp_bns[i](conv(new_points)))
        return new_points


def to_categorical(y, num_classes):
    """One-hot rows of an identity picked by the labels' numpy array, as training scripts write it."""
    new_y = torch.eye(num_classes)[y.cpu().data.numpy(), ]
    if y.is_cuda:
        return new_y.cuda()
    return new_y


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv2d") != -1 or classname.find("Conv1d") != -1:
        torch.nn.init.xavier_normal_(m.weight.data)
        torch.nn.init.constant_(m.bias.data, 0.0)
    elif classname.find("Linear") != -1:
        torch.nn.init.xavier_normal_(m.weight.data)
        torch.nn.init.constant_(m.bias.data, 0.0)


def inplace_relu(m):
    """Training scripts switch every (Leaky)ReLU module to in-place by model.apply, to save memory."""
    if m.__class__.__name__.find("ReLU") != -1:
        m.inplace = True


def bn_momentum_adjust(m, momentum):
    if isinstance(m, torch.nn.BatchNorm2d) or isinstance(m, torch.nn.BatchNorm1d):
        m.momentum = momentum


class PointNet2PartSeg(nn.Module):
    """Per-point part labels from a multi-scale set abstraction, a global one and two propagation steps, with
    the object's class one-hot broadcast to every point."""

    def __init__(self, num_parts=4, num_categories=2, npoint=8, width=8):
        super().__init__()
        self.num_categories = num_categories
        self.sa1 = PointNetSetAbstractionMsg(npoint, [0.4, 0.8], [4, 8], 0, [[width, width], [width, 2 * width]])
        self.sa2 = PointNetSetAbstraction(None, None, None, 3 * width + 3, [2 * width], group_all=True)
        self.fp2 = PointNetFeaturePropagation(5 * width, [2 * width])
        self.fp1 = PointNetFeaturePropagation(2 * width + num_categories + 6, [width])
        self.conv1 = nn.Conv1d(width, width, 1)
        self.bn1 = nn.BatchNorm1d(width)
        self.conv2 = nn.Conv1d(width, num_parts, 1)

    def forward(self, xyz, cls_label, start):
        b, _, n = xyz.shape
        l1_xyz, l1_points = self.sa1(xyz, None, start)
        l2_xyz, l2_points = self.sa2(l1_xyz, l1_points)
        l1_points = self.fp2(l1_xyz, l2_xyz, l1_points, l2_points)
        cls_one_hot = cls_label.view(b, self.num_categories, 1).repeat(1, 1, n)
        l0_points = self.fp1(xyz, l1_xyz, torch.cat([cls_one_hot, xyz, xyz], 1), l1_points)
        x = F.relu(self.bn1(self.conv1(l0_points)))
        x = F.log_softmax(self.conv2(x), dim=1)
        return x.permute(0, 2, 1)


class PointNet2Cls(nn.Module):
    def __init__(self, num_classes=3, npoint=8, radius=0.6, nsample=6, width=16):
        super().__init__()
        self.sa1 = PointNetSetAbstraction(npoint, radius, nsample, 3, [width, width])
        self.sa2 = PointNetSetAbstraction(None, None, None, width + 3, [2 * width], group_all=True)
        self.fc1 = nn.Linear(2 * width, width)
        self.bn1 = nn.BatchNorm1d(width)
        self.fc2 = nn.Linear(width, num_classes)

    def forward(self, xyz, start):
        b = xyz.shape[0]
        l1_xyz, l1_points = self.sa1(xyz, None, start)
        _, l2_points = self.sa2(l1_xyz, l1_points)
        x = l2_points.view(b, -1)
        x = F.relu(self.bn1(self.fc1(x)))
        return F.log_softmax(self.fc2(x), -1)
