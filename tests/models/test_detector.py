"""The one-stage detector of tests/models/detector.py (MobileNetV3-style backbone, FPN, RetinaNet head), loaded
once with torch and once with vibetensor swapped in for torch: structure and initialisation, the box operations,
focal loss and NMS against numpy, target assignment, channels_last forward (every layer's output strides) with
every gradient, stochastic depth from numpy masks, SGD (nesterov, decay / no-decay groups) with OneCycleLR in train
mode (losses and clipped gradient norms each step, final weights and BatchNorm running statistics; the vibetensor
run resumed half-way from a torch.save checkpoint of model, optimizer and schedule), the eval-mode detections, and
fine-tuning with a frozen backbone (FrozenBatchNorm2d). On the CPU and, where both see a GPU, on the GPU (marker
cuda)."""
import io
import math

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

tc, vc = pair("detector.py")
SIZE = 64


def build(seed=0, device="cpu", **cfg):
    torch.manual_seed(seed)
    tm = tc.Detector(**cfg)
    vm = vc.Detector(**cfg)
    load_torch_weights(vm, tm)
    tm.to(device).to(memory_format=torch.channels_last)
    vm.to(device).to(memory_format=vt.channels_last)
    return tm, vm


def batch(seed, b=2):
    """Images and per-image targets (boxes in pixels, labels in 0..2); the second image has one box."""
    r = np.random.default_rng(seed)
    x = r.standard_normal((b, 3, SIZE, SIZE)).astype(np.float32)
    targets = []
    for i in range(b):
        n = 1 if i == 1 else 3
        xy = r.uniform(0, SIZE * 0.6, size=(n, 2))
        wh = r.uniform(6, SIZE * 0.4, size=(n, 2))
        targets.append((np.concatenate([xy, xy + wh], 1).astype(np.float32), r.integers(0, 3, size=n)))
    return x, targets


def to_lib(device, targets):
    t = [{"boxes": torch.from_numpy(b).to(device), "labels": torch.from_numpy(l).to(device)} for b, l in targets]
    v = [{"boxes": vt.from_numpy(b).to(device), "labels": vt.from_numpy(l).to(device)} for b, l in targets]
    return t, v


def np_iou(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def np_nms(boxes, scores, thr):
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if np_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= thr]
    return keep


def test_structure_and_initialisation():
    tm, vm = build()
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert "backbone.blocks.0.block.0.1.running_var" in vm.state_dict()
    bn = vm.backbone.stem[1]
    assert (bn.momentum, bn.eps) == (0.01, 1e-3)
    assert [b.use_res for b in vm.backbone.blocks] == [b.use_res for b in tm.backbone.blocks] == [
        False, True, False, True, False, True, False]
    dw = vm.backbone.blocks[3].block[1][0]
    assert dw.groups == dw.in_channels == dw.out_channels == 72 and tuple(dw.weight.shape) == (72, 1, 5, 5)
    assert vm.backbone.out_channels == tm.backbone.out_channels == [24, 32, 40]
    # vibetensor's own initialisation (not copied from torch): kaiming fan_out, ones / zeros, the prior bias
    vt.manual_seed(0)
    m = vc.Detector()
    w = m.backbone.blocks[6].block[0][0].weight  # 1x1, 32 -> 96: fan_out = 96
    assert abs(w.detach().numpy().std() / math.sqrt(2 / 96) - 1) < 0.1
    w = m.backbone.blocks[3].block[1][0].weight  # depthwise 5x5: torch's fan_out ignores groups: 72 * 25
    assert abs(w.detach().numpy().std() / math.sqrt(2 / 1800) - 1) < 0.1
    assert (m.backbone.stem[1].weight.numpy() == 1).all() and (m.fpn.lateral[0].bias.numpy() == 0).all()
    assert abs(m.head.cls_tower[0].weight.detach().numpy().std() / 0.01 - 1) < 0.1  # the head's own init
    np.testing.assert_allclose(m.head.cls_logits.bias.detach().numpy(), -math.log(99), rtol=1e-6)
    assert m.backbone.stem[0].weight.is_contiguous() and vm.backbone.stem[0].weight.is_contiguous(
        memory_format=vt.channels_last)


def test_box_ops_focal_loss_and_nms_against_numpy():
    r = np.random.default_rng(0)
    xy = r.uniform(0, 50, size=(40, 2))
    boxes = np.concatenate([xy, xy + r.uniform(2, 20, size=(40, 2))], 1).astype(np.float32)
    scores = r.permutation(40).astype(np.float32) / 40
    vb, vs = vt.from_numpy(boxes), vt.from_numpy(scores)
    np.testing.assert_allclose(vc.box_iou(vb[:15], vb).numpy(), np_iou(boxes[:15], boxes), rtol=1e-5, atol=1e-7)
    assert vc.nms(vb, vs, 0.3).tolist() == np_nms(boxes, scores, 0.3)
    labels = r.integers(0, 2, size=40)
    kept = vc.batched_nms(vb, vs, vt.from_numpy(labels), 0.3).tolist()
    ref = []
    for c in (0, 1):
        idx = np.nonzero(labels == c)[0]
        ref += [idx[k] for k in np_nms(boxes[idx], scores[idx], 0.3)]
    assert kept == sorted(ref, key=lambda i: -scores[i]) and len(kept) > len(np_nms(boxes, scores, 0.3))
    assert vc.nms(vb[:0], vs[:0], 0.5).tolist() == []
    # GIoU: identical boxes give 0, disjoint boxes more than 1
    g = vc.giou_loss(vb[:3], vt.from_numpy(boxes[:3] + np.float32([30, 30, 30, 30]))).numpy()
    assert (g > 1).all() and np.allclose(vc.giou_loss(vb, vb).numpy(), 0, atol=1e-6)
    close(vc.giou_loss(vb[:20], vb[20:]), tc.giou_loss(torch.from_numpy(boxes[:20]), torch.from_numpy(boxes[20:])))
    # encode / decode round trip, and the clamp on dw, dh
    coder = vc.BoxCoder()
    anchors = vt.from_numpy(boxes[::-1].copy())
    np.testing.assert_allclose(coder.decode(coder.encode(vb, anchors), anchors).numpy(), boxes, rtol=1e-4, atol=1e-3)
    huge = coder.decode(vt.from_numpy(np.float32([[0, 0, 50, 50]])), anchors[:1]).numpy()
    a = boxes[-1]
    np.testing.assert_allclose(huge[0, 2] - huge[0, 0], (a[2] - a[0]) * 1000 / 16, rtol=1e-4)
    # focal loss written out, against the formula
    logits = r.standard_normal((6, 3)).astype(np.float32) * 3
    t = (r.random((6, 3)) < 0.3).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    pt = np.where(t == 1, p, 1 - p)
    ref = -np.where(t == 1, 0.25, 0.75) * (1 - pt) ** 2 * np.log(pt)
    np.testing.assert_allclose(vc.sigmoid_focal_loss(vt.from_numpy(logits), vt.from_numpy(t)).numpy(), ref,
                               rtol=1e-4, atol=1e-7)


def test_anchors_and_assignment_match_torch():
    tm, vm = build()
    shapes = [(8, 8), (4, 4), (2, 2)]
    ta = tc.grid_anchors(tm.anchor_sizes, tm.strides, shapes)
    va = vc.grid_anchors(vm.anchor_sizes, vm.strides, shapes)
    assert [tuple(a.shape) for a in va] == [(384, 4), (96, 4), (24, 4)]
    for a, b in zip(va, ta):
        close(a, b, rtol=1e-6, atol=1e-5)
    a0 = va[0].numpy()[:6]  # the first cell's anchors: centred on (4, 4), area (8 * scale) ** 2
    np.testing.assert_allclose((a0[:, :2] + a0[:, 2:]) / 2, 4.0, atol=1e-5)
    np.testing.assert_allclose(np.prod(a0[:, 2:] - a0[:, :2], 1), np.tile([64.0, 128.0], 3), rtol=1e-5)
    anchors_np = np.concatenate([a.numpy() for a in va])
    _, targets = batch(1)
    for boxes, _ in targets + [(np.zeros((0, 4), np.float32), None)]:
        tmatch = tm.assign(torch.from_numpy(boxes), torch.from_numpy(anchors_np))
        vmatch = vm.assign(vt.from_numpy(boxes), vt.from_numpy(anchors_np))
        assert vmatch.tolist() == tmatch.tolist()
        if len(boxes):
            m = vmatch.numpy()
            assert (m >= 0).any() and (m == -2).any() and (m == -1).any()
            assert set(m[m >= 0]) == set(range(len(boxes)))  # each gt gets at least its best anchors
        else:
            assert (vmatch.numpy() == -1).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("box_loss", ["smooth_l1", "giou"])
def test_forward_loss_and_gradients_match_torch(box_loss, device):
    tm, vm = build(seed=1, device=device, box_loss=box_loss)
    x, targets = batch(2)
    (tx,), (vx,) = both(device, x)
    tt, vtt = to_lib(device, targets)
    tx.requires_grad_()
    vx.requires_grad_()
    feats_t, feats_v = tm.backbone(tx.contiguous(memory_format=torch.channels_last)), vm.backbone(
        vx.contiguous(memory_format=vt.channels_last))
    for f, g in zip(feats_v, feats_t):
        assert f.is_contiguous(memory_format=vt.channels_last) == g.is_contiguous(
            memory_format=torch.channels_last)
        close(f, g, rtol=1e-4, atol=1e-4)
    layouts = {}

    def record(lib):
        def hook(module, args, out):
            if isinstance(out, (torch.Tensor, vt.Tensor)):
                layouts.setdefault(lib, {})[names[lib][module]] = tuple(out.stride())
        return hook

    names = {"torch": {m: n for n, m in tm.named_modules()}, "vt": {m: n for n, m in vm.named_modules()}}
    handles = [m.register_forward_hook(record("torch")) for m in tm.modules()]
    handles += [m.register_forward_hook(record("vt")) for m in vm.modules()]
    tcls, tbox, _ = tm(tx)
    vcls, vbox, _ = vm(vx)
    for h in handles:
        h.remove()
    for a, b in zip(vcls + vbox, tcls + tbox):
        close(a, b, rtol=1e-4, atol=1e-4)
    # every layer's output laid out as torch's: the model stays channels_last from the stem to the head
    assert len(layouts["vt"]) > 100 and layouts["vt"] == layouts["torch"]
    with pytest.raises(AssertionError, match=r"multiples of 32, got \(48, 40\)"):
        vm(vt.zeros((1, 3, 48, 40), device=device))
    tl, vl = tm.loss(tx, tt), vm.loss(vx, vtt)
    for k in ("cls", "box", "total"):
        close(vl[k], tl[k], rtol=1e-4, atol=1e-6)
    assert vl["box"].item() > 0
    tl["total"].backward()
    vl["total"].backward()
    close(vx.grad, tx.grad, rtol=1e-3, atol=1e-5 * tx.grad.abs().max().item())
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        assert p.grad is not None, name
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))
    # BatchNorm in train mode used batch statistics and moved its running statistics by momentum 0.01
    tbn, vbn = tm.backbone.stem[1], vm.backbone.stem[1]
    assert int(vbn.num_batches_tracked.item()) == int(tbn.num_batches_tracked.item()) == 3
    close(vbn.running_mean, tbn.running_mean, rtol=1e-4, atol=1e-6)
    close(vbn.running_var, tbn.running_var, rtol=1e-4, atol=1e-6)


def test_stochastic_depth_uses_the_numpy_masks():
    x = vt.ones((64, 2, 3, 3))
    a = vc.drop_path(x, 0.25, True, np.random.default_rng(5))
    keep = np.random.default_rng(5).random(64) < 0.75
    per_example = a.numpy().reshape(64, -1)
    assert (per_example == per_example[:, :1]).all()
    np.testing.assert_array_equal(per_example[:, 0], np.where(keep, np.float32(1) / np.float32(0.75), 0))
    assert vc.drop_path(x, 0.25, False, np.random.default_rng(5)) is x and vc.drop_path(x, 0.0, True, None) is x
    # through the model, each library with its own generator of the same seed: the same outputs
    tm, vm = build(seed=2, drop_path_rate=0.5)
    x, _ = batch(3, b=8)
    (tx,), (vx,) = both("cpu", x)
    outs = []
    for seed in (7, 7, 8):
        tm.set_rng(np.random.default_rng(seed))
        vm.set_rng(np.random.default_rng(seed))
        tcls, _, _ = tm(tx)
        vcls, _, _ = vm(vx)
        close(vcls[0], tcls[0], rtol=1e-4, atol=1e-4)
        outs.append(vcls[0].detach().numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.allclose(outs[0], outs[2])


@pytest.mark.parametrize("device", DEVICES)
def test_sgd_onecycle_training_and_detections_match_torch(device):
    steps = 6
    tm, vm = build(seed=3, device=device, drop_path_rate=0.2)
    tm.set_rng(np.random.default_rng(11))
    vm.set_rng(np.random.default_rng(11))
    topt, tsched = tc.make_optimizer(tm, total_steps=steps)
    vopt, vsched = vc.make_optimizer(vm, total_steps=steps)
    assert [len(g["params"]) for g in vopt.param_groups] == [len(g["params"]) for g in topt.param_groups]
    assert vopt.param_groups[1]["weight_decay"] == 0.0 and vopt.param_groups[0]["nesterov"]
    x, targets = batch(4)
    (tx,), (vx,) = both(device, x)
    tt, vtt = to_lib(device, targets)
    losses = []
    for step in range(steps):
        if step == steps // 2:  # vibetensor resumes from a checkpoint into a fresh model, optimizer and schedule
            buf = io.BytesIO()
            vc.save_checkpoint(buf, vm, vopt, vsched, step)
            rng = vm.backbone.blocks[1].rng
            vm = vc.Detector(drop_path_rate=0.2).to(device).to(memory_format=vt.channels_last)
            vm.set_rng(rng)
            vopt, vsched = vc.make_optimizer(vm, total_steps=steps)
            buf.seek(0)
            assert vc.load_checkpoint(buf, vm, vopt, vsched) == step
        for key in ("lr", "momentum"):
            assert vopt.param_groups[0][key] == pytest.approx(topt.param_groups[0][key], rel=1e-12), key
        tl, tnorm = tc.train_step(tm, topt, tsched, tx, tt)
        vl, vnorm = vc.train_step(vm, vopt, vsched, vx, vtt)
        for k in ("cls", "box"):
            np.testing.assert_allclose(vl[k].item(), tl[k].item(), rtol=2e-4, err_msg=f"step {step} {k}")
        np.testing.assert_allclose(vnorm.item(), tnorm.item(), rtol=1e-3)
        losses.append(vl["total"].item())
    assert losses[-1] < losses[0], losses
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
    tb = dict(tm.named_buffers())
    for name, b in vm.named_buffers():
        if name.endswith("num_batches_tracked"):
            assert int(b.item()) == int(tb[name].item()) == steps, name
        else:
            close(b, tb[name], rtol=1e-3, atol=1e-5)
    assert not np.allclose(vm.backbone.stem[1].running_var.cpu().numpy(), 1.0)
    # eval mode: running statistics, no stochastic depth; the kept detections agree
    tm.eval()
    vm.eval()
    tdet = tm.detect(tx, score_thresh=0.02, topk=40, iou_thresh=0.5)
    vdet = vm.detect(vx, score_thresh=0.02, topk=40, iou_thresh=0.5)
    for v, t in zip(vdet, tdet):
        assert v["labels"].dtype == vt.int64 and v["boxes"].dtype == vt.float32
        assert 0 < v["scores"].shape[0] <= 20
        assert v["labels"].tolist() == t["labels"].tolist()
        close(v["scores"], t["scores"], rtol=1e-4, atol=1e-6)
        close(v["boxes"], t["boxes"], rtol=1e-4, atol=1e-3)
        s = v["scores"].cpu().numpy()
        assert (np.diff(s) <= 0).all() and (s > 0.02).all()
        b = v["boxes"].cpu().numpy()
        assert (b >= 0).all() and (b <= SIZE).all()
    empty = vm.detect(vx, score_thresh=1.0)
    assert [tuple(d["boxes"].shape) for d in empty] == [(0, 4), (0, 4)]
    assert empty[0]["labels"].dtype == vt.int64


@pytest.mark.parametrize("device", DEVICES)
def test_frozen_backbone_fine_tuning_matches_torch(device):
    """BatchNorm2d layers swapped for FrozenBatchNorm2d (loading their state through a _load_from_state_dict
    override), the backbone's parameters frozen, and fine-tuning steps on the rest."""
    tm, vm = build(seed=6, device=device)
    x, targets = batch(7)
    (tx,), (vx,) = both(device, x)
    tt, vtt = to_lib(device, targets)
    for m, xx in ((tm, tx), (vm, vx)):
        m.train()
        m(xx)  # moves the running statistics away from (0, 1)
        m.eval()
    tref, vref = tm(tx)[0], vm(vx)[0]
    tc.freeze_batchnorm(tm.backbone)
    vc.freeze_batchnorm(vm.backbone)
    assert type(vm.backbone.stem[1]).__name__ == "FrozenBatchNorm2d" and not any(
        isinstance(m, vt.nn.BatchNorm2d) for m in vm.modules())
    assert list(vm.state_dict()) == list(tm.state_dict())
    for a, b, c in zip(vm(vx)[0], vref, tref):
        close(a, b, rtol=1e-5, atol=1e-5)  # the same function as the eval-mode BatchNorm
        close(a, c, rtol=1e-4, atol=1e-4)
    vm.backbone.requires_grad_(False)
    tm.backbone.requires_grad_(False)
    frozen = {k: v.detach().cpu().numpy().copy() for k, v in vm.backbone.state_dict().items()}
    topt = torch.optim.SGD([p for p in tm.parameters() if p.requires_grad], lr=0.02, momentum=0.9)
    vopt = vt.optim.SGD([p for p in vm.parameters() if p.requires_grad], lr=0.02, momentum=0.9)
    for step in range(3):
        tl, vl = tm.loss(tx, tt)["total"], vm.loss(vx, vtt)["total"]
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=2e-4, err_msg=f"step {step}")
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        topt.step()
        vopt.step()
    assert all(p.grad is None for p in vm.backbone.parameters())
    for k, v in vm.backbone.state_dict().items():
        np.testing.assert_array_equal(v.cpu().numpy(), frozen[k], err_msg=k)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-5)
