"""e2e harness: a real API server (the one KUBECONFIG names), the operator started the way the
README starts it, and one namespace per test.

Tests that need KWOK fault injection are marked ``kwok`` and skipped, with the reason, on a
cluster without the stages from e2e/stages (kind, a real cluster).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .fakeapp import FakeApp
from .prometheus import Prometheus

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "e2e/.logs"
OPERATOR = [str(Path(sys.executable).parent / "resilient-operator")]
FAULT_POD = "fault.resilience.dev/pod"
FAULT_NODE = "fault.resilience.dev/node"


# -- kubectl ------------------------------------------------------------------------------------


def kubectl(*args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run kubectl against KUBECONFIG; raise with its stderr when it fails and check is set."""
    done = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def get(kind: str, name: str | None = None, namespace: str | None = None,
        selector: str | None = None) -> Any:
    """An object as a dict, None when it does not exist; a list of items without a name."""
    args = ["get", kind, "-o", "json"]
    if name:
        args.insert(2, name)
    if namespace:
        args += ["-n", namespace]
    if selector:
        args += ["-l", selector]
    done = kubectl(*args, check=False)
    if done.returncode != 0:
        if "NotFound" in done.stderr or "not found" in done.stderr:
            return None
        raise AssertionError(done.stderr)
    data = json.loads(done.stdout)
    return data if name else data["items"]


def apply(manifest: dict[str, Any] | str, namespace: str | None = None,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
    return kubectl(*args, input=text, check=check)


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 60,
             interval: float = 0.5) -> Any:
    """Poll until predicate returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except AssertionError as e:
            last = e
        if last and not isinstance(last, AssertionError):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return {}


def events(namespace: str, name: str) -> list[dict[str, Any]]:
    items = get("events", namespace=namespace) or []
    return [e for e in items if e["involvedObject"].get("name") == name
            and e["involvedObject"].get("kind") == "ResilientService"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the operator -------------------------------------------------------------------------------


class Operator:
    """The operator as a separate process, started like the README starts it."""

    def __init__(self, name: str = "operator", extra: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = LOGS / f"{name}.log"
        self.extra = extra or []
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        log = open(self.log_path, "wb")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(
            [*OPERATOR, "--metrics-port", str(self.port), "--metrics-address", "127.0.0.1",
             *self.extra],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        wait_for("the operator's metrics endpoint", lambda: self.metrics_text() is not None,
                 timeout=30)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def metrics_text(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels``."""
        total = 0.0
        for line in (self.metrics_text() or "").splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def cluster() -> None:
    if not os.environ.get("KUBECONFIG") and not Path.home().joinpath(".kube/config").exists():
        pytest.exit("no cluster: set KUBECONFIG (make e2e starts a local one)", returncode=2)
    if shutil.which("kubectl") is None:
        pytest.exit("kubectl is not on PATH", returncode=2)
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established",
            "crd/resilientservices.resilience.dev", "--timeout=60s")


@pytest.fixture(scope="module")
def operator(cluster: None) -> Iterator[Operator]:
    """One operator per test module (modules that start their own never overlap with it)."""
    op = Operator().start()
    yield op
    op.stop()


@pytest.fixture
def ns(request: pytest.FixtureRequest, cluster: None) -> Iterator[str]:
    """A namespace of the test's own, deleted afterwards."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    name = f"e2e-{stem}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def has_kwok(cluster: None) -> bool:
    stage = get("stages.kwok.x-k8s.io", "fault-pod-not-ready") if kubectl(
        "api-resources", "--api-group=kwok.x-k8s.io", "-o", "name").stdout.strip() else None
    return stage is not None


@pytest.fixture
def kwok(has_kwok: bool) -> None:
    if not has_kwok:
        pytest.skip("needs KWOK fault-injection stages (e2e/stages); this cluster has none")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        op = item.funcargs.get("operator")
        if isinstance(op, Operator):
            report.sections.append(("operator log (tail)", op.log_tail()))


# -- building resources -------------------------------------------------------------------------


def rsvc(name: str, replicas: int = 3, **spec: Any) -> dict[str, Any]:
    """A ResilientService manifest with a one-container template."""
    body: dict[str, Any] = {
        "apiVersion": "resilience.dev/v1alpha1",
        "kind": "ResilientService",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{
                "name": "app", "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }]}},
            **spec,
        },
    }
    return body


def ready_pods(namespace: str, name: str) -> list[dict[str, Any]]:
    pods = get("pods", namespace=namespace, selector=f"app.kubernetes.io/instance={name}") or []
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and condition(p, "Ready").get("status") == "True"]


def live_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    pods = get("pods", namespace=namespace, selector=selector) or []
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


# -- a real Prometheus and the fake application (issue 9) ---------------------------------------


def _prometheus_home() -> tuple[Path, bool]:
    """The local cluster's Prometheus home (``e2e/cluster.sh down`` stops it), or, on another
    cluster, one of this session's own (stopped when the session ends): (home, session's own)."""
    kubeconfig = Path(os.environ.get("KUBECONFIG", ""))
    if kubeconfig.name == "kubeconfig.yaml" and (kubeconfig.parent / "kwok.yaml").exists():
        return kubeconfig.parent / "prometheus", False
    return LOGS / "prometheus", True


@pytest.fixture(scope="session")
def prometheus(cluster: None) -> Iterator[Prometheus]:
    """A real Prometheus on 127.0.0.1, scraping its targets every second and evaluating the
    shipped rules; built from Go modules on first use (several minutes, once)."""
    done = subprocess.run(["bash", str(ROOT / "e2e/cluster.sh"), "build-prometheus"],
                          stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        pytest.skip("Prometheus could not be built from Go modules "
                    "(e2e/cluster.sh build-prometheus failed; its output says why)")
    home, own = _prometheus_home()
    # on the local cluster, also the "pods" job: the PodMonitor's relabelling at work
    kubeconfig = None if own else os.environ["KUBECONFIG"]
    prom = Prometheus(home, done.stdout.strip().splitlines()[-1], kubeconfig).start()
    yield prom
    if own:
        prom.down()


@pytest.fixture
def scraped_operator(operator: Operator, prometheus: Prometheus) -> Iterator[Operator]:
    """The module's operator, scraped by Prometheus every second for the test's duration."""
    address = f"127.0.0.1:{operator.port}"
    prometheus.add_target("resilient-operator", str(operator.port), address)
    prometheus.wait_for_target(address)
    yield operator
    prometheus.remove_target("resilient-operator", str(operator.port))


@pytest.fixture(scope="session")
def fakeapp(prometheus: Prometheus) -> Iterator[FakeApp]:
    """The application behind every ResilientService (e2e/fakeapp.py), scraped by Prometheus.
    No traffic until a test sets some: ``fakeapp.set_traffic(ns, name, rps)``."""
    app = FakeApp(LOGS / "fakeapp.log").start()
    prometheus.add_target("fakeapp", str(app.port), app.address)
    prometheus.wait_for_target(app.address)
    yield app
    prometheus.remove_target("fakeapp", str(app.port))
    app.stop()
