"""The declarative surface: children as specified, drift repaired, scaling, validation, status."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from tests.strategies import specs

from resilient_operator.builders import children as builders
from resilient_operator.resource.models import parse_spec

from .conftest import (
    ROOT,
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

SELECTOR = {"app.kubernetes.io/instance": "web", "app.kubernetes.io/managed-by":
            "resilient-operator", "app.kubernetes.io/name": "web"}


def full(name: str = "web") -> dict:
    return rsvc(
        name, 3,
        service={"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        availability={"minAvailable": 2, "zoneSpread": {"maxSkew": 1}},
        autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 70},
    )


def test_children_have_owner_labels_selector_pdb_and_spread(ns: str, operator: Operator) -> None:
    body = full()
    body["spec"]["template"]["metadata"] = {"labels": {"tier": "web"}}
    apply(body, ns)
    dep = wait_for("deployment", lambda: get("deployment", "web", ns))
    assert dep["spec"]["selector"]["matchLabels"] == SELECTOR
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels == {**SELECTOR, "tier": "web"}
    spread = dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread[0]["labelSelector"]["matchLabels"] == SELECTOR
    svc = wait_for("service", lambda: get("service", "web", ns))
    assert svc["spec"]["selector"] == SELECTOR
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    pdb = wait_for("pdb", lambda: get("pdb", "web", ns))
    assert pdb["spec"]["minAvailable"] == 2
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    hpa = wait_for("hpa", lambda: get("hpa", "web", ns))
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "ResilientService"
    for child in (dep, svc, pdb, hpa):
        assert {k: child["metadata"]["labels"][k] for k in SELECTOR} == SELECTOR
    # and the pods spread over the three zones
    pods = wait_for("3 ready pods", lambda: len(p := ready_pods(ns, "web")) == 3 and p)
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"].get("topology.kubernetes.io/zone")
             for n in get("nodes")}
    zones = {nodes[p["spec"]["nodeName"]] for p in pods}
    if len(set(nodes.values())) >= 3:
        assert len(zones) == 3
    # and every action was explained in an event
    reasons = {e["reason"] for e in events(ns, "web")}
    assert "Created" in reasons


@pytest.mark.parametrize("kind, edit", [
    ("deployment", ["patch", "deployment", "web", "--type=merge", "-p",
                    '{"spec":{"replicas":7}}']),
    ("service", ["patch", "service", "web", "--type=merge", "-p",
                 '{"spec":{"selector":{"app":"other"}}}']),
    ("pdb", ["patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":0}}']),
    ("hpa", ["patch", "hpa", "web", "--type=merge", "-p", '{"spec":{"maxReplicas":50}}']),
])
def test_edited_child_is_restored(ns: str, operator: Operator, kind: str, edit: list[str]) -> None:
    apply(full(), ns)
    original = wait_for(kind, lambda: get(kind, "web", ns))
    kubectl(*edit, "-n", ns)
    wait_for(f"{kind} restored", lambda: get(kind, "web", ns)["spec"] == original["spec"] or (
        kind == "deployment" and get(kind, "web", ns)["spec"]["replicas"] == 3), timeout=30)
    wait_for("a DriftRestored event", lambda: any(
        e["reason"] == "DriftRestored" for e in events(ns, "web")), timeout=20)


@pytest.mark.parametrize("kind", ["service", "pdb", "hpa"])
def test_deleted_child_is_restored(ns: str, operator: Operator, kind: str) -> None:
    apply(full(), ns)
    first = wait_for(kind, lambda: get(kind, "web", ns))
    kubectl("delete", kind, "web", "-n", ns)
    wait_for(f"{kind} back", lambda: (c := get(kind, "web", ns)) and
             c["metadata"]["uid"] != first["metadata"]["uid"], timeout=30)


def test_optional_parts_removed_and_added(ns: str, operator: Operator) -> None:
    apply(full(), ns)
    for kind in ("service", "pdb", "hpa"):
        wait_for(kind, lambda k=kind: get(k, "web", ns))
    # when the optional parts are removed from the spec, their children go
    kubectl("patch", "rsvc", "web", "-n", ns, "--type=json", "-p", json.dumps([
        {"op": "remove", "path": "/spec/service"},
        {"op": "remove", "path": "/spec/availability"},
        {"op": "remove", "path": "/spec/autoscaling"}]))
    for kind in ("service", "pdb", "hpa"):
        wait_for(f"{kind} removed", lambda k=kind: get(k, "web", ns) is None, timeout=30)
    dep = get("deployment", "web", ns)
    assert "topologySpreadConstraints" not in dep["spec"]["template"]["spec"]
    # and when they come back, so do the children
    apply(full(), ns)
    for kind in ("service", "pdb", "hpa"):
        wait_for(f"{kind} added", lambda k=kind: get(k, "web", ns), timeout=30)
    assert "Removed" in {e["reason"] for e in events(ns, "web")}


def test_kubectl_scale_drives_the_deployment(ns: str, operator: Operator) -> None:
    apply(rsvc("web", 2), ns)
    wait_for("2 ready", lambda: len(ready_pods(ns, "web")) == 2)
    kubectl("scale", "rsvc", "web", "-n", ns, "--replicas=5")
    wait_for("deployment at 5", lambda: get("deployment", "web", ns)["spec"]["replicas"] == 5,
             timeout=30)
    rs = wait_for("status at 5", lambda: (r := get("rsvc", "web", ns))["status"].get(
        "readyReplicas") == 5 and r, timeout=60)
    assert rs["status"]["replicas"] == 5
    assert "Scaled" in {e["reason"] for e in events(ns, "web")}


def test_status_tells_the_truth_before_and_after_pods_are_ready(
        ns: str, operator: Operator, kwok: None) -> None:
    # given pods that start but never become Ready (KWOK fault stage on the template)
    body = rsvc("web", 3, healing={"mode": "Disabled"})
    body["spec"]["template"]["metadata"] = {
        "labels": {"fault.resilience.dev/pod": "not-ready"}}
    apply(body, ns)
    rs = wait_for("Available=False", lambda: (r := get("rsvc", "web", ns)) and condition(
        r, "Available").get("status") == "False" and len(live_pods(
            ns, "app.kubernetes.io/instance=web")) == 3 and r, timeout=30)
    time.sleep(2)
    rs = get("rsvc", "web", ns)
    assert condition(rs, "Ready")["status"] == "False"
    assert rs["status"]["state"] == "Unavailable"
    assert rs["status"]["readyReplicas"] == 0
    # when the template is fixed, a rollout brings Ready pods and a Ready resource
    apply(rsvc("web", 3, healing={"mode": "Disabled"}), ns)
    rs = wait_for("Ready", lambda: (r := get("rsvc", "web", ns)) and condition(
        r, "Ready").get("status") == "True" and r, timeout=90)
    assert rs["status"]["state"] == "Ready"
    assert condition(rs, "Progressing")["status"] == "False"
    assert condition(rs, "Available")["reason"] == "MinimumReplicasAvailable"


def test_hpa_scales_the_resource_and_the_deployment_follows(
        ns: str, operator: Operator, kwok: None) -> None:
    if not kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1", check=False).stdout:
        pytest.skip("no metrics API on this cluster")
    # given pods that use 5x the CPU they request (KWOK usage annotation)
    body = rsvc("web", 2, autoscaling={"minReplicas": 2, "maxReplicas": 5,
                                       "targetCPUUtilizationPercentage": 50,
                                       "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}}})
    body["spec"]["template"]["metadata"] = {"annotations": {"kwok.x-k8s.io/usage-cpu": "500m"}}
    apply(body, ns)
    # then the HPA raises spec.replicas through the scale subresource, to its maximum
    wait_for("spec.replicas raised by the HPA", lambda: get("rsvc", "web", ns)["spec"][
        "replicas"] == 5, timeout=150, interval=2)
    wait_for("the deployment follows", lambda: get("deployment", "web", ns)["spec"][
        "replicas"] == 5, timeout=30)


BAD = [
    ("spec.autoscaling", {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}),
    ("spec.availability", {"availability": {"minAvailable": 1, "maxUnavailable": 1}}),
    ("spec.availability.minAvailable", {"availability": {"minAvailable": "150%"}}),
    ("spec.healing.notReadyTimeout", {"healing": {"notReadyTimeout": "soon"}}),
    ("spec.healing.mode", {"healing": {"mode": "Sometimes"}}),
    # a zero timeout would replace a starting pod before it could become Ready
    ("spec.healing.notReadyTimeout", {"healing": {"notReadyTimeout": "0s"}}),
    ("spec.healing.nodeLostTimeout", {"healing": {"nodeLostTimeout": "500ms"}}),
    ("spec.replicas", {"replicas": -1}),
    ("spec.service.ports[0].port", {"service": {"ports": [{"port": 70000}]}}),
    ("spec.service", {"service": {"ports": [{"port": 80}, {"port": 81}]}}),
    ("spec.template.metadata.labels", {"template": {"metadata": {"labels": {
        "app.kubernetes.io/instance": "x"}}, "spec": {"containers": [
            {"name": "a", "image": "b"}]}}}),
    ("spec.template.spec.containers", {"template": {"spec": {"containers": []}}}),
    ("spec.template", {"template": None}),
]


@pytest.mark.parametrize("field, change", BAD, ids=[f"{b[0]}={json.dumps(b[1])[:40]}"
                                                   for b in BAD])
def test_bad_manifests_are_rejected_naming_the_field(ns: str, field: str, change: dict) -> None:
    body = rsvc("bad")
    body["spec"].update(change)
    if change.get("template", 1) is None:
        del body["spec"]["template"]
    done = apply(body, ns, check=False)
    assert done.returncode != 0, f"accepted: {body}"
    assert field in done.stderr, done.stderr
    assert get("rsvc", "bad", ns) is None


def test_zero_values_that_switch_safety_off_are_shown_plainly(ns: str, operator: Operator) -> None:
    # given a service scaled to zero without autoscaling, whose heal budget is zero
    apply(rsvc("web", 0, healing={"maxConcurrent": 0},
               service={"ports": [{"name": "http", "port": 80}]}), ns)
    rs = wait_for("status", lambda: (r := get("rsvc", "web", ns)) and (r.get("status") or {})
                  .get("observedGeneration") == r["metadata"]["generation"] and
                  condition(r, "Degraded").get("status") and r, timeout=30)
    # then it is scaled to zero, children kept, and healing says it can never act
    assert get("deployment", "web", ns)["spec"]["replicas"] == 0
    assert get("service", "web", ns)
    assert rs["status"].get("readyReplicas", 0) == 0
    assert condition(rs, "Degraded")["reason"] == "HealingCannotAct", rs["status"]
    assert "maxConcurrent is 0" in condition(rs, "Degraded")["message"]
    row = kubectl("get", "rsvc", "web", "-n", ns, "--no-headers").stdout.split()
    assert row[1:5] == ["0", "0", "0", "Degraded"], row  # desired, ready, available, state


def test_unsatisfiable_budget_is_degraded_and_leaves_children(ns: str, operator: Operator) -> None:
    apply(full(), ns)
    wait_for("pdb", lambda: get("pdb", "web", ns))
    # when minAvailable can never allow an eviction
    body = full()
    body["spec"]["availability"]["minAvailable"] = 6
    apply(body, ns)
    rs = wait_for("Degraded", lambda: (r := get("rsvc", "web", ns)) and condition(
        r, "Degraded").get("reason") == "DisruptionBudgetUnsatisfiable" and r, timeout=30)
    assert "minAvailable" in condition(rs, "Degraded")["message"]
    assert rs["status"]["state"] == "Degraded"
    warnings = [e for e in events(ns, "web") if e["type"] == "Warning"]
    assert any(e["reason"] == "DisruptionBudgetUnsatisfiable" for e in warnings)
    # then the existing budget is left as it was
    assert get("pdb", "web", ns)["spec"]["minAvailable"] == 2


def test_a_child_of_someone_else_is_never_taken_over(ns: str, operator: Operator) -> None:
    kubectl("create", "service", "clusterip", "web", "--tcp=80:80", "-n", ns)
    apply(full(), ns)
    rs = wait_for("ChildConflict", lambda: (r := get("rsvc", "web", ns)) and condition(
        r, "Degraded").get("reason") == "ChildConflict" and r, timeout=30)
    assert "Service" in condition(rs, "Degraded")["message"]
    svc = get("service", "web", ns)
    assert "ownerReferences" not in svc["metadata"]
    assert svc["spec"]["selector"] == {"app": "web"}


def test_an_idle_operator_makes_no_writes(ns: str, operator: Operator) -> None:
    body = full()
    del body["spec"]["autoscaling"]  # the HPA controller's own status writes are not ours
    apply(body, ns)
    wait_for("Ready", lambda: condition(get("rsvc", "web", ns), "Ready").get("status") == "True",
             timeout=60)
    time.sleep(2)
    kinds = ("rsvc", "deployment", "service", "pdb")
    before = {k: get(k, "web", ns)["metadata"]["resourceVersion"] for k in kinds}
    events_before = len(get("events", namespace=ns) or [])
    time.sleep(10)
    assert {k: get(k, "web", ns)["metadata"]["resourceVersion"] for k in kinds} == before
    assert len(get("events", namespace=ns) or []) == events_before


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs())
def test_children_of_any_accepted_spec_are_accepted_by_the_api_server(raw: dict) -> None:
    # the API server itself judges (server-side dry run) every child the builders make
    spec = parse_spec(raw)
    owner = builders.Owner("gen", "default", "00000000-0000-0000-0000-000000000000")
    manifest = {"apiVersion": "resilience.dev/v1alpha1", "kind": "ResilientService",
                "metadata": {"name": "gen", "namespace": "default"}, "spec": raw}
    kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(manifest))
    for child in builders.children(owner, spec).values():
        if child is not None:
            child["metadata"].pop("ownerReferences")
            kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(child))


def test_sample_shows_every_section() -> None:
    sample = yaml.safe_load((ROOT / "manifests/samples/web.yaml").read_text())
    assert set(sample["spec"]) >= {"replicas", "template", "service", "availability",
                                   "autoscaling", "healing", "rollout"}
    parse_spec(sample["spec"])  # the models accept every field of it


def _listy(name: str = "web") -> dict:
    body = full(name)
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "MODE", "value": "prod"}]
    container["ports"] = [{"name": "http", "containerPort": 8080}]
    body["spec"]["template"]["spec"]["tolerations"] = [
        {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}]
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    container["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
    return body


LIST_EDITS = [
    ("service", "/spec/ports/-", {"name": "debug", "port": 9999, "protocol": "TCP"},
     lambda o: [p["port"] for p in o["spec"]["ports"]], [80]),
    ("deployment", "/spec/template/spec/containers/0/env/-", {"name": "DEBUG", "value": "1"},
     lambda o: [e["name"] for e in o["spec"]["template"]["spec"]["containers"][0]["env"]],
     ["MODE"]),
    ("deployment", "/spec/template/spec/containers/0/ports/-",
     {"name": "debug", "containerPort": 9999, "protocol": "TCP"},
     lambda o: [p["containerPort"] for p in
                o["spec"]["template"]["spec"]["containers"][0]["ports"]], [8080]),
    ("deployment", "/spec/template/spec/tolerations/-",
     {"key": "other", "operator": "Exists", "effect": "NoExecute"},
     lambda o: [t["key"] for t in o["spec"]["template"]["spec"]["tolerations"]], ["dedicated"]),
    ("deployment", "/spec/template/spec/volumes/-", {"name": "extra", "emptyDir": {}},
     lambda o: [v["name"] for v in o["spec"]["template"]["spec"]["volumes"]], ["scratch"]),
    ("deployment", "/spec/template/spec/containers/-",
     {"name": "sidecar", "image": "registry.example/sidecar:1"},
     lambda o: [c["name"] for c in o["spec"]["template"]["spec"]["containers"]], ["app"]),
]


@pytest.mark.parametrize("kind, path, entry, read, want", LIST_EDITS,
                         ids=[e[1].strip("/-").replace("/", ".") for e in LIST_EDITS])
def test_an_entry_added_to_a_list_the_operator_writes_is_removed(
        ns: str, operator: Operator, kind: str, path: str, entry: dict, read, want) -> None:
    # given a service whose children carry lists (ports, env, tolerations, volumes...)
    apply(_listy(), ns)
    wait_for(f"{kind} as wanted", lambda: (o := get(kind, "web", ns)) and read(o) == want,
             timeout=30)
    # when another client adds an entry (kubectl patch: a field manager of its own)
    kubectl("patch", kind, "web", "-n", ns, "--type=json", "-p",
            json.dumps([{"op": "add", "path": path, "value": entry}]))
    # then exactly the wanted list is restored, and the operator settles (no write loop)
    wait_for("the list restored", lambda: read(get(kind, "web", ns)) == want, timeout=20)
    time.sleep(2)
    settled = get(kind, "web", ns)["metadata"]["resourceVersion"]
    time.sleep(3)
    assert get(kind, "web", ns)["metadata"]["resourceVersion"] == settled
    assert "DriftRestored" in [e["reason"] for e in events(ns, "web")]


def test_a_template_the_api_server_refuses_changes_no_child_and_is_reported(
        ns: str, operator: Operator) -> None:
    # given a converged service
    apply(full(), ns)
    wait_for("Ready", lambda: condition(get("rsvc", "web", ns), "Ready").get("status") == "True",
             timeout=60)
    before = {k: get(k, "web", ns)["metadata"]["resourceVersion"]
              for k in ("deployment", "service", "pdb", "hpa")}
    # when the spec changes the Service port and gives the pods a template the API server
    # refuses (the CRD passes the pod template through unvalidated)
    body = full()
    body["spec"]["service"]["ports"][0]["port"] = 81
    body["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"
    apply(body, ns)
    generation = get("rsvc", "web", ns)["metadata"]["generation"]
    # then within seconds: Degraded/ChildRejected naming the field, a Warning event, and
    # observedGeneration showing the spec was seen
    rs = wait_for("ChildRejected", lambda: (r := get("rsvc", "web", ns)) and condition(
        r, "Degraded").get("reason") == "ChildRejected" and r, timeout=15)
    assert "containers[0].name" in condition(rs, "Degraded")["message"]
    assert rs["status"]["observedGeneration"] == generation
    assert any(e["reason"] == "ChildRejected" and e["type"] == "Warning"
               for e in events(ns, "web"))
    # and no child changed, not even the Service whose own change was valid
    time.sleep(3)
    after = {k: get(k, "web", ns)["metadata"]["resourceVersion"] for k in before}
    assert after == before
    # the refused write is not re-sent every few seconds
    applies = operator.metric("resilient_child_writes_total", kind="Deployment",
                              action="refused")
    time.sleep(3)
    assert operator.metric("resilient_child_writes_total", kind="Deployment",
                           action="refused") <= applies + 1


@pytest.mark.parametrize("name, ok", [("a" * 63, True), ("a" * 64, False), ("my.app", False),
                                      ("9lives", False)])
def test_names_that_cannot_name_a_service_are_refused(ns: str, name: str, ok: bool) -> None:
    done = apply(rsvc(name), ns, check=False)
    assert (done.returncode == 0) == ok, done.stderr
    if not ok:
        assert "metadata.name must be a DNS-1035 label" in done.stderr
