"""optim.swa_utils against torch's: AveragedModel's running mean (SWA) and EMA over several training steps, with
and without use_buffers, avg_fn and multi_avg_fn, n_averaged; update_bn's recomputed statistics."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def _net(m):
    return m.nn.Sequential(m.nn.Linear(3, 4), m.nn.BatchNorm1d(4), m.nn.ReLU(), m.nn.Linear(4, 2))


def _pair():
    torch.manual_seed(0)
    t = _net(torch)
    v = _net(vt)
    v.load_state_dict({k: vt.from_numpy(x.numpy().copy()) for k, x in t.state_dict().items()})
    return v, t


def _close(v_state, t_state):
    assert list(v_state) == list(t_state)
    for k, x in t_state.items():
        np.testing.assert_allclose(v_state[k].double().numpy(), x.double().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("kind", ["swa", "ema", "ema_fn", "swa_buffers"])
def test_averaged_model_follows_torch(kind):
    v, t = _pair()

    def make(m, model):
        su = m.optim.swa_utils
        if kind == "swa":
            return su.AveragedModel(model)
        if kind == "ema":
            return su.AveragedModel(model, multi_avg_fn=su.get_ema_multi_avg_fn(0.9))
        if kind == "ema_fn":
            return su.AveragedModel(model, avg_fn=su.get_ema_avg_fn(0.8))
        return su.AveragedModel(model, use_buffers=True)

    avg_v, avg_t = make(vt, v), make(torch, t)
    opt_v, opt_t = vt.optim.SGD(v.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.standard_normal((8, 3)).astype(np.float32)
        for m, model, opt, avg in ((vt, v, opt_v, avg_v), (torch, t, opt_t, avg_t)):
            opt.zero_grad()
            model(m.from_numpy(x.copy())).pow(2).mean().backward()
            opt.step()
            avg.update_parameters(model)
    _close(avg_v.state_dict(), avg_t.state_dict())
    assert int(avg_v.n_averaged) == 4
    x = vt.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))
    avg_v.eval(), avg_t.eval()
    np.testing.assert_allclose(avg_v(x).detach().numpy(), avg_t(torch.from_numpy(x.numpy())).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


def test_update_bn_as_torch():
    v, t = _pair()
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((6, 3)).astype(np.float32) * 3 + 1 for _ in range(3)]
    vt.optim.swa_utils.update_bn([(vt.from_numpy(b), 0) for b in batches], v)
    torch.optim.swa_utils.update_bn([(torch.from_numpy(b), 0) for b in batches], t)
    _close(v.state_dict(), t.state_dict())
    assert v[1].momentum == 0.1 and v.training


def test_one_of_avg_fn_and_multi_avg_fn():
    su = vt.optim.swa_utils
    with pytest.raises(AssertionError):
        su.AveragedModel(vt.nn.Linear(1, 1), avg_fn=su.get_swa_avg_fn(), multi_avg_fn=su.get_swa_multi_avg_fn())
