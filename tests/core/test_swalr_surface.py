"""optim.swa_utils.SWALR against torch's: the annealed learning rates to the bit (cosine and linear, no annealing,
per-group swa_lr, after another scheduler moved the lr), the errors for bad arguments, and the state_dict that
a checkpoint saves and a resumed run loads."""
import io

import pytest
import torch

import vibetensor.torch as vt

LIBS = [pytest.param(torch, id="torch"), pytest.param(vt, id="vt")]


def _optimizer(lib, lrs=(0.5, 0.2)):
    return lib.optim.SGD([{"params": [lib.nn.Parameter(lib.ones(2))], "lr": lr} for lr in lrs], lr=1.0)


def _lrs(lib, steps, before=0, **kw):
    """The lrs of `before` cosine-annealing steps then `steps` SWALR steps, as SWA training switches over."""
    opt = _optimizer(lib)
    cosine = lib.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)
    out = []
    for _ in range(before):
        opt.step()
        cosine.step()
        out.append([g["lr"] for g in opt.param_groups])
    swa = lib.optim.swa_utils.SWALR(opt, **kw)
    out.append(swa.get_last_lr())
    for _ in range(steps):
        opt.step()
        swa.step()
        out.append(swa.get_last_lr())
    return out, opt


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 3])
@pytest.mark.parametrize("before", [0, 2])
def test_learning_rates_equal_torchs(strategy, anneal_epochs, before):
    kw = dict(swa_lr=0.05, anneal_epochs=anneal_epochs, anneal_strategy=strategy)
    vlrs, vopt = _lrs(vt, 5, before, **kw)
    tlrs, topt = _lrs(torch, 5, before, **kw)
    assert vlrs == tlrs  # the same arithmetic: equal to the bit
    assert vlrs[-1] == [0.05, 0.05]  # annealed: held at swa_lr
    assert [g["swa_lr"] for g in vopt.param_groups] == [0.05, 0.05]


def test_per_group_swa_lr_and_the_cosine_midpoint():
    vlrs, vopt = _lrs(vt, 4, swa_lr=[0.1, 0.3], anneal_epochs=2)
    assert vlrs == _lrs(torch, 4, swa_lr=[0.1, 0.3], anneal_epochs=2)[0]
    assert [g["swa_lr"] for g in vopt.param_groups] == [0.1, 0.3]
    assert vlrs[1] == pytest.approx([0.3, 0.25])  # halfway by the cosine: the mean of start and swa_lr
    assert vlrs[2] == pytest.approx([0.1, 0.3])


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("kw, message", [
    (dict(swa_lr=0.1, anneal_strategy="exp"), "anneal_strategy must be one of 'cos' or 'linear', instead got exp"),
    (dict(swa_lr=0.1, anneal_epochs=-1), "anneal_epochs must be equal or greater than 0, got -1"),
    (dict(swa_lr=0.1, anneal_epochs=2.0), "anneal_epochs must be equal or greater than 0, got 2.0"),
    (dict(swa_lr=[0.1, 0.2, 0.3]), "swa_lr must have the same length as optimizer.param_groups"),
])
def test_bad_arguments_are_value_errors(lib, kw, message):
    if lib is torch and torch.__version__ < "2.13":  # torch 2.11 wrote "must by one of", 2.13 (vt's text) fixed it
        message = message.replace("must be one of", "must by one of")
    with pytest.raises(ValueError, match=message):
        lib.optim.swa_utils.SWALR(_optimizer(lib), **kw)


def test_state_dict_round_trip_resumes_the_schedule():
    """Saved mid-annealing with vt.save (weights_only load: no function may be in it) and loaded into a fresh
    scheduler built with another strategy: the rest of the schedule is the uninterrupted one, as in torch."""
    for lib in (torch, vt):
        opt = _optimizer(lib)
        swa = lib.optim.swa_utils.SWALR(opt, swa_lr=0.05, anneal_epochs=4, anneal_strategy="linear")
        for _ in range(2):
            opt.step()
            swa.step()
        state = swa.state_dict()
        expected = {"_anneal_strategy", "_is_initial", "_last_lr", "_step_count", "anneal_epochs", "base_lrs",
                    "last_epoch"}
        assert expected <= set(state) and "anneal_func" not in state and "optimizer" not in state
        buf = io.BytesIO()
        lib.save({"opt": opt.state_dict(), "sched": state}, buf)
        buf.seek(0)
        loaded = lib.load(buf, weights_only=True)
        rest = []
        for _ in range(3):
            opt.step()
            swa.step()
            rest.append(swa.get_last_lr())
        opt2 = _optimizer(lib, (9.0, 9.0))
        swa2 = lib.optim.swa_utils.SWALR(opt2, swa_lr=1.0, anneal_strategy="cos")
        opt2.load_state_dict(loaded["opt"])
        swa2.load_state_dict(loaded["sched"])
        assert swa2.anneal_func(0.5) == 0.5  # linear again
        resumed = []
        for _ in range(3):
            opt2.step()
            swa2.step()
            resumed.append(swa2.get_last_lr())
        assert resumed == rest, lib.__name__
