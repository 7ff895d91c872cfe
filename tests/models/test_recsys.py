"""The recommendation models of tests/models/recsys.py, loaded once with torch and once with vibetensor swapped in
for torch, with the same weights: nn.EmbeddingBag in every mode and option (offsets with and without the last
offset, per_sample_weights, padding_idx, empty bags) with the gradients of its weight and per_sample_weights,
the DLRM dot interaction, the DLRM's logits, BCEWithLogitsLoss(pos_weight) and every gradient, its training
with Adagrad + Adam (and with one grouped Adagrad): losses each step, final weights and optimizer states; the
Wide&Deep hashed crosses (exactly) and training; the two-tower in-batch softmax with logQ correction (its item
tower pooling a jagged history with torch.segment_reduce) and accidental hits masked; a numpy-initialised DLRM
resumed from a torch checkpoint under warmup/decay schedulers; AUC (ranks and trapezoidal), logloss, recall@k.
On the CPU and, where both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights
from swap_import import pair

trs, vrs = pair("recsys.py")


def bag_batch(r, rows, nbags, include_last_offset, weighted, pad=None, max_len=4):
    """indices, offsets and per-sample weights (or None) of nbags bags, bags 1 and the last one empty; with
    pad, some entries are the padding row (a bag of padding only included)."""
    lengths = r.integers(1, max_len + 1, size=nbags)
    lengths[1] = 0
    lengths[-1] = 0
    idx = r.integers(0, rows, size=int(lengths.sum())).astype(np.int64)
    if pad is not None:
        idx[r.random(idx.shape[0]) < 0.3] = pad
        idx[0:lengths[0]] = pad  # bag 0: padding only
    off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if not include_last_offset:
        off = off[:-1]
    w = r.standard_normal(idx.shape[0]).astype(np.float32) if weighted else None
    return idx, off, w


def to_pair(device, idx, off, w):
    (ti, to), (vi, vo) = both(device, idx, off)
    if w is None:
        return (ti, to, None), (vi, vo, None)
    (tw,), (vw,) = both(device, w)
    return (ti, to, tw), (vi, vo, vw)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode,weighted", [("sum", False), ("sum", True), ("mean", False), ("max", False)])
@pytest.mark.parametrize("include_last_offset", [False, True])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_bag_matches_torch(device, mode, weighted, include_last_offset, padding_idx):
    r = np.random.default_rng(7)
    tbag = torch.nn.EmbeddingBag(9, 5, mode=mode, include_last_offset=include_last_offset,
                                 padding_idx=padding_idx).to(device)
    vbag = vt.nn.EmbeddingBag(9, 5, mode=mode, include_last_offset=include_last_offset, padding_idx=padding_idx)
    load_torch_weights(vbag, tbag)
    vbag = vbag.to(device)
    (ti, to, tw), (vi, vo, vw) = to_pair(device, *bag_batch(r, 9, 6, include_last_offset, weighted, padding_idx))
    if weighted:
        tw.requires_grad_()
        vw.requires_grad_()
    tout = tbag(ti, to, per_sample_weights=tw)
    vout = vbag(vi, vo, per_sample_weights=vw)
    assert tuple(vout.shape) == tuple(tout.shape) == (6, 5)
    close(vout, tout)
    assert not vout[-1].detach().cpu().numpy().any()  # the empty bag is zeros
    (g,), (vg,) = both(device, r.standard_normal((6, 5)).astype(np.float32))
    (tout * g).sum().backward()
    (vout * vg).sum().backward()
    close(vbag.weight.grad, tbag.weight.grad)
    if padding_idx is not None:
        assert not vbag.weight.grad[padding_idx].cpu().numpy().any()
    if weighted:
        close(vw.grad, tw.grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_2d_input_and_functional_match_torch(device, mode):
    r = np.random.default_rng(3)
    w = r.standard_normal((8, 4)).astype(np.float32)
    idx = r.integers(0, 8, size=(5, 3))
    psw = r.standard_normal((5, 3)).astype(np.float32) if mode == "sum" else None
    (tw, ti), (vw, vi) = both(device, w, idx)
    tw.requires_grad_()
    vw.requires_grad_()
    tp = None if psw is None else torch.from_numpy(psw).to(device)
    vp = None if psw is None else vt.from_numpy(psw).to(device)
    tout = torch.nn.functional.embedding_bag(ti, tw, mode=mode, per_sample_weights=tp)
    vout = vt.nn.functional.embedding_bag(vi, vw, mode=mode, per_sample_weights=vp)
    close(vout, tout)
    tout.pow(2).sum().backward()
    vout.pow(2).sum().backward()
    close(vw.grad, tw.grad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precomputed", [False, True])
def test_dot_interaction_matches_torch(device, precomputed):
    r = np.random.default_rng(1)
    arrs = [r.standard_normal((3, 4)).astype(np.float32) for _ in range(4)]
    tx, vx = both(device, *arrs)
    for t in tx + vx:
        t.requires_grad_()
    tint = trs.DotInteraction(4, precomputed).to(device)
    vint = vrs.DotInteraction(4, precomputed).to(device)
    tout = tint(tx[0], list(tx[1:]))
    vout = vint(vx[0], list(vx[1:]))
    assert tuple(vout.shape) == (3, 4 + 6)
    close(vout, tout)
    # the first pair product is dense . first sparse
    np.testing.assert_allclose(vout[:, 4].detach().cpu().numpy(), (arrs[0] * arrs[1]).sum(1), rtol=1e-5)
    tout.pow(2).sum().backward()
    vout.pow(2).sum().backward()
    for v, t in zip(vx, tx):
        close(v.grad, t.grad, rtol=1e-4)


CFG = dict(num_dense=4, emb_dim=8, bag_tables=((10, "sum"), (12, "mean"), (9, "max")), onehot_tables=(7, 5),
           qr_table=(1000, 37))


def build(cls, device, seed=0, **cfg):
    torch.manual_seed(seed)
    tm = getattr(trs, cls)(**cfg)
    vm = getattr(vrs, cls)(**cfg)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def dlrm_batch(seed, device, batch=8, include_last_offset=False, padding_idx=None, cfg=CFG):
    """(torch inputs, vibetensor inputs, labels as both) of one DLRM batch; the sum table is weighted."""
    r = np.random.default_rng(seed)
    dense = np.log1p(r.exponential(2.0, size=(batch, cfg["num_dense"]))).astype(np.float32)
    (td,), (vd,) = both(device, dense)
    tb, vb = [], []
    for rows, mode in cfg["bag_tables"]:
        t, v = to_pair(device, *bag_batch(r, rows, batch, include_last_offset, mode == "sum", padding_idx))
        tb.append(t)
        vb.append(v)
    if cfg.get("qr_table"):  # ids up to 1000 into the quotient-remainder table, weighted
        t, v = to_pair(device, *bag_batch(r, cfg["qr_table"][0], batch, include_last_offset, True))
        tb.append(t)
        vb.append(v)
    onehot = np.stack([r.integers(0, n, size=batch) for n in cfg["onehot_tables"]], axis=1)
    labels = (r.random(batch) < 0.3).astype(np.float32)
    labels[:2] = [1, 0]  # both classes present: the AUC is defined
    (to, tl), (vo, vl) = both(device, onehot, labels)
    return (td, tb, to), (vd, vb, vo), (tl, vl)


@pytest.mark.parametrize("device", DEVICES)
def test_dlrm_forward_and_gradients_match_torch(device):
    tm, vm = build("DLRM", device, **CFG)
    (td, tb, to), (vd, vb, vo), (tl, vl) = dlrm_batch(0, device)
    td.requires_grad_()
    vd.requires_grad_()
    tlogits = tm(td, tb, to)
    vlogits = vm(vd, vb, vo)
    close(vlogits, tlogits)
    pos_weight = np.array([2.5], dtype=np.float32)
    (tpw,), (vpw,) = both(device, pos_weight)
    tloss = torch.nn.BCEWithLogitsLoss(pos_weight=tpw)(tlogits, tl)
    vloss = vt.nn.BCEWithLogitsLoss(pos_weight=vpw)(vlogits, vl)
    np.testing.assert_allclose(vloss.item(), tloss.item(), rtol=1e-5)
    tloss.backward()
    vloss.backward()
    close(vd.grad, td.grad, rtol=1e-3, atol=1e-6)
    tp = dict(tm.named_parameters())
    names = [n for n, _ in vm.named_parameters()]
    assert names == list(tp)
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tp[name].grad, rtol=1e-3, atol=1e-6)
    # the mean table's rows no index reached have no gradient
    assert (vm.bags[1].weight.grad.abs().sum(1).cpu().numpy() > 0).sum() < 12


def check_optimizer_state(vopt, topt):
    vs, ts = vopt.state_dict(), topt.state_dict()
    assert len(vs["param_groups"]) == len(ts["param_groups"])
    for vg, tg in zip(vs["param_groups"], ts["param_groups"]):
        assert vg["params"] == tg["params"]
        for key in ("lr", "weight_decay"):
            assert vg[key] == pytest.approx(tg[key])
    assert sorted(vs["state"]) == sorted(ts["state"])
    for k, tstate in ts["state"].items():
        vstate = vs["state"][k]
        assert sorted(vstate) == sorted(tstate), k
        for key, tval in tstate.items():
            if key == "step":
                assert float(vstate[key]) == float(tval)
            else:
                close(vstate[key], tval, rtol=1e-3, atol=1e-6)


def train(tm, vm, topts, vopts, batches, loss_fns, steps):
    """Both models stepped on the same batches with their optimizer lists; returns the vibetensor losses."""
    losses = []
    for step in range(steps):
        tinp, vinp, (tl, vl) = batches[step % len(batches)]
        tloss = loss_fns[0](tm(*tinp), tl)
        vloss = loss_fns[1](vm(*vinp), vl)
        np.testing.assert_allclose(vloss.item(), tloss.item(), rtol=2e-4)
        losses.append(vloss.item())
        for opt in topts + vopts:
            opt.zero_grad()
        tloss.backward()
        vloss.backward()
        for opt in topts + vopts:
            opt.step()
    first = (steps - 1) % len(batches)  # the last batch's first loss: losses of one batch must fall
    assert losses[-1] < losses[first], losses
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
    return losses


@pytest.mark.parametrize("device", DEVICES)
def test_dlrm_trains_with_adagrad_and_adam_like_torch(device):
    tm, vm = build("DLRM", device, **CFG)
    batches = [dlrm_batch(s, device) for s in range(3)]
    (tpw,), (vpw,) = both(device, np.array([3.0], dtype=np.float32))
    topts, vopts = trs.make_optimizers(tm), vrs.make_optimizers(vm)
    assert isinstance(vopts[0], vt.optim.Adagrad) and isinstance(vopts[1], vt.optim.Adam)
    train(tm, vm, list(topts), list(vopts), batches,
          (torch.nn.BCEWithLogitsLoss(pos_weight=tpw), vt.nn.BCEWithLogitsLoss(pos_weight=vpw)), 9)
    for vopt, topt in zip(vopts, topts):
        check_optimizer_state(vopt, topt)
    # metrics on the training batches after training
    tinp, vinp, (tl, vl) = batches[0]
    with torch.no_grad(), vt.no_grad():
        tlogits, vlogits = tm(*tinp), vm(*vinp)
        np.testing.assert_allclose(vrs.auc(vlogits, vl).item(), trs.auc(tlogits, tl).item(), rtol=1e-12)
        np.testing.assert_allclose(vrs.roc_auc_trapezoid(vlogits, vl).item(),
                                   trs.roc_auc_trapezoid(tlogits, tl).item(), rtol=1e-6)
        np.testing.assert_allclose(vrs.logloss(vlogits, vl).item(), trs.logloss(tlogits, tl).item(), rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_dlrm_last_offset_padding_and_grouped_adagrad_match_torch(device):
    cfg = dict(CFG, include_last_offset=True, padding_idx=0, precomputed_index=True)
    tm, vm = build("DLRM", device, seed=1, **cfg)
    batches = [dlrm_batch(s, device, include_last_offset=True, padding_idx=0) for s in range(10, 12)]
    topt, vopt = trs.grouped_optimizer(tm), vrs.grouped_optimizer(vm)
    train(tm, vm, [topt], [vopt], batches,
          (torch.nn.BCEWithLogitsLoss(), vt.nn.BCEWithLogitsLoss()), 6)
    check_optimizer_state(vopt, topt)
    assert not vm.bags[0].weight[0].detach().cpu().numpy().any()  # the padding row never moves


def to_vt(obj):
    """A torch state dict (nested dicts and lists of tensors) with vibetensor tensors in it."""
    if isinstance(obj, torch.Tensor):
        return vt.from_numpy(obj.detach().cpu().numpy().copy())
    if isinstance(obj, dict):
        return {k: to_vt(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_vt(v) for v in obj]
    return obj


def test_dlrm_numpy_init_scheduler_and_checkpoint_resume_match_torch():
    """Weights drawn with numpy and set through .data, Adagrad + Adam each under a warmup/decay policy; torch
    trains three steps, its model, optimizer and scheduler state dicts resume the vibetensor twin, and both
    go on side by side."""
    tm = trs.DLRM(**CFG).init_from_numpy(5)
    vm = vrs.DLRM(**CFG).init_from_numpy(5)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.requires_grad and p.is_leaf, name
        np.testing.assert_array_equal(p.detach().numpy(), tp[name].detach().numpy())
    batches = [dlrm_batch(s, "cpu") for s in range(2)]
    loss_fns = (torch.nn.BCEWithLogitsLoss(), vt.nn.BCEWithLogitsLoss())
    topts, vopts = trs.make_optimizers(tm), vrs.make_optimizers(vm)
    tscheds = [trs.LRPolicyScheduler(o, 3, 5, 4) for o in topts]
    vscheds = [vrs.LRPolicyScheduler(o, 3, 5, 4) for o in vopts]
    assert isinstance(vscheds[0], vt.optim.lr_scheduler.LRScheduler)

    def step(m, opts, scheds, inputs, labels, fn):
        loss = fn(m(*inputs), labels)
        for o in opts:
            o.zero_grad()
        loss.backward()
        for o, sc in zip(opts, scheds):
            o.step()
            sc.step()
        return loss.item()
    for i in range(3):
        tinp, _, (tl, _) = batches[i % 2]
        step(tm, topts, tscheds, tinp, tl, loss_fns[0])
    vm.load_state_dict(to_vt(tm.state_dict()))
    for vo, to in zip(vopts, topts):
        vo.load_state_dict(to_vt(to.state_dict()))
    for vs, ts in zip(vscheds, tscheds):
        vs.load_state_dict(ts.state_dict())
    for i in range(3, 9):
        tinp, vinp, (tl, vl) = batches[i % 2]
        tloss = step(tm, topts, tscheds, tinp, tl, loss_fns[0])
        vloss = step(vm, vopts, vscheds, vinp, vl, loss_fns[1])
        np.testing.assert_allclose(vloss, tloss, rtol=2e-4)
        for vs, ts in zip(vscheds, tscheds):
            assert vs.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)
    assert tscheds[0].get_last_lr()[0] < topts[0].defaults["lr"]  # it is decaying by now
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
    for vo, to in zip(vopts, topts):
        check_optimizer_state(vo, to)


def test_metrics_against_numpy():
    r = np.random.default_rng(4)
    scores = r.standard_normal(40)
    labels = (r.random(40) < 0.4).astype(np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    ref = (pos[:, None] > neg[None, :]).mean()
    (ts, tl), (vs, vl) = both("cpu", scores, labels)
    np.testing.assert_allclose(vrs.auc(vs, vl).item(), ref, rtol=1e-12)
    np.testing.assert_allclose(vrs.auc(vs, vl).item(), trs.auc(ts, tl).item(), rtol=1e-12)
    np.testing.assert_allclose(vrs.roc_auc_trapezoid(vs, vl).item(), ref, rtol=1e-12)
    np.testing.assert_allclose(trs.roc_auc_trapezoid(ts, tl).item(), ref, rtol=1e-12)
    p = np.clip(1 / (1 + np.exp(-scores)), 1e-7, 1 - 1e-7)
    ref_ll = -(labels * np.log(p) + (1 - labels) * np.log1p(-p)).mean()
    np.testing.assert_allclose(vrs.logloss(vs, vl).item(), ref_ll, rtol=1e-10)
    q = r.standard_normal((6, 10))
    targets = r.integers(0, 10, size=6)
    (tq, tt), (vq, vtg) = both("cpu", q, targets)
    ref_r = np.mean([t in np.argsort(-row)[:3] for row, t in zip(q, targets)])
    np.testing.assert_allclose(vrs.recall_at_k(vq, vtg, 3).item(), ref_r)
    np.testing.assert_allclose(vrs.recall_at_k(vq, vtg, 3).item(), trs.recall_at_k(tq, tt, 3).item())


def wd_batch(seed, device, batch=10, field_sizes=(6, 9, 5), num_dense=3):
    r = np.random.default_rng(seed)
    ids = np.stack([r.integers(0, n, size=batch) for n in field_sizes], axis=1)
    dense = r.standard_normal((batch, num_dense)).astype(np.float32)
    labels = (r.random(batch) < 0.5).astype(np.float32)
    (ti, td, tl), (vi, vd, vl) = both(device, ids, dense, labels)
    return (ti, td), (vi, vd), (tl, vl)


@pytest.mark.parametrize("device", DEVICES)
def test_wide_and_deep_crosses_and_training_match_torch(device):
    tm, vm = build("WideAndDeep", device)
    (ti, td), (vi, vd), _ = wd_batch(0, device)
    twide, vwide = tm.wide_ids(ti, td), vm.wide_ids(vi, vd)
    assert vwide.dtype == vt.int64
    np.testing.assert_array_equal(vwide.cpu().numpy(), twide.cpu().numpy())
    # the crosses spread over their buckets and stay in them; the dense feature's buckets are numpy's
    crosses = vwide[:, 3:].cpu().numpy() - 20
    assert crosses.min() >= 0 and crosses.max() < 4 * 37 and len(np.unique(crosses)) > 10
    bounds = np.array([-1.0, -0.3, 0.0, 0.3, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(vt.bucketize(vd[:, 0].contiguous(), vm.boundaries).cpu().numpy(),
                                  np.searchsorted(bounds, vd[:, 0].cpu().numpy(), side="left"))
    a, b = np.arange(-5, 6), np.arange(11)[::-1].copy()
    (ta, tb), (va, vb) = both(device, a, b)
    np.testing.assert_array_equal(vrs.hash_cross(va, vb, 2, 13).cpu().numpy(),
                                  trs.hash_cross(ta, tb, 2, 13).cpu().numpy())
    batches = [wd_batch(s, device) for s in range(3)]
    topts, vopts = trs.make_optimizers(tm, adagrad_lr=0.1), vrs.make_optimizers(vm, adagrad_lr=0.1)
    train(tm, vm, list(topts), list(vopts), batches,
          (torch.nn.BCEWithLogitsLoss(), vt.nn.BCEWithLogitsLoss()), 8)
    for vopt, topt in zip(vopts, topts):
        check_optimizer_state(vopt, topt)


def tt_batch(seed, device, batch=6, num_users=11, num_items=17, repeats=False):
    """One two-tower batch; with repeats, item 0's row is repeated at the end (an accidental hit)."""
    r = np.random.default_rng(seed)
    users = r.choice(num_users, size=batch, replace=False)
    items = r.choice(num_items, size=batch, replace=False)
    if repeats:
        items[-1] = items[0]

    def hist(rows):
        idx, off, _ = bag_batch(r, rows, batch, True, False, max_len=3)
        return idx, off
    uh, uo = hist(num_items)
    ih, io = hist(num_users)
    counts = r.integers(1, 50, size=num_items)
    tin, vin = both(device, users, uh, uo, items, ih, io)
    return tin, vin, (trs.sampling_log_q(items, counts, device), vrs.sampling_log_q(items, counts, device))


def test_accidental_hits_are_masked():
    tm, vm = build("TwoTower", "cpu")
    tin, vin, (tq, vq) = tt_batch(3, "cpu", repeats=True)
    tu, tv = tm(*tin)
    vu, vv = vm(*vin)
    tloss, vloss = tm.in_batch_loss(tu, tv, tq, tin[3]), vm.in_batch_loss(vu, vv, vq, vin[3])
    np.testing.assert_allclose(vloss.item(), tloss.item(), rtol=1e-5)
    assert abs(vloss.item() - vm.in_batch_loss(vu, vv, vq).item()) > 1e-4  # the mask changed the loss
    tloss.backward()
    vloss.backward()
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tp[name].grad, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_two_tower_in_batch_softmax_matches_torch(device):
    tm, vm = build("TwoTower", device)
    tin, vin, (tq, vq) = tt_batch(0, device)
    assert vq.dtype == vt.float32
    close(vq, tq, rtol=1e-6)
    tu, tv = tm(*tin)
    vu, vv = vm(*vin)
    close(vu, tu)
    close(vv, tv)
    np.testing.assert_allclose(np.linalg.norm(vu.detach().cpu().numpy(), axis=1), 1, rtol=1e-5)
    tloss, vloss = tm.in_batch_loss(tu, tv, tq), vm.in_batch_loss(vu, vv, vq)
    np.testing.assert_allclose(vloss.item(), tloss.item(), rtol=1e-5)
    tloss.backward()
    vloss.backward()
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tp[name].grad, rtol=1e-3, atol=1e-6)
    topt = torch.optim.Adam(tm.parameters(), lr=0.01)
    vopt = vt.optim.Adam(vm.parameters(), lr=0.01)
    losses = []
    for step in range(6):
        tin, vin, (tq, vq) = tt_batch(step % 2, device, repeats=step % 2 == 1)
        tloss = tm.in_batch_loss(*tm(*tin), tq, tin[3])
        vloss = vm.in_batch_loss(*vm(*vin), vq, vin[3])
        np.testing.assert_allclose(vloss.item(), tloss.item(), rtol=2e-4)
        losses.append(vloss.item())
        topt.zero_grad()
        vopt.zero_grad()
        tloss.backward()
        vloss.backward()
        topt.step()
        vopt.step()
    assert losses[-2] < losses[0], losses  # the same batch, four steps apart
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
    check_optimizer_state(vopt, topt)
    with torch.no_grad(), vt.no_grad():
        tu, tv = tm(*tin)
        vu, vv = vm(*vin)
        targets = np.arange(6)
        (tt,), (vtg,) = both(device, targets)
        np.testing.assert_allclose(vrs.recall_at_k(vu @ vv.t(), vtg, 2).item(),
                                   trs.recall_at_k(tu @ tv.t(), tt, 2).item())
