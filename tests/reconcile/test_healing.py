"""The healing actor: decision state in status, intent written before acting, nothing twice."""

from __future__ import annotations

from resilient_operator.kube.api import ApiError
from resilient_operator.resource.times import format_time

from .conftest import NOW, Harness, pod, resource, settle
from .fake import FakeApi


def _world_with_a_sick_pod(h: Harness) -> None:
    h.api.put(resource(healing={"notReadyTimeout": "60s", "cooldown": "30s"}))
    for name in ("p1", "p2", "p3"):
        h.api.put(pod(name))
    h.api.put(pod("sick", ready=False, since=NOW - 120))
    h.reconcile()
    settle(h.api, replicas=4)


def test_the_intent_is_in_status_before_the_eviction_is_sent(h: Harness):
    _world_with_a_sick_pod(h)
    verbs = [c.verb for c in h.api.calls]
    evict = verbs.index("evict")
    checkpoint = h.api.calls[verbs.index("patch-status")]
    assert verbs.index("patch-status") < evict
    healing = checkpoint.body["healing"]
    assert [r["pod"] for r in healing["inFlight"]] == ["sick"]
    assert healing["podsReplaced"] == 1 and "lastHealTime" in healing
    assert ("Normal", "PodReplaced") in [(t, r) for t, r, _ in h.api.events]


def test_a_restarted_operator_does_not_heal_again_within_the_cooldown(h: Harness):
    _world_with_a_sick_pod(h)
    h.api.put(pod("sick2", ready=False, since=NOW - 120))
    h.restart()
    h.clock.now += 5
    h.api.calls.clear()
    h.reconcile()
    assert [c for c in h.api.calls if c.verb == "evict"] == []
    assert h.status()["healing"]["podsReplaced"] == 1
    # the replacement is Ready: the heal is done and frees its slot; the cooldown has passed
    h.api.put(pod("new", since=NOW + 3, metadata={"creationTimestamp": format_time(NOW + 1)}))
    h.clock.now += 30
    h.reconcile()
    assert h.status()["healing"].get("inFlight", []) == [] or \
        [r["pod"] for r in h.status()["healing"]["inFlight"]] == ["sick2"]
    assert [c.name for c in h.api.calls if c.verb == "evict"] == ["sick2"]
    assert h.status()["healing"]["podsReplaced"] == 2


def test_a_lagging_cache_does_not_make_the_operator_heal_twice(h: Harness):
    _world_with_a_sick_pod(h)
    # the cache still shows the resource as it was before our status writes, and the pod
    h.api.calls.clear()
    h.api.put(pod("sick", ready=False, since=NOW - 120))
    h.world.set_pod(h.api.obj("Pod", "sick"), False)
    h.clock.now += 1
    h.reconcile(feed=False)
    assert [c for c in h.api.calls if c.verb == "evict"] == []


def test_an_intent_that_was_never_carried_out_is_sent_once_for_the_same_pod(h: Harness):
    _world_with_a_sick_pod(h)
    # the operator died after writing the intent: the pod is still there
    h.api.put(pod("sick", ready=False, since=NOW - 120))
    h.restart()
    h.clock.now += 10
    h.api.calls.clear()
    h.reconcile()
    assert [c.name for c in h.api.calls if c.verb == "evict"] == ["sick"]
    assert h.status()["healing"]["podsReplaced"] == 1  # the same heal, counted once


def test_a_blocked_eviction_holds_no_budget_and_no_cooldown(h: Harness):
    h.api.refuse[("evict", "Pod")] = ApiError(429, "TooManyRequests", "budget")
    _world_with_a_sick_pod(h)
    healing = h.status()["healing"]
    assert healing.get("inFlight", []) == [] and healing["podsReplaced"] == 0
    assert "lastHealTime" not in healing
    del h.api.refuse[("evict", "Pod")]
    h.clock.now += 5
    h.reconcile()
    assert [c.name for c in h.api.calls if c.verb == "evict"][-1] == "sick"
    assert h.status()["healing"]["podsReplaced"] == 1


def test_one_sick_pod_of_a_one_replica_service_is_healed(h: Harness):
    h.api.put(resource(replicas=1))
    h.api.put(pod("only", ready=False, since=NOW - 120))
    h.reconcile()
    assert [c.name for c in h.api.calls if c.verb == "evict"] == ["only"]


def test_a_pod_the_cache_still_has_but_the_api_server_does_not_is_not_healed_again(h: Harness):
    _world_with_a_sick_pod(h)  # "sick" evicted once
    # the cache missed the deletion (it happened before the watches started)
    h.world.set_pod(pod("sick", ready=False, since=NOW - 120), False)
    h.clock.now += 60
    h.api.calls.clear()
    h.reconcile(feed=False)
    assert h.status()["healing"]["podsReplaced"] == 1  # the 404 is not a second heal
    assert [r["pod"] for r in h.status()["healing"].get("inFlight", [])] in ([], ["sick"])
    assert "sick" not in [p.name for p in h.world.pods_of(("shop", "web"))]
    h.api.calls.clear()
    h.reconcile(feed=False)
    assert [c for c in h.api.calls if c.verb == "evict"] == []


def test_the_sweep_drops_what_was_deleted_between_the_priming_list_and_the_watches():
    from resilient_operator.kube.world import World

    api = FakeApi()
    api.put(resource())
    api.put(pod("kept"))
    api.put(pod("deleted-in-the-gap"))
    world = World()
    world.prime(api, [])
    del api.objects[("Pod", "shop", "deleted-in-the-gap")]
    world.set_pod(api.obj("Pod", "kept"), False)  # the watch's own listing saw this one
    assert world.sweep(api, []) == {("shop", "web")}
    assert [p.name for p in world.pods_of(("shop", "web"))] == ["kept"]
    assert world.unconfirmed() == 1  # the resource: present, not yet seen by its watch
