"""vt.nn.DataParallel and vt.nn.parallel's parts where no GPU is needed: the wrapper without CUDA (it calls the
module, as torch's), and scatter / gather / replicate / parallel_apply over CPU "devices", which run the same
code as over GPUs: nested inputs, uneven and short batches, kwargs padding, gradients summed over replicas,
buffers shared with the source replica, grad mode and autocast carried into the worker threads, errors. The
multi-GPU behaviour (real or emulated) is in tests/fabric/test_data_parallel.py."""
import collections

import numpy as np
import pytest
import torch
import vibetensor.torch as vt
from vibetensor.torch.nn.parallel import gather, parallel_apply, replicate, scatter, scatter_kwargs

CPU2 = ["cpu", "cpu"]
Pair = collections.namedtuple("Pair", "a b")


def test_without_cuda_the_wrapper_calls_the_module():
    if vt.cuda.is_available():
        pytest.skip("the no-CUDA path")
    m = vt.nn.Linear(3, 2)
    dp = vt.nn.DataParallel(m)
    assert repr(dp) == repr(torch.nn.DataParallel(torch.nn.Linear(3, 2))) and dp.device_ids == []
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    x = vt.randn(4, 3)
    assert vt.equal(dp(x), m(x))


def test_scatter_nested_uneven_and_short():
    x = vt.arange(10.0).reshape(5, 2)
    parts = scatter((x, [x, 7], {"k": x}, Pair(x, "s")), CPU2)
    assert len(parts) == 2
    first, second = parts
    assert first[0].shape == (3, 2) and second[0].shape == (2, 2)  # Tensor.chunk's sizes
    assert first[1][1] == 7 and isinstance(first[1], list) and first[2]["k"].shape == (3, 2)
    assert isinstance(first[3], Pair) and first[3].b == "s"
    assert len(scatter(vt.ones(1, 3), ["cpu"] * 4)) == 1  # fewer rows than devices: fewer chunks
    inputs, kwargs = scatter_kwargs((x,), {"scale": x[:, :1], "flag": True}, CPU2)
    assert len(inputs) == len(kwargs) == 2 and kwargs[1]["flag"] is True and kwargs[1]["scale"].shape == (2, 1)
    inputs, kwargs = scatter_kwargs((x,), {}, CPU2)
    assert kwargs == ({}, {})
    with pytest.raises(IndexError):  # as Tensor.chunk (torch's scatter raises there too)
        scatter(vt.ones(4, 3), CPU2, dim=2)


def test_gather_structures_and_scalars():
    a, b = vt.ones(2, 3), vt.zeros(1, 3)
    assert gather([a, b], "cpu").tolist() == [[1.0] * 3] * 2 + [[0.0] * 3]
    out = gather([{"x": a, "n": None}, {"x": b, "n": None}], -1)
    assert out["x"].shape == (3, 3) and out["n"] is None
    out = gather([Pair(a, a), Pair(b, b)], "cpu")
    assert isinstance(out, Pair) and out.b.shape == (3, 3)
    assert gather([(a,), (b,)], "cpu", dim=0)[0].shape == (3, 3)
    with pytest.warns(UserWarning, match="all input tensors were scalars"):
        assert gather([vt.tensor(1.0), vt.tensor(2.0)], "cpu").tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="same number of keys"):
        gather([{"x": a}, {"x": b, "y": b}], "cpu")


def mlp(m):
    return m.nn.Sequential(m.nn.Linear(4, 8), m.nn.GELU(), m.nn.LayerNorm(8), m.nn.Linear(8, 2))


def test_replicas_sum_their_gradients_into_the_module():
    net = mlp(vt)
    x = vt.randn(6, 4)
    r0, r1 = replicate(net, CPU2)
    assert list(r0.parameters()) == [] and r0[0].weight is net[0].weight  # the source device keeps the tensors
    (r0(x[:3]).square().sum() + r1(x[3:]).square().sum()).backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    net(x).square().sum().backward()  # the two halves' losses added: the same gradient
    for g, p in zip(grads, net.parameters()):
        np.testing.assert_allclose(g.numpy(), p.grad.numpy(), rtol=1e-5, atol=1e-6)
    net.zero_grad(set_to_none=True)
    d0, _ = replicate(net, CPU2, detach=True)
    assert not d0(x).requires_grad and all(p.grad is None for p in net.parameters())
    bn = vt.nn.BatchNorm1d(4)
    b0, _ = replicate(bn, CPU2)
    b0(x)
    assert bn.num_batches_tracked.item() == 1  # the source replica's buffer updates land in the module
    with pytest.raises(TypeError, match="expected a vt.nn.Module"):
        replicate(lambda t: t, CPU2)


def test_parallel_apply_threads_carry_mode_and_report_errors():
    net = vt.nn.Linear(4, 4)
    xs = [(vt.randn(2, 4),), (vt.randn(3, 4),)]
    with vt.no_grad():
        outs = parallel_apply([net, net], xs, devices=[None, None])
    assert [o.shape for o in outs] == [(2, 4), (3, 4)] and not any(o.requires_grad for o in outs)
    with vt.autocast("cpu"):
        outs = parallel_apply([net, net], xs, devices=[None, None])
    assert all(o.dtype == vt.bfloat16 for o in outs)
    outs = parallel_apply([net, net], [xs[0][0], xs[1][0]], ({}, {}), [None, None])
    assert outs[1].requires_grad

    def bad(t):
        raise KeyError("no such thing")
    with pytest.raises(KeyError, match="no such thing") as e:
        parallel_apply([net, bad], xs, devices=[None, None])
    assert "Caught in replica 1" in "".join(getattr(e.value, "__notes__", []))
    with pytest.raises(AssertionError, match="number of modules 2 is not equal to the number of inputs 1"):
        parallel_apply([net, net], xs[:1])


def test_a_tied_weight_is_copied_once_per_replica():
    emb = vt.nn.Embedding(5, 4)
    head = vt.nn.Linear(4, 5, bias=False)
    head.weight = emb.weight  # tied, as language models do
    net = vt.nn.Sequential(emb, head)
    r0, r1 = replicate(net, CPU2, detach=True)
    assert r0[0].weight is r0[1].weight and r1[0].weight is r1[1].weight
