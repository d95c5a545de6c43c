"""The KWOK stages that play a bad release (e2e/stages/faults.yaml): the fault label rides in a
Deployment's pod template, so each pod has it from its creation. No operator is involved: these
tests check that KWOK plays what each fault value promises, for the canary tests that rely on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from .conftest import FAULT_POD, apply, condition, get, kubectl, wait_for

pytestmark = pytest.mark.usefixtures("kwok")

AFTER = "fault.resilience.dev/after"


@pytest.fixture(scope="session")
def cluster() -> None:
    """Overrides conftest's, which also installs the operator's CRD: these tests need only the
    cluster and its stages, so a CRD under change does not stop them."""
    if shutil.which("kubectl") is None:
        pytest.exit("kubectl is not on PATH", returncode=2)
    kubectl("get", "--raw", "/readyz")


def deployment(name: str, fault: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A plain one-replica Deployment whose pod template carries the fault label."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": {**labels, FAULT_POD: fault},
                             "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app:2"}]},
            },
        },
    }


class PodHistory:
    """Every version of a namespace's pods the API server wrote, in order: a watch that starts
    at the resourceVersion of a list taken before anything is created, so it cannot miss the
    first versions however late kubectl connects."""

    def __init__(self, ns: str) -> None:
        rv = json.loads(kubectl("get", "pods", "-n", ns, "-o", "json").stdout)[
            "metadata"]["resourceVersion"]
        # into a file, not a pipe: nobody reads a pipe until the end, and a full one (64 KiB,
        # some 15 pod versions) would stall the watch
        self.out = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            ["kubectl", "get", "--raw",
             f"/api/v1/namespaces/{ns}/pods?watch=1&resourceVersion={rv}"],
            stdout=self.out, stderr=subprocess.DEVNULL, text=True)

    def stop(self) -> list[dict[str, Any]]:
        """The pod versions seen so far (the watch ends)."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.out.seek(0)
        out = self.out.read()
        self.out.close()
        decoder, pos, versions = json.JSONDecoder(), 0, []
        while (pos := _skip_space(out, pos)) < len(out):
            try:
                event, pos = decoder.raw_decode(out, pos)
            except json.JSONDecodeError:
                break  # the last event, cut short by terminate()
            if event.get("type") in ("ADDED", "MODIFIED"):
                versions.append(event["object"])
        return versions


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


@pytest.fixture
def history(ns: str) -> Iterator[PodHistory]:
    h = PodHistory(ns)
    yield h
    if not h.out.closed:
        h.stop()


def the_pod(ns: str, name: str) -> dict[str, Any]:
    pods = [p for p in get("pods", namespace=ns, selector=f"app={name}") or []
            if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1, f"{len(pods)} pods of {name}"
    return pods[0]


def container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def ready(pod: dict[str, Any]) -> str | None:
    return condition(pod, "Ready").get("status")


def restarts(pod: dict[str, Any]) -> int:
    return int(container(pod).get("restartCount", 0))


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def sample(ns: str, name: str, duration: float = 6, every: float = 0.5) -> list[dict[str, Any]]:
    """The pod, read every ``every`` seconds for ``duration`` seconds."""
    out, end = [], time.monotonic() + duration
    while time.monotonic() < end:
        out.append(the_pod(ns, name))
        time.sleep(every)
    return out


def assert_never_ready(versions: list[dict[str, Any]]) -> None:
    assert versions, "the watch saw no pod"
    assert versions[0]["status"].get("phase") == "Pending", "the watch missed the pod's start"
    flips = [(v["metadata"]["resourceVersion"], condition(v, "Ready")) for v in versions
             if ready(v) == "True" or container(v).get("ready")]
    assert not flips, f"a bad-release pod was Ready at some point: {flips}"


def assert_crash_looping(samples: list[dict[str, Any]], reason: str, exit_code: int) -> None:
    counts = [restarts(p) for p in samples]
    assert counts == sorted(counts), f"restartCount went down: {counts}"
    # a restart every 1-2 s: at least 2 more over ~6 s
    assert counts[-1] - counts[0] >= 2, f"restartCount barely rises: {counts}"
    for p in samples:
        assert p["status"]["phase"] == "Running"
        assert ready(p) == "False", condition(p, "Ready")
        c = container(p)
        assert c["ready"] is False
        if c["restartCount"] > 0:
            assert c["state"]["waiting"]["reason"] == "CrashLoopBackOff", c
            terminated = c["lastState"]["terminated"]
            assert (terminated["reason"], terminated["exitCode"]) == (reason, exit_code), c


def test_crash_start_never_ready_and_restarts_every_second(
        ns: str, history: PodHistory) -> None:
    apply(deployment("crash", "crash-start"), ns)
    wait_for("the first restart", lambda: restarts(the_pod(ns, "crash")) >= 1, timeout=30)
    samples = sample(ns, "crash")
    assert_crash_looping(samples, "Error", 1)
    # the Ready condition stays False since the pod started, not since the last restart
    assert len({condition(p, "Ready")["lastTransitionTime"] for p in samples}) == 1
    assert_never_ready(history.stop())
    deploy = get("deployment", "crash", ns)
    assert not deploy["status"].get("availableReplicas"), deploy["status"]


def test_oom_restarts_with_oomkilled_137(ns: str, history: PodHistory) -> None:
    apply(deployment("oom", "oom"), ns)
    wait_for("the first restart", lambda: restarts(the_pod(ns, "oom")) >= 1, timeout=30)
    samples = sample(ns, "oom")
    assert_crash_looping(samples, "OOMKilled", 137)
    assert_never_ready(history.stop())


def test_never_ready_runs_unready_without_restarts(ns: str, history: PodHistory) -> None:
    apply(deployment("stuck", "never-ready"), ns)
    wait_for("the pod running", lambda: the_pod(ns, "stuck")["status"].get("phase") == "Running",
             timeout=30)
    samples = sample(ns, "stuck")
    for p in samples:
        c = container(p)
        assert p["status"]["phase"] == "Running"
        assert ready(p) == "False", condition(p, "Ready")
        assert "running" in c["state"], c
        assert (c["ready"], c["restartCount"]) == (False, 0), c
        assert p["status"].get("podIP"), "a running pod has an IP"
    assert_never_ready(history.stop())
    deploy = get("deployment", "stuck", ns)
    assert not deploy["status"].get("readyReplicas"), deploy["status"]


def crash_after(ns: str, history: PodHistory, annotations: dict[str, str], after: int) -> None:
    apply(deployment("late", "crash-after", annotations), ns)
    first = wait_for("the pod Ready", lambda: ready(p := the_pod(ns, "late")) == "True" and p,
                     timeout=30)
    ready_since = seconds(condition(first, "Ready")["lastTransitionTime"])
    # still Ready half a second before the delay ends
    time.sleep(max(0.0, after - 0.5 - (time.time() - ready_since)))
    assert ready(the_pod(ns, "late")) == "True", "crashed before the annotated delay"
    crashed = wait_for("the first crash", lambda: restarts(p := the_pod(ns, "late")) >= 1 and p,
                       timeout=after + 15)
    # then it crash-loops like crashloop, Ready False since the first crash
    samples = sample(ns, "late", duration=5)
    assert_crash_looping(samples, "Error", 1)
    assert {condition(p, "Ready")["lastTransitionTime"] for p in samples} == {
        condition(crashed, "Ready")["lastTransitionTime"]}
    # in the pod's history: Ready, with no restart, until the first crash
    versions = history.stop()
    first_crash = next(i for i, v in enumerate(versions) if restarts(v) >= 1)
    crash = versions[first_crash]
    assert restarts(crash) == 1
    assert any(ready(v) == "True" and restarts(v) == 0 for v in versions[:first_crash])
    # the server's clocks have 1 s resolution: the crash comes N to N+1 s after Ready (plus
    # KWOK's latency), so in whole seconds after+1 to after+3
    finished = seconds(container(crash)["lastState"]["terminated"]["finishedAt"])
    not_ready = seconds(condition(crash, "Ready")["lastTransitionTime"])
    assert after + 1 <= finished - ready_since <= after + 3, (ready_since, finished)
    assert after + 1 <= not_ready - ready_since <= after + 3, (ready_since, not_ready)


def test_crash_after_the_annotated_delay(ns: str, history: PodHistory) -> None:
    crash_after(ns, history, {AFTER: "3"}, after=3)


def test_crash_after_defaults_to_10_seconds(ns: str, history: PodHistory) -> None:
    crash_after(ns, history, {}, after=10)
