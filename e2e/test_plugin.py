"""The kubectl plugin `kubectl rsvc` (the installed console script) against a real API server and
the operator: status with its step marks, promote, `status --watch` exit codes, and refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAULT_POD, Operator, apply, get, kubectl, ready_pods, rsvc, wait_for

PLUGIN = Path(sys.executable).parent / "kubectl-rsvc"
CANARY = {"strategy": "Canary", "steps": [{"setWeight": 50}, {"pause": {}}]}


@pytest.fixture(scope="module")
def operator(cluster: None) -> Iterator[Operator]:
    """conftest's operator, logging to e2e/.logs/operator-plugin.log (its own file, so a run of
    this module beside another e2e run keeps both logs whole)."""
    op = Operator(name="operator-plugin").start()
    yield op
    op.stop()


def plugin(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PLUGIN), *args], capture_output=True, text=True, timeout=timeout)


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def rollout(ns: str) -> dict[str, Any]:
    return ((get("rsvc", "web", ns) or {}).get("status") or {}).get("rollout") or {}


def service(ns: str) -> dict[str, Any]:
    """Two replicas with a canary of 50% then a pause until promote, running and at rest."""
    body = rsvc("web", 2, rollout=CANARY)
    apply(body, ns)
    wait_for("2 ready pods", lambda: len(ready_pods(ns, "web")) == 2, timeout=60)
    wait_for("the stable revision in status", lambda: rollout(ns).get("stableRevision"),
             timeout=30)
    return body


def release(ns: str, body: dict[str, Any], image: str,
            labels: dict[str, str] | None = None) -> None:
    body["spec"]["template"]["spec"]["containers"][0]["image"] = image
    if labels:
        body["spec"]["template"]["metadata"] = {"labels": labels}
    apply(body, ns)


def test_status_then_promote_then_watch_to_completion(ns: str, operator: Operator) -> None:
    body = service(ns)
    # when a new image is released, the canary stops at the pause
    release(ns, body, "registry.example/app:2")
    wait_for("phase Paused, one pod per track", lambda: (r := rollout(ns)).get("phase") ==
             "Paused" and (r.get("stablePods"), r.get("canaryPods")) == (1, 1), timeout=90)

    # then status shows the steps with their marks
    done = plugin("status", "web", "-n", ns)
    assert done.returncode == 0, shown(done)
    lines = done.stdout.splitlines()
    assert lines[0] == f"ResilientService {ns}/web", shown(done)
    assert "Phase:       Paused" in lines, shown(done)
    assert "Strategy:    Canary" in lines, shown(done)
    assert "  ✓ 1. weight 50%" in lines, shown(done)
    assert "  ▶ 2. pause until promote" in lines, shown(done)
    assert "  ·    promote to stable" in lines, shown(done)
    assert "Ready pods:  stable 1, canary 1" in lines, shown(done)
    assert any(line.split()[:3] == ["Paused", "True", "WaitingForPromote"] for line in lines), \
        shown(done)

    # when it is promoted, the operator acknowledges the token and moves on
    done = plugin("promote", "web", "-n", ns)
    assert done.returncode == 0, shown(done)
    assert "resilience.dev/promote=" in done.stdout and "promoted: phase " in done.stdout, \
        shown(done)
    token = get("rsvc", "web", ns)["metadata"]["annotations"]["resilience.dev/promote"]
    assert rollout(ns)["commands"]["promote"] == token

    # and `status --watch` follows it until it completes: exit 0
    done = plugin("status", "web", "-n", ns, "--watch", "--timeout", "120")
    assert done.returncode == 0, shown(done)
    assert "rollout complete: revision" in done.stdout, shown(done)
    state = rollout(ns)
    assert state["phase"] == "Completed" and state["stableRevision"] == state["revision"]
    done = plugin("status", "web", "-n", ns)
    assert "  ✓ 2. pause until promote" in done.stdout.splitlines(), shown(done)
    assert "  ✓    promote to stable" in done.stdout.splitlines(), shown(done)

    # and a watch on a resource at rest returns at once
    done = plugin("status", "web", "-n", ns, "--watch", "--timeout", "10")
    assert done.returncode == 0, shown(done)


@pytest.mark.usefixtures("kwok")
def test_watch_exits_1_when_a_crash_looping_release_is_aborted(
        ns: str, operator: Operator) -> None:
    body = service(ns)
    first = rollout(ns)["stableRevision"]
    # when a release's pods turn Ready and then restart every second (KWOK's crashloop fault),
    release(ns, body, "registry.example/app:bad", labels={FAULT_POD: "crashloop"})
    # then `status --watch`, started before the operator has even seen it, exits 1
    done = plugin("status", "web", "-n", ns, "--watch", "--timeout", "120")
    assert done.returncode == 1, shown(done)
    assert "aborted (CanaryRestarts" in done.stdout, shown(done)
    state = rollout(ns)
    assert state["phase"] in ("Aborting", "Aborted") and state["stableRevision"] == first
    assert state["lastAbort"]["reason"] == "CanaryRestarts"

    # and status marks the step it failed at
    wait_for("phase Aborted", lambda: rollout(ns).get("phase") == "Aborted", timeout=60)
    done = plugin("status", "web", "-n", ns)
    assert done.returncode == 0, shown(done)
    assert "  ✗ 1. weight 50%" in done.stdout.splitlines(), shown(done)
    assert "Last abort:  CanaryRestarts" in done.stdout, shown(done)

    # and promote and abort are refused (nothing runs), with a clear message
    for command in ("promote", "abort"):
        done = plugin(command, "web", "-n", ns)
        assert done.returncode == 1, shown(done)
        assert done.stderr.startswith(f"Error: no rollout of web is running (phase Aborted): "
                                      f"nothing to {command}"), shown(done)


def test_promote_on_an_idle_resource_is_refused(ns: str, operator: Operator) -> None:
    service(ns)
    done = plugin("promote", "web", "-n", ns)
    assert done.returncode == 1, shown(done)
    assert done.stderr.startswith("Error: no rollout of web is running (phase Idle): nothing "
                                  "to promote"), shown(done)
    assert "Traceback" not in done.stderr
    annotations = get("rsvc", "web", ns)["metadata"].get("annotations") or {}
    assert "resilience.dev/promote" not in annotations  # nothing was sent

    # with --force it is sent, and the operator's CommandIgnored event is what is reported
    done = plugin("promote", "web", "-n", ns, "--force")
    assert done.returncode == 1, shown(done)
    assert "Error: the operator ignored the promote: resilience.dev/promote=" in done.stderr, \
        shown(done)
    assert "no rollout step waits for a promote" in done.stderr, shown(done)


def test_status_of_a_missing_resource_is_one_clear_line(ns: str) -> None:
    done = plugin("status", "nothere", "-n", ns)
    assert done.returncode == 1, shown(done)
    assert done.stderr == f'Error: resilientservice "nothere" not found in namespace "{ns}"\n', \
        shown(done)
    assert done.stdout == ""

    # kubectl finds the plugin on PATH as `kubectl rsvc`
    env = {**os.environ, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    via = subprocess.run(["kubectl", "rsvc", "status", "nothere", "-n", ns], capture_output=True,
                         text=True, timeout=60, env=env)
    assert via.returncode == 1 and via.stderr == done.stderr, shown(via)
    assert kubectl("get", "rsvc", "-n", ns, "-o", "name").stdout == ""


def test_version_names_the_served_crd_and_the_operator_deployment(ns: str) -> None:
    # given an operator Deployment, labelled as every install labels it
    apply({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "resilient-operator", "namespace": ns,
                        "labels": {"app.kubernetes.io/part-of": "resilient-operator"}},
           "spec": {"replicas": 1,
                    "selector": {"matchLabels": {"app": "version-probe"}},
                    "template": {"metadata": {"labels": {"app": "version-probe"}},
                                 "spec": {"containers": [{
                                     "name": "operator",
                                     "image": "registry.example/resilient-operator:9.8.7"}]}}}},
          ns)
    # when the plugin is asked for versions
    done = plugin("version")
    # then it names itself, the CRD versions the API server serves, and that operator
    assert done.returncode == 0, shown(done)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Plugin:      kubectl-rsvc "), shown(done)
    assert "CRD:         resilientservices.resilience.dev served: v1alpha1" in lines, shown(done)
    assert (f"9.8.7 ({ns}/resilient-operator: image registry.example/resilient-operator:9.8.7, "
            in done.stdout), shown(done)
    # and --help describes it
    assert "--client" in plugin("version", "--help").stdout
