"""An in-memory view of the watched world: ResilientServices, their children, pods and nodes.

Filled from watch events (see handlers.py), read by the reconciler, so a reconcile lists
nothing. Children are kept by role (builders.children.ROLES).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from ..builders.children import CHILD_KINDS, role_of
from ..resource import models
from ..resource.views import NodeView, PodView
from .views import node_view, pod_view

Key = tuple[str, str]  # (namespace, name) of a ResilientService


def owner_key(meta: dict[str, Any]) -> Key | None:
    """The ResilientService a child or pod belongs to, from the operator's labels."""
    labels = meta.get("labels") or {}
    if labels.get(models.LABEL_MANAGED_BY) != models.MANAGED_BY:
        return None
    name = labels.get(models.LABEL_INSTANCE)
    return (meta.get("namespace", ""), name) if name else None


class World:
    """Thread-safe cache; event handlers write, reconcile workers read snapshots."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._primed = False
        self.resources: dict[Key, dict[str, Any]] = {}
        self.children: dict[Key, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.pods: dict[Key, dict[str, PodView]] = defaultdict(dict)
        self.pods_by_node: dict[str, Counter[Key]] = defaultdict(Counter)
        self._pod_node: dict[tuple[Key, str], str] = {}
        self.nodes: dict[str, NodeView] = {}
        # objects known only from the priming LIST, not yet from a watch event: one deleted
        # between that LIST and the watches' own would otherwise stay forever (see sweep)
        self._unconfirmed: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}
        # every object held, with when an event last showed it (see resync)
        self._known: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        # the highest resourceVersion any object showed: etcd's revision only grows, unless
        # etcd was restored from a backup (see handlers._watch_for_restore)
        self.max_revision = 0

    # -- writes (from watch events) ------------------------------------------------------

    def _note(self, kind: str, body: dict[str, Any], confirmed: bool,
              deleted: bool = False) -> None:
        meta = body.get("metadata", {})
        identity = (kind, meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            if deleted:
                self._known.pop(identity, None)
            else:
                self._known[identity] = (self._clock(), body)
            rv = meta.get("resourceVersion", "")
            if rv.isdigit() and int(rv) > self.max_revision:
                self.max_revision = int(rv)
            if confirmed:
                self._unconfirmed.pop(identity, None)
            else:
                self._unconfirmed[identity] = (kind, body)

    def set_resource(self, body: dict[str, Any], deleted: bool, confirmed: bool = True) -> Key:
        self._note(models.KIND, body, confirmed, deleted)
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            if deleted:
                self.resources.pop(key, None)
            else:
                self.resources[key] = body
        return key

    def set_child(self, kind: str, body: dict[str, Any], deleted: bool,
                  confirmed: bool = True) -> Key | None:
        self._note(kind, body, confirmed, deleted)
        meta = body.get("metadata", {})
        key = owner_key(meta)
        role = role_of(kind, key[1], meta.get("name", "")) if key else None
        if key is None or role is None:
            return None
        with self._lock:
            if deleted:
                self.children[key].pop(role.name, None)
            else:
                self.children[key][role.name] = body
        return key

    def set_pod(self, body: dict[str, Any], deleted: bool, confirmed: bool = True) -> Key | None:
        self._note("Pod", body, confirmed, deleted)
        key = owner_key(body.get("metadata", {}))
        if key is None:
            return None
        uid = body.get("metadata", {}).get("uid", "")
        with self._lock:
            before = self.pods.get(key, {}).get(uid)
            seen = before.seen_ready_change if before is not None else None
            view = pod_view(body, seen)
            if before is not None and before.ready != view.ready and self._primed:
                # conditions have one-second resolution: remember when the change was seen
                view = pod_view(body, self._clock())
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

    def forget_pod(self, key: Key, uid: str) -> None:
        """Drop a pod the API server says is gone (the watch was behind, or never told)."""
        with self._lock:
            self.pods.get(key, {}).pop(uid, None)
            node = self._pod_node.pop((key, uid), None)
            if node:
                on_node = self.pods_by_node[node]
                on_node[key] -= 1
                if on_node[key] <= 0:
                    del on_node[key]

    def set_node(self, body: dict[str, Any], deleted: bool, confirmed: bool = True) -> set[Key]:
        """Record a node; return the services with pods on it."""
        self._note("Node", body, confirmed, deleted)
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
        for kind, body in self._list_all(api, namespaces):
            self._set(kind, body, deleted=False, confirmed=False)
        self._primed = True

    def sweep(self, api: Any, namespaces: list[str]) -> set[Key]:
        """Once the watches run: drop what only the priming LIST knew of and a fresh LIST no
        longer has (deleted between the two LISTs: no watch will ever say so). Returns the
        services concerned."""
        with self._lock:
            if not self._unconfirmed:
                return set()
        present = {(kind, b["metadata"].get("namespace", ""), b["metadata"]["name"])
                   for kind, b in self._list_all(api, namespaces)}
        with self._lock:
            stale = [(i, v) for i, v in self._unconfirmed.items() if i not in present]
            for identity, _ in stale:
                del self._unconfirmed[identity]
        touched: set[Key] = set()
        for _, (kind, body) in stale:
            key = self._set(kind, body, deleted=True, confirmed=True)
            if isinstance(key, set):
                touched |= key
            elif key is not None:
                touched.add(key)
        return touched

    def resync(self, api: Any, namespaces: list[str], kinds: set[str],
               refresh: bool = False) -> set[Key]:
        """After a watch relisted (410 Gone: its resourceVersion was compacted away, or etcd
        was restored from a backup): drop what a fresh LIST no longer has and no event has
        shown since the LIST began. A watch that relists says nothing of what was deleted
        while it was down; without this, a deleted child would look present for good.
        ``refresh``: also take every listed object no event has shown since (when the watches
        themselves cannot be trusted: etcd went back in time). Returns the services
        concerned."""
        started = self._clock()
        listed = {(kind, b["metadata"].get("namespace", ""), b["metadata"]["name"]): (kind, b)
                  for kind, b in self._list_all(api, namespaces, kinds)}
        with self._lock:
            ghosts = [(identity, body) for identity, (seen, body) in self._known.items()
                      if identity[0] in kinds and identity not in listed and seen < started]
            fresh = [] if not refresh else [
                (identity, body) for identity, (_, body) in listed.items()
                if identity not in self._known or (
                    self._known[identity][0] < started and self._known[identity][1].get(
                        "metadata", {}).get("resourceVersion") !=
                    body["metadata"].get("resourceVersion"))]
        touched: set[Key] = set()
        for deleted, found in ((True, ghosts), (False, fresh)):
            for (kind, _, _), body in found:
                key = self._set(kind, body, deleted=deleted, confirmed=True)
                if isinstance(key, set):
                    touched |= key
                elif key is not None:
                    touched.add(key)
        return touched

    def rebuild(self, api: Any, namespaces: list[str]) -> set[Key]:
        """Everything from a fresh LIST: what the cache has that the API server no longer has
        goes, what it lacks or holds at another version is taken."""
        return self.resync(api, namespaces, {models.KIND, *CHILD_KINDS, "Pod", "Node"},
                           refresh=True)

    def unconfirmed_pods(self, key: Key) -> set[str]:
        """Names of the service's pods known only from the priming LIST (a watch has not
        shown them yet: they may be gone)."""
        with self._lock:
            return {i[2] for i in self._unconfirmed if i[0] == "Pod" and i[1] == key[0]}

    def unconfirmed(self) -> int:
        """Objects known only from the priming LIST so far."""
        with self._lock:
            return len(self._unconfirmed)

    def _list_all(self, api: Any, namespaces: list[str],
                  kinds: set[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        selector = f"{models.LABEL_MANAGED_BY}={models.MANAGED_BY}"
        wanted = kinds if kinds is not None else {models.KIND, *CHILD_KINDS, "Pod", "Node"}
        out: list[tuple[str, dict[str, Any]]] = []
        for ns in namespaces or [None]:  # type: ignore[list-item]
            if models.KIND in wanted:
                out += [(models.KIND, b) for b in api.list(models.KIND, ns)]
            for kind in CHILD_KINDS:
                if kind in wanted:
                    out += [(kind, b) for b in api.list(kind, ns, selector)]
            if "Pod" in wanted:
                out += [("Pod", b) for b in api.list("Pod", ns, selector)]
        if "Node" in wanted:
            out += [("Node", b) for b in api.list("Node")]
        return out

    def _set(self, kind: str, body: dict[str, Any], deleted: bool, confirmed: bool) -> Any:
        if kind == models.KIND:
            return self.set_resource(body, deleted, confirmed)
        if kind == "Pod":
            return self.set_pod(body, deleted, confirmed)
        if kind == "Node":
            return self.set_node(body, deleted, confirmed)
        return self.set_child(kind, body, deleted, confirmed)

    @property
    def primed(self) -> bool:
        """The first LIST of everything is done."""
        return self._primed

    # -- reads (snapshots for one reconcile) ------------------------------------------------

    def resource(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self.resources.get(key)

    def children_of(self, key: Key) -> dict[str, dict[str, Any]]:
        """The children by role."""
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
