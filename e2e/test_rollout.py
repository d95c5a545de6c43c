"""Progressive delivery against a real API server: canary steps, promotion, automatic aborts,
commands, the autoscaler and drains, with a background check that the rollout never makes an
outage worse. Bad releases are templates that carry a KWOK fault label (e2e/stages/faults.yaml).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from .conftest import (
    FAULT_POD,
    Operator,
    apply,
    condition,
    events,
    get,
    kubectl,
    live_pods,
    ready_pods,
    rsvc,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("kwok")

WEB = "app.kubernetes.io/instance=web"
CANARY = "resilience.dev/track=canary"
HEALTH = {"maxRestarts": 1, "notReadyTimeout": "8s", "startTimeout": "30s"}


def canary_spec(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"strategy": "Canary", "steps": steps, "minReadySeconds": 1, "maxSurge": 1,
            "health": HEALTH, **extra}


def service(ns: str, replicas: int, rollout: dict[str, Any], **spec: Any) -> None:
    body = rsvc("web", replicas, rollout=rollout,
                availability={"minAvailable": max(1, replicas - 1)}, **spec)
    apply(body, ns)
    wait_for(f"{replicas} ready pods", lambda: len(ready_pods(ns, "web")) == replicas,
             timeout=60)
    wait_for("rollout state", lambda: (state(ns) or {}).get("stableRevision"), timeout=20)


def release(ns: str, image: str, labels: dict[str, str] | None = None,
            annotations: dict[str, str] | None = None) -> None:
    """A new template: another image, optionally a fault label riding in the template."""
    meta: dict[str, Any] = {"labels": labels or None, "annotations": annotations or None}
    patch = {"spec": {"template": {"metadata": meta, "spec": {"containers": [{
        "name": "app", "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}
    kubectl("patch", "rsvc", "web", "-n", ns, "--type=merge", "-p", json.dumps(patch))


def state(ns: str) -> dict[str, Any] | None:
    body = get("rsvc", "web", ns)
    return ((body or {}).get("status") or {}).get("rollout")


def phase_is(ns: str, *phases: str) -> dict[str, Any] | bool:
    s = state(ns) or {}
    return s if s.get("phase") in phases else False


def command(ns: str, name: str, token: str) -> None:
    kubectl("annotate", "rsvc", "web", "-n", ns, f"resilience.dev/{name}={token}", "--overwrite")


def reasons(ns: str) -> list[str]:
    return [e["reason"] for e in events(ns, "web")]


class Invariants:
    """Watches the pods in the background: ready pods never below the availability floor,
    pods never above total + maxSurge, no canary pod healed."""

    def __init__(self, ns: str, floor: int, ceiling: int) -> None:
        self.ns, self.floor, self.ceiling = ns, floor, ceiling
        self.violations: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Invariants:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pods = live_pods(self.ns, WEB)
            ready = [p for p in pods if condition(p, "Ready").get("status") == "True"]
            if len(ready) < self.floor:
                self.violations.append(f"{len(ready)} ready < floor {self.floor}")
            if len(pods) > self.ceiling:
                names = sorted((p["metadata"]["name"], condition(p, "Ready").get("status"))
                               for p in pods)
                self.violations.append(f"{len(pods)} pods > ceiling {self.ceiling}: {names} "
                                       f"at {time.strftime('%H:%M:%S')}")
            self._stop.wait(0.5)

    def check(self) -> None:
        assert not self.violations, self.violations[:5]
        healed = [e["message"] for e in events(self.ns, "web") if e["reason"] == "PodReplaced"
                  and "-canary-" in e["message"]]
        assert not healed, f"healing replaced canary pods: {healed}"


def test_a_good_release_goes_through_every_step_and_is_promoted(
        ns: str, operator: Operator) -> None:
    # given 4 replicas and a canary of 25% -> pause -> 50% -> 10 s pause
    service(ns, 4, canary_spec([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50},
                                {"pause": {"duration": "5s"}}]))
    with Invariants(ns, floor=3, ceiling=5) as inv:
        # when a new image is released
        release(ns, "registry.example/app:2")
        # then one canary pod runs beside three stable ones, and the rollout waits at the pause
        s = wait_for("paused at step 2", lambda: phase_is(ns, "Paused"), timeout=60)
        assert s["stepIndex"] == 1 and s["desiredWeight"] == 25
        assert len(ready_pods(ns, "web")) >= 4
        assert len(live_pods(ns, CANARY)) == 1
        # when promoted once, it goes to 50%, waits 5 s, then promotes the stable track
        command(ns, "promote", "go-1")
        wait_for("weight 50", lambda: (state(ns) or {}).get("desiredWeight") == 50, timeout=30)
        wait_for("2 canary pods ready", lambda: len(
            [p for p in ready_pods(ns, "web") if "-canary-" in p["metadata"]["name"]]) == 2,
                 timeout=60)
        s = wait_for("completed", lambda: phase_is(ns, "Completed"), timeout=120)
        inv.check()
    # then the canary Deployment is gone, every pod runs the new image, history says so
    assert get("deployment", "web-canary", ns) is None
    pods = ready_pods(ns, "web")
    assert len(pods) == 4
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"registry.example/app:2"}
    assert s["history"][-1]["result"] == "Promoted" and s["stableRevision"] == s["revision"]
    for reason in ("RolloutStarted", "RolloutPaused", "RolloutStepCompleted",
                   "RolloutPromoting", "RolloutCompleted"):
        assert reason in reasons(ns), reason
    wait_for("metrics", lambda: operator.metric("resilient_rollouts_total", namespace=ns,
                                                result="promoted") == 1, timeout=10)
    assert operator.metric("resilient_deployments_total", namespace=ns) == 1


def test_a_release_that_crashes_from_the_start_is_aborted_while_a_plain_deployment_is_stuck(
        ns: str, operator: Operator) -> None:
    # given the same bad template on a plain Deployment (the side-by-side)
    plain = rsvc("plain", 3)["spec"]["template"]
    plain["metadata"] = {"labels": {"app": "plain", FAULT_POD: "crash-start"}}
    apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "plain"},
           "spec": {"replicas": 3, "progressDeadlineSeconds": 20,
                    "selector": {"matchLabels": {"app": "plain"}},
                    "template": {**plain, "metadata": {"labels": {"app": "plain"}}}}}, ns)
    service(ns, 3, canary_spec([{"setWeight": 34}, {"pause": {}}]))
    wait_for("plain ready", lambda: (get("deployment", "plain", ns) or {}).get(
        "status", {}).get("readyReplicas") == 3, timeout=60)
    # when both get a release whose pods crash from the start
    started = time.monotonic()
    kubectl("patch", "deployment", "plain", "-n", ns, "--type=merge", "-p",
            json.dumps({"spec": {"template": {"metadata": {"labels": {
                FAULT_POD: "crash-start"}}}}}))
    release(ns, "registry.example/app:bad", labels={FAULT_POD: "crash-start"})
    # then the rollout aborts within seconds, and the stable pods never changed
    s = wait_for("aborted", lambda: phase_is(ns, "Aborted"), timeout=60)
    took = time.monotonic() - started
    assert s["lastAbort"]["reason"] == "CanaryRestarts", s["lastAbort"]
    assert get("deployment", "web-canary", ns) is None
    images = {p["spec"]["containers"][0]["image"] for p in ready_pods(ns, "web")}
    assert images == {"registry.example/app:1"} and len(ready_pods(ns, "web")) == 3
    body = get("rsvc", "web", ns)
    assert condition(body, "Degraded")["reason"] == "RolloutAborted"
    # and the plain Deployment is still rolling the bad release: only a deadline, no rollback
    plain_dep = wait_for("plain reports ProgressDeadlineExceeded", lambda: (
        d := get("deployment", "plain", ns)) and condition(d, "Progressing").get(
        "reason") == "ProgressDeadlineExceeded" and d, timeout=60)
    assert plain_dep["spec"]["template"]["metadata"]["labels"][FAULT_POD] == "crash-start"
    print(f"\n[side-by-side] canary aborted and stable restored in {took:.1f}s; plain Deployment "
          "still on the bad template with ProgressDeadlineExceeded")
    # the aborted revision is not tried again by itself
    time.sleep(3)
    assert phase_is(ns, "Aborted") and get("deployment", "web-canary", ns) is None


def test_a_canary_that_starts_crashing_during_an_indefinite_pause_is_aborted(
        ns: str, operator: Operator) -> None:
    service(ns, 3, canary_spec([{"setWeight": 34}, {"pause": {}}]))
    with Invariants(ns, floor=2, ceiling=4) as inv:
        release(ns, "registry.example/app:late", labels={FAULT_POD: "crash-after"},
                annotations={"fault.resilience.dev/after": "6"})
        wait_for("paused", lambda: phase_is(ns, "Paused"), timeout=60)
        # nobody promotes: the canary starts crashing while the rollout waits
        s = wait_for("aborted during the pause", lambda: phase_is(ns, "Aborting", "Aborted"),
                     timeout=60)
        assert s["lastAbort"]["reason"] == "CanaryRestarts"
        wait_for("stable restored", lambda: phase_is(ns, "Aborted"), timeout=60)
        inv.check()
    assert operator.metric("resilient_rollout_aborts_total", reason="CanaryRestarts") >= 1


def test_a_never_ready_canary_is_aborted_after_not_ready_timeout_and_not_before(
        ns: str, operator: Operator) -> None:
    service(ns, 3, canary_spec([{"setWeight": 34}, {"pause": {}}]))
    release(ns, "registry.example/app:slow", labels={FAULT_POD: "never-ready"})
    pod = wait_for("a running canary pod", lambda: next(
        (p for p in live_pods(ns, CANARY) if p["status"].get("phase") == "Running"), None),
        timeout=30)
    seen = time.monotonic()
    time.sleep(4)
    assert phase_is(ns, "Progressing"), state(ns)  # 8 s notReadyTimeout not reached
    s = wait_for("aborted", lambda: phase_is(ns, "Aborting", "Aborted"), timeout=30)
    assert time.monotonic() - seen >= 5
    assert s["lastAbort"]["reason"] == "CanaryNotReady"
    assert pod["metadata"]["name"] in s["lastAbort"]["message"]


def test_an_oom_killed_canary_is_aborted(ns: str, operator: Operator) -> None:
    service(ns, 3, canary_spec([{"setWeight": 34}, {"pause": {}}],
                               health={**HEALTH, "maxRestarts": 5}))
    release(ns, "registry.example/app:hungry", labels={FAULT_POD: "oom"})
    s = wait_for("aborted", lambda: phase_is(ns, "Aborting", "Aborted"), timeout=60)
    assert s["lastAbort"]["reason"] == "CanaryOOMKilled"


def test_commands_act_once_per_token(ns: str, operator: Operator) -> None:
    service(ns, 4, canary_spec([{"setWeight": 25}, {"pause": {}}, {"setWeight": 50},
                                {"pause": {}}]))
    # a token while idle is acknowledged, ignored, and never kept for the next release
    command(ns, "promote", "too-early")
    wait_for("ignored", lambda: "CommandIgnored" in reasons(ns), timeout=20)
    release(ns, "registry.example/app:2")
    wait_for("paused at step 2", lambda: (s := phase_is(ns, "Paused")) and
             s["stepIndex"] == 1, timeout=60)
    time.sleep(2)
    assert state(ns)["stepIndex"] == 1, "the early token promoted the next release"
    # promote advances exactly one pause; the same token again acts no more
    command(ns, "promote", "p-1")
    wait_for("paused at step 4", lambda: (s := phase_is(ns, "Paused")) and
             s["stepIndex"] == 3, timeout=60)
    kubectl("annotate", "rsvc", "web", "-n", ns, "unrelated=touch", "--overwrite")
    time.sleep(2)
    assert state(ns)["stepIndex"] == 3
    # promote --full, then abort before promotion ends: abort wins
    command(ns, "promote", "full:p-2")
    command(ns, "abort", "stop-1")
    s = wait_for("aborted", lambda: phase_is(ns, "Aborted"), timeout=60)
    assert s["lastAbort"]["reason"] == "AbortCommand"
    assert s["commands"] == {"promote": "full:p-2", "abort": "stop-1"}
    images = {p["spec"]["containers"][0]["image"] for p in ready_pods(ns, "web")}
    assert images == {"registry.example/app:1"}
    # retry starts the aborted revision again
    command(ns, "retry", "again-1")
    wait_for("started again", lambda: phase_is(ns, "Progressing", "Paused"), timeout=30)
    assert "RolloutRetried" in reasons(ns)


def test_the_autoscaler_total_is_split_and_a_scale_down_waits_for_the_end(
        ns: str, operator: Operator) -> None:
    service(ns, 4, canary_spec([{"setWeight": 50}, {"pause": {}}]))
    release(ns, "registry.example/app:2")
    wait_for("paused", lambda: phase_is(ns, "Paused"), timeout=60)
    # the scale subresource (what the HPA writes) raises the total: the split follows
    kubectl("scale", "rsvc", "web", "-n", ns, "--replicas=6")
    wait_for("3 + 3", lambda: (get("deployment", "web-canary", ns) or {}).get(
        "spec", {}).get("replicas") == 3 and get("deployment", "web", ns)["spec"][
        "replicas"] == 3, timeout=60)
    # a lower total is held until the rollout ends
    kubectl("scale", "rsvc", "web", "-n", ns, "--replicas=2")
    wait_for("held", lambda: "ScaleDownHeld" in reasons(ns), timeout=20)
    assert len(ready_pods(ns, "web")) >= 6
    command(ns, "promote", "go")
    wait_for("completed", lambda: phase_is(ns, "Completed"), timeout=120)
    wait_for("scaled down after the end", lambda: get("deployment", "web", ns)["spec"][
        "replicas"] == 2, timeout=30)


def test_a_drain_evicting_canary_pods_does_not_abort(ns: str, operator: Operator) -> None:
    service(ns, 3, canary_spec([{"setWeight": 34}, {"pause": {}}]))
    release(ns, "registry.example/app:2")
    wait_for("paused", lambda: phase_is(ns, "Paused"), timeout=60)
    pod = live_pods(ns, CANARY)[0]
    # an eviction (what a drain sends) marks the pod DisruptionTarget and deletes it
    kubectl("create", "--raw",
            f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/eviction", "-f", "-",
            input=json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                              "metadata": {"name": pod["metadata"]["name"]}}))
    wait_for("a new canary pod", lambda: any(
        p["metadata"]["name"] != pod["metadata"]["name"] for p in ready_pods(ns, "web")
        if "-canary-" in p["metadata"]["name"]), timeout=60)
    time.sleep(2)
    assert phase_is(ns, "Paused"), state(ns)


def test_rolling_with_a_bad_template_is_rolled_back_to_the_previous_one(
        ns: str, operator: Operator) -> None:
    service(ns, 3, {"strategy": "Rolling", "minReadySeconds": 1, "maxSurge": 1,
                    "health": HEALTH})
    release(ns, "registry.example/app:bad", labels={FAULT_POD: "crash-start"})
    s = wait_for("rolled back", lambda: phase_is(ns, "Aborted"), timeout=90)
    assert s["lastAbort"]["reason"] == "CanaryRestarts"
    dep = get("deployment", "web", ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/app:1"
    assert "RolledBack" in reasons(ns)
    # the bad template is not applied again
    time.sleep(3)
    dep = get("deployment", "web", ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/app:1"
    wait_for("3 ready", lambda: len(ready_pods(ns, "web")) == 3, timeout=30)
