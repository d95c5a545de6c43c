"""A leader change in the middle of a rollout: the standby continues at the same step."""

from __future__ import annotations

import signal
import time

import pytest

from .conftest import Operator, kubectl, wait_for
from .test_rollout import canary_spec, command, phase_is, reasons, release, service, state

pytestmark = pytest.mark.usefixtures("kwok")


def test_the_leader_killed_mid_step_is_continued_by_the_standby(ns: str, cluster: None) -> None:
    kubectl("create", "namespace", "resilient-system", check=False)
    lease = ["--leader-elect", "--lease-namespace", "resilient-system"]
    first = Operator("operator-leader-a", extra=lease).start()
    second = None
    try:
        wait_for("a leader", lambda: first.metric("resilient_leader") == 1, timeout=30)
        second = Operator("operator-leader-b", extra=lease).start()
        service(ns, 3, canary_spec([{"setWeight": 34}, {"pause": {}}, {"setWeight": 67},
                                    {"pause": {}}]))
        release(ns, "registry.example/app:2")
        wait_for("paused at step 2", lambda: (s := phase_is(ns, "Paused")) and
                 s["stepIndex"] == 1, timeout=60)
        before = reasons(ns)
        # when the leader dies mid-rollout
        first.stop(signal.SIGKILL)
        wait_for("the standby leads", lambda: second.metric("resilient_leader") == 1,
                 timeout=30)
        time.sleep(2)
        # then it continues at the same step, repeating nothing
        assert state(ns)["stepIndex"] == 1
        assert reasons(ns).count("RolloutStarted") == before.count("RolloutStarted") == 1
        command(ns, "promote", "after-failover")
        wait_for("paused at step 4", lambda: (s := phase_is(ns, "Paused")) and
                 s["stepIndex"] == 3, timeout=60)
        assert reasons(ns).count("RolloutStepCompleted") == 3
    finally:
        first.stop()
        if second:
            second.stop()




@pytest.mark.chaos
def test_the_leader_killed_right_after_starting_a_step_is_not_repeated(
        ns: str, cluster: None) -> None:
    kubectl("create", "namespace", "resilient-system", check=False)
    env = {"RESILIENT_LEASE_NAME": f"e2e-step-{ns[-5:]}", "RESILIENT_LEASE_SECONDS": "10"}
    lease = ["--leader-elect", "--lease-namespace", "resilient-system"]
    first = Operator("operator-step-a", extra=lease, env=env).start()
    second = None
    try:
        wait_for("a leader", lambda: first.metric("resilient_leader") == 1, timeout=30)
        second = Operator("operator-step-b", extra=lease, env=env).start()
        service(ns, 3, canary_spec([{"setWeight": 34}, {"pause": {}}, {"setWeight": 67},
                                    {"pause": {}}]))
        release(ns, "registry.example/app:2")
        wait_for("paused at step 2", lambda: (s := phase_is(ns, "Paused")) and
                 s["stepIndex"] == 1, timeout=60)
        # when the leader is killed the moment it has started step 3 (the canary's scale-up)
        command(ns, "promote", "go")
        wait_for("step 3 started", lambda: (s := state(ns)) and s["stepIndex"] == 2,
                 timeout=30, interval=0.05)
        first.stop(signal.SIGKILL)
        wait_for("the standby leads", lambda: second.metric("resilient_leader") == 1,
                 timeout=30)
        # then the standby finishes step 3 and pauses at step 4; no step is done twice
        wait_for("paused at step 4", lambda: (s := phase_is(ns, "Paused")) and
                 s["stepIndex"] == 3, timeout=60)
        done = reasons(ns)
        assert done.count("RolloutStarted") == 1, done
        assert done.count("RolloutStepCompleted") == 3, done
        # the promote token was acted on once: still paused at step 4, not promoted further
        time.sleep(3)
        assert state(ns)["stepIndex"] == 3
    finally:
        first.stop(signal.SIGKILL)
        if second:
            second.stop()
