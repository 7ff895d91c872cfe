"""What Module.load_state_dict reports, against torch: the returned keys print as torch prints them ("<All keys
matched successfully>" when none is off, the namedtuple otherwise, of torch's class name), and a strict load's
error lists the missing keys, then the unexpected ones, then the size mismatches, in torch's words."""
import numpy as np
import pytest
import torch
import vibetensor.torch as vt


def build(lib):
    """A T5-like model: a shared embedding tied to the head, and a norm."""
    class Tied(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = lib.nn.Embedding(6, 4)
            self.norm = lib.nn.LayerNorm(4)
            self.lm_head = lib.nn.Linear(4, 6, bias=False)
            self.lm_head.weight = self.shared.weight
    return Tied()


def state(lib, model, drop=(), extra=None, resize=None):
    sd = {k: lib.from_numpy(v.detach().numpy().copy()) for k, v in model.state_dict().items() if k not in drop}
    if extra:
        sd[extra] = lib.zeros(1)
    if resize:
        sd[resize] = lib.zeros(9)
    return sd


CASES = {
    "all_matched": {},
    "missing_tied_head": dict(drop=("lm_head.weight",)),
    "unexpected": dict(extra="extra.bias"),
    "missing_and_unexpected": dict(drop=("norm.bias", "lm_head.weight"), extra="pooler.weight"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_non_strict_load_returns_and_prints_torchs_keys(case):
    results = []
    for lib in (torch, vt):
        model = build(lib)
        results.append(model.load_state_dict(state(lib, model, **CASES[case]), strict=False))
    t, v = results
    assert (v.missing_keys, v.unexpected_keys) == (t.missing_keys, t.unexpected_keys)
    assert repr(v) == repr(t) and str(v) == str(t)
    assert type(v).__name__ == type(t).__name__ == "_IncompatibleKeys"
    assert isinstance(v, tuple) and tuple(v) == tuple(t)


@pytest.mark.parametrize("case", ["missing_tied_head", "unexpected", "missing_and_unexpected", "size_mismatch"])
def test_strict_load_error_lists_what_torch_lists_in_its_order(case):
    kwargs = CASES.get(case) or dict(drop=("norm.bias",), extra="extra.bias", resize="norm.weight")
    messages = []
    for lib in (torch, vt):
        model = build(lib)
        with pytest.raises(RuntimeError) as e:
            model.load_state_dict(state(lib, model, **kwargs))
        messages.append(str(e.value))
    t, v = messages
    assert v.replace("vibetensor.torch", "torch") == t


def test_load_keeps_the_tie_and_copies_the_values():
    tm, vm = build(torch), build(vt)
    sd = state(vt, tm, drop=("lm_head.weight",))
    assert repr(vm.load_state_dict(sd, strict=False)).startswith("_IncompatibleKeys(missing_keys=['lm_head")
    assert vm.lm_head.weight is vm.shared.weight
    np.testing.assert_array_equal(vm.lm_head.weight.detach().numpy(), tm.shared.weight.detach().numpy())
    assert str(vm.load_state_dict(state(vt, tm))) == "<All keys matched successfully>"
