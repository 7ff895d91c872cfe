"""torch.func.functional_call as torch's: a module evaluated under replaced parameters and buffers, gradients
to the given tensors, the module untouched afterwards (also after a raise), tied weights, strict checks."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


class Net:
    @staticmethod
    def build(m):
        class N(m.nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = m.nn.Embedding(7, 4)
                self.fc = m.nn.Linear(4, 4)
                self.norm = m.nn.BatchNorm1d(4)
                self.head = m.nn.Linear(4, 7, bias=False)
                self.head.weight = self.emb.weight  # tied, as language models tie them

            def forward(self, idx, scale=1.0):
                return self.head(self.norm(self.fc(self.emb(idx))) * scale)
        return N()


def _pair():
    torch.manual_seed(0)
    t = Net.build(torch)
    v = Net.build(vt)
    v.load_state_dict({k: vt.from_numpy(x.numpy().copy()) for k, x in t.state_dict().items()})
    return v, t


def _to_vt(d):
    return {k: vt.from_numpy(x.detach().numpy().copy()).requires_grad_(x.requires_grad) for k, x in d.items()}


def test_gradients_go_to_the_given_tensors():
    v, t = _pair()
    rng = np.random.default_rng(1)
    new_t = {k: (p.detach() + torch.from_numpy(rng.standard_normal(p.shape).astype(np.float32))).requires_grad_()
             for k, p in t.named_parameters()}
    new_v = _to_vt(new_t)
    idx = np.array([1, 3, 5, 6, 0])
    out_t = torch.func.functional_call(t, new_t, (torch.from_numpy(idx),), {"scale": 2.0})
    out_v = vt.func.functional_call(v, new_v, (vt.from_numpy(idx),), {"scale": 2.0})
    np.testing.assert_allclose(out_v.detach().numpy(), out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    out_t.pow(2).sum().backward()
    out_v.pow(2).sum().backward()
    for k in new_t:  # (fc.bias's gradient is 0 up to rounding: the batch norm after it removes any shift)
        np.testing.assert_allclose(new_v[k].grad.numpy(), new_t[k].grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=k)
    assert all(p.grad is None for p in v.parameters())  # the module's own parameters took no gradient
    np.testing.assert_allclose(v.norm.running_mean.numpy(), t.norm.running_mean.numpy(), rtol=1e-5, atol=1e-6)


def test_module_restored_and_tied_names():
    v, _ = _pair()
    v.eval()  # running statistics: a constant batch still gives a nonzero output
    before = {k: p for k, p in v.state_dict(keep_vars=True).items()}
    w = vt.zeros(7, 4)
    out = vt.nn.utils.stateless.functional_call(v, {"emb.weight": w}, vt.tensor([2, 3]))
    assert float(out.abs().sum()) == 0.0  # head.weight is emb.weight: tied, so it took the zeros too
    assert all(v.state_dict(keep_vars=True)[k] is p for k, p in before.items())
    with pytest.raises((RuntimeError, IndexError)):
        vt.func.functional_call(v, {"fc.bias": vt.zeros(4)}, vt.tensor([9, 1]))  # index out of range inside
    assert v.fc.bias is before["fc.bias"]
    out = vt.func.functional_call(v, {"emb.weight": w}, vt.tensor([2, 3]), tie_weights=False)
    assert float(out.abs().sum()) > 0


def test_strict_and_ambiguous_dicts_as_torch():
    v, t = _pair()
    for fn, m, mk in ((torch.func.functional_call, t, torch.zeros), (vt.func.functional_call, v, vt.zeros)):
        with pytest.raises(RuntimeError, match="Unexpected key"):
            fn(m, {"nope": mk(1)}, (mk(1, dtype=(torch.long if m is t else vt.int64)),), strict=True)
        with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
            fn(m, ({"fc.bias": mk(4)}, {"fc.bias": mk(4)}), (mk(1, dtype=(torch.long if m is t else vt.int64)),))
