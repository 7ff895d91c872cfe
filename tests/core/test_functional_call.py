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


def _ensemble(m, n, seed):
    """n small nets with batch norm (a buffer to stack) and distinct weights drawn by numpy."""
    rng = np.random.default_rng(seed)
    models = []
    for _ in range(n):
        net = m.nn.Sequential(m.nn.Linear(3, 5), m.nn.BatchNorm1d(5), m.nn.Tanh(), m.nn.Linear(5, 2))
        net.load_state_dict({k: m.from_numpy(rng.standard_normal(tuple(v.shape)).astype(np.float32))
                             if v.dtype.is_floating_point else v for k, v in net.state_dict().items()})
        models.append(net.eval())
    return models


def test_stack_module_state_ensembles_with_vmap_as_torch():
    """The torch.func ensembling recipe: stacked weights as new leaves, vmap over them with functional_call on
    one copy of the model; values and gradients to the stacked weights as torch's."""
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    out = {}
    for m in (torch, vt):
        models = _ensemble(m, 3, seed=2)
        params, buffers = m.func.stack_module_state(models)
        assert list(params) == [n for n, _ in models[0].named_parameters()]
        assert list(buffers) == [n for n, _ in models[0].named_buffers()]
        assert tuple(params["0.weight"].shape) == (3, 5, 3) and params["0.weight"].is_leaf
        assert params["0.weight"].requires_grad and not buffers["1.running_mean"].requires_grad
        base = models[0]
        y = m.func.vmap(lambda p, b, xx: m.func.functional_call(base, (p, b), (xx,)), in_dims=(0, 0, None))(
            params, buffers, m.from_numpy(x))
        (y * y).sum().backward()
        assert base[0].weight.grad is None  # the gradient went to the stacked leaves
        out[m] = (y.detach().numpy(), {k: p.grad.numpy() for k, p in params.items()})
        # each slice is that model's own output
        np.testing.assert_allclose(out[m][0][1], models[1](m.from_numpy(x)).detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(out[vt][0], out[torch][0], rtol=1e-5, atol=1e-6)
    for k, g in out[torch][1].items():
        np.testing.assert_allclose(out[vt][1][k], g, rtol=1e-4, atol=1e-6)


def test_stack_module_state_errors_as_torch():
    for m in (torch, vt):
        with pytest.raises(RuntimeError, match="at least one model"):
            m.func.stack_module_state([])
        a, b = m.nn.Linear(2, 2), m.nn.Linear(2, 2)
        with pytest.raises(RuntimeError, match="same training/eval mode"):
            m.func.stack_module_state([a, b.eval()])
        with pytest.raises(RuntimeError, match="same class"):
            m.func.stack_module_state([m.nn.Linear(2, 2), m.nn.Bilinear(2, 2, 2)])
        a.bias.requires_grad_(False)
        with pytest.raises(RuntimeError, match="bias from each model to have the same .requires_grad"):
            m.func.stack_module_state([a, m.nn.Linear(2, 2)])
        a.weight.requires_grad_(False)
        c = m.nn.Linear(2, 2).requires_grad_(False)
        params, _ = m.func.stack_module_state([a, c])
        assert not params["weight"].requires_grad
