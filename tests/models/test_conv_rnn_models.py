"""The models of conv_rnn_models.py (written with `import torch`) on torch and on vibetensor from the same
weights, trained a few steps in float64 with the optimizers and schedules public training code uses: the same
losses, gradients, weights and batch-norm running statistics."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from side_by_side import load_torch_weights
from swap_import import pair


def same_weights(name, *args):
    torch.manual_seed(0)
    tmod, vmod = pair("conv_rnn_models.py")
    tm, vm = getattr(tmod, name)(*args).double(), getattr(vmod, name)(*args).double()
    assert list(vm.state_dict()) == list(tm.state_dict())
    load_torch_weights(vm, tm)
    return tm, vm


def close(a, b, what, rtol=1e-9, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol, err_msg=what)


def train(tm, vm, topt, vopt, batches, loss, tsched=None, vsched=None):
    for step, (tin, vin) in enumerate(batches):
        tl, vl = loss(torch, tm, *tin), loss(vt, vm, *vin)
        close(vl.item(), tl.item(), f"loss at step {step}")
        topt.zero_grad()
        vopt.zero_grad()
        tl.backward()
        vl.backward()
        tg = dict(tm.named_parameters())
        for n, p in vm.named_parameters():
            close(p.grad.numpy(), tg[n].grad.numpy(), f"grad {n} at step {step}", rtol=1e-7, atol=1e-10)
        topt.step()
        vopt.step()
        if tsched is not None:
            tsched.step(tl.item())
            vsched.step(vl.item())
    ts = tm.state_dict()
    for k, v in vm.state_dict().items():  # weights, running statistics, num_batches_tracked
        close(v.numpy(), ts[k].numpy(), k, rtol=1e-7, atol=1e-10)


def both(*arrays):
    return tuple(torch.from_numpy(a) for a in arrays), tuple(vt.from_numpy(a.copy()) for a in arrays)


def test_resnet_with_batch_norm_trains_like_torch():
    tm, vm = same_weights("TinyResNet")
    r = np.random.default_rng(1)
    batches = [both(r.standard_normal((4, 3, 12, 12)), r.integers(0, 10, size=4)) for _ in range(3)]

    def loss(m, model, x, y):
        return m.nn.CrossEntropyLoss(label_smoothing=0.1)(model(x), y)

    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    vopt = vt.optim.SGD(vm.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)
    train(tm, vm, topt, vopt, batches, loss)
    tm.eval()
    vm.eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 12, 12))
    close(vm(vt.from_numpy(x)).detach().numpy(), tm(torch.from_numpy(x)).detach().numpy(), "eval output")


def test_autoencoder_trains_like_torch():
    tm, vm = same_weights("ConvAutoencoder")
    r = np.random.default_rng(3)
    batches = [both(r.random((2, 1, 16, 16))) for _ in range(3)]

    def loss(m, model, x):
        return m.nn.functional.mse_loss(model(x), x) + 0.1 * m.nn.L1Loss()(model(x), x)

    topt = torch.optim.RMSprop(tm.parameters(), lr=1e-2, momentum=0.5, centered=True)
    vopt = vt.optim.RMSprop(vm.parameters(), lr=1e-2, momentum=0.5, centered=True)
    train(tm, vm, topt, vopt, batches, loss)


@pytest.mark.parametrize("name", ["LSTMTagger", "TransformerClassifier"])
def test_sequence_models_train_like_torch(name):
    tm, vm = same_weights(name)
    r = np.random.default_rng(4)
    tokens = [r.integers(1, 20, size=(3, 7)) for _ in range(3)]
    for t in tokens:
        t[0, 5:] = 0  # padding at the end of the first sequence
    if name == "LSTMTagger":
        batches = [both(t, r.integers(0, 5, size=(3, 7))) for t in tokens]

        def loss(m, model, x, tags):
            logp = model(x)
            return m.nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), tags.reshape(-1), ignore_index=0)

        topt = torch.optim.Adagrad(tm.parameters(), lr=0.1)
        vopt = vt.optim.Adagrad(vm.parameters(), lr=0.1)
        train(tm, vm, topt, vopt, batches, loss)
    else:
        batches = [both(t, t == 0, r.integers(0, 3, size=3)) for t in tokens]

        def loss(m, model, x, mask, y):
            return m.nn.functional.cross_entropy(model(x, mask), y)

        topt = torch.optim.AdamW(tm.parameters(), lr=1e-2)
        vopt = vt.optim.AdamW(vm.parameters(), lr=1e-2)
        tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, patience=0, factor=0.5)
        vsched = vt.optim.lr_scheduler.ReduceLROnPlateau(vopt, patience=0, factor=0.5)
        train(tm, vm, topt, vopt, batches, loss, tsched, vsched)
        assert vopt.param_groups[0]["lr"] == topt.param_groups[0]["lr"]
