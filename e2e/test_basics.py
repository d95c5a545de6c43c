"""The first promises: apply a ResilientService and the operator keeps its children."""

from __future__ import annotations

import yaml

from .conftest import ROOT, Operator, apply, condition, get, kubectl, ready_pods, wait_for

SAMPLE = ROOT / "manifests/samples/web.yaml"


def test_sample_gets_children_ready_pods_and_status(ns: str, operator: Operator) -> None:
    # given the sample ResilientService
    kubectl("apply", "-n", ns, "-f", str(SAMPLE))
    rs = get("rsvc", "web", ns)
    # then a Deployment, Service, PDB and HPA appear, owned by it
    for kind in ("deployment", "service", "pdb", "hpa"):
        child = wait_for(f"{kind} web", lambda k=kind: get(k, "web", ns))
        owner = child["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "ResilientService", rs["metadata"]["uid"], True)
    # and the pods become Ready (KWOK plays the kubelet)
    wait_for("3 ready pods", lambda: len(ready_pods(ns, "web")) == 3)
    # and the status tells the truth
    rs = wait_for("status Available", lambda: (
        r := get("rsvc", "web", ns)) and condition(r, "Available").get("status") == "True" and r)
    status = rs["status"]
    assert status["observedGeneration"] == rs["metadata"]["generation"]
    assert status["readyReplicas"] == 3 and status["replicas"] == 3
    assert status["selector"] == ("app.kubernetes.io/instance=web,"
                                  "app.kubernetes.io/managed-by=resilient-operator,"
                                  "app.kubernetes.io/name=web")
    ready = condition(rs, "Ready")
    assert ready["status"] in ("True", "False") and ready["observedGeneration"] >= 1
    assert {"Ready", "Available", "Progressing", "Degraded"} <= {
        c["type"] for c in status["conditions"]}


def test_deleted_deployment_comes_back(ns: str, operator: Operator) -> None:
    kubectl("apply", "-n", ns, "-f", str(SAMPLE))
    first = wait_for("deployment", lambda: get("deployment", "web", ns))
    # when someone deletes the Deployment
    kubectl("delete", "deployment", "web", "-n", ns, "--wait=false")
    # then the operator recreates it within seconds
    again = wait_for("a new deployment", lambda: (d := get("deployment", "web", ns)) and
                     d["metadata"]["uid"] != first["metadata"]["uid"] and d, timeout=30)
    assert again["spec"]["replicas"] == 3


def test_deleting_the_resource_removes_its_children(ns: str, operator: Operator) -> None:
    kubectl("apply", "-n", ns, "-f", str(SAMPLE))
    wait_for("3 ready pods", lambda: len(ready_pods(ns, "web")) == 3)
    for kind in ("service", "pdb", "hpa"):
        wait_for(kind, lambda k=kind: get(k, "web", ns))
    # when the ResilientService is deleted
    kubectl("delete", "rsvc", "web", "-n", ns)
    # then garbage collection removes every child (owner references)
    for kind in ("deployment", "service", "pdb", "hpa"):
        wait_for(f"{kind} gone", lambda k=kind: get(k, "web", ns) is None, timeout=60)


def test_a_restarted_operator_changes_nothing(ns: str, operator: Operator) -> None:
    # given a converged resource
    body = yaml.safe_load(SAMPLE.read_text())
    del body["spec"]["autoscaling"]  # the HPA's own status moves; keep the picture still
    apply(body, ns)
    wait_for("Ready", lambda: condition(get("rsvc", "web", ns), "Ready").get("status") == "True",
             timeout=60)
    before = {k: get(k, "web", ns)["metadata"]["resourceVersion"]
              for k in ("rsvc", "deployment", "service", "pdb")}
    events_before = len(get("events", namespace=ns) or [])
    # when a second operator process starts, does its work, and stops (run twice)
    # (watching only this namespace: other tests' namespaces may still be going away)
    second = Operator("operator-second", extra=["--namespace", ns]).start()
    try:
        wait_for("the second operator to reconcile",
                 lambda: second.metric("resilient_reconciles_total", result="ok") >= 1)
        # then nothing is written: no child, no status, no event
        after = {k: get(k, "web", ns)["metadata"]["resourceVersion"] for k in before}
        assert after == before
        assert second.metric("resilient_rest_client_requests_total", verb="apply") == 0
        assert second.metric("resilient_rest_client_requests_total", verb="patch") == 0
        assert len(get("events", namespace=ns) or []) == events_before
    finally:
        second.stop()
