"""The operator's image, built here and run the way a cluster runs it: non-root, read-only root
filesystem, no capabilities, authenticated as its ServiceAccount; it keeps its promises."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import (
    FAULT_POD,
    LOGS,
    ROOT,
    Operator,
    apply,
    condition,
    events,
    free_port,
    get,
    kubectl,
    ready_pods,
    rsvc,
    wait_for,
)
from .test_install import SYSTEM, service_account_kubeconfig

UID = 65532
# the README's command for running the operator in a cluster (the Deployment adds its flags)
ENTRYPOINT = ["resilient-operator", "--liveness", "http://0.0.0.0:8081/healthz"]


def container_engine() -> str | None:
    done = subprocess.run(["bash", str(ROOT / "e2e/container-setup.sh"), "engine"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


@pytest.fixture(scope="module")
def engine() -> str:
    found = container_engine()
    if found is None:
        pytest.skip("no container engine can run containers here (no Docker daemon answers, "
                    "podman is not set up): `make container-engine` sets one up, as root")
    return found


@pytest.fixture(scope="module")
def image(engine: str) -> str:
    """The image built from the Dockerfile (the engine's layer cache makes a rebuild quick)."""
    done = subprocess.run(["bash", str(ROOT / "e2e/image.sh"), "build"], capture_output=True,
                          text=True, timeout=1800)
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "image-build.log").write_text(done.stderr)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def service_account(cluster: None) -> Iterator[str]:
    """manifests/ applied (ServiceAccount, RBAC; the in-cluster replicas scaled to zero: KWOK
    runs no container), and a kubeconfig for the ServiceAccount that only its owner can reach."""
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "manifests"))
    kubectl("scale", "deployment", "resilient-operator", "-n", SYSTEM, "--replicas=0")
    path = Path(service_account_kubeconfig())
    # the container's user (65532) reads it through a read-only bind mount of the file alone;
    # the directory around it stays private to this user
    path.parent.chmod(0o700)
    path.chmod(0o644)
    yield str(path)
    shutil.rmtree(path.parent, ignore_errors=True)
    # waited for, so that a module after this one can apply manifests/ again
    kubectl("delete", "namespace", SYSTEM, "--timeout=120s", check=False, timeout=150)
    for kind in ("clusterrole", "clusterrolebinding"):
        for name in ("resilient-operator-framework", "resilient-operator-reconcile"):
            kubectl("delete", kind, name, "--ignore-not-found", check=False)


class ContainerOperator(Operator):
    """The operator in its image, started by the container engine on the host's network."""

    def __init__(self, engine: str, image: str, kubeconfig: str) -> None:
        super().__init__("operator-image")
        self.engine, self.image, self.kubeconfig = engine, image, kubeconfig
        self.name = f"resilient-operator-e2e-{os.getpid()}"
        self.health_port = 0

    def start(self) -> ContainerOperator:
        self.health_port = free_port()
        # as the Deployment runs it: only /tmp writable (its emptyDir), podman's extra tmpfs off
        isolation = ["--read-only", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
                     "--user", f"{UID}:{UID}", "--cap-drop", "ALL",
                     "--security-opt", "no-new-privileges"]
        if self.engine == "podman":
            isolation.append("--read-only-tmpfs=false")
        command = [
            self.engine, "run", "--rm", "--name", self.name, "--network", "host",
            "--pull", "never", *isolation,
            "-v", f"{self.kubeconfig}:/etc/resilient-operator/kubeconfig:ro",
            "-e", "KUBECONFIG=/etc/resilient-operator/kubeconfig",
            self.image,
            # appended to the image's entrypoint: ports of this test's own (the host's network
            # is shared with other processes)
            "--metrics-port", str(self.port), "--metrics-address", "127.0.0.1",
            "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
        ]
        log = open(self.log_path, "wb")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for("the containerized operator's metrics endpoint",
                 lambda: self.metrics_text() is not None or self.exited(), timeout=90)
        assert not self.exited(), self.log_tail()
        return self

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.engine, "exec", self.name, *command], capture_output=True,
                              text=True, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM, then SIGKILL after a 10 s grace period, as a kubelet stops a pod."""
        command = (["stop", "--time", "10"] if sig == signal.SIGTERM
                   else ["kill", "--signal", str(int(sig))])
        subprocess.run([self.engine, *command, self.name], capture_output=True, timeout=60)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=15)  # `run` exits with the container's exit code
            except subprocess.TimeoutExpired:
                super().stop()


@pytest.fixture(scope="module")
def operator(engine: str, image: str, service_account: str) -> Iterator[ContainerOperator]:
    op = ContainerOperator(engine, image, service_account).start()
    yield op
    op.stop()


def test_the_image_is_what_a_cluster_runs(engine: str, image: str) -> None:
    inspect = json.loads(subprocess.run([engine, "image", "inspect", image], capture_output=True,
                                        text=True, check=True).stdout)[0]
    config = inspect["Config"]
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["User"] == f"{UID}:{UID}"
    # the wheels and the build tools stayed in the build stage
    listing = subprocess.run([engine, "run", "--rm", "--pull", "never", "--entrypoint",
                              "python3", image, "-c",
                              "import os, importlib.util as u; print(os.path.exists('/wheels'),"
                              " u.find_spec('pip') is not None)"],
                             capture_output=True, text=True, timeout=60)
    assert listing.stdout.split() == ["False", "False"], listing.stdout + listing.stderr
    with open(LOGS / "measurements.txt", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} image {image} size: "
                f"{int(inspect['Size']) / 1e6:.1f} MB\n")


def test_it_runs_non_root_read_only_without_capabilities(operator: ContainerOperator) -> None:
    done = operator.exec("python3", "-c", (
        "import os\n"
        "print(os.getuid())\n"
        "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
        "for path in ('/opt/resilient-operator/probe', '/probe', '/tmp/probe'):\n"
        "    try:\n"
        "        open(path, 'w').close(); print('writable')\n"
        "    except OSError:\n"
        "        print('read-only')\n"))
    assert done.returncode == 0, done.stderr
    uid, caps, *writable = done.stdout.split()
    assert int(uid) == UID
    assert int(caps, 16) == 0
    assert writable == ["read-only", "read-only", "writable"]
    # and kopf's liveness endpoint answers on the port given after the entrypoint
    with urllib.request.urlopen(
            f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5) as r:
        assert r.status == 200


def test_children_appear_and_drift_is_restored(ns: str, operator: ContainerOperator) -> None:
    # given a ResilientService with every kind of child
    apply(rsvc("web", 3, service={"ports": [{"name": "http", "port": 80}]},
               availability={"minAvailable": 1, "zoneSpread": {}},
               autoscaling={"minReplicas": 3, "maxReplicas": 4}), ns)
    # then its children appear, the pods become ready and the status says so
    for kind in ("deployment", "service", "pdb", "hpa"):
        wait_for(kind, lambda k=kind: get(k, "web", ns), timeout=30)
    wait_for("3 ready", lambda: len(ready_pods(ns, "web")) == 3, timeout=60)
    wait_for("Available", lambda: condition(get("rsvc", "web", ns), "Available").get(
        "status") == "True", timeout=30)
    assert "Created" in {e["reason"] for e in events(ns, "web")}
    # when someone deletes the Service and edits the PodDisruptionBudget
    kubectl("delete", "service", "web", "-n", ns)
    kubectl("patch", "pdb", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":0}}')
    # then both are put back
    wait_for("service restored", lambda: get("service", "web", ns), timeout=30)
    wait_for("pdb restored", lambda: get("pdb", "web", ns)["spec"]["minAvailable"] == 1,
             timeout=30)
    wait_for("DriftRestored event", lambda: "DriftRestored" in {
        e["reason"] for e in events(ns, "web")}, timeout=15)
    assert "Forbidden" not in operator.log_tail(400), operator.log_tail(400)
    assert operator.metric("resilient_reconciles_total", result="error") == 0


def test_a_not_ready_pod_is_healed(ns: str, operator: ContainerOperator, kwok: None) -> None:
    apply(rsvc("web", 3, healing={"notReadyTimeout": "5s", "cooldown": "1s"}), ns)
    pods = wait_for("3 ready", lambda: len(p := ready_pods(ns, "web")) == 3 and p, timeout=60)
    victim = pods[0]["metadata"]["name"]
    # when one pod stops being ready
    kubectl("label", "pod", victim, "-n", ns, f"{FAULT_POD}=not-ready")
    # then it is evicted after notReadyTimeout and the service has 3 ready pods again
    wait_for("evicted", lambda: (p := get("pod", victim, ns)) is None or
             p["metadata"].get("deletionTimestamp"), timeout=40)
    wait_for("3 ready again", lambda: len(ready_pods(ns, "web")) == 3, timeout=40)
    assert "PodReplaced" in {e["reason"] for e in events(ns, "web")}
    assert operator.metric("resilient_heals_total", namespace=ns, reason="NotReady",
                           result="evicted") == 1


def test_it_stops_on_sigterm(engine: str, image: str, service_account: str) -> None:
    # a second container, stopped like the kubelet stops a pod: SIGTERM, then a grace period
    op = ContainerOperator(engine, image, service_account)
    op.name += "-sigterm"
    op.start()
    started = time.monotonic()
    op.stop()
    assert time.monotonic() - started < 10, "it did not stop on SIGTERM before the grace period"
    assert op.proc is not None and op.proc.returncode == 0, op.log_tail()
