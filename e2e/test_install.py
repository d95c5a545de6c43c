"""Installing like a real operator: manifests, least privilege, restricted pods, its own HA."""

from __future__ import annotations

import base64
import json
import signal
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import (
    FAULT_POD,
    LOGS,
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

SYSTEM = "resilient-system"
SA = "resilient-operator"
SA_USER = f"system:serviceaccount:{SYSTEM}:{SA}"
CLUSTER_RBAC = [("clusterrole", "resilient-operator-framework"),
                ("clusterrolebinding", "resilient-operator-framework"),
                ("clusterrole", "resilient-operator-reconcile"),
                ("clusterrolebinding", "resilient-operator-reconcile")]


@pytest.fixture(scope="module")
def installed(cluster: None) -> Iterator[None]:
    """`kubectl apply -k manifests/`, then the in-cluster replicas scaled to zero so that the
    operators these tests start are the only ones acting. The CRD is never deleted afterwards
    (that would delete every ResilientService in the cluster)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "manifests"))
    yield
    kubectl("delete", "namespace", SYSTEM, "--wait=false", check=False)
    for kind, name in CLUSTER_RBAC:
        kubectl("delete", kind, name, "--ignore-not-found", check=False)


def record(name: str, value: str) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / "measurements.txt", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {name}: {value}\n")


def test_install_is_admitted_under_the_restricted_pod_security_standard(installed: None) -> None:
    namespace = get("namespace", SYSTEM)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # the Deployment's pods pass the API server's Pod Security admission
    pods = wait_for("2 operator pods admitted", lambda: len(p := get(
        "pods", namespace=SYSTEM, selector="app.kubernetes.io/name=resilient-operator") or []
    ) == 2 and p, timeout=60)
    kubectl("scale", "deployment", SA, "-n", SYSTEM, "--replicas=0")
    spec = pods[0]["spec"]
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    # and the same pod without its securityContext is refused: the enforcement is real
    dep = get("deployment", SA, SYSTEM)
    template = dep["spec"]["template"]["spec"]
    template["containers"][0].pop("securityContext")
    template.pop("securityContext")
    bad = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "not-restricted", "namespace": SYSTEM}, "spec": template}
    done = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(bad), check=False)
    assert done.returncode != 0 and "violates PodSecurity" in done.stderr, done.stderr


def operator_pods() -> list[dict]:
    pods = get("pods", namespace=SYSTEM, selector="app.kubernetes.io/name=resilient-operator")
    return [p for p in pods or [] if not p["metadata"].get("deletionTimestamp")]


def placed(n: int) -> list[dict] | None:
    pods = operator_pods()
    return pods if len(pods) == n and all(p["spec"].get("nodeName") for p in pods) else None


def zone_of(node: str) -> str:
    return get("node", node)["metadata"]["labels"].get("topology.kubernetes.io/zone", "")


def test_the_two_replicas_never_share_a_node_even_through_a_drain(installed: None) -> None:
    # given the shipped Deployment's two replicas
    kubectl("scale", "deployment", SA, "-n", SYSTEM, "--replicas=2")
    drained = None
    try:
        pods = wait_for("2 operator pods scheduled", lambda: placed(2), timeout=60)
        nodes = {p["spec"]["nodeName"] for p in pods}
        assert len(nodes) == 2, "both replicas on one node"
        record("operator replicas' zones", ", ".join(sorted(zone_of(n) for n in nodes)))
        # when the node of one of them is drained (the PDB lets one go at a time)
        drained = sorted(nodes)[0]
        kubectl("drain", drained, "--ignore-daemonsets", "--delete-emptydir-data",
                "--timeout=60s", timeout=90)
        # then its replacement lands on a third node, never beside the other replica
        after = wait_for("the replacement scheduled", lambda: (p := placed(2)) and drained
                         not in {x["spec"]["nodeName"] for x in p} and p, timeout=60)
        now = {p["spec"]["nodeName"] for p in after}
        assert len(now) == 2 and drained not in now, now
    finally:
        if drained:
            kubectl("uncordon", drained, check=False)
        kubectl("scale", "deployment", SA, "-n", SYSTEM, "--replicas=0", check=False)


def test_overlays_build_and_the_namespaced_one_applies(installed: None) -> None:
    prometheus = kubectl("kustomize", str(ROOT / "manifests/overlays/prometheus")).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(prometheus) if d}
    assert {"ServiceMonitor", "PrometheusRule", "Deployment"} <= kinds
    namespaced = kubectl("kustomize", str(ROOT / "manifests/overlays/namespaced")).stdout
    docs = [d for d in yaml.safe_load_all(namespaced) if d]
    assert not any(d["kind"] == "ClusterRole" and d["metadata"]["name"] ==
                   "resilient-operator-reconcile" for d in docs)
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"][0]["args"]
    assert "--namespace=apps" in args
    kubectl("create", "namespace", "apps", check=False)
    try:
        kubectl("apply", "--dry-run=server", "-f", "-", input=namespaced)
    finally:
        kubectl("delete", "namespace", "apps", "--wait=false", check=False)


def test_service_account_has_no_wildcards_and_no_secrets(installed: None, ns: str) -> None:
    for namespace in (ns, SYSTEM):
        listing = kubectl("auth", "can-i", "--list", f"--as={SA_USER}", "-n", namespace).stdout
        # rows without a resource are the non-resource URLs every authenticated user may GET
        rows = [line.split() for line in listing.splitlines()[1:]
                if line.strip() and not line.split()[0].startswith("[")]
        for row in rows:
            resource, verbs = row[0], row[-1]
            assert "*" not in resource and "*" not in verbs, row
            assert "secrets" not in resource and "configmaps" not in resource, row
        assert any(r[0] == "pods/eviction" for r in rows)
    for verb, what in [("get", "secrets"), ("list", "secrets"), ("update", "resilientservices"),
                       ("delete", "nodes"), ("create", "pods")]:
        assert kubectl("auth", "can-i", verb, what, f"--as={SA_USER}", "-n", ns,
                       check=False).stdout.strip() == "no", (verb, what)


def service_account_kubeconfig(duration: str = "1h") -> str:
    """A kubeconfig that authenticates as the operator's ServiceAccount (TokenRequest API). Its
    token is static: the operator stops when it expires (in a pod, the kubelet rotates it)."""
    token = kubectl("create", "token", SA, "-n", SYSTEM, f"--duration={duration}").stdout.strip()
    current = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = current["clusters"][0]["cluster"]
    if "certificate-authority" in cluster:
        ca = Path(cluster.pop("certificate-authority")).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": SA, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": SA}}],
    }
    path = Path(tempfile.mkdtemp()) / "kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)


def test_operator_as_its_service_account_passes_the_core_scenarios(
        installed: None, ns: str, has_kwok: bool) -> None:
    op = Operator("operator-as-sa", env={"KUBECONFIG": service_account_kubeconfig()}).start()
    try:
        # children created (every kind), pods ready, status written, events posted
        apply(rsvc("web", 3, service={"ports": [{"name": "http", "port": 80}]},
                   availability={"minAvailable": 1, "zoneSpread": {}},
                   autoscaling={"minReplicas": 3, "maxReplicas": 4},
                   healing={"notReadyTimeout": "5s", "cooldown": "1s"}), ns)
        for kind in ("deployment", "service", "pdb", "hpa"):
            wait_for(kind, lambda k=kind: get(k, "web", ns), timeout=30)
        pods = wait_for("3 ready", lambda: len(p := ready_pods(ns, "web")) == 3 and p, timeout=60)
        wait_for("status", lambda: condition(get("rsvc", "web", ns), "Available").get(
            "status") == "True", timeout=30)
        assert "Created" in {e["reason"] for e in events(ns, "web")}
        # drift restored
        kubectl("delete", "service", "web", "-n", ns)
        wait_for("service restored", lambda: get("service", "web", ns), timeout=30)
        # healing through the Eviction API
        if has_kwok:
            victim = pods[0]["metadata"]["name"]
            kubectl("label", "pod", victim, "-n", ns, f"{FAULT_POD}=not-ready")
            wait_for("evicted", lambda: (p := get("pod", victim, ns)) is None or
                     p["metadata"].get("deletionTimestamp"), timeout=30)
        assert "Forbidden" not in op.log_tail(400), op.log_tail(400)
        assert op.metric("resilient_reconciles_total", result="error") == 0
    finally:
        op.stop()


def test_two_replicas_only_one_acts_and_the_other_takes_over(installed: None, ns: str) -> None:
    lease = f"e2e-ha-{uuid.uuid4().hex[:6]}"
    env = {"RESILIENT_LEASE_NAME": lease, "RESILIENT_LEASE_SECONDS": "10"}
    args = ["--leader-elect", f"--lease-namespace={SYSTEM}"]
    first = Operator("ha-a", args, env).start()
    wait_for("a leader", lambda: first.metric("resilient_leader") == 1, timeout=30)
    second = Operator("ha-b", args, env).start()
    try:
        time.sleep(3)
        assert second.metric("resilient_leader") == 0
        # both are ready: one to act, the other to take over
        for op, word in ((first, "leader"), (second, "standby")):
            with urllib.request.urlopen(f"http://127.0.0.1:{op.port}/readyz", timeout=2) as r:
                assert r.status == 200 and word in r.read().decode()
        # only the leader acts
        apply(rsvc("web", 2, service={"ports": [{"name": "http", "port": 80}]}), ns)
        wait_for("2 ready", lambda: len(ready_pods(ns, "web")) == 2, timeout=60)
        time.sleep(2)
        assert second.metric("resilient_reconciles_total") == 0
        created = [e for e in events(ns, "web") if e["reason"] == "Created"]
        assert len(created) == 2, [e["message"] for e in created]  # Deployment, Service: once
        # when the leader dies without a goodbye
        first.stop(signal.SIGKILL)
        killed = time.monotonic()
        wait_for("the standby to lead", lambda: second.metric("resilient_leader") == 1,
                 timeout=30, interval=0.2)
        takeover = time.monotonic() - killed
        record("leader takeover after SIGKILL (lease 10s, retry 2s)", f"{takeover:.1f}s")
        assert takeover <= 10 + 2 + 3
        # then it acts, exactly once
        kubectl("delete", "service", "web", "-n", ns)
        wait_for("service restored by the new leader", lambda: get("service", "web", ns),
                 timeout=30)
        time.sleep(2)
        restored = [e for e in events(ns, "web") if e["reason"] in ("DriftRestored", "Created")
                    and "Service" in e["message"]]
        assert len(restored) == 2, [e["message"] for e in restored]  # created once, restored once
        assert get("lease", lease, SYSTEM)["spec"]["holderIdentity"].endswith(
            str(second.proc.pid if second.proc else ""))
    finally:
        first.stop(signal.SIGKILL)
        second.stop()
        kubectl("delete", "lease", lease, "-n", SYSTEM, "--ignore-not-found", check=False)
