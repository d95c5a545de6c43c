"""The one level-based reconcile of a ResilientService: children, healing, status.

It reads only the in-memory World (no LIST, no GET on the hot path), writes a child only when
it differs from what is wanted, writes status only when it changed, and posts an Event for
every action. Safe to run twice and after a crash halfway through.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pydantic

from . import builders, conditions, healing, metrics
from .api import Api, ApiError
from .conditions import Problem
from .models import ResilientServiceSpec, parse_duration, parse_spec
from .world import Key, World, format_time

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"

# Event reasons
CREATED = "Created"
UPDATED = "Updated"
RESTORED = "DriftRestored"
REMOVED = "Removed"
SCALED = "Scaled"
POD_REPLACED = "PodReplaced"
POD_MOVED = "PodMovedFromLostNode"
HEAL_SKIPPED = "HealSkipped"
HEALING_SUSPENDED = "HealingSuspended"
HEALING_RESUMED = "HealingResumed"

EVICTION_RETRY_SECONDS = 5.0
STATUS_KEYS = ("observedGeneration", "replicas", "desiredReplicas", "readyReplicas",
               "availableReplicas", "updatedReplicas", "selector", "state", "conditions",
               "healing")


@dataclass
class ServiceMemory:
    """What the reconciler remembers of one ResilientService between reconciles."""

    history: healing.HealHistory = field(default_factory=healing.HealHistory)
    applied: dict[str, str] = field(default_factory=dict)  # kind -> hash of the applied object
    warned: dict[str, str] = field(default_factory=dict)  # reason/pod -> last message posted
    totals: dict[str, int] | None = None
    last_action: dict[str, str] | None = None
    desired_replicas: int | None = None


class Reconciler:
    """Reconciles one ResilientService at a time (the work queue serialises each key)."""

    def __init__(self, world: World, api: Api, clock: Callable[[], float] = time.time) -> None:
        self.world = world
        self.api = api
        self.clock = clock
        self._memory: dict[Key, ServiceMemory] = {}
        self._lock = threading.Lock()

    def memory(self, key: Key) -> ServiceMemory:
        with self._lock:
            return self._memory.setdefault(key, ServiceMemory())

    def forget(self, key: Key) -> None:
        with self._lock:
            self._memory.pop(key, None)
        for reason in healing.REPLACEABLE:
            _remove_series(metrics.UNHEALTHY_PODS, key[0], key[1], reason)
        _remove_series(metrics.HEALING_SUSPENDED, key[0], key[1])

    # -- the reconcile ------------------------------------------------------------------------

    def reconcile(self, key: Key) -> float | None:
        """Bring one ResilientService in line; return seconds until it must be looked at again."""
        body = self.world.resource(key)
        if body is None:
            self.forget(key)
            return None
        if body["metadata"].get("deletionTimestamp"):
            return None
        now = self.clock()
        mem = self.memory(key)
        generation = int(body["metadata"].get("generation") or 0)
        try:
            spec = parse_spec(body.get("spec") or {})
        except pydantic.ValidationError as e:
            message = "the spec cannot be used: " + "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
            self._warn_once(body, mem, conditions.INVALID_SPEC, message, now)
            self._write_status(body, None, generation, None,
                               [Problem(conditions.INVALID_SPEC, message)], None, now)
            return None

        owner = builders.Owner(key[1], key[0], body["metadata"]["uid"])
        problems: list[Problem] = []
        actual = self.world.children_of(key)
        wanted = builders.children(owner, spec)
        pdb_problem = conditions.pdb_problem(spec)
        if pdb_problem is not None:
            problems.append(pdb_problem)
            self._warn_once(body, mem, pdb_problem.reason, pdb_problem.message, now)
            # leave the existing budget as it was rather than install one that blocks everything
            wanted.pop("PodDisruptionBudget")
        else:
            mem.warned.pop(conditions.PDB_UNSATISFIABLE, None)
        for kind, obj in wanted.items():
            problem = self._sync_child(body, mem, kind, obj, actual.get(kind), now)
            if problem is not None:
                problems.append(problem)
        self._note_scaling(body, mem, spec, now)
        autoscaler, autoscaler_check = conditions.autoscaler_problem(
            actual.get("HorizontalPodAutoscaler"), now)
        if autoscaler is not None and spec.autoscaling is not None:
            problems.append(autoscaler)

        heal_report, next_check = self._heal(key, body, mem, spec, now)
        problems.extend(heal_report.problems)
        self._write_status(body, spec, generation, actual.get("Deployment"), problems,
                           heal_report.status, now)
        next_check = _earliest(next_check, autoscaler_check)
        if next_check is None:
            return None
        return max(0.05, next_check - self.clock())

    # -- children -----------------------------------------------------------------------------

    def _sync_child(
        self,
        body: dict[str, Any],
        mem: ServiceMemory,
        kind: str,
        wanted: dict[str, Any] | None,
        actual: dict[str, Any] | None,
        now: float,
    ) -> Problem | None:
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
        if wanted is None:
            if actual is not None and _owned_by(actual, body["metadata"]["uid"]):
                self.api.delete(kind, namespace, name, actual["metadata"].get("uid"))
                mem.applied.pop(kind, None)
                metrics.CHILD_WRITES.labels(kind=kind, action="removed").inc()
                self._event(body, NORMAL, REMOVED, f"Removed {kind} {name}: no longer in the "
                            "spec", now)
            return None
        digest = wanted["metadata"]["annotations"][builders.APPLIED_HASH]
        stray = stray_keys(wanted, actual, builders.EXACT_MAPS.get(kind, []))
        if actual is not None and not stray and not differs(wanted, actual):
            mem.applied[kind] = digest
            return None
        if actual is None:
            action, reason = ("restored", RESTORED) if kind in mem.applied else ("created",
                                                                                 CREATED)
        elif mem.applied.get(kind) == digest:
            action, reason = "restored", RESTORED
        else:
            action, reason = "updated", UPDATED
        try:
            if actual is None:
                # not in the cache: check the API before creating (one GET, on creation only)
                existing = self.api.get(kind, namespace, name)
                if existing is not None and not _owned_by(existing, body["metadata"]["uid"]):
                    message = (f"a {kind} named {name} already exists and is not owned by this "
                               "ResilientService; the operator leaves it alone: delete or "
                               "rename it")
                    self._warn_once(body, mem, f"{conditions.CHILD_CONFLICT}/{kind}", message,
                                    now)
                    return Problem(conditions.CHILD_CONFLICT, message)
                if existing is not None and not differs(wanted, existing):
                    mem.applied[kind] = digest  # the watch has not caught up yet: nothing to do
                    return None
            if stray:
                # keys another writer added to a map the operator owns whole
                self.api.merge_patch(kind, namespace, name, stray)
            self.api.apply(wanted)
        except ApiError as e:
            if e.invalid:
                message = f"the API server rejected the {kind}: {e.message}"
                self._warn_once(body, mem, f"{conditions.CHILD_REJECTED}/{kind}", message, now)
                return Problem(conditions.CHILD_REJECTED, message)
            raise
        mem.applied[kind] = digest
        mem.warned.pop(f"{conditions.CHILD_REJECTED}/{kind}", None)
        mem.warned.pop(f"{conditions.CHILD_CONFLICT}/{kind}", None)
        metrics.CHILD_WRITES.labels(kind=kind, action=action).inc()
        verb = {"created": "Created", "restored": "Restored drifted", "updated": "Updated"}[action]
        self._event(body, NORMAL, reason, f"{verb} {kind} {name}", now)
        return None

    def _note_scaling(
        self, body: dict[str, Any], mem: ServiceMemory, spec: ResilientServiceSpec, now: float
    ) -> None:
        desired = spec.desired_replicas()
        if mem.desired_replicas is not None and mem.desired_replicas != desired:
            self._event(body, NORMAL, SCALED,
                        f"Scaled from {mem.desired_replicas} to {desired} replicas", now)
        mem.desired_replicas = desired

    # -- healing ------------------------------------------------------------------------------

    def _heal(
        self, key: Key, body: dict[str, Any], mem: ServiceMemory, spec: ResilientServiceSpec,
        now: float,
    ) -> tuple[HealReport, float | None]:
        policy = spec.healing
        history = mem.history
        pods = self.world.pods_of(key)
        nodes = self.world.nodes_snapshot()
        report = HealReport()
        if mem.totals is None:
            old = (body.get("status") or {}).get("healing") or {}
            mem.totals = {"podsReplaced": int(old.get("podsReplaced") or 0),
                          "podsMovedFromLostNodes": int(old.get("podsMovedFromLostNodes") or 0)}
            mem.last_action = old.get("lastAction")
        window = parse_duration(policy.restart_window)
        for record, seconds in healing.observe(history, pods, now, window):
            if not math.isnan(seconds):
                metrics.TIME_TO_RECOVERY.labels(reason=record.reason).observe(seconds)
        desired = spec.desired_replicas()
        budget = healing.Budget(desired, conditions.required_available(spec, desired))
        selector = builders.managed_labels(key[1])
        decision = healing.decide(pods, nodes, policy, budget, selector, history, now)

        counts: dict[str, int] = {}
        for finding in decision.unhealthy:
            counts[finding.reason] = counts.get(finding.reason, 0) + 1
        for reason in healing.REPLACEABLE:
            metrics.UNHEALTHY_PODS.labels(key[0], key[1], reason).set(counts.get(reason, 0))

        if decision.suspended and not history.suspended:
            self._event(body, WARNING, HEALING_SUSPENDED, decision.storm_message, now)
        elif history.suspended and not decision.suspended:
            self._event(body, NORMAL, HEALING_RESUMED,
                        "fewer pods are unhealthy than the storm threshold: healing resumed", now)
        history.suspended = decision.suspended
        metrics.HEALING_SUSPENDED.labels(key[0], key[1]).set(1 if decision.suspended else 0)
        if decision.suspended:
            report.problems.append(Problem(conditions.HEALING_SUSPENDED, decision.storm_message))

        retry_at: float | None = None
        acted: dict[str, str] = {}
        for rep in decision.replace:
            outcome = self._replace(body, mem, policy.mode, rep, pods, now)
            acted[rep.pod.uid] = outcome
            if outcome == "blocked":
                retry_at = now + EVICTION_RETRY_SECONDS
        skipped = {f.pod.uid: why for f, why in decision.skipped}
        for finding, why in decision.skipped:
            if why != "HealingSuspended":
                self._warn_once(body, mem, f"skip/{finding.pod.uid}",
                                f"Not replacing pod {finding.pod.name} ({finding.reason}): {why}",
                                now, type_=NORMAL, reason=HEAL_SKIPPED)
        hopeless = [f for f in decision.unhealthy if not f.replaceable]
        for finding in hopeless:
            self._warn_once(body, mem, f"report/{finding.pod.uid}",
                            f"Pod {finding.pod.name} is {finding.reason}: {finding.message}. "
                            "Not replacing it: fix the pod template.", now,
                            reason=HEAL_SKIPPED)
        if hopeless:
            names = ", ".join(f"{f.pod.name} ({f.reason})" for f in hopeless[:5])
            report.problems.append(Problem(conditions.PODS_NEED_HELP,
                                           f"pods that a replacement cannot help: {names}"))
        live = {f.pod.uid for f in decision.unhealthy} | {p.uid for p in pods}
        for k in list(mem.warned):
            if "/" in k and k.split("/", 1)[0] in ("skip", "report", "observe") and \
                    k.split("/", 1)[1] not in live:
                del mem.warned[k]

        unhealthy = []
        for finding in sorted(decision.unhealthy, key=lambda f: f.pod.name):
            if not finding.replaceable:
                action, message = "Report", finding.message
            elif finding.pod.uid in acted:
                action = "WouldReplace" if acted[finding.pod.uid] == "observed" else "Replace"
                message = finding.message
            else:
                action = "Wait"
                message = f"{finding.message}; {skipped.get(finding.pod.uid, '')}".rstrip("; ")
            unhealthy.append({"name": finding.pod.name, "reason": finding.reason,
                              "since": format_time(finding.since), "action": action,
                              "message": message})
        report.status = {
            "suspended": decision.suspended,
            "unhealthyPods": unhealthy,
            **mem.totals,
        }
        if mem.last_action:
            report.status["lastAction"] = mem.last_action
        in_flight_deadline = min(
            (r.acted_at + healing.HEAL_TIMEOUT_SECONDS for r in history.in_flight), default=None)
        return report, _earliest(decision.next_check, retry_at, in_flight_deadline)

    def _replace(
        self, body: dict[str, Any], mem: ServiceMemory, mode: str, rep: healing.Replacement,
        pods: list[healing.PodView], now: float,
    ) -> str:
        meta = body["metadata"]
        ns, svc = meta["namespace"], meta["name"]
        pod = rep.pod
        if mode == "ObserveOnly":
            verb = "evict" if rep.method == "Evict" else "delete"
            self._warn_once(body, mem, f"observe/{pod.uid}",
                            f"ObserveOnly: would {verb} pod {pod.name} ({rep.reason})", now,
                            type_=NORMAL, reason=HEAL_SKIPPED)
            metrics.HEALS.labels(ns, svc, rep.reason, "observed").inc()
            return "observed"
        try:
            if rep.method == "Evict":
                self.api.evict(ns, pod.name, pod.uid)
            else:
                self.api.delete("Pod", ns, pod.name, pod.uid)
        except ApiError as e:
            if e.too_many:
                metrics.HEALS.labels(ns, svc, rep.reason, "blocked").inc()
                self._warn_once(body, mem, f"skip/{pod.uid}",
                                f"Not replacing pod {pod.name} ({rep.reason}) yet: the "
                                f"disruption budget refuses the eviction ({e.message}); retrying",
                                now, type_=NORMAL, reason=HEAL_SKIPPED)
                return "blocked"
            metrics.HEALS.labels(ns, svc, rep.reason, "error").inc()
            raise
        result = "evicted" if rep.method == "Evict" else "deleted"
        sent = self.clock()
        metrics.HEALS.labels(ns, svc, rep.reason, result).inc()
        metrics.REACTION_SECONDS.labels(rep.reason).observe(max(0.0, sent - rep.crossed))
        log.info("heal %s/%s pod=%s reason=%s result=%s unhealthy_since=%.3f crossed=%.3f "
                 "sent=%.3f", ns, svc, pod.name, rep.reason, result, rep.since, rep.crossed,
                 sent)
        healing.record(mem.history, rep, pods, now)
        assert mem.totals is not None
        if rep.reason == healing.NODE_LOST:
            mem.totals["podsMovedFromLostNodes"] += 1
            node = f" from lost node {pod.node}" if pod.node else ""
            self._event(body, NORMAL, POD_MOVED,
                        f"Deleted pod {pod.name}{node} so it is recreated on a healthy node", now)
        else:
            mem.totals["podsReplaced"] += 1
            how = "Evicted" if rep.method == "Evict" else "Deleted"
            self._event(body, NORMAL, POD_REPLACED,
                        f"{how} pod {pod.name} ({rep.reason}, unhealthy since "
                        f"{format_time(rep.since)}) so the Deployment replaces it", now)
        mem.last_action = {"pod": pod.name, "reason": rep.reason,
                           "action": "Evicted" if rep.method == "Evict" else "Deleted",
                           "time": format_time(now)}
        return result

    # -- status and events --------------------------------------------------------------------

    def _write_status(
        self,
        body: dict[str, Any],
        spec: ResilientServiceSpec | None,
        generation: int,
        deployment: dict[str, Any] | None,
        problems: list[Problem],
        heal_status: dict[str, Any] | None,
        now: float,
    ) -> None:
        old = body.get("status") or {}
        name = body["metadata"]["name"]
        if spec is None:
            conds: list[dict[str, Any]] = [
                {"type": conditions.READY, "status": "False", "reason": problems[0].reason,
                 "message": problems[0].message},
                {"type": conditions.DEGRADED, "status": "True", "reason": problems[0].reason,
                 "message": problems[0].message},
            ]
            for c in conds:
                c["observedGeneration"] = generation
            new: dict[str, Any] = {**{k: old[k] for k in STATUS_KEYS if k in old},
                                   "observedGeneration": generation, "state": "Degraded"}
            kept = [c for c in old.get("conditions") or []
                    if c.get("type") not in (conditions.READY, conditions.DEGRADED)]
            new["conditions"] = conditions.with_times(conds, old.get("conditions") or [],
                                                      format_time(now)) + kept
        else:
            conds, counts = conditions.compute(spec, generation, deployment, problems)
            conds = conditions.with_times(conds, old.get("conditions") or [], format_time(now))
            new = {
                "observedGeneration": generation,
                **counts,
                "desiredReplicas": spec.desired_replicas(),
                "selector": builders.selector_string(name),
                "state": conditions.state_of(conds),
                "conditions": conds,
            }
            if heal_status is not None:
                new["healing"] = heal_status
        patch = {k: v for k, v in new.items() if old.get(k) != v}
        patch.update({k: None for k in STATUS_KEYS if k in old and k not in new})
        if not patch:
            return
        meta = body["metadata"]
        try:
            self.api.patch_status(meta["namespace"], meta["name"], patch)
        except ApiError as e:
            if not e.not_found:
                raise

    def _event(self, body: dict[str, Any], type_: str, reason: str, message: str,
               now: float) -> None:
        log.info("%s/%s: %s: %s", body["metadata"]["namespace"], body["metadata"]["name"],
                 reason, message)
        self.api.event(body, type_, reason, message, now)

    def _warn_once(
        self, body: dict[str, Any], mem: ServiceMemory, key: str, message: str, now: float,
        type_: str = WARNING, reason: str | None = None,
    ) -> None:
        """Post an event only when this message is new for this key (no event storms)."""
        if mem.warned.get(key) == message:
            return
        mem.warned[key] = message
        self._event(body, type_, reason or key.split("/")[0], message, now)


@dataclass
class HealReport:
    problems: list[Problem] = field(default_factory=list)
    status: dict[str, Any] | None = None


def _earliest(*times: float | None) -> float | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


def _owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def stray_keys(
    wanted: dict[str, Any], actual: dict[str, Any] | None, paths: list[tuple[str, ...]]
) -> dict[str, Any]:
    """A merge patch that removes keys others added to maps the operator owns exactly."""
    patch: dict[str, Any] = {}
    for path in paths:
        want, have = wanted, actual or {}
        for part in path:
            want, have = (want or {}).get(part) or {}, (have or {}).get(part) or {}
        extra = {k: None for k in have if k not in want}
        if extra:
            node = patch
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = extra
    return patch


def _remove_series(metric: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX: dict[str | None, Decimal] = {k: Decimal(str(v)) for k, v in {
    None: 1, "m": "0.001", "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
           "Pi": 2**50, "Ei": 2**60}.items()}


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    m = _QUANTITY.match(value)
    if not m:
        return None
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except InvalidOperation:
        return None


def differs(wanted: Any, actual: Any) -> bool:
    """True when ``actual`` lacks something ``wanted`` sets (fields the server or other
    writers add are ignored; Kubernetes quantities compare by value)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return True
        return any(differs(v, actual.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(actual, list) or len(wanted) != len(actual):
            return True
        return any(differs(w, a) for w, a in zip(wanted, actual, strict=True))
    if wanted == actual:
        return False
    a, b = _quantity(wanted), _quantity(actual)
    return a is None or b is None or a != b
