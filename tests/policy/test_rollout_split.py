"""The split of the total between the tracks, and the surge-first move (pure arithmetic)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from resilient_operator.policy.rollout import Track, shift, split, surge_of, weight_at


@given(st.integers(0, 500), st.integers(0, 100))
def test_split_adds_up_and_is_the_nearest_count(total, weight):
    stable, canary = split(total, weight)
    assert stable >= 0 and canary >= 0
    if total == 0 or weight == 0:
        assert (stable, canary) == (total, 0)
        return
    if weight == 100:
        assert (stable, canary) == (0, total)
        return
    # at least one pod of each track while 0 < weight < 100
    assert stable >= 1 and canary >= 1
    if total >= 2:
        assert stable + canary == total
        exact = weight * total / 100
        # nearest count (ties up), unless the one-of-each rule moved it
        if 1 <= exact + 0.5 < total:
            assert abs(canary - exact) <= 0.5
    else:
        assert (stable, canary) == (1, 1)


def test_split_examples():
    assert split(10, 20) == (8, 2)
    assert split(10, 25) == (7, 3)  # 2.5 rounds up
    assert split(3, 20) == (2, 1)  # 0.6 -> 1
    assert split(3, 10) == (2, 1)  # 0.3 -> at least one canary
    assert split(2, 99) == (1, 1)  # at least one stable
    assert split(0, 50) == (0, 0)  # scaled to zero: no pod on either track
    assert split(1, 50) == (1, 1)  # one replica: one pod of each track while both run
    assert split(10, 1) == (9, 1)  # the smallest weight still gets its canary
    assert split(10, 0) == (10, 0) and split(10, 100) == (0, 10)


def test_the_weight_in_force_is_the_last_set_weight_so_far():
    steps = [SimpleNamespace(set_weight=None), SimpleNamespace(set_weight=20),
             SimpleNamespace(set_weight=None), SimpleNamespace(set_weight=50)]
    assert [weight_at(steps, i) for i in range(4)] == [0, 20, 20, 50]


@given(st.integers(1, 40), st.integers(0, 100), st.integers(0, 40), st.integers(0, 40),
       st.integers(0, 40), st.integers(0, 40))
def test_a_move_never_exceeds_the_surge_and_never_removes_capacity(total, pct, s_have, c_have,
                                                                    s_avail, c_avail):
    s_avail, c_avail = min(s_avail, s_have), min(c_avail, c_have)
    surge = surge_of(f"{min(pct, 100)}%", total)
    stable_to, canary_to = split(total, 50)
    grow = Track(exists=True, replicas=c_have, available=c_avail)
    shrink = Track(exists=True, replicas=s_have, available=s_avail)
    canary_n, stable_n = shift(total, surge, grow, canary_to, shrink, stable_to)
    # growing adds pods only within total + surge (or not at all)
    if canary_n > c_have:
        assert canary_n + s_have <= max(total + surge, c_have + s_have)
    # shrinking never takes available pods below the total
    removed_available = max(0, s_avail - stable_n)
    assert removed_available == 0 or s_avail - removed_available + c_avail >= total or \
        stable_n == stable_to
    assert stable_n >= min(stable_to, s_have)
    assert canary_n <= max(canary_to, c_have)


def test_surge_is_at_least_one_pod():
    assert surge_of("25%", 1) == 1
    assert surge_of("25%", 10) == 3
    assert surge_of(0, 10) == 1


def test_a_track_with_pods_of_an_older_template_left_is_not_complete():
    # spec 2, two pods updated and available, but an old pod still runs: not complete
    assert not Track(exists=True, replicas=2, available=3, updated=2, pods=3).complete(2)
    assert Track(exists=True, replicas=2, available=2, updated=2, pods=2).complete(2)
