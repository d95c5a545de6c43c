"""The RBAC the manifests grant is exactly what the kinds table says the code needs."""

from __future__ import annotations

from pathlib import Path

import yaml

from resilient_operator.builders.children import CHILD_KINDS
from resilient_operator.kube import rbac
from resilient_operator.kube.kinds import KINDS

ROOT = Path(__file__).resolve().parent.parent


def _docs(path: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / path).read_text()) if d]


def test_committed_cluster_role_is_generated_from_the_kinds_table():
    assert (ROOT / "manifests/base/rbac-reconcile.yaml").read_text() == rbac.manifest(), \
        "run `make crds` to regenerate manifests/base/rbac-reconcile.yaml"


def test_namespaced_overlay_grants_the_same_rules_per_namespace():
    docs = _docs("manifests/overlays/namespaced/rbac-namespaced.yaml")
    role = next(d for d in docs if d["kind"] == "Role")
    nodes = next(d for d in docs if d["kind"] == "ClusterRole")
    assert role["rules"] == rbac.rules(namespaced=True)
    assert nodes["rules"] == [r for r in rbac.rules() if r not in rbac.rules(namespaced=True)]


def test_every_child_kind_is_watched_and_writable():
    for kind in CHILD_KINDS:
        assert {"watch", "create", "patch", "delete"} <= set(KINDS[kind].verbs)


def test_no_wildcards_and_no_secrets():
    for rule in rbac.rules():
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert not {"secrets", "configmaps"} & set(rule["resources"])
