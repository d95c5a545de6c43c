"""Self-healing against KWOK-injected faults: replaced fast, within budget, never worse."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from .conftest import (
    FAULT_NODE,
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

FAST = {"notReadyTimeout": "8s", "nodeLostTimeout": "5s", "cooldown": "1s", "maxRestarts": 3}
WEB = "app.kubernetes.io/instance=web"


def start(ns: str, replicas: int = 3, **healing: object) -> list[dict]:
    apply(rsvc("web", replicas, healing={**FAST, **healing}), ns)
    return wait_for(f"{replicas} ready pods", lambda: len(p := ready_pods(ns, "web")) ==
                    replicas and p, timeout=60)


def fault(ns: str, pod: str, kind: str) -> None:
    kubectl("label", "pod", pod, "-n", ns, f"{FAULT_POD}={kind}", "--overwrite")


def gone(ns: str, pod: str) -> bool:
    p = get("pod", pod, ns)
    return p is None or bool(p["metadata"].get("deletionTimestamp"))


def reasons(ns: str) -> list[str]:
    return [e["reason"] for e in events(ns, "web")]


def test_not_ready_pod_is_replaced_after_the_timeout_not_before(
        ns: str, operator: Operator) -> None:
    pods = start(ns)
    victim = pods[0]["metadata"]["name"]
    fault(ns, victim, "not-ready")
    wait_for("pod not ready", lambda: condition(get("pod", victim, ns), "Ready").get(
        "status") == "False", timeout=15)
    seen = time.monotonic()
    # not before notReadyTimeout (8s)
    time.sleep(4)
    assert not gone(ns, victim), "replaced before notReadyTimeout"
    # then replaced, and the service is back to 3 ready pods
    wait_for("victim evicted", lambda: gone(ns, victim), timeout=20)
    assert time.monotonic() - seen >= 6
    wait_for("3 ready again", lambda: len(ready_pods(ns, "web")) == 3, timeout=30)
    assert "PodReplaced" in reasons(ns)
    rs = wait_for("status counts the heal", lambda: (r := get("rsvc", "web", ns))["status"].get(
        "healing", {}).get("podsReplaced") == 1 and r, timeout=15)
    assert rs["status"]["healing"]["lastAction"]["pod"] == victim
    assert rs["status"]["healing"]["lastAction"]["reason"] == "NotReady"
    # and the metrics endpoint shows it
    assert operator.metric("resilient_heals_total", namespace=ns, reason="NotReady",
                           result="evicted") == 1
    wait_for("time to recovery observed", lambda: operator.metric(
        "resilient_time_to_recovery_seconds_count", reason="NotReady") >= 1, timeout=15)


def test_crash_looping_pod_is_replaced(ns: str, operator: Operator) -> None:
    pods = start(ns)
    victim = pods[1]["metadata"]["name"]
    fault(ns, victim, "crashloop")
    wait_for("crash-looping pod replaced", lambda: gone(ns, victim), timeout=30)
    wait_for("3 ready again", lambda: len(ready_pods(ns, "web")) == 3, timeout=30)
    assert operator.metric("resilient_heals_total", namespace=ns, reason="CrashLoop") >= 1


def test_failed_pod_is_replaced(ns: str, operator: Operator) -> None:
    pods = start(ns)
    victim = pods[2]["metadata"]["name"]
    fault(ns, victim, "failed")
    wait_for("failed pod removed", lambda: get("pod", victim, ns) is None, timeout=30)
    wait_for("3 ready", lambda: len(ready_pods(ns, "web")) == 3, timeout=30)
    assert operator.metric("resilient_heals_total", namespace=ns, reason="Failed",
                           result="deleted") == 1


def test_image_pull_backoff_is_reported_not_churned(ns: str, operator: Operator) -> None:
    pods = start(ns)
    victim = pods[0]["metadata"]["name"]
    fault(ns, victim, "image-pull")
    rs = wait_for("reported", lambda: (r := get("rsvc", "web", ns)) and any(
        u["reason"] == "ImagePullBackOff" for u in r["status"].get("healing", {}).get(
            "unhealthyPods", [])) and r, timeout=20)
    entry = next(u for u in rs["status"]["healing"]["unhealthyPods"] if u["name"] == victim)
    assert entry["action"] == "Report"
    assert condition(rs, "Degraded")["reason"] == "PodsNeedAttention"
    time.sleep(10)
    assert not gone(ns, victim)
    assert "HealSkipped" in reasons(ns)


@pytest.fixture
def zone_a_down() -> Iterator[list[str]]:
    nodes = [n["metadata"]["name"] for n in get("nodes", selector=
             "topology.kubernetes.io/zone=zone-a,type=kwok")]
    if not nodes:
        pytest.skip("no KWOK nodes in zone-a")
    yield nodes
    for node in nodes:
        kubectl("label", "node", node, f"{FAULT_NODE}-", check=False)
    wait_for("zone-a back", lambda: all(condition(get("node", n), "Ready").get("status") ==
                                        "True" for n in nodes), timeout=60)
    for node in nodes:  # the node controller's taints go once the node is Ready
        wait_for(f"{node} untainted", lambda n=node: not [
            t for t in get("node", n)["spec"].get("taints", [])
            if t["key"].startswith("node.kubernetes.io/")], timeout=60)


def test_zone_outage_moves_pods_while_a_plain_deployment_waits(
        ns: str, operator: Operator, zone_a_down: list[str]) -> None:
    # given 6 replicas spread over three zones, and a plain Deployment beside them
    apply(rsvc("web", 6, healing={**FAST, "maxConcurrent": "50%"},
               availability={"zoneSpread": {"maxSkew": 1}}), ns)
    kubectl("create", "deployment", "plain", "--image=registry.example/app:1", "--replicas=6",
            "-n", ns)
    wait_for("6 ready", lambda: len(ready_pods(ns, "web")) == 6, timeout=60)
    wait_for("plain ready", lambda: len([p for p in live_pods(ns, "app=plain") if condition(
        p, "Ready").get("status") == "True"]) == 6, timeout=60)
    in_zone = [p["metadata"]["name"] for p in live_pods(ns, WEB)
               if p["spec"]["nodeName"] in zone_a_down]
    plain_in_zone = [p["metadata"]["name"] for p in live_pods(ns, "app=plain")
                     if p["spec"]["nodeName"] in zone_a_down]
    assert in_zone, "the spread put no pod in zone-a"
    # when every node of zone-a goes NotReady
    for node in zone_a_down:
        kubectl("label", "node", node, f"{FAULT_NODE}=not-ready", "--overwrite")
    down_at = time.monotonic()
    # then within nodeLostTimeout (5s) plus a few seconds, its pods run in the other zones
    wait_for("pods moved out of zone-a", lambda: all(gone(ns, p) for p in in_zone), timeout=25)
    moved_after = time.monotonic() - down_at
    wait_for("6 ready outside zone-a", lambda: len([
        p for p in ready_pods(ns, "web") if p["spec"]["nodeName"] not in zone_a_down]) == 6,
        timeout=30)
    assert moved_after < 20
    assert "PodMovedFromLostNode" in reasons(ns)
    # while the plain Deployment's pods are still bound to the lost zone (5 minute toleration)
    still = [p for p in plain_in_zone if not gone(ns, p)]
    assert still == plain_in_zone
    rs = get("rsvc", "web", ns)
    assert rs["status"]["healing"]["podsMovedFromLostNodes"] == len(in_zone)


def test_storm_suspends_healing_and_resumes_when_pods_recover(
        ns: str, operator: Operator) -> None:
    pods = start(ns, 4, stormThreshold="50%")
    sick = [p["metadata"]["name"] for p in pods[:3]]
    for name in sick:
        fault(ns, name, "not-ready")
    rs = wait_for("HealingSuspended", lambda: (r := get("rsvc", "web", ns)) and r["status"].get(
        "healing", {}).get("suspended") and r, timeout=30)
    assert condition(rs, "Degraded")["reason"] == "HealingSuspended"
    assert "HealingSuspended" in reasons(ns)
    assert operator.metric("resilient_healing_suspended", namespace=ns, service="web") == 1
    assert all(not gone(ns, p) for p in sick), "healed during a storm"
    # when two of the pods recover, the share falls under the threshold and healing resumes
    for name in sick[:2]:
        kubectl("label", "pod", name, "-n", ns, f"{FAULT_POD}-")
    wait_for("HealingResumed", lambda: "HealingResumed" in reasons(ns), timeout=30)
    wait_for("the last sick pod replaced", lambda: gone(ns, sick[2]), timeout=30)
    assert operator.metric("resilient_healing_suspended", namespace=ns, service="web") == 0


def test_a_disruption_budget_blocking_eviction_is_honoured(ns: str, operator: Operator) -> None:
    pods = start(ns)
    # given a budget of the team's own that tolerates no disruption at all
    apply({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": "strict"},
           "spec": {"minAvailable": 3, "selector": {"matchLabels": {
               "app.kubernetes.io/instance": "web"}}}}, ns)
    victim = pods[0]["metadata"]["name"]
    fault(ns, victim, "not-ready")
    # then the eviction is refused and retried, never forced
    wait_for("eviction refused", lambda: operator.metric(
        "resilient_heals_total", namespace=ns, result="blocked") >= 1, timeout=30)
    time.sleep(6)
    assert not gone(ns, victim)
    assert any("disruption budget" in e["message"] for e in events(ns, "web")
               if e["reason"] == "HealSkipped")
    # when the budget goes, the heal goes through
    kubectl("delete", "pdb", "strict", "-n", ns)
    wait_for("victim evicted", lambda: gone(ns, victim), timeout=30)


def test_observe_only_touches_nothing_but_reports(ns: str, operator: Operator) -> None:
    pods = start(ns, mode="ObserveOnly")
    victim = pods[0]["metadata"]["name"]
    fault(ns, victim, "not-ready")
    rs = wait_for("would replace", lambda: (r := get("rsvc", "web", ns)) and any(
        u["action"] == "WouldReplace" for u in r["status"].get("healing", {}).get(
            "unhealthyPods", [])) and r, timeout=30)
    assert rs["status"]["healing"]["podsReplaced"] == 0
    assert any("ObserveOnly: would evict" in e["message"] for e in events(ns, "web"))
    time.sleep(5)
    assert not gone(ns, victim)
    assert operator.metric("resilient_heals_total", namespace=ns, result="evicted") == 0


def test_pods_of_other_workloads_are_never_touched(ns: str, operator: Operator) -> None:
    start(ns)
    kubectl("create", "deployment", "other", "--image=registry.example/app:1", "--replicas=2",
            "-n", ns)
    others = wait_for("other pods", lambda: len(p := [
        x for x in live_pods(ns, "app=other") if condition(x, "Ready").get("status") == "True"
    ]) == 2 and p, timeout=30)
    names = [p["metadata"]["name"] for p in others]
    for name in names:
        fault(ns, name, "not-ready")
    time.sleep(14)  # well past notReadyTimeout
    assert all(not gone(ns, n) for n in names)
    assert len(ready_pods(ns, "web")) == 3


@pytest.mark.parametrize("replicas", [1, 2])
def test_one_sick_pod_of_a_small_service_is_healed(
        ns: str, operator: Operator, replicas: int) -> None:
    # a one- or two-replica service (an HPA at minReplicas 1 is common): half of it sick is
    # not a storm (stormMinPods 3)
    pods = start(ns, replicas)
    victim = pods[0]["metadata"]["name"]
    fault(ns, victim, "not-ready")
    wait_for("victim replaced", lambda: gone(ns, victim), timeout=30)
    wait_for(f"{replicas} ready again", lambda: len(ready_pods(ns, "web")) == replicas,
             timeout=30)
    assert "HealingSuspended" not in reasons(ns)
