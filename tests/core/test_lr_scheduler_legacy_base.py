"""optim.lr_scheduler._LRScheduler, the base class scheduler code written before torch 2.0 subclasses (DLRM's
warmup-then-decay policy among it): present, named and placed in the hierarchy as torch's, and a subclass of it
that reads _step_count and base_lrs in get_lr() gives torch's learning rates step by step."""
import pytest
import torch
import vibetensor.torch as vt


def policy(lib):
    class WarmupDecay(lib.optim.lr_scheduler._LRScheduler):
        """Linear warmup, constant, then polynomial decay to zero, per optimizer step."""

        def __init__(self, optimizer, warmup, decay_start, decay_steps):
            self.warmup, self.decay_start, self.decay_steps = warmup, decay_start, decay_steps
            super().__init__(optimizer)

        def get_lr(self):
            s = self._step_count
            if s < self.warmup:
                scale = 1.0 - (self.warmup - s) / self.warmup
            elif self.decay_start <= s < self.decay_start + self.decay_steps:
                scale = ((self.decay_start + self.decay_steps - s) / self.decay_steps) ** 2
            elif s >= self.decay_start + self.decay_steps:
                scale = 0.0
            else:
                scale = 1.0
            return [base * scale for base in self.base_lrs]
    return WarmupDecay


def test_legacy_base_class_is_torchs():
    legacy = vt.optim.lr_scheduler._LRScheduler
    assert legacy.__name__ == torch.optim.lr_scheduler._LRScheduler.__name__ == "_LRScheduler"
    assert issubclass(legacy, vt.optim.lr_scheduler.LRScheduler) and legacy is not vt.optim.lr_scheduler.LRScheduler
    p = vt.nn.Parameter(vt.ones(1))
    with pytest.raises(NotImplementedError):  # get_lr is the subclass's to write, as in torch
        legacy(vt.optim.SGD([p], lr=0.1))


def test_warmup_decay_subclass_matches_torch():
    lrs = []
    for lib in (torch, vt):
        p = lib.nn.Parameter(lib.ones(2))
        opt = lib.optim.SGD([{"params": [p]}, {"params": [lib.nn.Parameter(lib.ones(1))], "lr": 0.5}], lr=0.1)
        sched = policy(lib)(opt, warmup=3, decay_start=5, decay_steps=4)
        seen = [sched.get_last_lr()]
        for _ in range(10):
            opt.step()
            sched.step()
            seen.append(sched.get_last_lr())
        lrs.append(seen)
    assert [lr for step in lrs[1] for lr in step] == pytest.approx([lr for step in lrs[0] for lr in step], rel=1e-15)
    assert lrs[0][1][0] > lrs[0][0][0] and lrs[0][-1] == [0.0, 0.0]  # it warmed up and decayed to zero
