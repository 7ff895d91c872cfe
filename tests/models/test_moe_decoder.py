"""The KV-cache + top-1 MoE decoder block of tests/models/moe_decoder.py, loaded once with torch and once with
vibetensor swapped in for torch, with the same weights: a prefill under autograd (output, input and every
parameter gradient), then token-by-token decoding under no_grad (outputs and the caches), on the CPU and, where
both see a GPU, on the GPU (marker cuda)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import close, DEVICES, load_torch_weights
from swap_import import pair

tmoe, vmoe = pair("moe_decoder.py")

CFG = dict(dim=16, heads=2, batch=2, max_len=12, n_experts=4, hidden=24, disabled=(2,))


def build(device):
    torch.manual_seed(0)
    tm = tmoe.DecoderBlock(**CFG)
    vm = vmoe.DecoderBlock(**CFG)
    load_torch_weights(vm, tm)
    return tm.to(device), vm.to(device)


def inputs(rng, t, device):
    x = rng.standard_normal((CFG["batch"], t, CFG["dim"])).astype(np.float32)
    return torch.from_numpy(x.copy()).to(device), vt.from_numpy(x.copy()).to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_prefill_and_decoding_match_torch(device):
    tm, vm = build(device)
    rng = np.random.default_rng(0)
    tx, vx = inputs(rng, 5, device)
    tx.requires_grad_()
    vx.requires_grad_()
    positions = np.arange(5)
    tout = tm(tx, torch.from_numpy(positions).to(device))
    vout = vm(vx, vt.from_numpy(positions).to(device))
    close(vout, tout)
    # the router sends tokens to several experts, never to the disabled one: the scatter-back is exercised
    assert vm.moe.last_counts == tm.moe.last_counts
    assert vm.moe.last_counts[2] == 0 and sum(c > 0 for c in vm.moe.last_counts) >= 2
    (tout * tout).sum().backward()
    (vout * vout).sum().backward()
    close(vx.grad, tx.grad, rtol=1e-3)
    tgrads = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        if tgrads[name].grad is None:  # an expert no token went to
            assert p.grad is None, name
        else:
            close(p.grad, tgrads[name].grad, rtol=1e-3)
    with torch.no_grad(), vt.no_grad():
        for pos in range(5, 9):
            tx, vx = inputs(rng, 1, device)
            close(vm(vx, vt.tensor([pos]).to(device)), tm(tx, torch.tensor([pos]).to(device)))
    close(vm.k_cache, tm.k_cache)
    close(vm.v_cache, tm.v_cache)
