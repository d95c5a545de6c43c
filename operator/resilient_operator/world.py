"""An in-memory view of the watched world: ResilientServices, their children, pods and nodes.

Filled from watch events (see handlers.py), read by the reconciler, so a reconcile lists
nothing. Objects are kept trimmed to what the operator reads.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from . import models
from .builders import CHILD_KINDS
from .healing import NodeView, PodView

Key = tuple[str, str]  # (namespace, name) of a ResilientService


def parse_time(text: str | None) -> float | None:
    """Epoch seconds of a Kubernetes timestamp."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def format_time(epoch: float) -> str:
    """A Kubernetes timestamp (RFC 3339, seconds)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_key(meta: dict[str, Any]) -> Key | None:
    """The ResilientService a child or pod belongs to, from the operator's labels."""
    labels = meta.get("labels") or {}
    if labels.get(models.LABEL_MANAGED_BY) != models.MANAGED_BY:
        return None
    name = labels.get(models.LABEL_INSTANCE)
    return (meta.get("namespace", ""), name) if name else None


def pod_view(pod: dict[str, Any]) -> PodView:
    """The healing view of a pod body."""
    meta = pod.get("metadata", {})
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready_cond = conditions.get("Ready", {})
    scheduled = conditions.get("PodScheduled", {})
    restarts = 0
    waiting = None
    for cs in status.get("containerStatuses") or []:
        restarts += int(cs.get("restartCount") or 0)
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason and waiting is None:
            waiting = reason
    return PodView(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        labels=dict(meta.get("labels") or {}),
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
    )


def node_view(node: dict[str, Any]) -> NodeView:
    """The healing view of a node body."""
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


class World:
    """Thread-safe cache; event handlers write, reconcile workers read snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.resources: dict[Key, dict[str, Any]] = {}
        self.children: dict[Key, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.pods: dict[Key, dict[str, PodView]] = defaultdict(dict)
        self.pods_by_node: dict[str, Counter[Key]] = defaultdict(Counter)
        self._pod_node: dict[tuple[Key, str], str] = {}
        self.nodes: dict[str, NodeView] = {}

    # -- writes (from watch events) ------------------------------------------------------

    def set_resource(self, body: dict[str, Any], deleted: bool) -> Key:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            if deleted:
                self.resources.pop(key, None)
            else:
                self.resources[key] = body
        return key

    def set_child(self, kind: str, body: dict[str, Any], deleted: bool) -> Key | None:
        meta = body.get("metadata", {})
        key = owner_key(meta)
        if key is None or meta.get("name") != key[1]:
            return None
        with self._lock:
            if deleted:
                self.children[key].pop(kind, None)
            else:
                self.children[key][kind] = body
        return key

    def set_pod(self, body: dict[str, Any], deleted: bool) -> Key | None:
        key = owner_key(body.get("metadata", {}))
        if key is None:
            return None
        view = pod_view(body)
        with self._lock:
            old_node = self._pod_node.pop((key, view.uid), None)
            if old_node:
                on_node = self.pods_by_node[old_node]
                on_node[key] -= 1
                if on_node[key] <= 0:
                    del on_node[key]
            if deleted:
                self.pods[key].pop(view.uid, None)
                if not self.pods[key]:
                    del self.pods[key]
            else:
                self.pods[key][view.uid] = view
                if view.node:
                    self._pod_node[(key, view.uid)] = view.node
                    self.pods_by_node[view.node][key] += 1
        return key

    def set_node(self, body: dict[str, Any], deleted: bool) -> set[Key]:
        """Record a node; return the services with pods on it."""
        view = node_view(body)
        with self._lock:
            old = self.nodes.get(view.name)
            if deleted:
                self.nodes.pop(view.name, None)
            else:
                self.nodes[view.name] = view
            changed = deleted or old is None or old.ready != view.ready
            return set(self.pods_by_node.get(view.name, ())) if changed else set()

    def prime(self, api: Any, namespaces: list[str]) -> None:
        """Fill the cache with one LIST of everything watched, before any reconcile runs, so
        that a (re)started operator never mistakes a child it has not seen yet for a missing
        one. The watches then keep it current."""
        selector = f"{models.LABEL_MANAGED_BY}={models.MANAGED_BY}"
        for ns in namespaces or [None]:  # type: ignore[list-item]
            for body in api.list(models.KIND, ns):
                self.set_resource(body, False)
            for kind in CHILD_KINDS:
                for body in api.list(kind, ns, selector):
                    self.set_child(kind, body, False)
            for body in api.list("Pod", ns, selector):
                self.set_pod(body, False)
        for body in api.list("Node"):
            self.set_node(body, False)

    # -- reads (snapshots for one reconcile) ------------------------------------------------

    def resource(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self.resources.get(key)

    def children_of(self, key: Key) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self.children.get(key, {}))

    def pods_of(self, key: Key) -> list[PodView]:
        with self._lock:
            return list(self.pods.get(key, {}).values())

    def nodes_snapshot(self) -> dict[str, NodeView]:
        with self._lock:
            return dict(self.nodes)

    def resource_keys(self) -> list[Key]:
        with self._lock:
            return list(self.resources)
