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


INT_OR_STRING = ["availability.minAvailable", "availability.maxUnavailable",
                 "healing.maxConcurrent", "healing.stormThreshold", "rollout.maxSurge",
                 "service.ports.targetPort"]


def _spec_field(dotted: str) -> dict[str, Any]:
    node = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"]
    for name in dotted.split("."):
        node = node.get("items", node)["properties"][name]
    return node


def test_int_or_percent_fields_are_int_or_string_and_explain_says_so():
    for dotted in INT_OR_STRING:
        field = _spec_field(dotted)
        assert field.get("x-kubernetes-int-or-string") is True, dotted
        assert "type" not in field, dotted  # a structural schema allows no type beside it
        # kubectl explain prints <Object> for a CRD field without a type: the description says it
        assert "Type: <int-or-string>." in field["description"], dotted


def _model_defaults(model: type, path: str = ""):
    """(dotted path, default) of every field of a model with a default that is not None."""
    from pydantic import BaseModel

    for name, field in model.model_fields.items():
        dotted = f"{path}{field.alias or name}"
        if field.default_factory is not None:
            yield dotted, {}  # models built from their own defaults: {} in the schema
        elif field.default is not None and field.is_required() is False:
            yield dotted, field.default
        for arg in (*getattr(field.annotation, "__args__", ()), field.annotation):
            inner = getattr(arg, "__args__", (arg,))
            for t in (arg, *inner):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    yield from _model_defaults(t, dotted + ".")


def test_every_default_of_the_spec_models_is_in_the_schema():
    from resilient_operator.resource.models import ResilientServiceSpec

    defaults = dict(_model_defaults(ResilientServiceSpec))
    assert {"replicas", "healing.maxConcurrent", "healing.stormThreshold", "rollout.maxSurge",
            "rollout.health.startTimeout"} <= set(defaults)
    for dotted, default in defaults.items():
        field = _spec_field(dotted)
        assert field.get("default") == default, dotted
        if not isinstance(default, dict):
            assert f"Default: {str(default).lower() if isinstance(default, bool) else default}." \
                in field["description"], dotted


def test_fields_the_operator_reads_as_absent_have_no_default():
    # no default where absence means something other than a value: a PDB only when one of
    # them is set, the target port is the port, autoscaling targets CPU 80% only when neither
    # target is set, a pause without a duration waits for a promote
    for dotted in ("availability.minAvailable", "availability.maxUnavailable",
                   "service.ports.targetPort", "autoscaling.targetCPUUtilizationPercentage",
                   "autoscaling.targetMemoryUtilizationPercentage",
                   "rollout.steps.pause.duration", "rollout.steps"):
        assert "default" not in _spec_field(dotted), dotted
