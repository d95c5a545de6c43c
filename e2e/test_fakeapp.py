"""The fake application's capacity model: traffic becomes KWOK CPU usage, so the real
HorizontalPodAutoscaler (through the ResilientService's scale subresource) reacts to load."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import LOGS, FakeApp, Operator, apply, get, kubectl, ready_pods, rsvc, wait_for

pytestmark = pytest.mark.usefixtures("kwok")
USAGE = "kwok.x-k8s.io/usage-cpu"


@pytest.fixture
def loaded_app(ns: str) -> Iterator[FakeApp]:
    """The fake app of this namespace, 5 millicores per request/s."""
    app = FakeApp(LOGS / "fakeapp-capacity.log", namespace=ns, cpu_per_rps=5).start()
    yield app
    app.stop()


def test_traffic_drives_the_autoscaler_and_spreads_over_the_new_pods(
        ns: str, operator: Operator, loaded_app: FakeApp) -> None:
    if not kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1", check=False).stdout:
        pytest.skip("no metrics API on this cluster")
    # given two pods requesting 100m each, autoscaled to 50% CPU, and no traffic
    apply(rsvc("web", 2, autoscaling={
        "minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 50,
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0}}}), ns)
    wait_for("2 ready pods", lambda: len(ready_pods(ns, "web")) == 2, timeout=60)

    # when 40 requests/s arrive: 20 per pod, 100m each, twice the target
    loaded_app.set_traffic(ns, "web", 40)
    wait_for("100m of CPU on each pod", lambda: sorted(
        p["metadata"]["annotations"].get(USAGE, "") for p in ready_pods(ns, "web"))
        == ["100m", "100m"], timeout=20)

    # then the HPA doubles the service, and the traffic spread over 4 pods is back on target
    wait_for("4 replicas", lambda: get("rsvc", "web", ns)["spec"]["replicas"] == 4,
             timeout=150, interval=2)
    wait_for("4 ready pods at 50m each", lambda: sorted(
        (p["metadata"].get("annotations") or {}).get(USAGE, "")
        for p in ready_pods(ns, "web")) == ["50m"] * 4, timeout=60)
