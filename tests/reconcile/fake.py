"""An in-memory API server for actor tests: it keeps objects, records every call in order,
and can be told to refuse some writes. ``feed`` plays the watches into a World."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from resilient_operator.kube.api import ApiError
from resilient_operator.kube.world import World

UID = "uid-web"


@dataclass
class Call:
    verb: str
    kind: str
    name: str
    body: Any = None


@dataclass
class FakeApi:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    refuse: dict[tuple[str, str], ApiError] = field(default_factory=dict)  # (verb, kind)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    _rv: itertools.count = field(default_factory=lambda: itertools.count(100))

    # -- helpers for tests -----------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta.setdefault("namespace", "shop")
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta["resourceVersion"] = str(next(self._rv))
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return obj

    def obj(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, "shop", name))

    def writes(self) -> list[tuple[str, str, str]]:
        return [(c.verb, c.kind, c.name) for c in self.calls if c.verb != "get"]

    def feed(self, world: World) -> None:
        """What the watches would deliver: every object into the cache."""
        for (kind, _, _), obj in self.objects.items():
            if kind == "ResilientService":
                world.set_resource(copy.deepcopy(obj), False)
            elif kind == "Pod":
                world.set_pod(copy.deepcopy(obj), False)
            else:
                world.set_child(kind, copy.deepcopy(obj), False)

    def _check(self, verb: str, kind: str) -> None:
        error = self.refuse.get((verb, kind))
        if error is not None:
            raise error

    # -- the Api surface ---------------------------------------------------------------------

    def apply(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        verb = "dry-run" if dry_run else "apply"
        self.calls.append(Call(verb, obj["kind"], obj["metadata"]["name"], obj))
        self._check(verb, obj["kind"])
        self._check("apply", obj["kind"]) if dry_run else None
        if dry_run:
            return obj
        live = self.obj(obj["kind"], obj["metadata"]["name"]) or {}
        merged = {**copy.deepcopy(live), **copy.deepcopy(obj)}
        merged["metadata"] = {**live.get("metadata", {}), **copy.deepcopy(obj["metadata"])}
        return self.put(merged)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(Call("get", kind, name))
        found = self.obj(kind, name)
        return copy.deepcopy(found) if found else None

    def list(self, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (k, _, _), o in self.objects.items() if k == kind]

    def merge_patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(Call("merge-patch", kind, name, patch))
        self._check("merge-patch", kind)
        live = copy.deepcopy(self.obj(kind, name))
        assert live is not None
        self.put(_merge(live, patch))

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> bool:
        self.calls.append(Call("delete", kind, name))
        self._check("delete", kind)
        return self.objects.pop((kind, namespace, name), None) is not None

    def evict(self, namespace: str, name: str, uid: str) -> bool:
        self.calls.append(Call("evict", "Pod", name))
        self._check("evict", "Pod")
        return self.objects.pop(("Pod", namespace, name), None) is not None

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(Call("patch-status", "ResilientService", name, status))
        self._check("patch-status", "ResilientService")
        live = copy.deepcopy(self.obj("ResilientService", name))
        assert live is not None
        live["status"] = _merge(live.get("status") or {}, status)
        return self.put(live)

    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str,
              now: float) -> None:
        self.events.append((type_, reason, message))

    def flush_events(self, timeout: float = 5.0) -> None:
        pass


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
