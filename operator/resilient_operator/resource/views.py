"""What the decisions see of pods and nodes: plain, immutable data (built in kube/views.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PodView:
    """What healing and rollouts need to know of a pod."""

    name: str
    uid: str
    labels: dict[str, str]
    created: float
    phase: str = "Running"
    ready: bool = True
    ready_since: float | None = None  # last transition of the Ready condition
    node: str | None = None
    restarts: int = 0
    waiting_reason: str | None = None
    unschedulable: bool = False
    terminating: bool = False
    # when the operator itself saw Ready change (conditions have one-second resolution)
    seen_ready_change: float | None = None
    oom_killed: bool = False  # a container's last termination was OOMKilled
    disrupted: bool = False  # condition DisruptionTarget: evicted, preempted, node lost
    template_hash: str | None = None  # the pod-template-hash label

    @property
    def not_ready_since(self) -> float:
        """When the pod stopped (or never started) being ready, to the operator's knowledge."""
        since = self.ready_since if self.ready_since is not None else self.created
        if self.seen_ready_change is not None:
            since = max(since, self.seen_ready_change)
        return since


@dataclass(frozen=True)
class NodeView:
    """A node's readiness: ready, and since when its Ready condition has been as it is."""

    name: str
    ready: bool
    since: float
    zone: str | None = None
