"""Pod and node bodies turned into the views the decisions read (resource/views.py)."""

from __future__ import annotations

from typing import Any

from ..resource.times import parse_time
from ..resource.views import NodeView, PodView


def pod_view(pod: dict[str, Any], seen_ready_change: float | None = None) -> PodView:
    """The decisions' view of a pod body."""
    meta = pod.get("metadata", {})
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready_cond = conditions.get("Ready", {})
    scheduled = conditions.get("PodScheduled", {})
    restarts = 0
    waiting = None
    oom = False
    for cs in status.get("containerStatuses") or []:
        restarts += int(cs.get("restartCount") or 0)
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason and waiting is None:
            waiting = reason
        terminated = (cs.get("lastState") or {}).get("terminated") or \
            (cs.get("state") or {}).get("terminated") or {}
        oom = oom or terminated.get("reason") == "OOMKilled"
    labels = dict(meta.get("labels") or {})
    return PodView(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        labels=labels,
        created=parse_time(meta.get("creationTimestamp")) or 0.0,
        phase=status.get("phase") or "Pending",
        ready=ready_cond.get("status") == "True",
        ready_since=parse_time(ready_cond.get("lastTransitionTime")),
        node=(pod.get("spec") or {}).get("nodeName"),
        restarts=restarts,
        waiting_reason=waiting,
        unschedulable=scheduled.get("status") == "False"
        and scheduled.get("reason") == "Unschedulable",
        terminating=bool(meta.get("deletionTimestamp")),
        seen_ready_change=seen_ready_change,
        oom_killed=oom,
        disrupted=conditions.get("DisruptionTarget", {}).get("status") == "True",
        template_hash=labels.get("pod-template-hash"),
    )


def node_view(node: dict[str, Any]) -> NodeView:
    """The decisions' view of a node body."""
    meta = node.get("metadata", {})
    conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready", {})
    since = parse_time(ready.get("lastTransitionTime")) or parse_time(
        meta.get("creationTimestamp")) or 0.0
    return NodeView(
        name=meta.get("name", ""),
        ready=ready.get("status") == "True",
        since=since,
        zone=(meta.get("labels") or {}).get("topology.kubernetes.io/zone"),
    )
