"""The children actor: given this world, these API calls happen."""

from __future__ import annotations

from resilient_operator.kube.api import ApiError

from .conftest import Harness, resource, settle


def test_a_new_service_gets_its_children_deployment_first_and_one_status_write(h: Harness):
    h.api.put(resource(service={"ports": [{"port": 80}]},
                       availability={"minAvailable": 1}))
    h.reconcile()
    writes = h.api.writes()
    assert [w for w in writes if w[0] == "apply"] == [
        ("apply", "Deployment", "web"), ("apply", "Service", "web"),
        ("apply", "PodDisruptionBudget", "web")]
    assert [w for w in writes if w[0] == "patch-status"] == [
        ("patch-status", "ResilientService", "web")]
    assert [e[1] for e in h.api.events].count("Created") == 3


def test_an_idle_service_makes_no_request(h: Harness):
    h.api.put(resource(service={"ports": [{"port": 80}]}))
    h.reconcile()
    settle(h.api)
    h.reconcile()
    h.api.calls.clear()
    h.reconcile()
    assert h.api.calls == []


def test_a_refused_template_writes_no_other_child_and_is_reported_at_once(h: Harness):
    h.api.put(resource(service={"ports": [{"port": 80}]}))
    h.api.refuse[("apply", "Deployment")] = ApiError(
        500, "InternalError", "conversion webhook failed: spec.template.spec.containers[0]")
    delay = h.reconcile()
    assert ("apply", "Service", "web") not in h.api.writes()
    degraded = h.condition("Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "ChildRejected"
    assert "containers[0]" in degraded["message"]
    assert h.status()["observedGeneration"] == 1
    assert any(e[0] == "Warning" and e[1] == "ChildRejected" for e in h.api.events)
    # not re-sent on every reconcile: it waits for a growing delay
    assert delay is not None and delay >= 1
    h.api.calls.clear()
    h.reconcile()
    assert h.api.writes() == []
    h.clock.now += delay
    h.reconcile()
    assert ("apply", "Deployment", "web") in h.api.writes()


def test_when_several_children_change_all_are_validated_before_any_is_written(h: Harness):
    h.api.put(resource(service={"ports": [{"port": 80}]}))
    h.reconcile()
    settle(h.api)
    h.reconcile()
    body = h.api.obj("ResilientService", "web")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/web:2"
    body["spec"]["service"]["ports"] = [{"port": 81}]
    h.api.put(body)
    h.api.refuse[("dry-run", "Service")] = ApiError(422, "Invalid", "spec.ports[0]: bad")
    h.api.calls.clear()
    h.reconcile()
    assert [w[0] for w in h.api.writes() if w[0] in ("apply", "merge-patch")] == []
    assert h.condition("Degraded")["reason"] == "ChildRejected"


def test_an_entry_another_writer_added_to_a_list_is_removed(h: Harness):
    h.api.put(resource(service={"ports": [{"name": "http", "port": 80}]}))
    h.reconcile()
    svc = h.api.obj("Service", "web")
    svc["spec"]["ports"].append({"name": "debug", "port": 9999, "protocol": "TCP"})
    h.api.put(svc)
    h.api.calls.clear()
    h.reconcile()
    patches = [c for c in h.api.calls if c.verb == "merge-patch"]
    assert len(patches) == 1
    assert [p["port"] for p in patches[0].body["spec"]["ports"]] == [80]
    assert [p["port"] for p in h.api.obj("Service", "web")["spec"]["ports"]] == [80]
    assert any(e[1] == "DriftRestored" for e in h.api.events)


def test_a_child_the_resource_does_not_own_is_never_taken_over(h: Harness):
    h.api.put({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": "shop"}, "spec": {}})
    h.api.put(resource(service={"ports": [{"port": 80}]}))
    h.reconcile()
    assert ("apply", "Service", "web") not in h.api.writes()
    assert h.condition("Degraded")["reason"] == "ChildConflict"


def test_children_the_spec_no_longer_wants_are_removed(h: Harness):
    h.api.put(resource(service={"ports": [{"port": 80}]}))
    h.reconcile()
    body = h.api.obj("ResilientService", "web")
    del body["spec"]["service"]
    h.api.put(body)
    h.reconcile()
    assert ("delete", "Service", "web") in h.api.writes()
