"""A small one-stage detector written the way public vision code is written (imports torch only; loaded with
vibetensor swapped in by tests/models/swap_import.py):
  - backbone: MobileNetV3 / EfficientNet inverted-residual blocks (1x1 expand, depthwise conv with
    groups=channels, squeeze-excite with hardsigmoid gate, 1x1 project), Hardswish / SiLU, BatchNorm with
    momentum=0.01 and eps=1e-3, stochastic depth whose keep masks come from a numpy generator (so two
    libraries draw the same masks), residual only when stride is 1 and channels match;
  - FPN neck: 1x1 lateral convs, nearest 2x top-down upsampling added in, 3x3 output convs;
  - RetinaNet head: shared conv towers, a learned scale per level (ATSS, in a legacy FloatTensor), anchors from
    a meshgrid, box encoding / decoding with clamped exponentials, IoU-threshold target assignment with
    low-quality matches, sigmoid focal loss written out, smooth-L1 or GIoU box loss on the positives, normalised
    by the number of positives (averaged over processes behind the usual torch.distributed guard);
  - post-processing: score threshold, top-k per level, concatenation across levels, class-aware NMS in pure
    torch, clipping to the image;
  - a training step as detection scripts take it (gradient clipping, SGD with nesterov momentum on decay /
    no-decay groups, OneCycleLR), checkpoints through torch.save / torch.load, and a backbone frozen for
    fine-tuning (FrozenBatchNorm2d loading BatchNorm2d state through a _load_from_state_dict override).
"""
import math

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

BN = dict(momentum=0.01, eps=1e-3)  # the TF-derived BatchNorm settings of MobileNetV3 / EfficientNet


def make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v  # never round down by more than 10%


def drop_path(x, p, training, rng=None):
    """Stochastic depth: one keep draw per example from a numpy generator, surviving paths scaled by 1 / keep."""
    if p == 0.0 or not training or rng is None:
        return x
    keep = 1.0 - p
    mask = torch.from_numpy((rng.random(x.shape[0]) < keep).astype(np.float32)).to(device=x.device, dtype=x.dtype)
    return x * mask.view(-1, 1, 1, 1) / keep


class ConvBNAct(nn.Sequential):
    def __init__(self, cin, cout, kernel=3, stride=1, groups=1, act=nn.Hardswish):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout, **BN), act() if act is not None else nn.Identity())


class SqueezeExcite(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.fc2(F.relu(self.fc1(s), inplace=True))
        return x * F.hardsigmoid(s)


class InvertedResidual(nn.Module):
    def __init__(self, cin, expand, cout, kernel, stride, se, act, drop_p=0.0):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != cin:
            layers.append(ConvBNAct(cin, expand, 1, act=act))
        layers.append(ConvBNAct(expand, expand, kernel, stride, groups=expand, act=act))
        if se:
            layers.append(SqueezeExcite(expand, make_divisible(expand // 4)))
        layers.append(ConvBNAct(expand, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.drop_p = drop_p
        self.rng = None
        self.out_channels = cout

    def forward(self, x):
        out = self.block(x)
        if self.use_res:
            out = x + drop_path(out, self.drop_p, self.training, self.rng)
        return out


# (kernel, expand, out, squeeze-excite, activation, stride); the last block of each stride is a pyramid level
SETTINGS = [(3, 16, 16, True, "relu", 2),
            (3, 32, 16, False, "relu", 1),
            (3, 48, 24, False, "hswish", 2),
            (5, 72, 24, True, "silu", 1),
            (5, 72, 32, True, "hswish", 2),
            (3, 96, 32, True, "silu", 1),
            (3, 96, 40, True, "hswish", 2)]
ACTS = {"relu": nn.ReLU, "hswish": nn.Hardswish, "silu": nn.SiLU}


class Backbone(nn.Module):
    def __init__(self, width=1.0, drop_path_rate=0.0, settings=SETTINGS):
        super().__init__()
        cin = make_divisible(16 * width)
        self.stem = ConvBNAct(3, cin, 3, 2)
        blocks, self.return_idx, n = [], [], len(settings)
        for i, (k, e, c, se, act, s) in enumerate(settings):
            cout = make_divisible(c * width)
            blocks.append(InvertedResidual(cin, make_divisible(e * width), cout, k, s, se, ACTS[act],
                                           drop_path_rate * i / n))
            cin = cout
        for i in range(len(settings)):  # the last block before each stride-2 block, and the last block
            if i == len(settings) - 1 or settings[i + 1][5] == 2:
                self.return_idx.append(i)
        self.return_idx = self.return_idx[-3:]
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = [blocks[i].out_channels for i in self.return_idx]

    def forward(self, x):
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.return_idx:
                feats.append(x)
        return feats


class FPN(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(c, out_channels, 1) for c in in_channels])
        self.output = nn.ModuleList([nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels])

    def forward(self, feats):
        laterals = [conv(f) for conv, f in zip(self.lateral, feats)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2, mode="nearest")
        return [conv(x) for conv, x in zip(self.output, laterals)]


def box_iou(a, b):
    """Pairwise IoU of [N, 4] and [M, 4] boxes (x1, y1, x2, y2) by broadcasting: [N, M]."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def giou_loss(pred, target, eps=1e-7):
    """1 - generalised IoU of matched boxes [N, 4], elementwise."""
    x1 = torch.max(pred[:, 0], target[:, 0])
    y1 = torch.max(pred[:, 1], target[:, 1])
    x2 = torch.min(pred[:, 2], target[:, 2])
    y2 = torch.min(pred[:, 3], target[:, 3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area_p = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = area_p + area_t - inter
    iou = inter / (union + eps)
    cw = torch.max(pred[:, 2], target[:, 2]) - torch.min(pred[:, 0], target[:, 0])
    ch = torch.max(pred[:, 3], target[:, 3]) - torch.min(pred[:, 1], target[:, 1])
    hull = cw * ch + eps
    return 1 - (iou - (hull - union) / hull)


def reduce_mean(t):
    """t averaged over the processes of a distributed run (the count of positives): t itself in one process."""
    if not dist.is_available() or not dist.is_initialized():
        return t
    t = t.clone()
    dist.all_reduce(t.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return t


def sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    pt = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - pt) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


class BoxCoder:
    """Anchor-relative deltas (dx, dy, dw, dh) with weights; decoding clamps dw, dh before exp."""

    def __init__(self, weights=(1.0, 1.0, 1.0, 1.0), clip=math.log(1000.0 / 16)):
        self.weights = weights
        self.clip = clip

    def encode(self, gt, anchors):
        wx, wy, ww, wh = self.weights
        aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
        gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
        gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
        return torch.stack((wx * (gx - ax) / aw, wy * (gy - ay) / ah, ww * torch.log(gw / aw),
                            wh * torch.log(gh / ah)), dim=1)

    def decode(self, deltas, anchors):
        wx, wy, ww, wh = self.weights
        aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
        ax, ay = anchors[:, 0] + 0.5 * aw, anchors[:, 1] + 0.5 * ah
        dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
        dw = (deltas[:, 2] / ww).clamp(max=self.clip)
        dh = (deltas[:, 3] / wh).clamp(max=self.clip)
        cx, cy = dx * aw + ax, dy * ah + ay
        w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
        return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=1)


def grid_anchors(sizes, strides, feat_shapes, ratios=(0.5, 1.0, 2.0), scales=(1.0, 2 ** 0.5), device=None):
    """One tensor [H * W * A, 4] per level; anchors of a cell are contiguous, cells in row-major order."""
    out = []
    for size, stride, (h, w) in zip(sizes, strides, feat_shapes):
        scales_t = torch.tensor(scales, device=device) * size
        ratios_t = torch.tensor(ratios, device=device)
        hr = torch.sqrt(ratios_t)
        ws = (scales_t[None, :] / hr[:, None]).reshape(-1)
        hs = (scales_t[None, :] * hr[:, None]).reshape(-1)
        base = torch.stack([-ws, -hs, ws, hs], dim=1) / 2
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32) * stride + stride / 2,
                                torch.arange(w, device=device, dtype=torch.float32) * stride + stride / 2,
                                indexing="ij")
        shifts = torch.stack((xs.reshape(-1), ys.reshape(-1), xs.reshape(-1), ys.reshape(-1)), dim=1)
        out.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
    return out


def nms(boxes, scores, iou_threshold):
    """Greedy NMS: indices of the kept boxes, highest score first."""
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        ious = box_iou(boxes[i].unsqueeze(0), boxes[order[1:]]).squeeze(0)
        order = order[1:][(ious <= iou_threshold).nonzero().squeeze(1)]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long, device=boxes.device)


def batched_nms(boxes, scores, labels, iou_threshold):
    """Class-aware NMS: boxes of different classes are moved apart so they never overlap."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offsets = labels.to(boxes.dtype) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


class Scale(nn.Module):
    """A learned per-level multiplier of the box regression (FCOS / ATSS), kept in a legacy FloatTensor."""

    def __init__(self, init_value=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.FloatTensor([init_value]))

    def forward(self, x):
        return x * self.scale


class Head(nn.Module):
    def __init__(self, channels, num_anchors, num_classes, levels=3, convs=2, prior=0.01):
        super().__init__()
        def tower():
            layers = []
            for _ in range(convs):
                layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.SiLU()]
            return nn.Sequential(*layers)
        self.cls_tower, self.box_tower = tower(), tower()
        self.cls_logits = nn.Conv2d(channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(channels, num_anchors * 4, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in range(levels)])
        self.num_classes = num_classes
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.constant_(m.bias, 0)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior) / prior))  # start at p = prior everywhere

    def forward(self, feats):
        cls, box = [], []
        for f, scale in zip(feats, self.scales):
            n, _, h, w = f.shape
            c = self.cls_logits(self.cls_tower(f))  # [N, A * K, H, W] -> [N, H * W * A, K]
            cls.append(c.view(n, -1, self.num_classes, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, self.num_classes))
            b = scale(self.bbox_pred(self.box_tower(f)))
            box.append(b.view(n, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
        return cls, box


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers (fine-tuning with a frozen backbone)."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        state_dict.pop(prefix + "num_batches_tracked", None)  # so that a BatchNorm2d's state loads strictly
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def freeze_batchnorm(module):
    """Every BatchNorm2d under module replaced by a FrozenBatchNorm2d holding its state."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, child.eps).to(child.running_mean.device)
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def init_weights(m):
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class Detector(nn.Module):
    def __init__(self, num_classes=3, width=1.0, fpn_channels=16, drop_path_rate=0.0, box_loss="smooth_l1",
                 anchor_sizes=(8, 16, 32)):
        super().__init__()
        self.backbone = Backbone(width, drop_path_rate)
        self.fpn = FPN(self.backbone.out_channels, fpn_channels)
        self.apply(init_weights)
        self.anchor_sizes = anchor_sizes
        self.strides = (8, 16, 32)
        self.num_anchors = 6
        self.head = Head(fpn_channels, self.num_anchors, num_classes)  # its own init, after apply()
        self.coder = BoxCoder()
        self.box_loss = box_loss
        self.fg_iou, self.bg_iou = 0.5, 0.4

    def set_rng(self, rng):
        for m in self.modules():
            if isinstance(m, InvertedResidual):
                m.rng = rng

    def forward(self, images):
        torch._assert(images.shape[-2] % self.strides[-1] == 0 and images.shape[-1] % self.strides[-1] == 0,
                      f"image sizes must be multiples of {self.strides[-1]}, got {tuple(images.shape[-2:])}")
        images = images.contiguous(memory_format=torch.channels_last)
        cls, box = self.head(self.fpn(self.backbone(images)))
        shapes = [(images.shape[2] // s, images.shape[3] // s) for s in self.strides]
        anchors = grid_anchors(self.anchor_sizes, self.strides, shapes, device=images.device)
        return cls, box, anchors

    def assign(self, gt_boxes, anchors):
        """Per anchor: matched gt index, -1 background, -2 ignored (IoU between the thresholds)."""
        if gt_boxes.numel() == 0:
            return torch.full((anchors.shape[0],), -1, dtype=torch.long, device=anchors.device)
        iou = box_iou(gt_boxes, anchors)  # [G, A]
        best, idx = iou.max(dim=0)
        matched = idx.clone()
        matched[best < self.fg_iou] = -2
        matched[best < self.bg_iou] = -1
        # every gt keeps the anchors that overlap it best, even under the threshold
        best_per_gt, _ = iou.max(dim=1)
        gt_i, anchor_i = torch.nonzero(iou == best_per_gt[:, None], as_tuple=True)
        matched[anchor_i] = idx[anchor_i]
        return matched

    def loss(self, images, targets):
        cls, box, anchors = self(images)
        cls, box, anchors = torch.cat(cls, dim=1), torch.cat(box, dim=1), torch.cat(anchors, dim=0)
        cls_losses, box_losses = [], []
        for i, t in enumerate(targets):
            matched = self.assign(t["boxes"], anchors)
            pos = matched >= 0
            valid = matched != -2
            num_pos = reduce_mean(pos.sum().to(cls.dtype)).clamp(min=1)
            cls_t = torch.zeros_like(cls[i])
            cls_t[pos, t["labels"][matched[pos]]] = 1.0
            cls_losses.append(sigmoid_focal_loss(cls[i][valid], cls_t[valid]).sum() / num_pos)
            gt = t["boxes"][matched[pos]]
            if self.box_loss == "giou":
                pred = self.coder.decode(box[i][pos], anchors[pos])
                box_losses.append(giou_loss(pred, gt).sum() / num_pos)
            else:
                reg_t = self.coder.encode(gt, anchors[pos])
                box_losses.append(F.smooth_l1_loss(box[i][pos], reg_t, beta=1 / 9, reduction="sum") / num_pos)
        cls_loss = torch.stack(cls_losses).mean()
        box_loss = torch.stack(box_losses).mean()
        return {"cls": cls_loss, "box": box_loss, "total": cls_loss + box_loss}

    @torch.no_grad()
    def detect(self, images, score_thresh=0.05, topk=50, iou_thresh=0.5, max_det=20):
        cls, box, anchors = self(images)
        h, w = images.shape[-2:]
        results = []
        for i in range(images.shape[0]):
            all_boxes, all_scores, all_labels = [], [], []
            for lc, lb, la in zip(cls, box, anchors):
                scores = torch.sigmoid(lc[i]).flatten()
                keep = scores > score_thresh
                scores, idx = scores[keep], torch.nonzero(keep).squeeze(1)
                k = min(topk, idx.numel())
                scores, order = scores.topk(k)
                idx = idx[order]
                anchor_idx = torch.div(idx, self.head.num_classes, rounding_mode="floor")
                labels = idx % self.head.num_classes
                boxes = self.coder.decode(lb[i][anchor_idx], la[anchor_idx])
                all_boxes.append(boxes)
                all_scores.append(scores)
                all_labels.append(labels)
            boxes, scores, labels = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
            boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(min=0, max=h)
            keep = batched_nms(boxes, scores, labels, iou_thresh)[:max_det]
            results.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return results


def param_groups(model, weight_decay):
    """Weight decay on conv / linear weights only: not on biases or normalisation parameters."""
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            (no_decay if isinstance(module, norms) or name == "bias" else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model, lr=0.05, weight_decay=4e-5, total_steps=6):
    opt = torch.optim.SGD(param_groups(model, weight_decay), lr=lr, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.3)
    return opt, sched


def train_step(model, opt, sched, images, targets, max_norm=10.0):
    """One step as detection training scripts take it: loss, backward, gradient clipping, SGD step, LR step."""
    model.train()
    device = next(model.parameters()).device
    images = images.to(device, non_blocking=True, memory_format=torch.channels_last)  # the loader's batch
    losses = model.loss(images, targets)
    opt.zero_grad(set_to_none=True)
    losses["total"].backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    sched.step()
    return {k: v.detach() for k, v in losses.items()}, grad_norm


def save_checkpoint(f, model, opt, sched, step):
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "step": step}, f)


def load_checkpoint(f, model, opt, sched):
    ckpt = torch.load(f)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    return ckpt["step"]
