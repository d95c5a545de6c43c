"""Soak: M services for a long stretch with a pod fault every few seconds. Reports the
operator's RSS at the start and the end, watch restarts, reconcile errors, heals executed vs
faults injected, and its requests per minute in quiet stretches (no faults for a minute).

    bash e2e/with-cluster.sh -- .venv/bin/python bench/soak.py --services 1000 --minutes 60

Needs the KWOK fault stages (the embedded cluster). Not part of `make test`: `make bench-soak`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

import kubernetes

from common import apply_many, kubectl, prepare, service, wait

NOT_READY_TIMEOUT = "10s"
FAULT = "fault.resilience.dev/pod"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pods(core: kubernetes.client.CoreV1Api, namespace: str) -> list:
    return core.list_namespaced_pod(namespace).items


def ready(pod: object) -> bool:
    return any(c.type == "Ready" and c.status == "True"
               for c in (pod.status.conditions or []))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--fault-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--quiet-every", type=float, default=10.0,
                        help="minutes between quiet stretches (a minute without faults)")
    parser.add_argument("--namespace", default="bench-soak")
    args = parser.parse_args()
    total = args.services * args.replicas

    op = prepare(args.namespace, "bench-soak")
    pid = op.pid
    core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config())
    try:
        apply_many([service(i, args.replicas, healing={"notReadyTimeout": NOT_READY_TIMEOUT,
                                                       "cooldown": "1s"})
                    for i in range(args.services)], args.namespace)
        took = wait(f"{total} ready pods", lambda: sum(
            1 for p in pods(core, args.namespace) if ready(p)) >= total, timeout=3600,
                    interval=5)
        print(f"{args.services} services, {total} pods ready after {took:.0f}s", flush=True)
        time.sleep(30)
        rss_start = rss_mib(pid)
        errors0 = op.metric("resilient_reconciles_total", result="error")
        log_at = op.log_path.stat().st_size
        injected: list[str] = []
        quiet: list[float] = []
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        next_quiet = start + args.quiet_every * 60
        while time.monotonic() - start < args.minutes * 60:
            if time.monotonic() >= next_quiet:
                time.sleep(20)  # heals of the last faults finish
                r0 = op.metric("resilient_rest_client_requests_total")
                time.sleep(60)
                quiet.append(op.metric("resilient_rest_client_requests_total") - r0)
                next_quiet = time.monotonic() + args.quiet_every * 60
                samples.append((time.monotonic() - start, rss_mib(pid)))
                print(f"  {(time.monotonic() - start) / 60:5.1f} min: RSS "
                      f"{samples[-1][1]:.0f} MiB, {len(injected)} faults, quiet minute "
                      f"{quiet[-1]:.0f} requests", flush=True)
                continue
            healthy = [p for p in pods(core, args.namespace) if ready(p) and
                       not p.metadata.deletion_timestamp and
                       FAULT not in (p.metadata.labels or {})]
            if healthy:
                victim = random.choice(healthy).metadata.name
                core.patch_namespaced_pod(victim, args.namespace,
                                          {"metadata": {"labels": {FAULT: "not-ready"}}})
                injected.append(victim)
            time.sleep(args.fault_every)

        def healed() -> bool:
            current = pods(core, args.namespace)
            live = {p.metadata.name for p in current if not p.metadata.deletion_timestamp}
            return not (live & set(injected)) and sum(1 for p in current if ready(p)) >= total
        settle = wait("every fault healed", healed, timeout=1800, interval=5)
        time.sleep(30)
        rss_end = rss_mib(pid)
        log = op.log_path.read_bytes()[log_at:].decode(errors="replace")
        heal_lines = [line for line in log.splitlines() if line.startswith("heal ")]
        evicted = {m[1] for line in heal_lines if "result=evicted" in line
                   and (m := re.search(r" pod=(\S+)", line))}
        counted = 0
        for rs in json.loads(kubectl("get", "rsvc", "-n", args.namespace, "-o", "json",
                                     timeout=300).stdout)["items"]:
            counted += ((rs.get("status") or {}).get("healing") or {}).get("podsReplaced", 0)
        print(f"\n== soak: {args.services} services x {args.replicas} pods, "
              f"{args.minutes:.0f} min, a not-ready fault every {args.fault_every:.0f}s ==")
        print(f"faults injected {len(injected)}; heals executed {len(heal_lines)} "
              f"({len(evicted & set(injected))} of the injected pods evicted); counted in status "
              f"{counted}; all healed {settle:.0f}s after the last fault")
        print(f"RSS start {rss_start:.0f} MiB, end {rss_end:.0f} MiB "
              f"({(rss_end - rss_start) / rss_start * 100:+.1f}%); samples: " +
              ", ".join(f"{t / 60:.0f}m={r:.0f}" for t, r in samples))
        print(f"watch restarts: {log.count('relisting')} relists (410), "
              f"{log.count('API server not answering')} watch failures")
        print(f"reconcile errors: "
              f"{op.metric('resilient_reconciles_total', result='error') - errors0:.0f}")
        print("requests per quiet minute: " + (", ".join(f"{q:.0f}" for q in quiet) or "none"))
    finally:
        op.stop()
        kubectl("delete", "namespace", args.namespace, "--wait=true", check=False, timeout=900)


if __name__ == "__main__":
    main()
