"""The Grafana dashboard: generated, every query parses (promtool) and names only real series."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from resilient_operator import metrics

from .test_prometheus_rules import OVERLAY, _load_hack, promtool, rules

# Series of spec.objectives (issue 9, section 3) that the rules and the dashboard are written
# against before the operator exports them.
PLANNED = {"resilient_service_available", "resilient_service_objective",
           "resilient_service_ready_pods", "resilient_service_required_pods"}
# prometheus_client's process collector and Prometheus' own
STANDARD = {"process_cpu_seconds_total", "process_resident_memory_bytes", "up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def dashboard() -> dict[str, Any]:
    return dict(json.loads((OVERLAY / "dashboard.json").read_text()))


def queries() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def exported() -> set[str]:
    """The series names the operator's metrics module exports."""
    names = set()
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        if isinstance(value, Counter):
            names.add(f"{name}_total")
        elif isinstance(value, Histogram):
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif isinstance(value, Gauge):
            names.add(str(name))
    return names


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression selects (label matchers, groupings, ranges dropped)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"(?<![0-9.])[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[m.end():].lstrip()
        if rest.startswith("(") or m.group().lower() in KEYWORDS:
            continue  # a function or an aggregation, not a series
        names.add(m.group())
    return names


def test_the_dashboard_is_generated() -> None:
    assert (OVERLAY / "dashboard.json").read_text() == _load_hack("dashboard").render(), \
        "dashboard.json differs from hack/dashboard.py: run `make rules`"


def test_the_dashboard_is_shipped_in_the_overlay() -> None:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    generated = kustomization["configMapGenerator"][0]
    assert generated["files"] == ["dashboard.json"]
    assert generated["options"]["labels"] == {"grafana_dashboard": "1"}


def test_it_has_the_fleet_a_service_and_the_operator() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == ["Fleet", "Service $namespace/$service", "Operator"]
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard()["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]


def test_every_query_names_only_series_the_operator_or_the_rules_export() -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    known = exported() | recorded | PLANNED | STANDARD
    assert "resilient_heals_total" in exported()
    for expr in queries():
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{expr}: unknown {names - known}"


def test_every_query_parses(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    tool = promtool()
    grafana = {"$__rate_interval": "5m", "$namespace": "shop", "$service": "web"}
    exprs = []
    for expr in queries():
        for var, value in grafana.items():
            expr = expr.replace(var, value)
        exprs.append(expr)
    rule_file = tmp_path / "dashboard.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query:{i}", "expr": e} for i, e in enumerate(exprs)]}]}))
    done = subprocess.run([str(tool), "check", "rules", str(rule_file)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("expr, names", [
    ('sum by (reason) (rate(resilient_heals_total{result=~"a|b"}[5m]))',
     {"resilient_heals_total"}),
    ("resilient_slo:burn_rate:1h > 14.4 and on (namespace) resilient_slo:burn_rate:5m",
     {"resilient_slo:burn_rate:1h", "resilient_slo:burn_rate:5m"}),
    ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[$__rate_interval]))) / 2^20",
     {"x_bucket"}),
])
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_rule_names_only_series_the_operator_or_the_rules_export() -> None:
    recorded = {r["record"] for r in rules() if "record" in r}
    known = exported() | recorded | PLANNED | STANDARD
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names <= known, f"{rule.get('alert') or rule.get('record')}: {names - known}"
