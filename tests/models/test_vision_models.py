"""The ViT of examples/vit.py and the MLP-Mixer of tests/models/mixer.py on torch and on vibetensor from the
same weights: forward, every gradient, and several SGD steps with momentum and a cosine schedule give the same
losses and weights; the ViT example trains and passes its own check."""
import importlib.util
import pathlib

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import load_torch_weights
from swap_import import pair

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def vit_module():
    spec = importlib.util.spec_from_file_location("vit_example", EXAMPLES / "vit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build(kind):
    torch.manual_seed(0)
    if kind == "vit":
        mod = vit_module()
        tm, vm = mod.model_class(torch)(image=16, d=32, depth=2, heads=2), mod.model_class(vt)(image=16, d=32, depth=2,
                                                                                                heads=2)
    else:
        tmix, vmix = pair("mixer.py")
        tm, vm = tmix.MlpMixer(), vmix.MlpMixer()
    load_torch_weights(vm, tm)
    return tm, vm


def data(seed, n=6):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, 3, 16, 16)).astype(np.float32)
    y = r.integers(0, 10, size=n)
    return (torch.from_numpy(x), torch.from_numpy(y)), (vt.from_numpy(x), vt.from_numpy(y))


@pytest.mark.parametrize("kind", ["vit", "mixer"])
def test_same_weights_same_training(kind):
    tm, vm = build(kind)
    assert list(vm.state_dict()) == list(tm.state_dict())
    # SGD, not Adam: both models have parameters whose true gradient is zero (the ViT's key bias: softmax ignores
    # a per-query constant; the Mixer's token-MLP output bias: the next LayerNorm removes a per-token constant),
    # so their computed gradients are rounding noise that Adam's normalisation would turn into full steps.
    # (Adam and AdamW against torch: tests/models/test_gpt.py and tests/autograd/test_init_clip_optim.py.)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05, momentum=0.9)
    vopt = vt.optim.SGD(vm.parameters(), lr=0.05, momentum=0.9)
    tsch = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=4)
    vsch = vt.optim.lr_scheduler.CosineAnnealingLR(vopt, T_max=4)
    for step in range(4):
        (tx, ty), (vx, vy) = data(step)
        tl = torch.nn.functional.cross_entropy(tm(tx), ty)
        vl = vt.nn.functional.cross_entropy(vm(vx), vy)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=1e-4)
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        if step == 0:
            tg = dict(tm.named_parameters())
            for n, p in vm.named_parameters():
                np.testing.assert_allclose(p.grad.numpy(), tg[n].grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=n)
        topt.step()
        vopt.step()
        tsch.step()
        vsch.step()
    tp = dict(tm.named_parameters())
    for n, p in vm.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), tp[n].detach().numpy(), rtol=1e-3, atol=1e-5, err_msg=n)


def test_vit_example_trains(capsys):
    argv = ["--steps", "80", "--batch", "32", "--d", "32", "--depth", "1", "--lr", "1e-2", "--target", "1.8"]
    assert vit_module().main(argv) == 0, capsys.readouterr().out
