"""Module.load_state_dict's result against torch's: a (missing_keys, unexpected_keys) namedtuple whose repr is
"<All keys matched successfully>" when both are empty (what `print(model.load_state_dict(sd))` logs in public
training scripts) and _IncompatibleKeys(missing_keys=[...], unexpected_keys=[...]) otherwise."""
import pytest
import torch
import vibetensor.torch as vt


def model(lib):
    return lib.nn.Sequential(lib.nn.Linear(2, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1))


def state(lib, which):
    m = model(lib)
    sd = dict(m.state_dict())
    if which == "missing":
        del sd["2.bias"]
    elif which == "unexpected":
        sd["2.masked_bias"] = lib.ones(1)
    elif which == "both":
        del sd["0.weight"]
        sd["extra"] = lib.zeros(2)
    return m, sd


@pytest.mark.parametrize("which", ["all", "missing", "unexpected", "both"])
def test_result_prints_and_unpacks_as_torch(which):
    tm, tsd = state(torch, which)
    vm, vsd = state(vt, which)
    tres = tm.load_state_dict(tsd, strict=False)
    vres = vm.load_state_dict(vsd, strict=False)
    assert repr(vres) == repr(tres) and str(vres) == str(tres)
    assert f"{vres}" == f"{tres}"
    assert type(vres).__name__ == type(tres).__name__ == "_IncompatibleKeys"
    missing, unexpected = vres
    assert (missing, unexpected) == tuple(tres) == (vres.missing_keys, vres.unexpected_keys)
    assert vres._fields == tres._fields and isinstance(vres, tuple)
    assert (vres == ([], [])) == (tres == ([], [])) == (which == "all")


def test_all_matched_under_strict_and_errors_unchanged():
    tm, tsd = state(torch, "all")
    vm, vsd = state(vt, "all")
    assert repr(vm.load_state_dict(vsd)) == repr(tm.load_state_dict(tsd)) == "<All keys matched successfully>"
    vm, vsd = state(vt, "missing")
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "2.bias"'):
        vm.load_state_dict(vsd)
