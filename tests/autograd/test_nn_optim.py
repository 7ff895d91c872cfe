"""vt.nn modules and vt.optim against torch: registration and state_dict, layers' forward on identical weights,
and training parity - the same MLP initialised identically gives the same losses and weights over several SGD
(momentum, Nesterov, weight decay) and AdamW steps, on both optimizer paths (fused and per-parameter)."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def to_vt(t):
    return vt.from_numpy(t.detach().numpy().copy())


def load_from_torch(vmodel, tmodel):
    vmodel.load_state_dict({k: to_vt(v) for k, v in tmodel.state_dict().items()})


def mlp(m, dims, act):
    layers = []
    for i in range(len(dims) - 1):
        layers.append(m.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(getattr(m.nn, act)())
    return m.nn.Sequential(*layers)


def test_registration_names_and_state_dict():
    m = mlp(vt, [4, 8, 3], "ReLU")
    t = mlp(torch, [4, 8, 3], "ReLU")
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [tuple(p.shape) for p in m.parameters()] == [tuple(p.shape) for p in t.parameters()]
    assert list(m.state_dict()) == list(t.state_dict())
    assert all(isinstance(p, vt.nn.Parameter) and p.requires_grad and p.is_leaf for p in m.parameters())
    assert not isinstance(vt.ones(2), vt.nn.Parameter)
    assert "Linear(in_features=4, out_features=8, bias=True)" in repr(m)
    assert len(list(m.modules())) == 4 and len(m) == 3
    with pytest.raises(RuntimeError, match=r"Missing key\(s\) in state_dict"):
        m.load_state_dict({"0.weight": vt.zeros(8, 4)})
    sd = m.state_dict()
    sd["0.weight"] = vt.zeros(2, 2)
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        m.load_state_dict(sd)
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_default_init_bounds_match_torch():
    lin = vt.nn.Linear(64, 16)
    bound = 1 / np.sqrt(64)
    for p in (lin.weight, lin.bias):
        a = p.detach().numpy()
        assert np.all(np.abs(a) <= bound) and a.std() > bound / 4  # uniform in +-1/sqrt(fan_in)
    ln = vt.nn.LayerNorm(5)
    assert ln.weight.numpy().tolist() == [1.0] * 5 and ln.bias.numpy().tolist() == [0.0] * 5


@pytest.mark.parametrize("name", ["Linear", "LayerNorm", "RMSNorm", "Embedding"])
def test_layers_forward_match_torch(name, rng):
    ctor = {"Linear": lambda m: m.nn.Linear(6, 5), "LayerNorm": lambda m: m.nn.LayerNorm(6),
            "RMSNorm": lambda m: m.nn.RMSNorm(6), "Embedding": lambda m: m.nn.Embedding(10, 6)}[name]
    tm, vm = ctor(torch), ctor(vt)
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)))
    load_from_torch(vm, tm)
    if name == "Embedding":
        x = rng.integers(0, 10, size=(3, 4))
        tx, vx = torch.from_numpy(x), vt.from_numpy(x)
    else:
        x = rng.standard_normal((3, 4, 6)).astype(np.float32)
        tx, vx = torch.from_numpy(x), vt.from_numpy(x)
    np.testing.assert_allclose(vm(vx).detach().numpy(), tm(tx).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_dropout_train_and_eval():
    d = vt.nn.Dropout(0.5)
    x = vt.ones(1000)
    y = d(x).numpy()
    assert set(np.unique(y).tolist()) <= {0.0, 2.0} and 300 < (y == 0).sum() < 700
    d.eval()
    assert d(x).numpy().tolist() == [1.0] * 1000
    with pytest.raises(ValueError, match="between 0 and 1"):
        vt.nn.Dropout(1.5)


def train(m, model, opt, x, y, steps):
    losses = []
    for _ in range(steps):
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


OPTIMIZERS = {
    "sgd": lambda m, p: m.optim.SGD(p, lr=0.05),
    "sgd_momentum_wd": lambda m, p: m.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda m, p: m.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adamw": lambda m, p: m.optim.AdamW(p, lr=1e-2, weight_decay=0.01),
    "adamw_betas": lambda m, p: m.optim.AdamW(p, lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
}


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_training_parity_with_torch(opt_name, fused, rng):
    """Same MLP, same initial weights and data: same losses and final weights (float32 tolerance), on vt's
    default fused path and on its per-parameter path (fused=False); torch runs its CPU default."""
    tmodel = mlp(torch, [16, 32, 32, 4], "Tanh")
    vmodel = mlp(vt, [16, 32, 32, 4], "Tanh")
    load_from_torch(vmodel, tmodel)
    x = rng.standard_normal((64, 16)).astype(np.float32)
    y = rng.standard_normal((64, 4)).astype(np.float32)
    tl = train(torch, tmodel, OPTIMIZERS[opt_name](torch, tmodel.parameters()), torch.from_numpy(x),
               torch.from_numpy(y), 8)
    vopt = OPTIMIZERS[opt_name](vt, vmodel.parameters())
    vopt.param_groups[0]["fused"] = fused
    vl = train(vt, vmodel, vopt, vt.from_numpy(x), vt.from_numpy(y), 8)
    np.testing.assert_allclose(vl, tl, rtol=1e-4)
    assert vl[-1] < vl[0]
    for k, v in tmodel.state_dict().items():
        # Adam's step m / sqrt(v) is ill-conditioned where a gradient stays near zero: a matrix product summed in
        # another order (another CPU's GEMM kernel) moves such a weight by a good part of lr, not by rounding.
        atol = 5e-4 if opt_name.startswith("adamw") else 1e-5
        np.testing.assert_allclose(vmodel.state_dict()[k].numpy(), v.numpy(), rtol=1e-4, atol=atol, err_msg=k)


def test_optimizer_errors_and_groups():
    p = vt.nn.Parameter(vt.ones(3))
    with pytest.raises(ValueError, match="empty parameter list"):
        vt.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        vt.optim.SGD([p], lr=0.1, nesterov=True)
    q = vt.nn.Parameter(vt.ones(2))
    opt = vt.optim.SGD([{"params": [p]}, {"params": [q], "lr": 1.0}], lr=0.1)
    (p.sum() + q.sum()).backward()
    opt.step()
    assert np.allclose(p.detach().numpy(), 0.9) and np.allclose(q.detach().numpy(), 0.0)
    opt.zero_grad()
    assert p.grad is None and q.grad is None
