"""nn.Module.to with memory_format= (and non_blocking), against torch: the 4-D / 5-D parameters and buffers take the
format, the others keep theirs, dtype and format together, torch's errors (channels_last on a 5-D weight, a
memory_format that is not one, an unknown keyword), and a channels-last conv net's output and gradients."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def pair(lib):
    torch.manual_seed(0)
    return lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4), lib.nn.Flatten(), lib.nn.Linear(16, 2))


def build():
    tm, vm = pair(torch), pair(vt)
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    return tm, vm


@pytest.mark.parametrize("args", [(), ("cpu",), (torch.float64,)], ids=["format", "device", "dtype"])
def test_module_to_channels_last_matches_torch(args):
    tm, vm = build()
    vargs = tuple(vt.float64 if a is torch.float64 else a for a in args)
    assert tm.to(*args, memory_format=torch.channels_last) is tm
    assert vm.to(*vargs, memory_format=vt.channels_last) is vm
    for (name, v), (_, t) in zip(vm.state_dict().items(), tm.state_dict().items()):
        assert tuple(v.stride()) == tuple(t.stride()), name
        assert str(v.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], name
        np.testing.assert_array_equal(v.numpy(), t.numpy())
    assert vm[0].weight.is_contiguous(memory_format=vt.channels_last) and not vm[0].weight.is_contiguous()
    assert isinstance(vm[0].weight, vt.nn.Parameter) and vm[0].weight.requires_grad
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    dtype = np.float64 if args and args[0] is torch.float64 else np.float32
    tx = torch.from_numpy(x.astype(dtype)).to(memory_format=torch.channels_last).requires_grad_()
    vx = vt.from_numpy(x.astype(dtype)).to(memory_format=vt.channels_last).requires_grad_()
    tout, vout = tm(tx), vm(vx)
    np.testing.assert_allclose(vout.detach().numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    tout.square().sum().backward()
    vout.square().sum().backward()
    np.testing.assert_allclose(vx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(vm[0].weight.grad.numpy(), tm[0].weight.grad.numpy(), rtol=1e-4, atol=1e-6)
    # and back
    vm.to(memory_format=vt.contiguous_format)
    tm.to(memory_format=torch.contiguous_format)
    assert tuple(vm[0].weight.stride()) == tuple(tm[0].weight.stride()) == (27, 9, 3, 1)


def test_module_to_channels_last_3d_and_errors_match_torch():
    tm, vm = torch.nn.Conv3d(2, 2, 2), vt.nn.Conv3d(2, 2, 2)
    tm.to(memory_format=torch.channels_last_3d)
    vm.to(memory_format=vt.channels_last_3d)
    assert tuple(vm.weight.stride()) == tuple(tm.weight.stride()) == (16, 1, 8, 4, 2)
    assert tuple(vm.bias.stride()) == (1,)
    with pytest.raises(RuntimeError, match="rank 4"):
        tm.to(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="rank 4"):
        vm.to(memory_format=vt.channels_last)
    lin = vt.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="memory_format"):
        torch.nn.Linear(2, 2).to(memory_format="channels_last")
    with pytest.raises(TypeError, match="memory_format"):
        lin.to(memory_format="channels_last")
    with pytest.raises(TypeError, match="invalid combination"):
        torch.nn.Linear(2, 2).to(foo=1)
    with pytest.raises(TypeError, match="foo"):
        lin.to(foo=1)
    # non_blocking, by keyword or position, changes nothing on the CPU
    w = lin.weight
    assert lin.to("cpu", vt.float32, True) is lin and lin.to(non_blocking=True) is lin and lin.weight is w
