"""The committed CRD is generated from the models, and is a valid structural schema."""

from __future__ import annotations

from typing import Any

import yaml

from resilient_operator.resource import crd

from .conftest import ROOT

CRD_PATH = ROOT / "crds/resilientservices.resilience.dev.yaml"


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            if k != "default":
                yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_committed_crd_matches_the_models():
    assert CRD_PATH.read_text() == crd.render(), (
        "crds/ is out of date with operator/resilient_operator/models.py: run `make crds`")


def test_schema_is_structural():
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for forbidden in ("$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "title"):
            assert forbidden not in node, f"{forbidden} at {path}"
        assert node.get("additionalProperties") is not False, path
        if "properties" in node:
            assert node.get("type") == "object", path


def test_every_spec_field_is_described():
    spec = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    for path, node in _walk(spec["spec"], "spec"):
        for name, prop in (node.get("properties") or {}).items():
            assert prop.get("description"), f"{path}.{name} has no description"


def test_scale_subresource_and_printer_columns():
    version = crd.build_crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "status" in version["subresources"]
    names = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert names == ["Desired", "Ready", "Available", "State", "Step", "Weight", "Age"]
    names = crd.build_crd()["spec"]["names"]
    assert names["shortNames"] == ["rsvc"] and names["categories"] == ["resilience"]


def test_cross_field_rules_are_in_the_crd():
    text = yaml.safe_dump(crd.build_crd())
    assert "self.minReplicas <= self.maxReplicas" in text
    assert "!(has(self.minAvailable) && has(self.maxUnavailable))" in text
    assert "app.kubernetes.io/managed-by" in text
