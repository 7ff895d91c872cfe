"""The tiny Whisper of tests/models/whisper.py, loaded once with torch and once with vibetensor swapped in for torch,
with the same weights: the sinusoid and causal-mask buffers (the mask not in the state_dict), the logits and every
gradient (the explicit attention and the scaled_dot_product_attention path), float64 weights, the
dtype-following Linear / Conv1d / LayerNorm subclasses under bfloat16 autocast, the forward-hook key/value cache
(stepwise logits equal to the full forward's, hooks removed afterwards), and greedy decoding with suppressed
tokens after Adam steps that teach two transcripts. On the CPU and, where both see a GPU, on the GPU (marker
cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import both, close, DEVICES, load_torch_weights, train_side_by_side
from swap_import import pair

twh, vwh = pair("whisper.py")
SOT, EOT, SUPPRESS = 1, 2, [0, 1, 3]
TRANSCRIPTS = np.array([[SOT, 5, 7, 9, 12, EOT], [SOT, 8, 6, 4, 15, EOT]])


def build(seed=0, device="cpu"):
    torch.manual_seed(seed)
    tm, vm = twh.Whisper(twh.ModelDimensions()), vwh.Whisper(vwh.ModelDimensions())
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def batch(seed, device="cpu", dtype=np.float32):
    r = np.random.default_rng(seed)
    mel = r.standard_normal((2, 8, 20)).astype(dtype)
    return both(device, mel, TRANSCRIPTS)


def test_buffers_and_state_dict():
    tm, vm = build()
    assert list(vm.state_dict()) == list(tm.state_dict()) and "decoder.mask" not in vm.state_dict()
    assert "encoder.positional_embedding" in vm.state_dict()
    close(vm.encoder.positional_embedding, tm.encoder.positional_embedding, rtol=1e-6, atol=1e-6)
    mask = vm.decoder.mask.numpy()
    assert np.isneginf(mask[np.triu_indices(12, 1)]).all() and not mask[np.tril_indices(12)].any()
    assert isinstance(vm.encoder.conv1, vt.nn.Conv1d) and vm.encoder.conv2.stride == (2,)
    _, fresh = build(seed=1)
    assert 0.015 < fresh.decoder.positional_embedding.detach().numpy().std() < 0.025


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sdpa", [False, True])
def test_logits_and_gradients_match_torch(sdpa, device):
    tm, vm = build(device=device)
    (tmel, ttok), (vmel, vtok) = batch(0, device)
    twh.MultiHeadAttention.use_sdpa = vwh.MultiHeadAttention.use_sdpa = sdpa
    try:
        tl, vl = tm(tmel, ttok[:, :-1]), vm(vmel, vtok[:, :-1])
    finally:
        twh.MultiHeadAttention.use_sdpa = vwh.MultiHeadAttention.use_sdpa = False
    assert vl.dtype == vt.float32 and tuple(vl.shape) == (2, 5, 20)
    close(vl, tl)
    tloss = torch.nn.functional.cross_entropy(tl.transpose(1, 2), ttok[:, 1:])
    vloss = vt.nn.functional.cross_entropy(vl.transpose(1, 2), vtok[:, 1:])
    close(vloss, tloss)
    tloss.backward()
    vloss.backward()
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p.grad, tp[name].grad, rtol=1e-3, atol=1e-6)
    # causal: a later token does not move an earlier position's logits
    other = vtok[:, :-1].clone()
    other[:, 3] = 17
    with vt.no_grad():
        moved = vm(vmel, other)
    close(moved[:, :3], vl[:, :3], rtol=1e-5, atol=1e-6)
    assert np.abs(moved[:, 3:].cpu().numpy() - vl[:, 3:].detach().cpu().numpy()).max() > 1e-3


def test_float64_weights_meet_the_float32_layer_norm_as_in_torch():
    """Whisper's LayerNorm computes in float32 (x.float()): with float64 weights both libraries refuse the mixed
    dtypes on the CPU; the float64 path of every other layer is checked through the encoder's convs."""
    tm, vm = build(seed=2)
    tm.double()
    vm.double()
    (tmel, ttok), (vmel, vtok) = batch(2, dtype=np.float64)
    for lib, m, mel, tok in ((torch, tm, tmel, ttok), (vt, vm, vmel, vtok)):
        with pytest.raises(RuntimeError, match="(?i)mixed dtype|dtype float64 for an input of dtype float32"):
            m(mel, tok)
    tc = torch.nn.functional.gelu(tm.encoder.conv2(torch.nn.functional.gelu(tm.encoder.conv1(tmel))))
    vc = vt.nn.functional.gelu(vm.encoder.conv2(vt.nn.functional.gelu(vm.encoder.conv1(vmel))))
    assert vc.dtype == vt.float64
    close(vc, tc, rtol=1e-10, atol=1e-12)


def test_bfloat16_autocast_follows_torch():
    tm, vm = build(seed=3)
    (tmel, ttok), (vmel, vtok) = batch(3)
    seen = []
    for lib, m, mel, tok in ((torch, tm, tmel, ttok), (vt, vm, vmel, vtok)):
        dtypes = []
        hooks = [mod.register_forward_hook(lambda mod, a, out, name=name: dtypes.append(
            (name, str(out.dtype).split(".")[-1]))) for name, mod in m.named_modules()
            if name and type(mod).__name__ in ("Linear", "Conv1d", "LayerNorm", "GELU")]
        with lib.autocast("cpu", dtype=lib.bfloat16):
            out = m(mel, tok)
        for h in hooks:
            h.remove()
        seen.append((dtypes, out))
    assert seen[1][0] == seen[0][0] and ("encoder.conv1", "bfloat16") in seen[1][0]
    assert ("encoder.blocks.0.attn_ln", "bfloat16") in seen[1][0]  # LayerNorm in float32, cast back
    assert seen[1][1].dtype == vt.float32
    tout = seen[0][1].detach().numpy()
    np.testing.assert_allclose(seen[1][1].detach().numpy(), tout, rtol=0, atol=0.05 * np.abs(tout).max())


@pytest.mark.parametrize("device", DEVICES)
def test_kv_cache_hooks_give_the_full_forward_step_by_step(device):
    tm, vm = build(seed=4, device=device)
    (tmel, ttok), (vmel, vtok) = batch(4, device)
    with torch.no_grad(), vt.no_grad():
        full = vm(vmel, vtok)
        audio = vm.encoder(vmel)
        cache, hooks = vm.install_kv_cache_hooks()
        assert len(hooks) == 2 * 2 * 2  # key and value of self- and cross-attention in both blocks
        steps = [vm.decoder(vtok[:, i:i + 1], audio, kv_cache=cache) for i in range(vtok.shape[1])]
        blocks = vm.decoder.blocks
        assert cache[blocks[0].attn.key].shape[1] == 6 and cache[blocks[1].cross_attn.key].shape[1] == 10
        tcache, thooks = tm.install_kv_cache_hooks()
        taudio = tm.encoder(tmel)
        tsteps = [tm.decoder(ttok[:, i:i + 1], taudio, kv_cache=tcache) for i in range(ttok.shape[1])]
        for h in hooks + thooks:
            h.remove()
        close(vt.cat(steps, dim=1), full, rtol=1e-4, atol=1e-5)
        close(vt.cat(steps, dim=1), torch.cat(tsteps, dim=1))
        before = dict(cache)
        vm(vmel, vtok)  # the hooks are gone: the cache does not grow
        assert all(cache[k] is v for k, v in before.items())


@pytest.mark.parametrize("device", DEVICES)
def test_adam_steps_then_greedy_decoding_match_torch(device):
    tm, vm = build(seed=5, device=device)
    topt, vopt = torch.optim.Adam(tm.parameters(), lr=2e-2), vt.optim.Adam(vm.parameters(), lr=2e-2)
    (tmel, ttok), (vmel, vtok) = batch(5, device)

    def losses_at(step):
        return (torch.nn.functional.cross_entropy(tm(tmel, ttok[:, :-1]).transpose(1, 2), ttok[:, 1:]),
                vt.nn.functional.cross_entropy(vm(vmel, vtok[:, :-1]).transpose(1, 2), vtok[:, 1:]))

    train_side_by_side(tm, vm, topt, vopt, losses_at, 12, loss_rtol=1e-3)
    thyp = twh.greedy_decode(tm, tmel, SOT, EOT, SUPPRESS)
    for use_cache in (True, False):
        vhyp = vwh.greedy_decode(vm, vmel, SOT, EOT, SUPPRESS, use_cache=use_cache)
        assert vhyp.tolist() == thyp.tolist()
    assert vhyp.tolist() == TRANSCRIPTS.tolist()  # it learnt both transcripts and stopped at EOT
