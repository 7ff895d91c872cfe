"""nn.SyncBatchNorm as torch's behaves without an initialised process group (vibetensor runs one process):
BatchNorm over inputs of any rank >= 2, torch's input checks, and convert_sync_batchnorm replacing the
BatchNorm layers of a model in place of torch's, sharing their parameters and buffers."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt


def _model(m):
    return m.nn.Sequential(m.nn.Conv2d(3, 4, 3), m.nn.BatchNorm2d(4), m.nn.ReLU(),
                           m.nn.Sequential(m.nn.Flatten(), m.nn.Linear(4 * 6 * 6, 5), m.nn.BatchNorm1d(5)))


def test_convert_and_train_as_torch():
    torch.manual_seed(0)
    t = torch.nn.SyncBatchNorm.convert_sync_batchnorm(_model(torch))
    v = _model(vt)
    bn = v[1]
    v = vt.nn.SyncBatchNorm.convert_sync_batchnorm(v)
    assert isinstance(v[1], vt.nn.SyncBatchNorm) and isinstance(v[3][2], vt.nn.SyncBatchNorm)
    assert v[1].weight is bn.weight and v[1].running_mean is bn.running_mean and v[1].process_group is None
    assert list(v.state_dict()) == list(t.state_dict())
    v.load_state_dict({k: vt.from_numpy(x.numpy().copy()) for k, x in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((6, 3, 8, 8)).astype(np.float32)
    for _ in range(2):
        out_t, out_v = t(torch.from_numpy(x)), v(vt.from_numpy(x))
        np.testing.assert_allclose(out_v.detach().numpy(), out_t.detach().numpy(), rtol=1e-4, atol=1e-5)
    for k, want in t.state_dict().items():
        np.testing.assert_allclose(v.state_dict()[k].numpy(), want.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    t.eval(), v.eval()
    np.testing.assert_allclose(v(vt.from_numpy(x)).detach().numpy(), t(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(4,), (2, 0, 3)])
def test_input_checks_as_torch(shape):
    channels = shape[1] if len(shape) > 1 else 4
    with pytest.raises(ValueError) as theirs:
        torch.nn.SyncBatchNorm(channels)(torch.zeros(shape))
    with pytest.raises(ValueError, match=str(theirs.value).replace("(", r"\(").replace(")", r"\)")):
        vt.nn.SyncBatchNorm(channels)(vt.zeros(shape))


def test_any_rank_from_two():
    for shape in [(5, 3), (5, 3, 7), (2, 3, 4, 5), (2, 3, 2, 2, 2), (2, 3, 2, 2, 2, 2)]:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        got = vt.nn.SyncBatchNorm(3)(vt.from_numpy(x)).detach().numpy()
        want = torch.nn.SyncBatchNorm(3)(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
