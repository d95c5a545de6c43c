"""kubectl rsvc: follow and steer the rollouts of ResilientServices.

Installed as the console script ``kubectl-rsvc``, so kubectl runs it as a plugin::

    kubectl rsvc status web [--watch] [--timeout 5m]   # steps, weights, pods, conditions
    kubectl rsvc promote web [--full]                   # the next step, or all the way
    kubectl rsvc abort web                              # back to the stable revision
    kubectl rsvc retry web                              # try an aborted template again
    kubectl rsvc pause web | resume web                 # spec.rollout.paused
    kubectl rsvc version [--client]                     # plugin, CRD and operator versions

promote, abort and retry set the annotation resilience.dev/<command> to a fresh token; the
operator acts once per token and acknowledges it in status.rollout.commands (or posts a
CommandIgnored event saying why not), which this plugin waits for.

What a status means (how it prints, whether a rollout is over, whether a command applies) is
decided by pure functions of the resource as a plain dict, so unit tests call them without a
cluster; the rest is a thin layer over the kubernetes client.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import urllib3
from kubernetes import client, config, watch

from ..policy.rollout import (
    ABORT_COMMAND,
    ABORTED,
    ABORTING,
    COMPLETED,
    IDLE,
    IGNORED_EVENT,
    PAUSED,
    PROGRESSING,
    PROMOTING,
)
from ..resource.models import (
    COMMAND_ABORT,
    COMMAND_PROMOTE,
    COMMAND_RETRY,
    GROUP,
    KIND,
    PLURAL,
    PROMOTE_FULL_PREFIX,
    SINGULAR,
    VERSION,
    parse_duration,
)
from ..resource.times import parse_time

Obj = dict[str, Any]

# step marks
DONE, CURRENT, FAILED, PENDING = "✓", "▶", "✗", "·"
# exit codes
EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2

RUNNING = (PROGRESSING, PAUSED, PROMOTING)
ACTIVE = (PROGRESSING, PAUSED, PROMOTING, ABORTING)
CONDITIONS = ("Ready", "Progressing", "Degraded", "Paused")
ANNOTATIONS = {"promote": COMMAND_PROMOTE, "abort": COMMAND_ABORT, "retry": COMMAND_RETRY}
HISTORY_SHOWN = 5
LABEL_WIDTH = 12

REQUEST_TIMEOUT = 30.0  # seconds for one plain request
WATCH_CHUNK = 300.0  # seconds one watch request lasts before it is renewed
EVENT_WAIT = 3.0  # seconds to wait for a CommandIgnored event after an acknowledgement
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DISTRIBUTION = "resilient-operator"
# every install (manifests/ and the Helm chart) labels the operator's Deployment so
OPERATOR_SELECTOR = "app.kubernetes.io/part-of=resilient-operator"
OPERATOR_NAMESPACE = "resilient-system"  # where to look when listing all namespaces is forbidden


class CliError(Exception):
    """A failure reported as one line on stderr, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Outcome(NamedTuple):
    """How a watched rollout ended: the exit code and a sentence."""

    code: int
    message: str


# -- reading a resource (plain dicts) ----------------------------------------------------------


def rollout_of(obj: Mapping[str, Any]) -> Obj:
    """status.rollout ({} when the operator has not written it)."""
    return dict((obj.get("status") or {}).get("rollout") or {})


def spec_rollout(obj: Mapping[str, Any]) -> Obj:
    return dict((obj.get("spec") or {}).get("rollout") or {})


def steps_of(obj: Mapping[str, Any]) -> list[Obj]:
    """spec.rollout.steps."""
    return list(spec_rollout(obj).get("steps") or [])


def phase_of(rollout: Mapping[str, Any]) -> str:
    return str(rollout.get("phase") or IDLE)


def observed(obj: Mapping[str, Any]) -> bool:
    """The status was computed for the current spec (the operator has seen this generation)."""
    generation = (obj.get("metadata") or {}).get("generation")
    seen = (obj.get("status") or {}).get("observedGeneration")
    return generation is None or (seen is not None and seen >= generation)


def strategy_of(obj: Mapping[str, Any]) -> str:
    """The strategy of the rollout under way, else the one spec.rollout asks for."""
    rollout = rollout_of(obj)
    if phase_of(rollout) in ACTIVE and rollout.get("strategy"):
        return str(rollout["strategy"])
    return str(spec_rollout(obj).get("strategy") or "Rolling")


def acknowledged(command: str, token: str, obj: Mapping[str, Any]) -> bool:
    """status.rollout.commands.<command> carries the token: the operator has handled it."""
    return (rollout_of(obj).get("commands") or {}).get(command) == token


# -- steps -------------------------------------------------------------------------------------


def step_marks(count: int, rollout: Mapping[str, Any]) -> list[str]:
    """The mark of each of ``count`` canary steps: done, current, failed or pending."""
    phase = phase_of(rollout)
    index = rollout.get("stepIndex")
    if phase in (PROMOTING, COMPLETED):
        return [DONE] * count
    if index is None or phase not in (PROGRESSING, PAUSED, ABORTING, ABORTED):
        return [PENDING] * count
    here = FAILED if phase in (ABORTING, ABORTED) else CURRENT
    return [DONE if i < index else here if i == index else PENDING for i in range(count)]


def promotion_mark(count: int, rollout: Mapping[str, Any]) -> str:
    """The mark of the last stage of a canary, the promotion of the new revision to stable."""
    phase = phase_of(rollout)
    if phase == COMPLETED:
        return DONE
    if phase == PROMOTING:
        return CURRENT
    index = rollout.get("stepIndex")
    if phase in (ABORTING, ABORTED) and index is not None and index >= count:
        return FAILED
    return PENDING


def describe_step(step: Mapping[str, Any]) -> str:
    """``weight 20%``, ``pause 1m`` or ``pause until promote``."""
    if step.get("setWeight") is not None:
        return f"weight {step['setWeight']}%"
    if "pause" in step:
        duration = (step.get("pause") or {}).get("duration")
        return f"pause {duration}" if duration else "pause until promote"
    return "(unknown step)"


def span(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h10m``."""
    s = max(0, int(seconds + 0.5))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _pause_left(step: Mapping[str, Any], rollout: Mapping[str, Any], now: float | None) -> str:
    duration = (step.get("pause") or {}).get("duration")
    started = rollout.get("stepStarted")
    if now is None or not duration or not started:
        return ""
    try:
        left = (parse_time(started) or now) + parse_duration(duration) - now
    except ValueError:
        return ""
    return f" ({span(left)} left)" if left > 0 else ""


def step_lines(obj: Mapping[str, Any], now: float | None = None) -> list[str]:
    """One line per step of spec.rollout.steps with its mark, then the promotion."""
    rollout = rollout_of(obj)
    steps = steps_of(obj)
    marks = step_marks(len(steps), rollout)
    width = len(str(len(steps)))
    lines = []
    for i, (mark, step) in enumerate(zip(marks, steps, strict=True)):
        text = describe_step(step)
        if mark == CURRENT:
            text += _pause_left(step, rollout, now)
        lines.append(f"  {mark} {i + 1:>{width}}. {text}")
    lines.append(f"  {promotion_mark(len(steps), rollout)} {'':>{width}}  promote to stable")
    return lines


# -- the status as text ------------------------------------------------------------------------


def _label(name: str, value: str) -> str:
    return f"{name + ':':<{LABEL_WIDTH}} {value}".rstrip()


def _revision_line(rollout: Mapping[str, Any]) -> str:
    revision, stable = rollout.get("revision") or "-", rollout.get("stableRevision") or "-"
    text = f"{revision} (stable)" if revision == stable else f"{revision}   stable: {stable}"
    if rollout.get("abortedRevision") and rollout.get("abortedRevision") == revision:
        text += "   (this revision was aborted)"
    return text


def condition_lines(obj: Mapping[str, Any]) -> list[str]:
    """The Ready, Progressing, Degraded and Paused conditions, one line each."""
    by_type = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    lines = []
    for type_ in CONDITIONS:
        c = by_type.get(type_)
        if c is None:
            continue
        lines.append(f"  {type_:<12} {c.get('status', '?'):<7} {c.get('reason', ''):<26} "
                     f"{c.get('message', '')}".rstrip())
    return lines


def history_lines(rollout: Mapping[str, Any], shown: int = HISTORY_SHOWN) -> list[str]:
    """The last rollouts, oldest first."""
    history = list(rollout.get("history") or [])
    lines = []
    if len(history) > shown:
        lines.append(f"  ({len(history) - shown} earlier)")
    for record in history[-shown:]:
        why = f"  ({record['reason']})" if record.get("reason") else ""
        lines.append(f"  {record.get('revision', '-'):<10}  {record.get('result', '?'):<10}  "
                     f"{record.get('started', '?')} -> {record.get('finished', '?')}{why}")
    return lines


def format_status(obj: Mapping[str, Any], now: float | None = None) -> str:
    """The rollout of a resource as text, for `kubectl rsvc status`."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    rollout = rollout_of(obj)
    lines = [f"{KIND} {meta.get('namespace', '?')}/{meta.get('name', '?')}"]
    if not observed(obj):
        lines.append(f"  (status is of generation {status.get('observedGeneration', '-')}, the "
                     f"spec is at {meta.get('generation')}: the operator has not caught up)")
    if not rollout:
        lines.append(_label("Phase", "unknown: no status.rollout yet (is the operator running?)"))
        lines.append(_label("Strategy", strategy_of(obj)))
    else:
        phase = phase_of(rollout)
        lines.append(_label("Phase", phase))
        lines.append(_label("Strategy", strategy_of(obj)))
        lines.append(_label("Revision", _revision_line(rollout)))
    steps = steps_of(obj)
    if steps:
        lines.append("Steps:")
        lines.extend(step_lines(obj, now))
    else:
        lines.append(_label("Steps", "none (Rolling: the Deployment rolls in place, behind the "
                                     "health gate)"))
    if rollout:
        lines.append(_label("Weight", f"{rollout.get('desiredWeight', 0)}% desired, "
                                      f"{rollout.get('actualWeight', 0)}% actual"))
        lines.append(_label("Ready pods", f"stable {rollout.get('stablePods', 0)}, "
                                          f"canary {rollout.get('canaryPods', 0)}"))
        lines.append(_label("Message", rollout.get("message") or "-"))
        abort = rollout.get("lastAbort")
        if abort:
            lines.append(_label("Last abort", f"{abort.get('reason', '?')} (revision "
                                              f"{abort.get('revision', '-')}, "
                                              f"{abort.get('time', '?')})"))
            if abort.get("message"):
                lines.append(f"{'':<{LABEL_WIDTH}} {abort['message']}")
        history = history_lines(rollout)
        if history:
            lines.append("History:")
            lines.extend(history)
    conditions = condition_lines(obj)
    if conditions:
        lines.append("Conditions:")
        lines.extend(conditions)
    return "\n".join(lines)


def summary(obj: Mapping[str, Any]) -> str:
    """One line: where the rollout is now."""
    rollout = rollout_of(obj)
    if not rollout:
        return "no rollout status yet"
    phase = phase_of(rollout)
    steps = steps_of(obj)
    parts = [f"phase {phase}"]
    index = rollout.get("stepIndex")
    if phase in (PROGRESSING, PAUSED) and index is not None and 0 <= index < len(steps):
        parts.append(f"step {index + 1}/{len(steps)} ({describe_step(steps[index])})")
    elif phase == PROMOTING:
        parts.append(f"promoting {rollout.get('revision', '-')} to stable")
    elif phase == COMPLETED:
        parts.append(f"{rollout.get('stableRevision', '-')} is stable")
    if phase in (ABORTING, ABORTED) and rollout.get("lastAbort"):
        parts.append(f"last abort {rollout['lastAbort'].get('reason', '?')}")
    if phase in RUNNING:
        parts.append(f"weight {rollout.get('desiredWeight', 0)}% "
                     f"(actual {rollout.get('actualWeight', 0)}%)")
    return ", ".join(parts)


# -- decisions ---------------------------------------------------------------------------------


def watch_outcome(obj: Mapping[str, Any]) -> Outcome | None:
    """For `status --watch`: 0 when the rollout is complete (or nothing is to be rolled out),
    1 when it is aborted, None while it goes on (or the operator has not seen the spec)."""
    if not observed(obj):
        return None
    rollout = rollout_of(obj)
    if not rollout:
        return None
    phase = phase_of(rollout)
    revision, stable = rollout.get("revision"), rollout.get("stableRevision")
    abort = rollout.get("lastAbort") or {}
    why = f"{abort.get('reason', '?')}: {abort.get('message', '')}".rstrip(": ")
    if phase == ABORTING:
        return Outcome(EXIT_FAILED, f"rollout of {revision} aborted ({why}); the stable revision "
                                    f"{stable} is being restored")
    if phase == ABORTED and rollout.get("abortedRevision") == revision and revision != stable:
        return Outcome(EXIT_FAILED, f"rollout of {revision} aborted ({why}); the stable revision "
                                    f"{stable} serves")
    if phase in (COMPLETED, IDLE, ABORTED) and revision is not None and revision == stable:
        if phase == COMPLETED:
            return Outcome(EXIT_OK, f"rollout complete: revision {revision} is stable")
        return Outcome(EXIT_OK, f"no rollout under way: spec.template is the stable revision "
                                f"{revision}")
    return None


def check_command(command: str, obj: Mapping[str, Any], full: bool = False) -> str | None:
    """Why ``command`` (promote, abort, retry) cannot apply to the resource now; None if it can."""
    name = (obj.get("metadata") or {}).get("name", "?")
    rollout = rollout_of(obj)
    if not rollout:
        return f"{SINGULAR} {name!r} has no rollout status yet (is the operator running?)"
    phase = phase_of(rollout)
    if command == "retry":
        if phase != ABORTED:
            return f"nothing to retry: the rollout of {name} is {phase}, not Aborted"
        if rollout.get("abortedRevision") != rollout.get("revision"):
            return (f"nothing to retry: the current template ({rollout.get('revision')}) was not "
                    f"aborted")
        return None
    if phase not in RUNNING:
        return f"no rollout of {name} is running (phase {phase}): nothing to {command}"
    if command == "abort":
        return None
    # promote
    if phase == PROMOTING:
        return f"the rollout of {name} is already promoting to stable"
    if strategy_of(obj) != "Canary":
        return "a Rolling update has no steps to promote"
    if full:
        return None
    steps = steps_of(obj)
    index = rollout.get("stepIndex") or 0
    if 0 <= index < len(steps) and "pause" not in steps[index]:
        return (f"step {index + 1}/{len(steps)} ({describe_step(steps[index])}) is not a pause; "
                "`kubectl rsvc promote --full` promotes at once")
    return None


def command_took_effect(command: str, token: str, before: Mapping[str, Any],
                        after: Mapping[str, Any]) -> bool:
    """The acknowledged status shows the command acted (rather than being ignored)."""
    prior, now = rollout_of(before), rollout_of(after)
    phase = phase_of(now)
    if command == "abort":
        abort = now.get("lastAbort") or {}
        return abort.get("reason") == ABORT_COMMAND and token in (abort.get("message") or "")
    if command == "retry":
        return phase != ABORTED or now.get("abortedRevision") != prior.get("abortedRevision")
    if phase in (PROMOTING, COMPLETED):
        return phase_of(prior) != phase
    return (now.get("stepIndex") or 0) > (prior.get("stepIndex") or 0)


def new_token(full: bool = False) -> str:
    """A fresh, unique command token (prefixed for promote --full)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{PROMOTE_FULL_PREFIX if full else ''}{stamp}-{secrets.token_hex(4)}"


# -- versions ----------------------------------------------------------------------------------


def plugin_version() -> str:
    """The version of the installed plugin (the resilient-operator distribution)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed as a distribution)"


def image_version(image: str) -> str | None:
    """The tag of an image reference (``repo/x:0.1.0@sha256:...`` -> ``0.1.0``), if any."""
    name = image.split("@", 1)[0]
    tail = name.rsplit("/", 1)[-1]
    return tail.rsplit(":", 1)[1] if ":" in tail else None


def operator_line(deployment: Mapping[str, Any]) -> str:
    """One operator Deployment: its version (label app.kubernetes.io/version, else the image's
    tag), where it runs and how many replicas are ready."""
    meta = deployment.get("metadata") or {}
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {})
                  .get("containers") or [])
    image = str((containers[0] if containers else {}).get("image") or "?")
    version = (meta.get("labels") or {}).get("app.kubernetes.io/version") or image_version(image)
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas", 1)
    ready = f"{status.get('readyReplicas') or 0}/{wanted}"
    return (f"{version or 'unknown'} ({meta.get('namespace', '?')}/{meta.get('name', '?')}: "
            f"image {image}, {ready} ready)")


def format_version(plugin: str, group: Mapping[str, Any] | str,
                   operators: Sequence[Mapping[str, Any]] | str) -> str:
    """`kubectl rsvc version`: the plugin's version, the versions of resilience.dev the API server
    serves (its discovery document, or why there is none) and the operator Deployments found
    (or why none)."""
    lines = [_label("Plugin", f"kubectl-rsvc {plugin} (speaks {GROUP}/{VERSION})")]
    if isinstance(group, str):
        lines.append(_label("CRD", group))
    else:
        served = [v.get("version") for v in group.get("versions") or []]
        preferred = (group.get("preferredVersion") or {}).get("version")
        text = f"{PLURAL}.{GROUP} served: {', '.join(map(str, served)) or 'none'}"
        if preferred and len(served) > 1:
            text += f" (preferred {preferred})"
        if VERSION not in served:
            text += f"; this plugin needs {VERSION}"
        lines.append(_label("CRD", text))
    if isinstance(operators, str):
        lines.append(_label("Operator", operators))
    elif not operators:
        lines.append(_label("Operator", f"no Deployment labelled {OPERATOR_SELECTOR} found "
                                        "(it may run outside the cluster)"))
    else:
        lines.extend(_label("Operator" if i == 0 else "", operator_line(d))
                     for i, d in enumerate(operators))
    return "\n".join(lines)


# -- the API -----------------------------------------------------------------------------------


def _body(e: client.ApiException) -> Obj:
    try:
        data = json.loads(e.body) if e.body else {}
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _as_obj(value: object) -> Obj:
    if not isinstance(value, dict):
        raise CliError(f"unexpected answer ({type(value).__name__}, not an object): is this a "
                       "Kubernetes API server?")
    return value


class Kube:
    """The few API calls the plugin makes, errors turned into CliError."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.namespace = namespace
        self.api_client = api_client
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def api_group(self) -> Obj | str:
        """The API server's discovery document of resilience.dev, or why there is none."""
        try:
            found = client.ApisApi(self.api_client).get_api_versions(
                _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as e:
            raise self.error(e, GROUP) from None
        groups = self.api_client.sanitize_for_serialization(found).get("groups") or []
        group = next((g for g in groups if g.get("name") == GROUP), None)
        if group is None:
            return f"not installed: the API server does not serve {GROUP}"
        return _as_obj(group)

    def operators(self) -> list[Obj] | str:
        """The operator's Deployments (all namespaces, else resilient-system), or why not."""
        apps = client.AppsV1Api(self.api_client)
        try:
            found = apps.list_deployment_for_all_namespaces(
                label_selector=OPERATOR_SELECTOR, _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as e:
            if e.status != 403:
                raise self.error(e, "") from None
            try:
                found = apps.list_namespaced_deployment(
                    OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR,
                    _request_timeout=REQUEST_TIMEOUT)
            except client.ApiException as e2:
                if e2.status != 403:
                    raise self.error(e2, "") from None
                return "unknown: you may not list Deployments (forbidden)"
        items = self.api_client.sanitize_for_serialization(found).get("items") or []
        return sorted(items, key=lambda d: (d["metadata"].get("namespace", ""),
                                            d["metadata"].get("name", "")))

    def error(self, e: client.ApiException, name: str) -> CliError:
        body = _body(e)
        if e.status == 404:
            if (body.get("details") or {}).get("name") == name:
                return CliError(f'{SINGULAR} "{name}" not found in namespace "{self.namespace}"')
            return CliError(f"the API server does not serve {PLURAL}.{GROUP}/{VERSION} (is the "
                            "CRD installed?)")
        if not e.status:  # the client's own failure, such as TLS
            return CliError(f"cannot reach the API server: {e.reason}")
        message = body.get("message") or e.reason or "request failed"
        return CliError(f"{message} (HTTP {e.status})")

    def get(self, name: str) -> Obj:
        try:
            obj = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as e:
            raise self.error(e, name) from None
        return _as_obj(obj)

    def patch(self, name: str, body: Obj) -> Obj:
        """A JSON merge patch of the resource."""
        try:
            obj = self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, body,
                _content_type="application/merge-patch+json", _request_timeout=REQUEST_TIMEOUT)
        except client.ApiException as e:
            raise self.error(e, name) from None
        return _as_obj(obj)

    def _watch(self, name: str, resource_version: str | None,
               seconds: float) -> Iterator[tuple[str, Obj]]:
        w = watch.Watch()
        kwargs: dict[str, Any] = {"field_selector": f"metadata.name={name}",
                                  "timeout_seconds": max(1, math.ceil(seconds)),
                                  "_request_timeout": (REQUEST_TIMEOUT, seconds + 30)}
        if resource_version:
            kwargs["resource_version"] = resource_version
        try:
            for event in w.stream(self.custom.list_namespaced_custom_object, GROUP, VERSION,
                                  self.namespace, PLURAL, **kwargs):
                yield str(event["type"]), dict(event["raw_object"])
        finally:
            w.stop()

    def follow(self, name: str, obj: Obj, until: Callable[[Obj], bool],
               deadline: float | None) -> Obj | None:
        """Watch the resource from ``obj`` on: the first version (``obj`` included) for which
        ``until`` is true, or None at the deadline (time.monotonic(); None: no deadline)."""
        if until(obj):
            return obj
        version = (obj.get("metadata") or {}).get("resourceVersion")
        while True:
            left = WATCH_CHUNK if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                for kind, item in self._watch(name, version, min(left, WATCH_CHUNK)):
                    if kind == "DELETED":
                        raise CliError(f'{SINGULAR} "{name}" was deleted from namespace '
                                       f'"{self.namespace}"')
                    if kind not in ("ADDED", "MODIFIED"):
                        continue
                    version = item["metadata"].get("resourceVersion", version)
                    if until(item):
                        return item
            except client.ApiException as e:
                if e.status != 410:  # 410 Gone: the version is too old; start from now
                    raise self.error(e, name) from None
                item = self.get(name)
                version = item["metadata"].get("resourceVersion")
                if until(item):
                    return item
            except urllib3.exceptions.ReadTimeoutError:
                continue

    def ignored(self, name: str, token: str, wait: float) -> str | None:
        """The message of the CommandIgnored event about the resource that names ``token``,
        waiting up to ``wait`` seconds for it; None when there is none."""
        selector = (f"involvedObject.kind={KIND},involvedObject.name={name},"
                    f"reason={IGNORED_EVENT}")
        try:
            listing = self.core.list_namespaced_event(self.namespace, field_selector=selector,
                                                      _request_timeout=REQUEST_TIMEOUT)
            for event in listing.items or []:
                if token in (event.message or ""):
                    return str(event.message)
            if wait <= 0:
                return None
            w = watch.Watch()
            for change in w.stream(self.core.list_namespaced_event, self.namespace,
                                   field_selector=selector,
                                   resource_version=(listing.metadata.resource_version
                                                     if listing.metadata else None),
                                   timeout_seconds=max(1, math.ceil(wait)),
                                   _request_timeout=(REQUEST_TIMEOUT, wait + 30)):
                message = (change.get("raw_object") or {}).get("message") or ""
                if token in message:
                    w.stop()
                    return str(message)
        except client.ApiException as e:
            if e.status == 410:
                return None
            raise CliError(f"cannot read the events of {name}: {self.error(e, name).message}"
                           ) from None
        except urllib3.exceptions.ReadTimeoutError:
            return None
        return None


def connect(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """An API client and the default namespace, from the kubeconfig (``--kubeconfig``, else
    KUBECONFIG, else ~/.kube/config) or, without one, from inside a pod."""
    cfg = client.Configuration()
    default_file = Path("~/.kube/config").expanduser()
    if kubeconfig and not Path(kubeconfig).expanduser().is_file():
        raise CliError(f"the kubeconfig {kubeconfig} does not exist")
    if kubeconfig or os.environ.get("KUBECONFIG") or default_file.exists() or context:
        try:
            config.load_kube_config(config_file=kubeconfig, context=context,
                                    client_configuration=cfg, persist_config=False)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except Exception as e:  # the loader raises many kinds; all mean the same here
            raise CliError(f"cannot use the kubeconfig: {e}") from None
        chosen = active if context is None else next(
            (c for c in contexts or [] if c.get("name") == context), None)
        namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=cfg)
        except config.ConfigException as e:
            raise CliError(f"cannot use the in-cluster configuration: {e}") from None
        try:
            namespace = SA_NAMESPACE.read_text().strip() or "default"
        except OSError:
            namespace = "default"
    else:
        raise CliError("no kubeconfig: set KUBECONFIG, pass --kubeconfig, or create "
                       "~/.kube/config")
    if not cfg.verify_ssl:  # the kubeconfig asks for it (insecure-skip-tls-verify), as kubectl
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return client.ApiClient(cfg), namespace


# -- the commands ------------------------------------------------------------------------------


class Printer:
    """Prints the status when its text changes (for --watch)."""

    def __init__(self) -> None:
        self.last_text = ""
        self.last: Obj = {}

    def show(self, obj: Obj) -> None:
        self.last = obj
        text = format_status(obj)
        if text == self.last_text:
            return
        if self.last_text:
            print(f"\n--- {datetime.now().strftime('%H:%M:%S')}")
        print(format_status(obj, now=time.time()), flush=True)
        self.last_text = text


def cmd_status(kube: Kube, args: argparse.Namespace) -> int:
    obj = kube.get(args.name)
    if not args.watch:
        print(format_status(obj, now=time.time()))
        return EXIT_OK
    printer = Printer()

    def over(item: Obj) -> bool:
        printer.show(item)
        return watch_outcome(item) is not None

    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    final = kube.follow(args.name, obj, over, deadline)
    if final is None:
        hint = ""
        if phase_of(rollout_of(printer.last)) == PAUSED:
            hint = f"; it waits for `kubectl rsvc promote {args.name}`"
            if spec_rollout(printer.last).get("paused"):
                hint = f"; it is held by `kubectl rsvc pause`: `kubectl rsvc resume {args.name}`"
        print(f"\ntimed out after {args.timeout:g}s: the rollout of {args.name} is still going "
              f"on ({summary(printer.last)}){hint}", file=sys.stderr)
        return EXIT_TIMEOUT
    outcome = watch_outcome(final)
    assert outcome is not None
    print(f"\n{outcome.message}")
    return outcome.code


def cmd_command(kube: Kube, args: argparse.Namespace) -> int:
    command: str = args.command
    full = bool(getattr(args, "full", False))
    before = kube.get(args.name)
    problem = check_command(command, before, full=full)
    if problem is not None:
        if not args.force:
            raise CliError(f"{problem} (--force sends the command anyway)")
        print(f"warning: {problem}; sending it anyway (--force)", file=sys.stderr)
    token = new_token(full and command == "promote")
    annotation = ANNOTATIONS[command]
    sent = kube.patch(args.name, {"metadata": {"annotations": {annotation: token}}})
    print(f"{annotation}={token} set on {kube.namespace}/{args.name}", flush=True)
    deadline = time.monotonic() + args.wait
    after = kube.follow(args.name, sent, lambda o: acknowledged(command, token, o), deadline)
    if after is None:
        raise CliError(f"the operator has not acknowledged the {command} within {args.wait:g}s "
                       "(is it running?); the annotation stays set, and it acts on it when it "
                       "sees it")
    ignored = kube.ignored(args.name, token, wait=0)
    if ignored is None and not command_took_effect(command, token, before, after):
        ignored = kube.ignored(args.name, token, wait=EVENT_WAIT)
    if ignored is not None:
        raise CliError(f"the operator ignored the {command}: {ignored}")
    done = {"promote": "promoted", "abort": "aborted", "retry": "retrying"}[command]
    print(f"{done}: {summary(after)}")
    return EXIT_OK


def cmd_pause(kube: Kube, args: argparse.Namespace) -> int:
    want = args.command == "pause"
    obj = kube.get(args.name)
    if bool(spec_rollout(obj).get("paused")) == want:
        print(f"{args.name}: spec.rollout.paused is already {str(want).lower()}")
        return EXIT_OK
    kube.patch(args.name, {"spec": {"rollout": {"paused": want}}})
    if want:
        print(f"{args.name}: paused (spec.rollout.paused=true): no new step starts until "
              f"`kubectl rsvc resume {args.name}`")
    else:
        print(f"{args.name}: resumed (spec.rollout.paused=false)")
    if want and strategy_of(obj) != "Canary":
        print("note: a standing pause holds Canary steps only; a Rolling update goes on",
              file=sys.stderr)
    return EXIT_OK


def cmd_version(kube: Kube, args: argparse.Namespace) -> int:
    print(format_version(plugin_version(), kube.api_group(), kube.operators()))
    return EXIT_OK


def seconds(text: str) -> float:
    """A number of seconds, or a duration such as 90s, 5m, 1h30m."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = parse_duration(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not seconds or a duration such as "
                                             "90s or 5m") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, metavar="NS",
                        help="namespace of the resource (default: the context's, or default)")
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, metavar="PATH",
                        help="path to the kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
    common.add_argument("--context", default=argparse.SUPPRESS, metavar="NAME",
                        help="the kubeconfig context to use")
    top = argparse.ArgumentParser(
        prog="kubectl rsvc", parents=[common],
        description="Follow and steer the rollouts of ResilientServices (resilience.dev).",
        epilog="Exit codes: 0 done, 1 error / aborted / refused, 2 timed out (status --watch).")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = sub.add_parser(
        "status", parents=[common], help="show the rollout: steps, weights, pods, conditions",
        description="Show the rollout of a ResilientService. With --watch, follow it and exit "
        "0 when it completes, 1 when it is aborted, 2 at the timeout.")
    status.add_argument("name", metavar="NAME", help="the ResilientService")
    status.add_argument("-w", "--watch", action="store_true",
                        help="follow the rollout (a watch) until it completes or is aborted")
    status.add_argument("--timeout", type=seconds, default=0.0, metavar="SECONDS",
                        help="with --watch: give up after this long (exit 2); 0 waits forever")
    status.set_defaults(run=cmd_status)

    what = {"promote": "let a paused canary go on to its next step (--full: promote to stable "
                       "at once)",
            "abort": "abort the running rollout: the stable revision is restored",
            "retry": "roll out an aborted template again"}
    for command, text in what.items():
        p = sub.add_parser(
            command, parents=[common], help=text,
            description=f"{text[0].upper()}{text[1:]}. Sets the annotation "
            f"{ANNOTATIONS[command]} to a fresh token and waits for the operator to "
            "acknowledge it.")
        p.add_argument("name", metavar="NAME", help="the ResilientService")
        if command == "promote":
            p.add_argument("--full", action="store_true",
                           help="skip the remaining steps: promote the new revision to stable")
        p.add_argument("--force", action="store_true",
                       help="send the command even when it looks like it cannot apply")
        p.add_argument("--wait", type=seconds, default=10.0, metavar="SECONDS",
                       help="how long to wait for the operator's acknowledgement (default 10)")
        p.set_defaults(run=cmd_command)

    for command, text in (("pause", "hold the rollout: no new step starts "
                                    "(spec.rollout.paused=true)"),
                          ("resume", "let a held rollout go on (spec.rollout.paused=false)")):
        p = sub.add_parser(command, parents=[common], help=text,
                           description=f"{text[0].upper()}{text[1:]}.")
        p.add_argument("name", metavar="NAME", help="the ResilientService")
        p.set_defaults(run=cmd_pause)

    version = sub.add_parser(
        "version", parents=[common], help="print the plugin's, the CRD's and the operator's "
        "versions", description="Print the version of this plugin, the versions of "
        f"{PLURAL}.{GROUP} the API server serves, and the version of each operator Deployment "
        f"(labelled {OPERATOR_SELECTOR}: the image's tag, or its app.kubernetes.io/version "
        "label) with its ready replicas.")
    version.add_argument("--client", action="store_true",
                         help="print the plugin's version only; do not contact the cluster")
    version.set_defaults(run=cmd_version)
    return top


def network_error(e: BaseException) -> str:
    """The root cause of a failed connection, briefly (``Connection refused``)."""
    reason: BaseException = e
    if isinstance(e, urllib3.exceptions.MaxRetryError) and e.reason is not None:
        reason = e.reason
    cause = reason.__cause__ or reason.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):  # marks survive a non-UTF-8 terminal
        sys.stdout.reconfigure(errors="replace")
    if args.command == "version" and args.client:
        print(f"kubectl-rsvc {plugin_version()}")
        return EXIT_OK
    api_client = None
    try:
        api_client, namespace = connect(getattr(args, "kubeconfig", None),
                                        getattr(args, "context", None))
        kube = Kube(api_client, getattr(args, "namespace", None) or namespace)
        code: int = args.run(kube, args)
        return code
    except CliError as e:
        print(f"Error: {e.message}", file=sys.stderr)
        return e.code
    except client.ApiException as e:
        print(f"Error: {e.status} {e.reason}: {_body(e).get('message', '')}".rstrip(": "),
              file=sys.stderr)
        return EXIT_FAILED
    except (urllib3.exceptions.HTTPError, OSError) as e:
        host = getattr(getattr(api_client, "configuration", None), "host", None) or "?"
        print(f"Error: cannot reach the API server {host}: {network_error(e)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    finally:
        if api_client is not None:
            with contextlib.suppress(Exception):
                api_client.close()


if __name__ == "__main__":
    sys.exit(main())
