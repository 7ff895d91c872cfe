"""vt.distributed against torch.distributed before init_process_group: is_initialized() is False, and get_rank,
get_world_size, get_backend and the collectives raise torch's ValueError; is_available() is False (vibetensor has
no process-group backend: a torch build without one answers the same), init_process_group a RuntimeError. The
guards that detection losses and training scripts write around them run unchanged."""
import pytest
import torch
import torch.distributed as tdist
import vibetensor.torch as vt
import vibetensor.torch.distributed as vdist

NOT_INIT = "^Default process group has not been initialized, please make sure to call init_process_group.$"


def test_nothing_is_initialised_and_the_package_reports_no_backend():
    assert vdist.is_initialized() is tdist.is_initialized() is False
    assert vdist.is_available() is False and vt.distributed is vdist
    assert vdist.is_torchelastic_launched() is tdist.is_torchelastic_launched() is False
    with pytest.raises(RuntimeError, match="no torch.distributed backend"):
        vdist.init_process_group("gloo", rank=0, world_size=1)


@pytest.mark.parametrize("call", [
    lambda d, L: d.get_rank(), lambda d, L: d.get_world_size(), lambda d, L: d.get_backend(),
    lambda d, L: d.barrier(), lambda d, L: d.all_reduce(L.ones(2)),
    lambda d, L: d.all_reduce(L.ones(2), op=d.ReduceOp.SUM), lambda d, L: d.reduce(L.ones(2), 0),
    lambda d, L: d.broadcast(L.ones(2), 0), lambda d, L: d.all_gather([L.ones(2)], L.ones(2)),
    lambda d, L: d.gather(L.ones(2)), lambda d, L: d.scatter(L.ones(2)),
    lambda d, L: d.broadcast_object_list([1]), lambda d, L: d.new_group([0]),
], ids=["get_rank", "get_world_size", "get_backend", "barrier", "all_reduce", "all_reduce_op", "reduce", "broadcast",
        "all_gather", "gather", "scatter", "broadcast_object_list", "new_group"])
def test_the_collectives_raise_torchs_error_before_init(call):
    for d, L in ((tdist, torch), (vdist, vt)):
        with pytest.raises(ValueError, match=NOT_INIT):
            call(d, L)


def test_reduce_ops_have_torchs_names():
    for name in ("SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR", "PREMUL_SUM"):
        assert hasattr(tdist.ReduceOp, name) and getattr(vdist.ReduceOp, name).name == name


def test_the_usual_guards_run_as_in_torch():
    def helpers(dist, L):
        def get_world_size():
            if not dist.is_available() or not dist.is_initialized():
                return 1
            return dist.get_world_size()

        def reduce_mean(t):
            if not dist.is_available() or not dist.is_initialized():
                return t
            t = t.clone()
            dist.all_reduce(t.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
            return t

        return get_world_size(), reduce_mean(L.tensor([3.0, 5.0])).tolist()

    assert helpers(vdist, vt) == helpers(tdist, torch) == (1, [3.0, 5.0])
