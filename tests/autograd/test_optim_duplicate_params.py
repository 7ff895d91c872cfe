"""A parameter listed twice in one optimizer group (python/vibetensor/torch/optim/optimizer.py), against torch:
torch warns (its issue 40967) and steps each listing, so the parameter moves twice per step - as happens when a
tied weight is gathered from both modules that hold it; a parameter in two groups is still refused."""
import numpy as np
import pytest
import torch

import vibetensor.torch as vt

DUPLICATE = "optimizer contains a parameter group with duplicate parameters; in future, this will cause an error"
CASES = [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.1)), ("AdamW", dict(lr=0.1, weight_decay=0.1)),
         ("RMSprop", dict(lr=0.01)), ("Adagrad", dict(lr=0.1))]


def params(lib):
    return (lib.nn.Parameter(lib.from_numpy(np.array([1.0, -2.0, 3.0]))),
            lib.nn.Parameter(lib.from_numpy(np.array([0.5, 0.25]))))


def three_steps(lib, name, kw, duplicate=True, poison=False):
    """p and q after three steps of the optimizer over [p, q, p] (or [p, q]); with poison, the allocator's cache
    holds blocks of 1e6 when each step runs."""
    p, q = params(lib)
    if duplicate:
        with pytest.warns(UserWarning, match=DUPLICATE):
            opt = getattr(lib.optim, name)([p, q, p], **kw)
    else:
        opt = getattr(lib.optim, name)([p, q], **kw)
    for _ in range(3):
        opt.zero_grad()
        ((p * p).sum() + (q ** 3).sum()).backward()
        if poison:
            for _ in range(8):  # each freed at once: its block goes back to the cache
                lib.full((3,), 1e6, dtype=lib.float64)
        opt.step()
    return np.concatenate([p.detach().numpy(), q.detach().numpy()])


@pytest.mark.parametrize("name,kw", CASES)
def test_a_duplicate_warns_and_steps_as_torch(name, kw):
    got = three_steps(vt, name, kw)
    np.testing.assert_allclose(got, three_steps(torch, name, kw), rtol=1e-12)
    # the same optimizer without the duplicate moves p less far
    assert np.abs(three_steps(vt, name, kw, duplicate=False)[:3] - got[:3]).max() > 1e-3


@pytest.mark.parametrize("name,kw", CASES + [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                             ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
                                             ("Adam", dict(lr=0.1, amsgrad=True)), ("NAdam", dict(lr=0.1))])
def test_a_duplicate_reads_no_uninitialised_state(name, kw):
    """SGD's fused path once gave the second listing a fresh, uninitialised momentum buffer (empty_like), so the
    result depended on what the allocator handed back (a flaky test under xdist)."""
    np.testing.assert_allclose(three_steps(vt, name, kw, poison=True), three_steps(torch, name, kw, poison=True),
                               rtol=1e-12)


def test_a_tied_weight_gathered_from_both_modules():
    """lm_head.weight is embedding.weight: a list built module by module holds it twice, as in torch."""
    for lib in (torch, vt):
        emb, head = lib.nn.Embedding(4, 3), lib.nn.Linear(3, 4, bias=False)
        head.weight = emb.weight
        with pytest.warns(UserWarning, match=DUPLICATE):
            opt = lib.optim.AdamW([p for m in (emb, head) for p in m.parameters()], lr=1e-3)
        assert len(opt.param_groups[0]["params"]) == 2


def test_a_parameter_in_two_groups_is_still_refused():
    for lib in (torch, vt):
        p, q = params(lib)
        with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
            lib.optim.SGD([{"params": [p]}, {"params": [p, q]}], lr=0.1)
