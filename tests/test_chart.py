"""The Helm chart renders the same objects as manifests/ and its overlays, so the two installs
cannot drift apart; its values are checked by values.schema.json and helm lint --strict.

helm and kustomize are built from Go modules by e2e/tools.sh on first use (minutes, once);
without Go these tests are skipped, saying so.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from functools import cache
from typing import Any

import pytest
import yaml

from resilient_operator.kube import rbac

from .conftest import ROOT

CHART = ROOT / "charts/resilient-operator"
RELEASE, NAMESPACE = "resilient-operator", "resilient-system"
Key = tuple[str, str, str]


@cache
def tool(name: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "e2e/tools.sh"), "build", name],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"{name} could not be built from Go modules (e2e/tools.sh): "
                    f"{done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.strip()


def objects(text: str) -> dict[Key, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    found = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
             for d in docs}
    assert len(found) == len(docs), "two objects of the same kind, namespace and name"
    return found


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, check=check)


def template(*values: str) -> dict[Key, dict[str, Any]]:
    sets = [a for v in values for a in ("--set", v)]
    done = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds",
                *sets)
    return objects(done.stdout)


def kustomize(path: str) -> dict[Key, dict[str, Any]]:
    done = subprocess.run([tool("kustomize"), "build", str(ROOT / path)], capture_output=True,
                          text=True, check=True)
    return objects(done.stdout)


def assert_same(chart: dict[Key, Any], manifests: dict[Key, Any]) -> None:
    assert sorted(chart) == sorted(manifests)
    for key, obj in manifests.items():
        assert chart[key] == obj, f"{key} differs:\n--- chart\n{yaml.safe_dump(chart[key])}" \
                                  f"--- manifests\n{yaml.safe_dump(obj)}"


def without_namespace(found: dict[Key, Any]) -> dict[Key, Any]:
    return {k: v for k, v in found.items() if k[0] != "Namespace"}


def test_default_values_render_what_kubectl_kustomize_renders():
    manifests = kustomize("manifests")
    # helm installs into a namespace that exists: the chart makes its own only when asked
    assert_same(template(), without_namespace(manifests))
    assert_same(template("namespace.create=true"), manifests)


def test_watched_namespaces_render_the_namespaced_overlay():
    overlay = kustomize("manifests/overlays/namespaced")
    assert_same(template("watchNamespaces={apps}"), without_namespace(overlay))


PROMETHEUS = ["metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true",
              "metrics.prometheusRule.enabled=true", "metrics.dashboard.enabled=true"]


def test_prometheus_values_render_the_prometheus_overlay():
    overlay = kustomize("manifests/overlays/prometheus")
    assert_same(template(*PROMETHEUS), without_namespace(overlay))


def test_prometheus_rule_templates_reach_prometheus_untouched():
    rule = next(o for k, o in template(*PROMETHEUS).items() if k[0] == "PrometheusRule")
    annotations = [v for group in rule["spec"]["groups"] for r in group["rules"]
                   for v in (r.get("annotations") or {}).values()]
    assert any("{{ $labels.namespace }}" in text for text in annotations), annotations


def test_the_prometheus_objects_follow_the_release():
    found = template(*PROMETHEUS, "fullnameOverride=ops", "commonLabels.team=platform",
                     "metrics.prometheusRule.labels.release=prometheus")
    monitor = next(o for k, o in found.items() if k[0] == "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "ops"}
    rule = next(o for k, o in found.items() if k[0] == "PrometheusRule")
    labels = rule["metadata"]["labels"]
    assert labels["team"] == "platform" and labels["release"] == "prometheus"
    assert all(k[1] in ("", NAMESPACE) for k in found)


def test_every_option_renders_and_the_namespaced_roles_follow_the_kinds_table():
    found = template("watchNamespaces={apps,shop}", "replicaCount=3", "workers=8",
                     "verbose=true", "metrics.port=9090", "fullnameOverride=ops",
                     "image.digest=sha256:" + "0" * 64)
    for ns in ("apps", "shop"):
        role = found[("Role", ns, "ops-reconcile")]
        assert role["rules"] == rbac.rules(namespaced=True)
        assert found[("RoleBinding", ns, "ops-reconcile")]["subjects"] == [
            {"kind": "ServiceAccount", "name": "ops", "namespace": NAMESPACE}]
    assert ("ClusterRole", "", "ops-reconcile") not in found
    nodes = found[("ClusterRole", "", "ops-nodes")]["rules"]
    assert nodes == [r for r in rbac.rules() if r not in rbac.rules(namespaced=True)]
    pod = found[("Deployment", NAMESPACE, "ops")]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == ["--leader-elect", f"--lease-namespace={NAMESPACE}",
                                 "--namespace=apps", "--namespace=shop", "--metrics-port=9090",
                                 "--workers=8", "--verbose"]
    assert container["image"] == "resilient-operator@sha256:" + "0" * 64
    assert container["ports"][0] == {"name": "metrics", "containerPort": 9090}


def test_values_are_checked():
    # more than one replica needs the Lease, else every replica would act
    done = helm("template", RELEASE, str(CHART), "--set", "leaderElection.enabled=false",
                check=False)
    assert done.returncode != 0 and "needs leaderElection.enabled" in done.stderr
    assert helm("template", RELEASE, str(CHART), "--set", "leaderElection.enabled=false",
                "--set", "replicaCount=1").returncode == 0
    for bad in ("replicaCount=-1", "image.pullPolicy=Sometimes", "watchNamespaces={Apps}",
                "metrics.port=8081", "unknownValue=1"):
        done = helm("template", RELEASE, str(CHART), "--set", bad, check=False)
        assert done.returncode != 0 and "schema" in done.stderr, bad


def test_helm_lint_strict_passes():
    for values in [[], *(["-f", str(p)] for p in sorted((CHART / "ci").glob("*-values.yaml")))]:
        done = helm("lint", "--strict", str(CHART), *values, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_files_the_chart_shares_are_up_to_date():
    assert (CHART / "crds/resilientservices.resilience.dev.yaml").read_text() == \
        (ROOT / "crds/resilientservices.resilience.dev.yaml").read_text(), "run `make chart`"
    assert (CHART / "files/rbac-reconcile.yaml").read_text() == rbac.chart_rules(), \
        "run `make chart`"
    overlay = ROOT / "manifests/overlays/prometheus"
    shared = {p.name: p.read_text() for p in [*overlay.glob("*.yaml"), *overlay.glob("*.json")]
              if p.name != "kustomization.yaml"}
    copied = {p.name: p.read_text() for p in (CHART / "files/prometheus").iterdir()}
    assert copied == shared, "run `make chart`"


def test_chart_versions_follow_the_operator():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version and chart["version"] == version
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["tag"] == ""  # the appVersion, so the two cannot disagree
    json.loads((CHART / "values.schema.json").read_text())
