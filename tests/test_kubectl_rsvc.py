"""kubectl rsvc: what a status prints, when --watch stops and with which code, and when a command
is refused before it is sent; all from plain resource dicts, no cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from resilient_operator.cli import kubectl_rsvc as cli
from resilient_operator.cli.kubectl_rsvc import CURRENT, DONE, FAILED, PENDING
from resilient_operator.resource.models import PROMOTE_FULL_PREFIX
from resilient_operator.resource.times import parse_time

STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "1m"}}]
NEW, OLD = "7f9c0e12ab", "5d2a33f0c1"


def resource(phase: str | None = "Idle", *, strategy: str = "Canary",
             steps: list[dict[str, Any]] | None = None, generation: int = 2,
             observed: int | None = 2, conditions: list[dict[str, Any]] | None = None,
             **rollout: Any) -> dict[str, Any]:
    """A ResilientService as the API server returns it, status.rollout from the keywords."""
    spec_rollout: dict[str, Any] = {"strategy": strategy}
    if strategy == "Canary":
        spec_rollout["steps"] = STEPS if steps is None else steps
    status: dict[str, Any] = {"conditions": conditions or []}
    if observed is not None:
        status["observedGeneration"] = observed
    if phase is not None:
        status["rollout"] = {"phase": phase, "strategy": strategy, "revision": NEW,
                             "stableRevision": OLD, **rollout}
    return {"apiVersion": "resilience.dev/v1alpha1", "kind": "ResilientService",
            "metadata": {"name": "web", "namespace": "shop", "generation": generation,
                         "resourceVersion": "42"},
            "spec": {"replicas": 2, "template": {}, "rollout": spec_rollout},
            "status": status}


def marks(obj: dict[str, Any]) -> tuple[list[str], str]:
    rollout = cli.rollout_of(obj)
    count = len(cli.steps_of(obj))
    return cli.step_marks(count, rollout), cli.promotion_mark(count, rollout)


# -- step marks ---------------------------------------------------------------------------------


def test_a_progressing_rollout_marks_the_step_under_way():
    obj = resource("Progressing", stepIndex=0, desiredWeight=20, actualWeight=0)
    assert marks(obj) == ([CURRENT, PENDING, PENDING, PENDING], PENDING)


def test_a_paused_rollout_marks_the_pause_as_current_and_the_steps_before_as_done():
    obj = resource("Paused", stepIndex=1, desiredWeight=20, actualWeight=20)
    assert marks(obj) == ([DONE, CURRENT, PENDING, PENDING], PENDING)


def test_a_promoting_rollout_has_every_step_done_and_the_promotion_under_way():
    assert marks(resource("Promoting", stepIndex=4)) == ([DONE] * 4, CURRENT)
    # promote --full from the first step: every step counts as passed
    assert marks(resource("Promoting", stepIndex=4, steps=STEPS[:2])) == ([DONE] * 2, CURRENT)


def test_an_aborted_rollout_marks_the_step_it_failed_at():
    abort = {"revision": NEW, "reason": "CanaryRestarts", "message": "new pod web-canary-x "
             "restarted 3 times (health.maxRestarts 1)", "time": "2026-01-01T10:00:00Z"}
    for phase in ("Aborting", "Aborted"):
        obj = resource(phase, stepIndex=2, abortedRevision=NEW, lastAbort=abort)
        assert marks(obj) == ([DONE, DONE, FAILED, PENDING], PENDING)
    # aborted while promoting: the promotion failed, not a step
    obj = resource("Aborted", stepIndex=4, abortedRevision=NEW, lastAbort=abort)
    assert marks(obj) == ([DONE] * 4, FAILED)


def test_a_completed_rollout_has_everything_done():
    obj = resource("Completed", stepIndex=4, stableRevision=NEW)
    assert marks(obj) == ([DONE] * 4, DONE)


def test_no_rollout_yet_leaves_every_step_pending():
    assert marks(resource("Idle", revision=OLD)) == ([PENDING] * 4, PENDING)
    assert marks(resource(None)) == ([PENDING] * 4, PENDING)


# -- the status as text -------------------------------------------------------------------------


def test_status_text_of_a_paused_canary():
    obj = resource(
        "Paused", stepIndex=1, desiredWeight=20, actualWeight=50, stablePods=1, canaryPods=1,
        message="step 2/4: paused until `kubectl rsvc promote`",
        history=[{"revision": OLD, "result": "Promoted", "started": "2026-01-01T09:00:00Z",
                  "finished": "2026-01-01T09:02:00Z"}],
        conditions=[
            {"type": "Ready", "status": "False", "reason": "RolloutPaused", "message": "m"},
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Paused", "status": "True", "reason": "WaitingForPromote",
             "message": "a pause step waits for `kubectl rsvc promote`"},
        ])
    text = cli.format_status(obj)
    lines = text.splitlines()
    assert lines[0] == "ResilientService shop/web"
    assert "Phase:       Paused" in lines
    assert "Strategy:    Canary" in lines
    assert f"Revision:    {NEW}   stable: {OLD}" in lines
    assert f"  {DONE} 1. weight 20%" in lines
    assert f"  {CURRENT} 2. pause until promote" in lines
    assert f"  {PENDING} 3. weight 50%" in lines
    assert f"  {PENDING} 4. pause 1m" in lines
    assert f"  {PENDING}    promote to stable" in lines
    assert "Weight:      20% desired, 50% actual" in lines
    assert "Ready pods:  stable 1, canary 1" in lines
    assert "Message:     step 2/4: paused until `kubectl rsvc promote`" in lines
    assert any(line.startswith(f"  {OLD}") and "Promoted" in line for line in lines)
    assert any(line.split()[:3] == ["Paused", "True", "WaitingForPromote"] for line in lines)
    assert not any(line.strip().startswith("Available") for line in lines)  # not asked for
    assert "Last abort" not in text and "not caught up" not in text


def test_status_text_of_an_aborted_canary_names_the_abort():
    abort = {"revision": NEW, "reason": "CanaryRestarts", "time": "2026-01-01T10:00:00Z",
             "message": "new pod web-canary-x restarted 3 times (health.maxRestarts 1)"}
    text = cli.format_status(resource("Aborted", stepIndex=0, abortedRevision=NEW,
                                      lastAbort=abort))
    assert f"  {FAILED} 1. weight 20%" in text.splitlines()
    assert f"Last abort:  CanaryRestarts (revision {NEW}, 2026-01-01T10:00:00Z)" in text
    assert "restarted 3 times" in text
    assert "(this revision was aborted)" in text


def test_status_text_shows_time_left_in_a_timed_pause():
    obj = resource("Progressing", stepIndex=3, stepStarted="2026-01-01T10:00:00.000000Z")
    now = parse_time("2026-01-01T10:00:20Z")
    assert f"  {CURRENT} 4. pause 1m (40s left)" in cli.format_status(obj, now=now).splitlines()


def test_status_text_of_a_rolling_update_and_of_a_stale_or_missing_status():
    text = cli.format_status(resource("Completed", strategy="Rolling", stableRevision=NEW))
    assert "Steps:       none" in text and f"Revision:    {NEW} (stable)" in text
    assert "not caught up" in cli.format_status(resource("Completed", generation=3))
    assert "no status.rollout yet" in cli.format_status(resource(None))


# -- --watch: when to stop, and the exit code ---------------------------------------------------


@pytest.mark.parametrize(("obj", "code"), [
    (resource("Completed", stepIndex=4, stableRevision=NEW), 0),
    (resource("Idle", revision=OLD), 0),  # nothing to roll out: the template is stable
    (resource("Completed", strategy="Rolling", stableRevision=NEW), 0),
    (resource("Aborting", stepIndex=1, abortedRevision=NEW), 1),
    (resource("Aborted", stepIndex=1, abortedRevision=NEW), 1),
    (resource("Aborted", strategy="Rolling", abortedRevision=NEW), 1),
    # aborted, then spec.template set back to the stable revision: nothing left to roll out
    (resource("Aborted", stepIndex=1, revision=OLD, abortedRevision=NEW), 0),
    (resource("Progressing", stepIndex=0), None),
    (resource("Paused", stepIndex=1), None),
    (resource("Promoting", stepIndex=4), None),
    (resource("Idle"), None),  # a retry: about to start again
    # the operator has not seen the new template yet: the old Completed says nothing
    (resource("Completed", stableRevision=NEW, generation=3, observed=2), None),
    (resource("Completed", stableRevision=NEW, observed=None), None),
    (resource(None), None),
])
def test_watch_outcome(obj: dict[str, Any], code: int | None):
    outcome = cli.watch_outcome(obj)
    assert (outcome.code if outcome else None) == code


def test_watch_outcome_explains_an_abort():
    abort = {"revision": NEW, "reason": "CanaryRestarts", "time": "t", "message": "pod x"}
    outcome = cli.watch_outcome(resource("Aborted", abortedRevision=NEW, stepIndex=0,
                                         lastAbort=abort))
    assert outcome is not None and "CanaryRestarts: pod x" in outcome.message


# -- commands: refused before sending, and whether an acknowledged one acted --------------------


@pytest.mark.parametrize(("command", "full", "obj", "refused"), [
    ("promote", False, resource("Paused", stepIndex=1), None),
    ("promote", False, resource("Progressing", stepIndex=3), None),  # a timed pause
    ("promote", False, resource("Progressing", stepIndex=0), "promote --full"),
    ("promote", True, resource("Progressing", stepIndex=0), None),
    ("promote", False, resource("Idle", revision=OLD), "no rollout of web is running"),
    ("promote", False, resource("Completed", stableRevision=NEW), "no rollout"),
    ("promote", False, resource("Promoting", stepIndex=4), "already promoting"),
    ("promote", False, resource("Aborted", abortedRevision=NEW), "no rollout"),
    ("promote", False, resource("Progressing", strategy="Rolling"), "Rolling"),
    ("abort", False, resource("Paused", stepIndex=1), None),
    ("abort", False, resource("Promoting", stepIndex=4), None),
    ("abort", False, resource("Idle", revision=OLD), "nothing to abort"),
    ("abort", False, resource("Aborting", abortedRevision=NEW), "nothing to abort"),
    ("retry", False, resource("Aborted", abortedRevision=NEW), None),
    ("retry", False, resource("Paused", stepIndex=1), "not Aborted"),
    ("retry", False, resource("Aborted", revision=OLD, abortedRevision=NEW), "was not aborted"),
    ("promote", False, resource(None), "no rollout status"),
])
def test_check_command(command: str, full: bool, obj: dict[str, Any], refused: str | None):
    problem = cli.check_command(command, obj, full=full)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem


def test_command_took_effect():
    paused = resource("Paused", stepIndex=1)
    assert cli.command_took_effect("promote", "t", paused, resource("Progressing", stepIndex=2))
    assert cli.command_took_effect("promote", "t", paused, resource("Promoting", stepIndex=4))
    assert not cli.command_took_effect("promote", "t", paused, paused)
    aborted = resource("Aborting", stepIndex=1, abortedRevision=NEW, lastAbort={
        "revision": NEW, "reason": "AbortCommand", "message": "abort requested (t)", "time": "x"})
    assert cli.command_took_effect("abort", "t", paused, aborted)
    assert not cli.command_took_effect("abort", "other", paused, aborted)
    was = resource("Aborted", abortedRevision=NEW)
    assert cli.command_took_effect("retry", "t", was, resource("Progressing", stepIndex=0))
    assert not cli.command_took_effect("retry", "t", was, was)


def test_tokens_are_fresh_and_full_ones_carry_the_prefix():
    tokens = {cli.new_token() for _ in range(100)}
    assert len(tokens) == 100 and not any(t.startswith(PROMOTE_FULL_PREFIX) for t in tokens)
    assert cli.new_token(full=True).startswith(PROMOTE_FULL_PREFIX)


def test_summary_names_phase_and_step():
    assert cli.summary(resource("Paused", stepIndex=1, desiredWeight=20, actualWeight=20)) == \
        "phase Paused, step 2/4 (pause until promote), weight 20% (actual 20%)"
    assert cli.summary(resource("Completed", stableRevision=NEW)) == \
        f"phase Completed, {NEW} is stable"


# -- errors -------------------------------------------------------------------------------------


def api_error(status: int, body: str) -> client.ApiException:
    e = client.ApiException(status=status, reason="x")
    e.body = body
    return e


def test_errors_are_one_line():
    kube = cli.Kube(None, "shop")
    missing = api_error(404, '{"kind":"Status","reason":"NotFound","code":404,'
                        '"details":{"name":"web","group":"resilience.dev"}}')
    assert kube.error(missing, "web").message == \
        'resilientservice "web" not found in namespace "shop"'
    assert "CRD" in kube.error(api_error(404, "404 page not found"), "web").message
    forbidden = api_error(403, '{"message":"resilientservices.resilience.dev \\"web\\" is '
                          'forbidden: User \\"u\\" cannot get"}')
    assert kube.error(forbidden, "web").message.endswith("cannot get (HTTP 403)")


def test_main_reports_a_missing_resource_in_one_line(monkeypatch, capsys):
    class Missing(cli.Kube):
        def get(self, name: str) -> dict[str, Any]:
            raise self.error(api_error(404, json.dumps({"details": {"name": name}})), name)

    monkeypatch.setattr(cli, "connect", lambda kubeconfig, context: (None, "default"))
    monkeypatch.setattr(cli, "Kube", Missing)
    assert cli.main(["status", "web", "-n", "shop"]) == 1
    assert capsys.readouterr().err == \
        'Error: resilientservice "web" not found in namespace "shop"\n'
    # the namespace flag is accepted before the command too; the context's is the default
    assert cli.main(["-n", "apps", "promote", "web"]) == 1
    assert 'in namespace "apps"' in capsys.readouterr().err
    assert cli.main(["abort", "web"]) == 1
    assert 'in namespace "default"' in capsys.readouterr().err


def test_durations_are_accepted_for_timeouts():
    args = cli.parser().parse_args(["status", "web", "--watch", "--timeout", "2m"])
    assert args.watch and args.timeout == 120
    assert cli.parser().parse_args(["status", "web", "--timeout", "90"]).timeout == 90


COMMANDS = ["status", "promote", "abort", "retry", "pause", "resume", "version"]


def test_every_command_has_help(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    top = capsys.readouterr().out
    for command in COMMANDS:
        assert command in top
        with pytest.raises(SystemExit) as done:
            cli.main([command, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: kubectl rsvc {command}"), text
        assert "--kubeconfig" in text and "--context" in text, command


def test_image_version_is_the_tag():
    assert cli.image_version("resilient-operator:0.1.0") == "0.1.0"
    assert cli.image_version("registry:5000/team/resilient-operator:1.2.3@sha256:ab") == "1.2.3"
    assert cli.image_version("registry:5000/resilient-operator") is None
    assert cli.image_version("resilient-operator@sha256:abcd") is None


def deployment(image: str, labels: dict[str, str] | None = None, ready: int = 2):
    return {"metadata": {"name": "resilient-operator", "namespace": "resilient-system",
                         "labels": labels or {}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": image}]}}},
            "status": {"readyReplicas": ready}}


def test_version_names_the_plugin_the_served_crd_versions_and_each_operator():
    group = {"name": "resilience.dev", "versions": [{"version": "v1alpha1"}],
             "preferredVersion": {"version": "v1alpha1"}}
    text = cli.format_version("0.1.0", group, [deployment("resilient-operator:0.1.0")])
    assert text.splitlines() == [
        "Plugin:      kubectl-rsvc 0.1.0 (speaks resilience.dev/v1alpha1)",
        "CRD:         resilientservices.resilience.dev served: v1alpha1",
        "Operator:    0.1.0 (resilient-system/resilient-operator: image "
        "resilient-operator:0.1.0, 2/2 ready)",
    ]
    # the version label wins over the tag; a digest-only image has no tag
    labelled = deployment("r@sha256:ab", {"app.kubernetes.io/version": "0.2.0"}, ready=1)
    assert "0.2.0 (resilient-system/resilient-operator: image r@sha256:ab, 1/2 ready)" in \
        cli.format_version("0.1.0", group, [labelled])
    assert "unknown (" in cli.format_version("0.1.0", group, [deployment("r@sha256:ab")])


def test_version_says_what_it_could_not_find():
    newer = {"versions": [{"version": "v1beta1"}, {"version": "v1alpha1"}],
             "preferredVersion": {"version": "v1beta1"}}
    assert "served: v1beta1, v1alpha1 (preferred v1beta1)" in \
        cli.format_version("0.1.0", newer, [])
    moved = {"versions": [{"version": "v1"}], "preferredVersion": {"version": "v1"}}
    assert "this plugin needs v1alpha1" in cli.format_version("0.1.0", moved, [])
    text = cli.format_version("0.1.0", "not installed: the API server does not serve "
                              "resilience.dev", "unknown: you may not list Deployments")
    assert "CRD:         not installed" in text
    assert "Operator:    unknown: you may not list Deployments" in text
    assert "no Deployment labelled app.kubernetes.io/part-of=resilient-operator" in \
        cli.format_version("0.1.0", newer, [])


def test_version_client_needs_no_cluster(monkeypatch, capsys):
    def no_cluster(*_: Any) -> None:
        raise AssertionError("version --client contacted the cluster")

    monkeypatch.setattr(cli, "connect", no_cluster)
    assert cli.main(["version", "--client"]) == 0
    assert capsys.readouterr().out == f"kubectl-rsvc {cli.plugin_version()}\n"
