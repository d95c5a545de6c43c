"""Killed mid-action: the operator is SIGKILLed at random moments and restarted at once, while
services are created, pods healed and a canary rolled out. Decision state lives in status and is
written before each action, so afterwards nothing is lost and nothing was done twice.

What was *done* is read from the API server's own record (the local cluster's audit log), what
was *counted* from status. Events are not counted: they are posted by a background thread, so a
SIGKILL can lose one (or a decision taken again before its checkpoint can post it again).

The random choices (kill intervals, which services are faulted, when the release goes out) come
from one seed, printed at the start: CHAOS_SEED=<seed> repeats them (the timing of the system
itself is not repeatable). Each operator process logs to e2e/.logs/operator-chaos-N.log, and the
run's timeline (kills, faults, evictions, child writes) is written to
e2e/.logs/chaos-kill-<seed>.txt.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    FAULT_POD,
    LOGS,
    Operator,
    apply,
    condition,
    get,
    kubectl,
    live_pods,
    ready_pods,
    rsvc,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("kwok")

MANAGED = "app.kubernetes.io/managed-by=resilient-operator"
INSTANCE = "app.kubernetes.io/instance"
# the kubernetes Python client's user agent: the operator's own requests (kubectl's are the
# test's, KWOK's are Go's)
OPERATOR_AGENT = "OpenAPI-Generator/"

SERVICES = 100
FAULTS = 20
MIN_KILLS = 20
ROLLOUT_SVC = "svc-0000"
HEALING = {"notReadyTimeout": "5s", "cooldown": "1s"}
CHILD_RESOURCES = ("deployments", "services", "poddisruptionbudgets", "horizontalpodautoscalers")
CANARY = {"strategy": "Canary", "steps": [{"setWeight": 50}, {"pause": {"duration": "5s"}}],
          "minReadySeconds": 1}


# -- the audit log ------------------------------------------------------------------------------


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Audit:
    """The completed requests of one namespace in the API server's audit log, read as it grows
    (from the size it had when this was made)."""

    def __init__(self, namespace: str) -> None:
        kubeconfig = os.environ.get("KUBECONFIG", "")
        path = Path(kubeconfig).parent / "logs/audit.log"
        if not kubeconfig or not path.exists():
            pytest.skip("needs the local cluster's audit log (e2e/cluster.sh)")
        self.path = path
        self.namespace = namespace
        self.offset = path.stat().st_size
        self.entries: list[dict[str, Any]] = []
        self._rest = b""
        self._needle = f'"namespace":"{namespace}"'.encode()

    def poll(self) -> list[dict[str, Any]]:
        """Entries logged since the last poll."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self._rest + data).split(b"\n")
        self._rest = lines.pop()
        new = []
        for line in lines:
            if self._needle not in line or b'"ResponseComplete"' not in line:
                continue
            entry = json.loads(line)
            if (entry.get("objectRef") or {}).get("namespace") == self.namespace:
                new.append(entry)
        self.entries += new
        return new

    def evictions(self) -> list[dict[str, Any]]:
        self.poll()
        return [e for e in self.entries if e["verb"] == "create"
                and (e.get("objectRef") or {}).get("subresource") == "eviction"]

    def pod_deletes(self) -> list[dict[str, Any]]:
        """Pods deleted by the operator (KWOK deletes evicted pods too: not counted)."""
        self.poll()
        return [e for e in self.entries if e["verb"] == "delete" and by_operator(e)
                and (e.get("objectRef") or {}).get("resource") == "pods"
                and not (e.get("objectRef") or {}).get("subresource")]

    def operator_writes(self) -> list[dict[str, Any]]:
        self.poll()
        return [e for e in self.entries if by_operator(e)
                and e["verb"] in ("create", "patch", "update", "delete")]


def by_operator(entry: dict[str, Any]) -> bool:
    return str(entry.get("userAgent", "")).startswith(OPERATOR_AGENT)


def code(entry: dict[str, Any]) -> int:
    return int((entry.get("responseStatus") or {}).get("code") or 0)


def ok(entry: dict[str, Any]) -> bool:
    return 200 <= code(entry) < 300


def pod_of(entry: dict[str, Any]) -> str:
    return str((entry.get("objectRef") or {}).get("name", ""))


def when(entry: dict[str, Any]) -> float:
    return stamp(entry["requestReceivedTimestamp"])


def hms(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


# -- helpers ------------------------------------------------------------------------------------


def fault(ns: str, pod: str, kind: str = "not-ready") -> None:
    kubectl("label", "pod", pod, "-n", ns, f"{FAULT_POD}={kind}", "--overwrite")


def gone(ns: str, pod: str) -> bool:
    p = get("pod", pod, ns)
    return p is None or bool(p["metadata"].get("deletionTimestamp"))


def two_ready(ns: str, name: str) -> list[dict[str, Any]] | None:
    pods = ready_pods(ns, name)
    return pods if len(pods) == 2 else None


def in_flight(ns: str) -> dict[str, list[dict[str, Any]]]:
    """Heals in flight per ResilientService (status.healing.inFlight)."""
    out = {}
    for body in get("rsvc", namespace=ns) or []:
        records = ((body.get("status") or {}).get("healing") or {}).get("inFlight")
        if records:
            out[body["metadata"]["name"]] = records
    return out


def healing_status(ns: str, name: str) -> dict[str, Any]:
    return ((get("rsvc", name, ns) or {}).get("status") or {}).get("healing") or {}


def service_of(pod: str, names: list[str]) -> str | None:
    """The service a pod belongs to, by name (<svc>-<hash>-<id>, <svc>-canary-<hash>-<id>)."""
    for name in names:
        if pod.startswith(name + "-"):
            return name
    return None


class Timeline:
    """What happened when, printed and written to e2e/.logs/chaos-kill-<seed>.txt."""

    def __init__(self, seed: int) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.path = LOGS / f"chaos-kill-{seed}.txt"
        self.path.write_text(f"CHAOS_SEED={seed}\n")
        self._lock = threading.Lock()

    def __call__(self, message: str, at: float | None = None) -> None:
        line = f"{hms(at or time.time())} {message}"
        with self._lock, open(self.path, "a") as f:
            f.write(line + "\n")


class Killer:
    """Runs operators one after the other: each is SIGKILLed after a random time and a new one
    is started at once, until told to stop."""

    def __init__(self, rng: random.Random, log: Timeline) -> None:
        self.rng = rng
        self.log = log
        self.kills: list[tuple[float, str, float]] = []  # (when, operator, its uptime)
        self.operators: list[Operator] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="killer", daemon=True)

    def start(self) -> Killer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def delay(self) -> float:
        # some kills land in the first sweep after a start, most while it works on events
        if self.rng.random() < 0.3:
            return self.rng.uniform(0.2, 1.5)
        return self.rng.uniform(1.5, 8.0)

    def _spawn(self) -> Operator:
        op = Operator(f"operator-chaos-{len(self.operators)}")
        self.operators.append(op)
        op.start()
        self.log(f"started {op.log_path.stem} pid={op.pid}")
        return op

    def _run(self) -> None:
        try:
            op = self._spawn()
            started = time.monotonic()
            while True:
                delay = self.delay()
                stop = self._stop.wait(delay)
                # the last one is killed too: whatever it was doing, the next operator finishes
                op.stop(signal.SIGKILL)
                now = time.time()
                self.kills.append((now, op.log_path.stem, time.monotonic() - started))
                last = (op.log_tail(1) or "").strip()[:160]
                self.log(f"SIGKILL {op.log_path.stem} after {time.monotonic() - started:.1f}s"
                         f" (last log line: {last})", now)
                if stop:
                    return
                op = self._spawn()
                started = time.monotonic()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
            self.log(f"killer stopped by {e!r}")

    def kill_all(self) -> None:
        for op in self.operators:
            op.stop(signal.SIGKILL)


# -- the long version ---------------------------------------------------------------------------


def chaos_service(i: int) -> dict[str, Any]:
    """svc-0000 rolls out; even ones have a Service, every third a PDB, some an HPA."""
    name = f"svc-{i:04d}"
    spec: dict[str, Any] = {"healing": HEALING}
    if i % 2 == 0:
        spec["service"] = {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    if i % 3 == 0:
        spec["availability"] = {"minAvailable": 1}
    if i % 20 == 7:
        spec["autoscaling"] = {"minReplicas": 2, "maxReplicas": 2}
    if name == ROLLOUT_SVC:
        spec["rollout"] = CANARY
    return rsvc(name, 2, **spec)


def release(ns: str, name: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{
        "name": "app", "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}
    kubectl("patch", "rsvc", name, "-n", ns, "--type=merge", "-p", json.dumps(patch))


def owner_problems(ns: str, bodies: dict[str, dict[str, Any]]) -> list[str]:
    """Every object labelled as the operator's has a controller owner that exists: children the
    ResilientService, ReplicaSets their Deployment, pods their ReplicaSet."""
    items = get("deployments,replicasets,pods,services,poddisruptionbudgets,"
                "horizontalpodautoscalers", namespace=ns, selector=MANAGED) or []
    uids = {b["metadata"]["uid"] for b in bodies.values()}
    uids |= {o["metadata"]["uid"] for o in items if o["kind"] in ("Deployment", "ReplicaSet")}
    problems = []
    for o in items:
        meta = o["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        owners = [r for r in meta.get("ownerReferences") or [] if r.get("controller")]
        if len(owners) != 1 or owners[0]["uid"] not in uids:
            problems.append(f"orphan {o['kind']} {meta['name']}: controller owners "
                            f"{meta.get('ownerReferences')}")
    return problems


def child_problems(ns: str, bodies: dict[str, dict[str, Any]]) -> list[str]:
    """Per ResilientService exactly the children its spec asks for, each owned by it."""
    problems = []
    kinds = {"Deployment": "deployments", "Service": "services",
             "PodDisruptionBudget": "poddisruptionbudgets",
             "HorizontalPodAutoscaler": "horizontalpodautoscalers"}
    found: dict[str, list[dict[str, Any]]] = {
        kind: get(plural, namespace=ns) or [] for kind, plural in kinds.items()}
    for kind, items in found.items():
        names = Counter(o["metadata"]["name"] for o in items)
        for name, body in bodies.items():
            spec = body["spec"]
            avail = spec.get("availability") or {}
            wanted = {"Deployment": True, "Service": bool(spec.get("service")),
                      "PodDisruptionBudget": "minAvailable" in avail or
                      "maxUnavailable" in avail,
                      "HorizontalPodAutoscaler": bool(spec.get("autoscaling"))}[kind]
            if names[name] != (1 if wanted else 0):
                problems.append(f"{name}: {names[name]} {kind} named {name}, wanted "
                                f"{1 if wanted else 0}")
            if kind == "Deployment" and names[f"{name}-canary"]:
                phase = ((body.get("status") or {}).get("rollout") or {}).get("phase")
                problems.append(f"{name}: a Deployment {name}-canary with rollout phase {phase}")
        for o in items:
            meta = o["metadata"]
            base = meta["name"].removesuffix("-canary") if kind == "Deployment" else meta["name"]
            owner = bodies.get(base)
            if owner is None:
                problems.append(f"{kind} {meta['name']} belongs to no ResilientService")
                continue
            refs = [r for r in meta.get("ownerReferences") or []
                    if r.get("uid") == owner["metadata"]["uid"] and r.get("controller") is True
                    and r.get("kind") == "ResilientService"]
            if len(refs) != 1:
                problems.append(f"{kind} {meta['name']}: ownerReferences "
                                f"{meta.get('ownerReferences')} lack {base}'s uid "
                                f"{owner['metadata']['uid']} as controller")
    return problems


@pytest.mark.chaos
def test_killed_at_random_moments_nothing_lost_nothing_twice(
        ns: str, capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or time.time_ns() % 1_000_000_007)
    with capsys.disabled():
        print(f"\n[chaos] CHAOS_SEED={seed} (namespace {ns}; timeline in "
              f"{LOGS / f'chaos-kill-{seed}.txt'})", flush=True)
    # one generator per thread, so that each sequence of choices is the seed's alone
    plan = random.Random(f"{seed}/plan")
    log = Timeline(seed)
    audit = Audit(ns)
    names = [f"svc-{i:04d}" for i in range(SERVICES)]
    faulted_svcs = plan.sample(names[1:], FAULTS)
    release_after = plan.randint(2, FAULTS - 5)
    started = time.time()
    killer = Killer(random.Random(f"{seed}/kill"), log).start()
    faulted: dict[str, tuple[str, str]] = {}  # service -> (pod, uid)
    released_at: float | None = None
    final: Operator | None = None
    try:
        # a burst of creates, in chunks of random size at random intervals
        i = 0
        while i < SERVICES:
            n = plan.randint(5, 20)
            docs = [chaos_service(j) for j in range(i, min(SERVICES, i + n))]
            kubectl("apply", "-n", ns, "-f", "-", timeout=120, input=json.dumps(
                {"apiVersion": "v1", "kind": "List", "items": docs}))
            log(f"created {docs[0]['metadata']['name']}..{docs[-1]['metadata']['name']}")
            i += n
            time.sleep(plan.uniform(0, 2))
        # 20 pods of distinct services made not-ready, one after the other; the release of
        # svc-0000 goes out in between
        for k, name in enumerate(faulted_svcs):
            assert killer.error is None, f"seed {seed}: {killer.error!r}"
            if k == release_after:
                wait_for(f"{ROLLOUT_SVC} ready with a stable revision", lambda: len(
                    ready_pods(ns, ROLLOUT_SVC)) == 2 and ((get("rsvc", ROLLOUT_SVC, ns).get(
                        "status") or {}).get("rollout") or {}).get("stableRevision"),
                    timeout=240, interval=1)
                release(ns, ROLLOUT_SVC, "registry.example/app:2")
                released_at = time.time()
                log(f"released {ROLLOUT_SVC} registry.example/app:2")
            pods = wait_for(f"2 ready pods of {name}", partial(two_ready, ns, name),
                            timeout=240, interval=1)
            victim = sorted(pods, key=lambda p: p["metadata"]["name"])[plan.randint(0, 1)]
            fault(ns, victim["metadata"]["name"])
            faulted[name] = (victim["metadata"]["name"], victim["metadata"]["uid"])
            log(f"fault not-ready {victim['metadata']['name']}")
            time.sleep(plan.uniform(0.2, 3.0))

        # keep killing until there were enough kills and the heals and the rollout are done (or
        # it has gone on long enough: the last operator finishes what is left)
        def actions_done() -> bool:
            if any(not gone(ns, pod) for pod, _ in faulted.values()):
                return False
            state = ((get("rsvc", ROLLOUT_SVC, ns).get("status") or {}).get("rollout") or {})
            return state.get("phase") == "Completed"

        deadline = time.monotonic() + 420
        while time.monotonic() < deadline and killer.error is None:
            if len(killer.kills) >= MIN_KILLS and actions_done():
                break
            time.sleep(1)
        while len(killer.kills) < MIN_KILLS and killer.error is None:
            time.sleep(1)
        killer.stop()
        assert killer.error is None, f"seed {seed}: {killer.error!r}"
        chaos_ended = time.time()
        log(f"chaos over: {len(killer.kills)} kills in {chaos_ended - started:.0f}s")

        # a last operator, left alone, brings everything to rest
        final = Operator(f"operator-chaos-{len(killer.operators)}").start()
        log(f"started {final.log_path.stem} (final) pid={final.pid}")

        def settled() -> bool | str:
            bodies = {b["metadata"]["name"]: b for b in get("rsvc", namespace=ns) or []}
            if len(bodies) != SERVICES:
                return f"{len(bodies)} ResilientServices"
            unavailable = [n for n, b in bodies.items()
                           if condition(b, "Available").get("status") != "True"]
            if unavailable:
                return f"not Available: {unavailable[:5]}"
            rollout = (bodies[ROLLOUT_SVC].get("status") or {}).get("rollout") or {}
            if rollout.get("phase") != "Completed":
                return f"rollout {rollout.get('phase')} {rollout.get('message')}"
            pods = [p for p in get("pods", namespace=ns) or []
                    if not p["metadata"].get("deletionTimestamp")]
            per: dict[str, list[str]] = defaultdict(list)
            for p in pods:
                if condition(p, "Ready").get("status") == "True":
                    per[(p["metadata"].get("labels") or {}).get(INSTANCE, "")].append(
                        p["metadata"]["name"])
            short = [n for n in names if len(per[n]) != 2]
            if short:
                return f"not 2 ready pods: {[(n, per[n]) for n in short[:5]]}"
            if len(pods) != 2 * SERVICES:
                return f"{len(pods)} live pods"
            return not owner_problems(ns, bodies) or "owners pending"

        try:
            wait_for("every service at rest", lambda: settled() is True, timeout=300,
                     interval=3)
        except AssertionError as err:
            raise AssertionError(f"seed {seed}: {err}: {settled()}") from None
        ended = time.time()
        log(f"at rest {ended - chaos_ended:.0f}s after the chaos")
        # every heal's replacement is Ready now: no heal may still hold a slot (in flight)
        with contextlib.suppress(AssertionError):  # what stays is reported below
            wait_for("no heal in flight", lambda: not in_flight(ns), timeout=60, interval=2)
        time.sleep(5)  # nothing more should happen now: a late repeat would show below
        assert settled() is True

        # -- what was done (audit log) against what was counted (status) ----------------------
        bodies = {b["metadata"]["name"]: b for b in get("rsvc", namespace=ns)}
        problems: list[str] = []
        problems += [f"{n}: Available is {condition(b, 'Available')}" for n, b in bodies.items()
                     if condition(b, "Available").get("status") != "True"]
        problems += child_problems(ns, bodies)
        problems += owner_problems(ns, bodies)

        evictions = audit.evictions()
        deletes = audit.pod_deletes()
        sent: dict[str, list[dict[str, Any]]] = defaultdict(list)  # service -> heal requests
        for e in evictions + deletes:
            svc = service_of(pod_of(e), names)
            sent[svc or "?"].append(e)
        for e in sorted(evictions + deletes, key=when):
            log(f"audit {e['verb']} {pod_of(e)} {(e['objectRef'].get('subresource') or '')} "
                f"-> {code(e)}", when(e))
        # a 429 (the disruption budget says "not now") is retried by design; any other answer
        # means the request was sent: each pod gets one, and it succeeds
        requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in evictions + deletes:
            if code(e) != 429:
                requests[pod_of(e)].append(e)
        for pod, sent_for in requests.items():
            if len(sent_for) != 1 or not ok(sent_for[0]):
                problems.append(f"pod {pod}: {len(sent_for)} eviction/delete requests "
                                f"{[(e['verb'], code(e), hms(when(e))) for e in sent_for]}")
        for name, (pod, _uid) in faulted.items():
            if pod not in requests:
                problems.append(f"{name}: faulted pod {pod} was never evicted")
        for name, records in in_flight(ns).items():
            problems.append(f"{name}: heals still in flight after every pod is Ready: {records}")
        total = 0
        unexpected: list[str] = []
        for name, body in bodies.items():
            state = (body.get("status") or {}).get("healing") or {}
            counted = int(state.get("podsReplaced") or 0) + \
                int(state.get("podsMovedFromLostNodes") or 0)
            done = [e for e in sent[name] if ok(e)]
            total += counted
            if counted != len(done):
                problems.append(
                    f"{name}: status counts {counted} heals (podsReplaced "
                    f"{state.get('podsReplaced')}), the audit log shows {len(done)} "
                    f"({[(e['verb'], pod_of(e), code(e), hms(when(e))) for e in sent[name]]});"
                    f" lastAction {state.get('lastAction')}")
            if name not in faulted and done:
                # a new pod that KWOK, on a loaded machine, kept Running but not Ready past
                # notReadyTimeout is healed by policy: reported, counted like the others
                unexpected += [pod_of(e) for e in done]
        if total != FAULTS + len(unexpected):
            problems.append(f"status counts {total} heals in all, {FAULTS} pods were faulted "
                            f"and {len(unexpected)} others healed")
        problems += [f"pod {p} evicted by {e.get('user', {}).get('username')} "
                     f"({e.get('userAgent')})" for e in evictions
                     if not by_operator(e) for p in [pod_of(e)]]

        # the rollout: promoted once, no step or abort twice
        state = (bodies[ROLLOUT_SVC].get("status") or {}).get("rollout") or {}
        history = state.get("history") or []
        promoted = [h for h in history if h["result"] == "Promoted"]
        if len(promoted) != 1 or promoted[0]["revision"] != state.get("revision"):
            problems.append(f"{ROLLOUT_SVC}: history {history}, revision "
                            f"{state.get('revision')}")
        keys = [(h["revision"], h["result"], h["started"]) for h in history]
        if len(set(keys)) != len(keys):
            problems.append(f"{ROLLOUT_SVC}: a transition twice in history {history}")
        if [h for h in history if h["result"] != "Promoted"] or state.get("lastAbort") or \
                state.get("abortedRevision"):
            problems.append(f"{ROLLOUT_SVC}: aborted or superseded: history {history}, "
                            f"lastAbort {state.get('lastAbort')}")
        if state.get("stableRevision") != state.get("revision"):
            problems.append(f"{ROLLOUT_SVC}: stable {state.get('stableRevision')} is not "
                            f"{state.get('revision')}")
        images = {p["spec"]["containers"][0]["image"]
                  for p in live_pods(ns, f"{INSTANCE}={ROLLOUT_SVC}")}
        if images != {"registry.example/app:2"}:
            problems.append(f"{ROLLOUT_SVC}: pods run {images}")

        # every child created once (server-side apply answers 201 when it creates); the canary
        # created once and deleted once
        writes = audit.operator_writes()
        created = Counter((e["objectRef"]["resource"], e["objectRef"].get("name"))
                          for e in writes if code(e) == 201 and e["objectRef"]["resource"] in
                          CHILD_RESOURCES and not e["objectRef"].get("subresource"))
        problems += [f"{res} {name} created {n} times" for (res, name), n in created.items()
                     if n > 1]
        canary = f"{ROLLOUT_SVC}-canary"
        canary_deleted = [e for e in writes if e["verb"] == "delete" and ok(e)
                          and e["objectRef"].get("name") == canary]
        if created[("deployments", canary)] != 1 or len(canary_deleted) != 1:
            problems.append(f"{canary}: created {created[('deployments', canary)]} times, "
                            f"deleted {len(canary_deleted)} times")

        # reported, not asserted: events (posted by a background thread; a SIGKILL loses some)
        reasons = Counter(e["reason"] for e in get("events", namespace=ns) or []
                          if e["involvedObject"].get("kind") == "ResilientService")
        shown = {r: n for r, n in sorted(reasons.items()) if r.startswith(("Rollout", "Pod"))}
        kill_times = [k[0] for k in killer.kills]
        writes_t = sorted(when(e) for e in writes)
        near = sum(1 for k in kill_times if any(0 <= k - w < 1.0 for w in writes_t))
        during = sum(1 for e in evictions if when(e) < chaos_ended)
        summary = (
            f"seed {seed}: {len(killer.kills)} SIGKILLs in {chaos_ended - started:.0f}s "
            f"({near} within 1 s after an operator write), {len(evictions)} eviction requests "
            f"({during} during the chaos), at rest {ended - chaos_ended:.0f}s after it; "
            f"rollout released at +{(released_at or started) - started:.0f}s, "
            f"history {[(h['result'], h['revision']) for h in history]}; heals of pods never "
            f"faulted {unexpected}; events {shown}")
        log(summary)
        for p in problems:
            log(f"PROBLEM {p}")
        with capsys.disabled():
            print(f"[chaos] {summary}", flush=True)
        assert not problems, (f"CHAOS_SEED={seed} (timeline {log.path}, operator logs "
                              f"{LOGS}/operator-chaos-*.log):\n" + "\n".join(problems))
    finally:
        killer.stop()
        killer.kill_all()
        if final is not None:
            final.stop()


# -- the fast version ---------------------------------------------------------------------------


def test_killed_right_after_an_eviction_is_not_evicted_again(ns: str) -> None:
    audit = Audit(ns)
    first = Operator("operator-chaos-evict-1").start()
    second: Operator | None = None
    try:
        apply(rsvc("web", 3, healing={"notReadyTimeout": "3s", "cooldown": "30s"}), ns)
        pods = wait_for("3 ready pods", lambda: len(p := ready_pods(ns, "web")) == 3 and p,
                        timeout=60)
        victim = pods[0]["metadata"]["name"]
        fault(ns, victim)
        # when the operator is killed the moment its eviction is done
        evicted = wait_for("the eviction in the audit log", lambda: audit.evictions(),
                           timeout=30, interval=0.02)
        first.stop(signal.SIGKILL)
        assert [pod_of(e) for e in evicted] == [victim] and ok(evicted[0]), [
            (pod_of(e), code(e)) for e in evicted]
        first_at = when(evicted[0])
        # and a second pod goes not-ready while no operator runs
        other = next(p["metadata"]["name"] for p in pods[1:] if not gone(ns, p["metadata"][
            "name"]))
        fault(ns, other)
        second = Operator("operator-chaos-evict-2").start()
        # then the new operator sees it, but within the cooldown evicts nothing
        wait_for("the second pod reported as waiting", lambda: any(
            u["name"] == other and u["action"] == "Wait"
            for u in healing_status(ns, "web").get("unhealthyPods") or []), timeout=15)
        quiet_until = min(time.time() + 10, first_at + 28)
        while time.time() < quiet_until:
            assert len(audit.evictions()) == 1, (
                f"evicted within the cooldown: {[(pod_of(e), code(e)) for e in audit.evictions()]}"
                f"; logs {first.log_path}, {second.log_path}")
            time.sleep(0.2)
        state = healing_status(ns, "web")
        assert state["podsReplaced"] == 1, state
        assert not audit.pod_deletes()
        # after the cooldown the second pod is healed: one more eviction, and only one
        wait_for("the second pod evicted", lambda: len(audit.evictions()) >= 2,
                 timeout=first_at + 30 + 15 - time.time(), interval=0.2)
        time.sleep(2)
        evictions = audit.evictions()
        assert [(pod_of(e), code(e)) for e in evictions] == [(victim, 201), (other, 201)], [
            (pod_of(e), code(e), hms(when(e))) for e in evictions]
        assert when(evictions[1]) - first_at >= 29, "the cooldown was not honoured"
        wait_for("status counts 2", lambda: healing_status(ns, "web").get("podsReplaced") == 2,
                 timeout=10)
        assert not audit.pod_deletes()
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop()
