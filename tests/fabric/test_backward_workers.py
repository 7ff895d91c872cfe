"""Backward over several devices (emulated or real) with a thread per device (Note [Device workers] in
core/src/autograd/device_workers.h): the same gradients as the calling thread alone (bit-identical) and as torch,
each device's nodes on its own thread, a worker's error raised to the caller with nothing left hanging, a backward
inside a backward, and backward from several Python threads at once."""
import threading

import numpy as np
import pytest

import vibetensor.torch as vt
from vibetensor import _C

from fabric_helpers import need

pytestmark = [pytest.mark.cuda, pytest.mark.multigpu(2)]


@pytest.fixture
def device_threads():
    prev = _C.autograd._device_threads_enabled()
    yield lambda on: _C.autograd._set_device_threads(on)
    _C.autograd._set_device_threads(prev)


def weights(rng, n):
    return [[rng.standard_normal((16, 16)).astype(np.float32) / 4 for _ in range(3)] for _ in range(n)]


def data_parallel_step(m, ws, xs, devices, sink, hook=None):
    """Device k runs a three-layer tanh MLP on its slice of the batch; the losses meet on `sink`. Returns the
    weight gradients as numpy arrays, per device."""
    leaves = []
    losses = []
    for k, (wk, xk) in enumerate(zip(ws, xs)):
        dev = devices[k]
        lw = [m.tensor(w).to(dev).requires_grad_() for w in wk]
        if hook is not None:
            lw[0].register_hook(lambda g, k=k: hook(k, g))
        h = m.tensor(xk).to(dev)
        for w in lw:
            h = (h @ w).tanh()
        losses.append((h * h).mean().to(sink))
        leaves.append(lw)
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    total.backward()
    return [[w.grad.cpu().numpy() for w in lw] for lw in leaves]


@pytest.mark.parametrize("sink", ["cuda:0", "cpu"])
def test_gradients_match_one_thread_and_torch(sink, device_threads, rng):
    need(2)
    import torch

    n = vt.cuda.device_count()
    ws = weights(rng, n)
    xs = [rng.standard_normal((8, 16)).astype(np.float32) for _ in range(n)]
    devices = [f"cuda:{k}" for k in range(n)]
    threads = {}

    def hook(k, g):
        threads[k] = threading.get_ident()

    device_threads(True)
    parallel = data_parallel_step(vt, ws, xs, devices, sink, hook)
    caller = threading.get_ident()
    assert caller not in threads.values() and len(set(threads.values())) == n, threads  # a thread per device
    device_threads(False)
    threads.clear()
    serial = data_parallel_step(vt, ws, xs, devices, sink, hook)
    assert set(threads.values()) == {caller}
    reference = data_parallel_step(torch, ws, xs, ["cpu"] * n, "cpu")
    for k in range(n):
        for p, s, r in zip(parallel[k], serial[k], reference[k]):
            np.testing.assert_array_equal(p, s)
            np.testing.assert_allclose(p, r, rtol=1e-4, atol=1e-6)


def test_an_error_on_a_worker_reaches_the_caller(device_threads, rng):
    need(2)
    device_threads(True)
    n = vt.cuda.device_count()
    ws = weights(rng, n)
    xs = [rng.standard_normal((4, 16)).astype(np.float32) for _ in range(n)]
    devices = [f"cuda:{k}" for k in range(n)]

    def hook(k, g):
        if k == n - 1:
            raise ValueError(f"hook failed on cuda:{k}")

    with pytest.raises(ValueError, match=f"hook failed on cuda:{n - 1}"):
        data_parallel_step(vt, ws, xs, devices, "cuda:0", hook)
    # The workers are free again: the next backward over every device runs and is right.
    again = data_parallel_step(vt, ws, xs, devices, "cuda:0")
    device_threads(False)
    np.testing.assert_array_equal(again[-1][0], data_parallel_step(vt, ws, xs, devices, "cuda:0")[-1][0])


def test_backward_inside_a_backward_over_devices(device_threads):
    need(2)
    device_threads(True)

    class Square(vt.autograd.Function):
        """x**2 whose backward asks autograd, over two devices, for d(sum(2 * y * g))/dy at y = x."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            with vt.enable_grad():
                y = x.detach().requires_grad_()
                z = (y.to("cuda:1") * g.to("cuda:1") * 2).sum()  # a graph on cuda:1 and cuda:0, inside a worker
                (gy,) = vt.autograd.grad(z, [y])
            return gy * x  # gy is 2g, so this is 2 g x: the gradient of x**2

    x0 = vt.tensor([1.0, -2.0, 3.0], device="cuda:0").requires_grad_()
    x1 = vt.tensor([0.5, 4.0], device="cuda:1").requires_grad_()
    loss = Square.apply(x0).sum() + Square.apply(x1).sum().to("cuda:0")
    loss.backward()
    np.testing.assert_array_equal(x0.grad.cpu().numpy(), [2.0, -4.0, 6.0])
    np.testing.assert_array_equal(x1.grad.cpu().numpy(), [1.0, 8.0])


def test_backward_from_several_python_threads(device_threads, rng):
    need(2)
    device_threads(True)
    n = vt.cuda.device_count()
    devices = [f"cuda:{k}" for k in range(n)]
    cases = [(weights(rng, n), [rng.standard_normal((4, 16)).astype(np.float32) for _ in range(n)]) for _ in range(4)]
    results, errors = [None] * len(cases), []

    def work(i):
        try:
            results[i] = data_parallel_step(vt, *cases[i], devices, "cuda:0")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    device_threads(False)
    for i, (ws, xs) in enumerate(cases):
        expected = data_parallel_step(vt, ws, xs, devices, "cuda:0")
        for k in range(n):
            for a, b in zip(results[i][k], expected[k]):
                np.testing.assert_array_equal(a, b)
