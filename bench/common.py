"""Shared helpers for the benchmarks: the operator as its ServiceAccount, process and audit
measurements, percentiles. Benchmarks print numbers; they pass or fail on nothing."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e.conftest import Operator, kubectl, rsvc  # noqa: E402
from e2e.test_install import SA_USER, SYSTEM, service_account_kubeconfig  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def install_rbac() -> None:
    """The manifests' RBAC (and ServiceAccount), with the in-cluster replicas scaled to zero."""
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "manifests"))
    kubectl("scale", "deployment", "resilient-operator", "-n", SYSTEM, "--replicas=0")


def start_operator(name: str,
                   workers: int = int(os.environ.get("BENCH_WORKERS", "16"))) -> Operator:
    """The operator, authenticated as its ServiceAccount so the audit log can tell its requests."""
    return Operator(name, ["--workers", str(workers)],
                    # a static token: long enough for the longest bench (the soak's hour, after
                    # an apply of 1000 services that can take half an hour on a busy machine)
                    {"KUBECONFIG": service_account_kubeconfig("24h")}).start()


def prepare(namespace: str, name: str) -> Operator:
    """RBAC installed, an empty namespace, and the operator running as its ServiceAccount."""
    install_rbac()
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", timeout=600)
    kubectl("create", "namespace", namespace)
    return start_operator(name)


def service(i: int, replicas: int, **spec: Any) -> dict[str, Any]:
    """The i-th benchmark ResilientService; small requests, so thousands of pods fit."""
    body = rsvc(f"svc-{i:04d}", replicas, **spec)
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "10m", "memory": "16Mi"}}
    return body


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def audit_log() -> Path | None:
    """The local cluster's audit log, when the cluster is the embedded one."""
    kubeconfig = os.environ.get("KUBECONFIG", "")
    path = Path(kubeconfig).parent / "logs/audit.log"
    return path if kubeconfig and path.exists() else None


def audit_entries(path: Path | None, since: float, until: float | None = None,
                  user: str = SA_USER) -> list[dict[str, Any]]:
    """Completed requests of ``user`` between two times (epoch seconds)."""
    if path is None:
        return []
    out = []
    with open(path) as f:
        for line in f:
            if user not in line or '"ResponseComplete"' not in line:
                continue
            entry = json.loads(line)
            t = stamp(entry["requestReceivedTimestamp"])
            if t >= since and (until is None or t < until):
                out.append(entry)
    return out


def by_verb(entries: Iterable[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for e in entries:
        ref = e.get("objectRef") or {}
        resource = ref.get("resource", "?") + (f"/{ref['subresource']}" if ref.get(
            "subresource") else "")
        counts[f"{e['verb']} {resource}"] += 1
    return counts


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentiles(values: list[float]) -> str:
    if not values:
        return "n=0"
    v = sorted(values)

    def q(p: float) -> float:
        return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]

    return (f"n={len(v)} p50={q(0.5):.2f}s p90={q(0.9):.2f}s p99={q(0.99):.2f}s "
            f"max={v[-1]:.2f}s")


def apply_many(docs: list[dict[str, Any]], namespace: str, chunk: int = 200) -> None:
    for i in range(0, len(docs), chunk):
        body = {"apiVersion": "v1", "kind": "List", "items": docs[i:i + chunk]}
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), timeout=300)


def wait(what: str, predicate: Any, timeout: float, interval: float = 2.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")
