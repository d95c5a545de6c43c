"""The rollout actor, step by step, against the fake API with a fixed clock: given this world,
these API calls happen."""

from __future__ import annotations

import copy
from typing import Any

from .conftest import Harness, pod, resource

CANARY = {"strategy": "Canary",
          "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50},
                    {"pause": {"duration": "1m"}}]}


def controllers(h: Harness) -> None:
    """Play the Deployment controller: every Deployment has its pods, all available."""
    for key, obj in list(h.api.objects.items()):
        if key[0] != "Deployment":
            continue
        dep = copy.deepcopy(obj)
        n = dep["spec"]["replicas"]
        dep["metadata"]["generation"] = 1
        dep["status"] = {"observedGeneration": 1, "replicas": n, "readyReplicas": n,
                         "availableReplicas": n, "updatedReplicas": n}
        h.api.put(dep)


def run(h: Harness, times: int = 1) -> None:
    for _ in range(times):
        h.reconcile()
        controllers(h)


def replicas(h: Harness) -> tuple[int, int | None]:
    canary = h.api.obj("Deployment", "web-canary")
    return (h.api.obj("Deployment", "web")["spec"]["replicas"],
            canary["spec"]["replicas"] if canary else None)


def image(h: Harness, name: str) -> str:
    return h.api.obj("Deployment", name)["spec"]["template"]["spec"]["containers"][0]["image"]


def new_release(h: Harness, tag: str = "2", **annotations: str) -> None:
    body = h.api.obj("ResilientService", "web")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = f"registry.example/web:{tag}"
    body["metadata"]["generation"] += 1
    if annotations:
        body["metadata"].setdefault("annotations", {}).update(annotations)
    h.api.put(body)


def command(h: Harness, annotation: str, token: str) -> None:
    body = h.api.obj("ResilientService", "web")
    body["metadata"].setdefault("annotations", {})[annotation] = token
    h.api.put(body)


def rollout(h: Harness) -> dict[str, Any]:
    return h.status().get("rollout") or {}


def reasons(h: Harness) -> list[str]:
    return [r for _, r, _ in h.api.events]


def canary_pod(name: str, **kw: Any) -> dict[str, Any]:
    p = pod(name, **kw)
    p["metadata"]["labels"]["resilience.dev/track"] = "canary"
    return p


def test_a_canary_goes_through_every_step_and_is_promoted_surge_first(h: Harness):
    h.api.put(resource(replicas=10, rollout=CANARY))
    run(h, 2)
    assert rollout(h)["phase"] == "Idle" and replicas(h) == (10, None)
    new_release(h)
    h.reconcile()
    # the stable track keeps the old template; the canary starts beside it within the surge
    assert rollout(h)["phase"] == "Progressing" and rollout(h)["stepIndex"] == 0
    assert image(h, "web").endswith(":1") and image(h, "web-canary").endswith(":2")
    assert replicas(h) == (10, 2)
    controllers(h)
    run(h)
    assert replicas(h) == (8, 2)  # old pods go only once the new ones are available
    run(h)
    assert rollout(h)["phase"] == "Paused" and rollout(h)["stepIndex"] == 1
    run(h, 3)
    assert rollout(h)["stepIndex"] == 1  # pause {} waits for a promote
    command(h, "resilience.dev/promote", "t1")
    run(h, 3)
    assert rollout(h)["stepIndex"] >= 2 and replicas(h) == (5, 5)
    run(h, 2)
    assert rollout(h)["stepIndex"] == 3 and rollout(h)["phase"] == "Progressing"
    h.clock.now += 60
    run(h, 2)
    assert rollout(h)["phase"] == "Promoting"
    assert image(h, "web").endswith(":2")  # the stable track takes the new template
    run(h, 6)
    assert rollout(h)["phase"] == "Completed"
    assert h.api.obj("Deployment", "web-canary") is None
    assert replicas(h) == (10, None) and image(h, "web").endswith(":2")
    assert [r["result"] for r in rollout(h)["history"]] == ["Promoted"]
    assert rollout(h)["stableRevision"] == rollout(h)["revision"]
    for reason in ("RolloutStarted", "RolloutPaused", "RolloutStepCompleted",
                   "RolloutPromoting", "RolloutCompleted"):
        assert reason in reasons(h)


def test_a_crashing_canary_is_aborted_and_the_stable_template_is_never_touched(h: Harness):
    h.api.put(resource(replicas=4, rollout=CANARY))
    run(h, 2)
    new_release(h)
    run(h, 2)
    h.api.put(canary_pod("web-canary-x", ready=False, since=h.clock.now - 2,
                         status={"phase": "Running", "containerStatuses": [
                             {"name": "app", "restartCount": 3,
                              "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}))
    h.api.calls.clear()
    h.reconcile()
    state = rollout(h)
    assert state["phase"] == "Aborting" and state["lastAbort"]["reason"] == "CanaryRestarts"
    assert state["abortedRevision"] == state["revision"]
    # the abort was written before any child changed
    verbs = [c.verb for c in h.api.calls]
    assert verbs[0] == "patch-status"
    assert all(not image(h, "web").endswith(":2") for _ in range(1))
    controllers(h)
    h.api.objects.pop(("Pod", "shop", "web-canary-x"))
    h.world.set_pod(canary_pod("web-canary-x"), True)
    run(h, 3)
    assert rollout(h)["phase"] == "Aborted"
    assert h.api.obj("Deployment", "web-canary") is None
    assert image(h, "web").endswith(":1") and replicas(h) == (4, None)
    assert "RolloutAborted" in reasons(h) and "StableRestored" in reasons(h)
    degraded = h.condition("Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "RolloutAborted"
    # the aborted revision is never retried by itself
    run(h, 3)
    assert rollout(h)["phase"] == "Aborted" and h.api.obj("Deployment", "web-canary") is None
    # retry starts it again, once
    command(h, "resilience.dev/retry", "r1")
    run(h)
    assert rollout(h)["phase"] == "Progressing" and rollout(h)["stepIndex"] == 0
    assert "RolloutRetried" in reasons(h)


def test_a_token_acts_once_and_a_token_while_idle_is_ignored_for_good(h: Harness):
    h.api.put(resource(replicas=4, rollout=CANARY))
    run(h, 2)
    command(h, "resilience.dev/promote", "early")
    run(h)
    assert "CommandIgnored" in reasons(h)
    assert rollout(h)["commands"]["promote"] == "early"
    new_release(h)
    run(h, 4)
    assert rollout(h)["phase"] == "Paused" and rollout(h)["stepIndex"] == 1  # not promoted
    command(h, "resilience.dev/promote", "p1")
    run(h, 4)
    index = rollout(h)["stepIndex"]
    assert index >= 2
    run(h, 4)  # the same token again does nothing more
    assert rollout(h)["commands"]["promote"] == "p1"
    assert reasons(h).count("RolloutStepCompleted") == rollout(h)["stepIndex"]


def test_abort_wins_over_a_promote_given_at_the_same_time(h: Harness):
    h.api.put(resource(replicas=4, rollout=CANARY))
    run(h, 2)
    new_release(h)
    run(h, 4)
    body = h.api.obj("ResilientService", "web")
    body["metadata"]["annotations"] = {"resilience.dev/promote": "full:x",
                                       "resilience.dev/abort": "a"}
    h.api.put(body)
    run(h)
    assert rollout(h)["phase"] in ("Aborting", "Aborted")
    assert rollout(h)["lastAbort"]["reason"] == "AbortCommand"


def test_a_new_leader_continues_at_the_same_step_and_repeats_nothing(h: Harness):
    h.api.put(resource(replicas=4, rollout=CANARY))
    run(h, 2)
    new_release(h)
    run(h, 4)
    assert rollout(h)["stepIndex"] == 1
    events = len(h.api.events)
    h.restart()
    run(h, 3)
    assert rollout(h)["stepIndex"] == 1 and rollout(h)["phase"] == "Paused"
    assert len(h.api.events) == events  # no transition announced twice


def test_reverting_the_template_removes_the_canary_at_once(h: Harness):
    h.api.put(resource(replicas=4, rollout=CANARY))
    run(h, 2)
    new_release(h)
    run(h, 3)
    assert h.api.obj("Deployment", "web-canary") is not None
    new_release(h, tag="1")
    run(h)
    assert h.api.obj("Deployment", "web-canary") is None
    assert rollout(h)["history"][-1]["result"] == "Superseded"


def test_a_lower_autoscaler_value_is_held_until_the_rollout_ends(h: Harness):
    h.api.put(resource(replicas=10, rollout=CANARY))
    run(h, 2)
    new_release(h)
    run(h, 3)
    body = h.api.obj("ResilientService", "web")
    body["spec"]["replicas"] = 4
    h.api.put(body)
    run(h, 2)
    stable, canary = replicas(h)
    assert stable + (canary or 0) >= 10
    assert "ScaleDownHeld" in reasons(h)


def test_rolling_with_a_bad_template_is_rolled_back_once(h: Harness):
    h.api.put(resource(replicas=3))
    for name in ("a", "b", "c"):
        old = pod(name)
        old["metadata"]["labels"]["pod-template-hash"] = "old"
        h.api.put(old)
    run(h, 2)
    new_release(h)
    run(h)
    assert image(h, "web").endswith(":2") and rollout(h)["phase"] == "Progressing"
    bad = pod("d", ready=False, status={"phase": "Running", "containerStatuses": [
        {"name": "app", "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]})
    bad["metadata"]["labels"]["pod-template-hash"] = "new"
    h.api.put(bad)
    run(h)
    assert rollout(h)["phase"] in ("Aborting", "Aborted")
    assert image(h, "web").endswith(":1")
    assert "RolledBack" in reasons(h)
    run(h, 3)
    assert rollout(h)["phase"] == "Aborted" and image(h, "web").endswith(":1")


def _autoscaled(h: Harness, cpu_use: str) -> None:
    h.api.put(resource(replicas=4, rollout=CANARY,
                       autoscaling={"minReplicas": 2, "maxReplicas": 20,
                                    "targetCPUUtilizationPercentage": 50}))
    body = h.api.obj("ResilientService", "web")
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "100m"}}
    h.api.put(body)
    for name in ("s1", "s2", "s3"):
        h.api.put(pod(name))
        h.api.put({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                   "metadata": {"name": name, "namespace": "shop"},
                   "containers": [{"name": "app", "usage": {"cpu": cpu_use}}]})
    run(h, 2)
    new_release(h)
    run(h, 3)
    body = h.api.obj("ResilientService", "web")
    body["spec"]["replicas"] = 16  # the HPA, hot because of the canary
    h.api.put(body)


def test_a_rise_the_stable_pods_do_not_justify_is_capped(h: Harness):
    _autoscaled(h, cpu_use="60m")  # stable at 60% of requests, target 50%: 4 -> 5
    run(h, 2)
    assert rollout(h)["total"] == 5
    stable, canary = replicas(h)
    assert stable + (canary or 0) <= 6  # 5 plus the surge
    assert "ScaleUpCapped" in reasons(h)


def test_a_rise_the_stable_pods_justify_applies(h: Harness):
    _autoscaled(h, cpu_use="200m")  # stable at 200% of requests: 4 -> 16
    run(h, 2)
    assert rollout(h)["total"] == 16
    assert "ScaleUpCapped" not in reasons(h)


def test_without_metrics_a_rise_applies_and_says_so(h: Harness):
    _autoscaled(h, cpu_use="60m")
    for key in [k for k in h.api.objects if k[0] == "PodMetrics"]:
        del h.api.objects[key]
    run(h, 2)
    assert rollout(h)["total"] == 16
    assert "ScaleUpNotCapped" in reasons(h)
