"""nn layers' forward parameter names against torch's: code passes the input by keyword (`layer(input=x)`, a
forward hook registered with_kwargs sees it under that name), so the names are part of the surface."""
import inspect

import numpy as np
import pytest
import torch
import vibetensor.torch as vt

_BASES = {"Module", "ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "RNNBase", "RNNCellBase"}
LAYERS = sorted(n for n in dir(torch.nn) if isinstance(getattr(torch.nn, n), type)
                and issubclass(getattr(torch.nn, n), torch.nn.Module) and hasattr(vt.nn, n) and n not in _BASES)


def names(cls):
    try:
        return list(inspect.signature(cls.forward).parameters)
    except (TypeError, ValueError):
        return None


@pytest.mark.parametrize("name", LAYERS)
def test_forward_parameter_names_match_torch(name):
    assert names(getattr(vt.nn, name)) == names(getattr(torch.nn, name))


def test_layers_take_their_input_by_keyword_like_torch():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6)
    torch.manual_seed(0)
    tl = torch.nn.Linear(6, 3)
    vl = vt.nn.Linear(6, 3)
    vl.load_state_dict({k: vt.from_numpy(v.detach().numpy().copy()) for k, v in tl.state_dict().items()})
    seen = []
    vl.register_forward_hook(lambda m, a, kw, o: seen.append(sorted(kw)), with_kwargs=True)
    for tmod, vmod in ((tl, vl), (torch.nn.Tanh(), vt.nn.Tanh()), (torch.nn.LayerNorm(6), vt.nn.LayerNorm(6)),
                       (torch.nn.Flatten(0), vt.nn.Flatten(0))):
        out_t, out_v = tmod(input=torch.from_numpy(x)), vmod(input=vt.from_numpy(x))
        np.testing.assert_allclose(out_v.detach().numpy(), out_t.detach().numpy(), rtol=1e-6, atol=1e-7)
    assert seen == [["input"]]
    idx = np.array([[0, 2], [1, 1]])
    emb_t, emb_v = torch.nn.Embedding(3, 2), vt.nn.Embedding(3, 2)
    emb_v.weight = vt.nn.Parameter(vt.from_numpy(emb_t.weight.detach().numpy().copy()))
    np.testing.assert_allclose(emb_v(input=vt.from_numpy(idx)).detach().numpy(),
                               emb_t(input=torch.from_numpy(idx)).detach().numpy())
