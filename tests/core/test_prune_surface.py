"""torch.nn.utils.prune against torch's: masks (L1 and Ln-structured, repeated prunings combined, global and
custom masks, importance scores), the reparametrized module (weight_orig, weight_mask, the pre-hook), forward and
gradient through the mask, remove(), and the errors for bad amounts. Random methods draw from vibetensor's own
stream: only the number they prune is compared."""
import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
import vibetensor.torch as vt
import vibetensor.torch.nn.utils.prune as vprune

W = np.array([[0.3, -1.2, 0.05, 2.0], [-0.7, 0.01, 1.5, -0.2], [0.9, -0.4, 0.6, 0.11]], dtype=np.float32)
LIBS = ((torch, tprune), (vt, vprune))


def lin(L):
    m = L.nn.Linear(4, 3)
    with L.no_grad():
        m.weight.copy_(L.tensor(W))
        m.bias.copy_(L.tensor([1.0, -2.0, 0.5]))
    return m


def both(script):
    return [script(L, P) for L, P in LIBS]


def same(script):
    t, v = both(script)
    assert v == t
    return t


def test_l1_unstructured_reparametrizes_like_torch():
    def s(L, P):
        m = P.l1_unstructured(lin(L), "weight", amount=0.25)
        return (sorted(m.state_dict()), [n for n, _ in m.named_parameters()], m.weight_mask.tolist(),
                m.weight.tolist(), P.is_pruned(m), isinstance(m.weight, L.nn.Parameter))

    t = same(s)
    assert t[0] == ["bias", "weight_mask", "weight_orig"] and sum(map(sum, t[2])) == 9


@pytest.mark.parametrize("steps", [
    [("l1", dict(amount=3)), ("l1", dict(amount=0.5))],
    [("ln", dict(amount=1, n=2, dim=0)), ("ln", dict(amount=0.5, n=1, dim=1))],
    [("ln", dict(amount=1, n=float("inf"), dim=0)), ("l1", dict(amount=2))],
    [("l1", dict(amount=2, importance_scores="arange"))],
])
def test_repeated_prunings_combine_masks_like_torch(steps):
    def s(L, P):
        m = lin(L)
        for kind, kw in steps:
            kw = dict(kw)
            if kw.get("importance_scores") == "arange":
                kw["importance_scores"] = L.arange(12.0).view(3, 4)
            (P.l1_unstructured if kind == "l1" else P.ln_structured)(m, "weight", **kw)
        hooks = [type(e[0] if isinstance(e, tuple) else e).__name__ for e in m._forward_pre_hooks.values()]
        return m.weight_mask.tolist(), hooks

    same(s)


def test_forward_backward_through_the_mask_and_remove():
    def s(L, P):
        m = P.l1_unstructured(lin(L), "weight", amount=0.5)
        with L.no_grad():
            m.weight_orig.mul_(2)  # the pre-hook recomputes weight from the updated original
        y = m(L.ones(1, 4))
        y.sum().backward()
        grad = m.weight_orig.grad.tolist()
        P.remove(m, "weight")
        return (y.tolist(), grad, sorted(m.state_dict()), m.weight.tolist(), isinstance(m.weight, L.nn.Parameter),
                P.is_pruned(m), len(m._forward_pre_hooks))

    same(s)


def test_global_unstructured_and_custom_mask():
    def s(L, P):
        a, b = lin(L), lin(L)
        with L.no_grad():
            b.weight.mul_(0.5)
        P.global_unstructured([(a, "weight"), (b, "weight"), (a, "bias")], pruning_method=P.L1Unstructured,
                              amount=10)
        P.custom_from_mask(b, "bias", mask=L.tensor([1.0, 0.0, 1.0]))
        return a.weight_mask.tolist(), b.weight_mask.tolist(), a.bias_mask.tolist(), b.bias.tolist()

    same(s)


def test_structured_pruning_of_a_conv_and_the_prune_method():
    def s(L, P):
        m = L.nn.Conv2d(2, 4, 3)
        with L.no_grad():
            m.weight.copy_(L.tensor(np.linspace(-1, 1, 72, dtype=np.float32).reshape(4, 2, 3, 3) ** 3))
        P.ln_structured(m, "weight", amount=0.5, n=2, dim=0)
        return m.weight_mask.sum(dim=(1, 2, 3)).tolist(), P.L1Unstructured(amount=2).prune(L.tensor(W)).tolist()

    same(s)


def test_random_methods_prune_the_requested_amount():
    for L, P in LIBS:
        m = P.random_unstructured(lin(L), "weight", amount=5)
        assert int(m.weight_mask.sum().item()) == 7
        P.random_structured(m, "weight", amount=1, dim=1)
        assert int((m.weight_mask.sum(dim=0) == 0).sum().item()) >= 1


@pytest.mark.parametrize("call", [
    lambda L, P: P.L1Unstructured(1.5), lambda L, P: P.L1Unstructured("a"), lambda L, P: P.L1Unstructured(-1),
    lambda L, P: P.l1_unstructured(lin(L), "weight", amount=13), lambda L, P: P.remove(lin(L), "weight"),
    lambda L, P: P.ln_structured(lin(L), "bias", amount=1, n=2, dim=0),
    lambda L, P: P.ln_structured(lin(L), "weight", amount=1, n=2, dim=2),
    lambda L, P: P.global_unstructured([(lin(L), "weight")], pruning_method=P.LnStructured, amount=1, n=2, dim=0),
])
def test_errors_match_torch(call):
    errors = []
    for L, P in LIBS:
        with pytest.raises(Exception) as e:
            call(L, P)
        errors.append((type(e.value), str(e.value)))
    assert errors[1][0] is errors[0][0]
    assert errors[1][1].replace("vibetensor.torch", "torch") == errors[0][1]
