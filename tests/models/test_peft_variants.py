"""The PEFT variants and calibration code of tests/models/peft_variants.py on tests/models/lora_llm.py's decoder,
each loaded once with torch and once with vibetensor swapped in for torch, with the same weights: LoRA as a
parametrization (state_dict keys, the parametrized weight, cached(), training, merging back to a plain weight),
DoRA (the identity at init, magnitude and direction gradients, training), (IA)^3 hooks (training, removal),
prompt tuning (only the soft prompt learns), NF4 quantization (the packed codes and block scales bit for bit,
the dequantized model's logits), and SmoothQuant (the calibration statistics from forward pre-hooks, an unchanged
function after smoothing, flatter activation ranges)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

tl, vl = pair("lora_llm.py")
tp, vp = pair("peft_variants.py")


def build(seed=0, device="cpu", dtype="float64", **over):
    torch.manual_seed(seed)
    tm = tl.DecoderLM(tl.Config(**over))
    vm = vl.DecoderLM(vl.Config(**over))
    load_torch_weights(vm, tm)
    return tm.to(device, getattr(torch, dtype)), vm.to(device, getattr(vt, dtype))


def batch(seed, b=2, t=9, device="cpu"):
    r = np.random.default_rng(seed)
    x = r.integers(0, 40, size=(b, t))
    y = np.roll(x, -1, axis=1)
    y[:, -1] = -100
    return both(device, x, y)


def redraw(tm, vm, key, std=0.2):
    """Nonzero values for the zero-initialised adapter tensors named by `key`, the same on both sides."""
    with torch.no_grad():
        for n, p in tm.named_parameters():
            if key in n:
                p.normal_(0.0, std)
    load_torch_weights(vm, tm)


def train_trainable(tm, vm, steps=4, lr=1e-2, device="cpu", forward=None):
    topt = torch.optim.Adam([p for p in tm.parameters() if p.requires_grad], lr=lr)
    vopt = vt.optim.Adam([p for p in vm.parameters() if p.requires_grad], lr=lr)
    (tx, ty), (vx, vy) = batch(30, device=device)  # one batch: few trainable weights must still lower its loss
    forward = forward or (lambda m, x, y: m(x, y)[1])

    def losses_at(step):
        return forward(tm, tx, ty), forward(vm, vx, vy)
    return train_side_by_side(tm, vm, topt, vopt, losses_at, steps=steps, loss_rtol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_lora_parametrization_trains_and_merges_like_torch(device):
    tm, vm = build(device=device)
    (tx, _), (vx, _) = batch(1, device=device)
    base_out = vm(vx).detach().cpu().numpy()
    for m, mod in ((tm, tp), (vm, vp)):
        mod.add_lora_parametrizations(m, ("q_proj", "down_proj"))
        for n, p in m.named_parameters():
            p.requires_grad_("lora_" in n)
    assert list(vm.state_dict()) == list(tm.state_dict())
    assert "layers.0.self_attn.q_proj.parametrizations.weight.original" in vm.state_dict()
    redraw(tm, vm, "lora_B")
    layer = vm.layers[1].mlp.down_proj
    close(layer.weight, tm.layers[1].mlp.down_proj.weight, rtol=1e-12, atol=1e-14)
    p = layer.parametrizations.weight
    np.testing.assert_allclose(layer.weight.detach().cpu().numpy(),
                               (p.original + p[0].lora_B @ p[0].lora_A * 2.0).detach().cpu().numpy(), rtol=1e-12)
    with vp.parametrize.cached():
        close(vm(vx), tm(tx), rtol=1e-10, atol=1e-12)
    assert [n for n, q in vm.named_parameters() if q.requires_grad] == \
           [n for n, q in tm.named_parameters() if q.requires_grad]
    train_trainable(tm, vm, device=device)
    # disabling the adapters gives the base model back; merging bakes them into a plain weight
    for m in (tm, vm):
        for mod in m.modules():
            if hasattr(mod, "parametrizations"):
                mod.parametrizations.weight[0].enabled = False
    np.testing.assert_allclose(vm(vx).detach().cpu().numpy(), base_out, rtol=1e-12, atol=1e-14)
    for m in (tm, vm):
        for mod in m.modules():
            if hasattr(mod, "parametrizations"):
                mod.parametrizations.weight[0].enabled = True
    adapted = vm(vx).detach().cpu().numpy()
    for m, mod in ((tm, tp), (vm, vp)):
        mod.merge_lora_parametrizations(m)
    assert not vp.parametrize.is_parametrized(vm.layers[0].self_attn.q_proj)
    assert list(vm.state_dict()) == list(tm.state_dict()) == list(build()[0].state_dict())
    np.testing.assert_allclose(vm(vx).detach().cpu().numpy(), adapted, rtol=1e-10, atol=1e-12)
    close(vm(vx), tm(tx), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_dora_starts_as_the_base_model_and_trains_like_torch(device):
    tm, vm = build(device=device)
    (tx, ty), (vx, vy) = batch(2, device=device)
    base_out = vm(vx).detach().cpu().numpy()
    for m, mod in ((tm, tp), (vm, vp)):
        for p in m.parameters():
            p.requires_grad_(False)
        mod.apply_dora(m, ("q_proj", "v_proj", "up_proj"))
    load_torch_weights(vm, tm)
    np.testing.assert_allclose(vm(vx).detach().cpu().numpy(), base_out, rtol=1e-10, atol=1e-12)
    w = vm.layers[0].self_attn.v_proj.weight.detach().cpu().numpy()
    np.testing.assert_allclose(vm.layers[0].self_attn.v_proj.magnitude.detach().cpu().numpy(),
                               np.linalg.norm(w, axis=1), rtol=1e-12)
    redraw(tm, vm, "lora_B")
    tloss, vloss = tm(tx, ty)[1], vm(vx, vy)[1]
    tloss.backward()
    vloss.backward()
    tparams = dict(tm.named_parameters())
    names = [n for n, p in vm.named_parameters() if p.requires_grad]
    assert names == [n for n, p in tm.named_parameters() if p.requires_grad] and len(names) == 18
    for n in names:
        close(dict(vm.named_parameters())[n].grad, tparams[n].grad, rtol=1e-9, atol=1e-12)
    train_trainable(tm, vm, device=device)


def test_ia3_hooks_train_and_come_off():
    tm, vm = build()
    (tx, _), (vx, _) = batch(3)
    base_out = vm(vx).detach().numpy()
    adapters = {}
    for lib, m, mod in ((torch, tm, tp), (vt, vm, vp)):
        for p in m.parameters():
            p.requires_grad_(False)
        adapters[lib] = mod.IA3(m, ("k_proj", "v_proj", "down_proj"))
    assert list(adapters[vt].scales.keys()) == list(adapters[torch].scales.keys())
    assert len(adapters[vt].handles) == 6
    np.testing.assert_allclose(vm(vx).detach().numpy(), base_out, rtol=1e-12)  # all ones: the identity
    assert [n for n, p in adapters[vt].named_parameters() if p.requires_grad][0] == "scales.layers_0_self_attn_k_proj"
    train_trainable(adapters[torch], adapters[vt], steps=5, lr=5e-2)
    assert np.abs(vm(vx).detach().numpy() - base_out).max() > 1e-3
    for a in adapters.values():
        a.remove()
    np.testing.assert_allclose(vm(vx).detach().numpy(), base_out, rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_prompt_tuning_trains_only_the_soft_prompt(device):
    tm, vm = build(device=device)
    tpt, vpt = tp.PromptTuning(tm, 3), vp.PromptTuning(vm, 3)
    assert [n for n, p in vpt.named_parameters() if p.requires_grad] == ["prompt"]
    frozen = {n: p.detach().cpu().numpy().copy() for n, p in vm.named_parameters()}
    (tx, ty), (vx, vy) = batch(4, device=device)
    tlogits, vlogits = tpt(tx), vpt(vx)
    assert tuple(vlogits.shape) == (2, 9, 40)
    close(vlogits, tlogits, rtol=1e-10, atol=1e-12)
    train_trainable(tpt, vpt, steps=5, lr=5e-2, device=device)
    for n, p in vm.named_parameters():
        assert p.grad is None
        np.testing.assert_array_equal(p.detach().cpu().numpy(), frozen[n])


def test_nf4_codes_and_scales_match_torch():
    r = np.random.default_rng(5)
    w = r.standard_normal((8, 32)).astype(np.float32)
    (tw,), (vw,) = both("cpu", w)
    (tpk, tabs), (vpk, vabs) = tp.quantize_nf4(tw), vp.quantize_nf4(vw)
    assert vpk.dtype == vt.uint8 and tuple(vpk.shape) == (128,) and tuple(vabs.shape) == (16,)
    np.testing.assert_array_equal(vpk.numpy(), tpk.numpy())
    close(vabs, tabs, rtol=0, atol=0)
    deq = vp.dequantize_nf4(vpk, vabs, (8, 32))
    close(deq, tp.dequantize_nf4(tpk, tabs, (8, 32)), rtol=0, atol=0)
    # each weight sits within half the widest NF4 gap of its block's scale
    err = np.abs(deq.numpy() - w).reshape(-1, 16)
    assert (err <= 0.5 * 0.3039 * vabs.numpy()[:, None] + 1e-6).all()
    levels = vp.nf4_levels().numpy()
    codes = np.stack([vpk.numpy() >> 4, vpk.numpy() & 15], -1).reshape(-1, 16)
    np.testing.assert_allclose(levels[codes] * vabs.numpy()[:, None], deq.numpy().reshape(-1, 16), rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_nf4_model_matches_torch(device):
    tm, vm = build(device=device, dtype="float32")
    (tx, _), (vx, _) = batch(6, device=device)
    for m, mod in ((tm, tp), (vm, vp)):
        for parent in list(m.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, mod.nn.Linear) and name != "lm_head":
                    setattr(parent, name, mod.NF4Linear(child))
    assert list(vm.state_dict()) == list(tm.state_dict())
    close(vm(vx), tm(tx), rtol=1e-5, atol=1e-6)


def test_smoothquant_calibration_and_smoothing_match_torch():
    tm, vm = build()
    r = np.random.default_rng(7)
    with torch.no_grad():  # outlier channels in the activations, as LLMs have them
        tm.embed_tokens.weight[:, 3].mul_(20.0)
    load_torch_weights(vm, tm)
    calib = [both("cpu", r.integers(0, 40, (2, 8))) for _ in range(3)]
    (tx, _), (vx, _) = batch(8)
    before = vm(vx).detach().numpy()
    stats = {}
    for lib, m, mod, k in ((torch, tm, tp, 0), (vt, vm, vp, 1)):
        stats[lib] = mod.collect_input_amax(m, [c[k][0] for c in calib], lambda model, x: model(x))
        assert all(not lin._forward_pre_hooks for lin in m.modules() if isinstance(lin, mod.nn.Linear))
    assert list(stats[vt]) == list(stats[torch]) and len(stats[vt]) == 15
    for name, a in stats[vt].items():
        close(a, stats[torch][name], rtol=1e-12, atol=0)
    for lib, m, mod in ((torch, tm, tp), (vt, vm, vp)):
        for i, layer in enumerate(m.layers):
            attn, mlp = layer.self_attn, layer.mlp
            mod.smooth_norm_linears(layer.input_norm, [attn.q_proj, attn.k_proj, attn.v_proj],
                                    stats[lib][f"layers.{i}.self_attn.q_proj"])
            mod.smooth_norm_linears(layer.post_attn_norm, [mlp.gate_proj, mlp.up_proj],
                                    stats[lib][f"layers.{i}.mlp.gate_proj"])
    tparams = dict(tm.named_parameters())
    for n, p in vm.named_parameters():
        close(p, tparams[n], rtol=1e-12, atol=1e-14)
        assert p.grad_fn is None
    np.testing.assert_allclose(vm(vx).detach().numpy(), before, rtol=1e-9, atol=1e-11)  # the same function
    after = vp.collect_input_amax(vm, [c[1][0] for c in calib], lambda model, x: model(x))
    spread = lambda a: (a.max() / a.min()).item()  # noqa: E731
    assert spread(after["layers.0.self_attn.q_proj"]) < spread(stats[vt]["layers.0.self_attn.q_proj"]) / 2


def test_activation_offloading_keeps_the_gradients():
    tm, vm = build()
    (tx, ty), (vx, vy) = batch(9)
    grads = {}
    for lib, m, mod, x, y in ((torch, tm, tp, tx, ty), (vt, vm, vp, vx, vy)):
        plain = lib.autograd.grad(m(x, y)[1], list(m.parameters()))
        off = mod.OffloadActivations()
        with off:
            loss = m(x, y)[1]
        assert off.packed > 10 and len(off.stash) == off.packed
        offloaded = lib.autograd.grad(loss, list(m.parameters()))
        # the backward took the saved tensors back (vibetensor also saves a few its formulas never read: the
        # scalar factor's partner of x * 2.0, for one; torch saves none of those)
        assert len(off.stash) < off.packed // 4 if lib is vt else not off.stash
        for a, b in zip(offloaded, plain):
            close(a, b, rtol=0, atol=0)
        with lib.autograd.graph.save_on_cpu(pin_memory=False):
            loss = m(x, y)[1]
        grads[lib] = lib.autograd.grad(loss, list(m.parameters()))
    for a, b in zip(grads[vt], grads[torch]):
        close(a, b, rtol=1e-10, atol=1e-12)
