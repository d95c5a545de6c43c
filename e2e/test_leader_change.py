"""A leader change right after an eviction: the new leader reads the heal from status and does
not heal again within the cooldown (nor the same pod twice)."""

from __future__ import annotations

import signal
import time

import pytest

from .conftest import FAULT_POD, Operator, apply, events, get, kubectl, ready_pods, rsvc, wait_for

pytestmark = pytest.mark.usefixtures("kwok")

COOLDOWN = 40


def gone(ns: str, pod: str) -> bool:
    p = get("pod", pod, ns)
    return p is None or bool(p["metadata"].get("deletionTimestamp"))


def test_the_new_leader_respects_the_cooldown_of_a_heal_the_old_one_made(
        ns: str, cluster: None) -> None:
    kubectl("create", "namespace", "resilient-system", check=False)
    env = {"RESILIENT_LEASE_NAME": f"e2e-heal-{ns[-5:]}", "RESILIENT_LEASE_SECONDS": "10"}
    lease = ["--leader-elect", "--lease-namespace", "resilient-system"]
    first = Operator("operator-heal-a", extra=lease, env=env).start()
    second = None
    try:
        wait_for("a leader", lambda: first.metric("resilient_leader") == 1, timeout=30)
        second = Operator("operator-heal-b", extra=lease, env=env).start()
        # given six pods, two of which go not-ready (a third: no storm), one heal per cooldown
        apply(rsvc("web", 6, healing={"notReadyTimeout": "3s", "cooldown": f"{COOLDOWN}s"}),
              ns)
        pods = wait_for("6 ready", lambda: len(p := ready_pods(ns, "web")) == 6 and p,
                        timeout=60)
        sick = [p["metadata"]["name"] for p in pods[:2]]
        for name in sick:
            kubectl("label", "pod", name, "-n", ns, f"{FAULT_POD}=not-ready")
        # when the leader is killed right after its first eviction
        first_victim = wait_for("an eviction", lambda: next(
            (n for n in sick if gone(ns, n)), None), timeout=30, interval=0.05)
        first.stop(signal.SIGKILL)
        evicted_at = time.monotonic()
        other = next(n for n in sick if n != first_victim)
        wait_for("the standby leads", lambda: second.metric("resilient_leader") == 1,
                 timeout=30)
        # then the new leader waits out the cooldown the old one started
        while time.monotonic() - evicted_at < COOLDOWN - 3:
            assert not gone(ns, other), "healed again within the cooldown"
            time.sleep(0.5)
        # and heals the other pod after it, once
        wait_for("the second heal", lambda: gone(ns, other), timeout=30)
        wait_for("6 ready again", lambda: len(ready_pods(ns, "web")) == 6, timeout=60)
        status = get("rsvc", "web", ns)["status"]["healing"]
        assert status["podsReplaced"] == 2, status
        replaced = [e["message"] for e in events(ns, "web") if e["reason"] == "PodReplaced"]
        assert len(replaced) == 2 and all(
            any(n in m for m in replaced) for n in sick), replaced
    finally:
        first.stop(signal.SIGKILL)
        if second:
            second.stop()
