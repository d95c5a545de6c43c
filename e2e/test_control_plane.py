"""The local cluster's control plane survives its components exiting: the supervisor that
``e2e/cluster.sh up`` starts restarts whatever exits (kube-controller-manager and kube-scheduler
exit by design when an API server outage costs them their leader lease), and leaves alone a
component stopped on purpose with ``e2e/cluster.sh stop-component``.

These tests kill and stop control-plane processes, so they run only against the embedded local
cluster (KUBECONFIG in e2e/cluster.sh's kwok-home), never against kind or a real cluster.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Operator, apply, condition, get, kubectl, rsvc, wait_for

SCRIPT = ROOT / "e2e/cluster.sh"
STATES = ("running", "stopped", "restarting", "down")


def local_cluster() -> bool:
    return "resilient-operator/kwok-home" in os.environ.get("KUBECONFIG", "")


pytestmark = pytest.mark.skipif(
    not local_cluster(),
    reason="KUBECONFIG is not the embedded local cluster (e2e/cluster.sh up): these tests kill "
           "and stop its control-plane processes")


def cluster_dir() -> Path:
    return Path(os.environ["KUBECONFIG"]).resolve().parent


def script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """e2e/cluster.sh for the cluster KUBECONFIG names (whatever CLUSTER_NAME it was started
    with)."""
    env = {**os.environ, "CLUSTER_NAME": cluster_dir().name,
           "KWOK_WORKDIR": str(cluster_dir().parent.parent)}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def status() -> tuple[str, dict[str, dict[str, Any]]]:
    """``e2e/cluster.sh status``: its text, and per component its state, pid and restarts."""
    out = script("status").stdout
    rows: dict[str, dict[str, Any]] = {}
    table = out.partition("\nCOMPONENT ")[2].splitlines()[1:]
    for line in table:
        f = line.split()
        if len(f) >= 5 and f[1] in STATES:
            rows[f[0]] = {"state": f[1], "pid": None if f[2] == "-" else int(f[2]),
                          "restarts": int(f[3])}
    return out, rows


def supervisor_log() -> str:
    try:
        return (cluster_dir() / "logs/supervisor.log").read_text()
    except OSError:
        return ""


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def api_ready() -> bool:
    return kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0


@pytest.fixture
def supervised() -> dict[str, dict[str, Any]]:
    text, rows = status()
    assert "supervisor: running" in text, f"no supervisor (e2e/cluster.sh up starts it):\n{text}"
    assert rows and all(r["state"] == "running" for r in rows.values()), text
    return rows


def test_killed_components_are_running_again_within_30s(
        supervised: dict[str, dict[str, Any]]) -> None:
    names = ["kube-scheduler", "kube-controller-manager", "metrics-server"]
    before = {n: supervised[n] for n in names}
    lines = {n: cmdline(before[n]["pid"]) for n in names}
    start = time.monotonic()
    for n in names:
        os.kill(before[n]["pid"], signal.SIGKILL)

    def all_back() -> dict[str, dict[str, Any]] | None:
        rows = status()[1]
        back = all(rows[n]["state"] == "running" and rows[n]["pid"] != before[n]["pid"]
                   and rows[n]["restarts"] > before[n]["restarts"] for n in names)
        return rows if back else None

    after = wait_for("the killed components to run again, restarts counted", all_back,
                     timeout=30)
    took = time.monotonic() - start
    print(f"\nkilled {', '.join(names)}: all running again after {took:.1f}s")
    log = supervisor_log()
    for n in names:
        # the same command line kwokctl started it with, its pid where kwokctl looks for it
        assert cmdline(after[n]["pid"]) == lines[n], n
        assert (cluster_dir() / f"pids/{n}.pid").read_text().strip() == str(after[n]["pid"])
        assert f"{n} exited (pid {before[n]['pid']}" in log, log
        assert f"{n} restarted (restart {after[n]['restarts']}, pid {after[n]['pid']}" in log, log
    # the restarted metrics-server serves the metrics API again (HPAs need it)
    wait_for("the metrics API", lambda: kubectl(
        "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False).returncode == 0,
        timeout=60)


def live_leader(component: str) -> str | None:
    """The holder of ``component``'s leader lease in kube-system while it keeps renewing it (every
    2 s; a killed holder's lease looks fresh for a moment, so one look is not enough)."""
    def renewed() -> tuple[str | None, str | None]:
        spec = (get("lease", component, namespace="kube-system") or {}).get("spec") or {}
        return spec.get("holderIdentity"), spec.get("renewTime")

    holder, first = renewed()
    time.sleep(2.5)
    again, second = renewed()
    if not second or second == first or again != holder:
        return None
    age = time.time() - datetime.fromisoformat(second.replace("Z", "+00:00")).timestamp()
    return holder if age < 5 else None


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": "app", "image": "registry.example/app:1",
                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
    }


@pytest.mark.chaos
def test_the_cluster_works_again_within_90s_after_a_60s_api_server_outage(
        supervised: dict[str, dict[str, Any]], ns: str) -> None:
    outage = 60.0
    leaders = ["kube-controller-manager", "kube-scheduler"]
    # the scenario of the issue: both hold their lease when the API server goes away (after a
    # restart, a new instance waits up to the lease duration, 15 s, to take it over)
    for name in leaders:
        wait_for(f"{name} to hold its leader lease", lambda n=name: live_leader(n), timeout=60)
    stopped = time.monotonic()
    done = script("stop-component", "kube-apiserver")
    assert done.returncode == 0, done.stderr
    try:
        assert not api_ready()
        # the supervisor leaves an intentional stop alone for as long as it lasts
        while time.monotonic() - stopped < outage:
            assert status()[1]["kube-apiserver"]["state"] == "stopped"
            time.sleep(5)
        assert not api_ready()
        assert "kube-apiserver restarted" not in supervisor_log()
    finally:
        done = script("start-component", "kube-apiserver")
    assert done.returncode == 0, done.stderr
    started = time.monotonic()

    wait_for("the API server", api_ready, timeout=60)
    api_back = time.monotonic() - started
    # a Deployment created now gets Ready pods only with a live controller-manager (ReplicaSet,
    # pods) and scheduler (bindings); KWOK plays the kubelets
    apply(deployment("after-outage", 3), namespace=ns)

    def ready() -> list[dict[str, Any]]:
        pods = get("pods", namespace=ns, selector="app=after-outage") or []
        ok = [p for p in pods if condition(p, "Ready").get("status") == "True"]
        return ok if len(ok) == 3 else []

    wait_for("3 Ready pods of a Deployment created after the outage", ready,
             timeout=max(1.0, 90 - (time.monotonic() - started)))
    recovered = time.monotonic() - started
    # every component runs again (one in backoff is started within 30 s)
    def all_running() -> dict[str, dict[str, Any]] | None:
        rows = status()[1]
        return rows if all(r["state"] == "running" for r in rows.values()) else None

    rows = wait_for("every component to run", all_running, timeout=35)
    restarted = {n: rows[n]["restarts"] - supervised[n]["restarts"] for n in rows
                 if rows[n]["restarts"] > supervised[n]["restarts"]}
    print(f"\nAPI server stopped {outage:.0f}s; answering {api_back:.1f}s after start-component; "
          f"a new Deployment's pods Ready {recovered:.1f}s after it; restarted meanwhile by the "
          f"supervisor: {restarted or 'none'}")
    for name in leaders:
        assert live_leader(name), f"{name} leads no more"


# -- watches that expire ------------------------------------------------------------------------


def etcd_url() -> str:
    text = (cluster_dir() / "kwok.yaml").read_text()
    return re.search(r"--etcd-servers=(\S+)", text)[1].split(",")[0]  # type: ignore[index]


def etcd(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """etcd's JSON gateway (the v3 gRPC API over HTTP): no etcdctl needed."""
    req = urllib.request.Request(etcd_url() + path, data=json.dumps(body).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def compact_etcd() -> int:
    revision = int(etcd("/v3/kv/range", {"key": "Lw==", "limit": 1,
                                         "keys_only": True})["header"]["revision"])
    etcd("/v3/kv/compaction", {"revision": str(revision), "physical": True})
    return revision


def writes(op: Operator) -> float:
    return sum(op.metric("resilient_rest_client_requests_total", verb=v)
               for v in ("apply", "dry-run", "patch", "create", "delete"))


def test_expired_watches_relist_and_rewrite_nothing(
        supervised: dict[str, dict[str, Any]], ns: str, operator: Operator) -> None:
    # given converged services and an idle operator
    for i in range(3):
        apply(rsvc(f"web-{i}", 2, service={"ports": [{"name": "http", "port": 80}]}), ns)
    wait_for("all Available", lambda: all(condition(get("rsvc", f"web-{i}", ns), "Available")
                                          .get("status") == "True" for i in range(3)),
             timeout=90)
    time.sleep(3)
    before, log_at = writes(operator), operator.log_path.stat().st_size
    # when the API server restarts after etcd was compacted past every watch's resourceVersion
    done = script("stop-component", "kube-apiserver")
    assert done.returncode == 0, done.stderr
    try:
        compacted = compact_etcd()
    finally:
        done = script("start-component", "kube-apiserver")
    assert done.returncode == 0, done.stderr
    wait_for("the API server", api_ready, timeout=60)
    # then every watch is told 410 Gone ("too old resource version") and relists ...
    expired = wait_for("the watches to relist", lambda: (n := operator.log_path.read_bytes()[
        log_at:].decode().count("expired (410 Gone")) >= 4 and n, timeout=60)
    time.sleep(5)
    # ... without writing anything: nothing changed
    assert writes(operator) == before, operator.log_tail(40)
    print(f"\netcd compacted at revision {compacted}; {expired} watches relisted; "
          f"{writes(operator) - before:.0f} writes")
    # and the relisted watches work: drift is still seen and restored
    kubectl("delete", "service", "web-0", "-n", ns)
    wait_for("service restored", lambda: get("service", "web-0", ns), timeout=30)
