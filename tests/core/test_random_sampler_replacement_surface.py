"""RandomSampler(replacement=True) (oversampling scripts: `RandomSampler(ds, replacement=True, num_samples=N)`)
and the single-process loader iterator's len(), against torch's. With a torch.Generator the sampler draws
torch's exact indices (torch draws in blocks of 32); with vibetensor's own generator the stream is vibetensor's,
so the test checks its replay, range and length instead."""
import pytest
import torch
import torch.utils.data as td
import vibetensor.torch as vt
import vibetensor.torch.utils.data as vd


@pytest.mark.parametrize("num_samples", [None, 5, 32, 70])
def test_indices_equal_torchs_for_a_torch_generator(num_samples):
    t = list(td.RandomSampler(range(9), replacement=True, num_samples=num_samples,
                              generator=torch.Generator().manual_seed(11)))
    v = list(vd.RandomSampler(range(9), replacement=True, num_samples=num_samples,
                              generator=torch.Generator().manual_seed(11)))
    assert v == t and len(v) == (num_samples or 9)


def test_vibetensor_generator_replays_and_covers_the_range():
    def draw():
        s = vd.RandomSampler(range(5), replacement=True, num_samples=200, generator=vt.Generator().manual_seed(2))
        return len(s), list(s)

    n, first = draw()
    assert (n, len(first)) == (200, 200) and draw()[1] == first and set(first) == set(range(5))


def test_loader_over_an_oversampling_sampler_matches_torch():
    data = [float(i) for i in range(6)]
    t = [b.tolist() for b in td.DataLoader(data, batch_size=4, sampler=td.RandomSampler(
        data, replacement=True, num_samples=10, generator=torch.Generator().manual_seed(0)))]
    v = [b.tolist() for b in vd.DataLoader(data, batch_size=4, sampler=vd.RandomSampler(
        data, replacement=True, num_samples=10, generator=torch.Generator().manual_seed(0)))]
    assert v == t


def test_single_process_iterator_has_the_loaders_length():
    t_it, v_it = iter(td.DataLoader(range(7), batch_size=3)), iter(vd.DataLoader(range(7), batch_size=3))
    assert len(v_it) == len(t_it) == 3
    assert next(v_it).tolist() == next(t_it).tolist() and iter(v_it) is v_it
    assert [b.tolist() for b in v_it] == [b.tolist() for b in t_it]
    with pytest.raises(StopIteration):
        next(v_it)
