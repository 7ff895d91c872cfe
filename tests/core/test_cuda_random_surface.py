"""torch.cuda.random's surface (get_rng_state[_all], set_rng_state[_all], seed[_all], initial_seed) on vibetensor,
as training scripts call it when they save the random state with a checkpoint and restore it on resume. Without
a CUDA device it is compared with torch's behaviour without one; with a device (marker cuda), the state is the
shared stream's and restoring it replays the draws on the device and on the CPU."""
import pytest
import torch

import vibetensor.cuda.random as vcr
import vibetensor.torch as vt

NAMES = ["get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "seed", "seed_all",
         "initial_seed"]
NO_CUDA = pytest.mark.skipif(vt.cuda.is_available() or torch.cuda.is_available(), reason="compares the no-CUDA case")


def test_the_module_has_torchs_names():
    assert sorted(vcr.__all__) == sorted(n for n in torch.cuda.random.__all__ if not n.startswith("manual_seed"))
    for name in NAMES:
        assert callable(getattr(vcr, name)), name


@NO_CUDA
def test_without_cuda_the_state_list_is_empty_and_setting_does_nothing():
    for lib, mod in ((torch, torch.cuda.random), (vt, vcr)):
        assert mod.get_rng_state_all() == []
        lib.manual_seed(4)
        state = lib.get_rng_state()
        # torch defers these to a CUDA initialisation that never comes: the CPU stream must not move
        assert mod.set_rng_state(lib.get_rng_state()) is None
        assert mod.set_rng_state_all([lib.get_rng_state()]) is None
        assert mod.seed() is None and mod.seed_all() is None
        assert lib.get_rng_state().tolist() == state.tolist() and lib.initial_seed() == 4


@NO_CUDA
@pytest.mark.parametrize("name", ["get_rng_state", "initial_seed"])
def test_without_cuda_reading_the_state_raises(name):
    # torch built without CUDA raises AssertionError, with CUDA but no device RuntimeError; vibetensor the latter
    with pytest.raises((AssertionError, RuntimeError)):
        getattr(torch.cuda.random, name)()
    with pytest.raises(RuntimeError, match=f"{name}: no CUDA device"):
        getattr(vcr, name)()


def test_a_device_that_is_not_cuda_is_a_value_error():
    with pytest.raises(ValueError, match="expected a CUDA device, got cpu"):
        vcr.get_rng_state("cpu")


def test_a_checkpoints_save_and_restore_round_trip_without_cuda():
    """The training-script idiom, guarded or not, leaves the CPU stream replayable."""
    vt.manual_seed(7)
    vt.rand(3)
    saved = {"cpu": vt.get_rng_state(), "cuda": vcr.get_rng_state_all()}
    first = vt.rand(5).tolist()
    vt.manual_seed(99)
    vt.set_rng_state(saved["cpu"])
    vcr.set_rng_state_all(saved["cuda"])
    assert vt.rand(5).tolist() == first


@pytest.mark.cuda
def test_with_cuda_the_state_is_the_shared_streams_and_replays():
    vt.manual_seed(12)
    assert vcr.get_rng_state().tolist() == vt.get_rng_state().tolist() == vcr.get_rng_state(0).tolist()
    assert [s.tolist() for s in vcr.get_rng_state_all()] == [vt.get_rng_state().tolist()] * vt.cuda.device_count()
    assert vcr.initial_seed() == 12
    state = vcr.get_rng_state("cuda:0")
    a = vt.rand(4, device="cuda").tolist()
    vt.rand(2)
    vcr.set_rng_state(state)
    assert vt.rand(4, device="cuda").tolist() == a
    vcr.set_rng_state_all(vcr.get_rng_state_all())
    vcr.seed()
    assert vt.initial_seed() != 12  # reseeded from the operating system (2**-63 chance of a false failure)
    with pytest.raises(RuntimeError, match="does not exist"):
        vcr.get_rng_state(vt.cuda.device_count())
