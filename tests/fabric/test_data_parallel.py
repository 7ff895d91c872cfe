"""vt.nn.DataParallel over several GPUs (real, or emulated: VT_EMULATE_DEVICES=N): forward and backward against
the same module on one device with the whole batch (outputs and gradients to float32 rounding: the replicas'
gradients are summed in a different order), uneven and short batches, keyword arguments, structured outputs,
another output device, BatchNorm's statistics from device_ids[0], autocast inside, a short training run, the
functional form, inside a Fabric, and the errors."""
import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor import fabric

from fabric_helpers import need

pytestmark = [pytest.mark.cuda, pytest.mark.multigpu(2)]


class Net(vt.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = vt.nn.Sequential(vt.nn.Linear(16, 32), vt.nn.GELU(), vt.nn.LayerNorm(32), vt.nn.Linear(32, 4))

    def forward(self, x, scale=None, as_dict=False):
        y = self.body(x)
        if scale is not None:
            y = y * scale
        return {"y": y, "mean": y.mean()} if as_dict else (y, y.sum(1))


def setup(seed=0):
    vt.manual_seed(seed)
    net = Net().to("cuda:0")
    rng = np.random.default_rng(seed)
    return net, rng


def grads(net):
    return [p.grad.cpu().numpy().copy() for p in net.parameters()]


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("rows", [37, 8, 1])
def test_forward_and_backward_match_one_device(rows):
    need(2)
    net, rng = setup()
    x = vt.from_numpy(rng.standard_normal((rows, 16)).astype(np.float32)).to("cuda:0")
    dp = vt.nn.DataParallel(net)
    y, s = dp(x)
    assert y.device == vt.device("cuda:0") and y.shape == (rows, 4) and s.shape == (rows,)
    (y.square().sum() + s.sum()).backward()
    g_dp = grads(net)
    net.zero_grad()
    y1, s1 = net(x)
    (y1.square().sum() + s1.sum()).backward()
    close(y.cpu().numpy(), y1.cpu().numpy())
    for a, b in zip(g_dp, grads(net)):
        close(a, b)


def test_kwargs_dict_outputs_and_output_device():
    need(2)
    n = vt.cuda.device_count()
    net, rng = setup(1)
    x = vt.from_numpy(rng.standard_normal((12, 16)).astype(np.float32)).to("cuda:0")
    scale = vt.from_numpy(rng.standard_normal((12, 1)).astype(np.float32)).to("cuda:0")
    dp = vt.nn.DataParallel(net, output_device=n - 1)
    out = dp(x, scale=scale, as_dict=True)
    assert out["y"].device == vt.device(f"cuda:{n - 1}")
    replicas = len(x.chunk(n))  # 12 rows in chunks of ceil(12 / n): fewer replicas than devices for n = 8
    assert out["mean"].shape == (replicas,)  # one 0-dim mean per replica, gathered into a vector
    close(out["y"].cpu().numpy(), net(x, scale=scale)[0].detach().cpu().numpy())


def test_training_steps_match_one_device():
    need(2)
    rng = np.random.default_rng(2)
    data = [(rng.standard_normal((20, 16)).astype(np.float32), rng.integers(0, 4, 20)) for _ in range(3)]
    weights = []
    for parallel in (True, False):
        net, _ = setup(3)
        model = vt.nn.DataParallel(net) if parallel else net
        opt = vt.optim.SGD(net.parameters(), lr=0.1)
        for xb, yb in data:
            x, y = vt.from_numpy(xb).to("cuda:0"), vt.from_numpy(yb).to("cuda:0")
            loss = vt.nn.functional.cross_entropy(model(x)[0], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        weights.append([p.detach().cpu().numpy() for p in net.parameters()])
    for a, b in zip(*weights):
        close(a, b)


def test_batchnorm_statistics_come_from_device_ids_0():
    need(2)
    n = vt.cuda.device_count()
    bn = vt.nn.BatchNorm1d(3).to("cuda:0")
    x = vt.from_numpy(np.random.default_rng(4).standard_normal((4 * n, 3)).astype(np.float32)).to("cuda:0")
    vt.nn.DataParallel(bn)(x)
    first = x[:4].cpu().numpy()  # the first chunk's batch statistics, folded in with momentum 0.1
    close(bn.running_mean.cpu().numpy(), 0.1 * first.mean(0))
    assert bn.num_batches_tracked.item() == 1


def test_autocast_reaches_every_replica_and_the_functional_form():
    need(2)
    net, rng = setup(5)
    # Rows for every device: with fewer chunks than devices, torch's scatter_kwargs (and so this one) pads the
    # inputs with empty tuples up to the keyword arguments' count, and the extra replicas get no input.
    x = vt.from_numpy(rng.standard_normal((3 * vt.cuda.device_count(), 16)).astype(np.float32)).to("cuda:0")
    with vt.autocast("cuda", dtype=vt.bfloat16):
        y, _ = vt.nn.DataParallel(net)(x)
    assert y.dtype == vt.bfloat16
    y2, _ = vt.nn.parallel.data_parallel(net, x, module_kwargs={"scale": 2.0})
    close(y2.detach().cpu().numpy(), 2 * net(x)[0].detach().cpu().numpy())


def test_inside_a_fabric():
    need(2)
    net, rng = setup(6)
    x = vt.from_numpy(rng.standard_normal((10, 16)).astype(np.float32)).to("cuda:0")
    with fabric.Fabric():
        y, _ = vt.nn.DataParallel(net)(x)
        y.sum().backward()
    g = grads(net)
    net.zero_grad()
    net(x)[0].sum().backward()
    for a, b in zip(g, grads(net)):
        close(a, b)


def test_errors_name_the_problem():
    need(2)
    net = Net()  # still on the CPU
    with pytest.raises(RuntimeError, match=r"module must have its parameters and buffers on device cuda:0 "
                                           r"\(device_ids\[0\]\) but found one of them on device: cpu"):
        vt.nn.DataParallel(net)(vt.ones(4, 16, device="cuda:0"))
    net = net.to("cuda:0")
    with pytest.raises(RuntimeError) as e:  # the replica's own error, with a note naming the replica
        vt.nn.DataParallel(net)(vt.ones(4, 15, device="cuda:0"))
    assert any("replica" in note for note in getattr(e.value, "__notes__", []))
