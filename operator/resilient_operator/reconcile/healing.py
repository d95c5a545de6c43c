"""The healing actor: what happens when a pod crashes, stays not ready, fails, or sits on a lost
node. It reads the decision state from status (cooldown, heals in flight, backoff, the storm
breaker), asks policy/healing.py what to do, writes the intent to status *before* acting (so a
restart or a new leader never heals twice), then evicts or deletes and explains it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from .. import metrics
from ..builders.children import managed_labels
from ..kube.api import ApiError
from ..policy import conditions, healing
from ..policy.conditions import Problem
from ..resource.models import (
    HealAction,
    HealInFlight,
    HealingStatus,
    PodGeneration,
    ResilientServiceSpec,
    UnhealthyPod,
    parse_duration,
)
from ..resource.times import format_precise, format_time, parse_time
from ..resource.views import PodView
from . import status as status_actor
from .context import NORMAL, WARNING, Context

log = logging.getLogger("resilient_operator.reconcile")

POD_REPLACED = "PodReplaced"
POD_MOVED = "PodMovedFromLostNode"
HEAL_SKIPPED = "HealSkipped"
HEALING_SUSPENDED = "HealingSuspended"
HEALING_RESUMED = "HealingResumed"

EVICTION_RETRY_SECONDS = 5.0
# an intent in status whose pod is still there after this long was never carried out (the
# operator died in between): send it again, for the same pod uid
REDRIVE_AFTER_SECONDS = 5.0


def history_from(state: HealingStatus | None, samples: dict[str, Any]) -> healing.HealHistory:
    """The decision state of healing, from status (and the restart samples from memory)."""
    state = state or HealingStatus()
    return healing.HealHistory(
        last_heal_at=parse_time(state.last_heal_time),
        in_flight=[healing.HealRecord(
            pod_name=r.pod, pod_uid=r.pod_uid, reason=r.reason,
            unhealthy_since=parse_time(r.unhealthy_since) or 0.0,
            acted_at=parse_time(r.acted_at) or 0.0, generation=r.generation,
            replacement=r.replacement) for r in state.in_flight],
        generations={g.pod: g.generation for g in state.generations},
        suspended=state.suspended,
        resumed_at=parse_time(state.resumed_time),
        restart_samples=samples,
    )


def state_from(history: healing.HealHistory, report: HealingStatus) -> HealingStatus:
    """status.healing: the report plus the decision state to keep."""
    return report.model_copy(update={
        "suspended": history.suspended,
        "last_heal_time": format_precise(history.last_heal_at)
        if history.last_heal_at is not None else None,
        "resumed_time": format_precise(history.resumed_at)
        if history.resumed_at is not None else None,
        "in_flight": [HealInFlight(
            pod=r.pod_name, pod_uid=r.pod_uid, reason=r.reason,
            unhealthy_since=format_precise(r.unhealthy_since),
            acted_at=format_precise(r.acted_at), generation=r.generation,
            replacement=r.replacement) for r in history.in_flight],
        "generations": [PodGeneration(pod=k, generation=v)
                        for k, v in sorted(history.generations.items())],
    })


def budget_of(spec: ResilientServiceSpec, capacity: int | None = None) -> healing.Budget:
    """How many pods healing may count on, and how many must stay ready."""
    desired = spec.desired_replicas() if capacity is None else capacity
    return healing.Budget(desired, conditions.required_available(spec, desired))


def heal(ctx: Context, pods: list[PodView], budget: healing.Budget) -> None:
    """Decide and act for the pods healing looks after (the canary's are the rollout's)."""
    spec, now = ctx.spec, ctx.now
    policy = spec.healing
    state = ctx.status.healing or HealingStatus()
    history = history_from(state, ctx.memory.restart_samples)
    window = parse_duration(policy.restart_window)
    for record, seconds in healing.observe(history, pods, now, window):
        if not math.isnan(seconds):
            metrics.TIME_TO_RECOVERY.labels(reason=record.reason).observe(seconds)
    _redrive(ctx, history, pods)
    decision = healing.decide(pods, ctx.nodes, policy, budget, managed_labels(ctx.name),
                              history, now)
    if ctx.unconfirmed_pods:
        # just started: a pod only the priming LIST knows of may be gone already (deleted
        # before the watches began); act once a watch has shown it
        held = [r for r in decision.replace if r.pod.name in ctx.unconfirmed_pods]
        decision.replace = [r for r in decision.replace if r not in held]
        for rep in held:
            decision.skipped.append((next(f for f in decision.unhealthy if f.pod is rep.pod),
                                     "Starting: waiting for the watch to confirm the pod"))
        if held:
            ctx.wake_at(now + 1.0)

    counts: dict[str, int] = {}
    for finding in decision.unhealthy:
        counts[finding.reason] = counts.get(finding.reason, 0) + 1
    for reason in healing.REPLACEABLE:
        metrics.UNHEALTHY_PODS.labels(ctx.namespace, ctx.name, reason).set(counts.get(reason, 0))

    if decision.suspended and not history.suspended:
        ctx.event(WARNING, HEALING_SUSPENDED, decision.storm_message)
    elif history.suspended and not decision.suspended:
        history.resumed_at = now
        ctx.event(NORMAL, HEALING_RESUMED, "fewer pods are unhealthy than the storm threshold: "
                  "healing resumed; pods unhealthy during the storm get a fresh grace period")
    history.suspended = decision.suspended
    metrics.HEALING_SUSPENDED.labels(ctx.namespace, ctx.name).set(
        1 if decision.suspended else 0)
    if decision.suspended:
        ctx.problems.append(Problem(conditions.HEALING_SUSPENDED, decision.storm_message))
    if policy.mode != "Disabled" and healing.max_concurrent(policy, budget.replicas) == 0:
        ctx.report(Problem(conditions.HEALING_CANNOT_ACT, "healing.maxConcurrent is 0: healing "
                           "finds unhealthy pods but can never replace one"))

    totals = {"pods_replaced": state.pods_replaced,
              "pods_moved_from_lost_nodes": state.pods_moved_from_lost_nodes}
    last_action = state.last_action
    acted: dict[str, str] = {}
    if decision.replace and policy.mode == "Enabled":
        # the intent first: a restart or a new leader reads it and never heals twice
        intents = []
        for rep in decision.replace:
            intents.append((rep, healing.record(history, rep, now)))
            key = "pods_moved_from_lost_nodes" if rep.reason == healing.NODE_LOST \
                else "pods_replaced"
            totals[key] += 1
            last_action = HealAction(pod=rep.pod.name, reason=rep.reason,
                                     action="Evicted" if rep.method == "Evict" else "Deleted",
                                     time=format_time(now))
        ctx.status = ctx.status.model_copy(update={"healing": state_from(
            history, state.model_copy(update={**totals, "last_action": last_action}))})
        status_actor.checkpoint(ctx, ctx.status)
        for rep, entry in intents:
            outcome = _act(ctx, rep)
            acted[rep.pod.uid] = outcome
            if outcome in ("blocked", "error", "gone"):
                history.in_flight.remove(entry)
                key = "pods_moved_from_lost_nodes" if rep.reason == healing.NODE_LOST \
                    else "pods_replaced"
                totals[key] -= 1
                history.last_heal_at = parse_time(state.last_heal_time)
                last_action = state.last_action
                if outcome != "gone":
                    ctx.wake_at(now + EVICTION_RETRY_SECONDS)
    elif decision.replace:  # ObserveOnly
        for rep in decision.replace:
            verb = "evict" if rep.method == "Evict" else "delete"
            ctx.event_once(f"observe/{rep.pod.uid}", HEAL_SKIPPED,
                           f"ObserveOnly: would {verb} pod {rep.pod.name} ({rep.reason})",
                           type_=NORMAL)
            metrics.HEALS.labels(ctx.namespace, ctx.name, rep.reason, "observed").inc()
            acted[rep.pod.uid] = "observed"

    skipped = {f.pod.uid: why for f, why in decision.skipped}
    for finding, why in decision.skipped:
        if why != "HealingSuspended":
            ctx.event_once(f"skip/{finding.pod.uid}", HEAL_SKIPPED,
                           f"Not replacing pod {finding.pod.name} ({finding.reason}): {why}",
                           type_=NORMAL)
    hopeless = [f for f in decision.unhealthy if not f.replaceable]
    for finding in hopeless:
        ctx.event_once(f"report/{finding.pod.uid}", HEAL_SKIPPED,
                       f"Pod {finding.pod.name} is {finding.reason}: {finding.message}. "
                       "Not replacing it: fix the pod template.")
    if hopeless:
        names = ", ".join(f"{f.pod.name} ({f.reason})" for f in hopeless[:5])
        ctx.problems.append(Problem(conditions.PODS_NEED_HELP,
                                    f"pods that a replacement cannot help: {names}"))
    live = {f.pod.uid for f in decision.unhealthy} | {p.uid for p in pods}
    for k in list(ctx.memory.warned):
        prefix, _, uid = k.partition("/")
        if prefix in ("skip", "report", "observe") and uid not in live:
            del ctx.memory.warned[k]

    unhealthy = []
    for finding in sorted(decision.unhealthy, key=lambda f: f.pod.name):
        if not finding.replaceable:
            action, message = "Report", finding.message
        elif acted.get(finding.pod.uid) in ("evicted", "deleted", "observed"):
            action = "WouldReplace" if acted[finding.pod.uid] == "observed" else "Replace"
            message = finding.message
        else:
            action = "Wait"
            message = f"{finding.message}; {skipped.get(finding.pod.uid, '')}".rstrip("; ")
        unhealthy.append(UnhealthyPod(name=finding.pod.name, reason=finding.reason,
                                      since=format_time(finding.since), action=action,
                                      message=message))
    report = state.model_copy(update={**totals, "last_action": last_action,
                                      "unhealthy_pods": unhealthy})
    ctx.status = ctx.status.model_copy(update={"healing": state_from(history, report)})
    in_flight_deadline = min(
        (r.acted_at + healing.HEAL_TIMEOUT_SECONDS for r in history.in_flight), default=None)
    ctx.wake_at(decision.next_check)
    ctx.wake_at(in_flight_deadline)


def _act(ctx: Context, rep: healing.Replacement) -> str:
    """Evict or delete one pod; the outcome for status and metrics."""
    ns, svc, pod = ctx.namespace, ctx.name, rep.pod
    try:
        if rep.method == "Evict":
            sent = ctx.api.evict(ns, pod.name, pod.uid)
        else:
            sent = ctx.api.delete("Pod", ns, pod.name, pod.uid)
    except ApiError as e:
        if e.too_many:
            metrics.HEALS.labels(ns, svc, rep.reason, "blocked").inc()
            ctx.event_once(f"skip/{pod.uid}", HEAL_SKIPPED,
                           f"Not replacing pod {pod.name} ({rep.reason}) yet: the disruption "
                           f"budget refuses the eviction ({e.message}); retrying", type_=NORMAL)
            return "blocked"
        metrics.HEALS.labels(ns, svc, rep.reason, "error").inc()
        log.warning("%s/%s: could not replace pod %s: %s", ns, svc, pod.name, e)
        return "error"
    if not sent:
        # the pod is gone already: the cache was behind (nothing was done, nothing to count)
        log.info("%s/%s: pod %s is gone already; not a heal", ns, svc, pod.name)
        ctx.gone_pods.append(pod.uid)
        return "gone"
    result = "evicted" if rep.method == "Evict" else "deleted"
    sent_at = ctx.clock()
    metrics.HEALS.labels(ns, svc, rep.reason, result).inc()
    metrics.REACTION_SECONDS.labels(rep.reason).observe(max(0.0, sent_at - rep.crossed))
    log.info("heal %s/%s pod=%s reason=%s result=%s unhealthy_since=%.3f crossed=%.3f "
             "sent=%.3f", ns, svc, pod.name, rep.reason, result, rep.since, rep.crossed,
             sent_at, extra={"namespace": ns, "service": svc, "pod": pod.name,
                             "reason": rep.reason, "result": result})
    if rep.reason == healing.NODE_LOST:
        node = f" from lost node {pod.node}" if pod.node else ""
        ctx.event(NORMAL, POD_MOVED,
                  f"Deleted pod {pod.name}{node} so it is recreated on a healthy node")
    else:
        how = "Evicted" if rep.method == "Evict" else "Deleted"
        ctx.event(NORMAL, POD_REPLACED,
                  f"{how} pod {pod.name} ({rep.reason}, unhealthy since "
                  f"{format_time(rep.since)}) so the Deployment replaces it")
    return result


def _redrive(ctx: Context, history: healing.HealHistory, pods: list[PodView]) -> None:
    """Heals recorded in status whose pod is still there and not terminating: the operator
    stopped between writing the intent and acting. Act now, on the same pod (not a new heal)."""
    by_uid = {p.uid: p for p in pods}
    intended = {r.pod_uid for r in history.in_flight}
    for uid in [u for u in ctx.memory.redriven if u not in intended]:
        del ctx.memory.redriven[uid]
    for record in list(history.in_flight):
        pod = by_uid.get(record.pod_uid)
        if pod is None or pod.terminating or record.replacement is not None:
            continue
        if pod.name in ctx.unconfirmed_pods:  # only the priming LIST knows it: maybe gone
            ctx.wake_at(ctx.now + 1.0)
            continue
        # the watch may lag the action by a moment: one re-send per REDRIVE_AFTER_SECONDS
        last = max(record.acted_at, ctx.memory.redriven.get(record.pod_uid, 0.0))
        if ctx.now - last < REDRIVE_AFTER_SECONDS:
            ctx.wake_at(last + REDRIVE_AFTER_SECONDS)
            continue
        ctx.memory.redriven[record.pod_uid] = ctx.now
        log.info("%s/%s: heal of pod %s was recorded but not carried out; sending it now",
                 ctx.namespace, ctx.name, pod.name)
        try:
            if record.reason in (healing.NODE_LOST, healing.FAILED):
                sent = ctx.api.delete("Pod", ctx.namespace, pod.name, pod.uid)
            else:
                sent = ctx.api.evict(ctx.namespace, pod.name, pod.uid)
            if not sent:  # gone: the cache was behind; the heal happened
                ctx.gone_pods.append(pod.uid)
        except ApiError as e:
            if not e.too_many:
                raise
            history.in_flight.remove(record)  # the budget says no: decided afresh below
