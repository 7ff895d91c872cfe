"""The nn.Module protocol and containers against torch: the same model code built on both sides must give the
same names, orders, printing, state_dict keys and errors; hooks, apply, buffers (persistent or not),
load_state_dict(strict=) reports, zero_grad, requires_grad_, train/eval and to(dtype)."""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from helpers import as_installed_torch_prints


def build(m):
    nn = m.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleDict({"embed": nn.Linear(4, 6), "out": nn.Sequential(nn.ReLU(), nn.Linear(6, 3))})
            self.scales = nn.ParameterList([nn.Parameter(m.ones(3)), nn.Parameter(m.zeros(2, 2))])
            self.extras = nn.ParameterDict({"alpha": nn.Parameter(m.ones(1))})
            self.layers = nn.ModuleList([nn.LayerNorm(6) for _ in range(3)])
            self.register_buffer("running", m.zeros(3))
            self.register_buffer("scratch", m.zeros(2), persistent=False)
            self.register_parameter("unused", None)

        def forward(self, x):
            h = self.blocks["embed"](x)
            for ln in self.layers:
                h = ln(h)
            return self.blocks["out"](h) * self.scales[0] + self.running + self.extras["alpha"]
    return Net()


def copy_weights(vmod, tmod):
    vmod.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tmod.state_dict().items()})


def test_names_orders_and_printing_match_torch():
    v, t = build(vt), build(torch)
    assert [n for n, _ in v.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in v.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in v.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in v.named_children()] == [n for n, _ in t.named_children()]
    assert len(list(v.children())) == len(list(t.children())) and len(list(v.modules())) == len(list(t.modules()))
    assert list(v.state_dict()) == list(t.state_dict())  # the non-persistent buffer is left out
    assert as_installed_torch_prints(repr(v)) == repr(t)
    assert as_installed_torch_prints(repr(v.layers)) == repr(t.layers)  # "(0-2): 3 x LayerNorm(...)"
    assert [n for n, _ in v.named_parameters(prefix="model")] == [n for n, _ in t.named_parameters(prefix="model")]
    assert list(v.state_dict(prefix="p.")) == list(t.state_dict(prefix="p."))


def test_printing_matches_torch_before_layer_norm_printed_its_bias(monkeypatch):
    """Note [Module printing across torch versions]: with torch 2.11's LayerNorm printing the comparison above
    holds as well (and still sees every other difference)."""
    monkeypatch.setattr(torch.nn.LayerNorm, "extra_repr", lambda self: "{normalized_shape}, eps={eps}, "
                        "elementwise_affine={elementwise_affine}".format(**self.__dict__))
    v, t = build(vt), build(torch)
    assert "bias=True)" in repr(v) and "bias=True)" not in repr(t.layers)
    assert as_installed_torch_prints(repr(v)) == repr(t)
    v.layers[0].eps = 1e-3
    assert as_installed_torch_prints(repr(v)) != repr(t)


def test_forward_matches_after_loading_torch_weights(rng):
    v, t = build(vt), build(torch)
    copy_weights(v, t)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(v(vt.from_numpy(x)).detach().numpy(), t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_load_state_dict_strict_and_errors():
    v, t = build(vt), build(torch)
    sd_v, sd_t = v.state_dict(), t.state_dict()
    for sd in (sd_v, sd_t):
        sd.pop("running")
        sd["bogus"] = sd["scales.0"]
    missing = []
    for mod, sd in ((v, sd_v), (t, sd_t)):
        with pytest.raises(RuntimeError) as e:
            mod.load_state_dict(sd)
        msg = str(e.value)
        assert 'Missing key(s) in state_dict: "running"' in msg and 'Unexpected key(s) in state_dict: "bogus"' in msg
        r = mod.load_state_dict(sd, strict=False)
        missing.append((r.missing_keys, r.unexpected_keys))
    assert missing[0] == missing[1]
    bad = v.state_dict()
    bad["scales.1"] = vt.zeros(3, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for scales.1: copying a param with shape "
                                           r"torch.Size\(\[3, 3\]\) from checkpoint"):
        v.load_state_dict(bad, strict=False)


def test_registration_errors_match_torch():
    for m in (vt, torch):
        mod = m.nn.Module()
        with pytest.raises(KeyError):
            mod.register_buffer("a.b", m.zeros(1))
        with pytest.raises(TypeError):
            mod.register_buffer("x", 3)
        with pytest.raises(TypeError):
            mod.register_parameter("w", m.zeros(2))  # a plain tensor is not a Parameter
        mod.w = m.nn.Parameter(m.zeros(2))
        with pytest.raises(TypeError):
            mod.w = m.zeros(2)
        mod.w = None
        assert mod.w is None and "w" in dict(mod._parameters)
        with pytest.raises(KeyError):
            mod.register_buffer("training", m.zeros(1))  # an existing attribute
        with pytest.raises(IndexError):
            m.nn.ModuleList([m.nn.ReLU()])[3]
        with pytest.raises(ValueError):
            mod.train("yes")


def test_apply_zero_grad_requires_grad_and_modes():
    v = build(vt)
    seen = []
    assert v.apply(lambda mod: seen.append(type(mod).__name__)) is v
    t_seen = []
    build(torch).apply(lambda mod: t_seen.append(type(mod).__name__))
    assert seen == t_seen  # children first, self last
    out = v(vt.ones(2, 4)).sum()
    out.backward()
    assert v.blocks["embed"].weight.grad is not None
    v.zero_grad(set_to_none=False)
    assert float(v.blocks["embed"].weight.grad.abs().sum()) == 0.0
    v.zero_grad()
    assert v.blocks["embed"].weight.grad is None
    v.requires_grad_(False)
    assert not any(p.requires_grad for p in v.parameters())
    v.eval()
    assert not any(mod.training for mod in v.modules())
    v.train()
    assert all(mod.training for mod in v.modules())


def test_to_dtype_casts_floating_parameters_and_buffers():
    v = build(vt)
    before = list(v.parameters())
    v.to("cpu").to(vt.float32)  # nothing to change: the parameters stay the same objects
    assert all(a is b for a, b in zip(before, v.parameters()))
    v = v.to(vt.float64)
    assert all(p.dtype == vt.float64 for p in v.parameters()) and v.running.dtype == vt.float64
    assert all(isinstance(p, vt.nn.Parameter) and p.requires_grad for p in v.parameters())
    assert v(vt.ones(2, 4, dtype=vt.float64)).dtype == vt.float64
    v.float()
    assert v.scales[1].dtype == vt.float32
    with pytest.raises(TypeError):
        v.to(vt.int64)


def test_forward_hooks_and_pre_hooks():
    for m in (vt, torch):
        lin = m.nn.Linear(3, 2)
        calls = []
        h1 = lin.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
        h2 = lin.register_forward_hook(lambda mod, args, out: calls.append(tuple(out.shape)) or out + 1)
        y = lin(m.ones(4, 3))
        assert calls == [(4, 2)]
        bias = lin.bias.detach().numpy() + 1
        np.testing.assert_allclose(y.detach().numpy(), np.broadcast_to(bias, (4, 2)), rtol=1e-6)
        h1.remove()
        h2.remove()
        lin(m.ones(1, 3))
        assert calls == [(4, 2)]


def test_containers_protocol():
    for m in (vt, torch):
        nn = m.nn
        seq = nn.Sequential(OrderedDict([("a", nn.Linear(2, 3)), ("b", nn.ReLU())]))
        assert isinstance(seq[0:1], nn.Sequential) and len(seq) == 2 and isinstance(seq[-1], nn.ReLU)
        seq.append(nn.Tanh())
        assert [n for n, _ in seq.named_children()] == ["a", "b", "2"]
        ml = nn.ModuleList([nn.ReLU(), nn.Tanh()])
        ml.insert(1, nn.GELU())
        ml.extend([nn.ReLU()])
        assert [type(x).__name__ for x in ml] == ["ReLU", "GELU", "Tanh", "ReLU"]
        assert isinstance(ml[1:], nn.ModuleList) and len(ml[1:]) == 3
        md = nn.ModuleDict({"x": nn.ReLU()})
        md["y"] = nn.Tanh()
        md.update([("z", nn.GELU())])
        assert list(md.keys()) == ["x", "y", "z"] and "y" in md and isinstance(md.pop("x"), nn.ReLU)
        pl = nn.ParameterList([m.ones(2)])
        pl.append(m.zeros(3))
        assert len(pl) == 2 and all(isinstance(p, nn.Parameter) for p in pl)
        pd = nn.ParameterDict({"w": m.ones(2)})
        pd["b"] = nn.Parameter(m.zeros(1))
        assert list(pd.keys()) == ["w", "b"] and isinstance(pd["w"], nn.Parameter)
        holder = nn.Module()
        holder.pl, holder.pd = pl, pd
        assert [n for n, _ in holder.named_parameters()] == ["pl.0", "pl.1", "pd.w", "pd.b"]
    assert repr(vt.nn.ParameterList([vt.ones(2, 3)])) == repr(torch.nn.ParameterList([torch.ones(2, 3)]))


def test_embedding_padding_idx_matches_torch():
    tm = torch.nn.Embedding(6, 3, padding_idx=-2)
    vm = vt.nn.Embedding(6, 3, padding_idx=-2)
    assert repr(vm) == repr(tm) and float(vm.weight[4].abs().sum()) == 0.0
    copy_weights(vm, tm)
    idx = np.array([[4, 1, 4], [0, 4, 5]])
    (tm(torch.from_numpy(idx)) * 3.0).sum().backward()  # linear: row 4 would get a gradient without padding_idx
    (vm(vt.from_numpy(idx)) * 3.0).sum().backward()
    np.testing.assert_allclose(vm.weight.grad.numpy(), tm.weight.grad.numpy(), rtol=1e-6)


def test_sequence_item_assignment_and_deletion_match_torch():
    names = []
    for m in (vt, torch):
        nn = m.nn
        seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.GELU(), nn.SiLU())
        del seq[1]
        seq[-1] = nn.Identity()
        ml = nn.ModuleList([nn.ReLU(), nn.Tanh(), nn.GELU()])
        del ml[0:2]
        ml[0] = nn.Tanh()
        names.append(([(n, type(x).__name__) for n, x in seq.named_children()],
                      [(n, type(x).__name__) for n, x in ml.named_children()]))
    assert names[0] == names[1]


def test_parameter_dict_orders_keys_as_torch():
    """torch sorts a plain dict's keys but keeps the order of an OrderedDict, a ParameterDict or a list of pairs:
    the state_dict keys (and so checkpoints loaded by position) follow."""
    keys = ["net_2_weight", "b", "net_0_bias", "a_1", "net_0_weight"]
    rng = np.random.default_rng(0)
    vals = [rng.standard_normal(i + 1) for i in range(len(keys))]
    made = {}
    for m in (vt, torch):
        nn = m.nn
        plain = nn.ParameterDict({k: m.tensor(v) for k, v in zip(keys, vals)})
        ordered = nn.ParameterDict(OrderedDict((k, m.tensor(v)) for k, v in zip(keys, vals)))
        pairs = nn.ParameterDict([(k, m.tensor(v)) for k, v in zip(keys, vals)])
        again = nn.ParameterDict(plain)
        later = nn.ParameterDict({"z": m.zeros(1)})
        later.update({"y": m.ones(1), "x": m.ones(2)})
        made[m] = [[(k, p.detach().numpy().tolist()) for k, p in d.state_dict().items()]
                   for d in (plain, ordered, pairs, again, later)]
    assert made[vt] == made[torch]
    assert [k for k, _ in made[vt][0]] == sorted(keys) and [k for k, _ in made[vt][1]] == keys


def test_attributes_before_init_and_dict_copies_as_torch():
    """torch refuses only Parameters, Modules and Buffers before Module.__init__; plain attributes (a subclass
    setting a flag before super().__init__(), or learn2learn's clone_module filling a __new__ instance's __dict__)
    go through."""
    for m in (vt, torch):
        nn = m.nn

        class Early(nn.Module):
            def __init__(self):
                self.flag = 3  # before super().__init__()
                super().__init__()
                self.lin = nn.Linear(2, 2)

        assert Early().flag == 3
        for value, what in ((nn.Parameter(m.ones(1)), "parameters"), (nn.Linear(1, 1), "module"),
                            (nn.Buffer(m.ones(1)), "buffer")):
            bare = nn.Module.__new__(nn.Module)
            with pytest.raises(AttributeError, match=f"cannot assign {what} before Module.__init__"):
                bare.x = value
    outs = {}
    for m in (vt, torch):
        net = m.nn.Sequential(m.nn.Linear(2, 3), m.nn.Tanh(), m.nn.Linear(3, 1))
        with m.no_grad():
            for i, p in enumerate(net.parameters()):
                p.copy_(m.from_numpy(np.linspace(-1, 1, p.numel()).reshape(tuple(p.shape)) * (i + 1)))
        clone = copy_by_dict(net)
        assert clone[0] is not net[0] and list(clone._parameters) == list(net._parameters)
        loss = clone(m.ones(4, 2)).pow(2).sum()
        loss.backward()  # the clone's tensors are non-leaf copies: the gradient reaches the originals
        assert clone[0].weight is not net[0].weight and clone[0].weight.grad_fn is not None
        outs[m] = [loss.item()] + [p.grad.numpy().copy() for p in net.parameters()]
    np.testing.assert_allclose(outs[vt][0], outs[torch][0], rtol=1e-6)
    for a, b in zip(outs[vt][1:], outs[torch][1:]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def copy_by_dict(module):
    """learn2learn's clone_module: a __new__ instance with copies of the tables and cloned parameter tensors."""
    clone = module.__new__(type(module))
    clone.__dict__ = module.__dict__.copy()
    clone._parameters = clone._parameters.copy()
    clone._buffers = clone._buffers.copy()
    clone._modules = clone._modules.copy()
    for key, p in module._parameters.items():
        if p is not None:
            clone._parameters[key] = p.clone()
    for key, child in module._modules.items():
        clone._modules[key] = copy_by_dict(child)
    return clone


def test_named_members_takes_a_function_as_torch():
    """Module._named_members(get_members_fn, prefix="", recurse=True, remove_duplicate=True): torchmeta's
    MetaModule lists only some modules' parameters through it."""
    got = {}
    for m in (vt, torch):
        nn = m.nn
        shared = nn.Linear(3, 3)
        net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(shared, nn.LayerNorm(3)), shared)
        only_linear = lambda mod: mod._parameters.items() if isinstance(mod, nn.Linear) else []  # noqa: E731
        got[m] = ([n for n, _ in net._named_members(only_linear)],
                  [n for n, _ in net._named_members(only_linear, prefix="meta", recurse=True)],
                  [n for n, _ in net._named_members(lambda mod: mod._parameters.items(), recurse=False)],
                  [n for n, _ in net._named_members(only_linear, remove_duplicate=False)],
                  [n for n, _ in net[2]._named_members(lambda mod: mod._buffers.items())])
    assert got[vt] == got[torch]
    assert "2.1.weight" not in got[vt][0] and "meta.0.weight" in got[vt][1]


def test_state_dict_metadata_versions_as_torch():
    """state_dict()._metadata holds {"version": _version} per module prefix (BatchNorm's is 2); it survives save/load
    and load_state_dict hands it to _load_from_state_dict: a version-1 BatchNorm checkpoint without
    num_batches_tracked loads, a version-2 one without it is missing the key, as torch's."""
    import io

    got = {}
    for m in (vt, torch):
        nn = m.nn
        net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Sequential(nn.LayerNorm(3)))
        sd = net.state_dict()
        buf = io.BytesIO()
        m.save(sd, buf)
        buf.seek(0)
        again = m.load(buf)
        old = OrderedDict((k, v) for k, v in sd.items() if k != "1.num_batches_tracked")
        old._metadata = OrderedDict((k, dict(v)) for k, v in sd._metadata.items())
        old._metadata["1"]["version"] = 1
        res_old = net.load_state_dict(old, strict=False)
        old._metadata["1"]["version"] = 2
        res_new = net.load_state_dict(old, strict=False)
        got[m] = (list(sd._metadata.items()), list(again._metadata.items()), list(res_old.missing_keys),
                  list(res_new.missing_keys), m.nn.Module._version, net.state_dict(prefix="p.")._metadata.get("p"),
                  list(net[2].state_dict()._metadata))
    assert got[vt] == got[torch]
    assert got[vt][0][1] == ("0", {"version": 1}) and got[vt][0][2] == ("1", {"version": 2})
    assert got[vt][3] == ["1.num_batches_tracked"] and got[vt][2] == []
