"""`--log-format json`: one JSON object a line, and every action carries namespace, service,
pod and reason as fields a log pipeline can filter on."""

from __future__ import annotations

import json

import pytest

from .conftest import FAULT_POD, Operator, apply, get, kubectl, ready_pods, rsvc, wait_for

pytestmark = pytest.mark.usefixtures("kwok")


def records(op: Operator) -> list[dict]:
    lines = [line for line in op.log_path.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line parses, or this fails


def test_json_logs_carry_the_fields_of_each_action(ns: str, cluster: None) -> None:
    op = Operator("operator-json", ["--log-format", "json"]).start()
    try:
        # given a service, when one of its pods stays not ready
        apply(rsvc("web", 3, healing={"notReadyTimeout": "3s", "cooldown": "1s"}), ns)
        pods = wait_for("3 ready", lambda: len(p := ready_pods(ns, "web")) == 3 and p,
                        timeout=60)
        victim = pods[0]["metadata"]["name"]
        kubectl("label", "pod", victim, "-n", ns, f"{FAULT_POD}=not-ready")
        wait_for("the heal", lambda: (get("rsvc", "web", ns)["status"].get("healing") or {})
                 .get("podsReplaced") == 1, timeout=30)
        # then the log is JSON, and the creation and the heal say what, where and why
        logged = records(op)
        ours = [r for r in logged if r.get("namespace") == ns and r.get("service") == "web"]
        assert any(r.get("reason") == "Created" for r in ours), ours
        heal = [r for r in ours if r.get("pod") == victim and r.get("result") == "evicted"]
        assert heal and heal[0]["reason"] == "NotReady", ours
        assert any(r.get("reason") == "PodReplaced" and victim in r["message"] for r in ours)
    finally:
        op.stop()
