"""Create N ResilientServices and measure: time until all are Available, the operator's peak RSS
and CPU seconds, and its API requests per resource until converged and during an idle minute.

    bash e2e/with-cluster.sh -- .venv/bin/python bench/converge.py --count 200 [--idle 60]

Requests are counted twice: by the API server's audit log (user = the operator's
ServiceAccount; kopf's own requests included, watches excluded by the audit policy) when the
cluster is the embedded one, and by the operator's own resilient_rest_client_requests_total.
"""

from __future__ import annotations

import argparse
import json
import time

from common import (
    apply_many,
    audit_entries,
    audit_log,
    by_verb,
    cpu_seconds,
    kubectl,
    peak_rss_mib,
    prepare,
    service,
    wait,
)

WRITES = ("create", "update", "patch", "delete", "deletecollection")


def manifest(i: int, replicas: int) -> dict:
    return service(i, replicas, service={"ports": [{"name": "http", "port": 80}]},
                   availability={"maxUnavailable": 1, "zoneSpread": {}})


def available_count(namespace: str) -> int:
    items = json.loads(kubectl("get", "rsvc", "-n", namespace, "-o", "json",
                               timeout=120).stdout)["items"]
    return sum(1 for r in items for c in (r.get("status") or {}).get("conditions") or []
               if c["type"] == "Available" and c["status"] == "True")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--namespace", default="bench-converge")
    args = parser.parse_args()

    op = prepare(args.namespace, "bench-converge")
    pid = op.pid
    audit = audit_log()
    try:
        cpu0 = cpu_seconds(pid)
        t0 = time.time()
        apply_many([manifest(i, args.replicas) for i in range(args.count)], args.namespace)
        created = time.time() - t0
        took = wait("all Available", lambda: available_count(args.namespace) == args.count,
                    timeout=1800)
        converged_at = time.time()
        cpu_converge = cpu_seconds(pid) - cpu0
        own = {v: int(op.metric("resilient_rest_client_requests_total", verb=v))
               for v in ("list", "get", "apply", "patch", "create", "delete")}
        time.sleep(5)  # let the last status writes land before the idle window opens
        idle_start = time.time()
        cpu_idle0 = cpu_seconds(pid)
        own_idle0 = sum(op.metric("resilient_rest_client_requests_total", verb=v)
                        for v in ("apply", "patch", "create", "delete", "update"))
        time.sleep(args.idle)
        idle_end = time.time()
        own_idle = sum(op.metric("resilient_rest_client_requests_total", verb=v)
                       for v in ("apply", "patch", "create", "delete", "update")) - own_idle0
        converge_requests = by_verb(audit_entries(audit, t0, converged_at))
        idle_requests = by_verb(audit_entries(audit, idle_start, idle_end))

        n = args.count
        print(f"\n== converge: {n} ResilientServices x {args.replicas} replica(s) ==")
        print(f"applied in {created:.1f}s; all Available {took + created:.1f}s after the first "
              f"apply ({n / (took + created):.1f} services/s)")
        print(f"operator: peak RSS {peak_rss_mib(pid):.0f} MiB, CPU {cpu_converge:.1f}s until "
              f"converged, {cpu_seconds(pid) - cpu_idle0:.2f}s in {args.idle:.0f}s idle")
        if audit is not None:
            total = sum(converge_requests.values())
            writes = sum(v for k, v in converge_requests.items() if k.split()[0] in WRITES)
            print(f"audit, until converged: {total} requests ({total / n:.1f}/service), "
                  f"{writes} writes ({writes / n:.1f}/service)")
            for key, value in sorted(converge_requests.items(), key=lambda kv: -kv[1]):
                print(f"    {value:6d}  {key}")
            idle_writes = sum(v for k, v in idle_requests.items() if k.split()[0] in WRITES)
            print(f"audit, idle {args.idle:.0f}s: {sum(idle_requests.values())} requests, "
                  f"{idle_writes} writes {dict(idle_requests)}")
        else:
            print("audit log: not available on this cluster")
        print(f"operator's own counter, until converged: {own}; while idle: {own_idle:.0f} "
              "writes")
    finally:
        op.stop()
        kubectl("delete", "namespace", args.namespace, "--wait=true", check=False, timeout=900)


if __name__ == "__main__":
    main()
