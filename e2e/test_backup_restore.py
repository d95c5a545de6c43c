"""The control plane restored from a backup: an etcd snapshot is taken, things change (a
service created, one deleted, a pod healed, a scale-up), then the snapshot is restored with
resourceVersions going back in time. The operator notices, rebuilds its caches, converges to
the restored specs, and never deletes or recreates a child that the restored state owns.

Runs only against the embedded local cluster (it stops and restores its etcd).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import (
    FAULT_POD,
    ROOT,
    Operator,
    apply,
    condition,
    events,
    get,
    kubectl,
    ready_pods,
    rsvc,
    wait_for,
)
from .test_control_plane import api_ready, cluster_dir, local_cluster

pytestmark = [
    pytest.mark.usefixtures("kwok"),
    pytest.mark.skipif(not local_cluster(), reason="restores the embedded local cluster's etcd"),
]

HEALING = {"notReadyTimeout": "3s", "cooldown": "1s"}
PORTS = {"ports": [{"name": "http", "port": 80}]}


def backup(*args: str) -> None:
    env = {**os.environ, "CLUSTER_NAME": cluster_dir().name,
           "KWOK_WORKDIR": str(cluster_dir().parent.parent)}
    done = subprocess.run(["bash", str(ROOT / "e2e/etcd-backup.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def available(ns: str, name: str) -> bool:
    return condition(get("rsvc", name, ns), "Available").get("status") == "True"


def uids(ns: str, name: str) -> dict[str, str]:
    out = {}
    for kind in ("deployment", "service", "poddisruptionbudget"):
        obj = get(kind, name, ns)
        if obj:
            out[kind] = obj["metadata"]["uid"]
    return out


@pytest.mark.parametrize("bump", [
    pytest.param(False, id="back-in-time"),
    # etcd's advice for Kubernetes: revisions moved forward and compacted, every watch 410s
    pytest.param(True, id="bumped", marks=pytest.mark.chaos),
])
def test_restored_from_a_backup_the_operator_converges_to_the_restored_state(
        ns: str, operator: Operator, tmp_path: Path, bump: bool) -> None:
    # given two converged services, and a snapshot of etcd
    apply(rsvc("keep", 3, healing=HEALING, service=PORTS), ns)
    apply(rsvc("gone-later", 2, service=PORTS), ns)
    wait_for("both Available", lambda: available(ns, "keep") and available(ns, "gone-later")
             and len(ready_pods(ns, "keep")) == 3, timeout=90)
    time.sleep(2)
    owned = {name: uids(ns, name) for name in ("keep", "gone-later")}
    snapshot = tmp_path / "etcd.db"
    backup("save", str(snapshot))
    # when things change: a service created, one deleted, a pod healed, a scale-up ...
    apply(rsvc("new-after", 2, service=PORTS), ns)
    kubectl("delete", "rsvc", "gone-later", "-n", ns)
    victim = ready_pods(ns, "keep")[0]["metadata"]["name"]
    kubectl("label", "pod", victim, "-n", ns, f"{FAULT_POD}=not-ready")
    kubectl("patch", "rsvc", "keep", "-n", ns, "--type=merge", "-p", '{"spec":{"replicas":4}}')
    wait_for("the changes done", lambda: available(ns, "new-after") and
             not get("deployment", "gone-later", ns) and
             (get("rsvc", "keep", ns)["status"].get("healing") or {}).get("podsReplaced") == 1
             and len(ready_pods(ns, "keep")) == 4, timeout=90)
    # ... and then the snapshot is restored (resourceVersions go back in time)
    log_at = operator.log_path.stat().st_size
    backup("restore", str(snapshot), *(["--bump"] if bump else []))
    restored = time.monotonic()
    wait_for("the API server", api_ready, timeout=60)

    # then the operator converges to the restored specs
    def converged() -> bool:
        keep = get("rsvc", "keep", ns)
        return bool(
            keep and keep["spec"]["replicas"] == 3 and available(ns, "keep")
            and keep["status"].get("observedGeneration") == keep["metadata"]["generation"]
            and len(ready_pods(ns, "keep")) == 3
            and get("rsvc", "gone-later", ns) and available(ns, "gone-later")
            and not get("rsvc", "new-after", ns))
    wait_for("convergence to the restored state", converged, timeout=120, interval=1)
    took = time.monotonic() - restored
    print(f"\nconverged {took:.1f}s after the restore began")
    # the children the restored state owns were kept, not deleted and recreated
    assert {name: uids(ns, name) for name in owned} == owned
    # the heal made after the snapshot is history that no longer happened: not redone
    keep = get("rsvc", "keep", ns)
    assert (keep["status"].get("healing") or {}).get("podsReplaced", 0) == 0
    time.sleep(5)
    assert {name: uids(ns, name) for name in owned} == owned
    assert operator.proc is not None and operator.proc.poll() is None
    assert "Traceback" not in operator.log_path.read_bytes()[log_at:].decode(errors="replace")
    # and it knows the restored state: drift of the service that came back (deleted after the
    # snapshot: no watch ever shows it again) and of the kept one is restored
    for name in ("gone-later", "keep"):
        kubectl("delete", "service", name, "-n", ns)
        wait_for(f"{name}'s Service restored after the restore",
                 lambda n=name: get("service", n, ns), timeout=30)
        # (after a restore the operator's memory is dropped: it cannot tell a deleted child from
        # one never made, so the event may say Created)
        assert {"DriftRestored", "Created"} & {e["reason"] for e in events(ns, name)
                                               if "Service" in e["message"]}
    log = operator.log_path.read_bytes()[log_at:].decode(errors="replace")
    assert ("expired (410 Gone" if bump else "went back") in log
