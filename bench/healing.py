"""Run M services, inject K faults at once, and report the distribution of the operator's
reaction time (threshold crossed -> eviction sent) and of time to recovery (pod unhealthy ->
replacement Ready), with the operator's CPU and RSS.

    bash e2e/with-cluster.sh -- .venv/bin/python bench/healing.py --services 100 --faults 100

Needs the KWOK fault stages (the embedded cluster). Times come from the API server: the
not-ready transition of each pod (KWOK stamps it), the audit log's receive time of each
eviction, and the Ready transition of each replacement.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import kubernetes

from common import (
    apply_many,
    audit_entries,
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

NOT_READY_TIMEOUT = 10.0


def manifest(i: int, replicas: int) -> dict:
    return service(i, replicas, healing={"notReadyTimeout": f"{NOT_READY_TIMEOUT:.0f}s",
                                         "cooldown": "1s"})


def pods(namespace: str) -> list[dict]:
    return json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json",
                              timeout=300).stdout)["items"]


def ready_since(pod: dict, status: str) -> float | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c["type"] == "Ready" and c["status"] == status:
            return stamp(c["lastTransitionTime"])
    return None


def label_all(namespace: str, names: list[str]) -> None:
    """Mark every victim not-ready at (nearly) the same moment: parallel label patches."""
    config = kubernetes.config.new_client_from_config()
    core = kubernetes.client.CoreV1Api(config)
    patch = {"metadata": {"labels": {"fault.resilience.dev/pod": "not-ready"}}}
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda n: core.patch_namespaced_pod(n, namespace, patch), names))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--faults", type=int, default=None, help="default: one per service")
    parser.add_argument("--namespace", default="bench-healing")
    args = parser.parse_args()
    faults = args.faults if args.faults is not None else args.services
    total = args.services * args.replicas

    op = prepare(args.namespace, "bench-healing")
    pid = op.pid
    audit = audit_log()
    try:
        apply_many([manifest(i, args.replicas) for i in range(args.services)], args.namespace)
        wait(f"{total} ready pods", lambda: sum(
            1 for p in pods(args.namespace) if ready_since(p, "True")) >= total, timeout=1800)
        time.sleep(3)
        # one not-ready pod in each of K services, all at once
        by_service: dict[str, list[dict]] = {}
        for p in pods(args.namespace):
            by_service.setdefault(p["metadata"]["labels"]["app.kubernetes.io/instance"],
                                  []).append(p)
        victims = [random.choice(ps)["metadata"]["name"]
                   for _, ps in sorted(by_service.items())[:faults]]
        cpu0 = cpu_seconds(pid)
        t0 = time.time()
        label_all(args.namespace, victims)
        injected = time.time() - t0
        # wait for every victim to be gone and every service to be whole again
        def healed() -> bool:
            current = pods(args.namespace)
            names = {p["metadata"]["name"] for p in current
                     if not p["metadata"].get("deletionTimestamp")}
            ready = sum(1 for p in current if ready_since(p, "True") and
                        not p["metadata"].get("deletionTimestamp"))
            return not (names & set(victims)) and ready >= total
        took = wait("all healed", healed, timeout=1800)
        cpu = cpu_seconds(pid) - cpu0

        # the operator logs each heal with the deadline it crossed and when it sent the
        # eviction (its own clock); the API server's audit log gives an outside check
        heals = {}
        for line in op.log_path.read_text().splitlines():
            if line.startswith("heal ") and " crossed=" in line:
                fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
                heals[fields["pod"]] = {k: float(fields[k]) for k in
                                        ("unhealthy_since", "crossed", "sent")}
        evictions = {e["objectRef"]["name"]: stamp(e["requestReceivedTimestamp"])
                     for e in audit_entries(audit, t0 - 1)
                     if (e.get("objectRef") or {}).get("subresource") == "eviction"}
        reaction = [h["sent"] - h["crossed"] for v, h in heals.items() if v in victims]
        reaction_audit = [evictions[v] - heals[v]["crossed"] for v in victims
                          if v in evictions and v in heals]
        final = pods(args.namespace)
        recovery = []
        for svc, ps in by_service.items():
            old = {p["metadata"]["name"] for p in ps}
            hit = old & set(victims)
            if not hit:
                continue
            victim = hit.pop()
            new = [p for p in final if p["metadata"]["labels"].get(
                "app.kubernetes.io/instance") == svc and p["metadata"]["name"] not in old]
            ready = [t for p in new if (t := ready_since(p, "True"))]
            if ready and victim in heals:
                recovery.append(min(ready) - heals[victim]["unhealthy_since"])

        print(f"\n== healing: {args.services} services x {args.replicas} pods, {len(victims)} "
              f"faults at once (notReadyTimeout {NOT_READY_TIMEOUT:.0f}s) ==")
        print(f"faults injected in {injected:.1f}s; all healed {took:.1f}s after injection")
        print(f"reaction (threshold -> eviction sent, operator clock): {percentiles(reaction)}")
        print(f"reaction (threshold -> eviction received, audit log):  "
              f"{percentiles(reaction_audit)}")
        print(f"time to recovery (not ready -> replacement Ready; includes the "
              f"{NOT_READY_TIMEOUT:.0f}s timeout): {percentiles(recovery)}")
        print(f"operator: peak RSS {peak_rss_mib(pid):.0f} MiB, CPU {cpu:.1f}s during the heal")
        if audit is None:
            print("audit log not available: reaction times need the embedded cluster")
    finally:
        op.stop()
        kubectl("delete", "namespace", args.namespace, "--wait=true", check=False, timeout=900)


if __name__ == "__main__":
    main()
