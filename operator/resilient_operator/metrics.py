"""Prometheus metrics of the operator, all prefixed ``resilient_``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

API_REQUESTS = Counter(
    "resilient_rest_client_requests",
    "API requests made by the operator's reconcilers, by verb and resource.",
    ["verb", "resource"],
)
RECONCILES = Counter(
    "resilient_reconciles",
    "Reconciles run, by result (ok, error).",
    ["result"],
)
RECONCILE_SECONDS = Histogram(
    "resilient_reconcile_duration_seconds",
    "Time spent in one reconcile.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CHILD_WRITES = Counter(
    "resilient_child_writes",
    "Children created, updated, restored or removed, by kind and action.",
    ["kind", "action"],
)
HEALS = Counter(
    "resilient_heals",
    "Heals by service, reason (NotReady, CrashLoop, Failed, NodeLost) and result "
    "(evicted, deleted, blocked, error, observed).",
    ["namespace", "service", "reason", "result"],
)
UNHEALTHY_PODS = Gauge(
    "resilient_unhealthy_pods",
    "Pods found unhealthy now, by service and reason.",
    ["namespace", "service", "reason"],
)
HEALING_SUSPENDED = Gauge(
    "resilient_healing_suspended",
    "1 while the storm breaker holds healing of the service, else 0.",
    ["namespace", "service"],
)
TIME_TO_RECOVERY = Histogram(
    "resilient_time_to_recovery_seconds",
    "From the moment a pod became unhealthy to its replacement being Ready.",
    ["reason"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600),
)
REACTION_SECONDS = Histogram(
    "resilient_heal_reaction_seconds",
    "From a threshold being crossed to the operator acting (eviction or delete sent).",
    ["reason"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
IS_LEADER = Gauge(
    "resilient_leader",
    "1 while this replica is the one that acts, else 0.",
)
