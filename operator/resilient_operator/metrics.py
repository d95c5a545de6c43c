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

ROLLOUTS = Counter(
    "resilient_rollouts",
    "Rollouts ended, by result (promoted, aborted, superseded, rolledback).",
    ["namespace", "service", "result"],
)
ROLLOUT_ABORTS = Counter(
    "resilient_rollout_aborts",
    "Rollouts aborted, by reason (CanaryRestarts, CanaryNotReady, ProgressDeadlineExceeded...).",
    ["reason"],
)
ROLLOUT_STEP = Gauge(
    "resilient_rollout_step",
    "Current step of the service's rollout (0-based; the number of steps while promoting).",
    ["namespace", "service"],
)
ROLLOUT_WEIGHT = Gauge(
    "resilient_rollout_weight",
    "Percent of ready pods that run the new template.",
    ["namespace", "service"],
)
ROLLOUT_SECONDS = Histogram(
    "resilient_rollout_duration_seconds",
    "From a rollout's start to its end, by result.",
    ["result"],
    buckets=(10, 30, 60, 120, 300, 600, 1200, 3600, 7200),
)
ABORT_DECISION_SECONDS = Histogram(
    "resilient_rollout_abort_decision_seconds",
    "From the first failing signal of a new pod to the abort decision.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
DEPLOYMENTS = Counter(
    "resilient_deployments",
    "DORA: releases that reached every pod (rollouts promoted).",
    ["namespace", "service"],
)
CHANGE_FAILURES = Counter(
    "resilient_change_failures",
    "DORA: releases that failed (aborted or rolled back).",
    ["namespace", "service"],
)
TIME_TO_RESTORE = Histogram(
    "resilient_time_to_restore_seconds",
    "DORA: from the first failing signal of a bad release to the stable track fully restored.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)

CACHE_REBUILDS = Counter(
    "resilient_cache_rebuilds",
    "Times the API server's resourceVersion went back (etcd restored from a backup) and every "
    "cache was rebuilt from LISTs.",
)

# what an availability SLO needs, per service (recording rules turn them into availability,
# error budget and burn rates: manifests/overlays/prometheus/rules)
SERVICE_AVAILABLE = Gauge(
    "resilient_service_available",
    "1 while the service has the ready pods its availability policy needs, else 0.",
    ["namespace", "service"],
)
SERVICE_READY_PODS = Gauge(
    "resilient_service_ready_pods", "Ready pods of the service, every track.",
    ["namespace", "service"],
)
SERVICE_REQUIRED_PODS = Gauge(
    "resilient_service_required_pods",
    "Pods that must be available by the service's availability policy.",
    ["namespace", "service"],
)
