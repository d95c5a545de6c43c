"""A work queue of ResilientService keys, as client-go's: deduplicated, one worker per key.

Watch events add keys; a key added while it is being reconciled is reconciled once more after;
``add_after`` wakes a key at a deadline (healing thresholds) without polling, and a woken key
goes ahead of the keys that only need their status refreshed, so a heal is not stuck behind a
backlog; failures back off exponentially per key.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class WorkQueue:
    """Keys to reconcile. Use from the event loop's thread only."""

    def __init__(self, base_delay: float = 0.5, max_delay: float = 300.0) -> None:
        self._urgent: deque[Hashable] = deque()
        self._normal: deque[Hashable] = deque()
        self._wakeup = asyncio.Event()
        self._dirty: set[Hashable] = set()
        self._urgent_keys: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._failures: dict[Hashable, int] = {}
        self.base_delay = base_delay
        self.max_delay = max_delay

    def __len__(self) -> int:
        return len(self._dirty)

    def add(self, key: Hashable, urgent: bool = False) -> None:
        """Reconcile this key soon (once, however often it is added before then)."""
        if urgent:
            if key not in self._urgent_keys and key not in self._processing:
                self._urgent.append(key)  # may also sit in the normal lane: get() skips stale
            self._urgent_keys.add(key)
        if key in self._dirty:
            if urgent:
                self._wakeup.set()
            return
        self._dirty.add(key)
        if key not in self._processing:
            if not urgent:
                self._normal.append(key)
            self._wakeup.set()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Reconcile this key, ahead of the others, after ``delay`` seconds (the earliest of
        pending deadlines wins)."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key, urgent=True)

    def retry(self, key: Hashable) -> float:
        """Back off a failed key exponentially; return the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self.max_delay, self.base_delay * 2**failures)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        """The key succeeded: reset its backoff."""
        self._failures.pop(key, None)

    def cancel(self, key: Hashable) -> None:
        """Drop pending deadlines of a key (the resource is gone)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    async def get(self) -> Hashable:
        """The next key to reconcile, urgent ones first; call ``done`` when finished with it."""
        while True:
            while not self._urgent and not self._normal:
                self._wakeup.clear()
                await self._wakeup.wait()
            key = self._urgent.popleft() if self._urgent else self._normal.popleft()
            if key not in self._dirty or key in self._processing:
                continue  # a stale second entry: the key was handed out already
            self._dirty.discard(key)
            self._urgent_keys.discard(key)
            self._processing.add(key)
            return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            (self._urgent if key in self._urgent_keys else self._normal).append(key)
            self._wakeup.set()
