"""Collective schedules run by the CPU reference executor against a float64 reference: every algorithm, rank
count, size (0, 1, odd), in place and out of place, with inputs that depend on rank and index (a misplaced chunk
changes the answer), plus the structural invariants (no region written twice or read while written in a step)."""
import numpy as np
import pytest

from vibetensor.fabric import schedules as S

RANKS = (1, 2, 3, 4, 5, 8)
SIZES = (0, 1, 7, 64, 1001)


def rank_inputs(n, numel, dtype=np.float64):
    # nccl-tests style: the value depends on the rank and the index, so a chunk in the wrong place is wrong
    idx = np.arange(numel)
    return [((r + 1) * 1000 + idx % 997).astype(dtype) for r in range(n)]


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("numel", SIZES)
@pytest.mark.parametrize("alg", S.ALGORITHMS)
@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("op", ["sum", "avg", "max", "min"])
def test_all_reduce_matches_reference(n, numel, alg, in_place, op):
    ins = rank_inputs(n, numel)
    ref = {"sum": np.sum, "avg": np.mean, "max": np.max, "min": np.min}[op](np.stack(ins), axis=0)
    sched = S.all_reduce(n, alg, in_place)
    S.check_schedule(sched, in_place)
    data = [x.copy() for x in ins]
    outs = data if in_place else [np.full(numel, np.nan) for _ in range(n)]
    S.execute(sched, data, outs, op)
    for r in range(n):
        np.testing.assert_allclose(outs[r], ref, rtol=1e-12)
        assert np.array_equal(outs[r], outs[0]), "every rank must hold bit-identical results"


@pytest.mark.parametrize("n", RANKS)
@pytest.mark.parametrize("numel", SIZES)
def test_reduce_scatter_all_gather_broadcast_reduce(n, numel):
    ins = rank_inputs(n, numel * n)
    outs = [np.full(numel, np.nan) for _ in range(n)]
    S.execute(S.reduce_scatter(n), ins, outs)
    total = np.sum(np.stack(ins), axis=0)
    for r in range(n):
        np.testing.assert_allclose(outs[r], total[r * numel:(r + 1) * numel])
    small = rank_inputs(n, numel)
    gathered = [np.full(numel * n, np.nan) for _ in range(n)]
    S.execute(S.all_gather(n), small, gathered)
    for r in range(n):
        assert np.array_equal(gathered[r], np.concatenate(small))
    for root in {0, n - 1}:
        data = [x.copy() for x in small]
        S.execute(S.broadcast(n, root), data, data)
        assert all(np.array_equal(d, small[root]) for d in data)
        data = [x.copy() for x in small]
        S.execute(S.reduce(n, root), data, data, "sum")
        np.testing.assert_allclose(data[root], np.sum(np.stack(small), axis=0))
        for r in range(n):
            if r != root:
                assert np.array_equal(data[r], small[r]), "reduce writes only the root"


@pytest.mark.parametrize("n", RANKS)
def test_schedules_keep_step_invariants(n):
    for alg in S.ALGORITHMS:
        for ip in (False, True):
            S.check_schedule(S.all_reduce(n, alg, ip), ip)
    for sched in (S.reduce_scatter(n), S.all_gather(n), S.broadcast(n, 0), S.reduce(n, 0)):
        S.check_schedule(sched)


def test_check_schedule_catches_a_race():
    bad = S.Schedule("all_reduce", "bad", 2, 1, [[S.Transfer(S.Ref(0, "out"), (S.Ref(1, "in"),)),
                                                   S.Transfer(S.Ref(1, "in"), (S.Ref(0, "in"),))]])
    with pytest.raises(ValueError, match="read while"):
        S.check_schedule(bad)
    twice = S.Schedule("all_reduce", "bad", 2, 1, [[S.Transfer(S.Ref(0, "out"), (S.Ref(1, "in"),)),
                                                     S.Transfer(S.Ref(0, "out"), (S.Ref(0, "in"),))]])
    with pytest.raises(ValueError, match="twice"):
        S.check_schedule(twice)


def test_ring_step_counts_and_traffic():
    n = 4
    ring = S.all_reduce(n, "ring", False)
    assert len(ring.steps) == 2 * (n - 1)
    # each step moves one chunk per rank: the ring's 2(n-1)/n bus traffic
    assert all(len(step) == n for step in ring.steps)
    assert len(S.all_reduce(n, "one_shot", False).steps) == 1
    assert len(S.all_reduce(n, "two_shot", True).steps) == 2


def test_unknown_algorithm_and_op():
    with pytest.raises(ValueError, match="unknown all_reduce algorithm"):
        S.all_reduce(2, "tree", False)
    with pytest.raises(ValueError, match="unknown reduction op"):
        S.execute(S.reduce(2, 0), rank_inputs(2, 3), rank_inputs(2, 3), "prod")
