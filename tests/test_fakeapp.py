"""The fake application's traffic model (e2e/fakeapp.py), with a fixed clock and no cluster."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.fakeapp import Pod, Traffic, parse_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pod_object(name: str, ready: bool = True, track: str | None = None,
               annotations: dict[str, str] | None = None, namespace: str = "shop",
               service: str = "web") -> dict[str, Any]:
    labels = {"app.kubernetes.io/instance": service,
              "app.kubernetes.io/managed-by": "resilient-operator"}
    if track:
        labels["resilience.dev/track"] = track
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "labels": labels, "annotations": annotations or {}},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def add(traffic: Traffic, obj: dict[str, Any]) -> None:
    pod = Pod.from_object(obj)
    assert pod is not None
    traffic.upsert(obj["metadata"]["uid"], pod)


def samples(text: str, name: str, **labels: str) -> float:
    """Sum of the exposition's samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{"):
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
    return total


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_the_rate_is_spread_over_the_ready_pods_so_replica_ratio_becomes_traffic_share(
        clock: Clock) -> None:
    traffic = Traffic(clock=clock)
    add(traffic, pod_object("web-1"))
    add(traffic, pod_object("web-2"))
    add(traffic, pod_object("web-canary-1", track="canary"))
    add(traffic, pod_object("web-3", ready=False))
    traffic.set_rate("shop", "web", 30)
    clock.now += 10
    text = traffic.exposition()
    assert samples(text, "http_requests_total", track="stable") == pytest.approx(200)
    assert samples(text, "http_requests_total", track="canary") == pytest.approx(100)
    assert samples(text, "http_requests_total", pod="web-3") == 0
    assert samples(text, "fakeapp_ready_pods", track="stable") == 2


def test_errors_and_latency_come_from_the_pods_annotations(clock: Clock) -> None:
    traffic = Traffic(clock=clock)
    add(traffic, pod_object("web-1"))
    add(traffic, pod_object("web-canary-1", track="canary", annotations={
        "fakeapp.resilience.dev/error-ratio": "0.2",
        "fakeapp.resilience.dev/latency": "300ms"}))
    traffic.set_rate("shop", "web", 10)
    clock.now += 10
    text = traffic.exposition()
    assert samples(text, "http_requests_total", track="canary", code="500") == pytest.approx(10)
    assert samples(text, "http_requests_total", track="canary", code="200") == pytest.approx(40)
    assert samples(text, "http_requests_total", track="stable", code="500") == 0
    # every canary request took 300 ms: none within 250 ms, all within 500 ms
    bucket = "http_request_duration_seconds_bucket"
    assert samples(text, bucket, track="canary", le="0.25") == 0
    assert samples(text, bucket, track="canary", le="0.5") == pytest.approx(50)
    assert samples(text, bucket, track="stable", le="0.05") == pytest.approx(50)
    assert samples(text, "http_request_duration_seconds_sum", track="canary") == \
        pytest.approx(15)


def test_counters_survive_a_pod_update_and_a_relist_and_go_with_the_pod(clock: Clock) -> None:
    traffic = Traffic(clock=clock)
    add(traffic, pod_object("web-1"))
    traffic.set_rate("shop", "web", 5)
    clock.now += 2
    add(traffic, pod_object("web-1", ready=False))  # not ready: keeps its count, gets nothing
    clock.now += 2
    assert samples(traffic.exposition(), "http_requests_total", pod="web-1") == \
        pytest.approx(10)
    ready = Pod.from_object(pod_object("web-1"))
    assert ready is not None
    traffic.replace_all({"uid-web-1": ready})
    clock.now += 1
    assert samples(traffic.exposition(), "http_requests_total", pod="web-1") == \
        pytest.approx(15)
    traffic.remove("uid-web-1")
    assert "web-1" not in traffic.exposition()


def test_no_traffic_means_counters_at_zero_not_missing(clock: Clock) -> None:
    traffic = Traffic(clock=clock)
    add(traffic, pod_object("web-1"))
    clock.now += 5
    text = traffic.exposition()
    assert 'http_requests_total{namespace="shop",service="web",pod="web-1",track="stable",' \
           'code="200"} 0.0' in text


def test_a_rate_applies_to_its_own_service_only(clock: Clock) -> None:
    traffic = Traffic(default_rps=1, clock=clock)
    add(traffic, pod_object("web-1"))
    add(traffic, pod_object("api-1", service="api"))
    traffic.set_rate("shop", "web", 10)
    clock.now += 1
    text = traffic.exposition()
    assert samples(text, "http_requests_total", service="web") == pytest.approx(10)
    assert samples(text, "http_requests_total", service="api") == pytest.approx(1)


def test_durations_read_like_kubernetes_ones() -> None:
    assert parse_seconds("250ms", 1) == 0.25
    assert parse_seconds("2s", 1) == 2
    assert parse_seconds("0.5", 1) == 0.5
    assert parse_seconds("soon", 1) == 1
    assert parse_seconds(None, 0.05) == 0.05
