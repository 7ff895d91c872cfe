"""format() of a tensor, against torch: a 0-dim tensor formats as its number with any spec (f"{loss:.4f}" in a
training loop, "{:d}".format(step)), a tensor of other rank only with an empty spec (its str); before, every
non-empty spec was a TypeError."""
import pytest
import torch
import vibetensor.torch as vt

VALUES = [("float", 2.5678), ("int", 7), ("bool", True), ("neg", -0.001234)]
SPECS = ["", ".2f", ".3e", ">8", "+.1f", "g", "d", "%"]


def formatted(lib, value, spec, requires_grad=False):
    t = lib.tensor(value)
    if requires_grad:
        t = t.float().requires_grad_(True)
    try:
        return format(t, spec)
    except (TypeError, ValueError) as e:
        return type(e).__name__


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("name, value", VALUES)
def test_zero_dim_tensor_formats_as_its_number(name, value, spec):
    assert formatted(vt, value, spec) == formatted(torch, value, spec)


def test_a_loss_with_history_formats_too():
    assert formatted(vt, 0.123456, ".4f", requires_grad=True) == formatted(torch, 0.123456, ".4f", True) == "0.1235"
    assert f"{vt.tensor(3)}/{vt.tensor(10):03d}" == f"{torch.tensor(3)}/{torch.tensor(10):03d}" == "3/010"


@pytest.mark.parametrize("spec", ["", ".2f"])
def test_other_ranks_take_only_an_empty_spec(spec):
    for value in ([1.5, 2.0], [[1]]):
        t = formatted(torch, value, spec)
        assert formatted(vt, value, spec) == (t if spec else str(vt.tensor(value)))
        assert (t == "TypeError") == bool(spec)
