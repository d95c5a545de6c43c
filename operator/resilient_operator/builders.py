"""Pure builders: a parsed ResilientService in, the Kubernetes objects it should own out."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from . import models
from .models import ResilientServiceSpec

FIELD_MANAGER = "resilient-operator"
# Hash of everything the operator sets on a child: a field dropped from the spec changes it, so
# the child is re-applied (and server-side apply removes the field) even across restarts.
APPLIED_HASH = "resilience.dev/applied-hash"
# Maps that must hold exactly the operator's keys: an extra selector key would silently send
# traffic (or a budget) nowhere, and server-side apply never removes another writer's key.
EXACT_MAPS: dict[str, list[tuple[str, ...]]] = {
    "Service": [("spec", "selector")],
    "PodDisruptionBudget": [("spec", "selector", "matchLabels")],
}


@dataclass(frozen=True)
class Owner:
    """Identity of the ResilientService that owns the children."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def managed_labels(name: str) -> dict[str, str]:
    """The labels the operator owns on every child and pod; also the pods' selector."""
    return {
        models.LABEL_NAME: name,
        models.LABEL_INSTANCE: name,
        models.LABEL_MANAGED_BY: models.MANAGED_BY,
    }


def selector_string(name: str) -> str:
    """The pods' label selector in the string form of status.selector."""
    return ",".join(f"{k}={v}" for k, v in sorted(managed_labels(name).items()))


def _metadata(owner: Owner, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or owner.name,
        "namespace": owner.namespace,
        "labels": managed_labels(owner.name),
        "ownerReferences": [owner.reference()],
    }


def _spread_constraint(owner: Owner, spread: models.ZoneSpread) -> dict[str, Any]:
    return {
        "maxSkew": spread.max_skew,
        "topologyKey": spread.topology_key,
        "whenUnsatisfiable": spread.when_unsatisfiable,
        "labelSelector": {"matchLabels": managed_labels(owner.name)},
        # spread each revision on its own, so a rollout does not skew the new pods
        "matchLabelKeys": ["pod-template-hash"],
    }


def deployment(owner: Owner, spec: ResilientServiceSpec) -> dict[str, Any]:
    """The Deployment that keeps the replicas."""
    template = spec.template
    pod_meta = template.metadata or models.TemplateMetadata()
    pod_labels = {**(pod_meta.labels or {}), **managed_labels(owner.name)}
    pod_metadata: dict[str, Any] = {"labels": pod_labels}
    if pod_meta.annotations:
        pod_metadata["annotations"] = dict(pod_meta.annotations)
    pod_spec = copy.deepcopy(template.spec.model_dump(by_alias=True, exclude_none=True))
    if spec.availability and spec.availability.zone_spread:
        ours = _spread_constraint(owner, spec.availability.zone_spread)
        theirs = [
            c for c in pod_spec.get("topologySpreadConstraints", [])
            if c.get("topologyKey") != ours["topologyKey"]
        ]
        pod_spec["topologySpreadConstraints"] = [*theirs, ours]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner),
        "spec": {
            "replicas": spec.desired_replicas(),
            "selector": {"matchLabels": managed_labels(owner.name)},
            # a rollout adds before it removes: it never takes capacity away
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": {"metadata": pod_metadata, "spec": pod_spec},
        },
    }


def service(owner: Owner, spec: ResilientServiceSpec) -> dict[str, Any] | None:
    """The Service in front of the pods, or None when spec.service is not set."""
    if spec.service is None:
        return None
    meta = _metadata(owner)
    if spec.service.annotations:
        meta["annotations"] = dict(spec.service.annotations)
    ports = []
    for p in spec.service.ports:
        port: dict[str, Any] = {
            "port": p.port,
            "targetPort": p.target_port if p.target_port is not None else p.port,
            "protocol": p.protocol,
        }
        if p.name:
            port["name"] = p.name
        ports.append(port)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": spec.service.type, "selector": managed_labels(owner.name), "ports": ports},
    }


def pod_disruption_budget(owner: Owner, spec: ResilientServiceSpec) -> dict[str, Any] | None:
    """The PodDisruptionBudget, or None without minAvailable/maxUnavailable."""
    avail = spec.availability
    if avail is None or (avail.min_available is None and avail.max_unavailable is None):
        return None
    body: dict[str, Any] = {
        "selector": {"matchLabels": managed_labels(owner.name)},
        # a pod that is not ready never blocks a drain or a heal
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    if avail.min_available is not None:
        body["minAvailable"] = avail.min_available
    else:
        body["maxUnavailable"] = avail.max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(owner),
        "spec": body,
    }


def horizontal_pod_autoscaler(owner: Owner, spec: ResilientServiceSpec) -> dict[str, Any] | None:
    """The autoscaling/v2 HPA that scales this ResilientService, or None."""
    auto = spec.autoscaling
    if auto is None:
        return None
    metrics = []
    targets = {
        "cpu": auto.target_cpu_utilization_percentage,
        "memory": auto.target_memory_utilization_percentage,
    }
    if all(v is None for v in targets.values()):
        targets["cpu"] = 80
    for resource, target in targets.items():
        if target is not None:
            metrics.append({
                "type": "Resource",
                "resource": {
                    "name": resource,
                    "target": {"type": "Utilization", "averageUtilization": target},
                },
            })
    body: dict[str, Any] = {
        "scaleTargetRef": {
            "apiVersion": f"{models.GROUP}/{models.VERSION}",
            "kind": models.KIND,
            "name": owner.name,
        },
        "minReplicas": auto.min_replicas,
        "maxReplicas": auto.max_replicas,
        "metrics": metrics,
    }
    if auto.behavior:
        body["behavior"] = copy.deepcopy(auto.behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(owner),
        "spec": body,
    }


CHILD_KINDS = ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler")


def _stamped(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    obj["metadata"].setdefault("annotations", {})[APPLIED_HASH] = digest
    return obj


def children(owner: Owner, spec: ResilientServiceSpec) -> dict[str, dict[str, Any] | None]:
    """Every child kind mapped to its wanted object, or None where it should not exist."""
    return {
        "Deployment": _stamped(deployment(owner, spec)),
        "Service": _stamped(service(owner, spec)),
        "PodDisruptionBudget": _stamped(pod_disruption_budget(owner, spec)),
        "HorizontalPodAutoscaler": _stamped(horizontal_pod_autoscaler(owner, spec)),
    }
