"""The operator's HTTP endpoint: /metrics for Prometheus and /readyz for the kubelet.

Ready means "ready to act or to take over": the watch cache is primed, and the replica can
reach the API server (its last leader-election round got an answer). Liveness stays kopf's own
/healthz on another port, so a replica that is alive but cut off from the API server is taken
out of the Service's endpoints without being restarted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client


def serve(address: str, port: int, ready: Callable[[], tuple[bool, str]]) -> ThreadingHTTPServer:
    """Start the endpoint in a daemon thread; return the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body = prometheus_client.generate_latest()
                self._send(200, body, prometheus_client.CONTENT_TYPE_LATEST)
            elif path == "/readyz":
                ok, why = ready()
                self._send(200 if ok else 503, why.encode() + b"\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:  # scrapes are not worth a log line
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
