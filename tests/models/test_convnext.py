"""The ConvNeXt of tests/models/convnext.py (V1 blocks with layer scale, V2 blocks with GRN), loaded once with
torch and once with vibetensor swapped in for torch, with the same weights: structure, GRN and the channels-first
LayerNorm against numpy, logits with input and parameter gradients in both versions and in channels_last memory
format, hand-written DropPath (seeded, one draw per example, scaled by 1 / keep, the identity in eval), and AdamW
steps with label smoothing and a model EMA (AveragedModel). On the CPU and, where both see a GPU, on the GPU
(marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tc, vc = pair("convnext.py")


def build(seed=0, device="cpu", redraw=True, **cfg):
    """redraw gives layer scale and GRN's gamma / beta random values, so that their paths carry gradient."""
    torch.manual_seed(seed)
    tm = tc.ConvNeXt(**cfg)
    if redraw:
        with torch.no_grad():
            for name, p in tm.named_parameters():
                if name.endswith(("gamma", "beta")):
                    p.normal_(0.0, 0.5)
    vm = vc.ConvNeXt(**cfg)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def images(seed, b=3, size=12):
    r = np.random.default_rng(seed)
    return r.standard_normal((b, 3, size, size)).astype(np.float32), r.integers(0, 4, size=b)


def test_structure_grn_and_layernorm_against_numpy():
    tm, vm = build(v2=True, drop_path_rate=0.2)
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert "stages.1.0.grn.gamma" in vm.state_dict() and "stages.0.0.gamma" not in vm.state_dict()
    assert repr(vm.stages[1][1].drop_path) == repr(tm.stages[1][1].drop_path)
    assert [m.drop_path.p for s in vm.stages for m in s] == pytest.approx([0.0, 0.1, 0.2])  # deeper: more often
    r = np.random.default_rng(0)
    x = r.standard_normal((2, 3, 4, 5))
    grn = vc.GRN(5).double()
    with vt.no_grad():
        grn.gamma.copy_(vt.from_numpy(r.standard_normal((1, 1, 1, 5))))
        grn.beta.copy_(vt.from_numpy(r.standard_normal((1, 1, 1, 5))))
    gx = np.sqrt((x ** 2).sum((1, 2), keepdims=True))
    nx = gx / (gx.mean(-1, keepdims=True) + 1e-6)
    ref = grn.gamma.detach().numpy() * x * nx + grn.beta.detach().numpy() + x
    np.testing.assert_allclose(grn(vt.from_numpy(x)).detach().numpy(), ref, rtol=1e-10)
    ln = vc.LayerNorm2d(3).double()
    y = ln(vt.from_numpy(x)).detach().numpy()
    ref = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(y, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_forward_and_gradients_match_torch(v2, device):
    tm, vm = build(seed=1, device=device, v2=v2)
    x, y = images(1)
    (tx, ty), (vx, vy) = both(device, x, y)
    tx.requires_grad_()
    vx.requires_grad_()
    tl, vl = tm.loss(tx, ty), vm.loss(vx, vy)
    close(vm(vx), tm(tx), rtol=1e-4, atol=1e-4)
    close(vl, tl)
    tl.backward()
    vl.backward()
    close(vx.grad, tx.grad, rtol=1e-3, atol=1e-6)
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_model_matches_torch(device):
    """The usual vision-training idiom: the model and the batch in channels_last memory format."""
    tm, vm = build(seed=5, device=device)
    tm.to(memory_format=torch.channels_last)
    vm.to(memory_format=vt.channels_last)
    w = vm.stages[0][0].dwconv.weight
    assert w.is_contiguous(memory_format=vt.channels_last) and tuple(w.stride()) == tuple(
        tm.stages[0][0].dwconv.weight.stride())
    x, y = images(6)
    (tx, ty), (vx, vy) = both(device, x, y)
    tx = tx.contiguous(memory_format=torch.channels_last)
    vx = vx.contiguous(memory_format=vt.channels_last)
    tl, vl = tm.loss(tx, ty), vm.loss(vx, vy)
    close(vl, tl)
    tl.backward()
    vl.backward()
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        g = tgrads[name].grad
        close(p.grad, g, rtol=1e-3, atol=1e-5 * max(1.0, g.abs().max().item()))


def test_drop_path_is_seeded_per_example_and_off_in_eval():
    x = vt.ones((64, 2, 3, 3))
    gen = vt.Generator().manual_seed(5)
    a = vc.drop_path(x, 0.25, True, gen)
    b = vc.drop_path(x, 0.25, True, vt.Generator().manual_seed(5))
    assert a.tolist() == b.tolist()
    per_example = a.numpy().reshape(64, -1)
    assert (per_example == per_example[:, :1]).all()  # one draw per example
    assert set(np.unique(per_example).tolist()) == {0.0, float(np.float32(1.0) / np.float32(0.75))}
    assert 0 < (per_example[:, 0] == 0).sum() < 40
    assert vc.drop_path(x, 0.25, False, gen) is x and vc.drop_path(x, 0.0, True, gen) is x
    # through the model: the same generator seed, the same logits; eval ignores the generator
    _, vm = build(seed=2, drop_path_rate=0.5)
    vx = vt.from_numpy(images(2)[0])
    outs = []
    for seed in (7, 7, 8):
        vm.set_generator(vt.Generator().manual_seed(seed))
        outs.append(vm(vx).detach().numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.allclose(outs[0], outs[2])
    vm.eval()
    plain = vm(vx).detach().numpy()
    vm.set_generator(vt.Generator().manual_seed(9))
    np.testing.assert_array_equal(vm(vx).detach().numpy(), plain)


@pytest.mark.parametrize("device", DEVICES)
def test_adamw_steps_with_label_smoothing_match_torch(device):
    tm, vm = build(seed=3, device=device, v2=True, redraw=False)
    topt = torch.optim.AdamW(tm.parameters(), lr=2e-3, weight_decay=0.05)
    vopt = vt.optim.AdamW(vm.parameters(), lr=2e-3, weight_decay=0.05)
    tema, vema = tc.model_ema(tm), vc.model_ema(vm)
    x, y = images(3, b=4)
    (tx, ty), (vx, vy) = both(device, x, y)
    train_side_by_side(tm, vm, topt, vopt, lambda _: (tm.loss(tx, ty, label_smoothing=0.1),
                                                      vm.loss(vx, vy, label_smoothing=0.1)),
                       steps=4, after_step=lambda: (tema.update_parameters(tm), vema.update_parameters(vm)))
    assert int(vema.n_averaged.item()) == int(tema.n_averaged.item()) == 4
    tp = dict(tema.module.named_parameters())
    for name, p in vema.module.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=1e-4)
        assert not np.allclose(p.detach().cpu().numpy(), dict(vm.named_parameters())[name].detach().cpu().numpy())
    close(vema(vx), tema(tx), rtol=1e-3, atol=1e-4)


def test_assigning_data_replaces_a_parameters_values_like_torch():
    tm, vm = build(seed=4, v2=True, redraw=False)
    r = np.random.default_rng(5)
    for name, p in tm.named_parameters():
        if name.endswith(("gamma", "beta")):
            p.data = torch.from_numpy(r.standard_normal(tuple(p.shape)).astype(np.float32))
            dict(vm.named_parameters())[name].data = vt.from_numpy(p.detach().numpy().copy())
    x, _ = images(4)
    (tx,), (vx,) = both("cpu", x)
    assert isinstance(vm.stages[0][0].grn.gamma, vt.nn.Parameter)
    close(vm(vx), tm(tx), rtol=1e-4, atol=1e-4)
