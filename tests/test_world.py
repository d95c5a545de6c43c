"""The watch cache: pods and nodes as healing sees them, and who a node change concerns."""

from __future__ import annotations

from resilient_operator.kube.views import pod_view
from resilient_operator.kube.world import World

LABELS = {"app.kubernetes.io/instance": "web", "app.kubernetes.io/name": "web",
          "app.kubernetes.io/managed-by": "resilient-operator"}


def pod(name: str, node: str, ready: str = "True", restarts: int = 0) -> dict:
    return {"metadata": {"name": name, "namespace": "shop", "uid": f"u-{name}", "labels": LABELS,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": node},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": ready, "lastTransitionTime": "2026-01-01T00:01:00Z"}],
                "containerStatuses": [{"restartCount": restarts, "state": {
                    "waiting": {"reason": "CrashLoopBackOff"}}}]}}


def node(name: str, ready: str) -> dict:
    return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"topology.kubernetes.io/zone": "zone-a"}},
            "status": {"conditions": [{"type": "Ready", "status": ready,
                                       "lastTransitionTime": "2026-01-01T00:02:00Z"}]}}


def test_pod_view_reads_readiness_restarts_and_waiting_reason():
    view = pod_view(pod("a", "n1", ready="False", restarts=4))
    assert not view.ready and view.restarts == 4 and view.waiting_reason == "CrashLoopBackOff"
    assert view.ready_since == view.created + 60


def test_node_change_concerns_only_services_with_pods_there():
    world = World()
    world.set_node(node("n1", "True"), False)
    world.set_node(node("n2", "True"), False)
    assert world.set_pod(pod("a", "n1"), False) == ("shop", "web")
    assert world.set_node(node("n2", "False"), False) == set()
    assert world.set_node(node("n1", "False"), False) == {("shop", "web")}
    assert world.set_node(node("n1", "False"), False) == set()  # a heartbeat, no change
    world.set_pod(pod("a", "n1"), True)
    assert world.set_node(node("n1", "True"), False) == set()
    assert world.pods_of(("shop", "web")) == []


def test_objects_without_the_operators_labels_are_ignored():
    world = World()
    other = pod("x", "n1")
    other["metadata"]["labels"] = {"app": "other"}
    assert world.set_pod(other, False) is None
    assert world.set_child("Service", {"metadata": {"name": "x", "namespace": "shop"}},
                           False) is None


class Lister:
    """A fake API answering LISTs with what the API server holds now; records what it is asked."""

    def __init__(self, objects: dict[str, list[dict]], during_list=None) -> None:
        self.objects = objects
        self.asked: list[str] = []
        self.during_list = during_list

    def list(self, kind: str, namespace: str | None = None, selector: str | None = None):
        self.asked.append(kind)
        if self.during_list:
            self.during_list()
        return self.objects.get(kind, [])


def service_child(name: str) -> dict:
    return {"kind": "Service", "metadata": {"name": name, "namespace": "shop",
                                            "labels": LABELS}}


def test_a_relisted_watch_drops_what_was_deleted_while_it_was_down():
    clock = [100.0]
    world = World(clock=lambda: clock[0])
    world.set_child("Service", service_child("web"), False)
    world.set_pod(pod("a", "n1"), False)
    world.set_pod(pod("b", "n1"), False)
    assert world.children_of(("shop", "web")).keys() == {"service"}
    clock[0] = 200.0
    # the Service and pod "b" were deleted while the watches were down; "a" is still there
    api = Lister({"Service": [], "Pod": [pod("a", "n1")]})
    assert world.resync(api, [], {"Service", "Pod"}) == {("shop", "web")}
    assert world.children_of(("shop", "web")) == {}
    assert [p.name for p in world.pods_of(("shop", "web"))] == ["a"]
    assert set(api.asked) == {"Service", "Pod"}  # only the kinds that relisted
    assert world.resync(Lister({"Service": [], "Pod": [pod("a", "n1")]}), [], {"Pod"}) == set()


def test_what_an_event_showed_after_the_list_began_is_kept():
    clock = [100.0]
    world = World(clock=lambda: clock[0])

    def created_meanwhile() -> None:  # the watch shows a new pod while the LIST runs
        clock[0] = 300.0
        world.set_pod(pod("new", "n1"), False)

    clock[0] = 200.0
    assert world.resync(Lister({"Pod": []}, created_meanwhile), [], {"Pod"}) == set()
    assert [p.name for p in world.pods_of(("shop", "web"))] == ["new"]


def test_a_rebuild_takes_what_the_cache_lacks_or_holds_at_another_version():
    clock = [100.0]
    world = World(clock=lambda: clock[0])
    stale = pod("a", "n1")
    stale["metadata"]["resourceVersion"] = "900"  # from a future that a restore undid
    world.set_pod(stale, False)
    assert world.max_revision == 900
    clock[0] = 200.0
    restored = pod("a", "n1", ready="False")
    restored["metadata"]["resourceVersion"] = "500"
    back = service_child("web")  # deleted after the snapshot, there again after the restore
    api = Lister({"Pod": [restored], "Service": [back]})
    assert world.rebuild(api, []) == {("shop", "web")}
    assert world.children_of(("shop", "web")).keys() == {"service"}
    assert [p.ready for p in world.pods_of(("shop", "web"))] == [False]
    assert world.max_revision == 900  # the highest ever seen stays: it is what is compared
