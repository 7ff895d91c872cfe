"""The Conformer CTC recogniser of tests/models/conformer.py, loaded once with torch and once with vibetensor swapped
in for torch, with the same weights: its pieces against torch (the padding mask and subsampled lengths, SpecAugment
with the same draws, the relative position table and rel_shift, attention that puts no weight on padding, the
convolution module's BatchNorm statistics), the whole model's log-probabilities, CTC loss under every reduction
and every gradient (relative and absolute attention, float32 and float64, bfloat16 autocast), greedy decoding,
AdamW with a Noam schedule and clipping, and a state_dict round trip through save/load. On the CPU and, where both
see a GPU, on the GPU (marker cuda)."""
import io

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tconf, vconf = pair("conformer.py")

LENGTHS = np.array([31, 26, 17])
# the key bias (softmax ignores a shift along the keys) and the depthwise conv's bias (BatchNorm removes it) get
# gradients that are zero but for rounding
ROUNDING_ONLY = ("linear_k.bias", "depthwise_conv.bias")


def build(seed=0, device="cpu", **over):
    torch.manual_seed(seed)
    tm = tconf.ConformerCTC(tconf.ConformerConfig(**over))
    vm = vconf.ConformerCTC(vconf.ConformerConfig(**over))
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, device="cpu", lengths=LENGTHS, n_mels=20, concat=False):
    """Features zeroed past each length, padded targets (or concatenated), their lengths and SpecAugment draws."""
    r = np.random.default_rng(seed)
    b, t = len(lengths), int(lengths.max())
    x = r.standard_normal((b, t, n_mels)).astype(np.float32)
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    tlen = np.array([4, 3, 1, 2, 5][:b])
    tg = r.integers(1, 9, (b, int(tlen.max())))
    tg[np.arange(tg.shape[1])[None, :] >= tlen[:, None]] = 0  # padding, never read
    if concat:
        tg = np.concatenate([tg[i, :n] for i, n in enumerate(tlen)])
    draws = r.uniform(size=(4, 2, b)).astype(np.float32)
    return both(device, x, lengths, tg, tlen, draws)


def test_structure_and_buffers():
    tm, vm = build()
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert "pos_enc.pe" not in vm.state_dict() and "encoders.0.conv_module.norm.running_mean" in vm.state_dict()
    assert vm.encoders[0].conv_module.depthwise_conv.groups == 16
    assert tuple(vm.encoders[0].conv_module.depthwise_conv.weight.shape) == (16, 1, 7)
    close(vm.pos_enc.pe, tm.pos_enc.pe, rtol=1e-6, atol=1e-6)
    assert tuple(vm.pos_enc.pe.shape) == (1, 127, 16)
    _, fresh = build(seed=1)  # vibetensor's own xavier init of the position biases: bound sqrt(6 / (2 + 8))
    u = fresh.encoders[0].self_attn.pos_bias_u.detach().numpy()
    assert np.abs(u).max() <= np.sqrt(6 / 10) and u.std() > 0.2


def test_pad_mask_and_subsampled_lengths():
    (tl,), (vl,) = both("cpu", np.array([1, 7, 8, 31, 30]))
    assert vconf.make_pad_mask(vl).tolist() == tconf.make_pad_mask(tl).tolist()
    assert vconf.make_pad_mask(vl, 40).tolist() == tconf.make_pad_mask(tl, 40).tolist()
    assert vconf.subsampled_lengths(vl).tolist() == tconf.subsampled_lengths(tl).tolist() == [-1, 1, 1, 7, 6]
    # the conv subsampling's output length is what the formula gives for the longest utterance
    tm, vm = build()
    (tx, tlen, *_), (vx, vlen, *_) = batch(0)
    vm.eval()
    tm.eval()
    with torch.no_grad(), vt.no_grad():
        txs, tmask = tm.embed(tx, ~tconf.make_pad_mask(tlen).unsqueeze(1))
        vxs, vmask = vm.embed(vx, ~vconf.make_pad_mask(vlen).unsqueeze(1))
    assert vxs.shape[1] == vconf.subsampled_lengths(vlen).max().item() == 7
    assert vmask.tolist() == tmask.tolist()
    close(vxs, txs)


def test_specaugment_masks_as_torch():
    (tx, tlen, _, _, td), (vx, vlen, _, _, vd) = batch(3)
    ta, va = tconf.SpecAugment(), vconf.SpecAugment()
    tout, vout = ta(tx, td), va(vx, vd)
    close(vout, tout, rtol=0, atol=1e-6)
    masked = (vout.numpy() != vx.numpy())
    assert masked.any() and (vout.numpy()[:, :, :][masked] != 0).any()  # the frequency masks fill the mean
    # each time mask is one band of consecutive frames: at most 2 bands of < 6 frames per utterance
    frames = (vout.numpy() == 0).all(-1) & (vx.numpy() != 0).any(-1)
    assert frames.sum(1).max() <= 10
    va.eval()
    assert va(vx) is vx
    va.train()
    vt.manual_seed(0)
    rand = va(vx).numpy()  # vibetensor's own draws: bands of the allowed widths
    freq = (rand == rand[0:1, 0:1, :]).all(1)
    assert rand.shape == vx.shape and freq.sum(-1).max() <= 8


def test_rel_position_table_and_rel_shift():
    tm, vm = build()
    x = np.random.default_rng(1).standard_normal((2, 5, 16)).astype(np.float32)
    (tx,), (vx,) = both("cpu", x)
    (txs, tpos), (vxs, vpos) = tm.pos_enc(tx), vm.pos_enc(vx)
    close(vxs, txs)
    close(vpos, tpos, rtol=1e-6, atol=1e-6)
    assert tuple(vpos.shape) == (1, 9, 16)
    # the middle row is relative position 0: sin 0 = 0, cos 0 = 1
    np.testing.assert_allclose(vpos.numpy()[0, 4], np.tile([0.0, 1.0], 8), atol=1e-7)
    # rel_shift moves score[i, T-1-(i-j)] (relative position i - j) to key j
    s = np.random.default_rng(2).standard_normal((2, 3, 5, 9)).astype(np.float32)
    (ts,), (vs,) = both("cpu", s)
    vshift = vconf.RelPositionMultiHeadedAttention.rel_shift(vs).numpy()
    np.testing.assert_array_equal(vshift, tconf.RelPositionMultiHeadedAttention.rel_shift(ts).numpy())
    i, j = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    np.testing.assert_array_equal(vshift, s[:, :, i, 4 - i + j])
    # a longer input than the table: it is rebuilt, as torch's
    long = np.random.default_rng(3).standard_normal((1, 70, 16)).astype(np.float32)
    (tl,), (vl,) = both("cpu", long)
    close(vm.pos_enc(vl)[1], tm.pos_enc(tl)[1], rtol=1e-5, atol=1e-5)
    assert tuple(vm.pos_enc.pe.shape) == (1, 139, 16)


@pytest.mark.parametrize("pos", ["rel", "abs"])
def test_attention_puts_no_weight_on_padding(pos):
    tm, vm = build(pos=pos)
    (tx, tlen, *_), (vx, vlen, *_) = batch(4)
    tm.eval()
    vm.eval()
    with torch.no_grad(), vt.no_grad():
        tm.encode(tx, tlen)
        vm.encode(vx, vlen)
    for tb, vb in zip(tm.encoders, vm.encoders):
        attn = vb.self_attn.attn.numpy()
        close(vb.self_attn.attn, tb.self_attn.attn, rtol=1e-4, atol=1e-6)
        keys = attn.sum(axis=tuple(range(1, attn.ndim - 1)))  # per batch, key
        assert keys.shape[-1] == 7 and (keys[2, 5:] == 0).all() and (keys[2, :5] > 0).all()


def test_batchnorm_statistics_follow_torch():
    tm, vm = build()
    (tx, tlen, tg, tgl, td), (vx, vlen, vg, vgl, vd) = batch(5)
    for _ in range(2):
        tm(tx, tlen, tg, tgl, draws=td)
        vm(vx, vlen, vg, vgl, draws=vd)
    for tb, vb in zip(tm.encoders, vm.encoders):
        tn, vn = tb.conv_module.norm, vb.conv_module.norm
        close(vn.running_mean, tn.running_mean)
        close(vn.running_var, tn.running_var)
        assert vn.num_batches_tracked.item() == tn.num_batches_tracked.item() == 2
    tm.eval()
    vm.eval()
    close(vm(vx, vlen)[0], tm(tx, tlen)[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pos", ["rel", "abs"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_forward_ctc_loss_and_gradients_match_torch(reduction, pos, device):
    tm, vm = build(device=device, pos=pos)
    (tx, tlen, tg, tgl, td), (vx, vlen, vg, vgl, vd) = batch(6, device=device, concat=reduction == "sum")
    tlp, tolen, tl = tm(tx, tlen, tg, tgl, draws=td, reduction=reduction)
    vlp, volen, vl = vm(vx, vlen, vg, vgl, draws=vd, reduction=reduction)
    close(vlp, tlp)
    assert volen.tolist() == tolen.tolist()
    close(vl, tl)
    w = np.array([1.0, -0.5, 2.0], dtype=np.float32)
    (tw,), (vw,) = both(device, w)
    (tl * tw).sum().backward() if reduction == "none" else tl.backward()
    (vl * vw).sum().backward() if reduction == "none" else vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-5)
    assert np.abs(vm.embed.conv[0].weight.grad.cpu().numpy()).max() > 1e-4


def test_zero_infinity_and_infeasible_targets():
    """An utterance too short for its target (7 frames after subsampling, 6 labels with 3 repeats): inf, or 0 with
    no gradient under zero_infinity, as torch."""
    tm, vm = build(seed=2)
    lengths = np.array([31, 27])
    r = np.random.default_rng(7)
    x = r.standard_normal((2, 31, 20)).astype(np.float32)
    tg = np.array([[1, 1, 2, 2, 3, 3], [1, 1, 2, 0, 0, 0]])  # the repeats need blanks between: 9 frames
    (tx, tlen, ttg, ttl), (vx, vlen, vtg, vtl) = both("cpu", x, lengths, tg, np.array([6, 3]))
    tm.eval()
    vm.eval()
    for zi in (False, True):
        tl = tm(tx, tlen, ttg, ttl, reduction="none", zero_infinity=zi)[2]
        vl = vm(vx, vlen, vtg, vtl, reduction="none", zero_infinity=zi)[2]
        assert vl.tolist()[0] == tl.tolist()[0] == (0.0 if zi else float("inf")) and vl.tolist()[1] > 1
        close(vl, tl)
    vl.sum().backward()
    tl.sum().backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-3, atol=1e-5)


def test_float64_model_matches_torch_tightly():
    tm, vm = build(seed=3)
    tm.double()
    vm.double()
    # the position table is built in float32 (torch.zeros' default), where vibetensor's sin/cos differ from
    # torch's in the last bit for some arguments: torch's table, so that the comparison is of the float64 model
    close(vm.pos_enc.pe, tm.pos_enc.pe, rtol=0, atol=1.2e-7)
    assert vm.pos_enc.pe.dtype == vt.float64
    vm.pos_enc.pe = vt.from_numpy(tm.pos_enc.pe.numpy().copy())
    (tx, tlen, tg, tgl, td), (vx, vlen, vg, vgl, vd) = batch(8)
    tlp, _, tl = tm(tx.double(), tlen, tg, tgl, draws=td.double())
    vlp, _, vl = vm(vx.double(), vlen, vg, vgl, draws=vd.double())
    assert vlp.dtype == vt.float64 and vl.dtype == vt.float64 and vm.pos_enc(vx.double())[1].dtype == vt.float64
    close(vlp, tlp, rtol=1e-10, atol=1e-12)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tgrads[name].grad, rtol=1e-7, atol=1e-11)


def test_bfloat16_autocast_casts_as_torch():
    tm, vm = build(seed=4)
    (tx, tlen, tg, tgl, td), (vx, vlen, vg, vgl, vd) = batch(9)
    results = []
    for lib, model, args in ((torch, tm, (tx, tlen, tg, tgl, td)), (vt, vm, (vx, vlen, vg, vgl, vd))):
        seen = []
        handles = [m.register_forward_hook(lambda mod, a, out, name=name: seen.append(
            (name, str(out.dtype).split(".")[-1]))) for name, m in model.named_modules()
            if name and isinstance(m, (lib.nn.Linear, lib.nn.Conv1d, lib.nn.Conv2d, lib.nn.BatchNorm1d,
                                       lib.nn.LayerNorm))]
        with lib.autocast("cpu", dtype=lib.bfloat16):
            lp, _, loss = model(*args[:4], draws=args[4])
        for h in handles:
            h.remove()
        results.append((seen, lp, loss))
    (tseen, tlp, tl), (vseen, vlp, vl) = results
    assert vseen == tseen and ("encoders.0.conv_module.depthwise_conv", "bfloat16") in vseen
    assert str(vlp.dtype).split(".")[-1] == str(tlp.dtype).split(".")[-1] == "bfloat16"
    assert vl.dtype == vt.float32 and tl.dtype == torch.float32
    np.testing.assert_allclose(vl.item(), tl.item(), rtol=3e-2)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    # bfloat16 rounding compounds backwards through the subsampling convs (there, torch's own error against the
    # float32 gradients is a twentieth of the largest entry; each library's conv alone agrees with torch's)
    for name, p in vm.named_parameters():
        g, t = p.grad.numpy(), tgrads[name].grad.numpy()
        if not name.endswith(ROUNDING_ONLY):
            assert p.grad.dtype == vt.float32 and np.abs(g - t).max() <= 0.2 * np.abs(t).max() + 1e-6, name


def test_greedy_decoding_matches_torch():
    r = np.random.default_rng(10)
    lp = np.log(r.dirichlet(np.ones(5) * 0.3, size=(3, 12))).astype(np.float32)
    lp[0, :, 0] = -50.0  # no blanks: only repeats merge
    (tlp, tlen), (vlp, vlen) = both("cpu", lp, np.array([12, 9, 1]))
    hyps = vconf.greedy_decode(vlp, vlen)
    assert hyps == tconf.greedy_decode(tlp, tlen)
    best = lp.argmax(-1)
    expect = [[int(k) for i, k in enumerate(best[b, :n]) if (i == 0 or k != best[b, i - 1]) and k != 0]
              for b, n in enumerate([12, 9, 1])]
    assert hyps == expect and len(hyps[0]) >= 3


@pytest.mark.parametrize("device", DEVICES)
def test_adamw_noam_clipping_training_match_torch(device):
    tm, vm = build(seed=5, device=device)
    # ROUNDING_ONLY's gradients are zero but for rounding, as are those of the columns of linear_pos that read the
    # slowest cosines
    # (near 1 at every relative position: a shift along the keys again); AdamW's normalisation turns rounding into
    # full steps either way, so they are frozen here (test_gpt.py has the same effect on GEMM rounding)
    for model in (tm, vm):
        for name, p in model.named_parameters():
            if name.endswith(ROUNDING_ONLY + ("linear_pos.weight",)):
                p.requires_grad_(False)
    topt, vopt = tconf.configure_optimizer(tm, lr=0.1), vconf.configure_optimizer(vm, lr=0.1)
    nd = {id(p) for p in vopt.param_groups[1]["params"]}
    assert id(vm.encoders[0].self_attn.pos_bias_u) in nd and id(vm.ctc_lo.weight) not in nd
    scheds = (torch.optim.lr_scheduler.LambdaLR(topt, tconf.noam_lambda(16, 4)),
              vt.optim.lr_scheduler.LambdaLR(vopt, vconf.noam_lambda(16, 4)))
    data = [batch(40 + (s % 2), device=device) for s in range(6)]

    def losses_at(step):
        (tx, tlen, tg, tgl, td), (vx, vlen, vg, vgl, vd) = data[step]
        return tm(tx, tlen, tg, tgl, draws=td)[2], vm(vx, vlen, vg, vgl, draws=vd)[2]

    train_side_by_side(tm, vm, topt, vopt, losses_at, 6, clip=5.0, scheds=scheds, loss_rtol=5e-4)
    for tb, vb in zip(tm.encoders, vm.encoders):
        close(vb.conv_module.norm.running_var, tb.conv_module.norm.running_var, rtol=1e-3, atol=1e-4)


def test_state_dict_round_trip_through_save_and_load():
    tm, vm = build(seed=6)
    (tx, tlen, tg, tgl, td), (vx, vlen, vg, vgl, vd) = batch(11)
    vm(vx, vlen, vg, vgl, draws=vd)[2].backward()  # moves the BatchNorm statistics
    buf = io.BytesIO()
    vt.save(vm.state_dict(), buf)
    buf.seek(0)
    _, fresh = build(seed=7)
    fresh.load_state_dict(vt.load(buf))
    for (n, a), (m, b) in zip(vm.state_dict().items(), fresh.state_dict().items()):
        assert n == m and a.dtype == b.dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    vm.eval()
    fresh.eval()
    with vt.no_grad():
        np.testing.assert_array_equal(fresh(vx, vlen)[0].numpy(), vm(vx, vlen)[0].numpy())
    # and torch reads vibetensor's state (through numpy) into a model that then agrees
    tm.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in fresh.state_dict().items()})
    tm.eval()
    close(vm(vx, vlen)[0], tm(tx, tlen)[0])
