"""Leader election on a coordination.k8s.io Lease, so that exactly one replica acts.

Every replica watches and keeps its caches warm (a hot standby); only the holder of the Lease
reconciles. A Lease rather than kopf's peering: peering pauses the standby's watches entirely,
so a takeover would start from cold caches; with a Lease the standby takes over within
``lease_seconds`` plus one retry interval, with its view of the world already built.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .. import metrics
from ..kube.api import Api, ApiError
from ..resource.times import format_time, parse_time

log = logging.getLogger(__name__)


def _micro(epoch: float) -> str:
    return format_time(epoch).replace("Z", ".000000Z")


class LeaderElector:
    """Holds (or waits for) one Lease; ``is_leader`` tells the workers whether to act."""

    def __init__(
        self,
        api: Api | None,
        namespace: str,
        name: str,
        identity: str,
        clock: Callable[[], float],
        lease_seconds: int = 10,
        retry_seconds: float = 2.0,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.retry_seconds = retry_seconds
        self.leader = api is None  # without election, this replica always acts
        self.answered_at: float | None = None  # the last round the API server answered
        metrics.IS_LEADER.set(1 if self.leader else 0)

    def is_leader(self) -> bool:
        return self.leader

    def ready(self) -> tuple[bool, str]:
        """Able to act or to take over: the API server answered a recent round."""
        if self.api is None:
            return True, "no leader election: this replica acts"
        if self.answered_at is None or self.clock() - self.answered_at > 3 * self.retry_seconds:
            return False, "the API server has not answered the leader election lately"
        return True, "leader" if self.leader else "standby, ready to take over"

    def _path(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases/{self.name}"

    def try_acquire(self) -> bool:
        """One round: create, renew or take over the Lease. True while this replica holds it."""
        assert self.api is not None
        now = self.clock()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "renewTime": _micro(now),
        }
        try:
            lease: dict[str, Any] | None = self.api.request(
                "get", "leases", "GET", self._path())
        except ApiError as e:
            if not e.not_found:
                raise
            lease = None
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0}}
            try:
                self.api.request("create", "leases", "POST", self._path().rsplit("/", 1)[0], body)
                return True
            except ApiError as e:
                if e.status == 409:
                    return False
                raise
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        renewed = parse_time(current.get("renewTime")) or 0.0
        duration = int(current.get("leaseDurationSeconds") or self.lease_seconds)
        if holder not in (self.identity, None, "") and now < renewed + duration:
            return False
        new_spec = {**current, **spec}
        if holder != self.identity:
            new_spec["acquireTime"] = _micro(now)
            new_spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        try:
            # a PUT carrying the resourceVersion read: two contenders cannot both win
            self.api.request("update", "leases", "PUT", self._path(), lease)
            return True
        except ApiError as e:
            if e.status == 409:
                return False
            raise

    async def run(self, on_elected: Callable[[], None]) -> None:
        """Keep trying to hold the Lease; call ``on_elected`` when this replica starts acting."""
        if self.api is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            try:
                held = await loop.run_in_executor(None, self.try_acquire)
                self.answered_at = self.clock()
            except Exception as e:  # noqa: BLE001 - an API hiccup must not kill the elector
                log.warning("leader election: %s", e)
                held = False
                # a leader that cannot renew stops acting before its lease runs out
            if held and not self.leader:
                log.info("leader election: %s now holds lease %s/%s", self.identity,
                         self.namespace, self.name)
                self.leader = True
                on_elected()
            elif not held and self.leader:
                log.warning("leader election: %s lost lease %s/%s", self.identity,
                            self.namespace, self.name)
                self.leader = False
            metrics.IS_LEADER.set(1 if self.leader else 0)
            await asyncio.sleep(self.retry_seconds)
