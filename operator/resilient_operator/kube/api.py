"""The thin API layer: apply, delete, evict, patch status, post events.

Every request the operator's own code makes goes through ``Api.request``, which counts it by
verb and resource (``resilient_rest_client_requests_total``) and turns HTTP errors into the
few outcomes the reconciler cares about.
"""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.rest import ApiException

from .. import metrics
from ..resource import models
from ..resource.times import format_time
from .kinds import KINDS

log = logging.getLogger(__name__)

FIELD_MANAGER = "resilient-operator"
# a second manager, only to replace lists that another writer extended (see restore_lists)
RESTORE_MANAGER = "resilient-operator-restore"

# kind -> (api prefix, resource plural)
RESOURCES: dict[str, tuple[str, str]] = {k.kind: (k.prefix, k.plural) for k in KINDS.values()}


class ApiError(Exception):
    """A request the API server refused; ``status`` is the HTTP code."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def invalid(self) -> bool:
        """The object can never be accepted as it is (a spec problem, not a transient one)."""
        return self.status in (400, 422)

    @property
    def transient(self) -> bool:
        """Worth retrying soon as it is: a conflict, throttling, a timeout or an unreachable
        server. Everything else is reported to the user when it persists."""
        return self.status in (0, 409, 429, 503, 504)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def too_many(self) -> bool:
        return self.status == 429

    @property
    def namespace_terminating(self) -> bool:
        """The namespace is being deleted: nothing can (or should) be created in it."""
        return self.status == 403 and "being terminated" in self.message


def load_client() -> kubernetes.client.ApiClient:
    """An API client from the in-cluster service account or the kubeconfig."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    config = kubernetes.client.Configuration.get_default_copy()
    config.connection_pool_maxsize = 16
    return kubernetes.client.ApiClient(config)


class Api:
    """Requests the reconciler makes, each counted by verb and resource."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client
        self.identity = socket.gethostname()

    def request(
        self,
        verb: str,
        resource: str,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> Any:
        metrics.API_REQUESTS.labels(verb=verb, resource=resource).inc()
        method, url, headers, payload, _ = self.client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.client.call_api(method, url, headers, payload, _request_timeout=30)
            response.read()
        except ApiException as e:
            raise _error(e.status or 0, e.body) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            # unreachable, reset, timed out: one ApiError (status 0), never a traceback
            raise ApiError(0, "Unreachable", f"{type(e).__name__}: {e}") from None
        if response.status >= 400:
            raise _error(response.status, response.data)
        return json.loads(response.data) if response.data else None

    # -- objects ----------------------------------------------------------------------------

    @staticmethod
    def _path(kind: str, namespace: str, name: str | None = None) -> str:
        prefix, plural = RESOURCES[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    def apply(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply under the operator's field manager (``dry_run``: validate only)."""
        meta = obj["metadata"]
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request(
            "dry-run" if dry_run else "apply", RESOURCES[obj["kind"]][1], "PATCH",
            self._path(obj["kind"], meta["namespace"], meta["name"]), obj,
            content_type="application/apply-patch+yaml", query=query,
        )

    def list(self, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        """Every object of a kind (in one namespace, or all), paged."""
        prefix, plural = RESOURCES[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("limit", "500")]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = self.request("list", plural, "GET", path, query=query)
            # list items carry no apiVersion/kind; give them what a watch event would have
            for item in page.get("items") or []:
                item.setdefault("apiVersion", page.get("apiVersion"))
                item.setdefault("kind", str(page.get("kind", "")).removesuffix("List"))
                items.append(item)
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    def revision(self, namespace: str | None = None) -> int | None:
        """The API server's current resourceVersion (etcd's revision), from the cheapest LIST
        the operator may make."""
        prefix, plural = RESOURCES[models.KIND]
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        page = self.request("list", plural, "GET", path, query=[("limit", "1")])
        rv = str((page.get("metadata") or {}).get("resourceVersion") or "")
        return int(rv) if rv.isdigit() else None

    def merge_patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A JSON merge patch, only for what apply cannot take away: keys another writer added
        to a map the operator owns, entries another writer added to a list (merge patches
        replace lists whole)."""
        self.request("patch", RESOURCES[kind][1], "PATCH", self._path(kind, namespace, name),
                     patch, content_type="application/merge-patch+json",
                     query=[("fieldManager", RESTORE_MANAGER)])

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            return self.request("get", RESOURCES[kind][1], "GET", self._path(kind, namespace, name))
        except ApiError as e:
            if e.not_found:
                return None
            raise

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete an object (only the one with this uid, when given); False when it was gone
        already (or is another object of that name now)."""
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            self.request("delete", RESOURCES[kind][1], "DELETE",
                         self._path(kind, namespace, name), body)
        except ApiError as e:
            if not (e.not_found or e.status == 409):
                raise
            return False
        return True

    def evict(self, namespace: str, name: str, uid: str) -> bool:
        """Evict a pod through the Eviction API, so the PodDisruptionBudget is honoured; False
        when the pod was gone already. Raises ApiError with status 429 when the budget says
        "not now"."""
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": {"preconditions": {"uid": uid}},
        }
        try:
            self.request("create", "pods/eviction", "POST",
                         self._path("Pod", namespace, name) + "/eviction", body)
        except ApiError as e:
            if not e.not_found:
                raise
            return False
        return True

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource of a ResilientService; return the new object."""
        return self.request(
            "patch", f"{models.PLURAL}/status", "PATCH",
            self._path(models.KIND, namespace, name) + "/status", {"status": status},
            content_type="application/merge-patch+json",
        )

    def event(
        self, owner: dict[str, Any], type_: str, reason: str, message: str, now: float
    ) -> None:
        """Post a core/v1 Event about a ResilientService (best effort)."""
        meta = owner["metadata"]
        stamp = format_time(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{models.GROUP}/{models.VERSION}",
                "kind": models.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": models.MANAGED_BY, "host": self.identity},
            "reportingComponent": f"{models.GROUP}/{models.MANAGED_BY}",
            "reportingInstance": self.identity,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        # posted with the action it explains, in the same reconcile: a process killed right
        # after acting loses at most that one event (a queue for a background thread lost
        # every event still queued); the action itself is also in status
        try:
            self.request("create", "events", "POST", self._path("Event", meta["namespace"]),
                         body)
        except ApiError as e:  # events are best effort: never fail the reconcile
            log.warning("could not post event %s on %s/%s: %s", reason, meta["namespace"],
                        meta["name"], e)

    def flush_events(self, timeout: float = 5.0) -> None:
        """Nothing is queued: events are posted as they happen (kept for the shutdown hook)."""


def _error(status: int, data: Any) -> ApiError:
    try:
        payload = json.loads(data) if data else {}
    except (TypeError, ValueError):
        payload = {}
    return ApiError(status, str(payload.get("reason", "")), str(payload.get("message", data)))
