"""/readyz says whether the replica can act or take over; /metrics serves Prometheus."""

from __future__ import annotations

import urllib.error
import urllib.request

from resilient_operator.runtime import health
from resilient_operator.runtime.leader import LeaderElector


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_readyz_follows_the_readiness_and_metrics_are_served():
    state = {"ok": False}
    server = health.serve("127.0.0.1", 0, lambda: (state["ok"], "why: " + str(state["ok"])))
    port = server.server_address[1]
    try:
        assert _get(port, "/readyz") == (503, "why: False\n")
        state["ok"] = True
        assert _get(port, "/readyz") == (200, "why: True\n")
        code, text = _get(port, "/metrics")
        assert code == 200 and "resilient_reconciles_total" in text
        assert _get(port, "/nope")[0] == 404
    finally:
        server.shutdown()


def test_a_replica_that_cannot_reach_the_api_server_is_not_ready():
    now = [1000.0]
    elector = LeaderElector(object(), "ns", "lease", "me", lambda: now[0],  # type: ignore[arg-type]
                            retry_seconds=2.0)
    assert not elector.ready()[0]  # no round answered yet
    elector.answered_at = now[0]
    assert elector.ready() == (True, "standby, ready to take over")
    now[0] += 7  # more than three rounds without an answer
    assert not elector.ready()[0]
    assert LeaderElector(None, "ns", "lease", "me", lambda: 0.0).ready()[0]
