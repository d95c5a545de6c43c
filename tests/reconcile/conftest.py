"""Actor tests: a fake API, a World fed from it, a fixed clock."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from resilient_operator.kube.world import World
from resilient_operator.reconcile.reconciler import Reconciler

from .fake import UID, FakeApi

NOW = 1_800_000_000.0
KEY = ("shop", "web")


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def resource(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "resilience.dev/v1alpha1", "kind": "ResilientService",
        "metadata": {"name": "web", "namespace": "shop", "uid": UID, "generation": 1},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "app", "image": "registry.example/web:1"}]}}, **spec},
    }


def pod(name: str, ready: bool = True, since: float = NOW - 600, **extra: Any) -> dict[str, Any]:
    from resilient_operator.resource.times import format_time

    stamp = format_time(since)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}",
                     "creationTimestamp": format_time(NOW - 900),
                     "labels": {"app.kubernetes.io/name": "web",
                                "app.kubernetes.io/instance": "web",
                                "app.kubernetes.io/managed-by": "resilient-operator"},
                     **extra.pop("metadata", {})},
        "spec": {"nodeName": "node-a"},
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False",
             "lastTransitionTime": stamp}]},
        **extra,
    }


def settle(api: FakeApi, name: str = "web", replicas: int = 3) -> None:
    """Play the Deployment controller: the Deployment reports its pods ready."""
    dep = copy.deepcopy(api.obj("Deployment", name))
    dep["metadata"]["generation"] = 1
    dep["status"] = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                     "availableReplicas": replicas, "updatedReplicas": replicas}
    api.put(dep)


class Harness:
    """Given a world, run reconciles the way a worker does, and say what the API saw."""

    def __init__(self) -> None:
        self.api = FakeApi()
        self.clock = Clock()
        self.world = World(self.clock)
        self.reconciler = Reconciler(self.world, self.api, self.clock)  # type: ignore[arg-type]

    def reconcile(self, feed: bool = True) -> float | None:
        if feed:
            self.api.feed(self.world)
        return self.reconciler.reconcile(KEY)

    def restart(self) -> None:
        """A new process (or a new leader): empty memory, a cache primed from the API."""
        self.world = World(self.clock)
        self.world.prime(self.api, [])
        self.reconciler = Reconciler(self.world, self.api, self.clock)  # type: ignore[arg-type]

    def status(self) -> dict[str, Any]:
        return self.api.obj("ResilientService", "web").get("status") or {}

    def condition(self, type_: str) -> dict[str, Any]:
        return next(c for c in self.status().get("conditions", []) if c["type"] == type_)


@pytest.fixture
def h() -> Harness:
    return Harness()
