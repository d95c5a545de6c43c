"""Healing decisions: given pods, nodes, policy, history and clock, what is replaced when."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resilient_operator.policy import healing
from resilient_operator.policy.healing import Budget, HealHistory, decide
from resilient_operator.resource.models import Healing
from resilient_operator.resource.views import NodeView, PodView

SEL = {"app.kubernetes.io/instance": "web", "app.kubernetes.io/name": "web",
       "app.kubernetes.io/managed-by": "resilient-operator"}
NOW = 10_000.0
NODES = {f"n{i}": NodeView(f"n{i}", True, 0.0) for i in range(3)}


def pod(name: str, *, ready: bool = True, since: float = 0.0, phase: str = "Running",
        node: str = "n0", restarts: int = 0, waiting: str | None = None,
        labels: dict | None = None, created: float = 0.0) -> PodView:
    return PodView(name=name, uid=f"uid-{name}", labels=labels or dict(SEL), created=created,
                   phase=phase, ready=ready, ready_since=since, node=node, restarts=restarts,
                   waiting_reason=waiting)


def healthy(n: int) -> list[PodView]:
    return [pod(f"ok{i}") for i in range(n)]


def test_not_ready_pod_is_replaced_at_the_timeout_and_not_before():
    policy = Healing(not_ready_timeout="60s")
    sick = pod("sick", ready=False, since=NOW - 59)
    d = decide([sick, *healthy(3)], NODES, policy, Budget(4, 2), SEL, HealHistory(), NOW)
    assert d.replace == [] and d.next_check == NOW + 1
    d = decide([sick, *healthy(3)], NODES, policy, Budget(4, 2), SEL, HealHistory(), NOW + 1)
    assert [r.pod.name for r in d.replace] == ["sick"]
    assert d.replace[0].method == "Evict" and d.replace[0].crossed == NOW + 1


def test_crashloop_by_restarts_within_window():
    policy = Healing(max_restarts=5, restart_window="10m")
    history = HealHistory()
    p = pod("crash", restarts=6, created=NOW - 100)
    healing.observe(history, [p], NOW, 600)
    d = decide([p, *healthy(3)], NODES, policy, Budget(4, 2), SEL, history, NOW)
    assert [(r.pod.name, r.reason) for r in d.replace] == [("crash", healing.CRASH_LOOP)]


def test_old_restarts_outside_the_window_do_not_count():
    policy = Healing(max_restarts=5, restart_window="10m")
    history = HealHistory()
    p = pod("old", restarts=50, created=0.0)
    healing.observe(history, [p], NOW - 700, 600)  # seen with 50 restarts 700s ago
    healing.observe(history, [p], NOW, 600)
    d = decide([p, *healthy(3)], NODES, policy, Budget(4, 2), SEL, history, NOW)
    assert d.unhealthy == []


def test_failed_pod_is_deleted():
    d = decide([pod("f", phase="Failed", ready=False), *healthy(3)], NODES, Healing(),
               Budget(4, 2), SEL, HealHistory(), NOW)
    assert [(r.pod.name, r.method) for r in d.replace] == [("f", "Delete")]


def test_pods_on_lost_node_move_after_node_lost_timeout():
    nodes = {**NODES, "dead": NodeView("dead", False, NOW - 29)}
    pods = [pod("lost", node="dead"), *healthy(3)]
    policy = Healing(node_lost_timeout="30s")
    d = decide(pods, nodes, policy, Budget(4, 2), SEL, HealHistory(), NOW)
    assert d.replace == [] and d.next_check == NOW + 1
    d = decide(pods, nodes, policy, Budget(4, 2), SEL, HealHistory(), NOW + 1)
    assert [(r.pod.name, r.reason, r.method) for r in d.replace] == [
        ("lost", healing.NODE_LOST, "Delete")]


def test_hopeless_pods_are_reported_never_replaced():
    pods = [pod("img", ready=False, waiting="ImagePullBackOff"), *healthy(3)]
    d = decide(pods, NODES, Healing(), Budget(4, 2), SEL, HealHistory(), NOW)
    assert d.replace == []
    assert [(f.pod.name, f.replaceable) for f in d.unhealthy] == [("img", False)]


def test_storm_breaker_suspends_healing():
    pods = [pod(f"s{i}", ready=False, since=0.0) for i in range(3)] + healthy(3)
    d = decide(pods, NODES, Healing(storm_threshold="50%"), Budget(6, 1), SEL, HealHistory(), NOW)
    assert d.suspended and d.replace == []
    assert "3 of 6" in d.storm_message


def test_a_storm_needs_the_share_and_storm_min_pods():
    # half of a two-pod service is not a storm: its one sick pod is healed
    pods = [pod("sick", ready=False, since=0.0), *healthy(1)]
    d = decide(pods, NODES, Healing(), Budget(2, 1), SEL, HealHistory(), NOW)
    assert not d.suspended and [r.pod.name for r in d.replace] == ["sick"]
    # a one-pod service (an HPA at minReplicas 1) heals its only pod
    d = decide([pod("only", ready=False, since=0.0)], NODES, Healing(), Budget(1, 0), SEL,
               HealHistory(), NOW)
    assert [r.pod.name for r in d.replace] == ["only"]
    # with stormMinPods 2, two of four is a storm again
    pods = [pod(f"s{i}", ready=False, since=0.0) for i in range(2)] + healthy(2)
    d = decide(pods, NODES, Healing(storm_min_pods=2), Budget(4, 1), SEL, HealHistory(), NOW)
    assert d.suspended


def test_pods_unhealthy_during_a_storm_get_a_fresh_grace_when_it_lifts():
    history = HealHistory(resumed_at=NOW - 10)
    pods = [pod("sick", ready=False, since=NOW - 300), *healthy(3)]
    d = decide(pods, NODES, Healing(not_ready_timeout="60s"), Budget(4, 2), SEL, history, NOW)
    assert d.replace == [] and d.skipped[0][1].startswith("Grace")
    assert d.next_check == NOW + 50
    d = decide(pods, NODES, Healing(not_ready_timeout="60s"), Budget(4, 2), SEL, history,
               NOW + 50)
    assert [r.pod.name for r in d.replace] == ["sick"]


def test_not_ready_timeout_counts_from_when_the_operator_saw_the_change():
    # the condition says NOW-60 (seconds resolution); the operator saw it at NOW-59.4
    late = pod("late", ready=False, since=NOW - 60)
    late = dataclasses.replace(late, seen_ready_change=NOW - 59.4)
    d = decide([late, *healthy(3)], NODES, Healing(not_ready_timeout="60s"), Budget(4, 2), SEL,
               HealHistory(), NOW)
    assert d.replace == [] and d.next_check == pytest.approx(NOW + 0.6)


def test_a_forming_storm_holds_the_first_heal():
    # one pod is past its timeout, two more are failing but not yet past theirs
    pods = [pod("first", ready=False, since=NOW - 61),
            pod("second", ready=False, since=NOW - 5), pod("third", ready=False, since=NOW - 5),
            *healthy(3)]
    d = decide(pods, NODES, Healing(storm_threshold="50%"), Budget(6, 1), SEL, HealHistory(), NOW)
    assert d.replace == [] and not d.suspended
    assert d.skipped == [(d.unhealthy[0], "StormForming: 3 of 6 pods are failing now; waiting "
                          "to see whether they recover")]
    assert d.next_check == NOW + 55


def test_cooldown_blocks_a_second_heal():
    history = HealHistory(last_heal_at=NOW - 10)
    pods = [pod("sick", ready=False), *healthy(5)]
    d = decide(pods, NODES, Healing(cooldown="30s", max_concurrent=5), Budget(6, 2), SEL,
               history, NOW)
    assert d.replace == [] and d.next_check == NOW + 20


def test_observe_only_decides_the_same_and_disabled_nothing():
    pods = [pod("sick", ready=False), *healthy(3)]
    seen = decide(pods, NODES, Healing(mode="ObserveOnly"), Budget(4, 2), SEL, HealHistory(), NOW)
    acts = decide(pods, NODES, Healing(mode="Enabled"), Budget(4, 2), SEL, HealHistory(), NOW)
    assert [r.pod.name for r in seen.replace] == [r.pod.name for r in acts.replace] == ["sick"]
    off = decide(pods, NODES, Healing(mode="Disabled"), Budget(4, 2), SEL, HealHistory(), NOW)
    assert off.replace == [] and off.unhealthy == []


def test_replacement_that_comes_back_unhealthy_backs_off():
    history = HealHistory()
    first = pod("a", ready=False, since=NOW - 100)
    others = healthy(3)
    d = decide([first, *others], NODES, Healing(cooldown="10s"), Budget(4, 2), SEL, history, NOW)
    healing.record(history, d.replace[0], NOW)
    successor = pod("b", ready=False, since=NOW + 1, created=NOW + 1)
    healing.observe(history, [successor, *others], NOW + 2, 600)
    assert history.generations[successor.name] == 1
    # the successor crosses notReadyTimeout at NOW+61; the backoff (10s) adds to it
    d = decide([successor, *others], NODES, Healing(cooldown="10s"), Budget(4, 2), SEL, history,
               NOW + 65)
    assert d.replace == [] and "BackOff" in d.skipped[0][1]
    d = decide([successor, *others], NODES, Healing(cooldown="10s"), Budget(4, 2), SEL, history,
               NOW + 300)
    assert [r.pod.name for r in d.replace] == ["b"]


def test_recovery_time_is_measured_from_unhealthy_to_replacement_ready():
    history = HealHistory()
    sick = pod("a", ready=False, since=NOW - 60)
    d = decide([sick, *healthy(3)], NODES, Healing(), Budget(4, 2), SEL, history, NOW)
    healing.record(history, d.replace[0], NOW)
    new = pod("b", ready=True, since=NOW + 5, created=NOW + 1)
    done = healing.observe(history, [new, *healthy(3)], NOW + 6, 600)
    assert [(r.pod_name, t) for r, t in done] == [("a", 65.0)]
    assert history.in_flight == []


# -- properties ---------------------------------------------------------------------------------

@st.composite
def worlds(draw):
    n = draw(st.integers(1, 12))
    nodes = {f"n{i}": NodeView(f"n{i}", draw(st.booleans()), draw(st.floats(0, NOW)))
             for i in range(3)}
    pods = []
    for i in range(n):
        mine = draw(st.integers(0, 9)) > 0
        pods.append(PodView(
            name=f"p{i}", uid=f"u{i}",
            labels=dict(SEL) if mine else {"app.kubernetes.io/instance": "other"},
            created=draw(st.floats(0, NOW)),
            phase=draw(st.sampled_from(["Running", "Running", "Failed", "Pending"])),
            ready=draw(st.booleans()), ready_since=draw(st.floats(0, NOW)),
            node=draw(st.sampled_from(list(nodes))), restarts=draw(st.integers(0, 10)),
            waiting_reason=draw(st.sampled_from([None, None, "CrashLoopBackOff",
                                                 "ImagePullBackOff"])),
        ))
    policy = Healing(
        mode=draw(st.sampled_from(["Enabled", "ObserveOnly", "Disabled"])),
        max_concurrent=draw(st.one_of(st.integers(0, 4), st.sampled_from(["25%", "50%"]))),
        storm_threshold=draw(st.one_of(st.integers(1, 6), st.sampled_from(["30%", "50%"]))),
        not_ready_timeout=draw(st.sampled_from(["1s", "60s", "1h"])),
    )
    in_flight = draw(st.integers(0, 3))
    history = HealHistory(
        last_heal_at=draw(st.one_of(st.none(), st.floats(NOW - 100, NOW))),
        in_flight=[healing.HealRecord(f"x{i}", f"x{i}", "NotReady", 0, NOW - 1)
                   for i in range(in_flight)])
    replicas = draw(st.integers(1, 12))
    budget = Budget(replicas, draw(st.integers(0, replicas)))
    return pods, nodes, policy, budget, history


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_decisions_respect_every_bound(world):
    pods, nodes, policy, budget, history = world
    d = decide(pods, nodes, policy, budget, SEL, history, NOW)
    chosen = [r.pod for r in d.replace]
    # never a pod of another service, never twice
    assert all(all(p.labels.get(k) == v for k, v in SEL.items()) for p in chosen)
    assert len({p.uid for p in chosen}) == len(chosen)
    # never more than the budget of concurrent heals
    assert len(history.in_flight) + len(chosen) <= max(
        len(history.in_flight), healing.max_concurrent(policy, budget.replicas))
    assert len(chosen) <= healing.max_concurrent(policy, budget.replicas)
    # nothing while disabled; nothing within the cooldown
    if policy.mode == "Disabled":
        assert d.replace == [] and d.unhealthy == []
    if history.last_heal_at is not None and history.last_heal_at + 30 > NOW:
        assert d.replace == []
    # never below the availability policy: ready pods taken away keep min_available
    lost = {n for n, v in nodes.items() if not v.ready}
    ready = [p for p in pods if p.ready and p.node not in lost and all(
        p.labels.get(k) == v for k, v in SEL.items())]
    taken = [p for p in chosen if p.ready and p.node not in lost and p.phase != "Failed"]
    assert not taken or len(ready) - len(taken) >= budget.min_available
    # the storm breaker trips exactly at the threshold
    live = [p for p in pods if all(p.labels.get(k) == v for k, v in SEL.items())]
    if policy.mode != "Disabled":
        limit = healing.storm_limit(policy, max(len(live), budget.replicas))
        assert d.suspended == (bool(d.unhealthy) and len(d.unhealthy) >= limit)
        if d.suspended:
            assert d.replace == []
    # nothing is healed while the pods failing now (crossed or not) reach the storm threshold
    if d.replace:
        failing = {f.pod.uid for f in d.unhealthy} | {
            p.uid for p in live if p.phase == "Running" and not p.ready and not p.terminating}
        assert len(failing) < healing.storm_limit(policy, max(len(live), budget.replicas))
    # deadlines are in the future
    assert d.next_check is None or d.next_check > NOW
    # every pod found replaceable is either replaced or skipped, with the reason
    decided = [r.pod.uid for r in d.replace] + [f.pod.uid for f, _ in d.skipped]
    assert sorted(decided) == sorted(f.pod.uid for f in d.unhealthy if f.replaceable)


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_a_healable_pod_with_budget_left_is_healed(world):
    # liveness: the bounds above hold for a decision that never heals anything, too
    pods, nodes, policy, budget, history = world
    d = decide(pods, nodes, policy, budget, SEL, history, NOW)
    lost = {n for n, v in nodes.items() if not v.ready}
    live = [p for p in pods if all(p.labels.get(k) == v for k, v in SEL.items())]
    ready_now = sum(1 for p in live if p.ready and p.node not in lost)
    slots = healing.max_concurrent(policy, budget.replicas) - len(history.in_flight)
    cooled = history.last_heal_at is None or history.last_heal_at + 30 <= NOW
    storm = d.suspended or any(why.startswith("StormForming") for _, why in d.skipped)

    def keeps_availability(f: healing.Finding) -> bool:
        takes_a_ready_pod = f.pod.ready and f.reason not in (healing.NODE_LOST, healing.FAILED)
        return not takes_a_ready_pod or ready_now - 1 >= budget.min_available

    healable = [f for f in d.unhealthy if f.replaceable and keeps_availability(f)]
    if policy.mode != "Disabled" and healable and slots > 0 and cooled and not storm:
        assert d.replace, f"nothing healed of {[f.pod.name for f in healable]}"
        assert len(d.replace) == min(slots, len(d.replace) + sum(
            1 for f, why in d.skipped if why.startswith("Budget")))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 3600), st.integers(1, 600))
def test_not_ready_deadline_is_exact(since_ago, timeout):
    policy = Healing(not_ready_timeout=f"{timeout}s")
    t = healing.parse_duration(policy.not_ready_timeout)
    p = pod("x", ready=False, since=NOW - since_ago)
    finding, deadline = healing.classify(p, NODES, policy, HealHistory(), NOW)
    if since_ago >= t:
        assert finding is not None and finding.reason == healing.NOT_READY
    else:
        assert finding is None and deadline == NOW - since_ago + t


def test_the_decision_that_lifts_a_storm_heals_nothing_at_once():
    history = HealHistory(suspended=True)
    pods = [pod("sick", ready=False, since=NOW - 300), *healthy(3)]
    d = decide(pods, NODES, Healing(not_ready_timeout="60s"), Budget(4, 2), SEL, history, NOW)
    assert not d.suspended and d.replace == [] and d.next_check == NOW + 60


# -- what the mutation tests found untested -----------------------------------------------------

def test_an_unschedulable_pod_is_reported_never_replaced():
    stuck = dataclasses.replace(pod("stuck", ready=False, phase="Pending", node=None,
                                    created=NOW - 3600), unschedulable=True)
    d = decide([stuck, *healthy(3)], NODES, Healing(), Budget(4, 2), SEL, HealHistory(), NOW)
    assert d.replace == []
    assert [(f.pod.name, f.reason, f.replaceable) for f in d.unhealthy] == [
        ("stuck", healing.UNSCHEDULABLE, False)]
    # a pod that is only waiting for the scheduler is not unhealthy at all
    waiting = pod("new", ready=False, phase="Pending", node=None, created=NOW - 3600)
    d = decide([waiting, *healthy(3)], NODES, Healing(), Budget(4, 2), SEL, HealHistory(), NOW)
    assert d.unhealthy == [] and d.replace == []


def test_a_replacement_that_never_becomes_ready_frees_its_heal_slot_after_five_minutes():
    policy = Healing(max_concurrent=1, cooldown="10s")
    history = HealHistory()
    first = pod("a", ready=False, since=NOW - 100)
    d = decide([first, *healthy(3)], NODES, policy, Budget(4, 2), SEL, history, NOW)
    healing.record(history, d.replace[0], NOW)
    # its replacement stays Pending (no threshold of its own), and another pod falls sick
    stuck = pod("b", ready=False, phase="Pending", node=None, created=NOW + 1)
    other = pod("c", ready=False, since=NOW - 100)
    world = [stuck, other, *healthy(3)]
    assert healing.observe(history, world, NOW + 300, 600) == []
    d = decide(world, NODES, policy, Budget(4, 2), SEL, history, NOW + 300)
    assert d.replace == [] and d.skipped[0][1].startswith("Budget")
    done = healing.observe(history, world, NOW + 301, 600)
    assert [r.pod_name for r, _ in done] == ["a"] and math.isnan(done[0][1])
    assert history.in_flight == []
    d = decide(world, NODES, policy, Budget(4, 2), SEL, history, NOW + 301)
    assert [r.pod.name for r in d.replace] == ["c"]


def test_the_backoff_doubles_from_the_cooldown_and_stops_at_ten_minutes():
    assert [healing.backoff(g, 30.0) for g in range(7)] == [0, 30, 60, 120, 240, 480, 600]
    assert healing.backoff(40, 30.0) == 600
    assert healing.backoff(2, 0.0) == 2.0  # a zero cooldown still backs off from one second
    # a pod that is the 12th replacement in a row is replaced ten minutes after it crosses
    history = HealHistory(generations={"b": 12})
    sick = pod("b", ready=False, since=NOW - 60)  # crosses notReadyTimeout 60s at NOW
    policy = Healing(cooldown="30s")
    d = decide([sick, *healthy(3)], NODES, policy, Budget(4, 2), SEL, history, NOW + 599)
    assert d.replace == [] and d.next_check == NOW + 600
    d = decide([sick, *healthy(3)], NODES, policy, Budget(4, 2), SEL, history, NOW + 600)
    assert [r.pod.name for r in d.replace] == ["b"]


def test_pods_on_lost_nodes_are_healed_first_then_failed_crashing_not_ready():
    nodes = {**NODES, "dead": NodeView("dead", False, NOW - 100)}
    history = HealHistory()
    crashing = pod("crash", ready=False, since=NOW - 2000, restarts=9, created=NOW - 100)
    healing.observe(history, [crashing], NOW - 50, 600)  # crash-looping since NOW-50
    pods = [pod("notready", ready=False, since=NOW - 3000), crashing,
            pod("failed", phase="Failed", ready=False, since=NOW - 10),
            pod("lost", node="dead"), *healthy(8)]
    # one slot: the pod on the lost node goes first, although its problem is the newest
    d = decide(pods, nodes, Healing(max_concurrent=1), Budget(12, 2), SEL, history, NOW)
    assert [(r.pod.name, r.reason) for r in d.replace] == [("lost", healing.NODE_LOST)]
    d = decide(pods, nodes, Healing(max_concurrent=4), Budget(12, 2), SEL, history, NOW)
    assert [r.pod.name for r in d.replace] == ["lost", "failed", "crash", "notready"]


def test_a_hopeless_pod_is_reported_with_its_waiting_reason_since_it_went_wrong():
    img = pod("img", ready=False, since=NOW - 40, waiting="ErrImagePull")
    (finding,) = decide([img, *healthy(3)], NODES, Healing(), Budget(4, 2), SEL, HealHistory(),
                        NOW).unhealthy
    assert (finding.reason, finding.since, finding.replaceable) == ("ErrImagePull", NOW - 40,
                                                                    False)
    assert finding.message == "container waiting: ErrImagePull; a new pod would fail the same way"


def test_restarts_count_only_within_the_window():
    policy = Healing(max_restarts=5, restart_window="10m")
    history = HealHistory()
    old = pod("old", created=NOW - 5000)

    def crashing(now: float, restarts: int) -> bool:
        p = dataclasses.replace(old, restarts=restarts)
        healing.observe(history, [p, *healthy(3)], now, 600)
        d = decide([p, *healthy(3)], NODES, policy, Budget(4, 2), SEL, history, now)
        return [f.reason for f in d.unhealthy] == [healing.CRASH_LOOP]

    assert not crashing(NOW, 0)
    assert crashing(NOW + 100, 6)  # six restarts since the first observation
    assert crashing(NOW + 650, 6)  # the observation before them is still in the window
    assert not crashing(NOW + 800, 6)  # they are all older than the window now
    assert [c for _, c in history.restart_samples[old.uid]] == [6]
    assert crashing(NOW + 900, 11)
    # a pod that is gone is forgotten
    healing.observe(history, healthy(3), NOW + 901, 600)
    assert old.uid not in history.restart_samples


def test_a_pod_first_seen_inside_the_window_counts_from_the_first_observation():
    history = HealHistory()
    p = pod("p", created=NOW - 5000, restarts=3)
    healing.observe(history, [p], NOW, 600)
    later = dataclasses.replace(p, restarts=9)
    assert healing.restarts_in_window(history.restart_samples[p.uid], later, NOW + 10, 600) == 6
    # a pod created at the window's start or later: every restart it ever had counts
    young = pod("y", created=NOW - 600, restarts=4)
    assert healing.restarts_in_window([], young, NOW, 600) == 4
    assert healing.restarts_in_window([(NOW - 10, 4)], young, NOW, 600) == 4
    # no restarts since the window start: none, not one
    assert healing.restarts_in_window([(NOW - 700, 4)], p, NOW, 600) == 0
    policy = Healing(max_restarts=1, restart_window="10m")
    d = decide([p, *healthy(3)], NODES, policy, Budget(4, 2), SEL,
               HealHistory(restart_samples={p.uid: [(NOW - 700, 3)]}), NOW)
    assert d.unhealthy == []


def test_pods_on_a_lost_node_do_not_count_as_ready_capacity():
    nodes = {**NODES, "dead": NodeView("dead", False, NOW - 5)}  # not past nodeLostTimeout
    history = HealHistory()
    crash = pod("crash", restarts=9, created=NOW - 100)  # Ready between its crashes
    healing.observe(history, [crash], NOW, 600)
    pods = [crash, pod("ok"), pod("stranded", node="dead")]
    d = decide(pods, nodes, Healing(), Budget(3, 2), SEL, history, NOW)
    # evicting the crashing pod would leave one pod that serves: fewer than the two needed
    assert d.replace == [] and d.skipped[0][1].startswith("Availability")


def test_after_a_storm_lost_nodes_get_their_timeout_again_and_failed_pods_none():
    nodes = {**NODES, "dead": NodeView("dead", False, NOW - 600)}
    history = HealHistory(resumed_at=NOW - 10)
    lost = pod("lost", node="dead")
    policy = Healing(node_lost_timeout="30s", not_ready_timeout="60s", max_concurrent=2)
    d = decide([lost, *healthy(3)], nodes, policy, Budget(4, 2), SEL, history, NOW)
    assert d.replace == [] and d.next_check == NOW + 20
    d = decide([lost, *healthy(3)], nodes, policy, Budget(4, 2), SEL, history, NOW + 20)
    assert [r.pod.name for r in d.replace] == ["lost"]
    # a failed pod cannot recover by itself: it is replaced as soon as the storm lifts
    failed = pod("failed", phase="Failed", ready=False, since=NOW - 600)
    d = decide([failed, *healthy(3)], NODES, policy, Budget(4, 2), SEL, history, NOW)
    assert [r.pod.name for r in d.replace] == ["failed"]


def test_each_heal_finds_its_own_replacement_and_passes_on_its_generation():
    history = HealHistory(generations={"a": 2})
    sick = [pod("a", ready=False, since=NOW - 1000), pod("b", ready=False, since=NOW - 100)]
    d = decide([*sick, *healthy(4)], NODES, Healing(max_concurrent=2), Budget(6, 2), SEL,
               history, NOW)
    # acted within the second the new pods were created (timestamps are whole seconds)
    entries = [healing.record(history, r, NOW + 0.4) for r in d.replace]
    assert [(e.pod_name, e.generation) for e in entries] == [("a", 2), ("b", 0)]
    new = [pod("c", ready=False, phase="Pending", created=NOW),
           pod("d", ready=False, phase="Pending", created=NOW + 1)]
    healing.observe(history, [*new, *healthy(4)], NOW + 2, 600)
    assert [r.replacement for r in history.in_flight] == ["c", "d"]
    assert history.generations == {"c": 3, "d": 1}


def test_recovery_is_measured_to_when_the_replacement_became_ready():
    history = HealHistory()
    sick = pod("a", ready=False, since=NOW - 60)
    d = decide([sick, *healthy(3)], NODES, Healing(), Budget(4, 2), SEL, history, NOW)
    healing.record(history, d.replace[0], NOW)
    # Ready without a transition time: measured to now
    new = dataclasses.replace(pod("b", created=NOW + 1), ready_since=None)
    done = healing.observe(history, [new, *healthy(3)], NOW + 7, 600)
    assert [t for _, t in done] == [67.0]
    # a replacement whose Ready time is before the pod was seen unhealthy (clock skew): 0 s
    history = HealHistory()
    healing.record(history, d.replace[0], NOW)
    early = pod("b", since=NOW - 70, created=NOW + 1)
    assert [t for _, t in healing.observe(history, [early, *healthy(3)], NOW + 7, 600)] == [0.0]


def test_each_finding_says_since_when_and_why():
    nodes = {**NODES, "dead": NodeView("dead", False, NOW - 100)}

    def finding(p: PodView) -> healing.Finding:
        found, _ = healing.classify(p, nodes, Healing(node_lost_timeout="30s"), HealHistory(),
                                    NOW)
        assert found is not None
        return found

    failed = finding(pod("f", phase="Failed", ready=False, since=NOW - 50, created=NOW - 500))
    assert (failed.reason, failed.since, failed.crossed, failed.message) == (
        healing.FAILED, NOW - 50, NOW - 50, "pod failed")
    never = finding(dataclasses.replace(pod("g", phase="Failed", ready=False, created=NOW - 500),
                                        ready_since=None))
    assert never.since == never.crossed == NOW - 500
    stuck = finding(dataclasses.replace(pod("u", phase="Pending", ready=False, created=NOW - 70),
                                        unschedulable=True))
    assert (stuck.since, stuck.message) == (
        NOW - 70, "no node can take the pod; replacing it would not help")
    lost = finding(pod("l", node="dead"))
    assert (lost.reason, lost.since, lost.crossed, lost.message) == (
        healing.NODE_LOST, NOW - 100, NOW - 70,
        "node dead not ready for longer than nodeLostTimeout 30s")


def test_heal_slots_and_the_storm_limit_from_percentages():
    # maxConcurrent rounds down, and is never below one pod
    assert healing.max_concurrent(Healing(max_concurrent="50%"), 5) == 2
    assert healing.max_concurrent(Healing(max_concurrent="25%"), 2) == 1
    assert healing.max_concurrent(Healing(max_concurrent=0), 5) == 0  # reported: cannot act
    # the storm share rounds up; stormMinPods is the floor
    assert healing.storm_limit(Healing(storm_threshold="30%", storm_min_pods=1), 5) == 2
    assert healing.storm_limit(Healing(storm_threshold="10%", storm_min_pods=1), 4) == 1
    assert healing.storm_limit(Healing(storm_threshold="50%", storm_min_pods=3), 4) == 3


def test_a_storm_says_why_and_holds_every_replaceable_pod():
    pods = [pod(f"s{i}", ready=False, since=0.0) for i in range(3)] + healthy(3)
    d = decide(pods, NODES, Healing(), Budget(6, 1), SEL, HealHistory(), NOW)
    assert d.storm_message == (
        "3 of 6 pods are unhealthy (threshold 50%, at least 3 pods): the cause is likely shared "
        "(a dependency or a release), not the pods; healing resumes when fewer are unhealthy")
    assert [(f.pod.name, why) for f, why in d.skipped] == [
        ("s0", "HealingSuspended"), ("s1", "HealingSuspended"), ("s2", "HealingSuspended")]


def test_a_failed_pod_is_replaced_by_the_decision_that_lifts_the_storm():
    failed = pod("failed", phase="Failed", ready=False, since=NOW - 600)
    d = decide([failed, *healthy(3)], NODES, Healing(), Budget(4, 2), SEL,
               HealHistory(suspended=True), NOW)
    assert [r.pod.name for r in d.replace] == ["failed"]


def test_crash_loop_and_not_ready_findings_say_since_when_and_why():
    history = HealHistory()
    crash = pod("crash", created=NOW - 5000)
    healing.observe(history, [crash], NOW - 50, 600)
    crash = dataclasses.replace(crash, restarts=5)
    healing.observe(history, [crash], NOW - 20, 600)
    found, _ = healing.classify(crash, NODES, Healing(), history, NOW)
    assert found is not None
    assert (found.reason, found.since, found.crossed, found.message) == (
        healing.CRASH_LOOP, NOW - 20, NOW - 20, "5 restarts within 10m")
    slow = pod("slow", ready=False, since=NOW - 90)
    found, _ = healing.classify(slow, NODES, Healing(), HealHistory(), NOW)
    assert found is not None
    assert (found.reason, found.since, found.crossed, found.message) == (
        healing.NOT_READY, NOW - 90, NOW - 30,
        "running but not ready for longer than notReadyTimeout 60s")


def test_during_a_storm_the_next_deadline_is_still_watched():
    pods = [pod(f"s{i}", ready=False, since=0.0) for i in range(4)] + [
        pod("soon", ready=False, since=NOW - 30), *healthy(2)]
    d = decide(pods, NODES, Healing(), Budget(7, 1), SEL, HealHistory(), NOW)
    assert d.suspended and d.next_check == NOW + 30


def test_heals_stop_exactly_where_the_availability_policy_would_be_broken():
    history = HealHistory()
    crashing = [pod(f"c{i}", restarts=9, created=NOW - 100) for i in range(3)]
    healing.observe(history, crashing, NOW, 600)
    policy = Healing(max_concurrent=3, storm_min_pods=5)  # no storm: the policy alone
    # four ready, two of them crash-looping, two needed: both may go
    d = decide([*crashing[:2], *healthy(2)], NODES, policy, Budget(4, 2), SEL, history, NOW)
    assert [r.pod.name for r in d.replace] == ["c0", "c1"]
    # three ready, all crash-looping, two needed: one may go, then the rest must wait
    d = decide(crashing, NODES, policy, Budget(3, 2), SEL, history, NOW)
    assert [r.pod.name for r in d.replace] == ["c0"]
    assert [why[:12] for _, why in d.skipped] == ["Availability", "Availability"]
