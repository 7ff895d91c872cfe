"""torch.random's surface on vibetensor's global stream: manual_seed returns default_generator (diffusion code
writes `generator = torch.manual_seed(0)` and passes it on), draws through default_generator are the global draws,
get_rng_state/set_rng_state replay the stream, fork_rng restores it, seed/initial_seed; compared with torch's
behaviour where the two can be compared (not the numbers: the streams differ)."""
import pytest
import torch

import vibetensor.torch as vt
from test_generator import DRAWS

LIBS = [pytest.param(torch, id="torch"), pytest.param(vt, id="vt")]


@pytest.mark.parametrize("lib", LIBS)
def test_manual_seed_returns_the_default_generator(lib):
    g = lib.manual_seed(3)
    assert g is lib.default_generator is lib.random.default_generator and isinstance(g, lib.Generator)
    assert lib.random.manual_seed(4) is g and g.initial_seed() == lib.initial_seed() == 4
    assert g.manual_seed(5) is g and lib.initial_seed() == 5


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_draws_through_default_generator_are_the_global_draws(name):
    draw = DRAWS[name]
    vt.manual_seed(11)
    plain = [draw(None).tolist(), vt.rand(3).tolist()]
    g = vt.manual_seed(11)
    through = [draw(g).tolist(), vt.rand(3).tolist()]  # the global stream moved by the draw through g
    assert through == plain
    vt.manual_seed(11)
    first = vt.rand(3).tolist()
    vt.manual_seed(11)
    draw(vt.Generator().manual_seed(11))  # a Generator of its own leaves the global stream where it was
    assert vt.rand(3).tolist() == first


@pytest.mark.parametrize("lib", LIBS)
def test_get_and_set_rng_state_replay_the_stream(lib):
    lib.manual_seed(21)
    lib.rand(4)
    state = lib.get_rng_state()
    a = lib.randn(5).tolist()
    lib.set_rng_state(state)
    assert lib.randn(5).tolist() == a
    assert lib.random.get_rng_state().tolist() == lib.get_rng_state().tolist()
    assert lib.default_generator.get_state().tolist() == lib.get_rng_state().tolist()
    lib.default_generator.set_state(state)
    assert lib.randn(5).tolist() == a
    with pytest.raises(TypeError, match="RNG state must be"):
        lib.set_rng_state(lib.zeros(3))


def test_vt_state_is_seed_and_offset():
    vt.manual_seed(-1)  # negative seeds wrap, as torch's
    assert vt.get_rng_state().tolist() == [-1, 0] and vt.initial_seed() == 2 ** 64 - 1
    vt.rand(4)
    assert vt.get_rng_state().tolist()[1] > 0
    for bad in (vt.zeros(2), vt.zeros(3, dtype=vt.int64), [1, 0]):
        with pytest.raises(TypeError, match=r"int64 tensor \[seed, offset\]"):
            vt.set_rng_state(bad)
    for lib in (torch, vt):
        with pytest.raises(ValueError, match="Overflow"):
            lib.manual_seed(2 ** 64)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("enabled", [True, False])
def test_fork_rng_restores_the_stream(lib, enabled):
    lib.manual_seed(8)
    with lib.random.fork_rng(enabled=enabled):
        inside = lib.rand(3).tolist()
        lib.manual_seed(99)  # even a reseed inside is undone
        lib.rand(2)
    after = lib.rand(3).tolist()
    if enabled:
        assert after == inside
    else:  # the reseed inside stays
        lib.manual_seed(99)
        lib.rand(2)
        assert after == lib.rand(3).tolist() != inside
    with lib.random.fork_rng(devices=[]):
        lib.rand(1)


@pytest.mark.parametrize("lib", LIBS)
def test_seed_reseeds_nondeterministically(lib):
    s1 = lib.seed()
    assert lib.initial_seed() == s1 and isinstance(s1, int)
    s2 = lib.random.seed()
    assert s2 != s1 and lib.initial_seed() == s2
    lib.manual_seed(0)


def test_randint_of_an_empty_size_is_0_dim():
    """torch.randint(low, high, ()) is a 0-dim tensor (found by the DataLoader's worker seeding)."""
    t = vt.randint(0, 10, ())
    assert t.shape == () and t.dtype == vt.int64 and 0 <= int(t) < 10
    assert tuple(vt.randint(3, [2, 3]).shape) == tuple(torch.randint(3, [2, 3]).shape)
