"""Self-healing decisions: which pods to replace now, which to report, and when to look again.

Everything here is pure: pods, nodes, the policy, the state and the clock come in as plain
data, a Decision comes out. The healing actor (reconcile/healing.py) carries it out and records
what it did in the state, which lives in ``status.healing`` so a restart or a new leader
continues exactly (cooldown, heals in flight, backoff, the storm breaker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..resource.models import Healing, parse_duration, resolve_int_or_percent
from ..resource.views import NodeView, PodView

# Unhealthy classes (reasons) that replacing the pod can cure.
NOT_READY = "NotReady"
CRASH_LOOP = "CrashLoop"
FAILED = "Failed"
NODE_LOST = "NodeLost"
REPLACEABLE = (NOT_READY, CRASH_LOOP, FAILED, NODE_LOST)

# Container waiting reasons where a new pod would fail the same way: reported, never churned.
HOPELESS_WAITING = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError",
})
UNSCHEDULABLE = "Unschedulable"

MAX_BACKOFF_SECONDS = 600.0
# A heal whose replacement is not Ready after this long stops counting against the budget.
HEAL_TIMEOUT_SECONDS = 300.0

Method = Literal["Evict", "Delete"]


@dataclass
class HealRecord:
    """One replacement the operator started, until its successor is Ready."""

    pod_name: str
    pod_uid: str
    reason: str
    unhealthy_since: float
    acted_at: float
    generation: int = 0
    replacement: str | None = None  # name of the pod that replaced it, once seen


@dataclass
class HealHistory:
    """What healing remembers of one service between decisions. Everything but the restart
    samples is kept in status.healing (see reconcile/healing.py)."""

    last_heal_at: float | None = None
    in_flight: list[HealRecord] = field(default_factory=list)
    # replacement pod name -> how many replacements in a row led to it (for the backoff)
    generations: dict[str, int] = field(default_factory=dict)
    suspended: bool = False
    resumed_at: float | None = None  # when the storm breaker last let go
    # pod uid -> observations (time, restartCount), oldest first (process memory: after a
    # restart, restarts are counted from the first observation, which only delays a heal)
    restart_samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A pod found unhealthy (or about to be)."""

    pod: PodView
    reason: str
    since: float
    replaceable: bool
    message: str
    crossed: float = 0.0  # when the threshold was crossed (for the reaction time)


@dataclass(frozen=True)
class Replacement:
    """A pod to replace now, and how."""

    pod: PodView
    reason: str
    since: float
    method: Method
    crossed: float = 0.0


@dataclass
class Decision:
    """What healing decided for one service at one instant."""

    unhealthy: list[Finding] = field(default_factory=list)
    replace: list[Replacement] = field(default_factory=list)
    skipped: list[tuple[Finding, str]] = field(default_factory=list)
    suspended: bool = False
    storm_message: str = ""
    next_check: float | None = None  # absolute time to decide again, None if nothing pending


@dataclass(frozen=True)
class Budget:
    """Availability facts healing must respect."""

    replicas: int
    min_available: int  # pods that must stay ready


def _owned(pod: PodView, selector: dict[str, str]) -> bool:
    return all(pod.labels.get(k) == v for k, v in selector.items())


def restarts_in_window(
    samples: list[tuple[float, int]], pod: PodView, now: float, window: float
) -> int:
    """Restarts of the pod within [now - window, now], from observations of restartCount."""
    start = now - window
    if pod.created >= start:
        return pod.restarts
    baseline = None
    for t, count in samples:
        if t <= start:
            baseline = count
        else:
            break
    if baseline is None:
        # first seen inside the window: count from the first observation (conservative)
        baseline = samples[0][1] if samples else pod.restarts
    return max(0, pod.restarts - baseline)


def classify(
    pod: PodView,
    nodes: dict[str, NodeView],
    policy: Healing,
    history: HealHistory,
    now: float,
) -> tuple[Finding | None, float | None]:
    """The pod's unhealthy finding (if its threshold is crossed) and the next deadline if not."""
    if pod.terminating:
        return None, None
    if pod.waiting_reason in HOPELESS_WAITING:
        return Finding(pod, pod.waiting_reason, pod.ready_since or pod.created, False,
                       f"container waiting: {pod.waiting_reason}; a new pod would fail the "
                       "same way"), None
    if pod.phase == "Pending" and pod.unschedulable:
        return Finding(pod, UNSCHEDULABLE, pod.created, False,
                       "no node can take the pod; replacing it would not help"), None
    if pod.phase == "Failed":
        since = pod.ready_since or pod.created
        return Finding(pod, FAILED, since, True, "pod failed", since), None
    node = nodes.get(pod.node) if pod.node else None
    if node is not None and not node.ready:
        deadline = node.since + parse_duration(policy.node_lost_timeout)
        if now >= deadline:
            return Finding(pod, NODE_LOST, node.since, True,
                           f"node {node.name} not ready for longer than nodeLostTimeout "
                           f"{policy.node_lost_timeout}", deadline), None
        return None, deadline
    samples = history.restart_samples.get(pod.uid, [])
    window = parse_duration(policy.restart_window)
    restarts = restarts_in_window(samples, pod, now, window)
    if restarts >= policy.max_restarts:
        seen = samples[-1][0] if samples else now
        return Finding(pod, CRASH_LOOP, seen, True,
                       f"{restarts} restarts within {policy.restart_window}", seen), None
    if pod.phase == "Running" and not pod.ready:
        since = pod.not_ready_since
        deadline = since + parse_duration(policy.not_ready_timeout)
        if now >= deadline:
            return Finding(pod, NOT_READY, since, True,
                           f"running but not ready for longer than notReadyTimeout "
                           f"{policy.not_ready_timeout}", deadline), None
        return None, deadline
    return None, None


def max_concurrent(policy: Healing, replicas: int) -> int:
    """Heals allowed in flight at once."""
    if isinstance(policy.max_concurrent, int):
        return policy.max_concurrent
    return max(1, resolve_int_or_percent(policy.max_concurrent, replicas, round_up=False))


def storm_limit(policy: Healing, pods: int) -> int:
    """Unhealthy pods at which the storm breaker trips: the share, and never fewer than
    stormMinPods (one sick pod of a one- or two-replica service is not a storm)."""
    share = resolve_int_or_percent(policy.storm_threshold, pods, round_up=True)
    return max(1, policy.storm_min_pods, share)


def grace_after_storm(reason: str, policy: Healing) -> float:
    """The fresh grace a pod that was unhealthy during a storm gets once healing resumes."""
    if reason == NODE_LOST:
        return parse_duration(policy.node_lost_timeout)
    if reason in (NOT_READY, CRASH_LOOP):
        return parse_duration(policy.not_ready_timeout)
    return 0.0


def backoff(generation: int, cooldown: float) -> float:
    """Delay before replacing a pod that is itself the generation-th replacement in a row."""
    if generation <= 0:
        return 0.0
    return min(MAX_BACKOFF_SECONDS, max(cooldown, 1.0) * 2 ** (generation - 1))


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def decide(
    pods: list[PodView],
    nodes: dict[str, NodeView],
    policy: Healing,
    budget: Budget,
    selector: dict[str, str],
    history: HealHistory,
    now: float,
) -> Decision:
    """Which pods to replace now, which to report, and when to decide again."""
    decision = Decision()
    if policy.mode == "Disabled":
        return decision
    owned = [p for p in pods if _owned(p, selector)]
    live = [p for p in owned if not p.terminating]
    next_check: float | None = None
    for pod in live:
        finding, deadline = classify(pod, nodes, policy, history, now)
        next_check = _earliest(next_check, deadline)
        if finding is not None:
            decision.unhealthy.append(finding)

    replaceable = [f for f in decision.unhealthy if f.replaceable]
    population = max(len(live), budget.replicas)
    limit = storm_limit(policy, population)
    if decision.unhealthy and len(decision.unhealthy) >= limit:
        decision.suspended = True
        decision.storm_message = (
            f"{len(decision.unhealthy)} of {population} pods are unhealthy (threshold "
            f"{policy.storm_threshold}, at least {policy.storm_min_pods} pods): the cause is "
            "likely shared (a dependency or a release), not the pods; healing resumes when "
            "fewer are unhealthy"
        )
        for f in replaceable:
            decision.skipped.append((f, "HealingSuspended"))
        decision.next_check = next_check
        return decision
    # pods failing now but not yet past their threshold: when, with them, the share reaches
    # the threshold, a storm may be forming; healing the first pod to cross would be churn
    failing = {f.pod.uid for f in decision.unhealthy} | {
        p.uid for p in live if p.phase == "Running" and not p.ready}
    if replaceable and len(failing) >= limit:
        for f in replaceable:
            decision.skipped.append((f, f"StormForming: {len(failing)} of {population} pods "
                                     "are failing now; waiting to see whether they recover"))
        decision.next_check = next_check
        return decision

    resumed_at = now if history.suspended else history.resumed_at  # the storm lifts now
    cooldown = parse_duration(policy.cooldown)
    # a heal whose replacement is itself unhealthy has failed: it holds no budget (the backoff
    # below governs replacing the replacement)
    sick = {f.pod.name for f in decision.unhealthy}
    in_flight = sum(1 for r in history.in_flight if r.replacement not in sick)
    allowed = max_concurrent(policy, budget.replicas) - in_flight
    cooldown_until = (
        history.last_heal_at + cooldown if history.last_heal_at is not None else None
    )
    ready_now = sum(1 for p in live if p.ready and not _on_lost_node(p, nodes))
    # oldest problem first; pods on lost nodes before the rest
    order = {NODE_LOST: 0, FAILED: 1, CRASH_LOOP: 2, NOT_READY: 3}
    for finding in sorted(replaceable, key=lambda f: (order[f.reason], f.since, f.pod.name)):
        pod = finding.pod
        if resumed_at is not None and finding.since < resumed_at:
            # unhealthy during a storm: many recover when the shared cause goes away
            graced = resumed_at + grace_after_storm(finding.reason, policy)
            if now < graced:
                decision.skipped.append((finding, "Grace: healing resumed after a storm; "
                                         "waiting to see whether the pod recovers"))
                next_check = _earliest(next_check, graced)
                continue
        gen = history.generations.get(pod.name, 0)
        not_before = finding.crossed + backoff(gen, cooldown)
        if now < not_before:
            decision.skipped.append((finding, f"BackOff: replacement #{gen} came back "
                                     f"unhealthy; backing off {backoff(gen, cooldown):.0f}s"))
            next_check = _earliest(next_check, not_before)
            continue
        if cooldown_until is not None and now < cooldown_until:
            decision.skipped.append((finding, f"Cooldown: a heal ran less than "
                                     f"{policy.cooldown} ago"))
            next_check = _earliest(next_check, cooldown_until)
            continue
        if allowed <= 0:
            decision.skipped.append((finding, f"Budget: maxConcurrent {policy.max_concurrent} "
                                     "heals already in flight"))
            continue
        counts_as_ready = pod.ready and finding.reason not in (NODE_LOST, FAILED)
        if counts_as_ready and ready_now - 1 < budget.min_available:
            decision.skipped.append((finding, "Availability: replacing it would leave fewer "
                                     f"than {budget.min_available} pods ready"))
            continue
        method: Method = "Delete" if finding.reason in (NODE_LOST, FAILED) else "Evict"
        decision.replace.append(
            Replacement(pod, finding.reason, finding.since, method, finding.crossed))
        allowed -= 1
        if counts_as_ready:
            ready_now -= 1
    decision.next_check = next_check
    return decision


def _on_lost_node(pod: PodView, nodes: dict[str, NodeView]) -> bool:
    node = nodes.get(pod.node) if pod.node else None
    return node is not None and not node.ready


def observe(history: HealHistory, pods: list[PodView], now: float, window: float) -> list[
    tuple[HealRecord, float]
]:
    """Update the history with what the pods show now; return heals completed with their
    time to recovery (from unhealthy to replacement Ready)."""
    live_uids = {p.uid for p in pods}
    for pod in pods:
        samples = history.restart_samples.setdefault(pod.uid, [])
        if not samples or samples[-1][1] != pod.restarts:
            samples.append((now, pod.restarts))
        # keep one sample at or before the window start, and those after it
        while len(samples) > 1 and samples[1][0] <= now - window:
            samples.pop(0)
    for uid in list(history.restart_samples):
        if uid not in live_uids:
            del history.restart_samples[uid]

    completed: list[tuple[HealRecord, float]] = []
    claimed = {r.replacement for r in history.in_flight if r.replacement}
    by_age = sorted(pods, key=lambda p: (p.created, p.name))
    for record in history.in_flight:
        if record.replacement is None:
            # the Deployment's new pod: created at or after the heal (timestamps are seconds)
            for pod in by_age:
                if pod.created >= math.floor(record.acted_at) and pod.uid != record.pod_uid \
                        and pod.name not in claimed:
                    record.replacement = pod.name
                    claimed.add(pod.name)
                    history.generations[pod.name] = record.generation + 1
                    break
    remaining = []
    by_name = {p.name: p for p in pods}
    for record in history.in_flight:
        successor = by_name.get(record.replacement or "")
        if successor is not None and successor.ready and not successor.terminating:
            ready_at = successor.ready_since if successor.ready_since is not None else now
            completed.append((record, max(0.0, ready_at - record.unhealthy_since)))
        elif now - record.acted_at > HEAL_TIMEOUT_SECONDS:
            completed.append((record, math.nan))
        else:
            remaining.append(record)
    history.in_flight = remaining
    live_names = {p.name for p in pods}
    for name in list(history.generations):
        if name not in live_names:
            del history.generations[name]
    return completed


def record(history: HealHistory, replacement: Replacement, now: float) -> HealRecord:
    """Remember a replacement the operator is about to make."""
    history.last_heal_at = now
    entry = HealRecord(
        pod_name=replacement.pod.name,
        pod_uid=replacement.pod.uid,
        reason=replacement.reason,
        unhealthy_since=replacement.since,
        acted_at=now,
        generation=history.generations.get(replacement.pod.name, 0),
    )
    history.in_flight.append(entry)
    return entry
