"""Scheduler state in a checkpoint, against torch: every lr scheduler's state_dict saved with the library's save
and loaded back with the default weights_only=True (what torch.load does since 2.6) into a fresh scheduler on a
fresh optimizer, after which the two continue with the same lrs. MultiStepLR keeps its milestones in a
collections.Counter, which torch's weights_only unpickler allows and vt.load's must too; globals torch refuses
(collections.defaultdict here) stay refused."""
import collections
import pickle
import io

import pytest
import torch

import vibetensor.torch as vt

LIBS = [pytest.param(torch, id="torch"), pytest.param(vt, id="vt")]
SCHEDULERS = {
    "MultiStepLR": dict(milestones=[1, 3, 3]),  # a repeated milestone: the Counter's count matters
    "StepLR": dict(step_size=2),
    "ExponentialLR": dict(gamma=0.9),
    "CosineAnnealingLR": dict(T_max=4),
    "CosineAnnealingWarmRestarts": dict(T_0=2),
    "CyclicLR": dict(base_lr=0.01, max_lr=0.1, step_size_up=2),
    "OneCycleLR": dict(max_lr=0.1, total_steps=10),
    "PolynomialLR": dict(total_iters=4),
    "LambdaLR": dict(lr_lambda=lambda step: 0.9 ** step),
}


def _round_trip(lib, obj):
    buf = io.BytesIO()
    lib.save(obj, buf)
    buf.seek(0)
    return lib.load(buf)  # weights_only: the default


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_state_survives_a_weights_only_checkpoint(lib, name):
    def make():
        p = lib.nn.Parameter(lib.ones(2))
        opt = lib.optim.SGD([p], lr=0.1, momentum=0.9)
        return opt, getattr(lib.optim.lr_scheduler, name)(opt, **SCHEDULERS[name])

    opt, sched = make()
    for _ in range(2):
        opt.step()
        sched.step()
    saved = _round_trip(lib, {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()})
    opt2, sched2 = make()
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    for _ in range(4):
        opt.step()
        opt2.step()
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_multistep_lrs_equal_torchs_across_a_resume():
    lrs = {}
    for lib in (torch, vt):
        p = lib.nn.Parameter(lib.ones(2))
        opt = lib.optim.SGD([p], lr=1.0)
        sched = lib.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3, 3], gamma=0.5)
        state = _round_trip(lib, sched.state_dict())
        assert state["milestones"] == collections.Counter({1: 1, 3: 2})
        sched.load_state_dict(state)
        out = []
        for _ in range(5):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr()[0])
        lrs[lib] = out
    assert lrs[vt] == lrs[torch] == [0.5, 0.5, 0.125, 0.125, 0.125]


@pytest.mark.parametrize("lib", LIBS)
def test_counter_loads_and_defaultdict_is_refused(lib):
    counts = collections.Counter("abca")
    loaded = _round_trip(lib, {"c": counts})["c"]
    assert type(loaded) is collections.Counter and loaded == counts
    buf = io.BytesIO()
    lib.save({"d": collections.defaultdict(int, a=1)}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="[Ww]eights only load failed"):
        lib.load(buf)
