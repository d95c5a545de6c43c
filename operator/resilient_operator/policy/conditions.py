"""Status conditions in the Kubernetes shape, computed from what the children report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..resource.models import ResilientServiceSpec, resolve_int_or_percent
from ..resource.times import parse_time

READY = "Ready"
AVAILABLE = "Available"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
PAUSED = "Paused"

# Reasons
MIN_AVAILABLE = "MinimumReplicasAvailable"
BELOW_MIN = "MinimumReplicasUnavailable"
SCALED_TO_ZERO = "ScaledToZero"
CREATING = "Creating"
ROLLING_OUT = "RollingOut"
SCALING = "Scaling"
ROLLOUT_COMPLETE = "RolloutComplete"
AS_EXPECTED = "AsExpected"
ALL_GOOD = "AllGood"
INVALID_SPEC = "InvalidSpec"
CHILD_REJECTED = "ChildRejected"
CHILD_CONFLICT = "ChildConflict"
PDB_UNSATISFIABLE = "DisruptionBudgetUnsatisfiable"
AUTOSCALER_BLIND = "AutoscalerCannotReadMetrics"
HEALING_SUSPENDED = "HealingSuspended"
PODS_NEED_HELP = "PodsNeedAttention"
HEALING_CANNOT_ACT = "HealingCannotAct"
PROGRESS_DEADLINE = "ProgressDeadlineExceeded"

# default unavailability tolerated without an availability policy (as a Deployment's rollout)
DEFAULT_MAX_UNAVAILABLE = "25%"


@dataclass(frozen=True)
class Problem:
    """Something that needs a human, for the Degraded condition."""

    reason: str
    message: str


def required_available(spec: ResilientServiceSpec, replicas: int) -> int:
    """Pods that must be ready for the service to count as Available."""
    avail = spec.availability
    if avail is not None and avail.min_available is not None:
        return min(replicas, resolve_int_or_percent(avail.min_available, replicas, round_up=True))
    max_unavailable = DEFAULT_MAX_UNAVAILABLE
    if avail is not None and avail.max_unavailable is not None:
        max_unavailable = avail.max_unavailable  # type: ignore[assignment]
    down = resolve_int_or_percent(max_unavailable, replicas, round_up=True)
    return max(0 if replicas == 0 else 1, replicas - down)


def pdb_problem(spec: ResilientServiceSpec) -> Problem | None:
    """A disruption budget that can never allow an eviction with the replicas asked."""
    avail = spec.availability
    replicas = spec.desired_replicas()
    if avail is None or replicas == 0:
        return None
    if avail.min_available is not None:
        need = resolve_int_or_percent(avail.min_available, replicas, round_up=True)
        if need >= replicas:
            return Problem(PDB_UNSATISFIABLE, (
                f"availability.minAvailable {avail.min_available} needs {need} of {replicas} "
                "replicas up at all times, so no pod may ever be evicted: node drains and "
                "healing would be blocked. Lower availability.minAvailable below the replicas "
                "or raise replicas."))
    if avail.max_unavailable is not None:
        down = resolve_int_or_percent(avail.max_unavailable, replicas, round_up=True)
        if down == 0:
            return Problem(PDB_UNSATISFIABLE, (
                f"availability.maxUnavailable {avail.max_unavailable} allows no pod of {replicas} "
                "to be down, so no pod may ever be evicted: node drains and healing would be "
                "blocked. Raise availability.maxUnavailable to at least 1."))
    return None


# an autoscaler has no metrics for its first minute or so: only then is it a problem
AUTOSCALER_GRACE_SECONDS = 90.0


def autoscaler_problem(
    hpa: dict[str, Any] | None, now: float
) -> tuple[Problem | None, float | None]:
    """The HPA reports, for longer than a grace period, that it cannot compute a scale
    (usually: no metrics). Also returns when to look again if it is within the grace."""
    if not hpa:
        return None, None
    for cond in (hpa.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ScalingActive" and cond.get("status") == "False":
            if cond.get("reason") == "ScalingDisabled":
                continue
            since = parse_time(cond.get("lastTransitionTime")) or now
            if now < since + AUTOSCALER_GRACE_SECONDS:
                return None, since + AUTOSCALER_GRACE_SECONDS
            return Problem(AUTOSCALER_BLIND, (
                f"the autoscaler cannot scale: {cond.get('reason')}: {cond.get('message', '')}. "
                "Check that metrics-server runs and the containers set resource requests for "
                "the autoscaling targets.")), None
    return None, None


def _condition(type_: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason,
            "message": message}


def replica_counts(deployments: list[dict[str, Any]]) -> dict[str, int]:
    """Pods of the service, summed over its Deployments (the stable and canary tracks)."""
    counts = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "updatedReplicas": 0}
    for deployment in deployments:
        dstatus = deployment.get("status") or {}
        for k in counts:
            counts[k] += int(dstatus.get(k) or 0)
    return counts


def compute(
    spec: ResilientServiceSpec,
    generation: int,
    deployment: dict[str, Any] | None,
    problems: list[Problem],
    counts: dict[str, int] | None = None,
    progressing_override: tuple[bool, str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Conditions (without times) and replica counts, from the stable Deployment's status
    (``counts`` over every track when given; ``progressing_override`` while a rollout runs)."""
    desired = spec.desired_replicas()
    dstatus = (deployment or {}).get("status") or {}
    if counts is None:
        counts = replica_counts([deployment] if deployment else [])
    need = required_available(spec, desired)
    if desired == 0:
        available = _condition(AVAILABLE, True, SCALED_TO_ZERO, "scaled to zero replicas")
    elif counts["availableReplicas"] >= need:
        available = _condition(AVAILABLE, True, MIN_AVAILABLE,
                               f"{counts['availableReplicas']}/{desired} available, {need} needed")
    else:
        available = _condition(AVAILABLE, False, BELOW_MIN,
                               f"{counts['availableReplicas']}/{desired} available, {need} needed")

    dgen = (deployment or {}).get("metadata", {}).get("generation")
    settled = dstatus.get("observedGeneration") == dgen
    if deployment is None:
        progressing = _condition(PROGRESSING, True, CREATING, "creating the Deployment")
    elif not settled or counts["updatedReplicas"] < desired or counts["replicas"] > \
            counts["updatedReplicas"]:
        progressing = _condition(
            PROGRESSING, True, ROLLING_OUT,
            f"{counts['updatedReplicas']}/{desired} pods updated, {counts['replicas']} in all")
    elif counts["replicas"] != desired or counts["readyReplicas"] < desired:
        progressing = _condition(
            PROGRESSING, True, SCALING,
            f"{counts['readyReplicas']}/{desired} ready")
    else:
        progressing = _condition(PROGRESSING, False, ROLLOUT_COMPLETE,
                                 f"{desired}/{desired} pods updated and ready")
    if progressing_override is not None:
        progressing = _condition(PROGRESSING, *progressing_override)
    for cond in dstatus.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == PROGRESS_DEADLINE:
            problems = [*problems, Problem(PROGRESS_DEADLINE, (
                f"the rollout made no progress: {cond.get('message', '')}"))]

    if problems:
        degraded = _condition(DEGRADED, True, problems[0].reason,
                              "; ".join(p.message for p in problems))
    else:
        degraded = _condition(DEGRADED, False, AS_EXPECTED, "nothing needs attention")

    if available["status"] != "True":
        ready = _condition(READY, False, available["reason"], available["message"])
    elif degraded["status"] == "True":
        ready = _condition(READY, False, degraded["reason"], degraded["message"])
    elif progressing["status"] == "True":
        ready = _condition(READY, False, progressing["reason"], progressing["message"])
    else:
        ready = _condition(READY, True, ALL_GOOD, available["message"])
    conditions = [ready, available, progressing, degraded]
    for cond in conditions:
        cond["observedGeneration"] = generation
    return conditions, counts


def paused(phase: str | None, standing: bool, generation: int) -> dict[str, Any]:
    """The Paused condition: a rollout waits for a promote, or spec.rollout.paused holds it."""
    if phase == "Paused":
        reason = "PausedBySpec" if standing else "WaitingForPromote"
        cond = _condition(PAUSED, True, reason, "spec.rollout.paused is true" if standing
                          else "a pause step waits for `kubectl rsvc promote`")
    else:
        cond = _condition(PAUSED, False, "NotPaused", "no rollout step is paused")
    cond["observedGeneration"] = generation
    return cond


def state_of(conditions: list[dict[str, Any]]) -> str:
    """The one-word summary for `kubectl get`."""
    by_type = {c["type"]: c for c in conditions}
    if by_type[READY]["status"] == "True":
        return "Ready"
    if by_type[AVAILABLE]["status"] != "True":
        return "Unavailable"
    if by_type[DEGRADED]["status"] == "True":
        return "Degraded"
    return "Progressing"


def with_times(
    new: list[dict[str, Any]], old: list[dict[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Stamp lastTransitionTime: kept from the old condition unless the status changed."""
    previous = {c.get("type"): c for c in old}
    out = []
    for cond in new:
        before = previous.get(cond["type"])
        stamp = before.get("lastTransitionTime") if before and \
            before.get("status") == cond["status"] else now
        out.append({**cond, "lastTransitionTime": stamp or now})
    return out
