"""Generates the CustomResourceDefinition from the pydantic models.

pydantic's JSON schema is not a structural CRD schema as is: references are inlined, optional
fields lose their ``anyOf`` with null, int-or-string unions become
``x-kubernetes-int-or-string``, open models become ``x-kubernetes-preserve-unknown-fields``,
``const`` becomes ``enum`` and titles go. Every default stays (the API server fills it in), and
the spec's descriptions say the type and default that ``kubectl explain`` does not show.

Run ``python -m resilient_operator.crd > crds/resilientservices.yaml`` (``make crds``).
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from . import models

_DROP = {"title"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _inline(merged, defs)
    return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}


def _structural(node: Any) -> Any:
    if isinstance(node, list):
        return [_structural(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    for key in _DROP:
        node.pop(key, None)
    if "anyOf" in node:
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        if node.get("default", 0) is None:
            node.pop("default")
        types = {o.get("type") for o in options}
        if types == {"integer", "string"}:
            node["x-kubernetes-int-or-string"] = True
        elif len(options) == 1:
            inner = options[0]
            rules = node.pop("x-kubernetes-validations", []) + inner.get(
                "x-kubernetes-validations", []
            )
            node = {**inner, **node}
            if rules:
                node["x-kubernetes-validations"] = rules
            return _structural(node)
        else:
            raise ValueError(f"cannot express anyOf {options} in a CRD schema")
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if node.get("default", 0) is None:
        node.pop("default")
    extra = node.pop("additionalProperties", None)
    if extra is True or (node.get("type") == "object" and "properties" in node and extra == {}):
        node["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict) and extra:
        node["additionalProperties"] = extra
    if node.get("x-kubernetes-preserve-unknown-fields") and "type" not in node:
        node["type"] = "object"
    return {k: _structural(v) if k != "default" else v for k, v in node.items()}


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _explained(node: Any) -> Any:
    """Each field's description ends with what `kubectl explain` cannot show of a CRD field: an
    int-or-string type (it prints <Object> for a field without ``type``) and the default (it
    prints none)."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "properties" in node:
        node["properties"] = {k: _explained(v) for k, v in node["properties"].items()}
    if "items" in node:
        node["items"] = _explained(node["items"])
    notes = []
    if node.get("x-kubernetes-int-or-string"):
        notes.append("Type: <int-or-string>.")
    if "default" in node and not isinstance(node["default"], dict | list):
        notes.append(f"Default: {_scalar(node['default'])}.")
    if notes and node.get("description"):
        node["description"] = node["description"].rstrip() + "\n" + " ".join(notes)
    return node


def schema_of(model: type[models.BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, as a CRD needs it."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(_inline(raw, raw.get("$defs", {})))


PRINTER_COLUMNS = [
    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas",
     "description": "Desired replicas"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas",
     "description": "Pods Ready"},
    {"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas",
     "description": "Pods available"},
    {"name": "State", "type": "string", "jsonPath": ".status.state",
     "description": "Summary of the conditions"},
    {"name": "Step", "type": "string", "jsonPath": ".status.rollout.currentStep",
     "description": "Current rollout step (2/4, Promoting, Aborting)"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.rollout.actualWeight",
     "description": "Percent of ready pods on the new template"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Up-to-date", "type": "integer", "jsonPath": ".status.updatedReplicas",
     "priority": 1, "description": "Pods of the current template"},
    {"name": "Healing", "type": "string", "jsonPath": ".spec.healing.mode", "priority": 1,
     "description": "Self-healing mode"},
    {"name": "Replaced", "type": "integer", "jsonPath": ".status.healing.podsReplaced",
     "priority": 1, "description": "Pods replaced by healing"},
    {"name": "Reason", "type": "string",
     "jsonPath": ".status.conditions[?(@.type==\"Ready\")].reason", "priority": 1,
     "description": "Why the resource is (not) Ready"},
]


def build_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object."""
    spec_schema = _explained(schema_of(models.ResilientServiceSpec))
    status_schema = schema_of(models.ResilientServiceStatus)
    spec_schema["description"] = models.ResilientServiceSpec.__doc__
    status_schema["description"] = models.ResilientServiceStatus.__doc__
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{models.PLURAL}.{models.GROUP}",
            "labels": {"app.kubernetes.io/name": "resilient-operator"},
        },
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.SINGULAR,
                "shortNames": models.SHORT_NAMES,
                "categories": models.CATEGORIES,
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": models.ResilientService.__doc__,
                            "required": ["spec"],
                            "x-kubernetes-validations": [
                                {"rule": models.NAME_RULE, "message": models.NAME_MESSAGE}],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML committed under crds/."""
    header = "# Generated from operator/resilient_operator/models.py by `make crds`. Do not edit.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
