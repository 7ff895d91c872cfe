"""RNNBase.flatten_parameters (public code calls self.rnn.flatten_parameters() at the top of forward) and the
weight-drop idiom of AWD-LSTM code: a recurrent weight deleted from _parameters and replaced by a plain tensor
attribute is what the next forward uses, in torch and in vibetensor."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def _twins(name, **kw):
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(3, 4, **kw).double()
    vm = getattr(vt.nn, name)(3, 4, **kw).double()
    vm.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tm.state_dict().items()})
    return tm, vm


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_flatten_parameters_returns_none_and_changes_nothing(name):
    tm, vm = _twins(name, num_layers=2, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    before = vm(vt.from_numpy(x))[0].detach().numpy()
    assert tm.flatten_parameters() is None
    assert vm.flatten_parameters() is None
    assert [n for n, _ in vm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    after = vm(vt.from_numpy(x))[0].detach().numpy()
    np.testing.assert_array_equal(after, before)
    np.testing.assert_allclose(after, tm(torch.from_numpy(x))[0].detach().numpy(), rtol=1e-12, atol=1e-14)


def test_a_plain_tensor_in_place_of_a_weight_is_used_with_its_gradient():
    tm, vm = _twins("LSTM", num_layers=2)
    mask = (np.random.default_rng(1).random((16, 4)) > 0.5).astype(np.float64)
    raws, outs = {}, {}
    for lib, m in ((torch, tm), (vt, vm)):
        w = m.weight_hh_l1
        del m._parameters["weight_hh_l1"]
        raw = lib.nn.Parameter(w.detach().clone())
        setattr(m, "weight_hh_l1", raw * lib.from_numpy(mask))  # DropConnect, as a weight-drop wrapper does
        assert "weight_hh_l1" not in dict(m.named_parameters())
        out, _ = m(lib.from_numpy(np.random.default_rng(2).standard_normal((5, 2, 3))))
        out.pow(2).sum().backward()
        raws[lib], outs[lib] = raw, out
    np.testing.assert_allclose(outs[vt].detach().numpy(), outs[torch].detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(raws[vt].grad.numpy(), raws[torch].grad.numpy(), rtol=1e-10, atol=1e-14)
    assert (raws[vt].grad.numpy()[mask == 0] == 0).all()  # dropped connections get no gradient
