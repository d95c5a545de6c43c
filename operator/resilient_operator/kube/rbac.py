"""The operator's reconcile RBAC, generated from the kinds table (kube/kinds.py), so what the
code touches and what the manifests grant cannot drift apart (a unit test compares them).

``python -m resilient_operator.kube.rbac > manifests/base/rbac-reconcile.yaml``, and with
``--chart`` the same rules for the Helm chart (``charts/resilient-operator/files/``); ``make crds``
writes both.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from .kinds import KINDS

# granted elsewhere: events by the framework role, leases by the leader-election Role
ELSEWHERE = ("Event", "Lease")
CLUSTER_SCOPED = ("Node",)


def rules(namespaced: bool = False) -> list[dict[str, Any]]:
    """The rules of the reconcile role: every kind of the table with its verbs and
    subresources (cluster-scoped kinds left out of a namespaced Role)."""
    out: list[dict[str, Any]] = []
    for kind in KINDS.values():
        if kind.kind in ELSEWHERE or (namespaced and kind.kind in CLUSTER_SCOPED):
            continue
        out.append({"apiGroups": [kind.group], "resources": [kind.plural],
                    "verbs": list(kind.verbs)})
        for sub, verbs in kind.subresources:
            out.append({"apiGroups": [kind.group], "resources": [f"{kind.plural}/{sub}"],
                        "verbs": list(verbs)})
    return out


def manifest() -> str:
    """manifests/base/rbac-reconcile.yaml."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "resilient-operator-reconcile"}, "rules": rules()}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "resilient-operator-reconcile"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "resilient-operator-reconcile"},
        "subjects": [{"kind": "ServiceAccount", "name": "resilient-operator",
                      "namespace": "resilient-system"}],
    }
    why = "\n".join(f"#   {k.plural}: {k.why}" for k in KINDS.values()
                    if k.kind not in ELSEWHERE)
    head = ("# What reconciling needs, generated from kube/kinds.py by `make crds`; do not edit.\n"
            "# No wildcards, no secrets, no configmaps.\n" + why + "\n")
    return head + yaml.safe_dump_all([role, binding], sort_keys=False)


def chart_rules() -> str:
    """charts/resilient-operator/files/rbac-reconcile.yaml: the rules of a cluster-wide install,
    of a Role per watched namespace, and of the cluster-scoped kinds a namespaced install still
    reads cluster-wide."""
    namespaced = rules(namespaced=True)
    cluster_scoped = [r for r in rules() if r not in namespaced]
    head = ("# The reconcile rules for the chart's templates, generated from kube/kinds.py by\n"
            "# `make crds`; do not edit.\n")
    return head + yaml.safe_dump({"cluster": rules(), "namespaced": namespaced,
                                  "clusterScoped": cluster_scoped}, sort_keys=False)


if __name__ == "__main__":
    sys.stdout.write(chart_rules() if sys.argv[1:] == ["--chart"] else manifest())
