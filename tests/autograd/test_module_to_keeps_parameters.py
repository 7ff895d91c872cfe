"""nn.Module.to / float / double / half keep each Parameter object (Note [Module.to keeps the parameters]), as
torch's `param.data = fn(param)`: attributes set on a parameter survive (Mamba's `_no_weight_decay`, read when the
optimizer is built after the cast), an optimizer built before the cast steps the cast model, a .grad is cast with
its parameter, tied weights stay one object, and buffers are new tensors - each against torch."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def build(lib):
    """An embedding with a tied head, and a norm with buffers."""
    emb = lib.nn.Embedding(5, 3)
    head = lib.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    return lib.nn.ModuleDict({"emb": emb, "head": head, "norm": lib.nn.BatchNorm1d(3)})


def models():
    torch.manual_seed(0)
    tm, vm = build(torch), build(vt)
    vm.load_state_dict({k: vt.from_numpy(v.numpy().copy()) for k, v in tm.state_dict().items()})
    return tm, vm


@pytest.mark.parametrize("cast", ["double", "half", "to_float64", "to_cpu_float64", "float"])
def test_parameters_keep_identity_attributes_and_grads(cast):
    for lib, m in zip((torch, vt), models()):
        w = m["emb"].weight
        w._no_weight_decay = True
        buf = m["norm"].running_mean
        m["head"](m["emb"](lib.tensor([1, 2]))).sum().backward()
        out = {"double": lambda: m.double(), "half": lambda: m.half(), "float": lambda: m.float(),
               "to_float64": lambda: m.to(lib.float64), "to_cpu_float64": lambda: m.to("cpu", lib.float64)}[cast]()
        assert out is m
        want = {"half": lib.float16, "float": lib.float32}.get(cast, lib.float64)
        assert m["emb"].weight is w and m["head"].weight is w and w._no_weight_decay, lib.__name__
        assert isinstance(w, lib.nn.Parameter) and w.requires_grad and w.is_leaf
        assert w.dtype == want and w.grad.dtype == want and tuple(w.grad.shape) == (5, 3)
        assert (m["norm"].running_mean is buf) == (want == lib.float32), lib.__name__  # buffers: new if cast
        assert m["norm"].running_mean.dtype == want and m["norm"].num_batches_tracked.dtype == lib.int64


def test_an_optimizer_built_before_the_cast_trains_the_cast_model():
    finals = []
    for lib, m in zip((torch, vt), models()):
        opt = lib.optim.SGD(m.parameters(), lr=0.5, momentum=0.9)
        m.double()
        x = lib.tensor([[0, 1, 4], [2, 3, 3]])
        for _ in range(3):
            opt.zero_grad()
            logits = m["head"](m["emb"](x))
            lib.nn.functional.cross_entropy(logits.reshape(-1, 5), x.reshape(-1)).backward()
            opt.step()
        assert m["emb"].weight.dtype == lib.float64
        finals.append(m["emb"].weight.detach().numpy())
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-12)
    assert np.abs(finals[1] - models()[0]["emb"].weight.detach().numpy()).max() > 1e-2  # the steps moved it


def test_a_move_that_changes_nothing_keeps_the_very_tensors():
    for lib, m in zip((torch, vt), models()):
        w, buf = m["emb"].weight, m["norm"].running_var
        m.to("cpu")
        m.float()
        assert m["emb"].weight is w and m["norm"].running_var is buf
