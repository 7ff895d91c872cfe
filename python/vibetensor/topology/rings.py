"""Ring planning as a pure function over a topology document.

A ring visits every device once and closes. Rings are ranked by their weakest link first (a ring is as fast as
its slowest hop), then by the sum of link ranks, using the total order of link types in schema.link_rank
(NVLink by count > PIX > PXB > PHB > NODE > SYS; pairs without working P2P last). Exhaustive search up to 9
devices; beyond that a greedy tour improved by 2-opt. Further rings are added while an edge-disjoint ring exists
that is as good as the first link for link (several NCCL-style channels over separate, equally fast links, as
on NVSwitch machines), up to `max_rings`.
"""
from __future__ import annotations

import itertools

from .schema import TopologyError, link_map, link_rank

_EXHAUSTIVE_MAX = 9


def _edge(a, b):
    return (a, b) if a < b else (b, a)


def _ring_edges(ring):
    return [_edge(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))] if len(ring) > 1 else []


def _score(ring, rank, banned=frozenset()):
    edges = _ring_edges(ring)
    if any(e in banned for e in edges):
        return None
    ranks = [min(rank[(a, b)], rank[(b, a)]) for a, b in edges]
    return (min(ranks), tuple(sorted(ranks)))


def _best_exhaustive(n, rank, banned):
    best, best_score = None, None
    for perm in itertools.permutations(range(1, n)):
        if n > 2 and perm[0] > perm[-1]:
            continue  # each undirected ring once
        ring = [0, *perm]
        s = _score(ring, rank, banned)
        if s is not None and (best_score is None or s > best_score):
            best, best_score = ring, s
    return best, best_score


def _best_heuristic(n, rank, banned):
    def w(a, b):
        return min(rank[(a, b)], rank[(b, a)])

    ring, left = [0], set(range(1, n))
    while left:  # greedy: always take the best next hop, avoiding banned edges where possible
        nxt = max(left, key=lambda j: (_edge(ring[-1], j) not in banned, w(ring[-1], j), -j))
        ring.append(nxt)
        left.remove(nxt)
    # 2-opt: reversing ring[i..j] swaps edges (a b), (c d) for (a c), (b d) and keeps all others, so a move is
    # judged by those four edges alone (O(1), not a rescoring of the ring): a ring's score is its sorted ranks,
    # and replacing two ranks by two others raises it exactly when the new pair, sorted, is the larger.
    bad = sum(_edge(*e) in banned for e in _ring_edges(ring))
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b, c, d = ring[i - 1], ring[i], ring[j], ring[(j + 1) % n]
                if {_edge(a, b), _edge(c, d)} == {_edge(a, c), _edge(b, d)}:
                    continue  # the same two edges (the whole ring reversed)
                new_bad = bad - (_edge(a, b) in banned) - (_edge(c, d) in banned) + \
                    (_edge(a, c) in banned) + (_edge(b, d) in banned)
                old_pair = sorted((w(a, b), w(c, d)))
                new_pair = sorted((w(a, c), w(b, d)))
                if new_bad == 0 and (bad > 0 or new_pair > old_pair):
                    ring[i:j + 1] = ring[i:j + 1][::-1]
                    bad, improved = new_bad, True
    return ring, _score(ring, rank, banned)


def validate_ring(ring, n):
    """Raises TopologyError unless `ring` visits each of the n devices exactly once."""
    if sorted(ring) != list(range(n)):
        raise TopologyError(f"ring {ring} does not visit each of the {n} devices exactly once")


def plan_rings(doc: dict, max_rings: int = 4) -> list[list[int]]:
    """Best rings over the document's devices (device indices, each ring closing back to its start)."""
    n = len(doc["devices"])
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    links = link_map(doc)
    rank = {pair: link_rank(link) for pair, link in links.items()}
    search = _best_exhaustive if n <= _EXHAUSTIVE_MAX else _best_heuristic
    rings, banned = [], set()
    first_score = None
    while len(rings) < max_rings:
        ring, score = search(n, rank, frozenset(banned))
        if ring is None or score is None or (first_score is not None and score < first_score):
            break  # another ring only if it is as good as the first, link for link
        first_score = first_score or score
        validate_ring(ring, n)
        rings.append(ring)
        banned.update(_ring_edges(ring))
        if n == 2:
            break  # one pair, one ring
    return rings


def ring_bottleneck(doc: dict, ring: list[int]) -> dict:
    """The weakest link of a ring (the one that bounds its bandwidth)."""
    links = link_map(doc)
    hops = [links[(ring[i], ring[(i + 1) % len(ring)])] for i in range(len(ring))] if len(ring) > 1 else []
    return min(hops, key=link_rank) if hops else None
