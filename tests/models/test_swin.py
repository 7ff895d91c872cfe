"""The Swin Transformer of tests/models/swin.py, loaded once with torch and once with vibetensor swapped in for
torch, from the same weights: the relative position index, the shifted-window attention mask and window
partition / reverse exactly as torch builds them; logits, the input gradient and every parameter gradient (with
and without padding to window multiples and odd-sized patch merging), attention written out or fused through
scaled_dot_product_attention with the bias and mask as attn_mask, blocks under activation checkpointing, the
index saved with the weights or not; AdamW steps with no-weight-decay param
groups, a cosine schedule with warmup (LambdaLR, or LinearLR + CosineAnnealingLR in SequentialLR) and
seeded DropPath; eval outputs after training. On the CPU and, where
both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tc, vc = pair("swin.py")


def build(seed=0, device="cpu", **cfg):
    torch.manual_seed(seed)
    tm = tc.SwinTransformer(**cfg)
    with torch.no_grad():  # a visible bias table, so that its gather and its gradient matter
        for name, p in tm.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0.0, 0.5)
    vm = vc.SwinTransformer(**cfg)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def images(seed, b=2, size=10):
    r = np.random.default_rng(seed)
    return r.standard_normal((b, 3, size, size)).astype(np.float32), r.integers(0, 5, size=b)


@pytest.mark.parametrize("ws", [2, 3, 4])
def test_relative_position_index_and_shift_mask_are_torchs(ws):
    vi, ti = vc.relative_position_index(ws), tc.relative_position_index(ws)
    assert vi.dtype == vt.int64 and tuple(vi.shape) == (ws * ws, ws * ws)
    np.testing.assert_array_equal(vi.numpy(), ti.numpy())
    assert vi.numpy().max() == (2 * ws - 1) ** 2 - 1 and vi.numpy().min() == 0
    for hw, shift in [((2 * ws, 2 * ws), ws // 2), ((3 * ws, 2 * ws), 1)]:
        vm_, tm_ = vc.shifted_window_mask(*hw, ws, shift), tc.shifted_window_mask(*hw, ws, shift)
        assert vm_.dtype == vt.float32 and tuple(vm_.shape) == tuple(tm_.shape)
        np.testing.assert_array_equal(vm_.numpy(), tm_.numpy())
        assert set(np.unique(vm_.numpy())) == {0.0, -100.0}  # the last window mixes regions: the mask bites
    x = np.random.default_rng(ws).standard_normal((2, 2 * ws, 3 * ws, 5)).astype(np.float32)
    vw, tw = vc.window_partition(vt.from_numpy(x), ws), tc.window_partition(torch.from_numpy(x), ws)
    np.testing.assert_array_equal(vw.numpy(), tw.numpy())
    np.testing.assert_array_equal(vc.window_reverse(vw, ws, 2 * ws, 3 * ws).numpy(), x)
    # the cyclic shift and its inverse
    vr = vt.roll(vt.from_numpy(x), shifts=(-1, -1), dims=(1, 2))
    np.testing.assert_array_equal(vr.numpy(), torch.roll(torch.from_numpy(x), shifts=(-1, -1), dims=(1, 2)).numpy())
    np.testing.assert_array_equal(vt.roll(vr, shifts=(1, 1), dims=(1, 2)).numpy(), x)


def test_structure_buffers_and_no_weight_decay():
    tm, vm = build(drop_path_rate=0.2)
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    # the index is a buffer of the module but, being persistent=False, not part of the state dict
    vb, tb = dict(vm.named_buffers()), dict(tm.named_buffers())
    assert sorted(vb) == sorted(tb) and "layers.0.1.attn.relative_position_index" in vb
    assert not any("relative_position_index" in k for k in vm.state_dict())
    for k in tb:
        np.testing.assert_array_equal(vb[k].numpy(), tb[k].numpy())
    assert vm.no_weight_decay() == tm.no_weight_decay() and len(vm.no_weight_decay()) == 4
    vg, tg = vc.param_groups(vm, 0.05), tc.param_groups(tm, 0.05)
    vn = {id(p): n for n, p in vm.named_parameters()}
    tn = {id(p): n for n, p in tm.named_parameters()}
    assert [[vn[id(p)] for p in g["params"]] for g in vg] == [[tn[id(p)] for p in g["params"]] for g in tg]
    assert [m.drop_path.drop_prob if isinstance(m.drop_path, vc.DropPath) else 0.0
            for blocks in vm.layers for m in blocks] == pytest.approx([0.0, 0.2 / 3, 0.4 / 3, 0.2])
    assert repr(vm.layers[1][1].drop_path) == repr(tm.layers[1][1].drop_path)
    # vibetensor's own init: trunc_normal_(std=.02) for the table and the Linear weights, unit / zero LayerNorms
    fresh = vc.SwinTransformer()
    table = fresh.layers[0][0].attn.relative_position_bias_table.detach().numpy()
    assert table.shape == (9, 2) and np.all(np.abs(table) <= 2.0) and 0.0 < table.std() < 0.1
    assert np.all(fresh.norm.weight.detach().numpy() == 1.0) and np.all(fresh.head.bias.detach().numpy() == 0.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fused", [False, True], ids=["written", "sdpa"])
@pytest.mark.parametrize("size", [8, 10, 12], ids=["no-pad", "pad", "pad-odd-merge"])
def test_logits_and_every_gradient_like_torch(device, size, fused):
    # 8: windows tile both stages; 10: 5x5 tokens padded to 6x6, merged to 3x3, padded to 4x4;
    # 12 with ws=4: 6x6 padded to 8x8, merged 3x3
    ws = 4 if size == 12 else 2
    tm, vm = build(device=device, ws=ws, fused_attn=fused)
    x, y = images(1, size=size)
    (tx, ty), (vx, vy) = both(device, x, y)
    tx.requires_grad_(True)
    vx.requires_grad_(True)
    tl, vl = tm(tx), vm(vx)
    close(vl, tl)
    torch.nn.functional.cross_entropy(tl, ty).backward()
    vt.nn.functional.cross_entropy(vl, vy).backward()
    close(vx.grad, tx.grad, rtol=1e-3, atol=1e-6)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        assert p.grad is not None, name
        close(p.grad, tp[name].grad, rtol=1e-3, atol=1e-6)
    assert np.abs(vm.layers[0][1].attn.relative_position_bias_table.grad.cpu().numpy()).max() > 0


@pytest.mark.parametrize("fused", [False, True], ids=["written", "sdpa"])
def test_float64_gradients_tightly(fused):
    torch.manual_seed(0)
    tm = tc.SwinTransformer(ws=2, fused_attn=fused).double()
    vm = vc.SwinTransformer(ws=2, fused_attn=fused).double()
    load_torch_weights(vm, tm)
    x = np.random.default_rng(5).standard_normal((2, 3, 10, 10))
    tx, vx = torch.from_numpy(x).requires_grad_(True), vt.from_numpy(x).requires_grad_(True)
    tl, vl = tm(tx), vm(vx)
    np.testing.assert_allclose(vl.detach().numpy(), tl.detach().numpy(), rtol=1e-10, atol=1e-12)
    (tl ** 2).sum().backward()
    (vl ** 2).sum().backward()
    np.testing.assert_allclose(vx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-12)
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[name].grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


def test_persistent_index_is_saved_and_loaded_like_torch():
    tm, vm = build(persistent_index=True)
    keys = [k for k in tm.state_dict() if k.endswith("relative_position_index")]
    assert len(keys) == 4 and list(vm.state_dict()) == list(tm.state_dict())
    for k in keys:
        assert vm.state_dict()[k].dtype == vt.int64
        np.testing.assert_array_equal(vm.state_dict()[k].numpy(), tm.state_dict()[k].numpy())
    # a checkpoint with the index loads into the model that leaves it out only when not strict
    _, lean = build()
    sd = vm.state_dict()
    with pytest.raises(RuntimeError, match="Unexpected key"):
        lean.load_state_dict(sd)
    result = lean.load_state_dict(sd, strict=False)
    assert sorted(result.unexpected_keys) == sorted(keys) and result.missing_keys == []


@pytest.mark.parametrize("device", DEVICES)
def test_checkpointed_blocks_give_torchs_gradients(device):
    tm, vm = build(device=device, use_checkpoint=True)
    _, plain = build(device=device)
    x, y = images(6, size=10)
    (tx, ty), (vx, vy) = both(device, x, y)
    losses = [torch.nn.functional.cross_entropy(tm(tx), ty)]
    losses += [vt.nn.functional.cross_entropy(m(vx), vy) for m in (vm, plain)]
    close(losses[1], losses[0])
    for loss in losses:
        loss.backward()
    tp, pp = dict(tm.named_parameters()), dict(plain.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tp[name].grad, rtol=1e-3, atol=1e-6)
        close(p.grad, pp[name].grad, rtol=1e-5, atol=1e-8)  # recomputing changes nothing


def test_fused_attention_computes_the_written_one():
    tm, written = build()
    fused = vc.SwinTransformer(fused_attn=True)
    fused.load_state_dict(written.state_dict())
    x, _ = images(4, size=10)
    a, b = written(vt.from_numpy(x)), fused(vt.from_numpy(x))
    close(b, a, rtol=1e-4, atol=1e-6)
    assert np.abs(a.detach().numpy()).max() > 1e-3  # not trivially zero


def test_drop_path_draws_from_numpy_and_is_identity_in_eval():
    dp = vc.DropPath(0.5)
    x = vt.ones((8, 3, 2))
    np.random.seed(3)
    y = dp(x).numpy()
    np.random.seed(3)
    keep = np.random.rand(8) < 0.5
    np.testing.assert_array_equal(y, np.where(keep, 2.0, 0.0)[:, None, None] * np.ones((8, 3, 2)))
    assert 0 < keep.sum() < 8  # some samples kept, some dropped
    dp.eval()
    assert dp(x) is x


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fused,schedule", [(False, "cosine_with_warmup"), (True, "warmup_then_cosine")],
                         ids=["written-lambda", "sdpa-sequential"])
def test_adamw_cosine_warmup_and_drop_path_train_like_torch(device, fused, schedule):
    tm, vm = build(device=device, drop_path_rate=0.3, fused_attn=fused)
    topt = torch.optim.AdamW(tc.param_groups(tm, 0.05), lr=2e-3, betas=(0.9, 0.999))
    vopt = vt.optim.AdamW(vc.param_groups(vm, 0.05), lr=2e-3, betas=(0.9, 0.999))
    tsched, vsched = getattr(tc, schedule)(topt, 2, 6), getattr(vc, schedule)(vopt, 2, 6)
    first = 1e-3 if schedule == "cosine_with_warmup" else 2e-4
    assert vsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    assert vsched.get_last_lr() == pytest.approx([first, first])  # warmup's first step
    x, y = images(7, b=4)
    (tx, ty), (vx, vy) = both(device, x, y)

    def losses_at(step):
        np.random.seed(step)  # the same DropPath keep masks in both models
        tl = torch.nn.functional.cross_entropy(tm(tx), ty, label_smoothing=0.1)
        np.random.seed(step)
        vl = vt.nn.functional.cross_entropy(vm(vx), vy, label_smoothing=0.1)
        return tl, vl

    train_side_by_side(tm, vm, topt, vopt, losses_at, steps=6, scheds=(tsched, vsched), loss_rtol=1e-4)
    assert [g["weight_decay"] for g in vopt.param_groups] == [0.05, 0.0]
    assert vsched.get_last_lr()[0] < 2e-3 * 0.5  # decayed past mid-cosine
    tm.eval()
    vm.eval()
    x2, _ = images(8, b=3, size=10)
    (tx2,), (vx2,) = both(device, x2)
    with torch.no_grad(), vt.no_grad():
        close(vm(vx2), tm(tx2), rtol=1e-3, atol=1e-4)
