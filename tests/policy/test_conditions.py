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
    assert [c["message"] for c in conds] == [
        "3/3 available, 2 needed", "3/3 available, 2 needed",
        "3/3 pods updated and ready", "nothing needs attention"]
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


# -- what the mutation tests found untested -----------------------------------------------------

def spec_of(replicas: int = 4, **availability):
    body = {"replicas": replicas,
            "template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}
    if availability:
        body["availability"] = availability
    return parse_spec(body)


def test_pods_needed_follow_the_availability_policy():
    # minAvailable: a count or a percentage rounded up, never more than the replicas
    assert conditions.required_available(spec_of(4, minAvailable=3), 4) == 3
    assert conditions.required_available(spec_of(4, minAvailable="30%"), 4) == 2
    assert conditions.required_available(spec_of(2, minAvailable=5), 2) == 2
    # maxUnavailable: the replicas minus a count or a percentage rounded up
    assert conditions.required_available(spec_of(4, maxUnavailable=1), 4) == 3
    assert conditions.required_available(spec_of(4, maxUnavailable="30%"), 4) == 2
    # no policy: 75% of the replicas (25% may be down, rounded up), at least one pod
    assert conditions.required_available(spec_of(8), 8) == 6
    assert conditions.required_available(spec_of(3), 3) == 2
    assert conditions.required_available(spec_of(1), 1) == 1
    assert conditions.required_available(spec_of(4, maxUnavailable=4), 4) == 1
    assert conditions.required_available(spec_of(0), 0) == 0


def test_a_disruption_budget_that_forbids_every_eviction_is_a_problem():
    assert conditions.pdb_problem(spec_of(4)) is None
    assert conditions.pdb_problem(spec_of(0, minAvailable=1)) is None  # scaled to zero
    assert conditions.pdb_problem(spec_of(4, minAvailable=3)) is None
    blocked = conditions.pdb_problem(spec_of(4, minAvailable=4))
    assert blocked == conditions.Problem(conditions.PDB_UNSATISFIABLE, (
        "availability.minAvailable 4 needs 4 of 4 replicas up at all times, so no pod may "
        "ever be evicted: node drains and healing would be blocked. Lower "
        "availability.minAvailable below the replicas or raise replicas."))
    # a percentage is rounded up, as the disruption controller does: 80% of 4 is all 4
    assert conditions.pdb_problem(spec_of(4, minAvailable="80%")) is not None
    assert conditions.pdb_problem(spec_of(4, minAvailable="70%")) is None
    none_down = conditions.pdb_problem(spec_of(4, maxUnavailable="10%"))  # rounds up to 1
    assert none_down is None
    none_down = conditions.pdb_problem(spec_of(4, maxUnavailable=0))
    assert none_down == conditions.Problem(conditions.PDB_UNSATISFIABLE, (
        "availability.maxUnavailable 0 allows no pod of 4 to be down, so no pod may ever be "
        "evicted: node drains and healing would be blocked. Raise availability.maxUnavailable "
        "to at least 1."))


def test_scaled_to_zero_is_available_and_creating_is_progressing():
    zero = spec_of(0)
    conds, _ = conditions.compute(zero, 1, deployment(0, 0, 0, 0), [])
    assert by_type(conds)["Available"] == ("True", "ScaledToZero")
    assert conds[1]["message"] == "scaled to zero replicas"
    assert conditions.state_of(conds) == "Ready"
    conds, counts = conditions.compute(spec_of(3), 1, None, [])
    assert by_type(conds)["Progressing"] == ("True", "Creating")
    assert conds[2]["message"] == "creating the Deployment"
    assert by_type(conds)["Ready"] == ("False", "MinimumReplicasUnavailable")
    assert conds[0]["message"] == conds[1]["message"] == "0/3 available, 2 needed"
    assert counts == {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0,
                      "updatedReplicas": 0}


def test_available_counts_exactly_the_pods_needed():
    spec = spec_of(4, minAvailable=3)
    conds, _ = conditions.compute(spec, 1, deployment(4, 3, 3, 4), [])
    assert by_type(conds)["Available"] == ("True", "MinimumReplicasAvailable")
    available = next(c for c in conds if c["type"] == "Available")
    assert available["message"] == "3/4 available, 3 needed"
    conds, _ = conditions.compute(spec, 1, deployment(4, 2, 2, 4), [])
    assert by_type(conds)["Available"] == ("False", "MinimumReplicasUnavailable")


def test_a_deployment_not_yet_settled_or_with_old_pods_is_rolling_out():
    spec = spec_of(3)
    # the controller has not seen the latest spec yet, though the counts look complete
    conds, _ = conditions.compute(spec, 1, deployment(generation=2, observed=1), [])
    assert by_type(conds)["Progressing"] == ("True", "RollingOut")
    # every pod updated, but an old one is still there
    conds, _ = conditions.compute(spec, 1, deployment(replicas=4, updated=3), [])
    assert by_type(conds)["Progressing"] == ("True", "RollingOut")
    assert conds[2]["message"] == "3/3 pods updated, 4 in all"


def test_a_scale_is_progressing_until_every_pod_is_ready():
    spec = spec_of(3)
    # scaling down: more pods than desired, all updated
    conds, _ = conditions.compute(spec, 1, deployment(replicas=4, ready=4, available=4,
                                                      updated=4), [])
    assert by_type(conds)["Progressing"] == ("True", "Scaling")
    # scaling up: the pods are there, one is not ready yet
    conds, _ = conditions.compute(spec, 1, deployment(ready=2, available=2), [])
    assert by_type(conds)["Progressing"] == ("True", "Scaling")
    assert next(c for c in conds if c["type"] == "Progressing")["message"] == "2/3 ready"
    assert by_type(conds)["Ready"] == ("False", "Scaling")
    assert conds[0]["message"] == "2/3 ready"
    assert conditions.state_of(conds) == "Progressing"


def test_a_rollout_in_progress_overrides_progressing_and_a_deadline_is_a_problem():
    spec = spec_of(3)
    conds, _ = conditions.compute(spec, 1, deployment(), [],
                                  progressing_override=(True, "RolloutPaused", "step 2/4"))
    assert by_type(conds)["Progressing"] == ("True", "RolloutPaused")
    assert by_type(conds)["Ready"] == ("False", "RolloutPaused")
    stuck = deployment()
    stuck["status"]["conditions"] = [
        {"type": "Available", "reason": "ProgressDeadlineExceeded"},
        {"type": "Progressing", "reason": "NewReplicaSetAvailable", "message": "fine"},
        {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]
    conds, _ = conditions.compute(spec, 1, stuck, [])
    degraded = next(c for c in conds if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "ProgressDeadlineExceeded")
    assert degraded["message"] == "the rollout made no progress: too slow"
    del stuck["status"]["conditions"][2]["message"]
    conds, _ = conditions.compute(spec, 1, stuck, [])
    assert conds[3]["message"] == "the rollout made no progress: "


def test_the_counts_add_up_over_every_track():
    stable, canary = deployment(3, 3, 3, 0), deployment(1, 0, 0, 1)
    del canary["status"]["readyReplicas"]
    assert conditions.replica_counts([stable, canary]) == {
        "replicas": 4, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": 1}
    conds, counts = conditions.compute(spec_of(4), 1, stable, [],
                                       counts=conditions.replica_counts([stable, canary]))
    assert counts["replicas"] == 4 and by_type(conds)["Available"][0] == "True"


def test_several_problems_are_all_named_the_first_gives_the_reason():
    problems = [conditions.Problem("First", "one"), conditions.Problem("Second", "two")]
    conds, _ = conditions.compute(spec_of(3), 1, deployment(), problems)
    degraded = next(c for c in conds if c["type"] == "Degraded")
    assert (degraded["reason"], degraded["message"]) == ("First", "one; two")
    assert by_type(conds)["Ready"] == ("False", "First")
    assert conds[0]["message"] == "one; two"


def test_an_autoscaler_without_metrics_is_a_problem_only_after_its_grace():
    assert conditions.autoscaler_problem(None, 1000.0) == (None, None)

    def hpa(reason, since="1970-01-01T00:16:40Z"):  # 1000.0
        return {"status": {"conditions": [
            {"type": "AbleToScale", "status": "False", "reason": "Other"},
            {"type": "ScalingActive", "status": "False", "reason": reason,
             "message": "no metrics", "lastTransitionTime": since}]}}

    assert conditions.autoscaler_problem(hpa("FailedGetResourceMetric"), 1089.0) == (
        None, 1090.0)
    problem, again = conditions.autoscaler_problem(hpa("FailedGetResourceMetric"), 1090.0)
    assert again is None and problem == conditions.Problem(conditions.AUTOSCALER_BLIND, (
        "the autoscaler cannot scale: FailedGetResourceMetric: no metrics. Check that "
        "metrics-server runs and the containers set resource requests for the autoscaling "
        "targets."))
    silent = hpa("FailedGetResourceMetric")
    del silent["status"]["conditions"][1]["message"]
    problem, _ = conditions.autoscaler_problem(silent, 1090.0)
    assert problem is not None
    assert problem.message.startswith("the autoscaler cannot scale: FailedGetResourceMetric: . ")
    # scaling disabled on purpose (replicas 0) is not a problem
    assert conditions.autoscaler_problem(hpa("ScalingDisabled"), 5000.0) == (None, None)
    active = {"status": {"conditions": [{"type": "ScalingActive", "status": "True"}]}}
    assert conditions.autoscaler_problem(active, 5000.0) == (None, None)


def test_the_paused_condition_says_who_holds_the_rollout():
    held = conditions.paused("Paused", True, 3)
    assert (held["status"], held["reason"], held["observedGeneration"]) == (
        "True", "PausedBySpec", 3)
    assert held["message"] == "spec.rollout.paused is true"
    step = conditions.paused("Paused", False, 3)
    assert (step["status"], step["reason"]) == ("True", "WaitingForPromote")
    assert step["message"] == "a pause step waits for `kubectl rsvc promote`"
    moving = conditions.paused("Progressing", True, 3)
    assert (moving["status"], moving["reason"], moving["message"]) == (
        "False", "NotPaused", "no rollout step is paused")


def test_a_new_condition_is_stamped_now():
    stamped = conditions.with_times([{"type": "Ready", "status": "True"}], [], "T1")
    assert stamped == [{"type": "Ready", "status": "True", "lastTransitionTime": "T1"}]
    unstamped = [{"type": "Ready", "status": "True"}]  # an old status without a time
    assert conditions.with_times([{"type": "Ready", "status": "True"}], unstamped,
                                 "T1")[0]["lastTransitionTime"] == "T1"
