"""A real Prometheus for the local cluster and the e2e tests: started, scraped, queried, stopped.

The binaries are built from Go modules by ``e2e/cluster.sh build-prometheus``. This module
only runs them; it needs nothing but the standard library, so ``e2e/cluster.sh`` runs it with
the system python3, and the e2e fixtures import it.

A Prometheus lives in a home directory (the local cluster's is ``<cluster>/prometheus``)::

    home/prometheus.yml     the configuration (written at every start)
    home/port               its port on 127.0.0.1, chosen once: a restart keeps its address
    home/prometheus.pid     the pid of the running server
    home/data/              the TSDB (kept across a restart, removed by ``down``)
    home/targets/           file-based discovery: what it scrapes, every second
        operator-*.json       job "resilient-operator" (the operator's /metrics)
        fakeapp-*.json        job "fakeapp" (e2e/fakeapp.py; its labels are kept as exported)
    and, given the cluster's kubeconfig, job "pods": the ResilientServices' pods, discovered and
    relabelled as the PodMonitor of the prometheus overlay does (their addresses are not scraped)
    home/prometheus.log     its output

Targets are added and removed by writing and deleting those files (``add_target``,
``remove_target``); Prometheus notices within a second or two, no reload needed. The rule files
of ``manifests/overlays/prometheus/rules`` are loaded and evaluated every second.

Usage (``e2e/cluster.sh`` runs these):

    prometheus.py up HOME BIN_DIR [KUBECONFIG]   start it unless it runs (with a target for
                                      `make run`'s operator, 127.0.0.1:8080, and with KUBECONFIG
                                      the "pods" job); print export lines
    prometheus.py down HOME           stop it and remove its data
    prometheus.py status HOME         exit 0 and print its URL when it answers
    prometheus.py env HOME            print export lines when it runs
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "manifests/overlays/prometheus/rules"
SCRAPE_INTERVAL = "1s"
JOBS = {
    # job name: (targets file pattern, honor the exported labels)
    "resilient-operator": ("operator-*.json", False),
    "fakeapp": ("fakeapp-*.json", True),
}
# The relabelling of manifests/overlays/prometheus/podmonitor.yaml, as a scrape config writes it
# (tests/test_prometheus_rules.py checks the two agree): service and track labels from the pods'
# labels, track "stable" when the pod has none.
POD_RELABELING: list[dict[str, Any]] = [
    {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
     "target_label": "service"},
    {"source_labels": ["__meta_kubernetes_pod_label_resilience_dev_track"],
     "regex": "(.+)", "target_label": "track"},
    {"source_labels": ["__meta_kubernetes_pod_label_resilience_dev_track"],
     "regex": "", "target_label": "track", "replacement": "stable"},
]
# What the Prometheus Operator adds to every PodMonitor target
POD_MONITOR_LABELS: list[dict[str, Any]] = [
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
]
# KWOK pods have made-up IPs that nothing answers on (and that must not be sent traffic): the
# "pods" job shows the labels the relabelling gives each pod, and scrapes a closed local port.
NOWHERE = "127.0.0.1:9"


class PrometheusError(RuntimeError):
    """Prometheus answered with an error, or not at all."""


class Prometheus:
    """One Prometheus server with its home directory (see the module docstring)."""

    def __init__(self, home: Path | str, bin_dir: Path | str | None = None,
                 kubeconfig: Path | str | None = None) -> None:
        self.home = Path(home)
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.targets = self.home / "targets"

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port, chosen once per home so a restarted server keeps its address."""
        path = self.home / "port"
        if path.exists():
            return int(path.read_text())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        self.home.mkdir(parents=True, exist_ok=True)
        path.write_text(str(port))
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        """The pid of this home's running server, None when none runs."""
        try:
            pid = int((self.home / "prometheus.pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        # a pid file can outlive its process and the pid be reused: check it is ours
        if str(self.home).encode() not in cmdline:
            return None
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return None
        return pid

    def config(self) -> dict[str, Any]:
        scrape_configs = []
        for job, (pattern, honor_labels) in JOBS.items():
            scrape_configs.append({
                "job_name": job,
                "honor_labels": honor_labels,
                "file_sd_configs": [{"files": [str(self.targets / pattern)],
                                     "refresh_interval": "5s"}],
            })
        if self.kubeconfig is not None:
            # the pods of every ResilientService, discovered like the PodMonitor discovers them
            scrape_configs.append({
                "job_name": "pods",
                "scrape_interval": "1m",
                "kubernetes_sd_configs": [{
                    "role": "pod", "kubeconfig_file": str(self.kubeconfig),
                    "selectors": [{"role": "pod",
                                   "label": "app.kubernetes.io/managed-by=resilient-operator"}],
                }],
                "relabel_configs": [*POD_MONITOR_LABELS, *POD_RELABELING,
                                    {"target_label": "__address__", "replacement": NOWHERE}],
            })
        return {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                       "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(RULES_DIR / "*.yaml")],
            "scrape_configs": scrape_configs,
        }

    def start(self, timeout: float = 60) -> Prometheus:
        """Start the server unless it runs; wait until it is ready."""
        try:
            return self._start(timeout)
        except PrometheusError as e:
            if "address already in use" not in str(e):
                raise
        # the remembered port was taken while the server was down: choose another
        (self.home / "port").unlink(missing_ok=True)
        return self._start(timeout)

    def _start(self, timeout: float) -> Prometheus:
        proc: subprocess.Popen[bytes] | None = None
        log_path = self.home / "prometheus.log"
        offset = 0
        if self.pid() is None:
            if self.bin_dir is None:
                raise PrometheusError("no Prometheus runs here and no binary was given")
            self.targets.mkdir(parents=True, exist_ok=True)
            # JSON is YAML: the configuration needs no YAML library
            (self.home / "prometheus.yml").write_text(json.dumps(self.config(), indent=1))
            log = open(log_path, "ab")  # noqa: SIM115 - the process owns it
            offset = log.tell()  # from here on: what this start writes, for an error message
            proc = subprocess.Popen(
                [str(self.bin_dir / "prometheus"),
                 f"--config.file={self.home / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.home / 'data'}",
                 "--storage.tsdb.retention.time=1d",
                 f"--web.listen-address=127.0.0.1:{self.port}",
                 "--web.enable-lifecycle",
                 "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.home, start_new_session=True)
            log.close()
            (self.home / "prometheus.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while not self.ready():
            exited = proc.poll() is not None if proc is not None else self.pid() is None
            if exited or time.monotonic() > deadline:
                if proc is not None and proc.poll() is None:
                    proc.kill()  # never leave a server behind that was not ready in time
                    proc.wait()
                output = ""
                with contextlib.suppress(OSError):
                    output = log_path.read_bytes()[offset:].decode(errors="replace")
                why = "exited" if exited else f"was not ready after {timeout}s"
                raise PrometheusError(f"Prometheus {why}; see {log_path}:\n"
                                      + "\n".join(output.splitlines()[-30:]))
            time.sleep(0.2)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        """Stop the server (SIGKILL after ``timeout``); its data and port stay."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while self.pid() is not None:
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        with contextlib.suppress(OSError, ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it was our child

    def kill(self) -> None:
        """SIGKILL: an outage, as a test of what depends on Prometheus makes one."""
        self.stop(signal.SIGKILL)

    def down(self) -> None:
        """Stop the server and remove its data and targets (the port is kept)."""
        self.stop()
        for path in [*self.targets.glob("*.json"), self.home / "prometheus.pid"]:
            path.unlink(missing_ok=True)
        shutil.rmtree(self.home / "data", ignore_errors=True)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.home / "prometheus.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def env(self) -> str:
        return (f"export PROMETHEUS_URL={self.url}\n"
                f"export PROMETHEUS_TARGETS={self.targets}\n")

    # -- targets --------------------------------------------------------------------------------

    def add_target(self, job: str, name: str, address: str, **labels: str) -> Path:
        """Scrape ``address`` (host:port) every second as job ``job`` ("resilient-operator" or
        "fakeapp"); ``name`` names the targets file, ``labels`` are added to every series."""
        pattern, _ = JOBS[job]
        path = self.targets / pattern.replace("*", name)
        self.targets.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [address], "labels": labels}]))
        tmp.rename(path)  # atomically: discovery never reads half a file
        return path

    def remove_target(self, job: str, name: str) -> None:
        pattern, _ = JOBS[job]
        (self.targets / pattern.replace("*", name)).unlink(missing_ok=True)

    def wait_for_target(self, address: str, timeout: float = 30) -> None:
        """Wait until ``address`` has been scraped successfully."""
        deadline = time.monotonic() + timeout
        health = "unknown"
        while time.monotonic() < deadline:
            for t in self.api("targets", state="active").get("activeTargets", []):
                if t.get("scrapeUrl", "").startswith(f"http://{address}/"):
                    health = t.get("health", "unknown")
                    if health == "up":
                        return
            time.sleep(0.5)
        raise PrometheusError(f"target {address} not up after {timeout}s (health: {health})")

    # -- queries --------------------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the ``data`` of a successful answer."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            body = json.load(e)
        except OSError as e:
            raise PrometheusError(f"Prometheus at {self.url} does not answer: {e}") from e
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query: (labels, value) of each series of the result."""
        data = self.api("query", query=promql)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def value(self, promql: str) -> float | None:
        """The value of a query that yields at most one series; None when it yields none."""
        result = self.query(promql)
        if len(result) > 1:
            raise PrometheusError(f"{promql} yields {len(result)} series, not one: {result}")
        return result[0][1] if result else None

    def wait_value(self, what: str, promql: str, predicate: Any, timeout: float = 60) -> float:
        """Poll a one-series query until ``predicate(value)`` holds; its value."""
        deadline = time.monotonic() + timeout
        last: float | None = None
        while time.monotonic() < deadline:
            last = self.value(promql)
            if last is not None and not math.isnan(last) and predicate(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}: {promql} = {last}")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("up", "down", "status", "env"):
        print(__doc__, file=sys.stderr)
        return 2
    prom = Prometheus(argv[1], argv[2] if len(argv) > 2 else None,
                      argv[3] if len(argv) > 3 else None)
    if argv[0] == "up":
        # `make run` serves the operator's metrics on :8080
        prom.add_target("resilient-operator", "run", "127.0.0.1:8080")
        try:
            prom.start()
        except PrometheusError as e:
            print(f"[prometheus] {e}", file=sys.stderr)
            return 1
        print(f"[prometheus] ready at {prom.url}, scraping {prom.targets}/*.json every "
              f"{SCRAPE_INTERVAL}", file=sys.stderr)
        print(prom.env(), end="")
    elif argv[0] == "down":
        prom.down()
    elif argv[0] == "status":
        if not prom.ready():
            print("prometheus: not running")
            return 1
        # (one line after the component table of `cluster.sh status`, and unlike its rows)
        print(f"prometheus at {prom.url}: running, pid {prom.pid()}")
    elif argv[0] == "env" and prom.ready():
        print(prom.env(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
