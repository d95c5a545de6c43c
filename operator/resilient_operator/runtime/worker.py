"""Workers: take keys off the work queue and run the reconcile in a thread, with backoff on
failure. One clear log line per failure and one per recovery, never a traceback per retry of
an API error."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable, Hashable

from .. import metrics
from ..kube.api import ApiError
from .workqueue import WorkQueue

log = logging.getLogger("resilient_operator")


async def work(queue: WorkQueue, reconcile: Callable[[Hashable], float | None],
               executor: concurrent.futures.Executor, is_leader: Callable[[], bool],
               failing: set[Hashable]) -> None:
    """One worker: forever take a key, reconcile it, requeue it when it asks or fails."""
    loop = asyncio.get_running_loop()
    while True:
        key = await queue.get()
        try:
            if not is_leader():
                continue  # the standby keeps its caches warm but never acts
            started = time.perf_counter()
            delay = await loop.run_in_executor(executor, reconcile, key)
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
            metrics.RECONCILES.labels(result="ok").inc()
            queue.forget(key)
            if key in failing:
                failing.discard(key)
                log.info("reconcile of %s recovered", key)
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
            metrics.RECONCILES.labels(result="error").inc()
            backoff = queue.retry(key)
            if key not in failing:
                failing.add(key)
                log.warning("reconcile of %s: %s; retrying with backoff (%.1fs first)", key, e,
                            backoff)
        except Exception as e:
            metrics.RECONCILES.labels(result="error").inc()
            backoff = queue.retry(key)
            if key not in failing:  # the traceback once; then one line per retry
                failing.add(key)
                log.exception("reconcile of %s failed; retrying with backoff", key)
            else:
                log.warning("reconcile of %s failed again (%s: %s); retrying in %.1fs", key,
                            type(e).__name__, e, backoff)
        finally:
            queue.done(key)
