"""The point-cloud models of tests/models/pointcloud.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same weights, in float64 (and float32 for one forward/backward): the sampled and grouped
indices (farthest point sampling, ball query, knn; against numpy and identical to torch's, with and without grad
mode), the feature-transform regulariser, DGCNN's smoothed loss, each model's output with input and every
parameter gradient, a few Adam + StepLR (and SGD + cosine) steps of label-smoothed cross-entropy on a toy
classification of synthetic shapes (losses, gradients, final weights and batch-norm running statistics, then the
eval-mode output and accuracy count), and PointNet++ part segmentation trained the same way. On the CPU and,
where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

tp, vp = pair("pointcloud.py")


def shapes(seed, batch=6, n=24):
    """Points [B, 3, N] on a sphere (class 0), a cube's surface (1) or a cylinder (2), scaled and jittered."""
    r = np.random.default_rng(seed)
    labels = np.arange(batch) % 3
    clouds = []
    for label in labels:
        if label == 0:
            p = r.standard_normal((n, 3))
            p /= np.linalg.norm(p, axis=1, keepdims=True)
        elif label == 1:
            p = r.uniform(-1, 1, (n, 3))
            face = r.integers(0, 3, n)
            p[np.arange(n), face] = np.sign(r.standard_normal(n))
        else:
            t = r.uniform(0, 2 * np.pi, n)
            p = np.stack([np.cos(t), np.sin(t), r.uniform(-1, 1, n)], 1)
        clouds.append(p * r.uniform(0.7, 1.3) + 0.02 * r.standard_normal((n, 3)))
    return np.stack(clouds).transpose(0, 2, 1).copy(), labels


def numpy_fps(xyz, npoint, start):
    out = np.zeros((xyz.shape[0], npoint), dtype=np.int64)
    for b in range(xyz.shape[0]):
        dist, far = np.full(xyz.shape[1], 1e10), start[b]
        for i in range(npoint):
            out[b, i] = far
            dist = np.minimum(dist, ((xyz[b] - xyz[b, far]) ** 2).sum(-1))
            far = int(np.argmax(dist))
    return out


def numpy_ball_query(radius, nsample, xyz, centres):
    out = np.zeros(centres.shape[:2] + (nsample,), dtype=np.int64)
    for b in range(xyz.shape[0]):
        for s in range(centres.shape[1]):
            inside = np.nonzero(((xyz[b] - centres[b, s]) ** 2).sum(-1) <= radius ** 2)[0][:nsample]
            out[b, s] = np.concatenate([inside, np.full(nsample - len(inside), inside[0])])
    return out


def numpy_knn(x, k):
    d = ((x[:, :, :, None] - x[:, :, None, :]) ** 2).sum(1)  # [B, N, N]
    return np.argsort(d, axis=-1, kind="stable")[:, :, :k]


def step_both(tm, vm, opts, scheds, tl, vl, step):
    """One optimizer and scheduler step on each side from their losses, every gradient compared first."""
    for opt in opts:
        opt.zero_grad()
    tl.backward()
    vl.backward()
    tg = dict(tm.named_parameters())
    for n, p in vm.named_parameters():
        np.testing.assert_allclose(p.grad.cpu().numpy(), tg[n].grad.cpu().numpy(), rtol=1e-6, atol=1e-10,
                                   err_msg=f"grad {n} at step {step}")
    for opt in opts:
        opt.step()
    for sched in scheds:
        sched.step()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("grad", [True, False])  # inference code samples under no_grad
def test_sampled_and_grouped_indices_are_identical(grad, device):
    with torch.set_grad_enabled(grad), vt.set_grad_enabled(grad):
        check_indices(device)


def check_indices(device):
    pts, _ = shapes(0)
    xyz = pts.transpose(0, 2, 1).copy()
    start = np.random.default_rng(1).integers(0, xyz.shape[1], xyz.shape[0])
    (t_xyz, t_start), (v_xyz, v_start) = both(device, xyz, start)
    t_fps, v_fps = tp.farthest_point_sample(t_xyz, 8, t_start), vp.farthest_point_sample(v_xyz, 8, v_start)
    assert v_fps.dtype == vt.int64
    np.testing.assert_array_equal(v_fps.cpu().numpy(), numpy_fps(xyz, 8, start))
    np.testing.assert_array_equal(v_fps.cpu().numpy(), t_fps.cpu().numpy())
    t_centres, v_centres = tp.index_points(t_xyz, t_fps), vp.index_points(v_xyz, v_fps)
    close(v_centres, t_centres, rtol=0, atol=0)
    centres = xyz[np.arange(xyz.shape[0])[:, None], numpy_fps(xyz, 8, start)]
    # radius 0.8 leaves some groups short (padded with their first member), 7 cuts others
    t_ball, v_ball = (tp.query_ball_point(0.8, 7, t_xyz, t_centres),
                      vp.query_ball_point(0.8, 7, v_xyz, v_centres))
    want = numpy_ball_query(0.8, 7, xyz, centres)
    inside = (((xyz[:, None, :, :] - centres[:, :, None, :]) ** 2).sum(-1) <= 0.64).sum(-1)
    assert (inside < 7).any() and (inside > 7).any(), inside
    np.testing.assert_array_equal(v_ball.cpu().numpy(), want)
    np.testing.assert_array_equal(v_ball.cpu().numpy(), t_ball.cpu().numpy())
    close(vp.index_points(v_xyz, v_ball), tp.index_points(t_xyz, t_ball), rtol=0, atol=0)
    (t_pts,), (v_pts,) = both(device, pts)
    v_knn = vp.knn(v_pts, 5)
    np.testing.assert_array_equal(v_knn.cpu().numpy(), numpy_knn(pts, 5))
    np.testing.assert_array_equal(v_knn.cpu().numpy(), tp.knn(t_pts, 5).cpu().numpy())
    close(vp.get_graph_feature(v_pts, 5), tp.get_graph_feature(t_pts, 5), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
def test_feature_transform_regularizer_and_its_gradient(device):
    a = np.random.default_rng(2).standard_normal((3, 4, 4))
    (ta,), (va,) = both(device, a)
    ta.requires_grad_(True)
    va.requires_grad_(True)
    tr, vr = tp.feature_transform_regularizer(ta), vp.feature_transform_regularizer(va)
    want = np.mean([np.linalg.norm(m @ m.T - np.eye(4)) for m in a])
    np.testing.assert_allclose(vr.item(), want, rtol=1e-12)
    close(vr, tr, rtol=1e-12, atol=0)
    tr.backward()
    vr.backward()
    close(va.grad, ta.grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("device", DEVICES)
def test_smoothed_one_hot_loss_against_numpy_and_torch(device):
    r = np.random.default_rng(6)
    pred, gold = r.standard_normal((5, 4)), r.integers(0, 4, 5)
    (tp_, tg_), (vp_, vg_) = both(device, pred, gold)
    vp_.requires_grad_(True)
    tp_.requires_grad_(True)
    vl, tl = vp.smoothed_one_hot_loss(vp_, vg_), tp.smoothed_one_hot_loss(tp_, tg_)
    target = np.full((5, 4), 0.2 / 3)
    target[np.arange(5), gold] = 0.8
    logp = pred - np.log(np.exp(pred).sum(1, keepdims=True))
    np.testing.assert_allclose(vl.item(), -(target * logp).sum(1).mean(), rtol=1e-12)
    vl.backward()
    tl.backward()
    close(vp_.grad, tp_.grad, rtol=1e-12, atol=1e-15)


def build(name, device, dtype="double", **cfg):
    torch.manual_seed(0)
    tm, vm = getattr(getattr(tp, name)(**cfg), dtype)(), getattr(getattr(vp, name)(**cfg), dtype)()
    assert list(vm.state_dict()) == list(tm.state_dict())
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def loss_of(m, mod, name, model, x, y, start):
    """Label-smoothed cross-entropy (plus PointNet's regulariser) and the logits (with PointNet's transforms)."""
    if name == "PointNetCls":
        out, trans, trans_feat = model(x)
        reg = mod.feature_transform_regularizer(trans_feat)
        return m.nn.functional.cross_entropy(out, y, label_smoothing=0.1) + 1e-3 * reg, (out, trans, trans_feat)
    if name == "DGCNN":
        out = model(x)
        return mod.smoothed_one_hot_loss(out, y), out
    out = model(x, start)
    return m.nn.CrossEntropyLoss(label_smoothing=0.1)(out, y), out


MODELS = ["PointNetCls", "DGCNN", "PointNet2Cls"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dtype", ["double", "float"])  # float: as public code runs, the T-Net's eye included
def test_output_and_every_gradient_match_torch(name, device, dtype):
    tm, vm = build(name, device, dtype)
    rtol, atol = (1e-8, 1e-12) if dtype == "double" else (2e-3, 1e-5)
    pts, labels = shapes(3)
    pts = pts.astype(np.float64 if dtype == "double" else np.float32)
    start = np.random.default_rng(4).integers(0, pts.shape[2], pts.shape[0])
    (tx, ty, ts), (vx, vy, vs) = both(device, pts, labels, start)
    tx.requires_grad_(True)
    vx.requires_grad_(True)
    tl, tout = loss_of(torch, tp, name, tm, tx, ty, ts)
    vl, vout = loss_of(vt, vp, name, vm, vx, vy, vs)
    for v, t in zip(vout, tout) if isinstance(vout, tuple) else [(vout, tout)]:
        assert v.dtype == getattr(vt, str(t.dtype).split(".")[1])
        close(v, t, rtol=1e-10 if dtype == "double" else 1e-4, atol=atol)
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-12 if dtype == "double" else 1e-5)
    tl.backward()
    vl.backward()
    close(vx.grad, tx.grad, rtol=rtol, atol=atol)
    tg = dict(tm.named_parameters())
    for n, p in vm.named_parameters():
        assert p.grad is not None, n
        np.testing.assert_allclose(p.grad.cpu().numpy(), tg[n].grad.cpu().numpy(), rtol=rtol, atol=atol,
                                   err_msg=n)
    if name == "PointNet2Cls":
        for v_idx, t_idx in zip(vm.sa1.last_indices, tm.sa1.last_indices):
            np.testing.assert_array_equal(v_idx.cpu().numpy(), t_idx.cpu().numpy())


def recipe(m, model, kind):
    """PointNet's Adam + StepLR, or DGCNN's SGD (momentum, weight decay, lr x100) + CosineAnnealingLR."""
    if kind == "adam_step":
        opt = m.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-08, weight_decay=1e-4)
        return opt, m.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    opt = m.optim.SGD(model.parameters(), lr=1e-3 * 100, momentum=0.9, weight_decay=1e-4)
    return opt, m.optim.lr_scheduler.CosineAnnealingLR(opt, 4, eta_min=1e-3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,kind", [(n, "adam_step") for n in MODELS] + [("DGCNN", "sgd_cosine")])
def test_training_matches_torch(name, kind, device):
    tm, vm = build(name, device)
    if kind == "sgd_cosine":  # DGCNN's LeakyReLU modules made in-place after their batch norms
        tm.apply(tp.inplace_relu)
        vm.apply(vp.inplace_relu)
        assert vm.conv1[2].inplace and vm.conv3[2].inplace
    (topt, tsched), (vopt, vsched) = recipe(torch, tm, kind), recipe(vt, vm, kind)
    r = np.random.default_rng(5)
    losses = []
    for step in range(4):
        pts, labels = shapes(10 + step)
        start = r.integers(0, pts.shape[2], pts.shape[0])
        (tx, ty, ts), (vx, vy, vs) = both(device, pts, labels, start)
        tl, _ = loss_of(torch, tp, name, tm, tx, ty, ts)
        vl, _ = loss_of(vt, vp, name, vm, vx, vy, vs)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-9, err_msg=f"loss at step {step}")
        losses.append(vl.item())
        step_both(tm, vm, (topt, vopt), (tsched, vsched), tl, vl, step)
        assert vsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    assert vopt.param_groups[0]["lr"] == pytest.approx(2.5e-3 if kind == "adam_step" else 1e-3)
    assert np.isfinite(losses).all() and len(set(losses)) == len(losses)
    ts = tm.state_dict()
    # biases before a batch norm (and the batch-norm biases the T-Nets' last batch norm cancels) have zero true
    # gradient: Adam with weight decay turns their ~1e-16 rounding into steps of ~1e-6, so atol 1e-5 (lr 1e-2)
    for k, v in vm.state_dict().items():  # weights, running statistics, num_batches_tracked
        np.testing.assert_allclose(v.cpu().numpy(), ts[k].cpu().numpy(), rtol=1e-6, atol=1e-5, err_msg=k)
    assert vm.state_dict()["bn1.num_batches_tracked" if name != "DGCNN" else "bn4.num_batches_tracked"].item() == 4
    tm.eval()
    vm.eval()
    pts, labels = shapes(99)
    start = np.zeros(pts.shape[0], dtype=np.int64)
    (tx, ty, ts_), (vx, vy, vs) = both(device, pts, labels, start)
    with torch.no_grad():
        _, tout = loss_of(torch, tp, name, tm, tx, ty, ts_)
    with vt.no_grad():
        _, vout = loss_of(vt, vp, name, vm, vx, vy, vs)
    for v, t in zip(vout, tout) if isinstance(vout, tuple) else [(vout, tout)]:  # those biases act in eval mode
        close(v, t, rtol=1e-4, atol=1e-5)
    logits = vout[0] if isinstance(vout, tuple) else vout
    want = int((logits.cpu().numpy().argmax(1) == labels).sum())
    assert vp.correct_count(logits, vy) == want == tp.correct_count(tout[0] if isinstance(tout, tuple) else tout, ty)


@pytest.mark.parametrize("device", DEVICES)
def test_part_segmentation_with_msg_and_propagation_trains_like_torch(device):
    """PointNet++ part segmentation: xavier init by model.apply(weights_init), batch-norm momentum changed by
    model.apply, class one-hots from to_categorical, per-point nll_loss, Adam + StepLR."""
    torch.manual_seed(0)
    tm, vm = tp.PointNet2PartSeg().double(), vp.PointNet2PartSeg().double()
    tm.apply(tp.weights_init)
    vm.apply(vp.weights_init)  # vibetensor's own xavier draws, replaced by torch's below
    assert vm.conv1.bias.abs().sum().item() == 0.0 and vm.conv1.weight.abs().sum().item() > 0
    load_torch_weights(vm, tm)
    tm, vm = tm.to(device), vm.to(device)
    tm.apply(lambda m: tp.bn_momentum_adjust(m, 0.3))
    vm.apply(lambda m: vp.bn_momentum_adjust(m, 0.3))
    assert vm.fp1.mlp_bns[0].momentum == 0.3
    topt, vopt = torch.optim.Adam(tm.parameters(), lr=1e-2), vt.optim.Adam(vm.parameters(), lr=1e-2)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.5)
    vsched = vt.optim.lr_scheduler.StepLR(vopt, step_size=2, gamma=0.5)
    r = np.random.default_rng(7)
    for step in range(3):
        pts, labels = shapes(20 + step)
        category = labels % 2
        parts = (pts[:, 2] > 0).astype(np.int64) + 2 * category[:, None]  # [B, N] in 0..3
        start = r.integers(0, pts.shape[2], pts.shape[0])
        (tx, tc, ty, ts), (vx, vc, vy, vs) = both(device, pts, category, parts, start)
        t_hot, v_hot = tp.to_categorical(tc, 2), vp.to_categorical(vc, 2)
        assert v_hot.dtype == vt.float32 and str(v_hot.device) == str(t_hot.device)
        np.testing.assert_array_equal(v_hot.cpu().numpy(), np.eye(2)[category])
        tpred, vpred = tm(tx, t_hot.double(), ts), vm(vx, v_hot.double(), vs)
        close(vpred, tpred, rtol=1e-10, atol=1e-12)
        tl = torch.nn.functional.nll_loss(tpred.contiguous().view(-1, 4), ty.view(-1, 1)[:, 0])
        vl = vt.nn.functional.nll_loss(vpred.contiguous().view(-1, 4), vy.view(-1, 1)[:, 0])
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-10, err_msg=f"loss at step {step}")
        step_both(tm, vm, (topt, vopt), (tsched, vsched), tl, vl, step)
    ts_ = tm.state_dict()
    for k, v in vm.state_dict().items():
        np.testing.assert_allclose(v.cpu().numpy(), ts_[k].cpu().numpy(), rtol=1e-6, atol=1e-9, err_msg=k)
