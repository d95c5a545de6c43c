"""The one table of API kinds the operator reads or writes: group, version, plural, and the
verbs it needs on each. The API layer builds paths from it, the handlers register watches from
it, and ``kube/rbac.py`` generates the operator's ClusterRole from it."""

from __future__ import annotations

from dataclasses import dataclass

from ..builders.children import CHILD_KINDS
from ..resource import models

READ = ("get", "list", "watch")


@dataclass(frozen=True)
class Kind:
    """An API resource: where it lives and what the operator does with it."""

    kind: str
    group: str
    version: str
    plural: str
    verbs: tuple[str, ...]
    why: str
    watched: bool = True
    subresources: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


# children: server-side apply is a patch; get to check ownership before creating
_CHILD_VERBS = (*READ, "create", "patch", "delete")
_CHILD = {
    "Deployment": Kind("Deployment", "apps", "v1", "deployments", _CHILD_VERBS,
                       "the stable and canary tracks"),
    "Service": Kind("Service", "", "v1", "services", _CHILD_VERBS, "load balancing"),
    "PodDisruptionBudget": Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets",
                                _CHILD_VERBS, "the availability policy"),
    "HorizontalPodAutoscaler": Kind("HorizontalPodAutoscaler", "autoscaling", "v2",
                                    "horizontalpodautoscalers", _CHILD_VERBS, "autoscaling"),
}
assert set(_CHILD) == set(CHILD_KINDS), "every child role's kind needs a row here"

KINDS: dict[str, Kind] = {
    models.KIND: Kind(models.KIND, models.GROUP, models.VERSION, models.PLURAL, READ,
                      "the resources it serves (never writes their spec)",
                      subresources=(("status", ("get", "patch", "update")),)),
    **_CHILD,
    "Pod": Kind("Pod", "", "v1", "pods", (*READ, "delete"),
                "healing: watch pods, delete failed pods and pods on lost nodes",
                subresources=(("eviction", ("create",)),)),
    "Node": Kind("Node", "", "v1", "nodes", READ, "lost nodes and zone outages"),
    "PodMetrics": Kind("PodMetrics", "metrics.k8s.io", "v1beta1", "pods", ("list",),
                       "rollouts: the stable pods' CPU when the autoscaler asks for more",
                       watched=False),
    "Event": Kind("Event", "", "v1", "events", ("create", "patch"), "events about every action",
                  watched=False),
    "Lease": Kind("Lease", "coordination.k8s.io", "v1", "leases", ("get", "create", "update"),
                  "leader election", watched=False),
}
