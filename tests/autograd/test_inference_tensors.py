"""Inference tensors (Note [Inference tensors] in core/include/vt/core/storage.h) against torch: what
inference_mode makes is an inference tensor, views keep their base's kind, out-of-place results outside are
normal, and the three misuses torch refuses raise the same errors (an in-place write outside inference mode,
saving one for backward, requires_grad on one)."""
import pytest
import torch

import vibetensor.torch as vt

LIBS = [vt, torch]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_which_tensors_are_inference_tensors(lib):
    x = lib.randn(4, 3, requires_grad=True)
    with lib.inference_mode():
        made, view_of_normal, product = lib.ones(2, 3), x[:2], x * 2
        view_of_inference = made[:, 1]
        assert lib.is_inference_mode_enabled()
    assert made.is_inference() and view_of_inference.is_inference() and product.is_inference()
    assert not view_of_normal.is_inference() and not x.is_inference()
    assert not product.requires_grad and product.grad_fn is None
    assert not (made + 1).is_inference()  # an out-of-place op outside gives a normal tensor
    with lib.inference_mode(False):
        assert not lib.ones(2).is_inference()
    with lib.no_grad():
        assert not lib.ones(2).is_inference()


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_misuses_raise_as_torch(lib):
    with lib.inference_mode():
        t = lib.ones(3)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        t.add_(1)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        t[1:].zero_()  # through a view
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        lib.randn(3, requires_grad=True) * t
    with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor outside InferenceMode"):
        t.requires_grad_()
    if lib is vt:  # vibetensor refuses before writing (torch's add_ and zero_ have written when they raise)
        assert t.tolist() == [1.0, 1.0, 1.0]
    with lib.inference_mode():
        t.fill_(1.0).add_(1)  # inside, in-place updates are fine
    assert t.tolist() == [2.0, 2.0, 2.0]
    c = t.clone()  # a clone outside is a normal tensor: autograd may use it
    assert not c.is_inference()
    (lib.randn(3, requires_grad=True) * c).sum().backward()


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_a_model_evaluated_in_inference_mode_keeps_training(lib):
    lib.manual_seed(0)
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.BatchNorm1d(8), lib.nn.ReLU(), lib.nn.Linear(8, 2))
    opt = lib.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = lib.randn(16, 4)
    for _ in range(2):
        with lib.inference_mode():
            model.eval()
            pred = model(x)
        assert pred.is_inference()
        model.train()
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not any(p.is_inference() for p in model.parameters())
    assert not any(b.is_inference() for b in model.buffers())
