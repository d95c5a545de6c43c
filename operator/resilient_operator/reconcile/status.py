"""The status actor: the whole new status is built in memory from the status models and written
once, as a merge patch of what changed; nothing is written when nothing changed."""

from __future__ import annotations

from typing import Any

import pydantic

from .. import metrics
from ..builders.children import STABLE, selector_string
from ..kube.api import ApiError
from ..policy import conditions
from ..policy.conditions import Problem
from ..resource.models import ResilientServiceStatus
from ..resource.times import format_time
from .context import Context, Memory


def current(body: dict[str, Any], memory: Memory) -> dict[str, Any]:
    """The status as last written: ours when the cache has not caught up with our write."""
    rv = body["metadata"].get("resourceVersion", "")
    if memory.written is not None and rv in memory.written[0]:
        return memory.written[1]
    memory.written = None
    memory.last_written_rv = None
    return body.get("status") or {}


def parse(status: dict[str, Any]) -> ResilientServiceStatus:
    """The status models of a status body; what does not parse starts afresh."""
    try:
        return ResilientServiceStatus.model_validate(status)
    except pydantic.ValidationError:
        healing = status.get("healing") or {}
        kept = {"healing": {k: healing[k] for k in ("podsReplaced", "podsMovedFromLostNodes")
                            if k in healing}}
        return ResilientServiceStatus.model_validate(kept)


def dump(status: ResilientServiceStatus) -> dict[str, Any]:
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns ``old`` into ``new`` (lists are replaced whole)."""
    patch: dict[str, Any] = {}
    for k, v in new.items():
        before = old.get(k)
        if isinstance(v, dict) and isinstance(before, dict):
            sub = merge_diff(before, v)
            if sub:
                patch[k] = sub
        elif before != v:
            patch[k] = v
    for k in old:
        if k not in new:
            patch[k] = None
    return patch


def write(ctx: Context, new: dict[str, Any]) -> None:
    """Write ``new`` as the status if it differs from the status as last written."""
    old = current(ctx.body, ctx.memory)
    patch = merge_diff(old, new)
    if not patch:
        return
    try:
        response = ctx.api.patch_status(ctx.namespace, ctx.name, patch)
    except ApiError as e:
        if e.not_found:
            return
        raise
    remember(ctx.body, ctx.memory, response, new)
    ctx.status = parse(new)


def remember(body: dict[str, Any], memory: Memory, response: dict[str, Any] | None,
             new: dict[str, Any]) -> None:
    """Keep what we wrote until the cache shows it: every version older than our last write is
    stale (the one the cache had, and those our earlier writes produced)."""
    stale = set(memory.written[0]) if memory.written else set()
    stale.add(body["metadata"].get("resourceVersion", ""))
    if memory.last_written_rv:
        stale.add(memory.last_written_rv)
    memory.last_written_rv = ((response or {}).get("metadata") or {}).get("resourceVersion")
    memory.written = (frozenset(stale), new)


def checkpoint(ctx: Context, status: ResilientServiceStatus) -> None:
    """Write decision state before acting on it (a restart never repeats the action)."""
    write(ctx, dump(status))


def build(ctx: Context, progressing: tuple[bool, str, str] | None = None) -> dict[str, Any]:
    """The whole new status from the context: counts, conditions, the actors' reports."""
    spec = ctx.spec
    deployments = [d for d in ctx.children.values() if d.get("kind") == "Deployment"]
    counts = conditions.replica_counts(deployments)
    old = ctx.status
    conds, counts = conditions.compute(spec, ctx.generation, ctx.children.get(STABLE),
                                       ctx.problems, counts, progressing)
    old_conds = [c.model_dump(by_alias=True, exclude_none=True) for c in old.conditions]
    conds.append(conditions.paused(ctx.status.rollout.phase if ctx.status.rollout else None,
                                   ctx.spec.rollout.paused, ctx.generation))
    conds = conditions.with_times(conds, old_conds, format_time(ctx.now))
    _export(ctx, spec, conds, counts)
    new = dump(old)
    new.update({
        "observedGeneration": ctx.generation,
        **counts,
        "desiredReplicas": spec.desired_replicas(),
        "selector": selector_string(ctx.name),
        "state": conditions.state_of(conds),
        "conditions": conds,
    })
    return new


def _export(ctx: Context, spec: Any, conds: list[dict[str, Any]], counts: dict[str, int]) -> None:
    """The series an availability SLO is computed from."""
    up = any(c["type"] == conditions.AVAILABLE and c["status"] == "True" for c in conds)
    labels = (ctx.namespace, ctx.name)
    metrics.SERVICE_AVAILABLE.labels(*labels).set(1 if up else 0)
    metrics.SERVICE_READY_PODS.labels(*labels).set(counts.get("readyReplicas", 0))
    metrics.SERVICE_REQUIRED_PODS.labels(*labels).set(
        conditions.required_available(spec, spec.desired_replicas()))


def invalid(ctx_body: dict[str, Any], memory: Memory, generation: int, problem: Problem,
            now: float) -> dict[str, Any]:
    """The status of a resource whose spec cannot be used: Degraded and not Ready; the rest
    (counts, healing state) as it was."""
    old = current(ctx_body, memory)
    conds: list[dict[str, Any]] = [
        {"type": conditions.READY, "status": "False", "reason": problem.reason,
         "message": problem.message, "observedGeneration": generation},
        {"type": conditions.DEGRADED, "status": "True", "reason": problem.reason,
         "message": problem.message, "observedGeneration": generation},
    ]
    kept = [c for c in old.get("conditions") or []
            if c.get("type") not in (conditions.READY, conditions.DEGRADED)]
    return {**old, "observedGeneration": generation, "state": "Degraded",
            "conditions": conditions.with_times(conds, old.get("conditions") or [],
                                                format_time(now)) + kept}
