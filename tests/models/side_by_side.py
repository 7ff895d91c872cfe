"""What the model tests share: the devices they run on (`DEVICES`: the CPU, and CUDA where torch has it as the
oracle, with TF32 off so its float32 products are exact), torch's weights loaded into the vibetensor twin
(`load_torch_weights`), the same arrays as torch and vibetensor tensors (`both`), a value comparison that reads
either library's tensor (`close`), and a training loop that steps a torch model and its vibetensor twin on the
same batches, checking each loss and, at the end, every parameter (`train_side_by_side`)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="torch has no CUDA: no oracle")])]
if torch.cuda.is_available():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def load_torch_weights(vm, tm):
    """The torch model's parameters and buffers, copied into its vibetensor twin."""
    vm.load_state_dict({k: vt.from_numpy(v.detach().cpu().numpy().copy()) for k, v in tm.state_dict().items()})


def both(device, *arrs):
    """The arrays as torch tensors and as vibetensor tensors on `device`."""
    return tuple(torch.from_numpy(a).to(device) for a in arrs), tuple(vt.from_numpy(a).to(device) for a in arrs)


def close(v, t, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(v.detach().cpu().numpy(), t.detach().cpu().numpy(), rtol=rtol, atol=atol)


def train_side_by_side(tm, vm, topt, vopt, losses_at, steps, after_step=None, loss_rtol=2e-4, clip=None,
                       scheds=None, param_atol=1e-4):
    """`steps` optimizer steps on both models: losses_at(step) gives (torch loss, vibetensor loss), which must
    agree; with `clip`, both clip_grad_norm_ to it before stepping and their norms must agree; with `scheds`
    (torch's, vibetensor's), both step after the optimizers and their learning rates must agree; after_step()
    runs last in each step (an EMA update, say). The loss must fall, and every parameter ends close to torch's
    (Adam's normalisation magnifies near-zero gradients' rounding: test_gpt.py; param_atol where torch's own devices
    differ by more). Returns the vibetensor losses."""
    losses = []
    for step in range(steps):
        tl, vl = losses_at(step)
        np.testing.assert_allclose(vl.item(), tl.item(), rtol=loss_rtol)
        losses.append(vl.item())
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        if clip is not None:
            tn = torch.nn.utils.clip_grad_norm_(tm.parameters(), clip)
            vn = vt.nn.utils.clip_grad_norm_(vm.parameters(), clip)
            np.testing.assert_allclose(vn.item(), tn.item(), rtol=loss_rtol)
        topt.step()
        vopt.step()
        if scheds is not None:
            for sched in scheds:
                sched.step()
            assert scheds[1].get_last_lr() == pytest.approx(scheds[0].get_last_lr(), rel=1e-12)
        if after_step is not None:
            after_step()
    assert losses[-1] < losses[0], losses
    tp = dict(tm.named_parameters())
    for name, p in vm.named_parameters():
        close(p, tp[name], rtol=1e-3, atol=param_atol)
    return losses
