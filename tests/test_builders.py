"""Children built from a spec: golden output for the sample, invariants for any spec."""

from __future__ import annotations

import copy
import os

import yaml
from hypothesis import given, settings

from resilient_operator.builders import children as builders
from resilient_operator.resource.models import MANAGED_LABELS, parse_spec

from .conftest import ROOT
from .strategies import specs

OWNER = builders.Owner("web", "shop", "00000000-0000-0000-0000-000000000001")
GOLDEN = ROOT / "tests/golden/web-children.yaml"


def test_sample_children_match_golden(sample):
    built = builders.children(OWNER, parse_spec(sample["spec"]))
    text = yaml.safe_dump(built, sort_keys=True)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "run UPDATE_GOLDEN=1 pytest tests to accept changes"


def test_pdb_always_allows_unhealthy_eviction(sample):
    pdb = builders.pod_disruption_budget(OWNER, parse_spec(sample["spec"]))
    assert pdb is not None
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert pdb["spec"]["minAvailable"] == 2 and "maxUnavailable" not in pdb["spec"]


def test_the_pdb_carries_the_one_bound_given_and_none_without_a_bound(sample):
    spec = copy.deepcopy(sample["spec"])
    del spec["availability"]["minAvailable"]
    spec["availability"]["maxUnavailable"] = "25%"
    pdb = builders.pod_disruption_budget(OWNER, parse_spec(spec))
    assert pdb is not None
    assert pdb["spec"]["maxUnavailable"] == "25%" and "minAvailable" not in pdb["spec"]
    # only a zone spread: no disruption budget
    del spec["availability"]["maxUnavailable"]
    assert builders.pod_disruption_budget(OWNER, parse_spec(spec)) is None


def test_hpa_targets_the_resilient_service(sample):
    hpa = builders.horizontal_pod_autoscaler(OWNER, parse_spec(sample["spec"]))
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "resilience.dev/v1alpha1", "kind": "ResilientService", "name": "web"}


def test_optional_parts_absent_build_nothing(sample):
    spec = copy.deepcopy(sample["spec"])
    for part in ("service", "availability", "autoscaling"):
        del spec[part]
    built = builders.children(OWNER, parse_spec(spec))
    assert built["service"] is None
    assert built["disruption-budget"] is None
    assert built["autoscaler"] is None
    assert built["canary"] is None  # no rollout: no canary track
    assert "topologySpreadConstraints" not in built["stable"]["spec"]["template"]["spec"]


def test_user_spread_constraints_on_other_keys_are_kept(sample):
    spec = copy.deepcopy(sample["spec"])
    spec["template"]["spec"]["topologySpreadConstraints"] = [
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
         "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {}}]
    dep = builders.deployment(OWNER, parse_spec(spec))
    keys = [c["topologyKey"] for c in dep["spec"]["template"]["spec"]["topologySpreadConstraints"]]
    assert keys == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]


@settings(max_examples=200, deadline=None)
@given(specs())
def test_any_accepted_spec_builds_consistent_children(raw):
    spec = parse_spec(raw)
    built = builders.children(OWNER, spec)
    selector = builders.managed_labels("web")
    dep = built["stable"]
    assert dep is not None
    assert dep["spec"]["selector"]["matchLabels"] == selector
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in selector.items())
    assert dep["spec"]["replicas"] == spec.desired_replicas()
    for role, obj in built.items():
        if obj is None:
            continue
        kind = obj["kind"]
        assert builders.role_of(kind, "web", obj["metadata"]["name"]).name == role
        assert obj["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid, kind
        assert obj["metadata"]["ownerReferences"][0]["controller"] is True
        assert {k: obj["metadata"]["labels"][k] for k in MANAGED_LABELS} == selector
        if kind in ("Service", "PodDisruptionBudget"):
            sel = obj["spec"]["selector"]
            assert sel.get("matchLabels", sel) == selector
    pdb = built["disruption-budget"]
    if pdb is not None:
        assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])


def test_canary_track_runs_the_new_template_beside_the_stable_one(sample):
    spec = parse_spec(sample["spec"])
    old = builders.pod_template(OWNER, spec)
    old["spec"]["containers"][0]["image"] = "registry.example/web:old"
    tracks = builders.Tracks(stable_replicas=2, stable_template=old, canary_replicas=1)
    built = builders.children(OWNER, spec, tracks)
    stable, canary = built["stable"], built["canary"]
    assert stable["metadata"]["name"] == "web" and canary["metadata"]["name"] == "web-canary"
    assert stable["spec"]["replicas"] == 2 and canary["spec"]["replicas"] == 1
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":old")
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == \
        sample["spec"]["template"]["spec"]["containers"][0]["image"]
    # canary pods carry the track label and are selected by it; the Service selects both
    assert canary["spec"]["selector"]["matchLabels"][builders.TRACK_LABEL] == "canary"
    assert canary["spec"]["template"]["metadata"]["labels"][builders.TRACK_LABEL] == "canary"
    assert builders.TRACK_LABEL not in built["service"]["spec"]["selector"]


def test_roles_table_names_each_child_once():
    names = [(r.kind, r.child_name("web")) for r in builders.ROLES]
    assert len(names) == len(set(names))
    assert builders.role_of("Deployment", "web", "web-canary").name == "canary"
    assert builders.role_of("Deployment", "web", "other") is None
