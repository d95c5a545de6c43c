"""The application behind every ResilientService, as Prometheus sees it: a fake, on 127.0.0.1.

KWOK pods run nothing, so this process plays their application. It watches the pods the operator
manages (all namespaces, or one) and exports, for each pod of a service::

    http_requests_total{namespace, service, pod, track, code}          counter (code 200 or 500)
    http_request_duration_seconds_bucket/_sum/_count{namespace, service, pod, track}  histogram
    fakeapp_requests_per_second{namespace, service}                    gauge: the rate set
    fakeapp_ready_pods{namespace, service, track}                      gauge: pods taking traffic

The traffic a test sets for a service (requests per second) is spread evenly over its Ready
pods, as a Service spreads connections, so a canary's share of the replicas becomes its share of
the traffic. ``track`` is the pod's ``resilience.dev/track`` label (``stable`` when absent). Each
pod answers with the error ratio and latency of its own annotations, so a bad release is a
template with an error ratio::

    fakeapp.resilience.dev/error-ratio: "0.2"    # a fifth of its requests answer 500   [0]
    fakeapp.resilience.dev/latency: "250ms"      # every request takes this long        [50ms]

Counters grow continuously (they are integrated up to the moment of each scrape), so a rate
over any window is exact. A pod that is not Ready keeps its counters and gets no traffic; a
deleted pod's series disappear. With ``--cpu-per-rps`` (millicores per request/s) it also writes
KWOK's ``kwok.x-k8s.io/usage-cpu`` annotation of each pod in proportion to its traffic, so the
real HorizontalPodAutoscaler reacts to load.

Control, over HTTP on the same port::

    GET  /metrics                               the exposition above
    PUT  /traffic/<namespace>/<service>?rps=N   set a service's traffic (0 stops it)
    GET  /state                                 JSON: rates and pods (for a failing test's log)
    GET  /healthz                               200 once the first pod list is in

    python e2e/fakeapp.py --port 0 [--namespace NS] [--default-rps N] [--cpu-per-rps M]

``FakeApp`` below starts it as a process and drives it (the e2e ``fakeapp`` fixture).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MANAGED = "app.kubernetes.io/managed-by=resilient-operator"
INSTANCE = "app.kubernetes.io/instance"
TRACK = "resilience.dev/track"
ERROR_RATIO = "fakeapp.resilience.dev/error-ratio"
LATENCY = "fakeapp.resilience.dev/latency"
USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
DEFAULT_LATENCY = 0.05
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

log = logging.getLogger("fakeapp")


def parse_seconds(text: str | None, default: float) -> float:
    """"250ms", "1.5s" or "0.25" (seconds); ``default`` when absent or unreadable."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s)?\s*", text or "")
    if not m:
        return default
    try:
        value = float(m.group(1))
    except ValueError:
        return default
    return value / 1000 if m.group(2) == "ms" else value


def parse_ratio(text: str | None) -> float:
    try:
        return min(1.0, max(0.0, float(text or 0)))
    except ValueError:
        return 0.0


@dataclass
class Pod:
    """One pod's view (from its labels, annotations and conditions) and its counters."""

    namespace: str
    service: str
    name: str
    track: str
    ready: bool
    error_ratio: float
    latency: float
    requests: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    usage_written: str | None = None
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Pod | None:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        service = labels.get(INSTANCE)
        if not service:
            return None
        conditions = (obj.get("status") or {}).get("conditions") or []
        ready = not meta.get("deletionTimestamp") and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        return cls(namespace=meta["namespace"], service=service, name=meta["name"],
                   track=labels.get(TRACK) or "stable", ready=bool(ready),
                   error_ratio=parse_ratio(annotations.get(ERROR_RATIO)),
                   latency=parse_seconds(annotations.get(LATENCY), DEFAULT_LATENCY),
                   usage_written=annotations.get(USAGE_CPU))


class Traffic:
    """The pods, the rates, and the counters integrated over time. Thread-safe."""

    def __init__(self, default_rps: float = 0.0, clock: Any = time.monotonic) -> None:
        self.default_rps = default_rps
        self.rates: dict[tuple[str, str], float] = {}
        self.pods: dict[str, Pod] = {}  # by uid
        self.clock = clock
        self.last = clock()
        self.lock = threading.Lock()

    def rate(self, namespace: str, service: str) -> float:
        return self.rates.get((namespace, service), self.default_rps)

    def shares(self) -> dict[str, float]:
        """Requests per second each Ready pod gets now (by uid): the rate over the Ready pods."""
        ready: dict[tuple[str, str], list[str]] = {}
        for uid, pod in self.pods.items():
            if pod.ready:
                ready.setdefault((pod.namespace, pod.service), []).append(uid)
        return {uid: self.rate(*key) / len(uids) for key, uids in ready.items() for uid in uids}

    def _advance(self) -> None:
        now = self.clock()
        dt, self.last = max(0.0, now - self.last), now
        for uid, share in self.shares().items():
            pod, n = self.pods[uid], share * dt
            pod.requests += n
            pod.errors += n * pod.error_ratio
            pod.duration_sum += n * pod.latency
            for i, le in enumerate(BUCKETS):
                if pod.latency <= le:
                    pod.buckets[i] += n

    def upsert(self, uid: str, pod: Pod) -> None:
        with self.lock:
            self._advance()
            old = self.pods.get(uid)
            if old is not None:  # same pod: keep its counters
                pod.requests, pod.errors = old.requests, old.errors
                pod.duration_sum, pod.buckets = old.duration_sum, old.buckets
            self.pods[uid] = pod

    def remove(self, uid: str) -> None:
        with self.lock:
            self._advance()
            self.pods.pop(uid, None)

    def replace_all(self, pods: dict[str, Pod]) -> None:
        """A fresh list (start, or a watch that expired): keep the counters of known pods."""
        with self.lock:
            self._advance()
            for uid, pod in pods.items():
                old = self.pods.get(uid)
                if old is not None:
                    pod.requests, pod.errors = old.requests, old.errors
                    pod.duration_sum, pod.buckets = old.duration_sum, old.buckets
            self.pods = pods

    def set_rate(self, namespace: str, service: str, rps: float) -> None:
        with self.lock:
            self._advance()
            self.rates[(namespace, service)] = rps

    def exposition(self) -> str:
        with self.lock:
            self._advance()
            pods = sorted(self.pods.values(), key=lambda p: (p.namespace, p.service, p.name))
            rates = dict(self.rates)
        out = ["# HELP http_requests_total Requests answered by the pod (simulated).",
               "# TYPE http_requests_total counter"]
        for p in pods:
            base = _labels(namespace=p.namespace, service=p.service, pod=p.name, track=p.track)
            out.append(f"http_requests_total{{{base},code=\"200\"}} {p.requests - p.errors!r}")
            out.append(f"http_requests_total{{{base},code=\"500\"}} {p.errors!r}")
        out += ["# HELP http_request_duration_seconds Time to answer a request (simulated).",
                "# TYPE http_request_duration_seconds histogram"]
        for p in pods:
            base = _labels(namespace=p.namespace, service=p.service, pod=p.name, track=p.track)
            for le, count in zip(BUCKETS, p.buckets, strict=True):
                out.append(f"http_request_duration_seconds_bucket{{{base},le=\"{le}\"}} {count!r}")
            out.append(f"http_request_duration_seconds_bucket{{{base},le=\"+Inf\"}} "
                       f"{p.requests!r}")
            out.append(f"http_request_duration_seconds_sum{{{base}}} {p.duration_sum!r}")
            out.append(f"http_request_duration_seconds_count{{{base}}} {p.requests!r}")
        out += ["# HELP fakeapp_requests_per_second Traffic set for the service.",
                "# TYPE fakeapp_requests_per_second gauge"]
        for (ns, svc), rps in sorted(rates.items()):
            out.append(f"fakeapp_requests_per_second{{{_labels(namespace=ns, service=svc)}}} "
                       f"{rps!r}")
        out += ["# HELP fakeapp_ready_pods Pods taking traffic.",
                "# TYPE fakeapp_ready_pods gauge"]
        counts: dict[tuple[str, str, str], int] = {}
        for p in pods:
            key = (p.namespace, p.service, p.track)
            counts[key] = counts.get(key, 0) + (1 if p.ready else 0)
        for (ns, svc, track), n in sorted(counts.items()):
            out.append(f"fakeapp_ready_pods{{{_labels(namespace=ns, service=svc, track=track)}}}"
                       f" {n}")
        return "\n".join(out) + "\n"

    def state(self) -> dict[str, Any]:
        with self.lock:
            self._advance()
            shares = self.shares()
            return {
                "rates": {f"{ns}/{svc}": r for (ns, svc), r in self.rates.items()},
                "default_rps": self.default_rps,
                "pods": [{"namespace": p.namespace, "service": p.service, "pod": p.name,
                          "track": p.track, "ready": p.ready, "rps": shares.get(uid, 0.0),
                          "error_ratio": p.error_ratio, "latency": p.latency,
                          "requests": p.requests}
                         for uid, p in self.pods.items()],
            }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


# -- watching the pods ----------------------------------------------------------------------------


class PodWatch:
    """List, then watch, the operator's pods; list again when the watch expires or fails."""

    def __init__(self, traffic: Traffic, namespace: str | None = None,
                 cpu_per_rps: float | None = None) -> None:
        from kubernetes import client, config  # the process needs them, the fixture does not

        config.load_kube_config()
        self.api = client.CoreV1Api()
        self.client = client
        self.traffic = traffic
        self.namespace = namespace
        self.cpu_per_rps = cpu_per_rps
        self.synced = threading.Event()

    def _list(self, **kw: Any) -> Any:
        if self.namespace:
            return self.api.list_namespaced_pod(self.namespace, label_selector=MANAGED,
                                                _preload_content=False, **kw)
        return self.api.list_pod_for_all_namespaces(label_selector=MANAGED,
                                                    _preload_content=False, **kw)

    def run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        while True:
            try:
                body = json.loads(self._list(_request_timeout=(5, 60)).data)
                pods = {}
                for obj in body["items"]:
                    pod = Pod.from_object(obj)
                    if pod is not None:
                        pods[obj["metadata"]["uid"]] = pod
                self.traffic.replace_all(pods)
                self.synced.set()
                self.write_usage()
                self._watch(body["metadata"]["resourceVersion"])
            except ApiException as e:
                if e.status != 410:
                    log.warning("pod watch failed: %s; listing again in 1 s", e.reason)
                    time.sleep(1)
            except Exception as e:  # noqa: BLE001 - a watch must outlive any hiccup
                log.warning("pod watch failed: %s; listing again in 1 s", e)
                time.sleep(1)

    def _watch(self, resource_version: str) -> None:
        # the server ends the watch after 300 s; a connection that went silent (an API server
        # outage) is given up 30 s later, and the pods are listed again
        resp = self._list(watch=True, resource_version=resource_version,
                          allow_watch_bookmarks=True, timeout_seconds=300,
                          _request_timeout=(5, 330))
        buf = b""
        for chunk in resp.stream(amt=65536, decode_content=True):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":  # 410 Gone: list again
                    return
                if kind == "BOOKMARK":
                    continue
                uid = obj["metadata"]["uid"]
                pod = Pod.from_object(obj)
                if kind == "DELETED" or pod is None:
                    self.traffic.remove(uid)
                else:
                    self.traffic.upsert(uid, pod)
                self.write_usage()

    def write_usage(self) -> None:
        """KWOK's CPU usage of each pod, in proportion to its traffic (``--cpu-per-rps``)."""
        if self.cpu_per_rps is None:
            return
        with self.traffic.lock:
            shares = self.traffic.shares()
            todo = []
            for uid, pod in self.traffic.pods.items():
                want = f"{round(shares.get(uid, 0.0) * self.cpu_per_rps)}m"
                if pod.usage_written != want:
                    pod.usage_written = want
                    todo.append((pod.namespace, pod.name, want))
        for ns, name, want in todo:
            try:
                self.api.patch_namespaced_pod(
                    name, ns, {"metadata": {"annotations": {USAGE_CPU: want}}})
            except self.client.exceptions.ApiException as e:
                if e.status != 404:
                    log.warning("could not write %s of %s/%s: %s", USAGE_CPU, ns, name, e.reason)


# -- the HTTP side ---------------------------------------------------------------------------------


def serve(traffic: Traffic, watch: PodWatch | None, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: str, ctype: str = "text/plain; version=0.0.4") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = urllib.parse.urlsplit(self.path).path
            if path == "/metrics":
                self._send(200, traffic.exposition())
            elif path == "/state":
                self._send(200, json.dumps(traffic.state(), indent=1), "application/json")
            elif path == "/healthz":
                synced = watch is None or watch.synced.is_set()
                self._send(200 if synced else 503, "ok\n" if synced else "listing pods\n")
            else:
                self._send(404, "not found\n")

        def do_PUT(self) -> None:  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            query = urllib.parse.parse_qs(url.query)
            if len(parts) != 3 or parts[0] != "traffic" or "rps" not in query:
                self._send(400, "PUT /traffic/<namespace>/<service>?rps=N\n")
                return
            try:
                rps = float(query["rps"][0])
            except ValueError:
                self._send(400, "rps must be a number\n")
                return
            traffic.set_rate(parts[1], parts[2], max(0.0, rps))
            if watch is not None:
                watch.write_usage()
            self._send(200, "ok\n")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per scrape every second is noise

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--namespace", help="watch one namespace (default: all)")
    parser.add_argument("--default-rps", type=float, default=0.0,
                        help="traffic of a service no one set a rate for")
    parser.add_argument("--cpu-per-rps", type=float, default=None,
                        help="write kwok.x-k8s.io/usage-cpu: this many millicores per request/s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    traffic = Traffic(default_rps=args.default_rps)
    watch = PodWatch(traffic, args.namespace, args.cpu_per_rps)
    server = serve(traffic, watch, args.port)
    threading.Thread(target=watch.run, name="pod-watch", daemon=True).start()
    log.info("listening on 127.0.0.1:%d", server.server_address[1])
    server.serve_forever()
    return 0


# -- the e2e side ----------------------------------------------------------------------------------


class FakeApp:
    """The fake application as a separate process, driven over HTTP (the ``fakeapp`` fixture)."""

    def __init__(self, log_path: Path, namespace: str | None = None,
                 default_rps: float = 0.0, cpu_per_rps: float | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.log_path = log_path
        self.args = ["--port", str(self.port), "--default-rps", str(default_rps)]
        if namespace:
            self.args += ["--namespace", namespace]
        if cpu_per_rps is not None:
            self.args += ["--cpu-per-rps", str(cpu_per_rps)]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> FakeApp:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(self.log_path, "wb")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__)), *self.args],
                                     stdout=log_file, stderr=subprocess.STDOUT,
                                     env=dict(os.environ), start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._get("/healthz"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fakeapp did not start; see {self.log_path}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://{self.address}{path}", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return None

    def set_traffic(self, namespace: str, service: str, rps: float) -> None:
        """Spread ``rps`` requests per second over the service's Ready pods from now on."""
        req = urllib.request.Request(
            f"http://{self.address}/traffic/{urllib.parse.quote(namespace)}/"
            f"{urllib.parse.quote(service)}?rps={rps}", method="PUT")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self._get("/state") or "{}"))

    def metrics_text(self) -> str:
        return self._get("/metrics") or ""


if __name__ == "__main__":
    sys.exit(main())
