"""Print the Grafana dashboard of the prometheus overlay (make rules writes it to dashboard.json).

Three rows: the fleet, one service (chosen with the namespace and service variables), the
operator itself. Every query names only series the operator exports or the shipped rules record
(tests/test_dashboard.py checks it, and that promtool parses every query).
"""

from __future__ import annotations

import json
import sys
from typing import Any

SVC = 'namespace="$namespace", service="$service"'
RI = "$__rate_interval"


class Layout:
    """Panels placed left to right on Grafana's 24-column grid, rows stacked."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_height = 0

    def row(self, title: str) -> None:
        self.newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False,
                            "id": len(self.panels) + 1,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.y += 1

    def newline(self) -> None:
        self.y += self.row_height
        self.x = self.row_height = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def _targets(queries: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for i, (expr, legend) in enumerate(queries)]


def stat(title: str, expr: str, unit: str = "short", description: str = "") -> dict[str, Any]:
    return {"type": "stat", "title": title, "description": description,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "targets": _targets([(expr, "")]),
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "values": False},
                        "colorMode": "value", "graphMode": "area"}}


def series(title: str, queries: list[tuple[str, str]], unit: str = "short",
           description: str = "", stack: bool = False) -> dict[str, Any]:
    custom: dict[str, Any] = {"fillOpacity": 10, "lineWidth": 1}
    if stack:
        custom["stacking"] = {"mode": "normal"}
    return {"type": "timeseries", "title": title, "description": description,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "targets": _targets(queries),
            "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"}}}


def quantiles(metric: str, by: str = "", selector: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    matchers = f"{{{selector}}}" if selector else ""
    return [(f"histogram_quantile({q}, sum by ({group}) "
             f"(rate({metric}_bucket{matchers}[{RI}])))", f"{prefix}p{int(q * 100)}")
            for q in (0.5, 0.9)]


def panels() -> list[dict[str, Any]]:
    lay = Layout()

    lay.row("Fleet")
    lay.add(stat("Services", "count(resilient_healing_suspended)",
                 description="ResilientServices the acting replica manages"), 4, 4)
    lay.add(stat("Healing suspended", "sum(resilient_healing_suspended)",
                 description="Services whose storm breaker holds healing"), 4, 4)
    lay.add(stat("Unhealthy pods", "sum(resilient_unhealthy_pods)"), 4, 4)
    lay.add(stat("Heals, 24 h",
                 'sum(increase(resilient_heals_total{result=~"evicted|deleted"}[1d]))'), 4, 4)
    lay.add(stat("Releases promoted, 7 d", "sum(increase(resilient_deployments_total[7d]))"),
            4, 4)
    lay.add(stat("Change-failure ratio, 7 d",
                 "sum(increase(resilient_change_failures_total[7d]))"
                 " / sum(resilient_dora:releases:increase7d)", unit="percentunit"), 4, 4)
    lay.add(series("Heals by reason", [
        ('sum by (reason) (rate(resilient_heals_total{result=~"evicted|deleted"}[' + RI + "]))",
         "{{reason}}")], unit="reqps", stack=True), 8, 8)
    lay.add(series("Time to recovery", quantiles("resilient_time_to_recovery_seconds"),
                   unit="s", description="A pod became unhealthy -> its replacement Ready"), 8, 8)
    lay.add(series("Error budget left, 30 d", [
        ("resilient_slo:error_budget_remaining:ratio_30d", "{{namespace}}/{{service}}")],
        unit="percentunit", description="Services with spec.objectives"), 8, 8)
    lay.add(series("Rollouts ended", [
        (f"sum by (result) (increase(resilient_rollouts_total[{RI}]))", "{{result}}")],
        stack=True), 8, 8)
    lay.add(series("Rollout aborts by reason", [
        (f"sum by (reason) (increase(resilient_rollout_aborts_total[{RI}]))", "{{reason}}")],
        stack=True), 8, 8)
    lay.add(series("Abort decision and time to restore", [
        *quantiles("resilient_rollout_abort_decision_seconds"),
        *[(e, "restored " + legend)
          for e, legend in quantiles("resilient_time_to_restore_seconds")]],
        unit="s", description="First failing signal of a release -> abort decided; "
        "-> stable track fully restored"), 8, 8)

    lay.row("Service $namespace/$service")
    lay.add(series("Ready and required pods", [
        (f"resilient_service_ready_pods{{{SVC}}}", "ready"),
        (f"resilient_service_required_pods{{{SVC}}}", "required by the availability policy")]),
        8, 8)
    lay.add(series("Canary weight and step", [
        (f"resilient_rollout_weight{{{SVC}}}", "% of ready pods on the new template"),
        (f"resilient_rollout_step{{{SVC}}}", "step")]), 8, 8)
    lay.add(series("Unhealthy pods by reason", [
        (f"sum by (reason) (resilient_unhealthy_pods{{{SVC}}})", "{{reason}}")], stack=True),
        8, 8)
    lay.add(series("Heals by reason and result", [
        (f"sum by (reason, result) (increase(resilient_heals_total{{{SVC}}}[{RI}]))",
         "{{reason}} {{result}}")], stack=True), 8, 8)
    lay.add(series("Availability and error budget, 30 d", [
        (f"resilient_slo:availability:ratio_30d{{{SVC}}}", "availability"),
        (f"resilient_slo:error_budget_remaining:ratio_30d{{{SVC}}}", "budget left")],
        unit="percentunit"), 8, 8)
    lay.add(series("Error budget burn rate", [
        (f"resilient_slo:burn_rate:{w}{{{SVC}}}", w) for w in ("5m", "1h", "6h", "1d")],
        description="1 spends the budget exactly over 30 days; the fast-burn page is at 14.4"),
        8, 8)
    lay.add(series("Rollouts and healing", [
        (f"sum by (result) (increase(resilient_rollouts_total{{{SVC}}}[{RI}]))", "{{result}}"),
        (f"resilient_healing_suspended{{{SVC}}}", "healing suspended")]), 12, 8)
    lay.add(series("Deployments and change failures, 7 d", [
        (f"resilient_dora:releases:increase7d{{{SVC}}}", "releases"),
        (f"resilient_dora:change_failure:ratio_7d{{{SVC}}}", "change-failure ratio")]), 12, 8)

    lay.row("Operator")
    lay.add(series("Leader", [("resilient_leader", "{{instance}}")],
                   description="1 on the replica that acts; exactly one should"), 6, 8)
    lay.add(series("Reconciles", [
        (f"sum by (result) (rate(resilient_reconciles_total[{RI}]))", "{{result}}")],
        unit="ops", stack=True), 6, 8)
    lay.add(series("Reconcile duration", quantiles("resilient_reconcile_duration_seconds"),
                   unit="s"), 6, 8)
    lay.add(series("Heal reaction", quantiles("resilient_heal_reaction_seconds", by="reason"),
                   unit="s", description="Threshold crossed -> eviction or delete sent"), 6, 8)
    lay.add(series("API requests", [
        (f"sum by (verb) (rate(resilient_rest_client_requests_total[{RI}]))", "{{verb}}")],
        unit="reqps", stack=True), 8, 8)
    lay.add(series("Child writes", [
        (f"sum by (kind, action) (rate(resilient_child_writes_total[{RI}]))",
         "{{kind}} {{action}}")], unit="ops", stack=True), 8, 8)
    lay.add(series("CPU and memory", [
        (f'rate(process_cpu_seconds_total{{job="resilient-operator"}}[{RI}])',
         "{{instance}} CPU (cores)"),
        ('process_resident_memory_bytes{job="resilient-operator"} / 2^20',
         "{{instance}} RSS (MiB)")]), 8, 8)
    return lay.panels


def dashboard() -> dict[str, Any]:
    def variable(name: str, query: str) -> dict[str, Any]:
        return {"name": name, "label": name, "type": "query", "refresh": 2, "sort": 1,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "definition": query, "query": {"query": query, "refId": name},
                "includeAll": False, "multi": False}

    return {
        "title": "resilient-operator",
        "uid": "resilient-operator",
        "description": "ResilientServices: healing, rollouts, SLOs; and the operator itself",
        "tags": ["resilient-operator", "kubernetes"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus"},
            variable("namespace", "label_values(resilient_healing_suspended, namespace)"),
            variable("service", 'label_values(resilient_healing_suspended'
                     '{namespace="$namespace"}, service)'),
        ]},
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
