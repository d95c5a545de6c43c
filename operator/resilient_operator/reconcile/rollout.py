"""The rollout actor: what happens when spec.template changes, when a canary pod crashes, and
when someone runs `kubectl rsvc promote|abort|retry`. It reads the rollout state from status,
asks policy/rollout.py for the next state and the tracks, writes a changed state to status
*before* the tracks are applied (so no step or abort happens twice), posts the events and
keeps the metrics.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from decimal import Decimal
from typing import Any

from .. import metrics
from ..builders.children import (
    CANARY,
    REVISION,
    STABLE,
    TRACK_LABEL,
    Tracks,
    pod_template,
    selector_string,
    template_hash,
)
from ..kube.api import ApiError
from ..policy import rollout as policy
from ..policy.conditions import Problem
from ..policy.drift import quantity
from ..resource.models import COMMANDS, RolloutStatus
from ..resource.times import parse_time
from ..resource.views import PodView
from . import status as status_actor
from .context import Context

log = logging.getLogger("resilient_operator.reconcile")

ROLLOUT_ABORTED = "RolloutAborted"
# the parts of status.rollout a decision depends on: a change is written before acting
DECISION_FIELDS = ("phase", "step_index", "step_started", "aborted_revision", "commands",
                   "last_abort", "history")


def track(deployment: dict[str, Any] | None) -> policy.Track:
    """A track as its Deployment reports it."""
    if deployment is None:
        return policy.Track()
    meta, spec = deployment["metadata"], deployment.get("spec") or {}
    status = deployment.get("status") or {}
    # nulls (creationTimestamp: null) would be dropped by the status merge patch: drop them
    # here, so the template kept in status is the one applied
    template = _without_nulls(copy.deepcopy(spec.get("template")))
    return policy.Track(
        exists=True,
        replicas=int(spec.get("replicas", 1)),
        available=int(status.get("availableReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        pods=int(status.get("replicas") or 0),
        settled=status.get("observedGeneration") == meta.get("generation"),
        revision=(meta.get("annotations") or {}).get(REVISION),
        template=template,
    )


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def is_canary(pod: PodView) -> bool:
    return pod.labels.get(TRACK_LABEL) == CANARY


def revision_of(ctx: Context) -> str:
    """The revision of spec.template: a digest of the pod template the operator builds."""
    return template_hash(pod_template(ctx.owner, ctx.spec))


def run(ctx: Context) -> Tracks:
    """Decide the rollout's next state; return the tracks to apply."""
    annotations = ctx.body["metadata"].get("annotations") or {}
    seen = policy.Observed(
        revision=revision_of(ctx),
        total=ctx.spec.desired_replicas(),
        stable=track(ctx.children.get(STABLE)),
        canary=track(ctx.children.get(CANARY)),
        canary_pods=[p for p in ctx.pods if is_canary(p)],
        stable_pods=[p for p in ctx.pods if not is_canary(p)],
        nodes=ctx.nodes,
        commands={k: str(v) for k, v in annotations.items() if k in COMMANDS},
    )
    before = ctx.status.rollout
    if policy.wants_more(ctx.spec, before, seen.total):
        seen = dataclasses.replace(seen, stable_cpu_utilization=_stable_cpu(ctx, seen))
    plan = policy.decide(ctx.spec, seen, before, ctx.now)
    after = plan.state
    for type_, reason, message in plan.events:
        ctx.event_once(f"rollout/{reason}", reason, message, type_=type_)
    _measure(ctx, before, plan)
    if _decision(before) != _decision(after) and after.phase in policy.ACTIVE:
        # the decision first, then the action: a restart continues from here (a rollout that
        # ends is written with the rest of the status: done again, it ends the same way)
        ctx.status = ctx.status.model_copy(update={"rollout": after})
        status_actor.checkpoint(ctx, ctx.status)
    ctx.status = ctx.status.model_copy(update={"rollout": after})
    ctx.wake_at(plan.wake_at)
    if after.phase in (policy.ABORTING, policy.ABORTED) and \
            after.aborted_revision == seen.revision and after.last_abort is not None:
        ctx.problems.append(Problem(ROLLOUT_ABORTED, (
            f"the rollout of revision {after.aborted_revision} was aborted "
            f"({after.last_abort.reason}: {after.last_abort.message}); the stable revision "
            f"{after.stable_revision} keeps serving. Fix the template, or `kubectl rsvc retry`")))
    return plan.tracks


def rolling_out(ctx: Context) -> bool:
    """A rollout is under way: canary pods are the rollout's to judge, not healing's."""
    state = ctx.status.rollout
    return state is not None and state.phase in policy.ACTIVE


def progressing(ctx: Context) -> tuple[bool, str, str] | None:
    """The Progressing condition while a rollout runs (None: the Deployments decide)."""
    state = ctx.status.rollout
    if state is None or state.phase not in policy.ACTIVE:
        return None
    reason = {policy.PROGRESSING: "RolloutInProgress", policy.PAUSED: "RolloutPaused",
              policy.PROMOTING: "RolloutPromoting", policy.ABORTING: "RolloutAborting"}
    return True, reason[state.phase], state.message or f"rolling out {state.revision}"


def _stable_cpu(ctx: Context, seen: policy.Observed) -> float | None:
    """Average CPU use of the stable pods, percent of their requests (metrics.k8s.io); None
    when metrics or requests are missing. One LIST, only while the autoscaler asks for more
    during a rollout."""
    template = (seen.stable.template or {}).get("spec") or {}
    request = sum((quantity(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
                   or Decimal(0)) for c in template.get("containers") or [])
    if not request:
        return None
    stable = {p.name for p in seen.stable_pods if not p.terminating}
    try:
        items = ctx.api.list("PodMetrics", ctx.namespace, selector_string(ctx.name))
    except ApiError as e:
        log.info("%s/%s: no pod metrics (%s)", ctx.namespace, ctx.name, e)
        return None
    used = [float(sum((quantity((c.get("usage") or {}).get("cpu")) or Decimal(0))
                      for c in item.get("containers") or []))
            for item in items if item.get("metadata", {}).get("name") in stable]
    if not used:
        return None
    return sum(used) / len(used) / float(request) * 100


def _decision(state: RolloutStatus | None) -> dict[str, Any]:
    state = state or RolloutStatus()
    fields = {k: getattr(state, k) for k in DECISION_FIELDS}
    if state.phase in policy.ACTIVE:
        fields["revision"] = state.revision
    return fields


def _measure(ctx: Context, before: RolloutStatus | None, plan: policy.Plan) -> None:
    ns, svc, after = ctx.namespace, ctx.name, plan.state
    if after.step_index is not None and after.phase in policy.ACTIVE:
        metrics.ROLLOUT_STEP.labels(ns, svc).set(after.step_index)
    metrics.ROLLOUT_WEIGHT.labels(ns, svc).set(after.actual_weight)
    started = parse_time((before.started if before else None) or after.started)
    for result in plan.results:
        metrics.ROLLOUTS.labels(ns, svc, result.lower()).inc()
        if started is not None:
            metrics.ROLLOUT_SECONDS.labels(result.lower()).observe(max(0.0, ctx.now - started))
        if result == "Promoted":
            metrics.DEPLOYMENTS.labels(ns, svc).inc()
        if result == "Aborted":
            metrics.CHANGE_FAILURES.labels(ns, svc).inc()
    if plan.abort_reason is not None:
        metrics.ROLLOUT_ABORTS.labels(plan.abort_reason).inc()
        bad = parse_time(after.first_bad_signal)
        if bad is not None:
            metrics.ABORT_DECISION_SECONDS.observe(max(0.0, ctx.now - bad))
    was_aborting = before is not None and before.phase == policy.ABORTING
    if was_aborting and after.phase == policy.ABORTED:
        bad = parse_time(after.first_bad_signal) or parse_time(
            after.last_abort.time if after.last_abort else None)
        if bad is not None:
            metrics.TIME_TO_RESTORE.observe(max(0.0, ctx.now - bad))
