"""A real Prometheus watches the operator and the application (issue 9): what the operator does
and what the application's traffic does is queryable, and the shipped rules evaluate.

Prometheus is built from Go modules on first use (e2e/cluster.sh build-prometheus) and scrapes
every second; the application is e2e/fakeapp.py, which plays every Ready pod.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .conftest import (
    FAULT_POD,
    FakeApp,
    Operator,
    Prometheus,
    apply,
    get,
    kubectl,
    live_pods,
    ready_pods,
    rsvc,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("kwok")

ROOT = Path(__file__).resolve().parent.parent
CANARY = "resilience.dev/track=canary"


def test_prometheus_scrapes_the_operator_and_counts_its_heals(
        scraped_operator: Operator, prometheus: Prometheus, ns: str) -> None:
    # given a service of three pods, its operator scraped every second
    apply(rsvc("web", 3, healing={"notReadyTimeout": "5s", "cooldown": "1s"},
               availability={"minAvailable": 2}), ns)
    wait_for("3 ready pods", lambda: len(ready_pods(ns, "web")) == 3, timeout=60)
    instance = f'instance="127.0.0.1:{scraped_operator.port}"'
    assert prometheus.wait_value("the operator's leader gauge", f"resilient_leader{{{instance}}}",
                                 lambda v: v == 1, timeout=20) == 1

    # when one pod stops being ready
    pod = ready_pods(ns, "web")[0]["metadata"]["name"]
    kubectl("label", "pod", pod, "-n", ns, f"{FAULT_POD}=not-ready")

    # then Prometheus sees the heal, labelled with the service and the reason
    heals = (f'resilient_heals_total{{{instance}, namespace="{ns}", service="web", '
             f'reason="NotReady", result="evicted"}}')
    assert prometheus.wait_value("the heal, in Prometheus", heals, lambda v: v >= 1,
                                 timeout=60) == 1
    # and the operator's own /metrics agrees
    assert scraped_operator.metric("resilient_heals_total", namespace=ns, result="evicted") == 1


def test_availability_drops_when_pods_are_not_ready_and_the_slo_rule_sees_it(
        scraped_operator: Operator, prometheus: Prometheus, ns: str) -> None:
    # given a service of three pods of which two must be available, healing off
    apply(rsvc("web", 3, healing={"mode": "Disabled"}, availability={"minAvailable": 2}), ns)
    wait_for("3 ready pods", lambda: len(ready_pods(ns, "web")) == 3, timeout=60)
    svc = f'namespace="{ns}", service="web"'
    assert prometheus.wait_value("available", f"resilient_service_available{{{svc}}}",
                                 lambda v: v == 1, timeout=20) == 1
    assert prometheus.value(f"resilient_service_required_pods{{{svc}}}") == 2
    # when two of them stop being ready
    for pod in ready_pods(ns, "web")[:2]:
        kubectl("label", "pod", pod["metadata"]["name"], "-n", ns, f"{FAULT_POD}=not-ready")
    # then the service is unavailable, and the recording rule's unavailability rises
    assert prometheus.wait_value("unavailable", f"resilient_service_available{{{svc}}}",
                                 lambda v: v == 0, timeout=30) == 0
    assert prometheus.value(f"resilient_service_ready_pods{{{svc}}}") == 1
    prometheus.wait_value("the SLO rule", f"resilient_slo:unavailability:ratio_5m{{{svc}}}",
                          lambda v: v is not None and v > 0, timeout=30)


def test_replica_ratio_becomes_traffic_share_and_a_bad_canarys_errors_are_its_own(
        scraped_operator: Operator, prometheus: Prometheus, fakeapp: FakeApp, ns: str) -> None:
    # given three pods taking 30 requests/s, scraped by Prometheus
    rollout = {"strategy": "Canary", "minReadySeconds": 1, "maxSurge": 1,
               "steps": [{"setWeight": 34}, {"pause": {}}]}
    apply(rsvc("web", 3, rollout=rollout, availability={"minAvailable": 2}), ns)
    wait_for("3 ready pods", lambda: len(ready_pods(ns, "web")) == 3, timeout=60)
    fakeapp.set_traffic(ns, "web", 30)
    stable = (f'sum(rate(http_requests_total{{namespace="{ns}", service="web", '
              f'track="stable"}}[5s]))')
    prometheus.wait_value("30 requests/s on the stable track", stable,
                          lambda v: abs(v - 30) < 1.5, timeout=30)

    # when a release whose pods fail half their requests goes to its first step (34%: 1 of 3)
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "fakeapp.resilience.dev/error-ratio": "0.5"}}, "spec": {"containers": [{
            "name": "app", "image": "registry.example/app:2",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}
    kubectl("patch", "rsvc", "web", "-n", ns, "--type=merge", "-p", json.dumps(patch))
    wait_for("1 canary and 2 stable pods, and no other", lambda: (
        len([p for p in ready_pods(ns, "web") if p["metadata"]["labels"].get(
            "resilience.dev/track") == "canary"]) == 1
        and len(ready_pods(ns, "web")) == 3
        and len(live_pods(ns, "app.kubernetes.io/instance=web")) == 3), timeout=60)

    # then a third of the traffic goes to the canary, as Prometheus measures it
    share = (f'sum(rate(http_requests_total{{namespace="{ns}", service="web", '
             f'track="canary"}}[5s])) / sum(rate(http_requests_total{{namespace="{ns}", '
             f'service="web"}}[5s]))')
    total = f'sum(rate(http_requests_total{{namespace="{ns}", service="web"}}[5s]))'
    # (a window that saw pods come and go reads low for a moment: rate() does not extrapolate
    # a series past its first and last samples)
    prometheus.wait_value("30 requests/s in all", total, lambda v: abs(v - 30) < 1.5, timeout=30)
    got = prometheus.wait_value("a third of the traffic on the canary", share,
                                lambda v: abs(v - 1 / 3) < 0.02, timeout=30)
    assert got == pytest.approx(1 / 3, abs=0.02)

    # and the PodMonitor's relabelling, applied by Prometheus to the real pods, labels them so
    if prometheus.kubeconfig is not None:  # the local cluster's Prometheus has the "pods" job
        def pod_labels() -> dict[str, tuple[str, str]]:
            return {t["labels"]["pod"]: (t["labels"].get("service"), t["labels"].get("track"))
                    for t in prometheus.api("targets", state="active")["activeTargets"]
                    if t["labels"].get("job") == "pods" and t["labels"].get("namespace") == ns}
        tracks = {p["metadata"]["name"]: (p["metadata"]["labels"].get("resilience.dev/track")
                                          or "stable") for p in ready_pods(ns, "web")}
        wanted = {pod: ("web", track) for pod, track in tracks.items()}
        wait_for("the pods relabelled by service and track",
                 lambda: pod_labels() == wanted or False, timeout=30)

    # and the error ratio of the analysis query is the canary's alone
    def error_ratio(track: str) -> str:
        sel = f'namespace="{ns}", service="web", track="{track}"'
        return (f'sum(rate(http_requests_total{{{sel}, code=~"5.."}}[5s])) '
                f"/ sum(rate(http_requests_total{{{sel}}}[5s]))")

    assert prometheus.wait_value("the canary's error ratio", error_ratio("canary"),
                                 lambda v: abs(v - 0.5) < 0.01) == pytest.approx(0.5, abs=0.01)
    assert prometheus.value(error_ratio("stable")) == 0
    rollout_state = (get("rsvc", "web", ns) or {}).get("status", {}).get("rollout", {})
    assert rollout_state.get("phase") != "Aborted", "pod health alone passes this canary"


def test_the_shipped_rules_load_and_evaluate(prometheus: Prometheus) -> None:
    shipped = {g["name"] for path in (ROOT / "manifests/overlays/prometheus/rules").glob("*.yaml")
               for g in yaml.safe_load(path.read_text())["groups"]}

    def evaluated() -> list[dict[str, object]] | None:
        groups = prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        loaded = {g["name"] for g in groups}
        if loaded != shipped or any(r["health"] == "unknown" for r in rules):
            return None  # a group evaluates first within its interval (1 m at most)
        return rules

    rules = wait_for("every rule evaluated once", evaluated, timeout=75, interval=2)
    failing = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert failing == []


def test_no_operator_at_all_raises_the_no_leader_alert(prometheus: Prometheus) -> None:
    # given one operator, scraped, and no other
    op = Operator("no-leader").start()
    address = f"127.0.0.1:{op.port}"
    try:
        prometheus.add_target("resilient-operator", "no-leader", address)
        prometheus.wait_for_target(address)
        prometheus.wait_value("one leader", "sum(resilient_leader)", lambda v: v == 1,
                              timeout=20)
        no_leader = 'ALERTS{alertname="ResilientOperatorNoLeader"}'
        wait_for("no no-leader alert (the rules run every second)",
                 lambda: prometheus.query(no_leader) == [], timeout=10)

        # when it stops
        op.stop()

        # then the alert is pending at once (firing after its 1 m): absent() sees no series
        prometheus.wait_value("the no-leader alert pending", f"count({no_leader})",
                              lambda v: v == 1, timeout=20)
        assert prometheus.value("absent(resilient_leader)") == 1
    finally:
        op.stop()
        prometheus.remove_target("resilient-operator", "no-leader")


def test_an_aborted_rollout_fires_its_alert_at_once(
        scraped_operator: Operator, prometheus: Prometheus, ns: str) -> None:
    # given a canary service, scraped, that never aborted (no "aborted" series exists)
    rollout = {"strategy": "Canary", "minReadySeconds": 1, "maxSurge": 1,
               "steps": [{"setWeight": 34}, {"pause": {}}],
               "health": {"maxRestarts": 1, "notReadyTimeout": "8s", "startTimeout": "30s"}}
    apply(rsvc("web", 3, rollout=rollout, availability={"minAvailable": 2}), ns)
    wait_for("3 ready pods", lambda: len(ready_pods(ns, "web")) == 3, timeout=60)
    alert = f'alertname="ResilientRolloutAborted", namespace="{ns}", service="web"'
    assert prometheus.query(f"ALERTS{{{alert}}}") == []

    # when a release whose pods crash from the start is aborted
    patch = {"spec": {"template": {"metadata": {"labels": {FAULT_POD: "crash-start"}},
                                   "spec": {"containers": [{
                                       "name": "app", "image": "registry.example/app:bad",
                                       "resources": {"requests": {"cpu": "100m",
                                                                  "memory": "64Mi"}}}]}}}}
    kubectl("patch", "rsvc", "web", "-n", ns, "--type=merge", "-p", json.dumps(patch))
    wait_for("the rollout aborted", lambda: ((get("rsvc", "web", ns) or {}).get(
        "status", {}).get("rollout") or {}).get("phase") == "Aborted", timeout=60)

    # then the alert fires within seconds, though the counter was born at 1 (increase() alone
    # would see no increase)
    prometheus.wait_value("the rollout-aborted alert firing",
                          f'count(ALERTS{{{alert}, alertstate="firing"}})',
                          lambda v: v == 1, timeout=15)


def test_prometheus_is_the_pinned_version_and_listens_on_loopback_only(
        prometheus: Prometheus) -> None:
    script = (ROOT / "e2e/cluster.sh").read_text()
    pinned = re.search(r"^PROMETHEUS_VERSION=\$\{PROMETHEUS_VERSION:-(v[0-9.]+)\}", script, re.M)
    assert pinned, "cluster.sh pins no Prometheus version"
    assert "v" + prometheus.api("status/buildinfo")["version"] == pinned.group(1)
    flags = prometheus.api("status/flags")
    assert flags["web.listen-address"] == f"127.0.0.1:{prometheus.port}"
    assert prometheus.api("status/config")["yaml"].count("scrape_interval: 1s") >= 1
