"""vt.Generator: an independent Philox stream per generator for every function that takes generator=; the
global stream is left where it was; get_state/set_state replay a stream; the DataLoader shuffles with it."""
import pytest

import vibetensor.torch as vt

DRAWS = {
    "rand": lambda g: vt.rand(5, generator=g),
    "randn": lambda g: vt.randn(2, 3, generator=g),
    "randint": lambda g: vt.randint(0, 100, (6,), generator=g),
    "randperm": lambda g: vt.randperm(9, generator=g),
    "multinomial": lambda g: vt.multinomial(vt.tensor([0.1, 0.5, 0.4]), 2, generator=g),
    "multinomial_replacement": lambda g: vt.multinomial(vt.tensor([0.1, 0.5, 0.4]), 5, True, generator=g),
    "uniform_": lambda g: vt.empty(4).uniform_(-1, 1, generator=g),
    "normal_": lambda g: vt.empty(4).normal_(0, 2, generator=g),
    "random_": lambda g: vt.empty(4, dtype=vt.int64).random_(0, 50, generator=g),
}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_seeded_generator_repeats_and_leaves_the_global_stream(name):
    draw = DRAWS[name]
    a = draw(vt.Generator().manual_seed(7)).tolist()
    vt.manual_seed(1)
    before = vt.rand(3).tolist()
    vt.manual_seed(1)
    g = vt.Generator().manual_seed(7)
    vt.rand(10)  # global draws in between change nothing for g
    assert draw(g).tolist() == a
    assert vt.rand(3).tolist() != before  # the global stream moved by its own draws only ...
    vt.manual_seed(1)
    draw(vt.Generator().manual_seed(7))
    assert vt.rand(3).tolist() == before  # ... and never by g's
    assert draw(vt.Generator().manual_seed(8)).tolist() != a or name == "multinomial"


def test_state_round_trip_and_seed():
    g = vt.Generator().manual_seed(3)
    vt.rand(4, generator=g)
    state = g.get_state()
    x = vt.rand(4, generator=g).tolist()
    assert vt.rand(4, generator=vt.Generator().set_state(state)).tolist() == x
    assert g.initial_seed() == 3
    s = vt.Generator().seed()
    assert isinstance(s, int) and s >= 0
    with pytest.raises(TypeError, match="vibetensor Generator"):
        vt.rand(2, generator=object())


def test_dataloader_shuffles_with_a_generator():
    from vibetensor.torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(vt.arange(10))
    order = lambda seed: [b[0].tolist() for b in DataLoader(ds, batch_size=3, shuffle=True,  # noqa: E731
                                                            generator=vt.Generator().manual_seed(seed))]
    assert order(5) == order(5) and order(5) != order(6)
    assert sorted(sum(order(5), [])) == list(range(10))
