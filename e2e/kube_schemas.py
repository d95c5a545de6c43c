"""JSON schemas for kubeconform, made offline: from a running API server's own OpenAPI v3
document, and from CustomResourceDefinition files.

    python e2e/kube_schemas.py cluster OUT_DIR        # the kinds in KINDS, from KUBECONFIG's
                                                      # API server (`make schemas`)
    python e2e/kube_schemas.py crd OUT_DIR CRD.yaml.. # every served version of each CRD

Each schema is standalone (every $ref it needs is copied into its "definitions") and strict: an
object with known properties admits no other, unless Kubernetes keeps unknown fields there
(x-kubernetes-preserve-unknown-fields), so a misspelt field fails validation instead of being
pruned by the API server in silence. Files are named as kubeconform's schema-location template
``{{ .ResourceKind }}{{ .KindSuffix }}.json`` expects: deployment-apps-v1.json, service-v1.json,
resilientservice-resilience-v1alpha1.json. CEL rules (x-kubernetes-validations) are not JSON
Schema: the API server's dry run checks them (e2e/test_contract.py), kubeconform does not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

# (apiVersion, kind) of every built-in kind the manifests, the overlays and the chart use;
# kubeconform fails on a kind it has no schema for, so a new kind means `make schemas`.
KINDS = [
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
]

REF = "#/components/schemas/"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def file_name(api_version: str, kind: str) -> str:
    """kubeconform's ``{{ .ResourceKind }}{{ .KindSuffix }}.json``."""
    group, _, version = api_version.rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{kind.lower()}{suffix}.json"


SCHEMA_MAPS = ("properties", "patternProperties", "definitions")  # name -> schema
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
SCHEMAS = ("items", "additionalProperties", "not")
DROPPED = ("description",  # kubeconform needs none: the files stay small
           "x-kubernetes-validations", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
           "x-kubernetes-map-type", "x-kubernetes-patch-merge-key",
           "x-kubernetes-patch-strategy", "x-kubernetes-group-version-kind",
           "x-kubernetes-unions", "x-kubernetes-embedded-resource")


def to_json_schema(node: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """An OpenAPI v3 schema (as Kubernetes writes it) as JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED:
            continue
        if key in SCHEMA_MAPS:
            out[key] = {name: to_json_schema(s, strict) for name, s in value.items()}
        elif key in SCHEMA_LISTS:
            out[key] = [to_json_schema(s, strict) for s in value]
        elif key in SCHEMAS and isinstance(value, dict):
            out[key] = to_json_schema(value, strict)
        else:
            out[key] = value
    if "$ref" in out:
        out["$ref"] = "#/definitions/" + out["$ref"].removeprefix(REF)
    if out.pop("x-kubernetes-int-or-string", False) or out.get("format") == "int-or-string":
        out.pop("type", None)
        out.pop("format", None)
        out["anyOf"] = INT_OR_STRING
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if strict and not preserve and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(n) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    ref = node.get("$ref")
    found = {ref.removeprefix(REF)} if isinstance(ref, str) else set()
    return found.union(*(_refs(v) for v in node.values()))


def standalone(name: str, components: dict[str, Any]) -> dict[str, Any]:
    """The schema of components[name] with every definition it reaches."""
    needed, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in needed:
            continue
        needed.add(current)
        todo.extend(_refs(components[current]) - needed)
    definitions = {}
    for n in sorted(needed - {name}):
        definitions[n] = ({"anyOf": [{"type": "string"}, {"type": "number"}]} if n == QUANTITY
                          else to_json_schema(components[n]))
    schema = to_json_schema(components[name])
    if definitions:
        schema["definitions"] = definitions
    return schema


def kubectl_raw(path: str) -> dict[str, Any]:
    done = subprocess.run(["kubectl", "get", "--raw", path], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def from_cluster(out: Path) -> list[Path]:
    """Schemas of KINDS from the API server's /openapi/v3 (KUBECONFIG, kubectl on PATH)."""
    version = kubectl_raw("/version")["gitVersion"]
    written = []
    documents: dict[str, dict[str, Any]] = {}
    for api_version, kind in KINDS:
        path = f"/openapi/v3/api/{api_version}" if "/" not in api_version else \
            f"/openapi/v3/apis/{api_version}"
        if path not in documents:
            documents[path] = kubectl_raw(path)["components"]["schemas"]
        components = documents[path]
        group, _, v = api_version.rpartition("/")
        name = next(n for n, s in components.items()
                    if {"group": group, "version": v, "kind": kind}
                    in s.get("x-kubernetes-group-version-kind", []))
        schema = standalone(name, components)
        schema["$comment"] = (f"{api_version} {kind} from the OpenAPI v3 of Kubernetes {version} "
                              "(e2e/kube_schemas.py, make schemas)")
        written.append(_write(out / file_name(api_version, kind), schema))
    return written


def from_crds(out: Path, files: list[Path]) -> list[Path]:
    """Schemas of every served version of the CRDs in ``files``."""
    written = []
    for f in files:
        for crd in yaml.safe_load_all(f.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                if not v.get("served"):
                    continue
                schema = to_json_schema(v["schema"]["openAPIV3Schema"])
                schema["$comment"] = f"{group}/{v['name']} {kind} from {f.name}"
                written.append(_write(out / file_name(f"{group}/{v['name']}", kind), schema))
    return written


def _write(path: Path, schema: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    return path


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "cluster":
        paths = from_cluster(Path(argv[1]))
    elif len(argv) >= 3 and argv[0] == "crd":
        paths = from_crds(Path(argv[1]), [Path(a) for a in argv[2:]])
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
