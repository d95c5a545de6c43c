"""The CRD and the models are one contract: for thousands of generated specs, valid and invalid,
the API server (a server-side dry-run create) and the pydantic models (``parse_spec``) give the
same verdict, and every rejection by the API server names the field.

Only the CRD is needed (no operator, no KWOK). The specs are derandomized: every run judges the
same ones, so a failure reproduces by running again; CONTRACT_SEED=<n> judges others, and
CONTRACT_EXAMPLES=<n> more or fewer (2000 by default).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from pydantic import ValidationError
from tests.strategies import Case, contract_cases, field_name

from resilient_operator.resource import models
from resilient_operator.resource.models import parse_spec

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "2000"))
SEED = os.environ.get("CONTRACT_SEED")


@dataclass(frozen=True)
class Verdict:
    """Accepted, or rejected with the message and the fields the rejection names."""

    accepted: bool
    message: str = ""
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.accepted:
            return "accepted"
        return f"rejected: {self.message if len(self.message) < 400 else self.message[:400] + '…'}"

    def names(self, wanted: str) -> bool:
        """Whether the rejection names ``wanted`` (or a field inside it)."""
        inside = re.compile(re.escape(wanted) + r"(?![\w-])")
        return any(inside.match(f.lstrip(".")) for f in self.fields) or bool(
            inside.search(self.message))


class ApiServer:
    """Creates a ResilientService with dryRun=All through one ApiClient (one connection)."""

    def __init__(self, api: k8s.CustomObjectsApi, namespace: str) -> None:
        self.api, self.namespace = api, namespace

    def verdict(self, spec: dict) -> Verdict:
        body = {"apiVersion": f"{models.GROUP}/{models.VERSION}", "kind": models.KIND,
                "metadata": {"name": "contract"}, "spec": spec}
        try:
            self.api.create_namespaced_custom_object(
                models.GROUP, models.VERSION, self.namespace, models.PLURAL, body,
                dry_run="All", field_validation="Strict", _preload_content=False)
        except k8s.ApiException as e:
            if e.status not in (400, 422):  # 400: strict decoding (unknown fields)
                raise
            status = json.loads(e.body)
            causes = (status.get("details") or {}).get("causes") or []
            return Verdict(False, status.get("message", ""),
                           tuple(c.get("field", "") for c in causes))
        return Verdict(True)


def model_verdict(spec: dict) -> Verdict:
    try:
        parse_spec(spec)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        locs = tuple(field_name(tuple(err["loc"])) for err in errors)
        message = "; ".join(f"{loc}: {err['msg']}" for loc, err in zip(locs, errors, strict=True))
        return Verdict(False, message, locs)
    return Verdict(True)


@dataclass
class Finding:
    """A case whose verdicts disagree, or whose rejection does not name the field."""

    what: str
    case: Case
    server: Verdict
    model: Verdict

    def signature(self) -> tuple[str, ...]:
        m = self.case.mutation
        where = re.sub(r"\[\d+\]", "[]", field_name(m.path)) if m else "-"
        return (self.what, m.kind if m else "valid", where, str(self.server.accepted))

    def render(self) -> str:
        m = self.case.mutation
        return "\n".join([
            f"  mutation:  {m if m else '(none: a spec drawn valid)'}",
            f"  API server {self.server}",
            f"  pydantic   {self.model}",
            f"  spec:      {json.dumps(self.case.spec, sort_keys=True, ensure_ascii=False)}",
        ])


@dataclass
class Tally:
    judged: int = 0
    seen: set[str] = field(default_factory=set)
    accepted: int = 0
    rejected: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    server_seconds: float = 0.0

    def report(self, limit: int = 3) -> str:
        groups: dict[tuple[str, ...], list[Finding]] = {}
        for f in self.findings:
            groups.setdefault(f.signature(), []).append(f)
        lines = [f"{len(self.findings)} findings in {len(groups)} groups "
                 "(what, mutation, where, accepted by the API server):"]
        for sig, found in sorted(groups.items()):
            lines.append(f"- {' | '.join(sig)}: {len(found)} case(s)")
            lines += [f.render() for f in found[:limit]]
        return "\n".join(lines)


@pytest.fixture(scope="module")
def api_server(cluster: None) -> Iterator[Callable[[str], ApiServer]]:
    api_client = k8s_config.new_client_from_config()
    try:
        yield lambda namespace: ApiServer(k8s.CustomObjectsApi(api_client), namespace)
    finally:
        api_client.close()


def judge(case: Case, server: ApiServer, tally: Tally) -> None:
    key = json.dumps(case.spec, sort_keys=True)
    tally.judged += 1
    tally.seen.add(key)
    tally.kinds[case.mutation.kind if case.mutation else "valid"] += 1
    started = time.perf_counter()
    by_server = server.verdict(case.spec)
    tally.server_seconds += time.perf_counter() - started
    by_model = model_verdict(case.spec)
    if by_server.accepted != by_model.accepted:
        tally.findings.append(Finding("verdicts differ", case, by_server, by_model))
        return
    if by_server.accepted:
        tally.accepted += 1
        return
    tally.rejected += 1
    if case.mutation is None:
        tally.findings.append(Finding("a spec drawn valid is rejected", case, by_server,
                                      by_model))
    elif not by_server.names(case.mutation.field):
        tally.findings.append(Finding(f"the rejection does not name {case.mutation.field}",
                                      case, by_server, by_model))


def test_the_api_server_and_the_models_agree_on_every_spec(
        api_server: Callable[[str], ApiServer], ns: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    server = api_server(ns)
    tally = Tally()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=SEED is None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(contract_cases())
    def run(case: Case) -> None:
        judge(case, server, tally)

    if SEED is not None:
        run = seed(int(SEED))(run)
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[contract] {tally.judged} specs judged ({len(tally.seen)} distinct) in "
              f"{elapsed:.1f}s ({tally.server_seconds:.1f}s waiting for the API server), "
              f"{'derandomized' if SEED is None else f'CONTRACT_SEED={SEED}'}: "
              f"{tally.accepted} accepted and {tally.rejected} rejected by both, "
              f"{len(tally.findings)} findings")
        print("[contract] cases: " + ", ".join(f"{k} {n}" for k, n in
                                                sorted(tally.kinds.items())))
    assert tally.judged >= EXAMPLES, f"only {tally.judged} specs were judged"
    if tally.findings:
        pytest.fail(tally.report(), pytrace=False)
