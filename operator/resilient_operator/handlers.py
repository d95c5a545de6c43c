"""kopf registrations: the only place that talks to kopf.

Watch events only update the in-memory World and enqueue the ResilientService they concern;
workers take keys off the queue and run the one reconcile in a thread. Nothing here decides.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import kopf
import prometheus_client

from . import metrics, models
from .api import RESOURCES, Api, ApiError, load_client
from .builders import CHILD_KINDS
from .leader import LeaderElector
from .reconciler import Reconciler
from .workqueue import WorkQueue
from .world import World

log = logging.getLogger("resilient_operator")

MANAGED = {models.LABEL_MANAGED_BY: models.MANAGED_BY}


@dataclass
class Config:
    """Operator settings, from the command line or the environment."""

    metrics_port: int = int(os.environ.get("RESILIENT_METRICS_PORT", "8080"))
    metrics_address: str = os.environ.get("RESILIENT_METRICS_ADDRESS", "0.0.0.0")
    workers: int = int(os.environ.get("RESILIENT_WORKERS", "8"))
    resync_seconds: float = float(os.environ.get("RESILIENT_RESYNC_SECONDS", "300"))
    leader_elect: bool = os.environ.get("RESILIENT_LEADER_ELECT", "") in ("1", "true", "yes")
    lease_namespace: str = os.environ.get("RESILIENT_LEASE_NAMESPACE", "resilient-system")
    lease_name: str = os.environ.get("RESILIENT_LEASE_NAME", "resilient-operator")
    lease_seconds: int = int(os.environ.get("RESILIENT_LEASE_SECONDS", "10"))
    identity: str = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    namespaces: list[str] = field(default_factory=list)


CONFIG = Config()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Settings, clients, caches, the metrics endpoint and the workers."""
    # kopf posts no events of its own at INFO (one per handled watch event would be a storm)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.networking.request_timeout = 60

    cfg = CONFIG
    memo.world = World()
    memo.queue = WorkQueue()
    memo.api = Api(load_client())
    memo.reconciler = Reconciler(memo.world, memo.api)
    memo.executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=cfg.workers, thread_name_prefix="reconcile")
    memo.elector = LeaderElector(
        memo.api if cfg.leader_elect else None, cfg.lease_namespace, cfg.lease_name,
        cfg.identity, time.time, lease_seconds=cfg.lease_seconds)
    # one LIST of everything before the first reconcile (see World.prime)
    await asyncio.get_running_loop().run_in_executor(
        memo.executor, memo.world.prime, memo.api, cfg.namespaces)
    if cfg.metrics_port and not getattr(memo, "metrics_started", False):
        prometheus_client.start_http_server(cfg.metrics_port, cfg.metrics_address)
        memo.metrics_started = True
        log.info("metrics on http://%s:%d/metrics", cfg.metrics_address, cfg.metrics_port)
    memo.tasks = [asyncio.create_task(_worker(memo)) for _ in range(cfg.workers)]
    _enqueue_all(memo)
    memo.tasks.append(asyncio.create_task(_resync(memo, cfg.resync_seconds)))
    memo.tasks.append(asyncio.create_task(memo.elector.run(lambda: _enqueue_all(memo))))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    for task in getattr(memo, "tasks", []):
        task.cancel()
    if hasattr(memo, "api"):  # the last events explain the last actions: post them
        await asyncio.get_running_loop().run_in_executor(None, memo.api.flush_events)
    if hasattr(memo, "executor"):
        memo.executor.shutdown(wait=False, cancel_futures=True)


def _enqueue_all(memo: kopf.Memo) -> None:
    for key in memo.world.resource_keys():
        memo.queue.add(key)


async def _worker(memo: kopf.Memo) -> None:
    loop = asyncio.get_running_loop()
    queue: WorkQueue = memo.queue
    while True:
        key = await queue.get()
        try:
            if not memo.elector.is_leader():
                continue  # the standby keeps its caches warm but never acts
            started = time.perf_counter()
            delay = await loop.run_in_executor(memo.executor, memo.reconciler.reconcile, key)
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
            metrics.RECONCILES.labels(result="ok").inc()
            queue.forget(key)
            if delay is not None:
                queue.add_after(key, delay)
        except asyncio.CancelledError:
            raise
        except ApiError as e:
            if e.namespace_terminating:
                # the namespace goes, and the resource with it: do not fight the deletion
                log.info("reconcile of %s: namespace is terminating; not retrying", key)
                queue.forget(key)
                continue
            # the API refused (conflict, throttled...): retry later
            metrics.RECONCILES.labels(result="error").inc()
            backoff = queue.retry(key)
            log.warning("reconcile of %s: %s; retrying in %.1fs", key, e, backoff)
        except Exception:
            metrics.RECONCILES.labels(result="error").inc()
            backoff = queue.retry(key)
            log.exception("reconcile of %s failed; retrying in %.1fs", key, backoff)
        finally:
            queue.done(key)


async def _resync(memo: kopf.Memo, every: float) -> None:
    """A slow safety net; watches and deadlines do the real work."""
    while True:
        await asyncio.sleep(every)
        _enqueue_all(memo)


# -- watches ------------------------------------------------------------------------------------


def _deleted(event: kopf.RawEvent) -> bool:
    return event.get("type") == "DELETED"


@kopf.on.event(models.GROUP, models.VERSION, models.PLURAL)
async def resource_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.world.set_resource(event["object"], _deleted(event))
    if _deleted(event):
        memo.queue.cancel(key)
    memo.queue.add(key)


def _watch_child(kind: str, group: str, version: str, plural: str) -> None:
    async def child_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        key = memo.world.set_child(kind, event["object"], _deleted(event))
        if key is not None:
            memo.queue.add(key)

    kopf.on.event(group, version, plural, labels=MANAGED, id=f"{plural}-event")(child_event)


# the children, watched by the operator's label only
for _kind in CHILD_KINDS:
    _prefix, _plural = RESOURCES[_kind]
    _parts = _prefix.strip("/").split("/")  # ["api", "v1"] or ["apis", group, version]
    _watch_child(_kind, "" if _parts[0] == "api" else _parts[1], _parts[-1], _plural)


@kopf.on.event("", "v1", "pods", labels=MANAGED)
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    key = memo.world.set_pod(event["object"], _deleted(event))
    if key is not None:
        memo.queue.add(key)


@kopf.on.event("", "v1", "nodes")
async def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    for key in memo.world.set_node(event["object"], _deleted(event)):
        memo.queue.add(key)
