"""Pure builders: a parsed ResilientService in, the Kubernetes objects it should own out.

Children are keyed by role. ``ROLES`` is the one table of roles: each with its kind, its name
and its builder; the watch cache, the child sync and the RBAC generator all read it.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..resource import models
from ..resource.models import ResilientServiceSpec

# Hash of everything the operator sets on a child: a field dropped from the spec changes it, so
# the child is re-applied (and server-side apply removes the field) even across restarts.
APPLIED_HASH = "resilience.dev/applied-hash"
# Maps that must hold exactly the operator's keys (Role.exact_maps): an extra selector key
# would silently send traffic (or a budget) nowhere, and server-side apply never removes
# another writer's key.


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


TRACK_LABEL = "resilience.dev/track"
STABLE, CANARY = "stable", "canary"


@dataclass(frozen=True)
class Tracks:
    """What each track runs: replicas, and the pod template when it is not spec.template.

    Without a rollout the stable track runs spec.template at the desired replicas and there is
    no canary. During a rollout the stable track keeps its template (``stable_template``) and
    the canary runs spec.template."""

    stable_replicas: int
    stable_template: dict[str, Any] | None = None
    canary_replicas: int | None = None  # None: no canary Deployment
    max_surge: int | str = "25%"
    min_ready_seconds: int = 0
    stable_revision: str | None = None  # the revision the stable track runs (annotation)
    canary_revision: str | None = None


REVISION = "resilience.dev/revision"


def tracks_at_rest(spec: ResilientServiceSpec, revision: str | None = None) -> Tracks:
    """The tracks when no rollout runs: everything on the stable track."""
    return Tracks(stable_replicas=spec.desired_replicas(), max_surge=spec.rollout.max_surge,
                  stable_revision=revision)


def pod_template(owner: Owner, spec: ResilientServiceSpec) -> dict[str, Any]:
    """The pod template of spec.template, with the operator's labels and zone spread."""
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
    return {"metadata": pod_metadata, "spec": pod_spec}


def template_hash(template: dict[str, Any]) -> str:
    """A short, stable digest of a pod template: the revision of a release."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _deployment(owner: Owner, name: str, replicas: int, template: dict[str, Any],
                selector: dict[str, str], tracks: Tracks, revision: str | None) -> dict[str, Any]:
    meta = _metadata(owner, name)
    if revision:
        meta["annotations"] = {REVISION: revision}
    spec: dict[str, Any] = {"replicas": replicas}
    if tracks.min_ready_seconds:
        spec["minReadySeconds"] = tracks.min_ready_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            **spec,
            "selector": {"matchLabels": selector},
            # a rollout adds before it removes: it never takes capacity away
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": tracks.max_surge, "maxUnavailable": 0},
            },
            "template": template,
        },
    }


def deployment(owner: Owner, spec: ResilientServiceSpec,
               tracks: Tracks | None = None) -> dict[str, Any]:
    """The stable track: the Deployment named like the service."""
    tracks = tracks or tracks_at_rest(spec)
    template = copy.deepcopy(tracks.stable_template) if tracks.stable_template is not None \
        else pod_template(owner, spec)
    return _deployment(owner, owner.name, tracks.stable_replicas, template,
                       managed_labels(owner.name), tracks, tracks.stable_revision)


def canary_deployment(owner: Owner, spec: ResilientServiceSpec,
                      tracks: Tracks | None = None) -> dict[str, Any] | None:
    """The canary track during a rollout: spec.template, pods labelled track=canary."""
    if tracks is None or tracks.canary_replicas is None:
        return None
    template = pod_template(owner, spec)
    template["metadata"]["labels"][TRACK_LABEL] = CANARY
    selector = {**managed_labels(owner.name), TRACK_LABEL: CANARY}
    return _deployment(owner, canary_name(owner.name), tracks.canary_replicas, template,
                       selector, tracks, tracks.canary_revision)


def canary_name(name: str) -> str:
    return f"{name}-canary"


def service(owner: Owner, spec: ResilientServiceSpec,
            tracks: Tracks | None = None) -> dict[str, Any] | None:
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


def pod_disruption_budget(owner: Owner, spec: ResilientServiceSpec,
                          tracks: Tracks | None = None) -> dict[str, Any] | None:
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


def horizontal_pod_autoscaler(owner: Owner, spec: ResilientServiceSpec,
                              tracks: Tracks | None = None) -> dict[str, Any] | None:
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


@dataclass(frozen=True)
class Role:
    """One child of a ResilientService: its role, kind, name and builder."""

    name: str
    kind: str
    suffix: str
    build: Callable[[Owner, ResilientServiceSpec, Tracks | None], dict[str, Any] | None]
    # maps that must hold exactly the operator's keys (see EXACT_MAPS)
    exact_maps: tuple[tuple[str, ...], ...] = ()

    def child_name(self, owner_name: str) -> str:
        return owner_name + self.suffix


# Deployments first: the pod template is the part the CRD cannot validate, so when the API
# server refuses it nothing else of the new spec is written.
ROLES: tuple[Role, ...] = (
    Role(STABLE, "Deployment", "", deployment),
    Role(CANARY, "Deployment", "-canary", canary_deployment),
    Role("service", "Service", "", service, (("spec", "selector"),)),
    Role("disruption-budget", "PodDisruptionBudget", "", pod_disruption_budget,
         (("spec", "selector", "matchLabels"),)),
    Role("autoscaler", "HorizontalPodAutoscaler", "", horizontal_pod_autoscaler),
)
ROLES_BY_NAME = {r.name: r for r in ROLES}
CHILD_KINDS = tuple(dict.fromkeys(r.kind for r in ROLES))


def role_of(kind: str, owner_name: str, child_name: str) -> Role | None:
    """The role a child of ``kind`` named ``child_name`` plays for ResilientService
    ``owner_name``, or None when it is none of its children."""
    for role in ROLES:
        if role.kind == kind and role.child_name(owner_name) == child_name:
            return role
    return None


def _stamped(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    if obj is None:
        return None
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    obj["metadata"].setdefault("annotations", {})[APPLIED_HASH] = digest
    return obj


def children(owner: Owner, spec: ResilientServiceSpec,
             tracks: Tracks | None = None) -> dict[str, dict[str, Any] | None]:
    """Every role mapped to its wanted object, or None where it should not exist."""
    return {role.name: _stamped(role.build(owner, spec, tracks)) for role in ROLES}
