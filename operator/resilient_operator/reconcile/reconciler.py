"""The one level-based reconcile of a ResilientService: a thin orchestrator over one actor per
concern (children, healing, status; rollout joins them). It reads only the in-memory World (no
LIST, no GET on the hot path) and the status as last written (the decision state), lets each
actor decide and act, and writes the status once. Safe to run twice and after a crash halfway
through.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pydantic

from .. import metrics
from ..builders.children import Owner
from ..kube.api import Api, ApiError
from ..kube.world import Key, World
from ..policy import conditions, healing
from ..policy.conditions import Problem
from ..resource.models import parse_spec
from . import children
from . import healing as healing_actor
from . import rollout as rollout_actor
from . import status as status_actor
from .context import NORMAL, Context, Memory

log = logging.getLogger("resilient_operator.reconcile")

SCALED = "Scaled"


class Reconciler:
    """Reconciles one ResilientService at a time (the work queue serialises each key)."""

    def __init__(self, world: World, api: Api, clock: Callable[[], float] = time.time) -> None:
        self.world = world
        self.api = api
        self.clock = clock
        self._memory: dict[Key, Memory] = {}
        self._lock = threading.Lock()

    def memory(self, key: Key) -> Memory:
        with self._lock:
            memory = self._memory.get(key)
            if memory is None:
                memory = self._memory[key] = Memory()
                _zero_counters(key)
            return memory

    def reset_memory(self, key: Key) -> None:
        """Drop what this process remembers of a service (its status is read afresh)."""
        with self._lock:
            self._memory.pop(key, None)

    def reset_all_memory(self) -> None:
        with self._lock:
            self._memory.clear()

    def forget(self, key: Key) -> None:
        with self._lock:
            self._memory.pop(key, None)
        for reason in healing.REPLACEABLE:
            _remove_series(metrics.UNHEALTHY_PODS, key[0], key[1], reason)
        _remove_series(metrics.HEALING_SUSPENDED, key[0], key[1])
        _remove_series(metrics.ROLLOUT_STEP, key[0], key[1])
        _remove_series(metrics.ROLLOUT_WEIGHT, key[0], key[1])
        for gauge in (metrics.SERVICE_AVAILABLE, metrics.SERVICE_READY_PODS,
                      metrics.SERVICE_REQUIRED_PODS):
            _remove_series(gauge, key[0], key[1])

    def reconcile(self, key: Key) -> float | None:
        """Bring one ResilientService in line; return seconds until it must be looked at again."""
        body = self.world.resource(key)
        if body is None:
            self.forget(key)
            return None
        if body["metadata"].get("deletionTimestamp"):
            return None
        now = self.clock()
        memory = self.memory(key)
        generation = int(body["metadata"].get("generation") or 0)
        try:
            spec = parse_spec(body.get("spec") or {})
        except pydantic.ValidationError as e:
            self._invalid(key, body, memory, generation, e, now)
            return None

        ctx = Context(
            key=key, body=body, spec=spec, generation=generation,
            owner=Owner(key[1], key[0], body["metadata"]["uid"]), now=now, api=self.api,
            memory=memory, status=status_actor.parse(status_actor.current(body, memory)),
            children=self.world.children_of(key), pods=self.world.pods_of(key),
            nodes=self.world.nodes_snapshot(), clock=self.clock,
            unconfirmed_pods=self.world.unconfirmed_pods(key),
        )
        tracks = rollout_actor.run(ctx)
        children.sync(ctx, tracks)
        self._note_scaling(ctx)
        autoscaler, autoscaler_check = conditions.autoscaler_problem(
            ctx.children.get("autoscaler"), now)
        if autoscaler is not None and spec.autoscaling is not None:
            ctx.problems.append(autoscaler)
        ctx.wake_at(autoscaler_check)
        # canary pods are the rollout's to judge (their failure is the verdict); only the
        # stable track counts as capacity
        stable_pods = [p for p in ctx.pods if not rollout_actor.is_canary(p)]
        capacity = tracks.stable_replicas if rollout_actor.rolling_out(ctx) else None
        healing_actor.heal(ctx, stable_pods, healing_actor.budget_of(spec, capacity))
        for uid in ctx.gone_pods:  # the cache was behind the API server: catch it up
            self.world.forget_pod(key, uid)
            ctx.wake_at(now)
        status_actor.write(ctx, status_actor.build(ctx, rollout_actor.progressing(ctx)))
        if ctx.next_check is None:
            return None
        return max(0.05, ctx.next_check - self.clock())

    def _note_scaling(self, ctx: Context) -> None:
        desired = ctx.spec.desired_replicas()
        before = ctx.status.desired_replicas
        if before is not None and before != desired:
            ctx.event(NORMAL, SCALED, f"Scaled from {before} to {desired} replicas")

    def _invalid(self, key: Key, body: dict[str, Any], memory: Memory, generation: int,
                 error: pydantic.ValidationError, now: float) -> None:
        """A spec the operator cannot use (the CRD let it through): say so, touch nothing."""
        message = "the spec cannot be used: " + "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in error.errors())
        problem = Problem(conditions.INVALID_SPEC, message)
        if memory.warned.get(conditions.INVALID_SPEC) != message:
            memory.warned[conditions.INVALID_SPEC] = message
            self.api.event(body, "Warning", conditions.INVALID_SPEC, message, now)
        new = status_actor.invalid(body, memory, generation, problem, now)
        old = status_actor.current(body, memory)
        patch = status_actor.merge_diff(old, new)
        if not patch:
            return
        try:
            response = self.api.patch_status(key[0], key[1], patch)
        except ApiError as e:
            if not e.not_found:
                raise
            return
        status_actor.remember(body, memory, response, new)


def _zero_counters(key: Key) -> None:
    """A counter that first appears at 1 is invisible to increase(): a service's release
    counters exist, at 0, from the first reconcile (the first abort still alerts, the DORA
    ratios count the first release)."""
    for result in ("promoted", "aborted", "superseded", "rolledback"):
        metrics.ROLLOUTS.labels(key[0], key[1], result)
    metrics.DEPLOYMENTS.labels(key[0], key[1])
    metrics.CHANGE_FAILURES.labels(key[0], key[1])


def _remove_series(metric: Any, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
