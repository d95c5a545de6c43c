"""Hypothesis strategies for ResilientService specs (shared by unit and e2e tests)."""

from __future__ import annotations

import copy
import json
import operator
import random
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from resilient_operator.resource import crd, models

int_or_percent = st.one_of(st.integers(0, 20), st.integers(0, 100).map(lambda p: f"{p}%"))
durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 600), st.sampled_from(["s", "m"]))
label_keys = st.sampled_from(["tier", "team", "example.com/owner", "version"])
# the language of \A[a-z][a-z0-9]{0,8}\Z, drawn in under half the time st.from_regex takes
label_values = st.builds(operator.add, st.sampled_from(string.ascii_lowercase),
                         st.text(string.ascii_lowercase + string.digits, max_size=8))


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """Specs the models accept (the validation of each part is drawn to pass)."""
    spec: dict[str, Any] = {
        "replicas": draw(st.integers(0, 12)),
        "template": {
            "metadata": {"labels": draw(st.dictionaries(label_keys, label_values, max_size=3))},
            "spec": {"containers": [{
                "name": "app", "image": "registry.example/app:1",
                "resources": {"requests": {"cpu": draw(st.sampled_from(["50m", "0.1", "1"])),
                                           "memory": "32Mi"}},
            }]},
        },
    }
    if draw(st.booleans()):
        n = draw(st.integers(1, 3))
        spec["service"] = {
            "type": draw(st.sampled_from(["ClusterIP", "NodePort"])),
            "ports": [{"name": f"p{i}", "port": 80 + i, "targetPort": 8080 + i}
                      for i in range(n)],
        }
    if draw(st.booleans()):
        avail: dict[str, Any] = {}
        which = draw(st.sampled_from(["min", "max", "none"]))
        if which == "min":
            avail["minAvailable"] = draw(int_or_percent)
        elif which == "max":
            avail["maxUnavailable"] = draw(int_or_percent)
        if draw(st.booleans()):
            avail["zoneSpread"] = {"maxSkew": draw(st.integers(1, 3)),
                                   "whenUnsatisfiable": draw(st.sampled_from(
                                       ["ScheduleAnyway", "DoNotSchedule"]))}
        spec["availability"] = avail
    if draw(st.booleans()):
        low = draw(st.integers(1, 5))
        spec["autoscaling"] = {"minReplicas": low, "maxReplicas": draw(st.integers(low, 20))}
        if draw(st.booleans()):
            spec["autoscaling"]["targetCPUUtilizationPercentage"] = draw(st.integers(10, 90))
        if draw(st.booleans()):
            spec["autoscaling"]["targetMemoryUtilizationPercentage"] = draw(st.integers(10, 90))
    if draw(st.booleans()):
        spec["healing"] = {
            "mode": draw(st.sampled_from(["Enabled", "ObserveOnly", "Disabled"])),
            "notReadyTimeout": draw(durations),
            "maxConcurrent": draw(int_or_percent),
            "stormThreshold": draw(int_or_percent),
        }
    return spec


# ---------------------------------------------------------------------------------------------
# The contract between the CRD and the models: valid specs of every section, and specs made
# invalid (or left valid) by one mutation, at a random place or against one rule.
# e2e/test_contract.py sends each to the API server and compares its verdict with the models'.
#
# The choices that pick a mutation are drawn before the spec it changes: after the
# dictionaries of specs(), Hypothesis's example mutator often replays a draw out of step, and
# a draw out of step comes out as its simplest choice (the first mutation, the first site)
# several times as often as any other.

DURATION_SAMPLES = ["0s", "250ms", "1.5s", "90s", "1m30s", "10m", "1h30m", "2h", "24h"]
valid_durations = st.one_of(durations, st.sampled_from(DURATION_SAMPLES))
# timeouts after which healing or a rollout acts: at least 1s (zero would switch them off)
valid_timeouts = st.one_of(durations, st.sampled_from(DURATION_SAMPLES[2:]))
valid_percents = st.one_of(
    st.sampled_from(["0%", "1%", "9%", "10%", "99%", "100%"]),
    st.integers(0, 100).map(lambda p: f"{p}%"),
)
valid_int_or_percent = st.one_of(st.integers(0, 50), valid_percents)
port_names = st.sampled_from(["http", "grpc", "metrics", "web-1", "a"])


pauses = st.fixed_dictionaries({}, optional={"duration": valid_durations})


def _steps_of(moves: list[tuple[int | None, dict[str, Any]]]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    weight = 1
    for rise, pause in moves:
        if rise is None:
            steps.append({"pause": pause})
        else:
            weight = min(100, weight + rise)
            steps.append({"setWeight": weight})
    return steps


def rollout_steps(max_steps: int = 6) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Valid canary steps: setWeight or pause, weights never decreasing."""
    return st.lists(st.tuples(st.none() | st.integers(0, 40), pauses), min_size=1,
                    max_size=max_steps).map(_steps_of)


# a valid spec.healing: any subset of its fields
healings = st.fixed_dictionaries({}, optional={
    "mode": st.sampled_from(["Enabled", "ObserveOnly", "Disabled"]),
    "notReadyTimeout": valid_timeouts,
    "restartWindow": valid_timeouts,
    "nodeLostTimeout": valid_timeouts,
    "cooldown": valid_durations,
    "maxRestarts": st.integers(1, 20),
    "maxConcurrent": valid_int_or_percent,
    "stormThreshold": valid_int_or_percent,
    "stormMinPods": st.integers(1, 10),
})
rollout_healths = st.fixed_dictionaries({}, optional={
    "maxRestarts": st.integers(0, 5),
    "notReadyTimeout": valid_timeouts,
    "startTimeout": valid_durations,
    "oomKilled": st.sampled_from(["Abort", "Ignore"]),
})
_ROLLOUT_FIELDS = {
    "paused": st.booleans(),
    "maxSurge": valid_int_or_percent,
    "minReadySeconds": st.sampled_from([0, 1, 5, 30, 3600]),
    "progressDeadline": valid_durations,
    "maxPauseDuration": valid_durations,
    "health": rollout_healths,
}
# a valid spec.rollout: Rolling (no steps) or Canary (1..32 steps), any other fields
_most_steps = rollout_steps().map(
    lambda steps: steps + [{"pause": {}} for _ in range(models.MAX_STEPS - len(steps))])
rollouts = st.one_of(
    st.fixed_dictionaries({}, optional={"strategy": st.just("Rolling"), **_ROLLOUT_FIELDS}),
    st.fixed_dictionaries({"strategy": st.just("Canary"),
                           "steps": rollout_steps() | rollout_steps() | _most_steps},
                          optional=_ROLLOUT_FIELDS),
)
# what full_specs adds to specs(), drawn first (see the note above); a rollout in 2 of 3
_extras = st.fixed_dictionaries({
    "healing": st.none() | healings,
    "rollout": st.none() | rollouts | rollouts,
    "annotations": st.none() | st.dictionaries(label_keys, st.sampled_from(["a", "b"]),
                                               max_size=2),
    "no_metadata": st.integers(0, 4).map(lambda n: n == 0),
    "sidecar": st.booleans(),
    "grace": st.none() | st.integers(0, 60),
    "port": st.fixed_dictionaries({}, optional={
        "targetPort": st.integers(1, 65535) | port_names,
        "protocol": st.sampled_from(["TCP", "UDP", "SCTP"])}),
    "service": st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]),
        "annotations": st.dictionaries(label_keys, st.just("x"), max_size=2)}),
    "one_unnamed_port": st.none() | st.integers(1, 65535),
    "topology_key": st.none() | st.sampled_from(
        ["kubernetes.io/hostname", "topology.kubernetes.io/region"]),
    "behavior": st.booleans(),
})


@st.composite
def full_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Specs the models accept, with every section and more of each section's fields than
    :func:`specs` draws: spec.rollout, the whole spec.healing, a single unnamed port, named
    target ports, Service annotations, extra (passed-through) container and pod fields."""
    extra = draw(_extras)
    spec = draw(specs())  # last: see the note above
    template = spec["template"]
    if extra["annotations"] is not None:
        template["metadata"]["annotations"] = extra["annotations"]
    if extra["no_metadata"]:
        del template["metadata"]
    if extra["sidecar"]:
        template["spec"]["containers"].append({
            "name": "sidecar", "image": "registry.example/sidecar:2", "args": ["--verbose"],
            "ports": [{"containerPort": 9090}]})
    if extra["grace"] is not None:
        template["spec"]["terminationGracePeriodSeconds"] = extra["grace"]
    if "service" in spec:
        if extra["one_unnamed_port"] is not None:
            spec["service"]["ports"] = [{"port": extra["one_unnamed_port"]}]
        spec["service"]["ports"][0].update(extra["port"])
        spec["service"].update(extra["service"])
    if extra["topology_key"] and "zoneSpread" in spec.get("availability", {}):
        spec["availability"]["zoneSpread"]["topologyKey"] = extra["topology_key"]
    if extra["behavior"] and "autoscaling" in spec:
        spec["autoscaling"]["behavior"] = {"scaleUp": {"stabilizationWindowSeconds": 0}}
    if extra["healing"] is not None:
        spec["healing"] = extra["healing"]
    if extra["rollout"] is not None:
        spec["rollout"] = extra["rollout"]
    return spec


SpecPath = tuple[str | int, ...]


def field_name(path: SpecPath) -> str:
    """A path in the spec as the API server names it: ``spec.rollout.steps[2].setWeight``."""
    return "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


@dataclass(frozen=True)
class Mutation:
    """One change to a valid spec: ``value`` put at ``path`` (or the field there removed).
    ``field`` is the field a rejection must name: the field itself, or the object whose rule
    across fields the change breaks."""

    kind: str
    path: SpecPath
    value: Any = None
    field: str = ""
    moved_from: SpecPath | None = None

    def __str__(self) -> str:
        shown = "removed" if self.kind.startswith(("remove", "no-")) else (
            f"= {json.dumps(self.value, ensure_ascii=False)}")
        moved = f" (instead of {field_name(self.moved_from)})" if self.moved_from else ""
        return f"{self.kind}: {field_name(self.path)} {shown}{moved}"


@dataclass(frozen=True)
class Case:
    """A spec to judge; ``mutation`` is None for a spec drawn valid."""

    spec: dict[str, Any]
    mutation: Mutation | None = None


@dataclass(frozen=True)
class Site:
    """A place in a spec that the schema describes, set or not."""

    path: SpecPath
    schema: dict[str, Any]
    present: bool
    required: bool


SPEC_SCHEMA = crd.schema_of(models.ResilientServiceSpec)


def schema_at(path: SpecPath) -> dict[str, Any]:
    """The schema of the place at ``path`` ({} inside a part the schema leaves open)."""
    schema = SPEC_SCHEMA
    for p in path:
        if isinstance(p, int):
            schema = schema.get("items", {})
        elif p in (schema.get("properties") or {}):
            schema = schema["properties"][p]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        else:
            return {}
    return schema


def is_open(schema: dict[str, Any]) -> bool:
    """Whether an object of this schema takes keys of any name (a map, or passed through)."""
    return bool(schema.get("x-kubernetes-preserve-unknown-fields")
                or isinstance(schema.get("additionalProperties"), dict))


def sites(value: Any, schema: dict[str, Any] = SPEC_SCHEMA, path: SpecPath = ()) -> list[Site]:
    """Every place under ``value`` that the schema describes: the fields set, and the fields
    its objects could have but do not (passed-through parts only as far as the schema goes)."""
    found: list[Site] = []
    if isinstance(value, dict):
        required = set(schema.get("required", []))
        for key, sub in (schema.get("properties") or {}).items():
            found.append(Site(path + (key,), sub, key in value, key in required))
            if key in value:
                found += sites(value[key], sub, path + (key,))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                found.append(Site(path + (key,), extra, True, False))
                found += sites(item, extra, path + (key,))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found.append(Site(path + (i,), schema["items"], True, False))
            found += sites(item, schema["items"], path + (i,))
    return found


def json_type(schema: dict[str, Any]) -> str:
    """The schema's type: integer, string, boolean, object, array or int-or-string."""
    if schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return str(schema.get("type", "object"))


# Values of another JSON type than the schema's. LAX_TYPE_VALUES are those a lenient parser
# (pydantic's lax mode) coerces to the schema's type: numeric strings, booleans as numbers and
# back; WRONG_TYPE_VALUES are those none should. WHOLE_FLOATS are numbers with a fraction of
# zero, which a JSON schema "integer" accepts.
WRONG_TYPE_VALUES: dict[str, list[Any]] = {
    "integer": ["five", 2.5, [], {}, [1]],
    "string": [5, 2.5, False, [], {}, ["a"]],
    "boolean": ["maybe", 2, 2.5, [], {}],
    "object": ["x", 1, True, [], [{}]],
    "array": ["x", 1, True, {}],
    "int-or-string": [2.5, -1.5, [], {}, [1]],
}
LAX_TYPE_VALUES: dict[str, list[Any]] = {
    "integer": ["5", " 7", "7 ", "5.0", True, False],
    "boolean": ["true", "false", "True", "yes", "off", "1", "0", 0, 1, 1.0, 0.0],
    "int-or-string": [True, False],
}
WHOLE_FLOATS = [1.0, 5.0, 0.0, 1e2]
BAD_DURATIONS = ["10", "1d", "-1s", "", "1.s", ".5s", " 1s", "1s ", "1S", "1 s", "1us", "1ns",
                 "1h-1m", "1e3s", "∞", "10s\n", "s", "1m1", "PT1S", "1,5s"]
BAD_PERCENTS = ["101%", "5.5%", "-5%", "05%", "5", "%", "50 %", "1000%", "", "100%%", "５%",
                "5%\n", "half", "0x10%", "+5%"]
BAD_ENUMS = ["", "x", "unknown", "enabled", "canary", "tcp", "clusterip", " Rolling", "ABORT"]
HUGE_INTEGERS = [2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]
UNKNOWN_KEYS = ["foo", "x-extra", "spec", "Replicas", "extra_field", "enabled", "$ref", ""]


def snake_case(name: str) -> str:
    """The Python name of a field: ``maxRestarts`` -> ``max_restarts``."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _get(spec: dict[str, Any], path: SpecPath) -> Any:
    node: Any = spec
    for p in path:
        node = node[p]
    return node


class Picks:
    """Choices made with a seed drawn before the spec they are made in (see the note above;
    a seed rather than the choices themselves, as Hypothesis draws the bounds of a range, 0
    and the largest, far more often than any value between)."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def number(self) -> int:
        return self._random.randrange(2**16)

    def one(self, options: list[Any] | tuple[Any, ...]) -> Any:
        return options[self._random.randrange(len(options))]


picks = st.integers(0, 2**32 - 1).map(Picks)


def site_mutation(spec: dict[str, Any], pick: Picks) -> Mutation:
    """One change at a random place the schema describes: a value of a wrong type (or of a
    type a lenient parser would coerce), a number out of range or beyond 32/64 bits, a bad
    duration, percentage or enum, an empty string, null, a required field removed, or a key
    the schema does not name added."""
    site: Site = pick.one(sites(spec))
    schema, path, where = site.schema, site.path, field_name(site.path)
    kind_of = json_type(schema)
    choices = ["wrong-type", "null", "unknown-field"]
    if kind_of in LAX_TYPE_VALUES:
        choices.append("lax-type")
    if site.present and site.required:
        choices.append("remove")
    if kind_of == "integer":
        choices += ["out-of-range", "huge-integer", "whole-float"]
    if kind_of == "int-or-string":
        choices += ["bad-percent", "out-of-range", "whole-float"]
    key = path[-1] if path else None
    if site.present and isinstance(key, str) and snake_case(key) != key and not is_open(
            schema_at(path[:-1])):
        choices.append("snake-case-key")
    if "pattern" in schema:
        choices += ["bad-duration", "bad-duration"]
    if "enum" in schema:
        choices.append("bad-enum")
    if kind_of == "string":
        choices.append("empty-string")
    if kind_of == "array":
        choices.append("array-size")
    kind: str = pick.one(choices)
    if kind == "wrong-type":
        return Mutation(kind, path, pick.one(WRONG_TYPE_VALUES[kind_of]), where)
    if kind == "lax-type":
        return Mutation(kind, path, pick.one(LAX_TYPE_VALUES[kind_of]), where)
    if kind == "whole-float":
        return Mutation(kind, path, pick.one(WHOLE_FLOATS), where)
    if kind == "snake-case-key":  # the Python name of the field instead of its JSON name
        moved = path[:-1] + (snake_case(str(key)),)
        return Mutation(kind, moved, _get(spec, path), field_name(moved), moved_from=path)
    if kind in ("null", "remove"):
        return Mutation(kind, path, None, where)
    if kind == "out-of-range":
        low, high = schema.get("minimum", 0), schema.get("maximum")
        options = [low - 1, low - 2 - pick.number() % 1000]
        if high is not None:
            options += [high + 1, high + 2 + pick.number() % 1000]
        return Mutation(kind, path, pick.one(options), where)
    if kind in ("huge-integer", "bad-percent", "bad-duration", "bad-enum"):
        pool = {"huge-integer": HUGE_INTEGERS, "bad-percent": BAD_PERCENTS,
                "bad-duration": BAD_DURATIONS, "bad-enum": BAD_ENUMS}[kind]
        return Mutation(kind, path, pick.one(pool), where)
    if kind == "empty-string":
        return Mutation(kind, path, "", where)
    if kind == "array-size":
        current = _get(spec, path) if site.present else []
        sizes: list[list[Any]] = [[]]
        if "maxItems" in schema:
            sizes.append([current[0] if current else {"pause": {}}] * (schema["maxItems"] + 1))
        size = pick.one(sizes)
        if not size and "minItems" not in schema:  # only a rule of the object around can mind
            where = field_name(path[:-1])
        return Mutation(kind, path, size, where)
    # a key the schema does not name, in the object at the site or in the one around it
    obj_path = path if kind_of == "object" and site.present else path[:-1]
    obj = _get(spec, obj_path)
    if not isinstance(obj, dict):
        return Mutation("null", path, None, where)
    obj_schema = schema_at(obj_path)
    known = set(obj) | set(obj_schema.get("properties") or {})
    options = {k for k in UNKNOWN_KEYS if k not in known}
    options |= {snake_case(k) for k in known} | {k[:1].upper() + k[1:] for k in known if k}
    key = pick.one(sorted(options - known))
    value = pick.one([1, "x", True, {}, []])
    # in a map or a passed-through object any key is welcome (its value may still be wrong)
    kind = "extra-key" if is_open(obj_schema) else "unknown-field"
    return Mutation(kind, obj_path + (key,), value, field_name(obj_path + (key,)))


def apply_mutation(spec: dict[str, Any], mutation: Mutation) -> dict[str, Any]:
    """A copy of ``spec`` with a site mutation made."""
    changed = copy.deepcopy(spec)
    if mutation.moved_from is not None:
        del _get(changed, mutation.moved_from[:-1])[mutation.moved_from[-1]]
    parent = _get(changed, mutation.path[:-1])
    if mutation.kind == "remove":
        del parent[mutation.path[-1]]
    else:
        parent[mutation.path[-1]] = copy.deepcopy(mutation.value)
    return changed


RULE_KINDS = (
    "min-and-max-available", "min-above-max-replicas", "managed-label", "unnamed-ports",
    "steps-without-canary", "canary-without-steps", "canary-with-empty-steps",
    "decreasing-weights", "step-with-weight-and-pause", "empty-step", "weight-0-or-101",
    "port-0-or-65536", "negative-replicas", "too-many-steps", "no-template", "no-containers",
    "no-image", "no-container-name", "no-ports", "no-max-replicas",
)


_steps, _few_steps = rollout_steps(), rollout_steps(3)
_step_params = st.fixed_dictionaries({
    "steps": _steps, "rolling": st.booleans(), "high": st.integers(2, 100),
    "low": st.integers(1, 99), "pause": st.booleans()})
# what a rule mutation of each kind needs besides its picks, drawn before the spec
RULE_PARAMS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "min-and-max-available": st.fixed_dictionaries({
        "low": valid_int_or_percent, "high": valid_int_or_percent}),
    "min-above-max-replicas": st.fixed_dictionaries({
        "high": st.integers(1, 20), "over": st.integers(1, 5)}),
    "managed-label": st.fixed_dictionaries({
        "key": st.sampled_from(models.MANAGED_LABELS),
        "value": st.sampled_from(["web", "x", "resilient-operator"])}),
    "unnamed-ports": st.fixed_dictionaries({
        "n": st.integers(2, 4), "unnamed": st.sets(st.integers(0, 3), min_size=1)}),
    "steps-without-canary": _step_params,
    "decreasing-weights": _step_params,
    "step-with-weight-and-pause": _step_params,
    "empty-step": _step_params,
    "weight-0-or-101": st.fixed_dictionaries({
        "value": st.sampled_from([0, 101]), "before": _few_steps, "after": _few_steps}),
    "port-0-or-65536": st.fixed_dictionaries({"value": st.sampled_from([0, 65536, -1, 70000])}),
    "negative-replicas": st.fixed_dictionaries({"value": st.integers(-(2**31), -1)}),
    "too-many-steps": st.fixed_dictionaries({
        "n": st.integers(models.MAX_STEPS + 1, models.MAX_STEPS + 8)}),
}


def _canary(spec: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    rollout = spec.setdefault("rollout", {})
    rollout.update(strategy="Canary", steps=steps)
    return rollout


def rule_mutation(spec: dict[str, Any], kind: str, params: dict[str, Any]) -> Mutation:
    """Break one rule in ``spec`` (changed in place): a rule across fields, or a bound or a
    required field the random places may seldom reach."""
    pick: Picks = params["pick"]
    if kind == "min-and-max-available":
        avail = spec.setdefault("availability", {})
        avail.update(minAvailable=params["low"], maxUnavailable=params["high"])
        return Mutation(kind, ("availability",), avail, "spec.availability")
    if kind == "min-above-max-replicas":
        auto = spec.setdefault("autoscaling", {})
        auto.update(minReplicas=params["high"] + params["over"], maxReplicas=params["high"])
        return Mutation(kind, ("autoscaling",), auto, "spec.autoscaling")
    if kind == "managed-label":
        metadata = spec["template"].setdefault("metadata", {})
        labels = metadata.setdefault("labels", {})
        labels[params["key"]] = params["value"]
        return Mutation(kind, ("template", "metadata", "labels"), labels,
                        "spec.template.metadata.labels")
    if kind == "unnamed-ports":
        unnamed = {i % params["n"] for i in params["unnamed"]}
        ports = [{"port": 80 + i} if i in unnamed else {"name": f"p{i}", "port": 80 + i}
                 for i in range(params["n"])]
        spec.setdefault("service", {})["ports"] = ports
        return Mutation(kind, ("service", "ports"), ports, "spec.service")
    if kind == "steps-without-canary":
        rollout = spec.setdefault("rollout", {})
        rollout["steps"] = params["steps"]
        if params["rolling"]:
            rollout["strategy"] = "Rolling"
        else:
            rollout.pop("strategy", None)
        return Mutation(kind, ("rollout",), rollout, "spec.rollout")
    if kind in ("canary-without-steps", "canary-with-empty-steps"):
        rollout = spec.setdefault("rollout", {})
        rollout["strategy"] = "Canary"
        rollout.pop("steps", None)
        if kind == "canary-with-empty-steps":
            rollout["steps"] = []
        return Mutation(kind, ("rollout",), rollout, "spec.rollout")
    if kind == "decreasing-weights":
        steps = params["steps"]
        params["low"] = min(params["low"], params["high"] - 1)
        at = pick.number() % (len(steps) + 1)
        steps[at:at] = [{"setWeight": params["high"]}] + ([{"pause": {}}] if params["pause"]
                                                           else [])
        steps.append({"setWeight": params["low"]})
        return Mutation(kind, ("rollout",), _canary(spec, steps), "spec.rollout")
    if kind in ("step-with-weight-and-pause", "empty-step"):
        steps = params["steps"]
        at = pick.number() % len(steps)
        steps[at] = {} if kind == "empty-step" else {
            "setWeight": steps[at].get("setWeight", 100), "pause": {}}
        _canary(spec, steps)
        return Mutation(kind, ("rollout", "steps", at), steps[at], f"spec.rollout.steps[{at}]")
    if kind == "weight-0-or-101":
        # the weights around the bad one stay in order: only the bound is broken
        value, before, after = params["value"], params["before"], params["after"]
        if value == 0:
            before = [s for s in before if "pause" in s]
        else:
            after = [s for s in after if "pause" in s]
        _canary(spec, [*before, {"setWeight": value}, *after])
        path: SpecPath = ("rollout", "steps", len(before), "setWeight")
        return Mutation(kind, path, value, field_name(path))
    if kind == "port-0-or-65536":
        ports = spec.setdefault("service", {"ports": [{"port": 80}]})["ports"]
        at = pick.number() % len(ports)
        ports[at]["port"] = params["value"]
        return Mutation(kind, ("service", "ports", at, "port"), params["value"],
                        f"spec.service.ports[{at}].port")
    if kind == "negative-replicas":
        spec["replicas"] = params["value"]
        return Mutation(kind, ("replicas",), params["value"], "spec.replicas")
    if kind == "too-many-steps":
        steps = [{"pause": {}} for _ in range(params["n"])]
        _canary(spec, steps)
        return Mutation(kind, ("rollout", "steps"), steps, "spec.rollout.steps")
    if kind == "no-template":
        del spec["template"]
        return Mutation(kind, ("template",), None, "spec.template")
    if kind == "no-containers":
        del spec["template"]["spec"]["containers"]
        return Mutation(kind, ("template", "spec", "containers"), None,
                        "spec.template.spec.containers")
    if kind == "no-ports":
        spec.setdefault("service", {"ports": []}).pop("ports")
        return Mutation(kind, ("service", "ports"), None, "spec.service.ports")
    if kind == "no-max-replicas":
        spec.setdefault("autoscaling", {"maxReplicas": 1}).pop("maxReplicas")
        return Mutation(kind, ("autoscaling", "maxReplicas"), None,
                        "spec.autoscaling.maxReplicas")
    assert kind in ("no-image", "no-container-name"), kind
    key = "image" if kind == "no-image" else "name"
    containers = spec["template"]["spec"]["containers"]
    at = pick.number() % len(containers)
    del containers[at][key]
    return Mutation(kind, ("template", "spec", "containers", at, key), None,
                    f"spec.template.spec.containers[{at}].{key}")


@st.composite
def site_mutated_specs(draw: st.DrawFn) -> Case:
    """A valid spec with one mutation at a random place (see :func:`site_mutation`)."""
    pick = draw(picks)
    spec = draw(full_specs())
    mutation = site_mutation(spec, pick)
    return Case(apply_mutation(spec, mutation), mutation)


_rule_kinds = st.sampled_from(RULE_KINDS)
_nothing: st.SearchStrategy[dict[str, Any]] = st.just({})


@st.composite
def rule_mutated_specs(draw: st.DrawFn) -> Case:
    """A valid spec with one rule broken (see :func:`rule_mutation`)."""
    kind = draw(_rule_kinds)
    params = {"pick": draw(picks), **draw(RULE_PARAMS.get(kind, _nothing))}
    spec = draw(full_specs())
    mutation = rule_mutation(spec, kind, params)
    return Case(spec, mutation)


def contract_cases() -> st.SearchStrategy[Case]:
    """A spec to judge: a valid one (a fifth of the cases), else a valid spec with one mutation
    at a random place or against one rule. Most mutated specs are invalid, but a mutation may
    also leave a spec valid (a key passed through, null where a default applies): the
    verdicts to compare are the API server's and the models', not the mutation's intent."""
    return st.one_of(full_specs().map(Case), site_mutated_specs(), site_mutated_specs(),
                     rule_mutated_specs(), rule_mutated_specs())
