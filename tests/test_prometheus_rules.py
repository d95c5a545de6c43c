"""The shipped Prometheus rules: generated PrometheusRule in sync, runbooks linked, promtool happy.

promtool is built from Go modules by ``e2e/cluster.sh build-prometheus`` (``make rules-test``
builds it and runs the same checks); these tests run it when it is built and skip, saying so,
when it is not.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "manifests/overlays/prometheus"
RULE_FILES = sorted((OVERLAY / "rules").glob("*.yaml"))
RUNBOOKS = ROOT / "docs/runbooks"


def _load_hack(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "hack" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rules() -> list[dict[str, Any]]:
    return [r for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]
            for r in g["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def promtool() -> Path:
    done = subprocess.run(["bash", str(ROOT / "e2e/cluster.sh"), "prometheus-bin"],
                          capture_output=True, text=True, check=True)
    path = Path(done.stdout.strip()) / "promtool"
    if not path.exists():
        pytest.skip(f"promtool is not built yet ({path}): `make rules-test` builds it and runs "
                    "these checks")
    return path


def test_the_prometheus_rule_is_generated_from_the_rule_files() -> None:
    wanted = _load_hack("prometheusrule").render()
    assert (OVERLAY / "prometheusrule.yaml").read_text() == wanted, \
        "prometheusrule.yaml differs from rules/*.yaml: run `make rules`"


def test_every_alert_has_a_severity_a_summary_and_a_runbook_that_exists() -> None:
    assert alerts()
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning"), name
        assert alert["annotations"]["summary"], name
        url = alert["annotations"]["runbook_url"]
        assert url == f"docs/runbooks/{name}.md", name
        page = (ROOT / url).read_text()
        assert page.startswith(f"# {name}\n"), f"{url} does not start with its alert's name"
        for section in ("## Meaning", "## Confirm", "## Act", "## Roll back"):
            assert section in page, f"{url} has no '{section}' section"


def test_every_runbook_belongs_to_an_alert() -> None:
    names = {a["alert"] for a in alerts()}
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == names


def test_no_operator_at_all_is_an_alert_not_silence() -> None:
    """sum() over no series is no series: the no-leader alert must not depend on one existing."""
    expr = next(a for a in alerts() if a["alert"] == "ResilientOperatorNoLeader")["expr"]
    assert "absent(resilient_leader)" in expr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    queried: list[str] = []
    for path in (ROOT / "tests/rules").glob("*.test.yaml"):
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case["exp_alerts"] else silent).add(case["alertname"])
            for case in group.get("promql_expr_test", []):
                queried.append(case["expr"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"
    # every recording rule is evaluated, directly or by an alert or record tested on top of it
    every = rules()
    leaves = {r["record"] for r in every if "record" in r
              and not any(r["record"] in other["expr"] for other in every)}
    untested = {leaf for leaf in leaves if not any(leaf in expr for expr in queried)}
    assert untested == set(), "recording rules no test evaluates"


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([str(promtool()), "check", "rules", *map(str, RULE_FILES)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    tests = sorted(str(p) for p in (ROOT / "tests/rules").glob("*.test.yaml"))
    done = subprocess.run([str(promtool()), "test", "rules", *tests],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_local_prometheus_relabels_pods_as_the_pod_monitor_does() -> None:
    """e2e/prometheus.py's "pods" job (on the local cluster) stands for the PodMonitor."""
    from e2e.prometheus import POD_RELABELING

    monitor = yaml.safe_load((OVERLAY / "podmonitor.yaml").read_text())
    keys = {"sourceLabels": "source_labels", "targetLabel": "target_label", "regex": "regex",
            "replacement": "replacement", "action": "action"}
    shipped = [{keys[k]: v for k, v in r.items()}
               for r in monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]]
    assert shipped == POD_RELABELING
