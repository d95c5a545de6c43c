"""Progressive delivery at scale: N services roll out a bad release at once (how fast is each
aborted, how fast is its stable track whole again), then a good release through a 3-step
canary (overhead over the step durations, pods started per promotion).

    bash e2e/with-cluster.sh -- .venv/bin/python bench/rollout.py --services 100

Needs the KWOK fault stages (a bad release is a template with fault.resilience.dev/pod:
crash-start). Times come from status.rollout: the first failing signal of a new pod (its own
condition timestamps), the abort decision, and the end of each rollout, all with microseconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from common import (
    apply_many,
    audit_log,
    cpu_seconds,
    kubectl,
    peak_rss_mib,
    percentiles,
    prepare,
    service,
    stamp,
    wait,
)

PAUSE = 10  # seconds of the good release's one timed pause


def manifest(i: int, replicas: int, steps: list[dict[str, Any]], image: str,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    body = service(i, replicas, rollout={
        "strategy": "Canary", "steps": steps, "minReadySeconds": 1, "maxSurge": 1,
        "health": {"maxRestarts": 1, "notReadyTimeout": "10s"}})
    template = body["spec"]["template"]
    template["spec"]["containers"][0]["image"] = image
    if labels:
        template["metadata"] = {"labels": labels}
    return body


def services(namespace: str) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", "rsvc", "-n", namespace, "-o", "json",
                              timeout=300).stdout)["items"]


def rollouts(namespace: str) -> list[dict[str, Any]]:
    return [(s.get("status") or {}).get("rollout") or {} for s in services(namespace)]


def pods_created_since(namespace: str, since: float) -> int | None:
    """Pods created in the namespace since then, whoever created them (the audit log)."""
    path = audit_log()
    if path is None:
        return None
    created = 0
    # the API server rotates its audit log at 100 MB: read the rotated files too
    for name in sorted(path.parent.glob("audit*.log")):
        created += _pod_creates(name, namespace, since)
    return created


def _pod_creates(path: Path, namespace: str, since: float) -> int:
    created = 0
    with open(path) as f:
        for line in f:
            if f'"namespace":"{namespace}"' not in line or '"verb":"create"' not in line or \
                    '"ResponseComplete"' not in line:
                continue
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            if ref.get("resource") == "pods" and not ref.get("subresource") and \
                    entry["responseStatus"]["code"] < 300 and \
                    stamp(entry["requestReceivedTimestamp"]) >= since:
                created += 1
    return created


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--namespace", default="bench-rollout")
    args = parser.parse_args()
    n, ns = args.services, args.namespace
    bad_steps = [{"setWeight": 34}, {"pause": {}}]
    good_steps = [{"setWeight": 34}, {"pause": {"duration": f"{PAUSE}s"}}, {"setWeight": 67}]

    op = prepare(ns, "bench-rollout")
    pid = op.pid
    try:
        apply_many([manifest(i, args.replicas, bad_steps, "registry.example/app:1")
                    for i in range(n)], ns)
        wait("every service Ready", lambda: all(
            any(c["type"] == "Ready" and c["status"] == "True"
                for c in (s.get("status") or {}).get("conditions", []))
            for s in services(ns)) and len(services(ns)) == n, timeout=1800)

        # 1. a bad release everywhere at once
        cpu0 = cpu_seconds(pid)
        t0 = time.time()
        apply_many([manifest(i, args.replicas, bad_steps, "registry.example/app:bad",
                             {"fault.resilience.dev/pod": "crash-start"}) for i in range(n)], ns)
        took = wait("every rollout aborted and its stable track restored", lambda: all(
            r.get("phase") == "Aborted" for r in rollouts(ns)), timeout=1800, interval=1)
        decision, restored = [], []
        for r in rollouts(ns):
            bad = stamp(r["firstBadSignal"]) if r.get("firstBadSignal") else None
            if bad is None:
                continue
            decision.append(stamp(r["lastAbort"]["time"]) - bad)
            restored.append(stamp(r["history"][-1]["finished"]) - bad)
        cpu_bad = cpu_seconds(pid) - cpu0
        print(f"\n== rollout: {n} services x {args.replicas} pods, a bad release (crash from "
              "the start) to all at once ==")
        print(f"all aborted and restored {took:.1f}s after the release was applied")
        print(f"first failing signal -> abort decision: {percentiles(decision)}")
        print(f"first failing signal -> stable fully restored: {percentiles(restored)}")
        print(f"operator CPU {cpu_bad:.1f}s")

        # 2. a good release through a 3-step canary (34%, pause {PAUSE}s, 67%)
        apply_many([manifest(i, args.replicas, good_steps, "registry.example/app:1")
                    for i in range(n)], ns)
        wait("template back to stable", lambda: all(
            r.get("phase") in ("Aborted", "Idle", "Completed") for r in rollouts(ns)),
             timeout=600, interval=1)
        time.sleep(2)
        cpu0 = cpu_seconds(pid)
        t0 = time.time()
        apply_many([manifest(i, args.replicas, good_steps, "registry.example/app:2")
                    for i in range(n)], ns)
        took = wait("every rollout promoted", lambda: all(
            r.get("phase") == "Completed" and r.get("history", [{}])[-1].get("result") ==
            "Promoted" for r in rollouts(ns)), timeout=1800, interval=1)
        overhead = [stamp(r["history"][-1]["finished"]) - stamp(r["history"][-1]["started"])
                    - PAUSE for r in rollouts(ns)]
        started_pods = pods_created_since(ns, t0)
        print(f"\n== rollout: a good release through 3 steps (34%, pause {PAUSE}s, 67%) ==")
        print(f"all promoted {took:.1f}s after the release was applied")
        print(f"rollout time beyond the {PAUSE}s of pauses: {percentiles(overhead)}")
        if started_pods is None:
            print("pods started: needs the embedded cluster's audit log")
        else:
            print(f"pods started: {started_pods} for {n} promotions of {args.replicas} pods "
                  f"({started_pods / n:.1f} per promotion)")
        print(f"operator: peak RSS {peak_rss_mib(pid):.0f} MiB, CPU "
              f"{cpu_seconds(pid) - cpu0:.1f}s during the good release")
    finally:
        op.stop()
        kubectl("delete", "namespace", ns, "--wait=true", check=False, timeout=900)


if __name__ == "__main__":
    main()
