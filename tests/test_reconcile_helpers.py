"""Drift detection and the work queue."""

from __future__ import annotations

import asyncio

from resilient_operator.policy.drift import differs
from resilient_operator.runtime.workqueue import WorkQueue


def test_differs_ignores_server_defaults_and_compares_quantities():
    wanted = {"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"name": "a", "resources": {"requests": {"cpu": "0.1", "memory": "1Gi"}}}]}}}}
    actual = {"metadata": {"resourceVersion": "9"}, "spec": {
        "replicas": 3, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [
            {"name": "a", "terminationMessagePath": "/dev/termination-log",
             "resources": {"requests": {"cpu": "100m", "memory": "1073741824"}}}]}}}}
    assert not differs(wanted, actual)


def test_differs_sees_drift():
    wanted = {"spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}}}}
    assert differs(wanted, {"spec": {"replicas": 5, "selector": {"matchLabels": {"a": "b"}}}})
    assert differs(wanted, {"spec": {"replicas": 3}})
    assert differs({"ports": [{"port": 80}]}, {"ports": [{"port": 80}, {"port": 81}]})


def test_workqueue_dedups_and_serialises_a_key():
    async def scenario():
        q = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        assert len(q) == 2
        key = await q.get()
        assert key == "a"
        q.add("a")  # re-added while processing: not handed out twice at once
        assert await q.get() == "b"
        q.done("b")
        q.done("a")
        assert await asyncio.wait_for(q.get(), 1) == "a"

    asyncio.run(scenario())


def test_workqueue_deadline_wakes_a_key():
    async def scenario():
        q = WorkQueue()
        q.add_after("k", 0.05)
        q.add_after("k", 10)  # a later deadline does not push out the earlier one
        assert await asyncio.wait_for(q.get(), 1) == "k"

    asyncio.run(scenario())


def test_stray_selector_keys_are_removed():
    from resilient_operator.policy.drift import stray_keys

    wanted = {"spec": {"selector": {"a": "1"}}}
    actual = {"spec": {"selector": {"a": "1", "app": "other"}}}
    assert stray_keys(wanted, actual, [("spec", "selector")]) == {
        "spec": {"selector": {"app": None}}}
    assert stray_keys(wanted, wanted, [("spec", "selector")]) == {}


def test_a_deadline_goes_ahead_of_the_backlog():
    async def scenario():
        q = WorkQueue()
        for i in range(5):
            q.add(f"status-{i}")
        q.add_after("heal", 0.01)
        await asyncio.sleep(0.05)
        assert await q.get() == "heal"
        q.done("heal")
        q.add("status-0", urgent=True)  # already queued: moves ahead, handed out once
        assert await q.get() == "status-0"
        q.done("status-0")
        rest = [await q.get() for _ in range(4)]
        assert rest == ["status-1", "status-2", "status-3", "status-4"]
        assert len(q) == 0

    asyncio.run(scenario())


def test_revision_hashes_that_look_like_numbers_are_compared_as_text():
    # "54e7303758" matches a float with a huge exponent: it is a hash, not a quantity
    assert differs({"a": "54e7303758"}, {"a": "12e99999999"})
    assert not differs({"a": "54e7303758"}, {"a": "54e7303758"})
    assert not differs({"cpu": "1e3"}, {"cpu": "1k"})


def test_release_counters_exist_at_zero_from_the_first_reconcile() -> None:
    from prometheus_client import REGISTRY

    from resilient_operator.reconcile.reconciler import Reconciler

    labels = {"namespace": "zero", "service": "fresh"}
    assert REGISTRY.get_sample_value("resilient_deployments_total", labels) is None
    Reconciler(world=None, api=None).memory(("zero", "fresh"))  # type: ignore[arg-type]
    assert REGISTRY.get_sample_value("resilient_deployments_total", labels) == 0
    assert REGISTRY.get_sample_value("resilient_change_failures_total", labels) == 0
    assert REGISTRY.get_sample_value("resilient_rollouts_total",
                                     {**labels, "result": "aborted"}) == 0
