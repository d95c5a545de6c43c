"""The CRD and the models are one contract: for thousands of generated specs, valid and invalid,
the API server (a server-side dry-run create) and the pydantic models (``parse_spec``) give the
same verdict, and every rejection by the API server names the field.

Only the CRD is needed (no operator, no KWOK). The specs are derandomized: every run judges the
same ones, so a failure reproduces by running again; CONTRACT_SEED=<n> judges others, and
CONTRACT_EXAMPLES=<n> more or fewer (2000 by default).

Unknown fields are sent with fieldValidation=Strict, as kubectl does: the API server then
rejects them, as the models do, instead of dropping them with a warning.

The disagreements already known are listed in KNOWN: the generator leaves their cases out
(each by a named filter, counted in the summary), and one example of each is pinned by
test_a_known_disagreement_is_still_there, marked xfail(strict=True): when the CRD or the models
are fixed, that example passes, fails the run, and its entry is to be removed.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, seed, settings
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from pydantic import ValidationError
from tests.strategies import (
    Case,
    contract_cases,
    field_name,
    schema_at,
    snake_case,
)

from resilient_operator.resource import crd, models
from resilient_operator.resource.models import parse_spec

from .conftest import kubectl

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "2000"))
SEED = os.environ.get("CONTRACT_SEED")
IN_FLIGHT = 2  # requests under way while the next specs are drawn


# -- the two judges -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Accepted, or rejected with the message and the fields the rejection names."""

    accepted: bool
    message: str = ""
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.accepted:
            return "accepted"
        return f"rejected: {self.message if len(self.message) < 500 else self.message[:500] + '…'}"

    def names(self, wanted: str, exactly: bool = False) -> bool:
        """Whether the rejection names ``wanted`` (or, unless ``exactly``, a field in it)."""
        inside = re.compile(re.escape(wanted) + (r"$" if exactly else r"(?![\w-])"))
        return any(inside.match(f.lstrip(".")) for f in self.fields) or (
            not exactly and bool(inside.search(self.message)))


class ApiServer:
    """Creates a ResilientService with dryRun=All, through one ApiClient."""

    def __init__(self, api: k8s.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace

    def verdict(self, spec: dict[str, Any]) -> Verdict:
        body = {"apiVersion": f"{models.GROUP}/{models.VERSION}", "kind": models.KIND,
                "metadata": {"name": "contract"}, "spec": spec}
        try:
            self.api.create_namespaced_custom_object(
                models.GROUP, models.VERSION, self.namespace, models.PLURAL, body,
                dry_run="All", field_validation="Strict")
        except k8s.ApiException as e:
            if e.status not in (400, 422):  # 400: strict decoding (unknown fields)
                raise
            status = json.loads(e.body)
            causes = (status.get("details") or {}).get("causes") or []
            return Verdict(False, status.get("message", ""),
                           tuple(c.get("field", "") for c in causes))
        return Verdict(True)


def model_verdict(spec: dict[str, Any]) -> Verdict:
    try:
        parse_spec(spec)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        locs = tuple(field_name(tuple(err["loc"])) for err in errors)
        message = "; ".join(f"{loc}: {err['msg']}" for loc, err in zip(locs, errors, strict=True))
        return Verdict(False, message, locs)
    return Verdict(True)


# -- the disagreements known (see the module's docstring) ----------------------------------------


def _models_accept(case: Case) -> bool:
    return model_verdict(case.spec).accepted


SCALE_REPLICAS = crd.build_crd()["spec"]["versions"][0]["subresources"]["scale"][
    "specReplicasPath"].lstrip(".")


def _read_by_a_rule(path: tuple[str | int, ...]) -> bool:
    """Whether a CEL rule of the CRD reads the value at ``path`` (its own rule, or one of an
    object around it that names it), or the scale subresource does."""
    if field_name(path) == SCALE_REPLICAS:
        return True
    if schema_at(path).get("x-kubernetes-validations"):
        return True
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    return any(re.search(rf"\.{re.escape(name)}\b", rule["rule"])
               for i in range(len(path))
               for rule in schema_at(path[:i]).get("x-kubernetes-validations", []))


def _python_name_of_a_field(case: Case) -> bool:
    m = case.mutation
    if m is None or not isinstance(m.path[-1], str):
        return False
    fields = schema_at(m.path[:-1]).get("properties") or {}
    return any(snake_case(f) == m.path[-1] != f for f in fields)


@dataclass(frozen=True)
class Known:
    """A disagreement found, and left to fix in models.py or the CRD."""

    name: str
    server: str  # what the API server does
    model: str  # what the models do
    matches: Callable[[Case], bool]
    example: dict[str, Any]  # a spec that shows it


def _spec(**parts: Any) -> dict[str, Any]:
    return {"template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}, **parts}


KNOWN = [
    Known("a value of another JSON type that pydantic's lax mode coerces",
          "must be of type integer/boolean: rejected",
          "coerced (\"3\" -> 3, \" 7\" -> 7, True -> 1, \"yes\"/\"off\"/0/1 -> bool): accepted",
          lambda c: c.mutation is not None and c.mutation.kind == "lax-type"
          and _models_accept(c),
          _spec(replicas="3")),
    Known("a whole float (5.0) where a CEL rule or the scale subresource reads an integer",
          "the schema's integer takes 5.0, but a rule's evaluation fails on a float64 "
          "(IntOrPercent fields, autoscaling min/maxReplicas, steps[].setWeight), and so does "
          "the scale subresource's .spec.replicas accessor: rejected, and for a field read by "
          "the rule of an object around it the rejection names that object (spec.autoscaling, "
          "spec.rollout.steps[2]: 'a step is either setWeight or pause'), not the field",
          "5.0 -> 5: accepted (where the value is otherwise valid)",
          lambda c: c.mutation is not None and c.mutation.kind == "whole-float"
          and _read_by_a_rule(c.mutation.path),
          _spec(rollout={"maxSurge": 1.0})),
    Known("an integer beyond 64 bits",
          "decoded as a float: must be of type integer: rejected",
          "Python ints have no bound (no le= on the field): accepted",
          lambda c: c.mutation is not None and c.mutation.kind == "huge-integer"
          and abs(c.mutation.value) >= 2**63 and _models_accept(c),
          _spec(healing={"maxRestarts": 2**64})),
]


def known_disagreement(case: Case) -> Known | None:
    """The entry of KNOWN this case falls under, if any."""
    return next((k for k in KNOWN if k.matches(case)), None)


# -- the test -----------------------------------------------------------------------------------


@dataclass
class Finding:
    """A case whose verdicts differ, or whose rejection does not name the field."""

    what: str
    case: Case
    server: Verdict
    model: Verdict

    def signature(self) -> tuple[str, ...]:
        m = self.case.mutation
        where = re.sub(r"\[\d+\]", "[]", field_name(m.path)) if m else "-"
        return (self.what, m.kind if m else "valid", where,
                "accepted by the API server" if self.server.accepted else "rejected by it")

    def render(self) -> str:
        m = self.case.mutation
        return "\n".join([
            f"  mutation:   {m if m else '(none: a spec drawn valid)'}",
            f"  API server: {self.server}",
            f"  pydantic:   {self.model}",
            f"  spec:       {json.dumps(self.case.spec, sort_keys=True, ensure_ascii=False)}",
        ])


@dataclass
class Tally:
    judged: int = 0
    accepted: int = 0
    rejected: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)

    def report(self, limit: int = 3) -> str:
        groups: dict[tuple[str, ...], list[Finding]] = {}
        for f in self.findings:
            groups.setdefault(f.signature(), []).append(f)
        lines = [f"{len(self.findings)} findings in {len(groups)} groups "
                 f"(what | mutation | where | API server), at most {limit} cases each:"]
        for sig, found in sorted(groups.items()):
            lines.append(f"- {' | '.join(sig)}: {len(found)} case(s)")
            lines += [f.render() for f in found[:limit]]
        return "\n".join(lines)


def judge(case: Case, by_server: Verdict, tally: Tally) -> None:
    by_model = model_verdict(case.spec)
    tally.judged += 1
    tally.kinds[case.mutation.kind if case.mutation else "valid"] += 1
    if by_server.accepted != by_model.accepted:
        tally.findings.append(Finding("verdicts differ", case, by_server, by_model))
    elif by_server.accepted:
        tally.accepted += 1
    else:
        tally.rejected += 1
        m = case.mutation
        if m is None:
            tally.findings.append(Finding("a spec drawn valid is rejected by both", case,
                                          by_server, by_model))
        elif not by_server.names(m.field) and not (
                # a rule across fields names the object it is a rule of; the message then
                # names the field (a null: the field is gone, the object is enough)
                any(by_server.names(f, exactly=True) for f in _objects_with_rules_around(m.path))
                and (m.kind == "null" or str(m.path[-1]) in by_server.message)):
            tally.findings.append(Finding(f"the rejection does not name {m.field}", case,
                                          by_server, by_model))


def _objects_with_rules_around(path: tuple[str | int, ...]) -> list[str]:
    """The objects around ``path`` that have CEL rules. The API server drops a field set to
    null, and a rule that then misses it names the object it is a rule of (a required field
    missing is named itself)."""
    return [field_name(path[:i]) for i in range(1, len(path))
            if schema_at(path[:i]).get("x-kubernetes-validations")]


@pytest.fixture(scope="module")
def api_server(cluster: None) -> Iterator[ApiServer]:
    """The API server, to judge specs in one namespace of this module's own."""
    namespace = f"e2e-contract-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", namespace)
    api_client = k8s_config.new_client_from_config()
    try:
        yield ApiServer(k8s.CustomObjectsApi(api_client), namespace)
    finally:
        api_client.close()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_api_server_and_the_models_agree_on_every_spec(
        api_server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    server = api_server
    tally = Tally()
    seen: set[str] = set()
    sent: list[tuple[Case, Future[Verdict]]] = []

    def not_a_known_disagreement(case: Case) -> bool:
        known = known_disagreement(case)
        if known is not None:
            tally.left_out[known.name] += 1
        return known is None

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(contract_cases().filter(not_a_known_disagreement))
    def draw(case: Case) -> None:
        key = json.dumps(case.spec, sort_keys=True)
        assume(key not in seen)  # a repeated spec is not counted: EXAMPLES distinct ones
        seen.add(key)
        sent.append((case, requests.submit(server.verdict, case.spec)))

    if SEED is not None:
        draw = seed(int(SEED))(draw)
    started = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as requests:
        draw()
        for case, verdict in sent:
            judge(case, verdict.result(), tally)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[contract] {tally.judged} distinct specs judged in {elapsed:.1f}s "
              f"({'derandomized' if SEED is None else f'CONTRACT_SEED={SEED}'}): "
              f"{tally.accepted} accepted and {tally.rejected} rejected by both, "
              f"{len(tally.findings)} findings")
        print("[contract] cases: " + ", ".join(f"{k} {n}" for k, n in
                                                sorted(tally.kinds.items())))
        print("[contract] left out as known disagreements: " + (", ".join(
            f"{k} ({n})" for k, n in tally.left_out.items()) or "none"))
    assert tally.judged >= EXAMPLES, f"only {tally.judged} specs were judged"
    if tally.findings:
        pytest.fail(tally.report(), pytrace=False)


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="a known disagreement (KNOWN): "
                   "when this passes, it is fixed, and its entry and filter are to go")
@pytest.mark.parametrize("known", KNOWN, ids=[k.name for k in KNOWN])
def test_a_known_disagreement_is_still_there(api_server: ApiServer, known: Known) -> None:
    by_server, by_model = api_server.verdict(known.example), model_verdict(known.example)
    assert by_server.accepted == by_model.accepted, (
        f"{known.name}: API server {by_server}; pydantic {by_model}")
