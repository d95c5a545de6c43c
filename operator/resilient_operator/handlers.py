"""kopf registrations: the only place that talks to kopf.

Watch events only update the in-memory World and enqueue the ResilientService they concern;
workers take keys off the queue and run the one reconcile in a thread. Nothing here decides.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import Any

import kopf

from . import metrics
from .builders.children import CHILD_KINDS
from .kube.api import Api, load_client
from .kube.kinds import KINDS
from .kube.world import World
from .reconcile.reconciler import Reconciler
from .resource import models
from .runtime import health
from .runtime.leader import LeaderElector
from .runtime.worker import work
from .runtime.workqueue import WorkQueue
from .settings import SETTINGS

log = logging.getLogger("resilient_operator")

MANAGED = {models.LABEL_MANAGED_BY: models.MANAGED_BY}
RELIST_SETTLE_SECONDS = 1.0


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Settings, clients, caches, the metrics endpoint and the workers."""
    # kopf posts no events of its own at INFO (one per handled watch event would be a storm)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.networking.request_timeout = 60
    # a watch whose API server went away retries every few seconds, not after kopf's
    # default waits of up to 34 s: converge within seconds of the API server answering again
    settings.networking.error_backoffs = [1, 1, 2, 2, 3, 3, 5, 5, 5]

    cfg = SETTINGS
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
        def ready() -> tuple[bool, str]:
            if not memo.world.primed:
                return False, "the watch cache is not primed yet"
            return memo.elector.ready()

        health.serve(cfg.metrics_address, cfg.metrics_port, ready)
        memo.metrics_started = True
        log.info("metrics on http://%s:%d/metrics, readiness on /readyz", cfg.metrics_address,
                 cfg.metrics_port)
    failing: set[Any] = set()
    memo.tasks = [asyncio.create_task(work(memo.queue, memo.reconciler.reconcile, memo.executor,
                                           memo.elector.is_leader, failing))
                  for _ in range(cfg.workers)]
    _enqueue_all(memo)
    memo.tasks.append(asyncio.create_task(_resync(memo, cfg.resync_seconds)))
    memo.tasks.append(asyncio.create_task(_sweep(memo, cfg.namespaces)))
    memo.relisted = set()
    memo.relisted_wake = asyncio.Event()
    memo.tasks.append(asyncio.create_task(_resync_relisted(memo, cfg.namespaces)))
    memo.tasks.append(asyncio.create_task(
        _watch_for_restore(memo, cfg.namespaces, cfg.restore_probe_seconds)))
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


async def _sweep(memo: kopf.Memo, namespaces: list[str]) -> None:
    """After the watches have listed: drop what was deleted between the priming LIST and
    theirs (no watch event will ever say so). Repeated while some primed object has not yet
    been seen by a watch; usually once."""
    loop = asyncio.get_running_loop()
    for delay in (5, 10, 30, 60):
        await asyncio.sleep(delay)
        try:
            touched = await loop.run_in_executor(memo.executor, memo.world.sweep, memo.api,
                                                 namespaces)
        except Exception as e:  # noqa: BLE001 - retried at the next delay
            log.warning("cache sweep failed: %s", e)
            continue
        for key in touched:
            memo.queue.add(key)
        if touched:
            log.info("cache sweep: %d services had objects deleted before the watches started",
                     len(touched))
        if not memo.world.unconfirmed():
            return


async def _resync_relisted(memo: kopf.Memo, namespaces: list[str]) -> None:
    """A watch that relists (410 Gone after a compaction or a restore, or its periodic restart)
    says nothing of what was deleted while it was down: compare the cache with a fresh LIST of
    the kinds that relisted (World.resync)."""
    loop = asyncio.get_running_loop()
    failing = False
    while True:
        await memo.relisted_wake.wait()
        await asyncio.sleep(RELIST_SETTLE_SECONDS)  # one resync for the whole burst
        memo.relisted_wake.clear()
        kinds, memo.relisted = memo.relisted, set()
        try:
            touched = await loop.run_in_executor(memo.executor, memo.world.resync, memo.api,
                                                 namespaces, kinds)
        except Exception as e:  # noqa: BLE001 - tried again shortly
            if not failing:  # one line per failure, one per recovery
                log.warning("cache resync after a relist failed: %s; trying again", e)
            failing = True
            memo.relisted |= kinds
            memo.relisted_wake.set()
            await asyncio.sleep(5)
            continue
        if failing:
            log.info("cache resync after a relist recovered")
            failing = False
        for key in touched:
            memo.queue.add(key)
        if touched:
            log.info("cache resync after a relist of %s: %d services had objects deleted while "
                     "the watch was down", ", ".join(sorted(kinds)), len(touched))


async def _watch_for_restore(memo: kopf.Memo, namespaces: list[str], every: float) -> None:
    """etcd restored from a backup without its revisions moved forward: resourceVersions go
    back, and a watch resumed at a version from the lost future gets no 410; it waits, silent,
    until the revision passes that version again, skipping everything in between. Only a
    question to the API server tells: its current resourceVersion is lower than one already
    seen. Then the caches are rebuilt from LISTs, the memories dropped, every service
    reconciled, and again at each probe until the revision is past what the watches wait
    for."""
    loop = asyncio.get_running_loop()
    blind_until: int | None = None
    while True:
        await asyncio.sleep(every)
        seen = memo.world.max_revision
        try:
            now = await loop.run_in_executor(
                memo.executor, memo.api.revision, namespaces[0] if namespaces else None)
        except Exception:  # noqa: BLE001 - unreachable: the watches say so already
            continue
        if now is None:
            continue
        if now < seen:
            if blind_until is None:
                log.warning("the API server's resourceVersion went back from %d to %d: etcd "
                            "was restored from a backup; rebuilding every cache", seen, now)
                metrics.CACHE_REBUILDS.inc()
            blind_until = max(blind_until or 0, seen)
        if blind_until is None:
            continue
        try:
            await loop.run_in_executor(memo.executor, memo.world.rebuild, memo.api, namespaces)
        except Exception as e:  # noqa: BLE001 - the next probe tries again
            log.warning("cache rebuild failed: %s; trying again", e)
            continue
        memo.reconciler.reset_all_memory()
        _enqueue_all(memo)
        if now > blind_until:
            log.info("the watches are current again (resourceVersion %d); caches rebuilt", now)
            blind_until = None


def _listing(memo: kopf.Memo, kind: str, event: kopf.RawEvent) -> None:
    """kopf delivers a watch's LIST as events without a type."""
    if event.get("type") is None and hasattr(memo, "relisted_wake"):
        memo.relisted.add(kind)
        memo.relisted_wake.set()


def _went_back(old: dict[str, Any] | None, new: Any) -> bool:
    """The same object at an older resourceVersion: etcd was restored from a backup."""
    before = (old or {}).get("metadata", {}).get("resourceVersion", "")
    after = new.get("metadata", {}).get("resourceVersion", "")
    same = (old or {}).get("metadata", {}).get("uid") == new.get("metadata", {}).get("uid")
    return same and before.isdigit() and after.isdigit() and int(after) < int(before)


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
    _listing(memo, models.KIND, event)
    meta = event["object"]["metadata"]
    if _went_back(memo.world.resource((meta["namespace"], meta["name"])), event["object"]):
        # what this process remembers of it is from a future that no longer happened
        log.warning("%s/%s: resourceVersion went back (etcd restored from a backup?); "
                    "reading its state afresh", meta["namespace"], meta["name"])
        memo.reconciler.reset_memory((meta["namespace"], meta["name"]))
    key = memo.world.set_resource(event["object"], _deleted(event))
    if _deleted(event):
        memo.queue.cancel(key)
    memo.queue.add(key)


def _watch_child(kind: str) -> None:
    info = KINDS[kind]

    async def child_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        _listing(memo, kind, event)
        key = memo.world.set_child(kind, event["object"], _deleted(event))
        if key is not None:
            memo.queue.add(key)

    kopf.on.event(info.group, info.version, info.plural, labels=MANAGED,
                  id=f"{info.plural}-event")(child_event)


# the children (every kind of the roles table), watched by the operator's label only
for _kind in CHILD_KINDS:
    _watch_child(_kind)


@kopf.on.event("", "v1", "pods", labels=MANAGED)
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _listing(memo, "Pod", event)
    key = memo.world.set_pod(event["object"], _deleted(event))
    if key is not None:
        memo.queue.add(key)


@kopf.on.event("", "v1", "nodes")
async def node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _listing(memo, "Node", event)
    for key in memo.world.set_node(event["object"], _deleted(event)):
        memo.queue.add(key)
