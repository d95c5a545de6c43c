"""Status conditions tell the truth, and transition times move only on a change."""

from __future__ import annotations

import copy

from resilient_operator.policy import conditions
from resilient_operator.resource.models import parse_spec


def deployment(replicas=3, ready=3, available=3, updated=3, generation=1, observed=1):
    return {"metadata": {"generation": generation},
            "status": {"replicas": replicas, "readyReplicas": ready,
                       "availableReplicas": available, "updatedReplicas": updated,
                       "observedGeneration": observed}}


def by_type(conds):
    return {c["type"]: (c["status"], c["reason"]) for c in conds}


def test_all_ready(sample):
    conds, counts = conditions.compute(parse_spec(sample["spec"]), 4, deployment(), [])
    assert by_type(conds) == {
        "Ready": ("True", "AllGood"), "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("False", "RolloutComplete"), "Degraded": ("False", "AsExpected")}
    assert all(c["observedGeneration"] == 4 for c in conds)
    assert conditions.state_of(conds) == "Ready"
    assert counts["readyReplicas"] == 3


def test_pods_not_ready_yet(sample):
    conds, _ = conditions.compute(parse_spec(sample["spec"]), 1,
                                  deployment(ready=1, available=1), [])
    assert by_type(conds)["Available"] == ("False", "MinimumReplicasUnavailable")
    assert by_type(conds)["Ready"][0] == "False"
    assert conditions.state_of(conds) == "Unavailable"


def test_rolling_out(sample):
    conds, _ = conditions.compute(parse_spec(sample["spec"]), 2,
                                  deployment(replicas=4, updated=1, generation=2), [])
    assert by_type(conds)["Progressing"] == ("True", "RollingOut")
    assert conditions.state_of(conds) == "Progressing"


def test_degraded_names_the_problem(sample):
    problem = conditions.Problem("Something", "fix this")
    conds, _ = conditions.compute(parse_spec(sample["spec"]), 1, deployment(), [problem])
    degraded = next(c for c in conds if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["message"] == "fix this"
    assert conditions.state_of(conds) == "Degraded"


def test_unsatisfiable_pdb_is_detected(sample):
    spec = copy.deepcopy(sample["spec"])
    spec["availability"]["minAvailable"] = 3
    del spec["autoscaling"]
    problem = conditions.pdb_problem(parse_spec(spec))
    assert problem is not None and "minAvailable" in problem.message
    spec["availability"]["minAvailable"] = "50%"
    assert conditions.pdb_problem(parse_spec(spec)) is None


def test_transition_time_changes_only_with_status():
    old = [{"type": "Ready", "status": "True", "lastTransitionTime": "T0"}]
    same = conditions.with_times([{"type": "Ready", "status": "True"}], old, "T1")
    flipped = conditions.with_times([{"type": "Ready", "status": "False"}], old, "T1")
    assert same[0]["lastTransitionTime"] == "T0"
    assert flipped[0]["lastTransitionTime"] == "T1"
