"""One reconcile's context: the parsed resource, a snapshot of its world, the status as last
written, and what the actors found. The actors read and add to it; the status actor writes it
once at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..builders.children import Owner
from ..kube.api import Api
from ..kube.world import Key
from ..policy.conditions import Problem
from ..resource.models import ResilientServiceSpec, ResilientServiceStatus
from ..resource.views import NodeView, PodView

log = logging.getLogger("resilient_operator.reconcile")

NORMAL, WARNING = "Normal", "Warning"


@dataclass
class Memory:
    """What the reconciler keeps of one ResilientService in process memory. Nothing here is
    needed for a correct decision after a restart: decision state lives in status."""

    # status we wrote, and the resourceVersion the cache had before: while the cache still
    # shows that version, our write is the newer truth (the watch has not caught up)
    written: tuple[frozenset[str], dict[str, Any]] | None = None
    last_written_rv: str | None = None
    warned: dict[str, str] = field(default_factory=dict)  # key -> last message posted
    restart_samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    # role -> (hash of the wanted object, consecutive failures, not before)
    failures: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    applied: dict[str, str] = field(default_factory=dict)  # role -> hash last applied
    redriven: dict[str, float] = field(default_factory=dict)  # pod uid -> intent re-sent at


@dataclass
class Context:
    """Everything one reconcile of one ResilientService reads and decides."""

    key: Key
    body: dict[str, Any]
    spec: ResilientServiceSpec
    generation: int
    owner: Owner
    now: float
    api: Api
    memory: Memory
    status: ResilientServiceStatus  # as last written: the decision state
    children: dict[str, dict[str, Any]]  # role -> live object
    pods: list[PodView]
    nodes: dict[str, NodeView]
    problems: list[Problem] = field(default_factory=list)
    next_check: float | None = None
    clock: Callable[[], float] = time.time
    gone_pods: list[str] = field(default_factory=list)  # uids the API server no longer has
    # pods known only from the priming LIST: not acted on until a watch shows them
    unconfirmed_pods: set[str] = field(default_factory=set)

    @property
    def namespace(self) -> str:
        return self.key[0]

    @property
    def name(self) -> str:
        return self.key[1]

    def wake_at(self, when: float | None) -> None:
        """Ask to be reconciled again at ``when`` (the earliest wins)."""
        if when is not None and (self.next_check is None or when < self.next_check):
            self.next_check = when

    def event(self, type_: str, reason: str, message: str) -> None:
        """Post an event on the resource (and log it)."""
        log.info("%s/%s: %s: %s", self.namespace, self.name, reason, message, extra={
            "namespace": self.namespace, "service": self.name, "reason": reason,
            "event_type": type_})
        self.api.event(self.body, type_, reason, message, self.now)

    def event_once(self, key: str, reason: str, message: str, type_: str = WARNING) -> None:
        """Post an event only when this message is new for this key (no event storms)."""
        if self.memory.warned.get(key) == message:
            return
        self.memory.warned[key] = message
        self.event(type_, reason, message)

    def report(self, problem: Problem, key: str | None = None, type_: str = WARNING) -> None:
        """A problem for the Degraded condition, with a Warning event the first time."""
        self.problems.append(problem)
        self.event_once(key or problem.reason, problem.reason, problem.message, type_)
