"""The children actor: every role's wanted object applied when it differs from the live one,
drift restored (including what server-side apply cannot undo), children the spec no longer
wants removed, and a child the API server refuses reported, never retried in a tight loop.

What happens when someone edits, deletes or blocks a child is in this file.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import metrics
from ..builders import children as builders
from ..builders.children import CANARY, ROLES_BY_NAME, Tracks
from ..kube.api import ApiError
from ..policy import conditions, drift
from ..policy.conditions import Problem
from .context import NORMAL, Context

log = logging.getLogger("resilient_operator.reconcile")

CREATED = "Created"
UPDATED = "Updated"
RESTORED = "DriftRestored"
REMOVED = "Removed"

RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def retry_delay(failures: int) -> float:
    """Seconds before writing a refused child again: growing, bounded."""
    return min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, failures - 1))


def wanted_children(ctx: Context, tracks: Tracks) -> dict[str, dict[str, Any] | None]:
    """Every role's wanted object; a disruption budget that would block every eviction is
    reported and left as it is (None here means: do not touch)."""
    wanted = builders.children(ctx.owner, ctx.spec, tracks)
    pdb_problem = conditions.pdb_problem(ctx.spec)
    if pdb_problem is not None:
        ctx.report(pdb_problem)
        wanted.pop("disruption-budget")
    else:
        ctx.memory.warned.pop(conditions.PDB_UNSATISFIABLE, None)
    return wanted


def sync(ctx: Context, tracks: Tracks) -> None:
    """Bring every child in line with the spec (the order of ROLES: Deployments first)."""
    wanted = wanted_children(ctx, tracks)
    uid = ctx.body["metadata"]["uid"]
    pending: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for role, obj in wanted.items():
        actual = ctx.children.get(role)
        if obj is None:
            if actual is not None and _owned_by(actual, uid):
                _remove(ctx, role, actual)
            continue
        if not _needs_write(ctx, role, obj, actual):
            continue
        pending.append((role, obj, actual))

    # a spec whose children the API server refuses changes no child: when more than one
    # existing child is about to change, all of them are validated first (server-side dry run)
    if sum(1 for _, _, actual in pending if actual is not None) > 1:
        for role, obj, _ in pending:
            if _held_back(ctx, role, obj):
                return
            try:
                ctx.api.apply(obj, dry_run=True)
            except ApiError as e:
                if e.transient or e.namespace_terminating:
                    raise
                _refused(ctx, role, obj, e)
                return
    for role, obj, actual in pending:
        if not _write(ctx, role, obj, actual) and ROLES_BY_NAME[role].kind == "Deployment":
            return  # the pod template was refused: nothing else of this spec is written


def _needs_write(ctx: Context, role: str, wanted: dict[str, Any],
                 actual: dict[str, Any] | None) -> bool:
    digest = wanted["metadata"]["annotations"][builders.APPLIED_HASH]
    if actual is None:
        return True
    paths = list(ROLES_BY_NAME[role].exact_maps)
    if drift.stray_keys(wanted, actual, paths) or drift.differs(wanted, actual):
        return True
    ctx.memory.applied[role] = digest
    _clear_failure(ctx, role)
    return False


def _held_back(ctx: Context, role: str, wanted: dict[str, Any]) -> bool:
    """A child refused before, with the same wanted object, waits for its retry time."""
    digest = wanted["metadata"]["annotations"][builders.APPLIED_HASH]
    failed = ctx.memory.failures.get(role)
    if failed is None or failed[0] != digest or ctx.now >= failed[2]:
        return False
    message = ctx.memory.warned.get(f"{conditions.CHILD_REJECTED}/{role}")
    if message:
        ctx.problems.append(Problem(conditions.CHILD_REJECTED, message))
    ctx.wake_at(failed[2])
    return True


def _write(ctx: Context, role: str, wanted: dict[str, Any],
           actual: dict[str, Any] | None) -> bool:
    """Create, update or restore one child; False when it could not be written."""
    kind, name = wanted["kind"], wanted["metadata"]["name"]
    digest = wanted["metadata"]["annotations"][builders.APPLIED_HASH]
    if _held_back(ctx, role, wanted):
        return False
    if actual is None:
        action, reason = ("restored", RESTORED) if role in ctx.memory.applied else ("created",
                                                                                  CREATED)
    elif ctx.memory.applied.get(role) == digest or \
            actual["metadata"].get("annotations", {}).get(builders.APPLIED_HASH) == digest:
        action, reason = "restored", RESTORED
    else:
        action, reason = "updated", UPDATED
    try:
        if actual is None:
            # not in the cache: check the API before creating (one GET, on creation only)
            existing = ctx.api.get(kind, ctx.namespace, name)
            if existing is not None and not _owned_by(existing, ctx.body["metadata"]["uid"]):
                message = (f"a {kind} named {name} already exists and is not owned by this "
                           "ResilientService; the operator leaves it alone: delete or rename it")
                ctx.report(Problem(conditions.CHILD_CONFLICT, message),
                           key=f"{conditions.CHILD_CONFLICT}/{role}")
                return False
            if existing is not None and not drift.differs(wanted, existing):
                ctx.memory.applied[role] = digest  # the watch has not caught up yet
                return True
            actual = existing
        patch = drift.stray_keys(wanted, actual, list(ROLES_BY_NAME[role].exact_maps))
        # entries another writer added to a list we set: server-side apply keeps them
        patch.update(drift.list_restore_patch(wanted, actual))
        if patch:
            ctx.api.merge_patch(kind, ctx.namespace, name, patch)
        ctx.api.apply(wanted)
    except ApiError as e:
        if e.transient or e.namespace_terminating:
            raise
        _refused(ctx, role, wanted, e)
        return False
    ctx.memory.applied[role] = digest
    _clear_failure(ctx, role)
    ctx.memory.warned.pop(f"{conditions.CHILD_CONFLICT}/{role}", None)
    metrics.CHILD_WRITES.labels(kind=kind, action=action).inc()
    verb = {"created": "Created", "restored": "Restored drifted", "updated": "Updated"}[action]
    ctx.event(NORMAL, reason, f"{verb} {kind} {name}")
    return True


def _refused(ctx: Context, role: str, wanted: dict[str, Any], error: ApiError) -> None:
    """The API server refused a child, whatever the code: say so at once (condition and
    event), and try again only after a growing delay or when the spec changes."""
    digest = wanted["metadata"]["annotations"][builders.APPLIED_HASH]
    before = ctx.memory.failures.get(role)
    count = before[1] + 1 if before and before[0] == digest else 1
    retry_at = ctx.now + retry_delay(count)
    ctx.memory.failures[role] = (digest, count, retry_at)
    ctx.wake_at(retry_at)
    kind = wanted["kind"]
    message = (f"the API server refused the {kind} {wanted['metadata']['name']} "
               f"({error.status} {error.reason}): {error.message}")
    log.warning("%s/%s: %s (attempt %d; next in %.0fs)", ctx.namespace, ctx.name, message,
                count, retry_at - ctx.now)
    metrics.CHILD_WRITES.labels(kind=kind, action="refused").inc()
    ctx.report(Problem(conditions.CHILD_REJECTED, message),
               key=f"{conditions.CHILD_REJECTED}/{role}")


def _clear_failure(ctx: Context, role: str) -> None:
    ctx.memory.failures.pop(role, None)
    ctx.memory.warned.pop(f"{conditions.CHILD_REJECTED}/{role}", None)


def _remove(ctx: Context, role: str, actual: dict[str, Any]) -> None:
    kind, name = actual["kind"], actual["metadata"]["name"]
    ctx.api.delete(kind, ctx.namespace, name, actual["metadata"].get("uid"))
    ctx.memory.applied.pop(role, None)
    metrics.CHILD_WRITES.labels(kind=kind, action="removed").inc()
    why = "the rollout no longer needs it" if role == CANARY else "no longer in the spec"
    ctx.event(NORMAL, REMOVED, f"Removed {kind} {name}: {why}")
