"""The health gate of a rollout: which new pod aborts it, why, and when to look again."""

from __future__ import annotations

import dataclasses

from resilient_operator.policy import rollout
from resilient_operator.policy.rollout import health
from resilient_operator.resource.models import RolloutHealth
from resilient_operator.resource.views import NodeView, PodView

NOW = 10_000.0
NODES = {"n0": NodeView("n0", True, 0.0), "dead": NodeView("dead", False, NOW - 600)}
GATE = RolloutHealth()  # maxRestarts 1, notReadyTimeout 60s, startTimeout 5m, oomKilled Abort


def new_pod(name: str = "c1", **fields) -> PodView:
    base = PodView(name=name, uid=f"uid-{name}", labels={}, created=NOW - 1000,
                   ready_since=NOW - 900, node="n0")
    return dataclasses.replace(base, **fields)


def test_healthy_new_pods_give_no_verdict_and_no_deadline():
    assert health([new_pod("c1"), new_pod("c2")], GATE, NODES, NOW) == (None, None, None)


def test_restarts_above_max_restarts_abort():
    verdict, _, first_bad = health([new_pod(restarts=1)], GATE, NODES, NOW)
    assert verdict is None and first_bad == NOW  # a restart is a first bad signal already
    verdict, _, _ = health([new_pod(restarts=2)], GATE, NODES, NOW)
    assert verdict == rollout.Verdict(rollout.CANARY_RESTARTS,
                                      "new pod c1 restarted 2 times (health.maxRestarts 1)")


def test_an_oom_kill_aborts_unless_ignored():
    verdict, _, _ = health([new_pod(oom_killed=True)], GATE, NODES, NOW)
    assert verdict == rollout.Verdict(rollout.CANARY_OOM,
                                      "a container of new pod c1 was OOMKilled")
    ignored = RolloutHealth(oom_killed="Ignore")
    assert health([new_pod(oom_killed=True)], ignored, NODES, NOW)[0] is None


def test_a_failed_new_pod_aborts():
    verdict, _, _ = health([new_pod(phase="Failed", ready=False)], GATE, NODES, NOW)
    assert verdict == rollout.Verdict(rollout.CANARY_FAILED, "new pod c1 failed")


def test_a_new_pod_that_does_not_start_within_start_timeout_aborts():
    pending = new_pod(phase="Pending", ready=False, ready_since=None, created=NOW - 299)
    assert health([pending], GATE, NODES, NOW) == (None, NOW + 1, None)
    verdict, _, _ = health([pending], GATE, NODES, NOW + 1)
    assert verdict == rollout.Verdict(rollout.CANARY_NOT_STARTED,
                                      "new pod c1 has not started for 5m (Pending)")
    creating = new_pod(ready=False, waiting_reason="ContainerCreating", created=NOW - 300)
    verdict, _, _ = health([creating], GATE, NODES, NOW)
    assert verdict is not None and verdict.message.endswith("(ContainerCreating)")


def test_a_new_pod_running_but_not_ready_for_not_ready_timeout_aborts():
    slow = new_pod(ready=False, ready_since=NOW - 59)
    assert health([slow], GATE, NODES, NOW) == (None, NOW + 1, NOW - 59)
    verdict, _, first_bad = health([slow], GATE, NODES, NOW + 1)
    assert verdict == rollout.Verdict(
        rollout.CANARY_NOT_READY, "new pod c1 has been running but not ready for 60s")
    assert first_bad == NOW - 59


def test_pods_disrupted_or_on_a_lost_node_are_not_the_releases_fault():
    failed = {"phase": "Failed", "ready": False}
    assert health([new_pod(disrupted=True, **failed)], GATE, NODES, NOW)[0] is None
    assert health([new_pod(terminating=True, **failed)], GATE, NODES, NOW)[0] is None
    assert health([new_pod(node="dead", **failed)], GATE, NODES, NOW)[0] is None
    # a node the operator does not know yet is not a lost node
    assert health([new_pod(node="unknown", **failed)], GATE, NODES, NOW)[0] is not None


def test_the_earliest_deadline_and_the_first_bad_signal_over_all_new_pods():
    pods = [new_pod("c3", ready=False, ready_since=NOW - 10),
            new_pod("c1", ready=False, ready_since=NOW - 30),
            new_pod("c2", phase="Pending", ready=False, created=NOW - 290)]
    verdict, check, first_bad = health(pods, GATE, NODES, NOW)
    assert verdict is None and check == NOW + 10 and first_bad == NOW - 30
    # the verdict names the first failing pod by name
    both = [new_pod("b", restarts=3), new_pod("a", restarts=5)]
    verdict, _, _ = health(both, GATE, NODES, NOW)
    assert verdict is not None and verdict.message.startswith("new pod a restarted 5 times")
